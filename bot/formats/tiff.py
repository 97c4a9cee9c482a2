"""TIFF: metadata lives in the image file directories (IFDs) themselves.

What a TIFF can carry:
- text tags in every page IFD: Make, Model, Software, Artist, DateTime, HostComputer,
  ImageDescription, Copyright, serial numbers, ...;
- pointers to EXIF, GPS and Interop directories (and SubIFDs), with MakerNotes inside;
- embedded containers as tags: XMP (700), IPTC (33723), Photoshop resources (34377), ICC (34675);
- reduced-resolution copies (NewSubfileType bit 0) and old-style JPEG thumbnails (0x0201/0x0202);
- any bytes that no directory points to.

How we remove it: we do not edit the file in place. We write a fresh TIFF in the same byte
order holding, for every full-resolution page of the main IFD chain, only the tags that say
how to decode its pixels (`KEPT_TAGS`: `exif.STRUCTURAL_TAGS` without InkNames and the sample
statistics, keeping the ICC profile and Orientation) and its strips or tiles. Every kept tag is
written again from its parsed values with exactly the count its specification gives (one
BitsPerSample/SampleFormat value given to every sample, rationals reduced; see `_canonical` for
tags with other counts);
JPEG strips and tiles (compression 7) and JPEGTables are rewritten by `jpeg.strip_stream`
(tables, frame and scans from their fields, no APPn/COM); uncompressed strips and tiles are cut
to the bytes their rows need. Everything else (EXIF/GPS/SubIFDs, thumbnails, unreferenced
bytes) is simply not copied. When a page has no Orientation but its XMP has
`tiff:Orientation`, that becomes its Orientation tag. The ICC profile (InterColorProfile) is
rebuilt with only its colour data (`bot.formats.icc`), or dropped when it holds nothing valid.

BigTIFF (8-byte offsets) comes out as a classic TIFF: our files are far below 4 GB.

Refused: DNG raw files (not photos we can rewrite without losing the picture) and old-style
JPEG compression (6): its tables and offsets point into a JPEG stream that libtiff rebuilds by
guesswork, so we cannot say which bytes are the picture. Other compressed strips are copied
as they are; what a codec ignores inside them (bytes after a stream's end) is listed in
THREAT_MODEL.md.
"""

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

from bot.errors import DamagedImage, UnsupportedFormat
from bot.formats import icc, jpeg
from bot.formats.base import Block, BlockKind, Format, Parsed
from bot.metadata import xmp
from bot.metadata.exif import NEW_SUBFILE_TYPE, ORIENTATION, STRUCTURAL_TAGS
from bot.metadata.ifd import TYPE_SIZES, Directory, Entry, Ifds

SUBFILE_TYPE = 0x00FF
IMAGE_WIDTH, IMAGE_LENGTH, COMPRESSION = 0x0100, 0x0101, 0x0103
STRIP_OFFSETS, STRIP_BYTE_COUNTS = 0x0111, 0x0117
TILE_OFFSETS, TILE_BYTE_COUNTS = 0x0144, 0x0145
JPEG_THUMB_OFFSET, JPEG_THUMB_LENGTH = 0x0201, 0x0202
DNG_VERSION = 0xC612
OLD_JPEG, NEW_JPEG = 6, 7
BITS_PER_SAMPLE, SAMPLES_PER_PIXEL, COLOR_MAP = 0x0102, 0x0115, 0x0140
JPEG_TABLES, XMP_TAG, ICC_PROFILE = 0x015B, 0x02BC, 0x8773
SHORT, LONG, RATIONAL, UNDEFINED = 3, 4, 5, 7

# Structural tags that only describe or annotate (no reader needs them for the pixels): dropped.
# InkNames is free text; the others are statistics and hints a writer may fill with anything.
_DROPPED = frozenset({0x0107, 0x0118, 0x0119, 0x014D, 0x0150, 0x0154, 0x0155})
KEPT_TAGS = STRUCTURAL_TAGS - _DROPPED

Counts = Callable[[int, int, int], tuple[int, ...]]  # (samples, bits, given count) -> allowed


def _one(samples: int, bits: int, given: int) -> tuple[int, ...]:
    return (1,)


def _each_sample(samples: int, bits: int, given: int) -> tuple[int, ...]:
    return (samples,)


def _fixed(n: int) -> Counts:
    return lambda samples, bits, given: (n,)


def _transfer(samples: int, bits: int, given: int) -> tuple[int, ...]:
    """TransferFunction: one curve or three, of 2**BitsPerSample entries each."""
    return (1 << bits, 3 << bits) if bits <= 16 else ()


def _palette(samples: int, bits: int, given: int) -> tuple[int, ...]:
    """ColorMap: red, green and blue curves of 2**BitsPerSample entries."""
    return (3 << bits,) if bits <= 16 else ()


def _extra(samples: int, bits: int, given: int) -> tuple[int, ...]:
    return tuple(range(1, samples + 1))


_S, _SL, _L, _R = (SHORT,), (SHORT, LONG), (LONG,), (RATIONAL,)
# tag -> (types a value may have, the last one written when it has another; allowed counts)
_SPEC: dict[int, tuple[tuple[int, ...], Counts]] = {
    0x00FE: (_L, _one),  # NewSubfileType
    0x00FF: (_S, _one),  # SubfileType
    0x0100: (_SL, _one),  # ImageWidth
    0x0101: (_SL, _one),  # ImageLength
    0x0102: (_S, _each_sample),  # BitsPerSample
    0x0103: (_S, _one),  # Compression
    0x0106: (_S, _one),  # PhotometricInterpretation
    0x010A: (_S, _one),  # FillOrder
    0x0112: (_S, _one),  # Orientation
    0x0115: (_S, _one),  # SamplesPerPixel
    0x0116: (_SL, _one),  # RowsPerStrip
    0x011A: (_R, _one),  # XResolution
    0x011B: (_R, _one),  # YResolution
    0x011C: (_S, _one),  # PlanarConfiguration
    0x0124: (_L, _one),  # T4Options
    0x0125: (_L, _one),  # T6Options
    0x0128: (_S, _one),  # ResolutionUnit
    0x012D: (_S, _transfer),  # TransferFunction
    0x013D: (_S, _one),  # Predictor
    0x013E: (_R, _fixed(2)),  # WhitePoint
    0x013F: (_R, _fixed(6)),  # PrimaryChromaticities
    0x0140: (_S, _palette),  # ColorMap
    0x0142: (_SL, _one),  # TileWidth
    0x0143: (_SL, _one),  # TileLength
    0x014C: (_S, _one),  # InkSet
    0x014E: (_S, _one),  # NumberOfInks
    0x0152: (_S, _extra),  # ExtraSamples: at most one per sample
    0x0153: (_S, _each_sample),  # SampleFormat
    0x0211: (_R, _fixed(3)),  # YCbCrCoefficients
    0x0212: (_S, _fixed(2)),  # YCbCrSubSampling
    0x0213: (_S, _one),  # YCbCrPositioning
    0x0214: (_R, _fixed(6)),  # ReferenceBlackWhite
}
_PER_SAMPLE = frozenset({0x0102, 0x0153})
# Tags that only describe: dropped (not refused) when their values are not as specified.
_DESCRIPTIVE = frozenset({0x011A, 0x011B, 0x0128, 0x012D, 0x013E, 0x013F, 0x0211, 0x0214, 0x0112})

# Embedded containers that the findings step interprets on their own.
CONTAINER_TAGS = {
    0x02BC: (BlockKind.XMP, "XMP"),
    0x83BB: (BlockKind.IPTC, "IPTC"),
    0x8649: (BlockKind.PHOTOSHOP, "Photoshop resources"),
    0x8773: (BlockKind.ICC, "ICC profile"),
}

MAX_PIECES = 1 << 20  # strips or tiles in one file; a 50 MB file has far fewer real ones
MAX_THUMBNAIL_BYTES = 1 << 20  # reduced-resolution copies larger than this are listed, not copied
_TRAILING_SLACK = 16  # padding some writers leave after the last structure


@dataclass(frozen=True)
class _Image:
    """One picture in the file: its directory and where its strips or tiles are."""

    directory: Directory
    offsets_tag: int  # StripOffsets or TileOffsets
    pieces: tuple[tuple[int, int], ...]  # (offset, length) of each strip or tile


def parse(data: bytes) -> Parsed:
    ifds = _read(data)
    if any(entry.tag == DNG_VERSION for _, entry in ifds.all_entries()):
        raise UnsupportedFormat("A RAW camera file (DNG)")
    pages = _pages(ifds)
    first = pages[0].directory
    width, height = _int(ifds, first, IMAGE_WIDTH), _int(ifds, first, IMAGE_LENGTH)
    blocks = [Block(BlockKind.TIFF, "TIFF directories", data)]
    blocks += _containers(ifds)
    blocks += _thumbnails(ifds)
    blocks += _trailing(ifds)
    return Parsed(width, height, tuple(blocks), frames=len(pages))


def strip(data: bytes, parsed: Parsed) -> bytes:
    ifds = _read(data)
    return _rebuild(ifds, _pages(ifds))


def _read(data: bytes) -> Ifds:
    try:
        return Ifds(data)
    except (ValueError, IndexError, struct.error) as error:
        raise DamagedImage(
            "The TIFF directories are damaged, so the file could not be read."
        ) from error


def _entry(directory: Directory, tag: int) -> Entry | None:
    return next((entry for entry in directory.entries if entry.tag == tag), None)


def _int(ifds: Ifds, directory: Directory, tag: int, default: int | None = None) -> int:
    entry = _entry(directory, tag)
    values = ifds.ints(entry) if entry else ()
    if values:
        return int(values[0])
    if default is None:
        raise DamagedImage("A TIFF page lacks its size or pixel layout.")
    return default


def _reduced(ifds: Ifds, directory: Directory) -> bool:
    """A reduced-resolution copy of another page: a thumbnail or preview."""
    return bool(_int(ifds, directory, NEW_SUBFILE_TYPE, 0) & 1) or (
        _int(ifds, directory, SUBFILE_TYPE, 1) == 2
    )


def _in_chain(directory: Directory) -> bool:
    return directory.name.startswith("IFD")


def _pages(ifds: Ifds) -> list[_Image]:
    """The full-resolution pages of the main chain, each with validated pixel data."""
    chain = [d for d in ifds.directories if _in_chain(d) and not _reduced(ifds, d)]
    if not chain:
        raise DamagedImage("The TIFF file has no full-size picture.")
    if any(_int(ifds, directory, COMPRESSION, 1) == OLD_JPEG for directory in chain):
        raise UnsupportedFormat("A TIFF with old-style JPEG compression")
    return [_image(ifds, directory) for directory in chain]


def _image(ifds: Ifds, directory: Directory) -> _Image:
    tiled = _entry(directory, TILE_OFFSETS) is not None
    offsets_tag = TILE_OFFSETS if tiled else STRIP_OFFSETS
    counts_tag = TILE_BYTE_COUNTS if tiled else STRIP_BYTE_COUNTS
    offsets, counts = _entry(directory, offsets_tag), _entry(directory, counts_tag)
    if offsets is None or counts is None or {offsets.type, counts.type} - {3, 4, 16}:
        raise DamagedImage("A TIFF page does not say where its pixels are.")
    if offsets.count != counts.count or not 0 < offsets.count <= MAX_PIECES:
        raise DamagedImage("A TIFF page has a broken list of pixel strips.")
    pieces = tuple(zip(ifds.ints(offsets), ifds.ints(counts), strict=True))
    # Only tiles may be empty (sparse files); an empty strip is a count a reader must guess.
    if not any(length for _, length in pieces) or not (tiled or all(n for _, n in pieces)):
        raise DamagedImage("A TIFF page has an empty list of pixel bytes.")
    if any(length and offset + length > len(ifds.data) for offset, length in pieces):
        raise DamagedImage("The file ends in the middle of its pixel data, so it is incomplete.")
    return _Image(directory, offsets_tag, pieces)


def _containers(ifds: Ifds) -> list[Block]:
    blocks = []
    for directory, entry in ifds.all_entries():
        if entry.tag in CONTAINER_TAGS:
            kind, what = CONTAINER_TAGS[entry.tag]
            blocks.append(Block(kind, f"TIFF {what} tag in {directory.name}", ifds.raw(entry)))
    return blocks


def _thumbnails(ifds: Ifds) -> list[Block]:
    """Reduced-resolution directories, second pictures in SubIFDs and old JPEG thumbnails."""
    blocks = []
    for directory in ifds.directories:
        if not (_in_chain(directory) or directory.name == "SubIFD"):
            continue  # EXIF, GPS and Interop directories hold no pictures
        if _reduced(ifds, directory):
            blocks.append(
                Block(
                    BlockKind.THUMBNAIL,
                    f"TIFF preview in {directory.name}",
                    _pixels(ifds, directory),
                )
            )
        elif directory.name == "SubIFD":
            blocks.append(Block(BlockKind.IMAGE, "TIFF second picture in a SubIFD"))
        jpeg = _jpeg_thumbnail(ifds, directory)
        if jpeg is not None:
            blocks.append(Block(BlockKind.THUMBNAIL, f"JPEG thumbnail in {directory.name}", jpeg))
    return blocks


def _pixels(ifds: Ifds, directory: Directory) -> bytes:
    """The strips of a preview when small and intact, else empty (it is dropped either way)."""
    try:
        pieces = _image(ifds, directory).pieces
    except DamagedImage:
        return b""
    if sum(length for _, length in pieces) > MAX_THUMBNAIL_BYTES:
        return b""
    return b"".join(ifds.data[offset : offset + length] for offset, length in pieces)


def _jpeg_thumbnail(ifds: Ifds, directory: Directory) -> bytes | None:
    offset = _int(ifds, directory, JPEG_THUMB_OFFSET, -1)
    if offset < 0:
        return None
    length = _int(ifds, directory, JPEG_THUMB_LENGTH, 0)
    return ifds.data[offset : offset + min(length, MAX_THUMBNAIL_BYTES)]


def _trailing(ifds: Ifds) -> list[Block]:
    """Bytes after everything the directories point to: an appended video or other payload."""
    end = 8
    for directory in ifds.directories:
        end = max(end, ifds.end(directory))
        for entry in directory.entries:
            end = max(end, entry.offset + entry.size)
            if entry.tag in (STRIP_OFFSETS, TILE_OFFSETS, JPEG_THUMB_OFFSET):
                end = max(end, _data_end(ifds, directory, entry.tag))
    tail = ifds.data[end:]
    if len(tail) <= _TRAILING_SLACK or not tail.strip(b"\0"):
        return []
    return [Block(BlockKind.MEDIA, "Data after the TIFF picture", tail)]


def _data_end(ifds: Ifds, directory: Directory, offsets_tag: int) -> int:
    if offsets_tag == JPEG_THUMB_OFFSET:
        return _int(ifds, directory, JPEG_THUMB_OFFSET) + _int(
            ifds, directory, JPEG_THUMB_LENGTH, 0
        )
    try:
        pieces = _image(ifds, directory).pieces
    except DamagedImage:
        return 0
    return max(offset + length for offset, length in pieces)


_Part = tuple[
    int, bytes | bytearray | memoryview
]  # (where in the input it comes from or -1, bytes)


def _rebuild(ifds: Ifds, pages: list[_Image]) -> bytes:
    """A fresh TIFF: per page, its strips or tiles (JPEG ones rewritten), then its tags.

    Pixel data is joined from views of the input, so it is copied once; when the result would
    be the input byte for byte (our own output, checked again), the input itself is returned.
    """
    order, data = ifds.order, ifds.data
    view = memoryview(data)
    header = bytearray((b"II*\0" if order == "<" else b"MM\0*") + b"\0\0\0\0")  # BigTIFF too
    parts: list[_Part] = [(-1, header)]
    size = len(header)
    link_part, link_at = header, 4  # where the offset of the next directory goes
    copied: dict[tuple[int, int], tuple[int, int]] = {}  # shared strips stay shared
    budget = len(data)
    for page in pages:
        rewrite = _int(ifds, page.directory, COMPRESSION, 1) == NEW_JPEG
        sizes = _uncompressed_sizes(ifds, page)
        placed = []
        for number, (offset, whole) in enumerate(page.pieces):
            length = min(whole, sizes[number]) if sizes else whole  # no padding after the rows
            if sizes and whole < sizes[number]:  # readers disagree on what such a strip shows
                raise DamagedImage("A TIFF strip holds fewer bytes than its rows need.")
            if (offset, length) not in copied:
                budget -= length
                if budget < 0:
                    raise DamagedImage("The TIFF pixel strips overlap, so the file is damaged.")
                piece: bytes | memoryview = view[offset : offset + length]
                source = offset
                if rewrite and length:
                    source, piece = -1, jpeg.strip_stream(bytes(piece))
                if size % 2:
                    parts.append((-1, b"\0"))
                    size += 1
                copied[offset, length] = (size, len(piece))
                parts.append((source, piece))
                size += len(piece)
            placed.append(copied[offset, length])
        if size % 2:
            parts.append((-1, b"\0"))
            size += 1
        struct.pack_into(order + "I", link_part, link_at, size)
        directory, link_at = _directory(ifds, page, placed, size)
        parts.append((-1, directory))
        size += len(directory)
        link_part = directory
    return _same_or_joined(data, parts)


def _same_or_joined(data: bytes, parts: list[_Part]) -> bytes:
    """`data` when the parts spell it exactly (views of it in place), else the parts joined."""
    position = 0
    for source, piece in parts:
        if source >= 0 and source != position:
            break
        if source < 0 and not data.startswith(piece, position):
            break
        position += len(piece)
    else:
        if position == len(data):
            return data
    return b"".join(piece for _, piece in parts)


def _uncompressed_sizes(ifds: Ifds, page: _Image) -> list[int] | None:
    """For uncompressed pages, the bytes each strip or tile holds pixels for (a reader ignores
    the rest); None for compressed or subsampled pages, whose sizes only decoding tells."""
    directory = page.directory
    photometric = _int(ifds, directory, 0x0106, 2)
    if _int(ifds, directory, COMPRESSION, 1) != 1 or photometric == 6:
        return None
    width, height = _int(ifds, directory, IMAGE_WIDTH), _int(ifds, directory, IMAGE_LENGTH)
    samples = _int(ifds, directory, SAMPLES_PER_PIXEL, 1)
    entry = _entry(directory, BITS_PER_SAMPLE)
    bits = list(ifds.ints(entry)) if entry else [1]
    bits = (bits * samples if len(bits) == 1 else bits)[:samples]
    if len(bits) != samples or not 0 < samples <= 16 or not all(0 < b <= 64 for b in bits):
        return None
    planes = samples if _int(ifds, directory, 0x011C, 1) == 2 else 1
    pixel_bits = sum(bits) if planes == 1 else bits[0]
    if planes > 1 and len(set(bits)) != 1:
        return None
    n = len(page.pieces)
    if page.offsets_tag == TILE_OFFSETS:
        tile_w, tile_h = _int(ifds, directory, 0x0142), _int(ifds, directory, 0x0143)
        return [(tile_w * pixel_bits + 7) // 8 * tile_h] * n
    rows = min(_int(ifds, directory, 0x0116, height), height) or height
    per_plane = -(-height // rows)
    if per_plane * planes != n:
        return None
    row_bytes = (width * pixel_bits + 7) // 8
    last = height - rows * (per_plane - 1)
    return [row_bytes * (last if i % per_plane == per_plane - 1 else rows) for i in range(n)]


def _directory(
    ifds: Ifds, page: _Image, placed: list[tuple[int, int]], start: int
) -> tuple[bytearray, int]:
    """One directory written at `start` with its out-of-line values, and where in it the
    next-directory link is."""
    order = ifds.order
    fields = _fields(ifds, page, placed)
    link = 2 + 12 * len(fields)
    values = bytearray()
    entries = []
    for tag, (typ, count, raw) in sorted(fields.items()):
        if len(raw) <= 4:
            entries.append(struct.pack(order + "HHI", tag, typ, count) + raw.ljust(4, b"\0"))
        else:
            at = start + link + 4 + len(values)
            entries.append(struct.pack(order + "HHII", tag, typ, count, at))
            values += raw + b"\0" * (len(raw) % 2)  # values start on a word boundary
    out = bytearray(struct.pack(order + "H", len(fields)) + b"".join(entries) + b"\0\0\0\0")
    return out + values, link


def _fields(
    ifds: Ifds, page: _Image, placed: list[tuple[int, int]]
) -> dict[int, tuple[int, int, bytes]]:
    """tag -> (type, count, value bytes) for every tag a page keeps, each written again from
    its parsed values with the count its specification gives."""
    order, directory = ifds.order, page.directory
    unique = {e.tag: e for e in reversed(directory.entries) if e.tag in KEPT_TAGS}
    samples = _int(ifds, directory, SAMPLES_PER_PIXEL, 1)
    bits = _int(ifds, directory, BITS_PER_SAMPLE, 1)
    fields: dict[int, tuple[int, int, bytes]] = {}
    for tag, entry in unique.items():
        if entry.type not in TYPE_SIZES:
            raise DamagedImage("A TIFF tag has an unknown value type.")
        if tag in (STRIP_OFFSETS, TILE_OFFSETS, STRIP_BYTE_COUNTS, TILE_BYTE_COUNTS):
            continue
        if tag == JPEG_TABLES and _int(ifds, directory, COMPRESSION, 1) != NEW_JPEG:
            continue  # only a JPEG page reads them
        if tag == JPEG_TABLES:
            raw = jpeg.strip_stream(ifds.raw(entry))
            fields[tag] = (UNDEFINED, len(raw), raw)
            continue
        if tag == ICC_PROFILE:  # rebuilt with only its colour data, or dropped
            profile = icc.clean(ifds.raw(entry))
            if profile is not None:
                fields[tag] = (UNDEFINED, len(profile), profile)
            continue
        value = _canonical(ifds, entry, samples, bits)
        if value is not None:
            fields[tag] = value
    counts_tag = TILE_BYTE_COUNTS if page.offsets_tag == TILE_OFFSETS else STRIP_BYTE_COUNTS
    n = len(placed)
    fields[page.offsets_tag] = (LONG, n, struct.pack(f"{order}{n}I", *(p[0] for p in placed)))
    fields[counts_tag] = (LONG, n, struct.pack(f"{order}{n}I", *(p[1] for p in placed)))
    if ORIENTATION not in fields and XMP_TAG in {e.tag for e in directory.entries}:
        xmp_entry = _entry(directory, XMP_TAG)
        turned = xmp.orientation(ifds.raw(xmp_entry)) if xmp_entry else None
        if turned is not None and turned != 1:
            fields[ORIENTATION] = (SHORT, 1, struct.pack(order + "H", turned))
    return fields


def _canonical(ifds: Ifds, entry: Entry, samples: int, bits: int) -> tuple[int, int, bytes] | None:
    """One tag's (type, count, bytes), written from its values at a count its specification
    allows. A tag that only describes (resolution, colour hints, orientation) whose values are
    unreadable or of another count is dropped; any other such tag refuses the file, because
    readers disagree on what it means (one takes the first value, another the list)."""
    types, counts = _SPEC[entry.tag]
    allowed = counts(samples, bits, entry.count)
    values: list[int] = []
    if types == (RATIONAL,):
        pairs = _rationals(ifds, entry) or []
        for numerator, denominator in pairs:
            common = math.gcd(numerator, denominator) or 1
            values += (numerator // common, denominator // common)
        n = len(pairs)
    else:
        values = list(ifds.ints(entry)) if entry.type in (1, 3, 4, 16) else []
        if len(values) == 1 and entry.tag in _PER_SAMPLE and allowed:
            values *= allowed[0]  # one value for every sample, as readers take it
        n = len(values)
    if not values or min(values) < 0 or n not in allowed:
        if entry.tag in _DESCRIPTIVE:
            return None
        raise DamagedImage("A TIFF tag has values its kind does not allow.")
    if entry.tag == ORIENTATION and not 1 <= values[0] <= 8:
        return None  # no such orientation: viewers show the picture as it is stored
    order = ifds.order
    if types == (RATIONAL,):
        return RATIONAL, n, struct.pack(f"{order}{len(values)}I", *values)
    typ = entry.type if entry.type in types else types[-1]
    if typ == SHORT and max(values) > 0xFFFF:
        raise DamagedImage("A TIFF tag holds a value too large for its type.")
    return typ, n, struct.pack(f"{order}{n}{'H' if typ == SHORT else 'I'}", *values)


def _rationals(ifds: Ifds, entry: Entry) -> list[tuple[int, int]] | None:
    if entry.type in (1, 3, 4, 16):
        return [(value, 1) for value in ifds.ints(entry)]
    if entry.type not in (5, 10):
        return None
    code = "I" if entry.type == 5 else "i"
    parts = struct.unpack(f"{ifds.order}{2 * entry.count}{code}", ifds.raw(entry))
    if min(parts, default=0) < 0:
        return None
    return list(zip(parts[::2], parts[1::2], strict=True))


def accepts(head: bytes) -> bool:
    return head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # TIFF and BigTIFF


FORMAT = Format("tiff", "image/tiff", "tif", parse, strip, accepts=accepts)
