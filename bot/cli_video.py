"""The command line's videos: cleaned by ranges, so memory stays small whatever the file's size.

    open_video(path)            the file mapped read-only, if it is a video we clean (else None)
    plan(video, limits)         what the clean copy is made of: our boxes, and ranges of the input
    writer(video, parts)        a `cli_files.Writer`: writes the parts, then checks what it wrote

A photo is read whole (`cli_files.read_input`); a video may be gigabytes, almost all of it the
samples in 'mdat', which cleaning never changes. So the input is mapped (`mmap`) and only the
boxes outside 'mdat' (and the few samples of timed metadata tracks, for their route) are read
from it; the copy is written as the boxes we built plus (offset, size) ranges of the input that
the kernel copies from file to file (`os.copy_file_range`, else `os.sendfile`, else reads of
`_PIECE` bytes). Then, before the copy gets its name, it is checked as `bot.scrub.verify` checks
a photo, on the file itself (mapped): parsed, nothing left but structure, and stripping it again
gives the same bytes, compared range by range (a range that maps onto itself needs no reading).
Anything else refuses (`NotClean`) and the unnamed copy is dropped.

Fragmented files ('moof') go the same way: their fragments are boxes outside 'mdat', rebuilt
in memory (a few hundred bytes each), and the kept runs of each fragment are ranges like chunks.

The bytes are the ones `bot.scrub.scrub` gives for the same file in memory (the bot's way).
`SCRUBBOT_MAX_BYTES` guards memory, and this way holds none of the file, so it does not apply
here; every other bound of the parser (boxes, samples, tracks, pixels) does.
"""

import errno
import gc
import mmap
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar, cast

from bot import cli_files
from bot.errors import DamagedImage, NotClean, ScrubError, TooLarge
from bot.formats.base import ALIGN, SNIFF_BYTES, Format
from bot.scrub import Limits, _allowed, _guarded, sniff

if TYPE_CHECKING:  # loaded with the first video (see plan): cleaning photos never needs it
    from bot.formats import mp4

VIDEO_FORMATS = frozenset({"mp4", "mov", "m4v", "3gp"})
T = TypeVar("T")
_PIECE = 1 << 20  # bytes read at a time where the kernel cannot copy, or to compare ranges
_RELEASE_EVERY = 64  # parts compared (or pieces of a moved range) between unmapping pages
_NO_KERNEL_COPY = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF, errno.ETXTBSY}
)


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
        _scattered(mapped)
    except BaseException:
        os.close(fd)
        raise
    return Video(fd, info.st_size, mapped, fmt)


def plan(video: Video, limits: Limits) -> "list[mp4.Part]":
    """Parse the mapped video (within `limits` but for its size: the checks `bot.scrub.inspect`
    makes) and list the clean copy's parts. ScrubError when it is no video we clean, or damaged."""
    if sniff(video.data).name not in VIDEO_FORMATS:
        raise DamagedImage  # it changed under us between the sniff and the map
    from bot.formats import mp4

    parsed, parts = _guarded(lambda: _uncollected(mp4.parse_parts, video.data))
    _release(video.map)
    if parsed.width <= 0 or parsed.height <= 0:
        raise DamagedImage("The picture has no width or height.")
    if parsed.width * parsed.height * parsed.frames > limits.max_pixels:
        raise TooLarge("The picture has too many pixels to handle safely.")
    return parts


def _uncollected(parse: "Callable[[bytes], T]", data: bytes) -> T:
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


def _scattered(mapped: mmap.mmap) -> None:
    """Tell the kernel the map is read in scattered places (the boxes between the samples), so
    it does not read ahead around each: a fragmented file has a 'moof' every second or frame."""
    if hasattr(mmap, "MADV_RANDOM"):
        mapped.madvise(mmap.MADV_RANDOM)


def _release(mapped: mmap.mmap) -> None:
    """Unmap the pages read so far (they stay in the page cache, and a later read maps them
    again): the kernel maps the cached pages around each read too, so reading the boxes of many
    small fragments would otherwise map most of the file."""
    if hasattr(mmap, "MADV_DONTNEED"):
        mapped.madvise(mmap.MADV_DONTNEED)


def size_of(parts: "list[mp4.Part]") -> int:
    return sum(len(part) if isinstance(part, bytes) else part[1] for part in parts)


def writer(video: Video, parts: "list[mp4.Part]") -> cli_files.Writer:
    """Writes `parts` into the open copy, then refuses it (NotClean) unless it verifies."""

    def write(out: int) -> None:
        for part in parts:
            if isinstance(part, bytes):
                cli_files.write_bytes(out, part)
            else:
                copy_range(video.fd, out, *part)
        verify_file(video.format, out, size_of(parts))

    return write


def copy_range(source: int, out: int, offset: int, size: int) -> None:
    """`size` bytes of `source` from `offset` onto `out` at its position, copied by the kernel
    where it can. OSError when the source ends early (it shrank) or the disk is full."""
    end = offset + size
    # A range at its source offset modulo the block size (`ALIGN`) may share blocks
    # (a reflink) on XFS or btrfs, but only from a block boundary on: its head goes first.
    head = -offset % ALIGN if (offset - os.lseek(out, 0, os.SEEK_CUR)) % ALIGN == 0 else 0
    stops = [min(offset + head, end), end] if head else [end]
    for stop in stops:
        offset = _copy_by_kernel(source, out, offset, stop)
    while offset < end:  # the kernel cannot copy between these files: read and write
        piece = os.pread(source, min(end - offset, _PIECE), offset)
        if not piece:
            raise OSError(errno.EIO, "the file got shorter while it was read")
        cli_files.write_bytes(out, piece)
        offset += len(piece)


def _copy_by_kernel(source: int, out: int, offset: int, end: int) -> int:
    """Copy from `offset` to `end` by the kernel; where it got to (short of `end` when the kernel
    cannot copy between these files)."""
    while offset < end:
        copied = _kernel_copy(source, out, offset, min(end - offset, 1 << 30))
        if copied < 0:
            break
        if copied == 0:
            raise OSError(errno.EIO, "the file got shorter while it was read")
        offset += copied
    return offset


def _kernel_copy(source: int, out: int, offset: int, count: int) -> int:
    """Bytes copied by copy_file_range or sendfile, or -1 when neither works here."""
    for copy in (_copy_file_range, _sendfile):
        try:
            return copy(source, out, offset, count)
        except OSError as error:
            if error.errno not in _NO_KERNEL_COPY:
                raise
    return -1


def _copy_file_range(source: int, out: int, offset: int, count: int) -> int:
    if not hasattr(os, "copy_file_range"):
        raise OSError(errno.ENOSYS, "no copy_file_range")
    return os.copy_file_range(source, out, count, offset)


def _sendfile(source: int, out: int, offset: int, count: int) -> int:
    return os.sendfile(out, source, offset, count)


def verify_file(fmt: Format, out: int, expected: int) -> None:
    """`bot.scrub.verify` on the written file: NotClean unless it has the size we wrote, parses
    with nothing but structure left, and stripping it again gives exactly its own bytes."""
    size = os.fstat(out).st_size
    if size != expected or size == 0:
        raise NotClean
    with mmap.mmap(out, size, access=mmap.ACCESS_READ) as mapped:
        _scattered(mapped)
        written = cast(bytes, mapped)
        from bot.formats import mp4

        try:
            if sniff(written) is not fmt:  # the same entry of the registry: the same rules
                raise NotClean
            parsed, again = _guarded(lambda: _uncollected(mp4.parse_parts, written))
            if any(not _allowed(block) for block in parsed.blocks):
                raise NotClean
        except NotClean:
            raise
        except ScrubError as error:
            raise NotClean from error
        if size_of(again) != size or not _same(mapped, again):
            raise NotClean


def _same(mapped: mmap.mmap, parts: "list[mp4.Part]") -> bool:
    """Whether the file is exactly `parts` (ranges of itself), reading at most `_PIECE` at a time
    and nothing for a range that is where it came from; the pages read are unmapped as it goes
    (`_release`), so comparing the boxes of many fragments does not map the file."""
    pos = 0
    for index, part in enumerate(parts, start=1):
        if index % _RELEASE_EVERY == 0:
            _release(mapped)
        if isinstance(part, bytes):
            if mapped[pos : pos + len(part)] != part:
                return False
            pos += len(part)
            continue
        offset, size = part
        if offset != pos:
            for step in range(0, size, _PIECE):
                if step and step % (_RELEASE_EVERY * _PIECE) == 0:
                    _release(mapped)
                length = min(_PIECE, size - step)
                if (
                    mapped[offset + step : offset + step + length]
                    != mapped[pos + step : pos + step + length]
                ):
                    return False
        pos += size
    return True
