"""The command line's videos: cleaned by ranges, so memory stays small whatever the file's size.

    open_video(path)            the file mapped read-only, if it is a video we clean (else None)
    plan(video, limits)         what the clean copy is made of: our boxes, and ranges of the input
                                (both in `bot.mapped_video`, which the bot shares)
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
import mmap
import os
from typing import TYPE_CHECKING, cast

from bot import cli_files
from bot.errors import NotClean
from bot.formats.base import ALIGN, Format
from bot.mapped_video import VIDEO_FORMATS, Video, open_video, plan, reparsed, size_of
from bot.mapped_video import release as _release
from bot.mapped_video import scattered as _scattered

if TYPE_CHECKING:  # loaded with the first video (see plan): cleaning photos never needs it
    from bot.formats import mp4

__all__ = ["VIDEO_FORMATS", "Video", "copy_range", "open_video", "plan", "size_of", "writer"]

_PIECE = 1 << 20  # bytes read at a time where the kernel cannot copy, or to compare ranges
_RELEASE_EVERY = 64  # parts compared (or pieces of a moved range) between unmapping pages
_NO_KERNEL_COPY = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF, errno.ETXTBSY}
)


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
        again = reparsed(fmt, cast(bytes, mapped))
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
