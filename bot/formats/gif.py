"""GIF (87a and 89a, still and animated): a screen descriptor, then frames and extensions.

What a GIF can carry besides pixels:
- comment extensions (free text: software, captions, scanner and camera notes);
- plain text extensions: text meant to be drawn over the picture, which no browser or phone
  draws, so in practice it is text nobody sees;
- application extensions: XMP ("XMP DataXMP"), ImageMagick IPTC and 8BIM profiles, anything a
  tool chose to store; unknown extension labels;
- data after the trailer.

How we remove it: copy the header, screen descriptor and colour table, every frame (image
descriptor, colour table and LZW data) with its graphic control extension and the looping
extension byte for byte, rebuild the ICC profile extension from the profile with only its
colour data (`bot.formats.icc`; dropped when it holds nothing valid), and drop everything
else. Every sub-block chain is walked with bounds; nothing is decompressed.
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
    """The header, screen and colour table, then only the kept parts, then the trailer."""
    out = [data[: _stream_start(data)]]
    profile = _icc_extension(parsed)
    for part in _parts(data):
        if part.app == ICC_APP and part.label == APPLICATION:
            out.append(profile)
            profile = b""  # one profile, where the first one was
        elif part.kept:
            out.append(data[part.start : part.end])
    out.append(bytes([TRAILER]))
    return b"".join(out)


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
    if label == GRAPHIC_CONTROL and (data[pos + 2] != 4 or end != pos + 8):
        # We copy it unchanged, so it must be exactly its 4 bytes: no room for hidden data.
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
