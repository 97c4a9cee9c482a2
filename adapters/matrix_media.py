"""Matrix media: downloads bounded while they stream, and the content of the file replies.

A download goes through the authenticated media API and stops as soon as more bytes arrive than
the bot may clean, whatever the event's `info.size` claimed; nothing is written to disk. A reply
is sent as the original was: an `m.image` (with mimetype, size, width and height) for an
`m.image`, an `m.video` (the same, and its duration in milliseconds, read from the cleaned file's
movie header) for an `m.image` or `m.video` that held a video, an `m.file` for an `m.file`.
"""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from nio import AsyncClient, RoomEncryptedMedia, UploadResponse
from nio.crypto.attachments import decrypt_attachment
from nio.exceptions import EncryptionError

from bot.errors import DamagedImage
from bot.formats import isobmff
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
    """The message content for a cleaned file (without its url or encrypted `file`); `as_image`
    (the original was an `m.image` or `m.video`) sends an `m.image`, or `m.video` for a video."""
    info: dict[str, Any] = {"mimetype": cleaned.mime, "size": len(cleaned.data)}
    if as_image and cleaned.width > 0 and cleaned.height > 0:
        info.update(w=cleaned.width, h=cleaned.height)
    video = cleaned.mime.startswith("video/")
    if as_image and video and (duration := duration_ms(cleaned.data)) is not None:
        info["duration"] = duration
    shown = "m.video" if video else "m.image"
    return {
        "msgtype": shown if as_image else "m.file",
        "body": cleaned.file_name,
        "filename": cleaned.file_name,
        "info": info,
    }


def duration_ms(data: bytes) -> int | None:
    """A movie's duration in milliseconds: from 'mvhd', or when that leaves it open (0 or all
    ones), the longest track's 'mdhd'; None when the file tells neither."""
    try:
        budget = isobmff.Budget("MP4")
        moov = isobmff.one(isobmff.boxes(data, 0, len(data), budget), b"moov")
        if moov is None:
            return None
        found = isobmff.children(data, moov, budget)
        mvhd = isobmff.one(found, b"mvhd")
        movie = _duration(data, mvhd) if mvhd is not None else None
        if movie is not None:
            return movie
        tracks = []
        for trak in (b for b in found if b.type == b"trak"):
            mdia = isobmff.one(isobmff.children(data, trak, budget), b"mdia")
            mdhd = isobmff.one(isobmff.children(data, mdia, budget), b"mdhd") if mdia else None
            if mdhd is not None and (track := _duration(data, mdhd)) is not None:
                tracks.append(track)
        return max(tracks, default=None)
    except DamagedImage:  # not for a file verify accepted; then no duration rather than none
        return None


def _duration(data: bytes, header: isobmff.Box) -> int | None:
    """Milliseconds from an 'mvhd' or 'mdhd' (both: dates, timescale, duration)."""
    version, _, reader = isobmff.full_box(data, header, "MP4")
    width = 8 if version == 1 else 4
    reader.take(2 * width)  # creation and modification times
    timescale, duration = reader.uint(4), reader.uint(width)
    if timescale == 0 or duration in (0, (1 << 8 * width) - 1):
        return None
    return duration * 1000 // timescale


async def decrypted(event: Any, data: bytes) -> bytes | None:
    """An encrypted attachment's bytes, or None when it does not decrypt; others as they are."""
    if not isinstance(event, RoomEncryptedMedia):
        return data
    try:
        plain: bytes = await asyncio.to_thread(
            decrypt_attachment, data, event.key["k"], event.hashes["sha256"], event.iv
        )
    except (EncryptionError, KeyError, ValueError):
        log.info("matrix: an encrypted attachment did not decrypt (%d bytes)", len(data))
        return None
    return plain


async def upload(client: AsyncClient, data: bytes, mime: str, name: str | None) -> str | None:
    """Upload `data`; its mxc:// URL, or None when the server refused it."""
    response, _ = await client.upload(
        lambda *_: data, content_type=mime, filename=name, filesize=len(data)
    )
    if not isinstance(response, UploadResponse):
        log.warning("matrix: upload failed: %s", getattr(response, "status_code", None))
        return None
    url: str = response.content_uri
    return url


def relation(to: Any, thread_of: Any = None) -> dict[str, Any]:
    """Reply to event `to`, inside its thread when it is in one; with `to` None, only stay in
    the thread of `thread_of` (an original that was redacted)."""
    source = to if to is not None else thread_of
    if source is None:
        return {}
    relates = source.source.get("content", {}).get("m.relates_to") or {}
    reply: dict[str, Any] = {"m.in_reply_to": {"event_id": to.event_id}} if to is not None else {}
    if isinstance(relates, dict) and relates.get("rel_type") == "m.thread":
        reply.update(rel_type="m.thread", event_id=relates["event_id"], is_falling_back=False)
    return {"m.relates_to": reply} if reply else {}
