"""Matrix media: downloads bounded while they stream, and the content of the file replies.

A download goes through the authenticated media API and stops as soon as more bytes arrive than
the bot may clean, whatever the event's `info.size` claimed; nothing is written to disk. A reply
is sent as the original was: an `m.image` (with mimetype, size, width and height) for an
`m.image`, an `m.file` for an `m.file`.
"""

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.service import ScrubbedFile

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
DOWNLOAD_SECONDS = 120


class TooLargeDownload(Exception):
    """The file grew past the limit while it was downloading."""


@dataclass(frozen=True)
class Media:
    """Where the homeserver serves media, and the bot's access to it."""

    homeserver: str
    access_token: str

    async def download(self, http: aiohttp.ClientSession, mxc: str, max_bytes: int) -> bytes:
        """The bytes behind `mxc`, at most `max_bytes` of them (TooLargeDownload beyond).

        Raises aiohttp.ClientError (or ValueError for a malformed URI) when it cannot be had."""
        if not mxc.startswith("mxc://") or mxc.count("/") != 3:
            raise ValueError("not an mxc URI")
        server, media_id = mxc[len("mxc://") :].split("/")
        url = (
            f"{self.homeserver}/_matrix/client/v1/media/download/"
            f"{quote(server, safe='')}/{quote(media_id, safe='')}"
        )
        headers = {"Authorization": f"Bearer {self.access_token}"}
        timeout = aiohttp.ClientTimeout(total=DOWNLOAD_SECONDS)
        async with http.get(url, headers=headers, timeout=timeout) as response:
            response.raise_for_status()
            declared = response.content_length
            if declared is not None and declared > max_bytes:
                raise TooLargeDownload
            received = bytearray()
            async for chunk in response.content.iter_chunked(CHUNK):
                received += chunk
                if len(received) > max_bytes:
                    raise TooLargeDownload
            return bytes(received)


def file_content(cleaned: ScrubbedFile, as_image: bool) -> dict[str, Any]:
    """The message content for a cleaned file (without its url or encrypted `file`)."""
    info: dict[str, Any] = {"mimetype": cleaned.mime, "size": len(cleaned.data)}
    if as_image and cleaned.width > 0 and cleaned.height > 0:
        info.update(w=cleaned.width, h=cleaned.height)
    return {
        "msgtype": "m.image" if as_image else "m.file",
        "body": cleaned.file_name,
        "filename": cleaned.file_name,
        "info": info,
    }
