"""GIF (87a and 89a, still and animated): a screen descriptor, then frames and extensions.

What a GIF can carry besides pixels:
- comment extensions (free text: software, captions, scanner and camera notes);
- plain text extensions: text meant to be drawn over the picture, which no browser or phone
  draws, so in practice it is text nobody sees;
- application extensions: XMP ("XMP DataXMP"), ImageMagick IPTC and 8BIM profiles, anything a
  tool chose to store; unknown extension labels;
- data after the trailer.

How we remove it: write a new stream from the parsed fields: the header and screen descriptor
(table size and background index only with a global table, aspect ratio 0), the colour tables
cut to the entries an index can reach (LZW code size, transparent and background index), one
looping extension (sub-block 1, loop count) if it came before the first frame, every frame
(image descriptor with reserved bits 0, local colour table, LZW data re-split into 255-byte
sub-blocks) with its graphic control extension at its 4 bytes (reserved bits 0, transparent
index 0 unless used), the ICC profile extension rebuilt from the profile with only its colour
data (`bot.formats.icc`; dropped when it holds nothing valid), and drop everything else. Every
sub-block chain is walked with bounds; nothing is decompressed (THREAT_MODEL.md: what may hide
in the LZW data and in colour table entries no pixel uses).
"""

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from bot.errors import DamagedImage, TooLarge
from bot.formats import icc
from bot.formats.base import Block, BlockKind, Format, Parsed, need

HEADERS = (b"GIF87a", b"GIF89a")
SCREEN_END = 13  # header (6) + logical screen descriptor (7)
REPORT_LIMIT = 1024 * 1024  # payload bytes we collect to report one dropped extension
MAX_SUB_BLOCKS = 2_000_000  # encoders write 255-byte blocks: 200,000 for a 50 MB file
MAX_PARTS = 1_000_000  # frames and extensions; bounds the walk on hostile files
IMAGE, EXTENSION, TRAILER = 0x2C, 0x21, 0x3B
GRAPHIC_CONTROL, PLAIN_TEXT, COMMENT, APPLICATION = 0xF9, 0x01, 0xFE, 0xFF
LOOPING_APPS = frozenset({b"NETSCAPE2.0", b"ANIMEXTS1.0"})
ICC_APP = b"ICCRGBG1012"
XMP_APP = b"XMP DataXMP"
# Application identifiers whose payload we can name; the rest are reported as OTHER.
APP_KINDS = {
    XMP_APP: BlockKind.XMP,
    b"MGKIPTC0000": BlockKind.IPTC,
    b"MGK8BIM0000": BlockKind.PHOTOSHOP,
}
XMP_TRAILER_START = b"\x01\xff\xfe\xfd"  # the "magic trailer" that lets decoders skip XMP


@dataclass(frozen=True)
class Part:
    """One top-level piece of the stream, from its introducer to the end of its sub-blocks."""

    start: int
    end: int
    label: int  # IMAGE, TRAILER, or the extension label
    app: bytes = b""  # application identifier (8 + 3 bytes) of an application extension
    payload_start: int = 0  # where the sub-blocks carrying the payload begin

    @property
    def kept(self) -> bool:
        if self.label in (IMAGE, GRAPHIC_CONTROL):
            return True
        return self.label == APPLICATION and (self.app in LOOPING_APPS or self.app == ICC_APP)


def parse(data: bytes) -> Parsed:
    """Walk the stream (bounded), check every frame fits the limits, list the dropped blocks."""
    width, height = _screen(data)
    parts = list(_parts(data))
    frames = [part for part in parts if part.label == IMAGE]
    if not frames:
        raise DamagedImage("The GIF has no picture in it.")
    # Pillow grows the canvas to fit frames that overflow the screen, so count those pixels too.
    for frame in frames:
        left, top, w, h = struct.unpack_from("<4H", data, frame.start + 1)
        width, height = max(width, left + w), max(height, top + h)
    blocks = [block for part in parts if (block := _block(data, part)) is not None]
    end = parts[-1].end
    if end < len(data):
        blocks.append(Block(BlockKind.MEDIA, "data after the GIF end", data[end:]))
    return Parsed(width, height, tuple(blocks), frames=len(frames))


def strip(data: bytes, parsed: Parsed) -> bytes:
    """A new stream from the parsed fields: screen, loop count, frames with their timing."""
    frames = list(_frames(data))
    reach = [bits for frame, bits in frames if not data[frame.image.start + 9] & 0x80]
    out = [_screen_descriptor(data, max(reach, default=8))]
    looped = False
    profile = _icc_extension(parsed)
    for frame, bits in frames:
        for part in frame.before:
            if part.app in LOOPING_APPS and frame is frames[0][0] and not looped:
                looped = True  # read before the first frame only; at most one
                out.append(_loop(data, part))
            elif part.app == ICC_APP and part.label == APPLICATION:
                out.append(profile)
                profile = b""  # one profile, where the first one was
        if frame.timing is not None:
            out.append(_graphic_control(data, frame.timing))
        out.extend(_frame(data, frame.image, bits))
    out.append(bytes([TRAILER]))
    return b"".join(out)


@dataclass(frozen=True)
class _Frame:
    before: list[Part]  # the extensions since the previous frame, timing block aside
    timing: Part | None  # its graphic control extension
    image: Part


def _frames(data: bytes) -> Iterator[tuple[_Frame, int]]:
    """Every frame with the index bits it can reach: its LZW code size, or more when its
    transparent index lies beyond (colour table entries past them are never shown)."""
    before: list[Part] = []
    timing: Part | None = None
    for part in _parts(data):
        if part.label == GRAPHIC_CONTROL:
            if timing is not None:
                raise DamagedImage("A GIF frame has two timing blocks.")
            timing = part
        elif part.label == IMAGE:
            bits = data[part.start + 10 + _table_size(data[part.start + 9])]
            if timing is not None and data[timing.start + 3] & 1:
                bits = max(bits, _bits(data[timing.start + 6]))
            yield _Frame(before, timing, part), bits
            before, timing = [], None
        else:
            before.append(part)


def _bits(index: int) -> int:
    """The fewest index bits (at least 1) that reach `index`."""
    return max(1, index.bit_length())


def _table(table: bytes, flags: int, bits: int) -> tuple[int, bytes]:
    """A colour table cut to the 2**bits entries indices can reach (never below 2 entries)."""
    size = flags & 7
    if bits <= size:
        size = bits - 1
    return (flags & ~7) | size, table[: 3 * 2 ** (size + 1)]


def _screen_descriptor(data: bytes, reach: int) -> bytes:
    """Header, logical screen descriptor and global colour table (cut to what the frames that
    use it and the background index reach); table size and background index only when there is
    a table (readers ignore them otherwise)."""
    width, height, flags, background = struct.unpack_from("<HHBB", data, 6)
    table = data[SCREEN_END : _stream_start(data)]
    if flags & 0x80:
        flags, table = _table(table, flags, max(reach, _bits(background)))
    else:
        flags, background = flags & 0x78, 0
    # The pixel aspect ratio is a hint no browser, phone or Pillow uses: written as 0.
    return data[:6] + struct.pack("<HHBBB", width, height, flags, background, 0) + table


def _graphic_control(data: bytes, part: Part) -> bytes:
    """The 4 fields of a graphic control extension: flags (reserved bits 0), delay and the
    transparent index (0 unless the transparency flag is set); later sub-blocks dropped."""
    flags, delay, index = struct.unpack_from("<BHB", data, part.start + 3)
    flags &= 0x1F
    return struct.pack(
        "<BBBBHBB", EXTENSION, GRAPHIC_CONTROL, 4, flags, delay, index * (flags & 1), 0
    )


def _loop(data: bytes, part: Part) -> bytes:
    """The looping extension: identifier, then sub-block 1 with the loop count."""
    at = part.payload_start
    count = data[at + 2 : at + 4] if data[at] >= 3 and data[at + 1] == 1 else b"\0\0"
    return bytes([EXTENSION, APPLICATION, 11]) + part.app + b"\x03\x01" + count + b"\0"


def _frame(data: bytes, part: Part, bits: int) -> list[bytes]:
    """Image descriptor (reserved bits 0, no table size without a table), local colour table
    cut to the entries `bits` reach, code size and the LZW data in 255-byte sub-blocks (how
    data is split can carry bits)."""
    left, top, width, height, flags = struct.unpack_from("<4HB", data, part.start + 1)
    code_size = part.start + 10 + _table_size(flags)
    table = data[part.start + 10 : code_size]
    if flags & 0x80:
        flags, table = _table(table, flags & 0xE7, bits)
    else:
        flags &= 0x60
    descriptor = struct.pack("<B4HB", IMAGE, left, top, width, height, flags)
    return [descriptor, table, *_lzw(data, code_size, part.end)]


def _lzw(data: bytes, code_size: int, end: int) -> list[bytes]:
    """The code size byte and the data sub-blocks; copied when already in 255-byte blocks."""
    start = code_size + 1
    sizes = data[start:end:256]  # the length bytes, if every block but the last holds 255
    last = sizes[-1]
    full = len(sizes) - 1
    if (
        sizes.count(255) == full
        and last != 255
        and end - start == 256 * full + last + 1 + bool(last)
    ):
        return [data[code_size:end]]
    payload = _sub_blocks(data, start, end, limit=end)
    pieces = [data[code_size : code_size + 1]]
    for at in range(0, len(payload), 255):
        piece = payload[at : at + 255]
        pieces += [bytes([len(piece)]), piece]
    return [*pieces, b"\0"]


def _icc_extension(parsed: Parsed) -> bytes:
    """The ICCRGBG1012 application extension holding the rebuilt profile, or nothing."""
    found = next((b.data for b in parsed.blocks if b.kind is BlockKind.ICC), None)
    profile = icc.clean(found) if found else None
    if not profile:
        return b""
    blocks = b"".join(
        bytes([len(piece)]) + piece
        for piece in (profile[i : i + 255] for i in range(0, len(profile), 255))
    )
    return bytes([EXTENSION, APPLICATION, 11]) + ICC_APP + blocks + b"\0"


def _screen(data: bytes) -> tuple[int, int]:
    need(data, SCREEN_END, "GIF header")
    if data[:6] not in HEADERS:
        raise DamagedImage("The GIF signature is broken.")
    width, height = struct.unpack_from("<HH", data, 6)
    if width == 0 or height == 0:
        raise DamagedImage("The GIF has no width or height.")
    return int(width), int(height)


def _stream_start(data: bytes) -> int:
    """Where the first frame or extension begins: after the global colour table, if any."""
    end = SCREEN_END + _table_size(data[10])
    need(data, end, "GIF colour table")
    return end


def _table_size(flags: int) -> int:
    return 3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0


class _Budget:
    """Sub-blocks still allowed in this file: tiny sub-blocks must not make the walk slow."""

    def __init__(self) -> None:
        self.left = MAX_SUB_BLOCKS


def _parts(data: bytes) -> Iterator[Part]:
    """Every frame and extension up to the trailer; raises DamagedImage when truncated."""
    pos = _stream_start(data)
    budget = _Budget()
    for _ in range(MAX_PARTS):
        need(data, pos + 1, "GIF frames")
        introducer = data[pos]
        if introducer == TRAILER:
            yield Part(pos, pos + 1, TRAILER)
            return
        if introducer == IMAGE:
            part = _image(data, pos, budget)
        elif introducer == EXTENSION:
            part = _extension(data, pos, budget)
        else:
            raise DamagedImage("The GIF has an unknown kind of block.")
        yield part
        pos = part.end
    raise TooLarge("The GIF has too many frames to handle safely.")


def _image(data: bytes, pos: int, budget: _Budget) -> Part:
    """Image descriptor (10 bytes), local colour table, LZW code size, then the data sub-blocks."""
    need(data, pos + 10, "GIF frame header")
    table_end = pos + 10 + _table_size(data[pos + 9])
    need(data, table_end + 1, "GIF frame")
    if not 1 <= data[table_end] <= 12:
        raise DamagedImage("A GIF frame has an impossible code size.")
    return Part(pos, _sub_blocks_end(data, table_end + 1, budget), IMAGE)


def _extension(data: bytes, pos: int, budget: _Budget) -> Part:
    """Introducer, label, then sub-blocks; an application's first sub-block is its identifier."""
    need(data, pos + 2, "GIF extension")
    label = data[pos + 1]
    end = _sub_blocks_end(data, pos + 2, budget)
    if label == GRAPHIC_CONTROL and data[pos + 2] < 4:
        # Readers take the 4 fields from the first sub-block (we write nothing else).
        raise DamagedImage("A GIF frame's timing block is broken.")
    if label != APPLICATION or data[pos + 2] != 11:
        return Part(pos, end, label, payload_start=pos + 2)
    return Part(pos, end, label, app=data[pos + 3 : pos + 14], payload_start=pos + 14)


def _sub_blocks_end(data: bytes, pos: int, budget: _Budget) -> int:
    """Offset just past the zero-length block that ends a sub-block chain."""
    end, left = len(data), budget.left
    while pos < end:  # the hot loop on big files: kept minimal
        size = data[pos]
        if size == 0:
            budget.left = left
            return pos + 1
        left -= 1
        if left < 0:
            raise TooLarge("The GIF is split into too many pieces to handle safely.")
        pos += 1 + size
    raise DamagedImage("The file ends in the middle of its GIF data blocks, so it is incomplete.")


def _sub_blocks(data: bytes, start: int, end: int, limit: int = REPORT_LIMIT) -> bytes:
    """The payload of a sub-block chain without its length bytes, cut at `limit`."""
    out = bytearray()
    pos = start
    while pos < end and data[pos] and len(out) < limit:
        out += data[pos + 1 : pos + 1 + data[pos]]
        pos += 1 + data[pos]
    return bytes(out[:limit])


def _block(data: bytes, part: Part) -> Block | None:
    """What a part holds, if it is metadata (the ICC profile is reported and kept)."""
    if part.label in (IMAGE, TRAILER, GRAPHIC_CONTROL) or part.app in LOOPING_APPS:
        return None
    if part.label == COMMENT:
        return Block(
            BlockKind.COMMENT, "GIF comment", _sub_blocks(data, part.payload_start, part.end)
        )
    if part.label == PLAIN_TEXT:  # the first sub-block is the 12-byte text grid, then the text
        text = _sub_blocks(data, part.payload_start + 13, part.end)
        return Block(BlockKind.COMMENT, "GIF plain text", text)
    if part.label != APPLICATION:
        return Block(BlockKind.OTHER, f"GIF extension 0x{part.label:02X}")
    name = f"GIF application extension '{part.app.decode('ascii', 'replace')}'"
    if part.app == ICC_APP:
        profile = _sub_blocks(data, part.payload_start, part.end, icc.MAX_PROFILE)  # whole
        return Block(BlockKind.ICC, name, profile)
    if part.app == XMP_APP:
        raw = data[part.payload_start : min(part.end - 1, part.payload_start + REPORT_LIMIT)]
        return Block(BlockKind.XMP, name, _xmp(raw))
    payload = _sub_blocks(data, part.payload_start, part.end)
    return Block(APP_KINDS.get(part.app, BlockKind.OTHER), name, payload)


def _xmp(raw: bytes) -> bytes:
    """XMP is stored raw (its bytes double as sub-block lengths), followed by a magic trailer."""
    cut = raw.rfind(XMP_TRAILER_START)
    return raw[:cut] if cut >= 0 else raw


def accepts(head: bytes) -> bool:
    return head[:6] in HEADERS


FORMAT = Format("gif", "image/gif", "gif", parse, strip, accepts=accepts)
