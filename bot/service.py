"""The one use case the chat core (`bot.chat`) calls: photos in, summary and scrubbed files out.

    service = Service(limits)
    async with service.slot():                 # bounds the photos held in memory at once
        data = await download()
        reply = await service.scrub([data], language, Detail.PRIVATE)

The CPU work (parsing, stripping, verifying, rendering) runs in a small thread pool, never on the
event loop. Nothing is written to disk; logs carry format, size, counts and durations only.

A video over the in-memory limit that lies on a local Bot API server's disk comes as a
`LocalFile`: it is cleaned from the mapped file (`bot.mapped_video`) and comes back as a
`ScrubbedFile` with a `stream` (our box bytes and ranges of that file, verified) and no `data`;
the adapter uploads it as it reads it.
"""

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bot import mapped_video, metrics
from bot.errors import ScrubError
from bot.findings import Finding, Kind
from bot.formats.base import BlockKind, Parsed
from bot.metadata import exif
from bot.scrub import Limits, scrub
from bot.summary import Detail, Summary, render
from bot.texts import refusal

log = logging.getLogger(__name__)

NEUTRAL_NAME = "photo"
NEUTRAL_VIDEO_NAME = "video"  # a clip sent back is not called a photo


@dataclass(frozen=True)
class LocalFile:
    """A file on a local Bot API server's disk, to be cleaned where it lies (a path: never
    logged); at most `most` bytes (what that server lets a bot download)."""

    path: str = field(repr=False)
    most: int


@dataclass(frozen=True)
class ScrubbedFile:
    data: bytes = field(repr=False)  # empty when the file is a `stream`
    file_name: str  # neutral: "photo.jpg", "photo-2.heic", "video-3.mov"
    mime: str
    kinds: frozenset[Kind]  # what it held, for usage counts (never values)
    format: str
    source: int = 0  # which of the photos passed to `scrub` it came from
    width: int = 0  # as displayed (EXIF orientation applied), for chat clients' image tiles
    height: int = 0
    # a big video cleaned from a local file: its verified parts, read as it is uploaded
    stream: mapped_video.Stream | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return self.stream.size if self.stream is not None else len(self.data)


@dataclass(frozen=True)
class Reply:
    """What to send back: the summary (None when nothing could be cleaned), the cleaned files
    and one localized reason per refused file."""

    summary: Summary | None
    files: tuple[ScrubbedFile, ...]
    refusals: tuple[str, ...]
    reasons: tuple[str, ...] = ()  # ScrubError.reason of each refusal, for metrics

    @property
    def found_anything(self) -> bool:
        return any(f.kinds for f in self.files)

    def usage(self) -> tuple[list[tuple[str, frozenset[Kind]]], int]:
        """What `Store.record` counts: format and kinds per cleaned file, and refusals."""
        return [(f.format, f.kinds) for f in self.files], len(self.refusals)


class Service:
    def __init__(self, limits: Limits, workers: int = 2, photos_in_memory: int = 2) -> None:
        self.limits = limits
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scrub")
        self._slots = asyncio.Semaphore(photos_in_memory)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the bounded places for a photo in memory (download to reply)."""
        with metrics.queued():
            await self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()

    async def scrub(
        self, photos: Sequence[bytes | LocalFile], language: str, detail: Detail
    ) -> Reply:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._scrub, photos, language, detail)

    async def warm_up(self) -> None:
        """Load the place index and the catalogs now, so the first parent does not wait."""
        loop = asyncio.get_running_loop()
        sample = [Finding(Kind.LOCATION, "coordinates", "", "warm-up", (52.52, 13.40))]
        await loop.run_in_executor(self._pool, render, sample, "de")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _scrub(self, photos: Sequence[bytes | LocalFile], language: str, detail: Detail) -> Reply:
        files: list[ScrubbedFile] = []
        findings: list[Finding] = []
        refusals: list[str] = []
        reasons: list[str] = []
        for index, data in enumerate(photos, start=1):
            started = time.perf_counter()
            try:
                if isinstance(data, LocalFile):
                    cleaned = mapped_video.clean_file(data.path, self.limits, data.most)
                    stream, inspection, out = cleaned.stream, cleaned.inspection, b""
                    size = stream.source.size
                else:
                    result = scrub(data, self.limits)
                    stream, inspection, out, size = None, result.inspection, result.data, len(data)
                found = inspection.findings
            except ScrubError as error:
                log.info("refused %s: %d bytes", type(error).__name__, _size(data))
                refusals.append(refusal(error, language))
                reasons.append(error.reason)
                continue
            except OSError as error:  # the local file could not be read: it went, or changed
                log.info("refused a local file it could not read (%s)", type(error).__name__)
                refusals.append(refusal(mapped_video.SourceChanged(), language))
                reasons.append(mapped_video.SourceChanged.reason)
                continue
            fmt = inspection.format
            suffix = f"-{index}" if len(photos) > 1 else ""
            kinds = frozenset(f.kind for f in found)
            base = NEUTRAL_VIDEO_NAME if fmt.mime.startswith("video/") else NEUTRAL_NAME
            name = f"{base}{suffix}.{fmt.extension}"
            width, height = _display_size(inspection.parsed)
            file = ScrubbedFile(
                out, name, fmt.mime, kinds, fmt.name, index - 1, width, height, stream
            )
            files.append(file)
            findings.extend(found)
            log.info(
                "cleaned %s%s: %d -> %d bytes, %d findings, %.0f ms",
                fmt.name,
                " (streamed from a local file)" if stream is not None else "",
                size,
                file.size,
                len(found),
                (time.perf_counter() - started) * 1000,
            )
        moving = sum(file.mime.startswith("video/") for file in files)
        videos, mixed = moving == len(files), 0 < moving < len(files)
        summary = render(findings, language, detail, len(files), videos, mixed) if files else None
        return Reply(summary, tuple(files), tuple(refusals), tuple(reasons))


def _size(data: bytes | LocalFile) -> int:
    if isinstance(data, LocalFile):
        try:
            return os.stat(data.path).st_size
        except OSError:
            return 0
    return len(data)


def _display_size(parsed: Parsed) -> tuple[int, int]:
    """Width and height as shown: EXIF orientations 5 to 8 turn the picture by 90 degrees."""
    turned = any(
        block.kind is BlockKind.EXIF and exif.orientation(block.data) >= 5
        for block in parsed.blocks
    )
    return (parsed.height, parsed.width) if turned else (parsed.width, parsed.height)
