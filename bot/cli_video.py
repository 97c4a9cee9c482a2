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
`_PIECE` bytes). Before the copy gets its name, it is checked as `bot.scrub.verify` checks a
photo, the way the bot checks a copy it never writes (`bot.mapped_video.verify_parts`): its
skeleton (our boxes at their places, zeros for the samples) must parse with nothing but
structure left and strip to itself. The mp4 parser never reads a kept sample's bytes, so that is
the verdict on the copy itself once the copy is read back where it holds our bytes
(`check_written`). The skeleton is checked in a child process while this one writes. Anything
else refuses (`NotClean`) and the unnamed copy is dropped.

Fragmented files ('moof') go the same way: their fragments are boxes outside 'mdat', rebuilt
in memory (a few hundred bytes each), and the kept runs of each fragment are ranges like chunks.

The bytes are the ones `bot.scrub.scrub` gives for the same file in memory (the bot's way).
`SCRUBBOT_MAX_BYTES` guards memory, and this way holds none of the file, so it does not apply
here; every other bound of the parser (boxes, samples, tracks, pixels) does.
"""

import errno
import fcntl
import os
import signal
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot import cli_files
from bot.errors import NotClean
from bot.formats.base import ALIGN, Format
from bot.mapped_video import VIDEO_FORMATS, Video, open_video, plan, size_of, verify_parts

if TYPE_CHECKING:  # loaded with the first video (see plan): cleaning photos never needs it
    from bot.formats import mp4

__all__ = ["VIDEO_FORMATS", "Video", "copy_range", "open_video", "plan", "size_of", "writer"]

# struct fsxattr (linux/fs.h): flags, extent size, extents, project, CoW extent size, padding.
_FSXATTR_SIZE = 28
_FS_IOC_FSGETXATTR = 0x801C581F  # _IOR('X', 31, struct fsxattr)
_FS_IOC_FSSETXATTR = 0x401C5820  # _IOW('X', 32, struct fsxattr)
_FS_XFLAG_COWEXTSIZE = 0x00010000
_BRIDGE = 2 * ALIGN + 64  # our bytes between two ranges of one stretch, at most (see _stretches)
_PIECE = 1 << 20  # bytes read at a time where the kernel cannot copy
_NO_KERNEL_COPY = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF, errno.ETXTBSY}
)


def writer(video: Video, parts: "list[mp4.Part]") -> cli_files.Writer:
    """Writes `parts` into the open copy, then refuses it (NotClean) unless it verifies."""

    def write(out: int) -> None:
        checked = _checked_aside(video.format, parts)
        try:
            write_parts(video.fd, out, parts)
        finally:
            passed = checked()
        if not passed:
            raise NotClean
        check_written(out, parts)

    return write


def _checked_aside(fmt: Format, parts: "list[mp4.Part]") -> Callable[[], bool]:
    """Whether the copy's skeleton verifies (`verify_parts`), found in a child process while
    this one writes the copy: the check is Python's work and the copy the kernel's, so on two
    cores they overlap (for a 1 GB clip with a removed track, 35 and 25 ms). Without fork, the
    check runs here first."""
    try:
        child = os.fork()
    except (AttributeError, OSError):  # no fork here, or no room for a process
        verdict = _verifies(fmt, parts)
        return lambda: verdict
    if child == 0:
        status = 1
        try:  # nothing of the parent's runs here: no exit handlers, no buffers flushed
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            status = 0 if _verifies(fmt, parts) else 1
        finally:
            os._exit(status)

    def passed() -> bool:
        _, status = os.waitpid(child, 0)
        return os.waitstatus_to_exitcode(status) == 0

    return passed


def _verifies(fmt: Format, parts: "list[mp4.Part]") -> bool:
    try:
        verify_parts(fmt, parts)
    except Exception:  # NotClean, or a check that broke: either way not proven clean
        return False
    return True


@dataclass
class _Stretch:
    """Ranges of the input that keep their distance in the copy (`offset`, `size`), with our
    short boxes between them: (distance from the stretch's start, bytes)."""

    offset: int
    size: int
    start: int  # where it lands in the copy
    ours: list[tuple[int, bytes]] = field(default_factory=list)


def write_parts(source: int, out: int, parts: "list[mp4.Part]") -> None:
    """`parts` into the empty file `out`: our bytes written, ranges of `source` copied.

    Ranges that keep their distance in the copy, with only short boxes of ours between them
    (the 'free' and 'mdat' headers `mp4._media` puts in place of a removed sample, a fragment's
    new 'moof'), are copied as one range, which XFS or btrfs share in one call instead of one a
    run (about 25 us each); then the blocks that hold our boxes are written over, whole, so
    that nothing is read back. The input's bytes between the ranges (a removed sample, an old
    box) are in the copy only between the two steps, before it has a name, and `check_written`
    then reads what is there."""
    items = _stretches(parts)
    if any(not isinstance(item, bytes) and item.ours for item in items):
        _copy_on_write_by_block(out)
    for item in items:
        if isinstance(item, bytes):
            cli_files.write_bytes(out, item)
            continue
        copy_range(source, out, item.offset, item.size)
        for at, length, boxes in _blocks(item):
            block = bytearray(os.pread(source, length, item.offset + at - item.start))
            if len(block) != length:
                raise OSError(errno.EIO, "the file got shorter while it was read")
            for place, ours in boxes:
                block[place : place + len(ours)] = ours
            os.pwrite(out, block, at)


def _copy_on_write_by_block(out: int) -> None:
    """On XFS, make a write into a shared block copy that block alone: by default it sets aside
    32 (its copy-on-write extent size hint), which for a clip with a removed sample a second
    was 66 MB more on the disk (for half an hour, until XFS gives back what it set aside).
    Elsewhere the ioctl fails or does nothing, and that is fine."""
    try:
        attributes = bytearray(fcntl.ioctl(out, _FS_IOC_FSGETXATTR, bytes(_FSXATTR_SIZE)))
        (flags,) = struct.unpack_from("=I", attributes, 0)
        struct.pack_into("=I", attributes, 0, flags | _FS_XFLAG_COWEXTSIZE)
        struct.pack_into("=I", attributes, 16, ALIGN)  # fsx_cowextsize, in bytes
        fcntl.ioctl(out, _FS_IOC_FSSETXATTR, bytes(attributes))
    except OSError:
        pass


def _stretches(parts: "list[mp4.Part]") -> "list[bytes | _Stretch]":
    """`parts` with ranges joined into stretches where they may be (`write_parts`)."""
    items: list[bytes | _Stretch] = []
    pos, held, waiting = 0, None, []  # waiting: our bytes since the held stretch's last range
    for part in parts:
        if isinstance(part, bytes):
            waiting.append((pos, part))
            pos += len(part)
            continue
        offset, size = part
        between = sum(len(ours) for _, ours in waiting)
        if held and offset - held.offset == pos - held.start and between <= _BRIDGE:
            held.ours.extend((at - held.start, ours) for at, ours in waiting)
            held.size = offset + size - held.offset
        else:
            items.extend([held] if held else [])
            items.extend(ours for _, ours in waiting)
            held = _Stretch(offset, size, pos)
        waiting = []
        pos += size
    items.extend([held] if held else [])
    items.extend(ours for _, ours in waiting)
    return items


def _blocks(stretch: _Stretch) -> list[tuple[int, int, list[tuple[int, bytes]]]]:
    """The whole blocks (`ALIGN`) of the copy that hold our boxes in `stretch`, neighbours
    joined, cut to the stretch: (position, length, each box's place in them and bytes)."""
    start, end = stretch.start, stretch.start + stretch.size
    blocks: list[tuple[int, int, list[tuple[int, bytes]]]] = []
    for distance, ours in stretch.ours:
        at = start + distance
        first = max(at // ALIGN * ALIGN, start)
        last = min(-(-(at + len(ours)) // ALIGN) * ALIGN, end)
        boxes: list[tuple[int, bytes]] = []
        if blocks and first <= blocks[-1][0] + blocks[-1][1]:
            first, _, boxes = blocks.pop()
        boxes.append((at - first, ours))
        blocks.append((first, last - first, boxes))
    return blocks


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


def check_written(out: int, parts: "list[mp4.Part]") -> None:
    """NotClean unless the file has the size of `parts` and holds each of our parts' bytes at
    its place (read back a part at a time; the ranges are the input's samples)."""
    if os.fstat(out).st_size != size_of(parts):
        raise NotClean
    pos = 0
    for part in parts:
        if isinstance(part, bytes):
            if os.pread(out, len(part), pos) != part:
                raise NotClean
            pos += len(part)
        else:
            pos += part[1]
