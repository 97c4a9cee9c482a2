"""Videos cleaned from a file mapped read-only, so memory stays small whatever the file's size.

    video = open_video(path)              # the file mapped read-only, if it is a video we clean
    parsed, parts = inspect_parts(video, limits)   # the clean copy: our boxes, ranges of the file
    stream = clean_file(path, limits)     # the bot's way: all of that, verified, as a Stream
    with stream.open() as body: ...       # a seekable file-like of the clean copy, read by pieces

The command line (`bot.cli_video`) writes the parts to a file, checks its skeleton as below
meanwhile, and reads our bytes back from what it wrote. The bot,
with a local Bot API server, gets a user's big video as a file on that server's disk; the clean
copy is never written anywhere (a user's video is never put on disk by us): it is uploaded as
it is read, our box bytes and the ranges of the server's file read with `os.pread` in pieces of
at most `PIECE` bytes (`PartsReader`).

Fail closed without the output at hand: `verify_parts` builds a skeleton of the output (an
anonymous private mapping of its size, in which untouched pages cost nothing: our box bytes at
their places, the ranges left as zeros). It must parse with nothing left but structure, and
stripping it again (`mp4.strip_parts`) must give the same box bytes at the same places and, at
the output ranges' places, ranges that map onto themselves. This is sound because the mp4 parser
never reads the bytes of a kept sample: everything it reads of a clean file lies in the boxes
we wrote (the samples it reads, for a route, are those of timed metadata tracks, which the clean
copy does not have). So the verdict and the re-stripped parts are the same whatever the ranges
hold; `tests/test_telegram_local.py` proves it by filling them with random bytes instead, over
plain and fragmented clips, and compares the streamed bytes with what `scrubbot clean` writes.

The file may change under us between the check and the upload: the reader refuses to start on
a file that is not the one that was checked (device, inode, size), and stops the upload with
`SourceChanged` when the file's size changes or a read comes back short.
"""

import bisect
import gc
import io
import mmap
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from bot.errors import DamagedImage, NotClean, ScrubError, TooLarge
from bot.formats.base import SNIFF_BYTES, Format, Parsed
from bot.scrub import Inspection, Limits, _allowed, _guarded, sniff

if TYPE_CHECKING:  # loaded with the first video: cleaning photos never needs it
    from bot.formats import mp4

VIDEO_FORMATS = frozenset({"mp4", "mov", "m4v", "3gp"})
T = TypeVar("T")
PIECE = 1 << 20  # at most this many bytes of the file read at a time
# A skeleton is mapped without reserving its size (it touches a few pages): else the kernel
# refuses one larger than memory. Python 3.11 has no name for the flag; on Linux on these
# machines it is 0x4000 (elsewhere: nothing, and a skeleton is reserved like any memory).
_NORESERVE_ON = frozenset({"x86_64", "i686", "aarch64", "armv7l", "riscv64", "s390x"})
_LINUX_NORESERVE = 0x4000 if sys.platform == "linux" and os.uname().machine in _NORESERVE_ON else 0
_NORESERVE: int = getattr(mmap, "MAP_NORESERVE", _LINUX_NORESERVE)


class SourceChanged(DamagedImage):
    """The file changed (or went) while its clean copy was read from it."""


@dataclass
class Video:
    fd: int
    size: int
    map: mmap.mmap
    format: Format

    @property
    def data(self) -> bytes:
        """The mapped file, for parsers written for bytes (slices of an mmap are bytes)."""
        return cast(bytes, self.map)

    def close(self) -> None:
        self.map.close()
        os.close(self.fd)

    def __enter__(self) -> "Video":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_video(path: str) -> Video | None:
    """`path` mapped, if it is a regular, non-empty file that starts like a video we clean;
    None for anything else (a photo, a pipe, an empty or unknown file: the usual way reads it).
    OSError when it cannot be opened."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
            os.close(fd)
            return None
        head = os.pread(fd, SNIFF_BYTES, 0)
        try:
            fmt = sniff(head)
        except ScrubError:
            fmt = None
        if fmt is None or fmt.name not in VIDEO_FORMATS:
            os.close(fd)
            return None
        try:
            mapped = mmap.mmap(fd, info.st_size, access=mmap.ACCESS_READ)
        except OSError:  # a file system that cannot map files: the usual way reads it
            os.close(fd)
            return None
        scattered(mapped)
    except BaseException:
        os.close(fd)
        raise
    return Video(fd, info.st_size, mapped, fmt)


def streamable(path: str) -> bool:
    """Whether `path` is a file this process can open and map that starts like a video we clean
    (the bot asks before it takes the mapped way for a file over its in-memory limit)."""
    try:
        video = open_video(path)
    except OSError:
        return False
    if video is None:
        return False
    video.close()
    return True


def inspect_parts(video: Video, limits: Limits) -> "tuple[Parsed, list[mp4.Part]]":
    """Parse the mapped video (within `limits` but for its size: the checks `bot.scrub.inspect`
    makes) and list the clean copy's parts. ScrubError when it is no video we clean, or damaged."""
    if sniff(video.data).name not in VIDEO_FORMATS:
        raise DamagedImage  # it changed under us between the sniff and the map
    from bot.formats import mp4

    parsed, parts = _guarded(lambda: uncollected(mp4.parse_parts, video.data))
    release(video.map)
    if parsed.width <= 0 or parsed.height <= 0:
        raise DamagedImage("The picture has no width or height.")
    if parsed.width * parsed.height * parsed.frames > limits.max_pixels:
        raise TooLarge("The picture has too many pixels to handle safely.")
    return parsed, parts


def plan(video: Video, limits: Limits) -> "list[mp4.Part]":
    """The clean copy's parts (`inspect_parts` without what the video held)."""
    return inspect_parts(video, limits)[1]


def uncollected(parse: "Callable[[bytes], T]", data: bytes) -> T:
    """`parse(data)` with Python's cycle collector paused: a long clip's tables are tens of
    thousands of tuples, and the collector walking them again and again was a fifth of the
    time. They hold no cycles; whatever else does is collected as soon as it runs again."""
    was = gc.isenabled()
    gc.disable()
    try:
        return parse(data)
    finally:
        if was:
            gc.enable()


def scattered(mapped: mmap.mmap) -> None:
    """Tell the kernel the map is read in scattered places (the boxes between the samples), so
    it does not read ahead around each: a fragmented file has a 'moof' every second or frame."""
    if hasattr(mmap, "MADV_RANDOM"):
        mapped.madvise(mmap.MADV_RANDOM)


def release(mapped: mmap.mmap) -> None:
    """Unmap the pages read so far (they stay in the page cache, and a later read maps them
    again): the kernel maps the cached pages around each read too, so reading the boxes of many
    small fragments would otherwise map most of the file."""
    if hasattr(mmap, "MADV_DONTNEED"):
        mapped.madvise(mmap.MADV_DONTNEED)


def size_of(parts: "list[mp4.Part]") -> int:
    return sum(map(_length, parts))


# -- the bot's way: verified without the output, streamed from the file ------------------------


@dataclass(frozen=True)
class Source:
    """The file the ranges are read from, as it was when its clean copy was checked."""

    path: str = field(repr=False)  # a path on the local Bot API server's disk: never logged
    device: int
    inode: int
    size: int


@dataclass(frozen=True)
class Stream:
    """A verified clean copy made of our box bytes and ranges of `source`, never held whole."""

    source: Source
    parts: "tuple[mp4.Part, ...]" = field(repr=False)
    size: int

    def open(self) -> "PartsReader":
        """A reader from the start; SourceChanged when the file is not the one checked."""
        return PartsReader(self)


@dataclass(frozen=True)
class Cleaned:
    stream: Stream
    inspection: Inspection


def clean_file(path: str, limits: Limits, most: int) -> Cleaned:
    """The clean copy of the video at `path` (at most `most` bytes) as a verified Stream, with
    what the video held. ScrubError when it is no video we clean, damaged, too large, or its
    copy does not verify (NotClean); OSError when it cannot be read."""
    video = open_video(path)
    if video is None:
        raise DamagedImage  # it was a video a moment ago (`streamable`): it changed
    with video:
        if video.size > most:
            raise TooLarge
        info = os.fstat(video.fd)
        parsed, parts = inspect_parts(video, limits)
        verify_parts(video.format, parts)
        source = Source(path, info.st_dev, info.st_ino, video.size)
        stream = Stream(source, tuple(parts), size_of(parts))
        return Cleaned(stream, Inspection(video.format, parsed))


class _Skeleton(mmap.mmap):
    """An anonymous private mapping the parser must not let go of: mp4 unmaps the pages of a
    mapped file as it reads (MADV_DONTNEED), which would turn our bytes here back into zeros."""

    def madvise(self, option: int, start: int = 0, length: int = 0) -> None:
        """Kept: these pages hold the only copy of what was written into them."""


def skeleton(parts: "list[mp4.Part]") -> mmap.mmap:
    """The output laid out as `parts` say, our bytes at their places and zeros for the ranges
    (pages never written cost no memory)."""
    size = size_of(parts)
    mapped = _Skeleton(-1, max(size, 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _NORESERVE)
    pos = 0
    for part in parts:
        if isinstance(part, bytes):
            mapped[pos : pos + len(part)] = part
            pos += len(part)
        else:
            pos += part[1]
    return mapped


def verify_parts(fmt: Format, parts: "list[mp4.Part]") -> None:
    """`bot.scrub.verify` for an output that is never materialised: NotClean unless its
    skeleton passes `check_layout`."""
    if size_of(parts) == 0:
        raise NotClean
    with skeleton(parts) as mapped:
        check_layout(fmt, cast(bytes, mapped), parts)


def check_layout(fmt: Format, output: bytes, parts: "list[mp4.Part]") -> None:
    """NotClean unless `output` (laid out as `parts`, whatever its ranges hold) is `fmt`, parses
    with nothing but structure left, and stripping it again gives exactly `parts`' bytes at their
    places and, where `parts` has ranges, only ranges of the output onto themselves."""
    if not same_layout(parts, reparsed(fmt, output), output):
        raise NotClean


def reparsed(fmt: Format, output: bytes) -> "list[mp4.Part]":
    """The parts of stripping our own `output` again; NotClean unless it is `fmt` (the same
    entry of the registry: the same rules) and parses with nothing left but structure."""
    from bot.formats import mp4

    try:
        if sniff(output) is not fmt:
            raise NotClean
        parsed, again = _guarded(lambda: uncollected(mp4.parse_parts, output))
    except NotClean:
        raise
    except ScrubError as error:
        raise NotClean from error
    if any(not _allowed(block) for block in parsed.blocks):
        raise NotClean
    return again


def same_layout(parts: "list[mp4.Part]", again: "list[mp4.Part]", output: bytes) -> bool:
    """Whether `again` (the output's own parts) gives the output `parts` describe: each of its
    bytes equal to the output's at its place and outside every range of `parts`, each of its
    ranges in place (offset = position) and inside the ranges of `parts`, the same size."""
    if _mirrors(parts, again):
        return True
    if size_of(again) != size_of(parts):
        return False
    spans: list[tuple[int, int]] = []  # the ranges' places in the output, neighbours merged
    pos = 0
    for part in parts:
        length = _length(part)
        if not isinstance(part, bytes) and length:
            if spans and spans[-1][1] == pos:
                spans[-1] = (spans[-1][0], pos + length)
            else:
                spans.append((pos, pos + length))
        pos += length
    starts = [start for start, _ in spans]
    pos = 0
    for part in again:
        length = _length(part)
        index = bisect.bisect_right(starts, pos) - 1
        inside = index >= 0 and pos < spans[index][1]
        if isinstance(part, bytes):
            following = spans[index + 1][0] if index + 1 < len(spans) else None
            if inside or (following is not None and pos + length > following):
                return False  # our bytes where samples are: their bytes would decide
            if output[pos : pos + length] != part:
                return False
        elif length and (part[0] != pos or not inside or pos + length > spans[index][1]):
            return False
        pos += length
    return True


def _mirrors(parts: "list[mp4.Part]", again: "list[mp4.Part]") -> bool:
    """The usual case of `same_layout`, a part at a time: `again` has our bytes where `parts`
    has them (which is what the output holds there) and, where `parts` has a range, the same
    length of the output in place. Anything else is left to the whole check."""
    if len(again) != len(parts):
        return False
    pos = 0
    for part, other in zip(parts, again, strict=True):
        if isinstance(part, bytes):
            if other != part:  # a range is never equal to bytes
                return False
            pos += len(part)
        elif isinstance(other, bytes) or other != (pos, part[1]):
            return False
        else:
            pos += part[1]
    return True


class PartsReader(io.RawIOBase):
    """The clean copy as a seekable, read-only file: our bytes from memory, the ranges read
    from the source with `os.pread` (at most `PIECE` bytes a read). It has no `fileno`, so
    httpx takes its length from `seek`/`tell` (a Content-Length) and streams it by `read`."""

    def __init__(self, stream: Stream) -> None:
        super().__init__()
        self.stream = stream
        self._starts = list(accumulate((_length(p) for p in stream.parts), initial=0))
        self._pos = 0
        self._fd = os.open(stream.source.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            info = os.fstat(self._fd)
            source = stream.source
            if (info.st_dev, info.st_ino) != (source.device, source.inode):
                raise SourceChanged
            self._check_size()
        except BaseException:
            os.close(self._fd)
            raise

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self.stream.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:  # any writable buffer (typeshed's WriteableBuffer)
        view = memoryview(buffer).cast("B")
        if self._pos >= self.stream.size or not len(view):
            return 0
        index = bisect.bisect_right(self._starts, self._pos) - 1
        part, within = self.stream.parts[index], self._pos - self._starts[index]
        count = min(len(view), PIECE, _length(part) - within)
        if isinstance(part, bytes):
            view[:count] = part[within : within + count]
        else:
            self._check_size()
            if os.preadv(self._fd, [view[:count]], part[0] + within) != count:
                raise SourceChanged  # it got shorter while it was read
        self._pos += count
        return count

    def _check_size(self) -> None:
        if os.fstat(self._fd).st_size != self.stream.source.size:
            raise SourceChanged

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def _length(part: "mp4.Part") -> int:
    return len(part) if isinstance(part, bytes) else part[1]
