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
how to decode its pixels (`exif.STRUCTURAL_TAGS`, which keeps the ICC profile and Orientation)
and a verbatim copy of its strips or tiles. The ICC profile (InterColorProfile) is rebuilt with
only its colour data (`bot.formats.icc`), or dropped when it holds nothing valid. Everything
else (EXIF/GPS/SubIFDs, thumbnails, unreferenced bytes) is simply not copied. DNG raw files
are refused: they are not photos we can rewrite without losing the picture.
"""

import struct
from dataclasses import dataclass

from bot.errors import DamagedImage, UnsupportedFormat
from bot.formats import icc
from bot.formats.base import Block, BlockKind, Format, Parsed
from bot.metadata.exif import NEW_SUBFILE_TYPE, STRUCTURAL_TAGS
from bot.metadata.ifd import TYPE_SIZES, Directory, Entry, Ifds

SUBFILE_TYPE = 0x00FF
IMAGE_WIDTH, IMAGE_LENGTH, COMPRESSION = 0x0100, 0x0101, 0x0103
STRIP_OFFSETS, STRIP_BYTE_COUNTS = 0x0111, 0x0117
TILE_OFFSETS, TILE_BYTE_COUNTS = 0x0144, 0x0145
ICC_PROFILE, UNDEFINED = 0x8773, 7
JPEG_THUMB_OFFSET, JPEG_THUMB_LENGTH = 0x0201, 0x0202
DNG_VERSION = 0xC612
OLD_JPEG = 6

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
    if offsets is None or counts is None or {offsets.type, counts.type} - {3, 4}:
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
        end = max(end, directory.offset + 2 + 12 * len(directory.entries) + 4)
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


def _rebuild(ifds: Ifds, pages: list[_Image]) -> bytes:
    """A fresh TIFF: per page, its strips or tiles verbatim, then its structural tags."""
    order = ifds.order
    out = bytearray(ifds.data[:4] + b"\0\0\0\0")
    link = 4  # where the offset of the next directory goes
    copied: dict[tuple[int, int], int] = {}  # shared strips stay shared
    budget = len(ifds.data)
    for page in pages:
        new_offsets = []
        for offset, length in page.pieces:
            if (offset, length) not in copied:
                budget -= length
                if budget < 0:
                    raise DamagedImage("The TIFF pixel strips overlap, so the file is damaged.")
                _align(out)
                copied[offset, length] = len(out)
                out += ifds.data[offset : offset + length]
            new_offsets.append(copied[offset, length])
        _align(out)
        struct.pack_into(order + "I", out, link, len(out))
        link = _write_directory(out, ifds, page, new_offsets)
    return bytes(out)


def _write_directory(out: bytearray, ifds: Ifds, page: _Image, new_offsets: list[int]) -> int:
    """Append one directory and its out-of-line values; return where its next-IFD link is."""
    order = ifds.order
    unique = {e.tag: e for e in reversed(page.directory.entries) if e.tag in STRUCTURAL_TAGS}
    profile = icc.clean(ifds.raw(unique[ICC_PROFILE])) if ICC_PROFILE in unique else None
    if profile is None:
        unique.pop(ICC_PROFILE, None)
    kept = [unique[tag] for tag in sorted(unique)]  # ascending, first copy of a repeated tag
    start = len(out)
    link = start + 2 + 12 * len(kept)
    values = bytearray()
    fields = []
    for entry in kept:
        if entry.type not in TYPE_SIZES:
            raise DamagedImage("A TIFF tag has an unknown value type.")
        typ, count, raw = entry.type, entry.count, ifds.raw(entry)
        if entry.tag == page.offsets_tag:
            typ, raw = 4, struct.pack(f"{order}{len(new_offsets)}I", *new_offsets)
        if entry.tag == ICC_PROFILE and profile is not None:
            typ, count, raw = UNDEFINED, len(profile), profile
        if len(raw) <= 4:
            fields.append(struct.pack(order + "HHI", entry.tag, typ, count) + raw.ljust(4, b"\0"))
        else:
            at = link + 4 + len(values)
            fields.append(struct.pack(order + "HHII", entry.tag, typ, count, at))
            values += raw + b"\0" * (len(raw) % 2)  # values start on a word boundary
    out += struct.pack(order + "H", len(kept)) + b"".join(fields) + b"\0\0\0\0" + values
    return link


def _align(out: bytearray) -> None:
    if len(out) % 2:
        out += b"\0"


def accepts(head: bytes) -> bool:
    return head[:4] in (b"II*\0", b"MM\0*")


FORMAT = Format("tiff", "image/tiff", "tif", parse, strip, accepts=accepts)
