"""WebP (lossy VP8, lossless VP8L, extended VP8X, animated): a RIFF container of chunks.

What a WebP can carry besides pixels:
- an EXIF chunk (GPS, camera, serials, dates, thumbnails), with or without an "Exif\\0\\0" prefix;
- an XMP chunk ("XMP "): the XMP packet;
- unknown chunks, at the top level or inside animation frames, and data after the RIFF end.

How we remove it: write a new RIFF from the parsed fields. A simple file keeps its first
bitstream chunk only. An extended file gets a VP8X of 10 bytes (flags from what is kept,
reserved bits 0), the ICCP profile rebuilt with only its colour data (`bot.formats.icc`;
dropped, with its VP8X flag, when it holds nothing valid), then either ANIM (6 bytes, background
colour 0) and every ANMF frame (16-byte header, reserved bits 0) or the still picture; a
picture, still or frame, is one bitstream with the ALPH chunk before it when it is VP8
(uncompressed alpha cut at width x height bytes). Pad bytes are written as 0; every other chunk
is dropped. When an extended file's EXIF orientation was not 1 we write an EXIF chunk holding
only the orientation and set the VP8X EXIF flag. The bitstreams are copied as they are: what may
hide inside them is in THREAT_MODEL.md.
"""

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from bot.errors import DamagedImage, TooLarge
from bot.formats import icc
from bot.formats.base import Block, BlockKind, Format, Parsed, need
from bot.metadata import exif, xmp

MAX_CHUNKS = 100_000  # a long animation has a few thousand frames
FRAME_HEADER = 16  # ANMF: x, y, width - 1, height - 1, duration (24 bits each) and flags
# VP8X flags (the other bits are reserved, written as 0)
ICC_FLAG, ALPHA_FLAG, EXIF_FLAG, XMP_FLAG, ANIMATION_FLAG = 0x20, 0x10, 0x08, 0x04, 0x02
FRAME_FLAGS = 0x03  # ANMF: blending and disposal; the other six bits are reserved
ANIM_SIZE = 6  # background colour (4 bytes) and loop count (2)
KEPT = frozenset({b"VP8X", b"ICCP", b"ANIM", b"ALPH", b"VP8 ", b"VP8L"})
BITSTREAMS = frozenset({b"VP8 ", b"VP8L"})
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
    """A new RIFF written from the parsed fields: the header chunks at their specified length,
    the picture's own chunks in their place, an orientation-only EXIF if needed."""
    chunks = list(_chunks(data, 12, _riff_end(data)))
    first = chunks[0]
    if first.fourcc != b"VP8X":
        # A simple file is its first chunk: readers ignore anything after the bitstream.
        return _riff([*_piece(first.fourcc, _bitstream(data, first))])
    payload = first.payload(data)
    animated = bool(payload[0] & ANIMATION_FLAG)
    found = next((b.data for b in parsed.blocks if b.kind is BlockKind.ICC), None)
    profile = icc.clean(found) if found else None  # from the first ICCP
    rotation = _orientation(parsed)
    flags = payload[0] & (ALPHA_FLAG | ANIMATION_FLAG)
    flags |= (ICC_FLAG if profile else 0) | (EXIF_FLAG if rotation != 1 else 0)
    pieces = [*_piece(b"VP8X", bytes([flags, 0, 0, 0]) + payload[4:10])]
    if profile:
        pieces += _piece(b"ICCP", profile)
    if animated:
        pieces += _animation(data, chunks)
    else:
        pieces += _image(data, chunks)
    if rotation != 1:
        pieces += _piece(b"EXIF", exif.minimal(rotation))
    return _riff(pieces)


def _riff(pieces: list[bytes | memoryview]) -> bytes:
    size = 4 + sum(len(piece) for piece in pieces)
    return b"".join([b"RIFF", struct.pack("<I", size), b"WEBP", *pieces])


def _piece(fourcc: bytes, payload: bytes | memoryview) -> list[bytes | memoryview]:
    """A chunk as the pieces to join: header, payload (not copied) and a zero pad byte."""
    header = fourcc + struct.pack("<I", len(payload))
    return [header, payload, b"\0"] if len(payload) & 1 else [header, payload]


def _animation(data: bytes, chunks: list[Chunk]) -> list[bytes | memoryview]:
    """ANIM (background colour, loop count) and every ANMF frame, rebuilt from their fields."""
    anim = next((chunk for chunk in chunks if chunk.fourcc == b"ANIM"), None)
    frames = [chunk for chunk in chunks if chunk.fourcc == b"ANMF"]
    if anim is None or len(anim.payload(data)) < ANIM_SIZE or not frames:
        raise DamagedImage("The WebP animation header is broken.")
    # The background colour is a hint libwebp and browsers ignore (frames are disposed to
    # transparent): written as 0, so its 4 bytes carry nothing. The loop count is kept.
    pieces = _piece(b"ANIM", bytes(4) + anim.payload(data)[4:ANIM_SIZE])
    canvas = chunks[0].payload(data)
    width, height = (int.from_bytes(canvas[i : i + 3], "little") + 1 for i in (4, 7))
    for frame in frames:
        inner = _image(data, list(_frame_chunks(data, frame)))  # checks the header fits
        start = frame.payload_start
        x, y, w, h = (
            int.from_bytes(data[start + i : start + i + 3], "little") for i in (0, 3, 6, 9)
        )
        if 2 * x + w + 1 > width or 2 * y + h + 1 > height:  # libwebp refuses such a file
            raise DamagedImage("A WebP animation frame lies outside its canvas.")
        header = data[start : start + FRAME_HEADER - 1] + bytes([data[start + 15] & FRAME_FLAGS])
        size = len(header) + sum(len(piece) for piece in inner)
        pieces += [b"ANMF" + struct.pack("<I", size), header, *inner]
    return pieces


def _image(data: bytes, chunks: list[Chunk]) -> list[bytes | memoryview]:
    """The picture of a still file or a frame: its first bitstream and the ALPH chunk before it.

    Decoders read one run of ALPH and VP8/VP8L chunks and stop at the second bitstream; an ALPH
    after the bitstream or beside VP8L (which carries its own alpha) is not used, so dropped.
    """
    at = next((i for i, c in enumerate(chunks) if c.fourcc in BITSTREAMS), None)
    if at is None:
        raise DamagedImage("The WebP has no picture in it.")
    image = chunks[at]
    payload = _bitstream(data, image)
    pieces: list[bytes | memoryview] = []
    alpha = next((c for c in chunks[:at] if c.fourcc == b"ALPH"), None)
    if alpha is not None and image.fourcc == b"VP8 ":
        pieces += _piece(b"ALPH", _alpha(alpha.payload(data), payload))
    return pieces + _piece(image.fourcc, payload)


def _bitstream(data: bytes, chunk: Chunk) -> memoryview:
    payload = memoryview(data)[chunk.payload_start : chunk.payload_start + _size_of(data, chunk)]
    _bitstream_size(chunk.fourcc, bytes(payload[:10]))  # raises on a broken header
    return payload


def _alpha(payload: bytes, bitstream: memoryview) -> bytes:
    """An ALPH payload; uncompressed alpha ends after width x height bytes."""
    # Reserved bits, a compression method past 1 or preprocessing past 1: libwebp refuses it.
    if not payload or payload[0] & 0xC0 or payload[0] & 3 > 1 or payload[0] & 0x30 > 0x10:
        raise DamagedImage("The WebP transparency chunk is broken.")
    if payload[0] & 3:  # compressed: its end is only found by decoding (THREAT_MODEL.md)
        return payload
    width, height = _bitstream_size(b"VP8 ", bytes(bitstream[:10]))
    if len(payload) < 1 + width * height:
        raise DamagedImage("The WebP transparency chunk is broken.")
    return payload[: 1 + width * height]


def _size_of(data: bytes, chunk: Chunk) -> int:
    (size,) = struct.unpack_from("<I", data, chunk.start + 4)
    return int(size)


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
    """Width and height from a bitstream header that libwebp decodes: a VP8 key frame that is
    shown, of version 0-3 (RFC 6386 9.1), or VP8L of version 0 (RFC 9649 3.2); any other
    header is refused, so its bits are never copied into a file no decoder opens."""
    if fourcc == b"VP8 " and len(payload) >= 10 and payload[3:6] == VP8_START_CODE:
        if payload[0] & 0x01 or payload[0] & 0x0E > 0x06 or not payload[0] & 0x10:
            raise DamagedImage("The WebP picture header is broken.")
        width, height = struct.unpack_from("<HH", payload, 6)
        return width & 0x3FFF, height & 0x3FFF
    if fourcc == b"VP8L" and len(payload) >= 5 and payload[0] == VP8L_SIGNATURE:
        (bits,) = struct.unpack_from("<I", payload, 1)
        if bits >> 29:
            raise DamagedImage("The WebP picture header is broken.")
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


def _orientation(parsed: Parsed) -> int:
    """EXIF's Orientation, or when EXIF has none, XMP's tiff:Orientation; 1 when neither."""
    block = next((b for b in parsed.blocks if b.kind is BlockKind.EXIF), None)
    found = exif.declared_orientation(block.data) if block else None
    if found is None:
        packet = next((b.data for b in parsed.blocks if b.kind is BlockKind.XMP), b"")
        found = xmp.orientation(packet) if packet else None
    return found or 1


def _shown(fourcc: bytes) -> str:
    """A chunk name safe to show: printable ASCII only, padding removed."""
    return "".join(chr(c) if 0x21 <= c < 0x7F else "" for c in fourcc) or "unnamed"


def _u24(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 3], "little")


def accepts(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


FORMAT = Format("webp", "image/webp", "webp", parse, strip, accepts=accepts, label="WebP")
