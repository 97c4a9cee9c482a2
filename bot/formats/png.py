"""PNG and APNG: a signature followed by length-type-data-CRC chunks, ending with IEND.

What a PNG can carry besides pixels:
- tEXt / zTXt / iTXt text chunks: author, comment, software, dates, ImageMagick "Raw profile type
  exif/iptc/xmp/8bim" (hex-encoded EXIF, IPTC, XMP or Photoshop blocks), and Adobe XMP
  ("XML:com.adobe.xmp");
- eXIf (EXIF: GPS, camera, serials, thumbnails), tIME (last modification time), caBX (C2PA);
- unknown ancillary chunks (anything a tool chose to store) and data after IEND.

How we remove it: copy the chunks that decode or colour the picture byte for byte (critical
chunks, colour and display chunks, APNG animation chunks) and drop every other chunk. The iCCP
profile is rebuilt with only its colour data (`bot.formats.icc`) under a neutral name, and
compressed again deterministically; a profile that holds nothing valid is dropped. When the
picture had a non-default EXIF orientation we write a minimal eXIf holding only that orientation.
Compressed text is never inflated past a small bound just to report it.
"""

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from bot.errors import DamagedImage, TooLarge, UnsupportedFormat
from bot.formats import icc
from bot.formats.base import Block, BlockKind, Format, Parsed, need
from bot.metadata import exif

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_CHUNKS = 100_000  # real files have a few thousand (APNG frames, 8 KiB IDATs)
MAX_DIMENSION = 2**31 - 1  # also the largest chunk length PNG allows
TEXT_LIMIT = 64 * 1024  # how much inflated text we read to report one text chunk
PROFILE_LIMIT = 2 * 1024 * 1024  # XMP packets and hex-encoded raw profiles are larger
INFLATE_BUDGET = 16 * 1024 * 1024  # inflated bytes per file, over all text chunks
ICC_NAME = b"ICC Profile"  # the neutral iCCP profile name we write

CRITICAL = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND"})
# Chunks that decode, colour or animate the picture: copied unchanged.
KEPT = CRITICAL | {
    b"tRNS",
    b"iCCP",
    b"sRGB",
    b"gAMA",
    b"cHRM",
    b"cICP",
    b"sBIT",
    b"pHYs",
    b"bKGD",
    b"acTL",
    b"fcTL",
    b"fdAT",
}
TEXT_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt"})
XMP_KEYWORD = b"XML:com.adobe.xmp"
RAW_PROFILE = b"Raw profile type "
RAW_EXIF_KEYWORD = (
    "Raw profile type exif"  # Pillow reads orientation from it when there is no eXIf
)
EXIF_CHUNK_NAME = "PNG eXIf chunk"
# ImageMagick raw profile names -> what the decoded bytes are.
RAW_PROFILE_KINDS = {
    b"exif": BlockKind.EXIF,
    b"app1": BlockKind.EXIF,
    b"iptc": BlockKind.IPTC,
    b"xmp": BlockKind.XMP,
    b"8bim": BlockKind.PHOTOSHOP,
}
PHOTOSHOP_HEADER = b"Photoshop 3.0\0"
XMP_APP1_HEADER = b"http://ns.adobe.com/xap/1.0/\0"


@dataclass(frozen=True)
class Chunk:
    type: bytes
    start: int  # offset of the length field
    end: int  # offset just past the CRC

    def body(self, data: bytes) -> bytes:
        return data[self.start + 8 : self.end - 4]


def parse(data: bytes) -> Parsed:
    """Walk every chunk (bounded), check the structure, and list the metadata chunks."""
    chunks = list(_chunks(data))
    width, height = _header(data, chunks)
    if not any(chunk.type == b"IDAT" for chunk in chunks):
        raise DamagedImage("The PNG has no image data.")
    budget = _Budget(INFLATE_BUDGET)
    blocks = [block for chunk in chunks for block in _blocks(data, chunk, budget)]
    end = chunks[-1].end
    if end < len(data):
        blocks.append(Block(BlockKind.MEDIA, "data after the PNG end", data[end:]))
    return Parsed(width, height, tuple(blocks), frames=_frames(data, chunks))


def strip(data: bytes, parsed: Parsed) -> bytes:
    """Copy the kept chunks; add a minimal eXIf after IHDR when the orientation is not 1."""
    out = [SIGNATURE]
    rotation = _orientation(parsed)
    profile = _iccp(parsed)
    for chunk in _chunks(data):
        if chunk.type == b"iCCP":
            out.append(profile)
            profile = b""  # one profile, where the first iCCP was
        elif chunk.type in KEPT:
            out.append(data[chunk.start : chunk.end])
        if chunk.type == b"IHDR" and rotation != 1:
            out.append(_chunk(b"eXIf", exif.minimal(rotation)))
    return b"".join(out)


def _chunks(data: bytes) -> Iterator[Chunk]:
    """Every chunk up to and including IEND; raises DamagedImage on a broken structure."""
    if not data.startswith(SIGNATURE):
        raise DamagedImage("The PNG signature is broken.")
    pos = len(SIGNATURE)
    for _ in range(MAX_CHUNKS):
        need(data, pos + 8, "PNG chunk header")
        length, kind = struct.unpack_from(">I4s", data, pos)
        if length > MAX_DIMENSION or not kind.isalpha() or not kind.isascii():
            raise DamagedImage("A PNG chunk header is corrupt.")
        chunk = Chunk(kind, pos, pos + 12 + length)
        need(data, chunk.end, "PNG chunks")
        _check(data, chunk)
        yield chunk
        if kind == b"IEND":
            return
        pos = chunk.end
    raise TooLarge("The PNG has too many chunks to handle safely.")


def _check(data: bytes, chunk: Chunk) -> None:
    """Refuse unknown critical chunks and damaged chunks we would copy."""
    if chunk.type[0:1].isupper() and chunk.type not in CRITICAL:
        raise UnsupportedFormat("A PNG with an unknown kind of image data")
    if chunk.type in KEPT:
        (crc,) = struct.unpack_from(">I", data, chunk.end - 4)
        if zlib.crc32(data[chunk.start + 4 : chunk.end - 4]) != crc:
            raise DamagedImage("A PNG chunk is damaged (checksum mismatch).")


def _header(data: bytes, chunks: list[Chunk]) -> tuple[int, int]:
    if chunks[0].type != b"IHDR" or chunks[0].end - chunks[0].start != 25:
        raise DamagedImage("The PNG header chunk is missing or broken.")
    width, height = struct.unpack_from(">II", data, chunks[0].start + 8)
    if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
        raise DamagedImage("The PNG header gives an impossible size.")
    return int(width), int(height)


def _frames(data: bytes, chunks: list[Chunk]) -> int:
    """Frames of an APNG (declared in acTL, or counted fcTL chunks if more), else 1."""
    declared = 1
    for chunk in chunks:
        if chunk.type == b"acTL" and chunk.end - chunk.start >= 16:
            (declared,) = struct.unpack_from(">I", data, chunk.start + 8)
    counted = sum(1 for chunk in chunks if chunk.type == b"fcTL")
    return max(1, declared, counted)


class _Budget:
    """Inflated bytes still allowed for this file, so many text chunks cannot add up."""

    def __init__(self, left: int) -> None:
        self.left = left

    def inflate(self, compressed: bytes, limit: int) -> bytes:
        """Up to `limit` inflated bytes; b"" when the budget is spent or the stream is bad."""
        cap = min(limit, self.left)
        if cap <= 0:
            return b""
        try:
            out = zlib.decompressobj().decompress(compressed, cap)
        except zlib.error:
            return b""
        self.left -= len(out)
        return out


def _blocks(data: bytes, chunk: Chunk, budget: _Budget) -> Iterator[Block]:
    kind = chunk.type
    if kind in KEPT and kind != b"iCCP":
        return
    body = chunk.body(data)
    if kind == b"iCCP":
        yield Block(BlockKind.ICC, "PNG iCCP chunk", _icc(body, budget))
    elif kind in TEXT_CHUNKS:
        yield _text_block(kind, body, budget)
    elif kind == b"eXIf":
        yield Block(BlockKind.EXIF, EXIF_CHUNK_NAME, body)
    elif kind == b"tIME":
        yield Block(BlockKind.DATE, "PNG tIME chunk", body)
    elif kind == b"caBX":
        yield Block(BlockKind.C2PA, "PNG caBX chunk", body)
    else:
        yield Block(BlockKind.OTHER, f"PNG {kind.decode('ascii')} chunk", body)


def _iccp(parsed: Parsed) -> bytes:
    """The iCCP chunk we write: the rebuilt profile, neutral name, zlib level 9; or nothing."""
    found = next((b.data for b in parsed.blocks if b.kind is BlockKind.ICC), None)
    profile = icc.clean(found) if found else None
    if not profile:
        return b""
    return _chunk(b"iCCP", ICC_NAME + b"\0\0" + zlib.compress(profile, 9))


def _icc(body: bytes, budget: _Budget) -> bytes:
    _, _, rest = body.partition(b"\0")
    return budget.inflate(rest[1:], icc.MAX_PROFILE)  # whole, or its colours would be lost


def _text_block(kind: bytes, body: bytes, budget: _Budget) -> Block:
    keyword, _, rest = body.partition(b"\0")
    shown = keyword[:79].decode("latin-1")
    limit = (
        PROFILE_LIMIT if keyword == XMP_KEYWORD or keyword.startswith(RAW_PROFILE) else TEXT_LIMIT
    )
    value = _text_value(kind, rest, budget, limit)
    where = f"PNG {kind.decode('ascii')} chunk '{shown}'"
    if keyword == XMP_KEYWORD:
        return Block(BlockKind.XMP, where, value)
    if keyword.startswith(RAW_PROFILE):
        profile = keyword[len(RAW_PROFILE) :].lower()
        decoded = _raw_profile(value)
        if profile in RAW_PROFILE_KINDS and decoded:
            return Block(_profile_kind(profile, decoded), where, _unwrap(decoded))
    return Block(BlockKind.TEXT, where, value)


def _text_value(kind: bytes, rest: bytes, budget: _Budget, limit: int) -> bytes:
    """The value bytes of a text chunk (after its keyword), inflated within `limit`."""
    if kind == b"tEXt":
        return rest[:limit]
    if kind == b"zTXt":
        return budget.inflate(rest[1:], limit)
    # iTXt: compression flag, method, language tag \0, translated keyword \0, text
    compressed = rest[:1] == b"\x01"
    parts = rest[2:].split(b"\0", 2)
    text = parts[2] if len(parts) == 3 else b""
    return budget.inflate(text, limit) if compressed else text[:limit]


def _raw_profile(value: bytes) -> bytes:
    """Decode ImageMagick's "\\n<name>\\n   <length>\\n<hex lines>" text; b"" if malformed."""
    parts = value.lstrip(b"\n").split(b"\n", 2)
    if len(parts) != 3 or not parts[1].strip().isdigit():
        return b""
    length = int(parts[1].strip())
    digits = b"".join(parts[2].split())[: 2 * length]
    try:
        return bytes.fromhex(digits.decode("ascii"))
    except ValueError:
        return b""


def _profile_kind(profile: bytes, decoded: bytes) -> BlockKind:
    if decoded.startswith(XMP_APP1_HEADER):
        return BlockKind.XMP
    if profile == b"iptc" and decoded.startswith((PHOTOSHOP_HEADER, b"8BIM")):
        return BlockKind.PHOTOSHOP
    return RAW_PROFILE_KINDS[profile]


def _unwrap(decoded: bytes) -> bytes:
    """Drop the APP1/APP13 identifiers some raw profiles keep in front of their payload."""
    for header in (XMP_APP1_HEADER, PHOTOSHOP_HEADER):
        if decoded.startswith(header):
            return decoded[len(header) :]
    return exif.strip_header(decoded)


def _orientation(parsed: Parsed) -> int:
    """The displayed orientation: from eXIf, else from an ImageMagick raw EXIF profile."""
    exifs = [block for block in parsed.blocks if block.kind is BlockKind.EXIF]
    for block in exifs:
        if block.name == EXIF_CHUNK_NAME:
            return exif.orientation(block.data)
    for block in exifs:
        if block.name.endswith(f"'{RAW_EXIF_KEYWORD}'"):
            return exif.orientation(block.data)
    return 1


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def accepts(head: bytes) -> bool:
    return head.startswith(SIGNATURE)


FORMAT = Format("png", "image/png", "png", parse, strip, accepts=accepts)
