"""PNG and APNG: a signature followed by length-type-data-CRC chunks, ending with IEND.

What a PNG can carry besides pixels:
- tEXt / zTXt / iTXt text chunks: author, comment, software, dates, ImageMagick "Raw profile type
  exif/iptc/xmp/8bim" (hex-encoded EXIF, IPTC, XMP or Photoshop blocks), and Adobe XMP
  ("XML:com.adobe.xmp");
- eXIf (EXIF: GPS, camera, serials, thumbnails), tIME (last modification time), caBX (C2PA);
- unknown ancillary chunks (anything a tool chose to store) and data after IEND.

How we remove it: write a new file from the parsed fields of the chunks a decoder needs for the
same pixels, each at the length its specification gives (see `_Writer`): IHDR, PLTE, tRNS,
the colour and display chunks (sRGB, gAMA, cHRM, cICP, sBIT, pHYs, bKGD) and the APNG chunks
(acTL, fcTL, fdAT with renumbered sequence numbers); the picture data (IDAT, fdAT) is re-split
into fixed-size chunks. The iCCP profile is rebuilt with only its colour data
(`bot.formats.icc`) under a neutral name and compressed again deterministically; a profile that
holds nothing valid is dropped. Every other chunk is dropped. When the picture had a
non-default EXIF orientation we write a minimal eXIf holding only that orientation. Compressed
text is never inflated past a small bound just to report it; the picture data is never inflated
(THREAT_MODEL.md: what may still hide inside it).
"""

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bot.errors import DamagedImage, TooLarge, UnsupportedFormat
from bot.formats import icc
from bot.formats.base import Block, BlockKind, Format, Parsed, need
from bot.metadata import exif, xmp

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
    width, height = _header(data, chunks).size
    if not any(chunk.type == b"IDAT" for chunk in chunks):
        raise DamagedImage("The PNG has no image data.")
    budget = _Budget(INFLATE_BUDGET)
    blocks = [block for chunk in chunks for block in _blocks(data, chunk, budget)]
    end = chunks[-1].end
    if end < len(data):
        blocks.append(Block(BlockKind.MEDIA, "data after the PNG end", data[end:]))
    layout = tuple((int.from_bytes(c.type), c.start, c.end) for c in chunks)
    return Parsed(width, height, tuple(blocks), frames=_frames(data, chunks), layout=layout)


def strip(data: bytes, parsed: Parsed) -> bytes:
    """Every kept chunk rebuilt from its fields (see `_Writer`), an orientation-only eXIf."""
    if parsed.layout:
        chunks = [Chunk(kind.to_bytes(4), start, end) for kind, start, end in parsed.layout]
    else:
        chunks = list(_chunks(data))
    header, rotation, declared = (
        _header(data, chunks),
        _orientation(parsed),
        _declared(data, chunks),
    )
    writer = _Writer(data, header, rotation, declared, _iccp(parsed))
    for chunk in chunks:
        writer.add(chunk)
    return writer.finish()


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
        if zlib.crc32(memoryview(data)[chunk.start + 4 : chunk.end - 4]) != crc:
            raise DamagedImage("A PNG chunk is damaged (checksum mismatch).")


@dataclass(frozen=True)
class Header:
    """The IHDR fields (compression and filter method are always 0)."""

    width: int
    height: int
    depth: int
    colour: int
    interlace: int

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def body(self) -> bytes:
        return struct.pack(
            ">IIBBBBB", self.width, self.height, self.depth, self.colour, 0, 0, self.interlace
        )


def _header(data: bytes, chunks: list[Chunk]) -> Header:
    if chunks[0].type != b"IHDR" or chunks[0].end - chunks[0].start != 25:
        raise DamagedImage("The PNG header chunk is missing or broken.")
    fields = struct.unpack_from(">IIBBBBB", data, chunks[0].start + 8)
    width, height, depth, colour, compression, filtering, interlace = fields
    if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
        raise DamagedImage("The PNG header gives an impossible size.")
    if depth not in DEPTHS.get(colour, ()) or compression or filtering or interlace > 1:
        raise DamagedImage("The PNG header gives an impossible pixel format.")
    return Header(width, height, depth, colour, interlace)


def _declared(data: bytes, chunks: list[Chunk]) -> int:
    """Frames an APNG's acTL declares (0 for a still PNG); a broken acTL is damage. An acTL
    after the image data makes no animation (decoders have shown the still picture by then)."""
    first_idat = next((i for i, c in enumerate(chunks) if c.type == b"IDAT"), len(chunks))
    controls = [chunk for chunk in chunks if chunk.type == b"acTL"]
    if not any(chunk.type == b"acTL" for chunk in chunks[:first_idat]):
        return 0
    (frames,) = struct.unpack_from(">I", data, controls[0].start + 8)
    if len(controls) > 1 or controls[0].end - controls[0].start < 20 or frames == 0:
        raise DamagedImage("The PNG animation header is broken.")
    return int(frames)


class _Writer:
    """Writes a PNG from the fields of the chunks it is given, in order.

    Kept: IHDR, PLTE (indexed pictures only, no entry past 2**depth), tRNS (the size the colour
    type gives; palette alpha no longer than the palette), the colour and display chunks at their
    specified length with values in range, iCCP, and the APNG chunks with renumbered sequence
    numbers. IDAT and each frame's fdAT data are re-chunked in DATA_CHUNK pieces (the chunk sizes
    a file was split into are a channel of their own). Before the first IDAT only, except the
    animation frames after it; at most one of each; everything else is dropped.
    """

    def __init__(
        self, data: bytes, header: Header, rotation: int, declared: int, profile: bytes
    ) -> None:
        self.data, self.header, self.rotation = data, header, rotation
        self.profile = profile  # the iCCP chunk bot.formats.icc rebuilt, or b""
        self.declared = declared  # frames the acTL announces; 0 for a still picture
        self.out: list[bytes | memoryview] = [SIGNATURE]
        self.seen: set[bytes] = set()
        self.palette = 0  # entries of the kept PLTE
        self.state = _BEFORE_IDAT
        self.sequence = 0  # the next APNG sequence number
        self.frames = 0  # fcTL chunks written
        self.frame_data: list[bytes] = []  # fdAT payloads of the frame being written
        self.idat: list[Chunk] = []
        self.actl_at = -1  # index in out of the acTL, rewritten with the kept frame count

    def add(self, chunk: Chunk) -> None:
        kind = chunk.type
        if kind == b"fcTL":  # a frame's data ends at the next frame (or IEND), whatever between
            self._end_frame()
        if kind == b"IDAT":
            if self.state >= _AFTER_IDAT:
                return  # decoders read one run of IDAT chunks and stop at the first other chunk
            self.state = _IN_IDAT
            self.idat.append(chunk)
            return
        if self.state == _IN_IDAT:
            self._write_idat()
            self.state = _AFTER_IDAT
        handler = _HANDLERS.get(kind)
        if handler is None:
            return
        if kind in _ONCE:
            if kind in self.seen:
                if kind in _CRITICAL_ONCE:
                    raise DamagedImage("The PNG has a picture chunk twice.")
                return
            self.seen.add(kind)
        if self.state != _BEFORE_IDAT and kind not in _AFTER_IDAT_KEPT:
            if kind == b"PLTE":
                raise DamagedImage("The PNG's palette comes after its image data.")
            return
        handler(self, chunk.body(self.data))

    def finish(self) -> bytes:
        if self.state < _AFTER_IDAT:  # _chunks always ends with IEND, after the image data
            raise DamagedImage("The PNG has no image data.")
        if self.actl_at >= 0 and not self.frames:
            del self.out[self.actl_at]  # an animation without frames is a still picture
        elif self.actl_at >= 0:
            plays = bytes(self.out[self.actl_at][-8:-4])
            self.out[self.actl_at] = _chunk(b"acTL", struct.pack(">I", self.frames) + plays)
        return b"".join(self.out)

    def _write(self, kind: bytes, body: bytes) -> None:
        self.out.append(_chunk(kind, body))

    def _write_idat(self) -> None:
        """One run of IDAT chunks; copied whole when already split as we would split it."""
        first, last = self.idat[0], self.idat[-1]
        view = memoryview(self.data)
        sizes = [chunk.end - chunk.start - 12 for chunk in self.idat]
        if all(size == DATA_CHUNK for size in sizes[:-1]) and 0 < sizes[-1] <= DATA_CHUNK:
            self.out.append(view[first.start : last.end])  # CRCs checked by _chunks
            return
        if not sum(sizes):
            raise DamagedImage("The PNG has no image data.")
        bodies = [view[chunk.start + 8 : chunk.end - 4] for chunk in self.idat]
        self.out.extend(_split(b"IDAT", bodies))

    def _end_frame(self) -> None:
        """Write the fdAT data gathered since the last fcTL, with fresh sequence numbers."""
        if not self.frame_data:
            return
        stream = b"".join(self.frame_data)
        self.frame_data = []
        for at in range(0, len(stream), DATA_CHUNK):
            self._write(b"fdAT", self._next() + stream[at : at + DATA_CHUNK])

    def _next(self) -> bytes:
        number = struct.pack(">I", self.sequence)
        self.sequence += 1
        return number

    def ihdr(self, body: bytes) -> None:
        self._write(b"IHDR", self.header.body())
        if self.rotation != 1:
            self._write(b"eXIf", exif.minimal(self.rotation))

    def plte(self, body: bytes) -> None:
        entries = len(body) // 3
        if len(body) % 3 or not 1 <= entries <= 256:
            raise DamagedImage("The PNG palette is broken.")
        if self.header.colour != 3:
            return  # a suggested palette for true-colour pictures: decoders need none
        self.palette = min(entries, 2**self.header.depth)
        self._write(b"PLTE", body[: 3 * self.palette])

    def trns(self, body: bytes) -> None:
        colour = self.header.colour
        if colour == 3:
            if not self.palette:
                raise DamagedImage("The PNG has transparency before its palette.")
            if body[: self.palette]:
                self._write(b"tRNS", body[: self.palette])
            return
        size = {0: 2, 2: 6}.get(colour)
        if size is None:
            return  # the picture has an alpha channel: tRNS does not apply
        if len(body) < size:
            raise DamagedImage("The PNG transparency chunk is broken.")
        # A key beyond what a sample can hold matches no pixel (nor, past 8 bits, one Pillow
        # scaled up from fewer bits): it changes nothing, so it goes.
        if all(value >> max(self.header.depth, 8) == 0 for value in _u16s(body[:size])):
            self._write(b"tRNS", body[:size])

    def bkgd(self, body: bytes) -> None:
        size = {0: 2, 4: 2, 2: 6, 6: 6, 3: 1}[self.header.colour]
        if len(body) < size:
            return
        if self.header.colour == 3:
            valid = body[0] < self.palette
        else:  # samples within the bit depth
            valid = all(value >> self.header.depth == 0 for value in _u16s(body[:size]))
        if valid:
            self._write(b"bKGD", body[:size])

    def phys(self, body: bytes) -> None:
        """Square pixels at a whole number of dots per inch (what every tool writes); other
        densities, unknown units and a bare aspect ratio are dropped: no decoder needs them."""
        if len(body) < 9:
            return
        x, y, unit = struct.unpack_from(">IIB", body)
        dpi = round(x * 0.0254)
        if unit == 1 and x == y and 1 <= dpi <= MAX_DPI:
            per_metre = round(dpi / 0.0254)
            self._write(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1))

    def fixed(self, kind: bytes, body: bytes, size: int, valid: bool = True) -> None:
        """A chunk of one specified size; dropped when it is shorter or out of range."""
        if len(body) >= size and valid:
            self._write(kind, body[:size])

    def sbit(self, body: bytes) -> None:
        size = SBIT_SIZES[self.header.colour]
        depth = 8 if self.header.colour == 3 else self.header.depth
        self.fixed(b"sBIT", body, size, all(1 <= bits <= depth for bits in body[:size]))

    def iccp(self, body: bytes) -> None:
        if self.profile:  # the first iCCP; a profile that holds nothing valid is dropped
            self.out.append(self.profile)

    def actl(self, body: bytes) -> None:
        self.actl_at = len(self.out)
        (plays,) = struct.unpack_from(">I", body, 4)
        # More than 65535 plays (GIF's limit too) is shown as playing for ever: written as 0.
        self._write(b"acTL", body[:4] + struct.pack(">I", plays if plays <= 0xFFFF else 0))

    def fctl(self, body: bytes) -> None:
        """A frame header; frames past the count acTL declares are not shown, so dropped."""
        if not self.declared:
            return  # without acTL a decoder shows the still picture only
        if len(body) < 26 or (self.state == _BEFORE_IDAT and self.frames):
            raise DamagedImage("A PNG animation frame is broken.")
        if self.frames == self.declared:
            self.state = _PAST_FRAMES
            return
        _, w, h, x, y, num, den, dispose, blend = struct.unpack_from(">IIIIIHHBB", body)
        width, height = self.header.size
        if not (w > 0 and h > 0 and x + w <= width and y + h <= height and dispose <= 2):
            raise DamagedImage("A PNG animation frame is broken.")
        if blend > 1 or (self.state == _BEFORE_IDAT and (x, y, w, h) != (0, 0, width, height)):
            raise DamagedImage("A PNG animation frame is broken.")
        fields = struct.pack(">IIIIHHBB", w, h, x, y, num, den, dispose, blend)
        self._write(b"fcTL", self._next() + fields)
        self.frames += 1

    def fdat(self, body: bytes) -> None:
        if self.state == _PAST_FRAMES or not self.frames:
            return  # not part of an animation a decoder shows
        if len(body) < 4 or self.state == _BEFORE_IDAT:
            raise DamagedImage("A PNG animation frame is broken.")
        self.frame_data.append(body[4:])

    def iend(self, body: bytes) -> None:
        self._end_frame()
        self._write(b"IEND", b"")


def _split(kind: bytes, bodies: list[memoryview]) -> Iterator[bytes | memoryview]:
    """Chunks of DATA_CHUNK bytes (the last shorter) holding `bodies` one after the other, as
    pieces to join: the data itself is not copied here, its CRC is computed piece by piece."""
    total = sum(len(body) for body in bodies)
    parts = iter(bodies)
    part = next(parts)
    for _ in range(0, total, DATA_CHUNK):
        size = min(DATA_CHUNK, total)
        total -= size
        yield struct.pack(">I", size) + kind
        crc, left = zlib.crc32(kind), size
        while left:
            while not part:
                part = next(parts)
            piece, part = part[:left], part[left:]
            crc, left = zlib.crc32(piece, crc), left - len(piece)
            yield piece
        yield struct.pack(">I", crc)


def _u16s(body: bytes) -> tuple[int, ...]:
    return struct.unpack(f">{len(body) // 2}H", body[: len(body) // 2 * 2])


def _u32(body: bytes) -> int:
    return int.from_bytes(body[:4]) if len(body) >= 4 else 0


def _chromaticities(body: bytes) -> bool:
    """Eight CIE x, y values times 100000: each below 1."""
    return len(body) >= 32 and all(v <= 100_000 for v in struct.unpack_from(">8I", body))


# ITU-T H.273 colour primaries and transfer characteristics (2: unspecified); cICP in PNG
# requires matrix coefficients 0 (RGB) and a full-range flag of 0 or 1.
H273_PRIMARIES = frozenset({1, 2, *range(4, 13), 22})
H273_TRANSFERS = frozenset({1, 2, *range(4, 19)})


def _code_points(body: bytes) -> bool:
    """A cICP whose values are code points a picture can have; any other is dropped."""
    return len(body) >= 4 and (
        body[0] in H273_PRIMARIES and body[1] in H273_TRANSFERS and body[2] == 0 and body[3] < 2
    )


_BEFORE_IDAT, _IN_IDAT, _AFTER_IDAT, _PAST_FRAMES = range(4)
MAX_DPI = 10_000  # denser than any screen or printer: a density past it is not one
GAMMA = (1_000, 1_000_000)  # gAMA (file gamma times 100000) from 0.01 to 10
DATA_CHUNK = 1 << 20  # IDAT/fdAT payload size we split picture data into
DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
SBIT_SIZES = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
_ONCE = frozenset(
    {b"IHDR", b"PLTE", b"tRNS", b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"cICP", b"sBIT"}
    | {b"pHYs", b"bKGD", b"acTL"}
)
_CRITICAL_ONCE = frozenset({b"IHDR", b"PLTE", b"tRNS"})  # a second one changes the picture
_AFTER_IDAT_KEPT = frozenset({b"fcTL", b"fdAT", b"IEND"})
_HANDLERS: dict[bytes, Callable[[_Writer, bytes], None]] = {
    b"IHDR": _Writer.ihdr,
    b"PLTE": _Writer.plte,
    b"tRNS": _Writer.trns,
    b"bKGD": _Writer.bkgd,
    b"sBIT": _Writer.sbit,
    b"iCCP": _Writer.iccp,
    b"pHYs": _Writer.phys,
    b"sRGB": lambda w, body: w.fixed(b"sRGB", body, 1, body[:1] < b"\4"),
    b"gAMA": lambda w, body: w.fixed(b"gAMA", body, 4, GAMMA[0] <= _u32(body) <= GAMMA[1]),
    b"cHRM": lambda w, body: w.fixed(b"cHRM", body, 32, _chromaticities(body)),
    b"cICP": lambda w, body: w.fixed(b"cICP", body, 4, _code_points(body)),
    b"acTL": _Writer.actl,
    b"fcTL": _Writer.fctl,
    b"fdAT": _Writer.fdat,
    b"IEND": _Writer.iend,
}


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
    """The displayed orientation, read as Pillow reads it: the eXIf chunk, else an ImageMagick
    raw EXIF profile; when that has no Orientation tag, XMP's tiff:Orientation; else 1."""
    exifs = [block for block in parsed.blocks if block.kind is BlockKind.EXIF]
    chunk = next((b for b in exifs if b.name == EXIF_CHUNK_NAME), None)
    raw = next((b for b in exifs if b.name.endswith(f"'{RAW_EXIF_KEYWORD}'")), None)
    source = chunk or raw
    found = exif.declared_orientation(source.data) if source else None
    if found is None:
        xmps = [block for block in parsed.blocks if block.kind is BlockKind.XMP]
        xmps.sort(key=lambda block: not block.name.endswith(f"'{XMP_KEYWORD.decode()}'"))
        packet = xmps[0].data if xmps else b""
        found = xmp.orientation(packet) if packet else None
    return found or 1


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def accepts(head: bytes) -> bool:
    return head.startswith(SIGNATURE)


FORMAT = Format("png", "image/png", "png", parse, strip, accepts=accepts)
