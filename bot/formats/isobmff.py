"""isobmff: the generic box reader and writer of the ISO base media file format (ISO/IEC 14496-12).

HEIF/HEIC/AVIF pictures and MP4/MOV videos are trees of boxes. This module knows only how boxes
are framed, not what they mean:

    box_at(data, pos, end)          one box header: 32-bit size, 64-bit 'largesize' (size 1),
                                    size 0 = "to the end of the enclosing range", 'uuid' type
    walk(data, start, end, budget)  the boxes laid end to end in [start, end), one at a time
    boxes(data, start, end, budget) the same as a list
    full_box(data, box)             version, flags and a bounded `Reader` after them
    box(kind, body), full(kind, version, flags, body), free(size)   the writers

and the sample tables of a track ('stbl', ISO/IEC 14496-12 8.5-8.7), read bounded:

    sample_ranges(data, stbl children, limit, budget)   where each sample lies (stsz/stsc/stco)
    pairs(...) for stts/ctts, numbers(...) for stss, edit_list(...) for edts/elst
    table(kind, version, rows), sized(value)            their writers

Every read is bounded: a `Reader` never reads outside its box, and one `Budget` counts the boxes
of a whole file so hostile nesting cannot make a walk run forever. Damage raises `DamagedImage`.
"""

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bot.errors import DamagedImage

MAX_BOXES = 20_000  # boxes read in one file; an iPhone photo has a few hundred

# Major brands of the videos `bot.formats.mp4` cleans (one list: `heif` names these files
# videos when it refuses them, and HEIF/AVIF brands go to `heif`).
VIDEO_BRANDS = frozenset(
    {
        b"qt  ",
        b"isom",
        b"isml",  # Smooth Streaming (fragmented, '-f ismv')
        b"iso2",
        b"iso3",
        b"iso4",
        b"iso5",
        b"iso6",
        b"iso7",
        b"iso8",
        b"iso9",
        b"dash",  # DASH segments and some recorders' fragmented files
        b"mp41",
        b"mp42",
        b"avc1",
        b"M4V ",
        b"M4VH",
        b"M4VP",
        b"mmp4",
        b"MSNV",
        b"XAVC",
        b"NDAS",
        b"f4v ",
        b"F4V ",
        b"mp71",
        b"3gp4",
        b"3gp5",
        b"3gp6",
        b"3gp7",
        b"3gp8",
        b"3gp9",
        b"3g2a",
        b"3g2b",
        b"3g2c",
        b"3gs6",
        b"3gs7",
        b"3ge6",
        b"3ge7",
        b"3gg6",
    }
)
_MAX_32 = 0xFFFFFFFF


@dataclass(frozen=True)
class Box:
    """Where one box lies in the file: [start, end), its payload from `body`."""

    type: bytes
    start: int
    body: int  # first byte after the header (and after the extended type of a 'uuid')
    end: int

    def size(self) -> int:
        return self.end - self.start


def truncated(label: str) -> DamagedImage:
    return DamagedImage(f"The file ends in the middle of its {label} boxes, so it is incomplete.")


class Budget:
    """Counts boxes across the whole file so hostile nesting cannot make us read forever."""

    def __init__(self, label: str = "ISO media", limit: int = MAX_BOXES) -> None:
        self.label, self.limit, self.boxes = label, limit, 0

    def spend(self) -> None:
        self.boxes += 1
        if self.boxes > self.limit:
            raise DamagedImage(f"The {self.label} file has too many boxes to be a photo or video.")


class Reader:
    """Big-endian fields inside [pos, end) of one box body; reading past `end` is damage."""

    def __init__(self, data: bytes, pos: int, end: int, label: str = "ISO media") -> None:
        self.data, self.pos, self.end, self.label = data, pos, end, label

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > self.end:
            raise truncated(self.label)
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def uint(self, size: int) -> int:
        pos = self.pos
        if size < 0 or pos + size > self.end:
            raise truncated(self.label)
        self.pos = pos + size
        return int.from_bytes(self.data[pos : pos + size], "big")

    def string(self) -> bytes:
        """A NUL-terminated string; one that runs to the end of the box is taken as is."""
        stop = self.data.find(b"\0", self.pos, self.end)
        text = self.take((self.end if stop < 0 else stop) - self.pos)
        if stop >= 0:
            self.pos += 1
        return text

    def left(self) -> int:
        return self.end - self.pos

    def rest(self) -> bytes:
        return self.take(self.left())


def box_at(data: bytes, pos: int, end: int, label: str = "ISO media") -> Box:
    """The box whose header starts at `pos`, which must end by `end`."""
    if pos + 8 > end:
        raise truncated(label)
    size, kind = struct.unpack_from(">I4s", data, pos)
    header = 8
    if size == 1:
        if pos + 16 > end:
            raise truncated(label)
        size = struct.unpack_from(">Q", data, pos + 8)[0]
        header = 16
    elif size == 0:
        size = end - pos
    if kind == b"uuid":
        header += 16
    if size < header or pos + size > end:
        raise truncated(label)
    return Box(kind, pos, pos + header, pos + size)


def walk(data: bytes, start: int, end: int, budget: Budget) -> Iterator[Box]:
    """The boxes laid end to end in [start, end), read lazily (a caller may stop early)."""
    pos = start
    while pos < end:
        budget.spend()
        found = box_at(data, pos, end, budget.label)
        yield found
        pos = found.end


def boxes(data: bytes, start: int, end: int, budget: Budget) -> list[Box]:
    """The boxes laid end to end in [start, end); nesting is walked only where a caller asks."""
    return list(walk(data, start, end, budget))


def children(data: bytes, parent: Box, budget: Budget) -> list[Box]:
    return boxes(data, parent.body, parent.end, budget)


def full_box(data: bytes, box: Box, label: str = "ISO media") -> tuple[int, int, Reader]:
    """Version, flags and a reader positioned after them."""
    reader = Reader(data, box.body, box.end, label)
    head = reader.uint(4)
    return head >> 24, head & 0xFFFFFF, reader


def uuid_of(data: bytes, box: Box) -> bytes:
    """The extended type of a 'uuid' box (the 16 bytes before its payload)."""
    return data[box.body - 16 : box.body] if box.type == b"uuid" else b""


def one(found: Iterable[Box], kind: bytes) -> Box | None:
    """The only box of `kind`, None if there is none; two of them are damage."""
    matches = [box for box in found if box.type == kind]
    if len(matches) > 1:
        raise DamagedImage(f"The file is damaged (more than one '{name(kind)}' box).")
    return matches[0] if matches else None


def name(kind: bytes) -> str:
    """A box type as printable text (for messages)."""
    return "".join(chr(b) if 32 <= b < 127 else "?" for b in kind)


# --- writing ------------------------------------------------------------------------------------


def box(kind: bytes, body: bytes) -> bytes:
    """A box with a 32-bit size, or a 64-bit 'largesize' when the body needs it."""
    if 8 + len(body) > _MAX_32:
        return struct.pack(">I4sQ", 1, kind, 16 + len(body)) + body
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full(kind: bytes, version: int, flags: int, body: bytes) -> bytes:
    """A full box: one byte of version and three of flags before `body`."""
    return box(kind, struct.pack(">I", (version << 24) | (flags & 0xFFFFFF)) + body)


def free(size: int) -> bytes:
    """A zero-filled 'free' box of exactly `size` bytes (at least 8)."""
    if size < 8 or size > _MAX_32:
        raise ValueError("a free box needs 8 to 2**32-1 bytes")
    return struct.pack(">I4s", size, b"free") + bytes(size - 8)


# --- sample tables ------------------------------------------------------------------------------

IDENTITY = struct.pack(">9i", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)  # a unit matrix


def quarter_turns(matrix: bytes, width: int, height: int) -> bytes:
    """The track matrix when it turns or mirrors the picture by quarter turns (its translation
    zero or the picture's width or height), else the identity: no other numbers survive."""
    a, b, u, c, d, v, x, y, w = struct.unpack(">9i", matrix)
    units = (0, 0x10000, -0x10000)
    turns = a in units and b in units and c in units and d in units and (a == 0) == (d == 0)
    turns = turns and (a == 0) != (b == 0) and (b == 0) == (c == 0)
    shifts = (0, width, height)
    if turns and u == v == 0 and w == 0x40000000 and x in shifts and y in shifts:
        return matrix
    return IDENTITY


def damaged(label: str, what: str) -> DamagedImage:
    return DamagedImage(f"The {label} file is damaged ({what}).")


def _only(found: Iterable[Box], kind: bytes, label: str) -> Box | None:
    matches = [box for box in found if box.type == kind]
    if len(matches) > 1:
        raise damaged(label, f"more than one '{name(kind)}' box")
    return matches[0] if matches else None


def edit_list(
    data: bytes, edts: Box | None, budget: Budget
) -> tuple[list[tuple[int, int, int]], int]:
    """(segment duration, media time, media rate) of each edit, and the 'elst' flags."""
    found = boxes(data, edts.body, edts.end, budget) if edts else []
    elst = _only(found, b"elst", budget.label)
    if elst is None:
        return [], 0
    version, flags, reader = full_box(data, elst, budget.label)
    size = 8 if version == 1 else 4
    count = reader.uint(4)
    if count * (2 * size + 4) > reader.left():
        raise truncated(budget.label)
    edits = []
    for _ in range(count):
        duration = reader.uint(size)
        time = int.from_bytes(reader.take(size), "big", signed=True)
        edits.append((duration, time, reader.uint(4)))
    return edits, flags & 1


def pairs(
    data: bytes, box: Box | None, label: str, signed: bool = False
) -> list[tuple[int, int]] | None:
    """The (count, value) rows of 'stts' or 'ctts' (signed values in a version 1 'ctts')."""
    if box is None:
        return None
    version, _, reader = full_box(data, box, label)
    count = reader.uint(4)
    if count * 8 > reader.left():
        raise truncated(label)
    signed = signed and version == 1
    return [
        (reader.uint(4), int.from_bytes(reader.take(4), "big", signed=signed))
        for _ in range(count)
    ]


def numbers(data: bytes, box: Box | None, label: str) -> list[int] | None:
    """The 32-bit entries of a counted table such as 'stss'."""
    if box is None:
        return None
    _, _, reader = full_box(data, box, label)
    count = reader.uint(4)
    if count * 4 > reader.left():
        raise truncated(label)
    return [reader.uint(4) for _ in range(count)]


def sample_ranges(
    data: bytes, table: list[Box], limit: int, budget: Budget
) -> list[tuple[int, int]] | None:
    """Absolute (start, end) of every sample, from 'stsz', 'stsc' and 'stco'/'co64'; None when
    the track has no such plain tables (compact sizes, fragments)."""
    label = budget.label
    stsz, stsc = _only(table, b"stsz", label), _only(table, b"stsc", label)
    stco, co64 = _only(table, b"stco", label), _only(table, b"co64", label)
    chunks_box = stco or co64
    if stsz is None or stsc is None or chunks_box is None:
        return None
    _, _, reader = full_box(data, stsz, label)
    constant, count = reader.uint(4), reader.uint(4)
    if count > limit or (not constant and count * 4 > reader.left()):
        raise damaged(label, "too many samples")
    sizes = [constant] * count if constant else [reader.uint(4) for _ in range(count)]
    _, _, reader = full_box(data, chunks_box, label)
    chunk_count = reader.uint(4)
    width = 8 if co64 else 4
    if chunk_count > limit or chunk_count * width > reader.left():
        raise damaged(label, "too many chunks")
    chunks = [reader.uint(width) for _ in range(chunk_count)]
    runs = _chunk_runs(data, stsc, limit, label)
    out: list[tuple[int, int]] = []
    for index, (first, per_chunk, _) in enumerate(runs):
        last = runs[index + 1][0] - 1 if index + 1 < len(runs) else chunk_count
        if first < 1 or last > chunk_count:
            raise damaged(label, "the sample-to-chunk table points outside the chunks")
        for chunk in range(first, last + 1):
            pos = chunks[chunk - 1]
            for _ in range(per_chunk):
                if len(out) >= len(sizes):
                    raise damaged(label, "more samples in chunks than sizes")
                size = sizes[len(out)]
                if pos + size > len(data):
                    raise truncated(label)
                out.append((pos, pos + size))
                pos += size
    if len(out) != len(sizes):
        raise damaged(label, "the chunks do not hold every sample")
    return out


def _chunk_runs(data: bytes, box: Box, limit: int, label: str) -> list[tuple[int, int, int]]:
    """The 'stsc' rows (first chunk, samples per chunk, description index), in order."""
    _, _, reader = full_box(data, box, label)
    count = reader.uint(4)
    if count * 12 > reader.left() or count > limit:
        raise truncated(label)
    runs = [(reader.uint(4), reader.uint(4), reader.uint(4)) for _ in range(count)]
    if any(runs[i][0] >= runs[i + 1][0] for i in range(len(runs) - 1)):
        raise damaged(label, "the sample-to-chunk table is out of order")
    return runs


def sized(value: int) -> tuple[int, bytes]:
    """A full box version (0 or 1) and `value` written at the width that version gives."""
    wide = value > 0xFFFFFFFF
    return (1 if wide else 0), value.to_bytes(8 if wide else 4, "big")


def table(kind: bytes, version: int, rows: list[bytes]) -> bytes:
    """A counted table full box: entry count, then the rows as written."""
    return full(kind, version, 0, struct.pack(">I", len(rows)) + b"".join(rows))
