"""WebP (lossy VP8, lossless VP8L, extended VP8X, animated): a RIFF container of chunks.

What a WebP can carry besides pixels:
- an EXIF chunk (GPS, camera, serials, dates, thumbnails), with or without an "Exif\\0\\0" prefix;
- an XMP chunk ("XMP "): the XMP packet;
- unknown chunks, at the top level or inside animation frames, and data after the RIFF end.

How we remove it: rebuild the ICCP profile with only its colour data (`bot.formats.icc`;
dropped, with its VP8X flag, when it holds nothing valid), copy VP8X, ANIM, ALPH, VP8 and VP8L
chunks byte for byte, rebuild each
ANMF frame from its header and image chunks, drop everything else, then fix the VP8X flags and the
RIFF size. When an extended file's EXIF orientation was not 1 we write an EXIF chunk holding
only the orientation and keep the VP8X EXIF flag set.
"""

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from bot.errors import DamagedImage, TooLarge
from bot.formats import icc
from bot.formats.base import Block, BlockKind, Format, Parsed, need
from bot.metadata import exif

MAX_CHUNKS = 100_000  # a long animation has a few thousand frames
FRAME_HEADER = 16  # ANMF: x, y, width - 1, height - 1, duration (24 bits each) and flags
EXIF_FLAG, XMP_FLAG = 0x08, 0x04  # VP8X flags we rewrite; ICC, alpha and animation stay
ICC_FLAG = 0x20  # cleared when the profile is dropped
KEPT = frozenset({b"VP8X", b"ICCP", b"ANIM", b"ALPH", b"VP8 ", b"VP8L"})
FRAME_KEPT = frozenset({b"ALPH", b"VP8 ", b"VP8L"})  # the image chunks inside an ANMF frame
XMP_CHUNKS = frozenset({b"XMP ", b"XMP\0"})  # the second is written by some tools
VP8_START_CODE = b"\x9d\x01\x2a"
VP8L_SIGNATURE = 0x2F


@dataclass(frozen=True)
class Chunk:
    fourcc: bytes
    start: int  # offset of the fourcc
    end: int  # offset past the payload and its pad byte

    @property
    def payload_start(self) -> int:
        return self.start + 8

    def payload(self, data: bytes) -> bytes:
        (size,) = struct.unpack_from("<I", data, self.start + 4)
        return data[self.start + 8 : self.start + 8 + size]


def parse(data: bytes) -> Parsed:
    """Walk the chunks (bounded), read the canvas size and list every dropped chunk."""
    riff_end = _riff_end(data)
    chunks = list(_chunks(data, 12, riff_end))
    width, height = _size(data, chunks)
    blocks = [block for chunk in chunks for block in _blocks(data, chunk)]
    if riff_end < len(data):
        blocks.append(Block(BlockKind.MEDIA, "data after the WebP end", data[riff_end:]))
    frames = sum(1 for chunk in chunks if chunk.fourcc == b"ANMF")
    return Parsed(width, height, tuple(blocks), frames=max(1, frames))


def strip(data: bytes, parsed: Parsed) -> bytes:
    """Kept chunks, rebuilt frames, an orientation-only EXIF if needed, fixed flags and size."""
    chunks = list(_chunks(data, 12, _riff_end(data)))
    # Only an extended file carries EXIF: readers ignore chunks after a simple file's bitstream.
    rotation = _orientation(parsed) if chunks[0].fourcc == b"VP8X" else 1
    body: list[bytes] = []
    found = next((b.data for b in parsed.blocks if b.kind is BlockKind.ICC), None)
    profile = icc.clean(found) if found else None
    for chunk in chunks:
        if chunk.fourcc == b"VP8X":
            body.append(_vp8x(data, chunk, rotation != 1, profile is not None))
        elif chunk.fourcc == b"ICCP":
            if profile:
                body.append(_chunk(b"ICCP", profile))
            profile = b""  # one profile, where the first ICCP was
        elif chunk.fourcc == b"ANMF":
            body.append(_frame(data, chunk))
        elif chunk.fourcc in KEPT:
            body.append(data[chunk.start : chunk.end])
    if rotation != 1:
        body.append(_chunk(b"EXIF", exif.minimal(rotation)))
    riff = b"WEBP" + b"".join(body)
    return b"RIFF" + struct.pack("<I", len(riff)) + riff


def _riff_end(data: bytes) -> int:
    need(data, 12, "WebP header")
    (size,) = struct.unpack_from("<I", data, 4)
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or size < 4:
        raise DamagedImage("The WebP header is broken.")
    need(data, 8 + size, "WebP data")
    return 8 + int(size)


def _chunks(data: bytes, pos: int, end: int) -> Iterator[Chunk]:
    """Every chunk from `pos` to `end`; each must fit, padding included."""
    for _ in range(MAX_CHUNKS):
        if pos == end:
            return
        if pos + 8 > end:
            raise DamagedImage(
                "The file ends in the middle of its WebP chunks, so it is incomplete."
            )
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        chunk_end = pos + 8 + size + (size & 1)
        if chunk_end > end:
            raise DamagedImage("A WebP chunk runs past the end of the file.")
        yield Chunk(fourcc, pos, chunk_end)
        pos = chunk_end
    raise TooLarge("The WebP has too many parts to handle safely.")


def _size(data: bytes, chunks: list[Chunk]) -> tuple[int, int]:
    """Canvas size from VP8X, or from the bitstream header of a simple file."""
    if not chunks:
        raise DamagedImage("The WebP has no picture in it.")
    first = chunks[0]
    if any(chunk.fourcc == b"VP8X" for chunk in chunks[1:]):
        raise DamagedImage("The WebP has its header chunk in the wrong place.")
    payload = first.payload(data)
    if first.fourcc == b"VP8X":
        if len(payload) < 10:
            raise DamagedImage("The WebP header chunk is broken.")
        width, height = _u24(payload, 4) + 1, _u24(payload, 7) + 1
        if not any(chunk.fourcc in (b"VP8 ", b"VP8L", b"ANMF") for chunk in chunks):
            raise DamagedImage("The WebP has no picture in it.")
        return width, height
    return _bitstream_size(first.fourcc, payload)


def _bitstream_size(fourcc: bytes, payload: bytes) -> tuple[int, int]:
    if fourcc == b"VP8 " and len(payload) >= 10 and payload[3:6] == VP8_START_CODE:
        width, height = struct.unpack_from("<HH", payload, 6)
        return width & 0x3FFF, height & 0x3FFF
    if fourcc == b"VP8L" and len(payload) >= 5 and payload[0] == VP8L_SIGNATURE:
        (bits,) = struct.unpack_from("<I", payload, 1)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise DamagedImage("The WebP picture header is broken.")


def _blocks(data: bytes, chunk: Chunk) -> Iterator[Block]:
    fourcc = chunk.fourcc
    name = f"WebP {_shown(fourcc)} chunk"
    if fourcc == b"ICCP":
        yield Block(BlockKind.ICC, name, chunk.payload(data))
    elif fourcc == b"EXIF":
        yield Block(BlockKind.EXIF, name, exif.strip_header(chunk.payload(data)))
    elif fourcc in XMP_CHUNKS:
        yield Block(BlockKind.XMP, name, chunk.payload(data))
    elif fourcc == b"ANMF":
        yield from _frame_blocks(data, chunk)
    elif fourcc not in KEPT:
        yield Block(BlockKind.OTHER, name, chunk.payload(data))


def _frame_chunks(data: bytes, chunk: Chunk) -> Iterator[Chunk]:
    size = len(chunk.payload(data))
    if size < FRAME_HEADER:
        raise DamagedImage("A WebP animation frame is broken.")
    end = chunk.payload_start + size
    return _chunks(data, chunk.payload_start + FRAME_HEADER, end)


def _frame_blocks(data: bytes, chunk: Chunk) -> Iterator[Block]:
    """Unknown chunks inside an animation frame are dropped like top-level ones."""
    for inner in _frame_chunks(data, chunk):
        if inner.fourcc not in FRAME_KEPT:
            name = f"WebP {_shown(inner.fourcc)} chunk in a frame"
            yield Block(BlockKind.OTHER, name, inner.payload(data))


def _frame(data: bytes, chunk: Chunk) -> bytes:
    """An ANMF chunk with only its header and image chunks."""
    header = data[chunk.payload_start : chunk.payload_start + FRAME_HEADER]
    inner = [data[c.start : c.end] for c in _frame_chunks(data, chunk) if c.fourcc in FRAME_KEPT]
    return _chunk(b"ANMF", header + b"".join(inner))


def _vp8x(data: bytes, chunk: Chunk, with_exif: bool, with_icc: bool = True) -> bytes:
    """The VP8X chunk with the XMP flag cleared and the EXIF flag set only for orientation."""
    payload = bytearray(chunk.payload(data))
    payload[0] &= ~(EXIF_FLAG | XMP_FLAG | (0 if with_icc else ICC_FLAG)) & 0xFF
    if with_exif:
        payload[0] |= EXIF_FLAG
    return _chunk(b"VP8X", bytes(payload))


def _orientation(parsed: Parsed) -> int:
    for block in parsed.blocks:
        if block.kind is BlockKind.EXIF:
            return exif.orientation(block.data)
    return 1


def _shown(fourcc: bytes) -> str:
    """A chunk name safe to show: printable ASCII only, padding removed."""
    return "".join(chr(c) if 0x21 <= c < 0x7F else "" for c in fourcc) or "unnamed"


def _u24(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 3], "little")


def _chunk(fourcc: bytes, payload: bytes) -> bytes:
    pad = b"\0" if len(payload) & 1 else b""
    return fourcc + struct.pack("<I", len(payload)) + payload + pad


def accepts(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


FORMAT = Format("webp", "image/webp", "webp", parse, strip, accepts=accepts, label="WebP")
