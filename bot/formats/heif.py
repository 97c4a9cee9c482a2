"""heif: HEIC, HEIF and AVIF still images (ISO base media file format), cleaned by box surgery.

What these files can carry besides the picture:
- an 'Exif' item (GPS, capture times, camera serials, maker notes, an EXIF thumbnail);
- 'mime' items: XMP (application/rdf+xml), C2PA content credentials (application/c2pa);
- thumbnail items (iref 'thmb'), auxiliary images (iref 'auxl': depth maps, HDR gain maps),
  other pictures ('tmap' gain-map images, alternates), 'uri ' items, region annotations;
- item properties holding text or times ('udes', 'crtt', 'mdft', ...) and the handler name;
- boxes next to the picture: Samsung motion photo video ('mpvd'), Samsung trailer ('sefd'),
  'uuid' boxes (C2PA, XMP), a 'moov' video track, old bytes in 'free' boxes or between items.

How we remove it, losslessly: the output is a new file written from parsed fields, never a
kept box copied whole ('ftyp', 'meta', one 'mdat', in that order):
- 'ftyp': the codec's major brand, 'mif1' and the standard still-image brands the file had, in a
  fixed order; 'hdlr' with zero reserved words and an empty name; 'dinf' with one self-contained
  'url '; items renumbered 1..n in file order, with empty names; 'iloc' with one extent per
  item into the new 'mdat'; 'iref' only of types decoders follow ('dimg', 'auxl', 'prem', 'base')
  between kept items; 'grpl' only 'altr'/'ster' groups of kept items;
- a codec's configuration properties ('hvcC', 'av1C', 'jpgC', 'uncC', ...) only for items of that
  codec (`CODEC_PROPERTIES`);
- every kept property rebuilt from its fields at its specified length ('ispe', 'pixi', 'irot',
  'imir', 'clap', 'pasp', 'colr' nclx (H.273 code points only, one per picture; two that
  differ are refused), 'auxC' with a standard alpha URN only, 'hvcC' with only
  VPS/SPS/PPS arrays and its fixed fields from the SPS, 'av1C' with only sequence header OBUs,
  'avcC', 'clli', 'mdcv', 'a1op', 'a1lx', 'lsel', 'cloc', 'rloc', 'tols'); a property longer
  than its fields is reported; a 'colr' prof/rICC profile is rebuilt with only its colour data
  by `bot.formats.icc`;
- inside the picture data, by its own framing: HEVC NAL units other than base-layer slices and
  parameter sets (SEI prefix/suffix, filler, AUD, reserved slice and other reserved and
  unspecified types) and AV1 OBUs
  other than sequence/frame headers, tile groups and frames (metadata, padding, temporal
  delimiters, reserved, redundant frame headers) are cut out, not zeroed; grid and overlay
  descriptors and 'tmap' gain map metadata are rewritten at their length;
  an overlay input that lies wholly outside the canvas is dropped with its data;
- only the bytes of kept items are copied, so old data, gaps, removed items (an Exif item whose
  bytes lie inside the picture's data loses them with the unit that held them) and every other
  top-level box are gone.

Kept: the primary item and what it is derived from ('dimg': grid tiles, 'iden', 'iovl', 'tmap'
inputs) and its alpha planes. Image sequences ('moov' with 'pict' tracks, and 'auxv' alpha
tracks): every frame is kept, its skipped units cut out like in an item; the movie is written
anew (zero creation/modification times, track matrices only as quarter turns or mirrors,
language 'und', empty handler names, sample entries without compressor name and with rebuilt
children, one chunk per track, no 'udta'/'meta' in the movie or its tracks, no other tracks).
A still image whose bytes are exactly a frame's keeps pointing at that frame.

H.264 items ('avc1') are treated like HEVC ones ('avcC' from its SPS, only slices and parameter
sets kept); JPEG items ('jpeg') are cleaned by the JPEG scrubber (bot/formats/jpeg.py).

Residual (documented, not rebuilt): the configuration properties of rarer codecs (vvcC, lhvC,
jpgC, j2kH, uncC, cmpd, ...) and the data of items in those codecs are copied as they are;
inside kept NAL units and OBUs nothing is parsed beyond the SPS fields hvcC/avcC repeat, the
parameter-set ids (an hvcC keeps only the sets its items' slices name) and the AV1 sequence
header (cut at its last field): bytes after an HEVC/AVC parameter set's last field, unused
parameter sets in a sequence's sample entry or in avcC, slice and tile padding remain.
"""

import datetime
import math
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from bot.errors import DamagedImage, NotClean, UnsupportedFormat
from bot.formats import icc, isobmff
from bot.formats.base import Block, BlockKind, Format, Parsed
from bot.formats.isobmff import Box, Budget, Reader, boxes
from bot.formats.isobmff import name as _name

MAX_BOXES = isobmff.MAX_BOXES
MAX_ITEMS = 10_000
MAX_EXTENTS = 100_000
MAX_BRANDS = 64
SMALL_THUMBNAIL = 256 * 1024  # thumbnails up to this size are handed on as bytes

_LABEL = "HEIF"

HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
AVIF_BRANDS = frozenset({b"avif", b"avis", b"avio"})
# Structural brands shared by every HEIF codec: the codec-specific brand decides the family.
GENERIC_BRANDS = frozenset(
    {
        b"mif1",
        b"mif2",
        b"mif3",
        b"msf1",
        b"miaf",
        b"MiHE",
        b"MiHA",
        b"MiHB",
        b"MiAC",
        b"MiCm",
        b"MiPr",
        b"MA1A",
        b"MA1B",
        b"jpeg",
        b"jpgs",
        b"j2ki",
        b"vvic",
        b"unif",
    }
)


def _video(brand: bytes) -> str:
    """What a video's major brand is called in a refusal."""
    if brand == b"qt  ":
        return "A video (MOV)"
    return "A video (3GP)" if brand.startswith(b"3g") else "A video (MP4/MOV)"


_OTHER_BRANDS: dict[bytes, str] = {
    b"jxl ": "A JPEG XL image",
    b"crx ": "A Canon raw photo (CR3)",
    b"M4A ": "An audio file (M4A)",
    b"M4B ": "An audio book (M4B)",
    b"M4P ": "An audio file (M4P)",
    **{brand: _video(brand) for brand in isobmff.VIDEO_BRANDS},
}

IMAGE_ITEM_TYPES = frozenset(
    {
        b"hvc1",
        b"hvt1",
        b"lhv1",
        b"av01",
        b"avc1",
        b"vvc1",
        b"jpeg",
        b"j2k1",
        b"unci",
        b"grid",
        b"iden",
        b"iovl",
        b"tmap",
        b"mski",
    }
)
# Item properties a decoder needs to show the kept picture as it was; everything else goes
# (also 'cclv', a content colour volume hint no decoder needs that we do not take apart).
KEPT_PROPERTIES = frozenset(
    {
        b"hvcC",
        b"lhvC",
        b"av1C",
        b"avcC",
        b"vvcC",
        b"jpgC",
        b"j2kH",
        b"uncC",
        b"cmpd",
        b"cmpC",
        b"icef",
        b"cpat",
        b"splz",
        b"sbpm",
        b"snuc",
        b"cloc",
        b"ispe",
        b"pixi",
        b"colr",
        b"irot",
        b"imir",
        b"clap",
        b"pasp",
        b"auxC",
        b"rloc",
        b"lsel",
        b"oinf",
        b"tols",
        b"a1op",
        b"a1lx",
        b"clli",
        b"mdcv",
        b"amve",
    }
)
_PROPERTY_KINDS = {
    b"udes": (BlockKind.TEXT, "HEIF user description property"),
    b"altt": (BlockKind.TEXT, "HEIF accessibility text property"),
    b"crtt": (BlockKind.DATE, "HEIF creation time property"),
    b"mdft": (BlockKind.DATE, "HEIF modification time property"),
    b"taic": (BlockKind.DATE, "HEIF clock information property"),
    b"itai": (BlockKind.DATE, "HEIF timestamp property"),
}
ALPHA_URNS = frozenset(
    {b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha", b"urn:mpeg:hevc:2015:auxid:1"}
)
_C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
_XMP_UUID = bytes.fromhex("be7acfcb97a942e89c71999491e3afac")
# Top-level boxes that hold only padding; zeroed or cut like unknown boxes, but not reported.
_PADDING = frozenset({b"free", b"skip", b"wide"})
_KNOWN_META = frozenset(
    {b"hdlr", b"pitm", b"iinf", b"iloc", b"iref", b"iprp", b"idat", b"dinf", b"grpl"}
)


_Buffer = bytes | memoryview  # picture data: a view into the file when it is passed on whole


@dataclass(frozen=True)
class _Item:
    id: int
    type: bytes  # b"" for version 0/1 entries, which carry no type
    content_type: bytes
    box: Box
    version: int
    flags: int


@dataclass(frozen=True)
class _Location:
    extents: tuple[tuple[int, int], ...]  # absolute (start, end) file offsets
    in_idat: bool


@dataclass(frozen=True)
class _Ref:
    type: bytes
    source: int
    targets: tuple[int, ...]


@dataclass(frozen=True)
class _Association:
    item: int
    properties: tuple[tuple[int, bool], ...]  # (1-based ipco index, essential)


@dataclass
class _Meta:
    box: Box
    children: list[Box]
    items: dict[int, _Item] = field(default_factory=dict)
    locations: dict[int, _Location] = field(default_factory=dict)
    refs: list[_Ref] = field(default_factory=list)
    primary: int = -1
    properties: list[Box] = field(default_factory=list)
    associations: dict[int, _Association] = field(default_factory=dict)
    idat: Box | None = None
    groups: list[tuple[Box, tuple[int, ...]]] = field(default_factory=list)  # entity groups
    overlays: dict[int, "_Overlay"] = field(default_factory=dict)  # 'iovl' items, as kept


@dataclass(frozen=True)
class _Layout:
    top: tuple[Box, ...]
    meta: _Meta
    kept: frozenset[int]
    kept_properties: tuple[int, ...]  # 1-based ipco indices, in order
    blocks: tuple[Block, ...]
    width: int
    height: int
    movie: "_Movie | None" = None  # the picture tracks of an image sequence


# --- reading ------------------------------------------------------------------------------


def _damaged(what: str) -> DamagedImage:
    return DamagedImage(f"The HEIF file is damaged ({what}).")


def _reader(data: bytes, pos: int, end: int) -> Reader:
    return Reader(data, pos, end, _LABEL)


def _full_box(data: bytes, box: Box) -> tuple[int, int, Reader]:
    return isobmff.full_box(data, box, _LABEL)


def _one(found: Iterable[Box], kind: bytes) -> Box | None:
    matches = [box for box in found if box.type == kind]
    if len(matches) > 1:
        raise _damaged(f"more than one '{_name(kind)}' box")
    return matches[0] if matches else None


# --- the brand --------------------------------------------------------------------------------


def sniff_brand(data: bytes, fmt: Format) -> Format:
    """The format of a file with 'ftyp' at offset 4: HEIC or AVIF, or a refusal naming it."""
    size = int.from_bytes(data[:4], "big")
    end = min(len(data), size if size >= 16 else 16, 16 + 4 * MAX_BRANDS)
    brands = [data[8:12]] + [data[pos : pos + 4] for pos in range(16, end - 3, 4)]
    for brand in brands:
        if brand in AVIF_BRANDS:
            return AVIF_FORMAT
        if brand in HEIC_BRANDS:
            return fmt
        if brand in _OTHER_BRANDS and brand == brands[0]:
            raise UnsupportedFormat(_OTHER_BRANDS[brand])
    if any(brand in GENERIC_BRANDS for brand in brands):
        return fmt
    for brand in brands:
        if brand in _OTHER_BRANDS:
            raise UnsupportedFormat(_OTHER_BRANDS[brand])
    raise UnsupportedFormat("This ISO media file")


# --- the meta box -------------------------------------------------------------------------------


def _read_meta(data: bytes, box: Box, budget: Budget) -> _Meta:
    version, _, _ = _full_box(data, box)
    if version != 0:
        raise _damaged("unknown 'meta' version")
    meta = _Meta(box, boxes(data, box.body + 4, box.end, budget))
    hdlr = _one(meta.children, b"hdlr")
    if hdlr is None:
        raise _damaged("no handler")
    _, _, reader = _full_box(data, hdlr)
    reader.take(4)  # pre_defined
    if reader.take(4) != b"pict":
        raise UnsupportedFormat("This ISO media file without a picture")
    reader.take(12)  # reserved: the handler has its 24 fixed bytes
    meta.idat = _one(meta.children, b"idat")
    _read_items(data, meta, budget)
    _read_locations(data, meta)
    _read_refs(data, meta, budget)
    _read_properties(data, meta, budget)
    _read_groups(data, meta, budget)
    pitm = _one(meta.children, b"pitm")
    if pitm is None:
        raise _damaged("no primary item")
    version, _, reader = _full_box(data, pitm)
    meta.primary = reader.uint(2 if version == 0 else 4)
    if meta.primary not in meta.items:
        raise _damaged("the primary item is missing")
    if _one(meta.children, b"ipro") is not None:
        raise UnsupportedFormat("An encrypted HEIF image")
    return meta


def _read_items(data: bytes, meta: _Meta, budget: Budget) -> None:
    iinf = _one(meta.children, b"iinf")
    if iinf is None:
        raise _damaged("no item list")
    version, _, reader = _full_box(data, iinf)
    count = reader.uint(2 if version == 0 else 4)
    entries = boxes(data, reader.pos, iinf.end, budget)
    if count != len(entries) or count > MAX_ITEMS:
        raise _damaged("the item count is wrong")
    for entry in entries:
        if entry.type != b"infe":
            raise _damaged("unexpected box in the item list")
        item = _read_infe(data, entry)
        if item.id in meta.items:
            raise _damaged("two items share an id")
        meta.items[item.id] = item


def _read_infe(data: bytes, box: Box) -> _Item:
    version, flags, reader = _full_box(data, box)
    if version > 3:
        raise _damaged("unknown item entry version")
    item_id = reader.uint(4 if version == 3 else 2)
    reader.take(2)  # protection index
    kind = reader.take(4) if version >= 2 else b""
    reader.string()  # item name
    # 'mime' (and untyped) items say their content type, 'uri ' items their URI type.
    has_type = kind in (b"mime", b"", b"uri ") and reader.left() > 0
    content_type = reader.string() if has_type else b""
    return _Item(item_id, kind, content_type, box, version, flags)


def _read_locations(data: bytes, meta: _Meta) -> None:
    iloc = _one(meta.children, b"iloc")
    if iloc is None:
        return
    version, _, reader = _full_box(data, iloc)
    if version > 2:
        raise _damaged("unknown item location version")
    sizes = reader.uint(2)
    offset_size, length_size = sizes >> 12, (sizes >> 8) & 15
    base_size, index_size = (sizes >> 4) & 15, sizes & 15 if version else 0
    if any(size not in (0, 4, 8) for size in (offset_size, length_size, base_size, index_size)):
        raise _damaged("impossible item location field size")
    count = reader.uint(2 if version < 2 else 4)
    extents_left = MAX_EXTENTS
    for _ in range(count):
        item_id = reader.uint(2 if version < 2 else 4)
        method = reader.uint(2) & 15 if version else 0
        reader.take(2)  # data reference index: 0 or a self-contained 'url '
        base = reader.uint(base_size)
        extent_count = reader.uint(2)
        extents_left -= extent_count
        if extents_left < 0:
            raise _damaged("too many item extents")
        extents = []
        for _ in range(extent_count):
            reader.uint(index_size)
            offset = reader.uint(offset_size)
            extents.append((base + offset, reader.uint(length_size)))
        if item_id in meta.locations:
            raise _damaged("an item has two locations")
        meta.locations[item_id] = _place(data, meta, method, extents)


def _place(data: bytes, meta: _Meta, method: int, extents: list[tuple[int, int]]) -> _Location:
    """Turn (offset, length) extents into absolute file ranges inside the file or 'idat'."""
    if method == 0:
        origin, limit = 0, len(data)
    elif method == 1:
        if meta.idat is None:
            raise _damaged("an item lives in a missing 'idat'")
        origin, limit = meta.idat.body, meta.idat.end
    else:
        raise UnsupportedFormat("A HEIF image built from other items' data")
    ranges = []
    for offset, length in extents:
        start = origin + offset
        end = limit if length == 0 else start + length
        if start > limit or end > limit:
            raise isobmff.truncated(_LABEL)
        ranges.append((start, end))
    return _Location(tuple(ranges), method == 1)


def _read_refs(data: bytes, meta: _Meta, budget: Budget) -> None:
    iref = _one(meta.children, b"iref")
    if iref is None:
        return
    version, _, reader = _full_box(data, iref)
    if version > 1:
        raise _damaged("unknown item reference version")
    size = 2 if version == 0 else 4
    for box in boxes(data, reader.pos, iref.end, budget):
        ref = _reader(data, box.body, box.end)
        source = ref.uint(size)
        targets = tuple(ref.uint(size) for _ in range(ref.uint(2)))
        meta.refs.append(_Ref(box.type, source, targets))


def _read_properties(data: bytes, meta: _Meta, budget: Budget) -> None:
    iprp = _one(meta.children, b"iprp")
    if iprp is None:
        return
    children = boxes(data, iprp.body, iprp.end, budget)
    ipco = _one(children, b"ipco")
    if ipco is None:
        raise _damaged("no item properties")
    meta.properties = boxes(data, ipco.body, ipco.end, budget)
    for ipma in (box for box in children if box.type == b"ipma"):
        for association in _read_ipma(data, ipma, len(meta.properties)):
            if association.item in meta.associations:
                raise _damaged("an item has two property lists")
            meta.associations[association.item] = association


def _read_groups(data: bytes, meta: _Meta, budget: Budget) -> None:
    grpl = _one(meta.children, b"grpl")
    for group in boxes(data, grpl.body, grpl.end, budget) if grpl else ():
        reader = _reader(data, group.body + 8, group.end)  # after version, flags and group id
        members = tuple(reader.uint(4) for _ in range(reader.uint(4)))
        meta.groups.append((group, members))


def _read_ipma(data: bytes, box: Box, property_count: int) -> Iterator[_Association]:
    version, flags, reader = _full_box(data, box)
    wide = flags & 1
    for _ in range(reader.uint(4)):
        item_id = reader.uint(2 if version == 0 else 4)
        properties = []
        for _ in range(reader.uint(1)):
            value = reader.uint(2 if wide else 1)
            top = 0x8000 if wide else 0x80
            index = value & (top - 1)
            if index > property_count:
                raise _damaged("an item uses a missing property")
            if index:
                properties.append((index, bool(value & top)))
        yield _Association(item_id, tuple(properties))


# --- deciding what stays ------------------------------------------------------------------------


def _property(meta: _Meta, item: int, kind: bytes) -> Box | None:
    association = meta.associations.get(item)
    for index, _ in association.properties if association else ():
        if meta.properties[index - 1].type == kind:
            return meta.properties[index - 1]
    return None


def _aux_type(data: bytes, meta: _Meta, item: int) -> bytes:
    box = _property(meta, item, b"auxC")
    if box is None:
        return b""
    return _full_box(data, box)[2].string()


def _kept_items(data: bytes, meta: _Meta) -> frozenset[int]:
    """The primary item, everything it is derived from ('dimg'), and alpha planes of those."""
    inputs: dict[int, list[int]] = {}
    for ref in meta.refs:
        if ref.type == b"dimg":
            inputs.setdefault(ref.source, []).extend(ref.targets)
        if ref.type == b"auxl" and _aux_type(data, meta, ref.source) in ALPHA_URNS:
            for target in ref.targets:
                inputs.setdefault(target, []).append(ref.source)
    kept = {meta.primary}
    stack = [meta.primary]
    while stack:
        for needed in inputs.get(stack.pop(), ()):
            if needed not in kept:
                kept.add(needed)
                stack.append(needed)
    for item_id in kept:
        item = meta.items.get(item_id)
        if item is None:
            raise _damaged("the picture needs a missing item")
        if item.type not in IMAGE_ITEM_TYPES:
            raise NotClean("The picture is built from a metadata item, so it cannot be cleaned.")
    return frozenset(kept)


def _item_bytes(data: bytes, meta: _Meta, item: int) -> bytes:
    location = meta.locations.get(item)
    return b"".join(data[a:b] for a, b in location.extents) if location else b""


def _item_blocks(data: bytes, meta: _Meta, kept: frozenset[int]) -> Iterator[Block]:
    """One block per removed item that is not just a part of another removed picture."""
    parts = {t for ref in meta.refs if ref.type == b"dimg" for t in ref.targets}
    aux_of_removed = {
        ref.source
        for ref in meta.refs
        if ref.type == b"auxl" and not any(t in kept for t in ref.targets)
    }
    for item in meta.items.values():
        part = item.type in IMAGE_ITEM_TYPES and (item.id in parts or item.id in aux_of_removed)
        if item.id not in kept and not part:
            yield _item_block(data, meta, item)


def _item_block(data: bytes, meta: _Meta, item: _Item) -> Block:
    where = f"HEIF item {item.id}"
    content = item.content_type.lower()
    if item.type == b"Exif":
        return Block(
            BlockKind.EXIF, f"{where} (Exif)", _exif_tiff(_item_bytes(data, meta, item.id))
        )
    if item.type in (b"mime", b"") and (b"rdf+xml" in content or b"xmp" in content):
        return Block(BlockKind.XMP, f"{where} (XMP)", _item_bytes(data, meta, item.id))
    if b"c2pa" in content or item.type == b"jumb":
        return Block(
            BlockKind.C2PA, f"{where} (content credentials)", _item_bytes(data, meta, item.id)
        )
    if item.type in IMAGE_ITEM_TYPES:
        return _picture_block(data, meta, item, where)
    if item.type == b"rgan":
        return Block(BlockKind.OTHER, f"{where} (region annotation)")
    label = _name(item.type) if item.type else "untyped"
    return Block(BlockKind.OTHER, f"{where} ('{label}' item)", _item_bytes(data, meta, item.id))


def _exif_tiff(payload: bytes) -> bytes:
    """An Exif item starts with the offset of its TIFF header (after those 4 bytes)."""
    skip = 4 + int.from_bytes(payload[:4], "big")
    return payload[skip:] if len(payload) >= 4 and skip <= len(payload) else payload


def _picture_block(data: bytes, meta: _Meta, item: _Item, where: str) -> Block:
    sources = {ref.type for ref in meta.refs if ref.source == item.id}
    if b"thmb" in sources:
        payload = _item_bytes(data, meta, item.id)
        small = payload if len(payload) <= SMALL_THUMBNAIL else b""
        return Block(BlockKind.THUMBNAIL, f"{where} (thumbnail)", small)
    if b"auxl" in sources:
        aux = _name(_aux_type(data, meta, item.id)[:80])
        return Block(BlockKind.IMAGE, f"{where} (auxiliary image {aux})")
    if item.type == b"tmap":
        return Block(BlockKind.IMAGE, f"{where} (HDR gain map)")
    return Block(BlockKind.IMAGE, f"{where} (second picture)")


def _used_properties(meta: _Meta, kept: frozenset[int]) -> list[int]:
    """1-based 'ipco' indices that the kept items use, in order."""
    empty = _Association(0, ())
    return sorted({i for item in kept for i, _ in meta.associations.get(item, empty).properties})


# Properties that configure one codec, and the item types of that codec: on an item of another
# type no decoder reads them (and the rarer ones are copied whole), so they go.
_HEVC_ITEMS = frozenset({b"hvc1", b"hvt1", b"lhv1"})
_UNCOMPRESSED = {p: frozenset({b"unci"}) for p in (b"uncC", b"cmpd", b"cmpC", b"icef")}
_BAYER = {p: frozenset({b"unci"}) for p in (b"cpat", b"splz", b"sbpm", b"snuc")}
CODEC_PROPERTIES: dict[bytes, frozenset[bytes]] = {
    b"hvcC": _HEVC_ITEMS,
    b"lhvC": frozenset({b"lhv1"}),
    b"oinf": frozenset({b"lhv1"}),  # layers past the base one: hvc1 items keep layer 0 only
    b"tols": frozenset({b"lhv1"}),
    b"lsel": frozenset({b"lhv1", b"av01"}),
    b"av1C": frozenset({b"av01"}),
    b"a1op": frozenset({b"av01"}),
    b"a1lx": frozenset({b"av01"}),
    b"avcC": frozenset({b"avc1"}),
    b"vvcC": frozenset({b"vvc1"}),
    b"jpgC": frozenset({b"jpeg"}),
    b"j2kH": frozenset({b"j2k1"}),
    **_UNCOMPRESSED,
    **_BAYER,
}


def _kept_properties(meta: _Meta, kept: frozenset[int]) -> list[int]:
    """The used properties we keep: of a kept type, and a codec's only when an item of that
    codec uses it."""
    users: dict[int, set[bytes]] = {}  # ipco index -> the types of the kept items using it
    for item in kept:
        kind = meta.items[item].type if item in meta.items else b""
        for index, _ in _props_of(meta, item):
            users.setdefault(index, set()).add(kind)
    found = []
    for index in _used_properties(meta, kept):
        kind = meta.properties[index - 1].type
        codec = CODEC_PROPERTIES.get(kind)
        if kind in KEPT_PROPERTIES and (codec is None or users.get(index, set()) & codec):
            found.append(index)
    return found


def _property_blocks(data: bytes, meta: _Meta, kept: frozenset[int]) -> Iterator[Block]:
    for index in _used_properties(meta, kept):
        box = meta.properties[index - 1]
        if box.type == b"colr" and data[box.body : box.body + 4] in (b"prof", b"rICC"):
            yield Block(BlockKind.ICC, "HEIF colour profile", data[box.body + 4 : box.end])
        elif box.type not in KEPT_PROPERTIES:
            kind, label = _PROPERTY_KINDS.get(
                box.type, (BlockKind.OTHER, f"HEIF '{_name(box.type)}' property")
            )
            yield Block(kind, label, data[box.body : box.end])
        elif box.type != b"colr":  # (a profile is judged as ICC)
            size = _rebuilt_size(data, box)
            where = f"HEIF '{_name(box.type)}' property"
            if size is None:
                yield Block(BlockKind.OTHER, f"{where} that is not what its fields say")
            elif size < box.end - box.start:
                extra = box.end - box.start - size
                yield Block(BlockKind.OTHER, f"{where} with {extra} bytes beyond its fields")


def _meta_blocks(data: bytes, meta: _Meta) -> Iterator[Block]:
    for box in meta.children:
        if box.type in _KNOWN_META or box.type in _PADDING:
            continue
        payload = data[box.body : box.end]
        if box.type == b"xml ":
            yield Block(BlockKind.XMP, "HEIF 'xml ' box", payload[4:])
        else:
            yield Block(BlockKind.OTHER, f"HEIF '{_name(box.type)}' box in meta", payload)


def _top_block(data: bytes, box: Box) -> Block | None:
    if box.type in (b"ftyp", b"meta", b"mdat") or box.type in _PADDING:
        return None
    payload = data[box.body : box.end]
    if box.type == b"mpvd":
        return Block(BlockKind.MEDIA, "Samsung motion photo video (mpvd box)", payload)
    if box.type == b"moov":
        return Block(BlockKind.MEDIA, "video track (moov box)")
    if box.type == b"uuid":
        user_type = data[box.body - 16 : box.body]
        if user_type == _C2PA_UUID:
            return Block(BlockKind.C2PA, "C2PA uuid box", payload)
        if user_type == _XMP_UUID:
            return Block(BlockKind.XMP, "XMP uuid box", payload)
        return Block(BlockKind.OTHER, "uuid box", payload)
    if box.type == b"sefd":
        return Block(BlockKind.OTHER, "Samsung trailer (sefd box)", payload)
    return Block(BlockKind.OTHER, f"'{_name(box.type)}' box", payload)


def _read(data: bytes, with_blocks: bool = True) -> _Layout:
    """The file's layout; `with_blocks` lists what it holds besides the picture (strip, which
    only writes the kept part, does not need the list)."""
    budget = Budget(_LABEL)
    top = boxes(data, 0, len(data), budget)
    if not top or top[0].type != b"ftyp":
        raise _damaged("no file type box first")
    moov = _one(top, b"moov")
    movie_blocks: list[Block] = []
    movie = _read_movie(data, moov, budget, movie_blocks) if moov else None
    meta_box = _one(top, b"meta")
    if meta_box is None:
        raise UnsupportedFormat("This ISO media file without a picture")
    meta = _read_meta(data, meta_box, budget)
    _hide_overlay_inputs(data, meta)
    kept = _kept_items(data, meta)
    _check_kept_extents(top, meta, kept)
    blocks = (
        [
            *_item_blocks(data, meta, kept),
            *_skipped_unit_blocks(data, meta, kept),
            *_property_blocks(data, meta, kept),
            *_meta_blocks(data, meta),
            *movie_blocks,
            *(
                block
                for box in top
                if (block := _top_block(data, box)) is not None
                and not (movie and box.type == b"moov")
            ),
        ]
        if with_blocks
        else []
    )
    width, height = _size(data, meta)
    properties = tuple(_kept_properties(meta, kept))
    layout = _Layout(tuple(top), meta, kept, properties, tuple(blocks), width, height, movie)
    if movie is not None:
        _check_samples(top, movie)
    return layout


def _check_samples(top: list[Box], movie: "_Movie") -> None:
    """Frames, like items, must lie in an 'mdat': the only boxes whose bytes we copy."""
    mdats = [box for box in top if box.type == b"mdat"]
    for track in movie.tracks:
        for start, end in track.samples:
            if not any(box.body <= start and end <= box.end for box in mdats):
                raise _damaged("a frame outside its data box")


def _hide_overlay_inputs(data: bytes, meta: _Meta) -> None:
    """An overlay input placed wholly outside the canvas is never seen: it goes like metadata."""
    for index, ref in enumerate(meta.refs):
        item = meta.items.get(ref.source)
        if ref.type == b"dimg" and item is not None and item.type == b"iovl":
            if ref.source in meta.overlays:
                raise _damaged("an overlay has two input lists")
            overlay, visible = _read_overlay(data, meta, ref.source, ref.targets)
            meta.overlays[ref.source] = overlay
            meta.refs[index] = _Ref(ref.type, ref.source, visible)
    for item in meta.items.values():
        if item.type == b"iovl" and item.id not in meta.overlays:
            meta.overlays[item.id], _ = _read_overlay(data, meta, item.id, ())


def _skipped_unit_blocks(data: bytes, meta: _Meta, kept: frozenset[int]) -> Iterator[Block]:
    """Units inside the kept picture data that decoders skip (HEVC SEI, AV1 metadata, ...)."""
    skipped = sum(_picture_data(data, meta, meta.items[item])[1] for item in kept)
    if skipped:
        yield Block(BlockKind.OTHER, f"HEIF picture data: {skipped} units decoders skip")
    for item in kept:
        if meta.items[item].type == b"jpeg":
            for block in _jpeg_item(_item_bytes(data, meta, item))[1]:
                yield Block(block.kind, f"HEIF item {item} (JPEG): {block.name}", block.data)


def _check_kept_extents(top: list[Box], meta: _Meta, kept: frozenset[int]) -> None:
    """Picture data must sit in 'mdat' or 'idat': those are the only boxes we keep in place."""
    mdats = [box for box in top if box.type == b"mdat"]
    for item in kept:
        location = meta.locations.get(item)
        for start, end in location.extents if location else ():
            holders = [meta.idat] if location and location.in_idat else mdats
            if not any(box and box.body <= start and end <= box.end for box in holders):
                raise _damaged("picture data outside its data box")


def _size(data: bytes, meta: _Meta) -> tuple[int, int]:
    """The primary item's 'ispe' (for a grid, the grid's): checked against the pixel limit."""
    ispe = _property(meta, meta.primary, b"ispe")
    if ispe is None:
        return 0, 0
    _, _, reader = _full_box(data, ispe)
    return reader.uint(4), reader.uint(4)


# --- rebuilding kept properties from their fields ------------------------------------------------


def _colour_profile(profile: bytes) -> bytes | None:
    """The ICC profile a 'colr' prof/rICC keeps, rebuilt with only its colour data by
    `bot.formats.icc` (None when it is dropped)."""
    return icc.clean(profile)


def _ispe(data: bytes, box: Box) -> bytes | None:
    _, _, reader = _full_box(data, box)
    return isobmff.full(b"ispe", 0, 0, struct.pack(">II", reader.uint(4), reader.uint(4)))


def _pixi(data: bytes, box: Box) -> bytes | None:
    """Bits per channel: one to four channels of 1 to 16 bits, or the property goes (it only
    describes what the decoder finds in the picture anyway)."""
    _, _, reader = _full_box(data, box)
    channels = reader.uint(1)
    depths = reader.take(channels)
    if not 1 <= channels <= 4 or not all(1 <= depth <= 16 for depth in depths):
        return None
    return isobmff.full(b"pixi", 0, 0, bytes([channels]) + depths)


_MAX_FRACTION = 0xFFFF  # a clean aperture's sizes and offsets are picture-sized fractions


def _clap(data: bytes, box: Box) -> bytes | None:
    """The clean aperture as four reduced fractions; one that is no picture-sized crop goes
    (its numbers are not an aperture, so a decoder refuses it or shows the whole picture)."""
    reader = _reader(data, box.body, box.end)
    fields = []
    for index in range(4):
        numerator = int.from_bytes(reader.take(4), "big", signed=index >= 2)
        denominator = reader.uint(4)
        if not 0 < denominator <= _MAX_FRACTION or abs(numerator) > _MAX_FRACTION * denominator:
            return None
        if index < 2 and numerator <= 0:
            return None
        divisor = math.gcd(numerator, denominator)
        fields.append((numerator // divisor, denominator // divisor))
    sizes = b"".join(struct.pack(">II", n, d) for n, d in fields[:2])
    return isobmff.box(b"clap", sizes + b"".join(struct.pack(">iI", n, d) for n, d in fields[2:]))


def _irot(data: bytes, box: Box) -> bytes | None:
    return isobmff.box(b"irot", bytes([_reader(data, box.body, box.end).uint(1) & 3]))


def _imir(data: bytes, box: Box) -> bytes | None:
    return isobmff.box(b"imir", bytes([_reader(data, box.body, box.end).uint(1) & 1]))


def _words(count: int, size: int = 4) -> Callable[[bytes, Box], bytes | None]:
    """A plain box of `count` unsigned fields of `size` bytes (clap, pasp, clli, mdcv, ...)."""

    def rebuild(data: bytes, box: Box) -> bytes | None:
        reader = _reader(data, box.body, box.end)
        return isobmff.box(box.type, b"".join(reader.take(size) for _ in range(count)))

    return rebuild


def _full_words(count: int, size: int) -> Callable[[bytes, Box], bytes | None]:
    """A version 0 full box of `count` unsigned fields of `size` bytes (cloc, rloc, tols)."""

    def rebuild(data: bytes, box: Box) -> bytes | None:
        version, _, reader = _full_box(data, box)
        if version != 0:
            return None
        return isobmff.full(box.type, 0, 0, b"".join(reader.take(size) for _ in range(count)))

    return rebuild


def _a1lx(data: bytes, box: Box) -> bytes | None:
    reader = _reader(data, box.body, box.end)
    large = reader.uint(1) & 1
    sizes = b"".join(reader.take(4 if large else 2) for _ in range(3))
    return isobmff.box(b"a1lx", bytes([large]) + sizes)


def _auxc(data: bytes, box: Box) -> bytes | None:
    """Only a standard alpha URN survives; the subtype (free bytes) never does."""
    _, _, reader = _full_box(data, box)
    urn = reader.string()
    return isobmff.full(b"auxC", 0, 0, urn + b"\0") if urn in ALPHA_URNS else None


def _colr(data: bytes, box: Box) -> bytes | None:
    reader = _reader(data, box.body, box.end)
    kind = reader.take(4)
    if kind == b"nclx":
        values = [reader.uint(2) for _ in range(3)]
        # A code point H.273 does not define: libheif refuses the picture, so do we.
        known = zip(values, (_NCLX_PRIMARIES, _NCLX_TRANSFERS, _NCLX_MATRICES), strict=True)
        if any(value not in defined for value, defined in known):
            raise _damaged("a colour description no standard defines")
        fields = struct.pack(">3H", *values) + bytes([reader.uint(1) & 0x80])  # reserved 0
        return isobmff.box(b"colr", kind + fields)
    if kind in (b"prof", b"rICC"):
        profile = _colour_profile(reader.rest())
        return isobmff.box(b"colr", kind + profile) if profile else None
    return None


# ITU-T H.273 code points (2 is "unspecified"): colour primaries, transfer, matrix coefficients.
_NCLX_PRIMARIES = frozenset({1, 2, *range(4, 13), 22})
_NCLX_TRANSFERS = frozenset({1, 2, *range(4, 19)})
_NCLX_MATRICES = frozenset({0, 1, 2, *range(4, 15)})

_HEVC_PARAMETER_SETS = (32, 33, 34)  # VPS, SPS, PPS
# Slice types H.265 table 7-1 defines (0-9 sub-layer pictures, 16-21 random access points);
# 10-15 and 22-31 are reserved: decoders skip them, so they are cut out like SEI.
_HEVC_SLICES = frozenset({*range(10), *range(16, 22)})


def _hvcc(data: bytes, box: Box, used: set[int] | None = None) -> bytes | None:
    """HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3) with only parameter-set arrays
    (no SEI, no unknown NAL types) and every fixed field taken from the SPS it carries (profile,
    tier, level, chroma format, bit depths, sub-layers) or set to "unknown" (segmentation,
    parallelism, frame rate), reserved bits as the standard sets them."""
    length_size, found = _hvcc_arrays(data, box)
    if used is not None:
        found = _referenced(found, used)
    sps = next((units[0] for head, units in found if head & 0x3F == 33 and units), b"")
    if not sps:
        raise _damaged("an HEVC configuration without sequence parameters")
    profile, chroma, luma, chroma_depth, sub_layers, nested, _ = _sps_fields(sps)
    fixed = bytes([1]) + profile + struct.pack(">H", 0xF000)
    fixed += bytes([0xFC, 0xFC | chroma, 0xF8 | luma, 0xF8 | chroma_depth]) + bytes(2)
    fixed += bytes([(sub_layers + 1) << 3 | nested << 2 | length_size, len(found)])
    return isobmff.box(b"hvcC", fixed + nal_arrays(found))


_AVC_HIGH_PROFILES = frozenset({100, 110, 122, 144})


def _avcc(data: bytes, box: Box) -> bytes | None:
    """AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3): the SPS and PPS lists only, the
    profile bytes and (for high profiles) chroma format and bit depths taken from the SPS."""
    reader = _reader(data, box.body, box.end)
    if reader.uint(1) != 1:
        raise _damaged("unknown AVC configuration version")
    reader.take(3)
    length_size = reader.uint(1) & 3
    sps = [reader.take(reader.uint(2)) for _ in range(reader.uint(1) & 31)]
    pps = [reader.take(reader.uint(2)) for _ in range(reader.uint(1))]
    sps = [unit for unit in sps if unit and unit[0] & 0x1F == 7]
    pps = [unit for unit in pps if unit and unit[0] & 0x1F == 8]
    if not sps:
        raise _damaged("an AVC configuration without sequence parameters")
    rbsp = _rbsp(sps[0], _SPS_PREFIX, header=1)
    if len(rbsp) < 3:
        raise _damaged("an AVC parameter set is cut short")
    out = bytes([1]) + rbsp[:3] + bytes([0xFC | length_size, 0xE0 | len(sps)])
    out += b"".join(struct.pack(">H", len(unit)) + unit for unit in sps)
    out += bytes([len(pps)]) + b"".join(struct.pack(">H", len(unit)) + unit for unit in pps)
    if rbsp[0] in _AVC_HIGH_PROFILES:
        bits = _Bits(rbsp, 24)
        bits.ue()  # seq_parameter_set_id
        chroma = bits.ue()
        if chroma == 3:
            bits.bits(1)
        luma, chroma_depth = bits.ue(), bits.ue()
        if chroma > 3 or luma > 6 or chroma_depth > 6:
            raise _damaged("an AVC parameter set has an impossible format")
        out += bytes([0xFC | chroma, 0xF8 | luma, 0xF8 | chroma_depth, 0])
    return isobmff.box(b"avcC", out)


def _decoded_avc(payload: _Buffer, start: int) -> bool:
    """Slices (types 1-5) and parameter sets (7, 8): what a decoder uses."""
    first = payload[start]
    if first & 0x80:
        raise _damaged("an AVC unit has its forbidden bit set")
    kind = first & 0x1F
    return 1 <= kind <= 5 or kind in (7, 8)


_SPS_PREFIX = 200  # payload bytes of an SPS read to reach its bit depths


def _rbsp(unit: bytes, limit: int, header: int = 2) -> bytes:
    """The first `limit` payload bytes of a NAL unit, emulation prevention bytes removed (each
    00 00 03 is 00 00 in the RBSP)."""
    return unit[header : header + limit + limit // 2].replace(b"\0\0\3", b"\0\0")[:limit]


class _Bits:
    """A big-endian bit reader over an RBSP (ISO/IEC 23008-2 u(n) and ue(v))."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos
        self.size = 8 * len(data)
        self.value = int.from_bytes(data, "big")

    def bits(self, count: int) -> int:
        end = self.pos + count
        if end > self.size:
            raise _damaged("a parameter set is cut short")
        self.pos = end
        return (self.value >> (self.size - end)) & ((1 << count) - 1)

    def ue(self) -> int:
        """Exp-Golomb: as many zero bits as the value has bits after its leading one."""
        left = self.size - self.pos
        rest = self.value & ((1 << left) - 1)
        zeros = left - rest.bit_length()
        if zeros > 31 or zeros >= left:
            raise _damaged("a parameter set has an impossible number")
        self.pos += zeros + 1
        return (1 << zeros) - 1 + self.bits(zeros)


def _sps_fields(sps: bytes, raw: bool = False) -> tuple[bytes, int, int, int, int, int, int]:
    """From an SPS (or its RBSP, `raw`): the general profile/tier/level bytes,
    chroma_format_idc, luma and chroma bit depths minus 8, sps_max_sub_layers_minus1,
    sps_temporal_id_nesting_flag and sps_seq_parameter_set_id."""
    rbsp = sps if raw else _rbsp(sps, _SPS_PREFIX)
    if len(rbsp) < 13:
        raise _damaged("an HEVC parameter set is cut short")
    sub_layers, nested = rbsp[0] >> 1 & 7, rbsp[0] & 1
    bits = _Bits(rbsp, 8 * 13)
    present = [(bits.bits(1), bits.bits(1)) for _ in range(sub_layers)]
    if sub_layers:
        bits.bits(2 * (8 - sub_layers))
    for profile, level in present:
        bits.bits(88 if profile else 0)
        bits.bits(8 if level else 0)
    sps_id = bits.ue()
    chroma = bits.ue()
    if chroma == 3:
        bits.bits(1)  # separate_colour_plane_flag
    bits.ue()  # width
    bits.ue()  # height
    if bits.bits(1):  # conformance window
        for _ in range(4):
            bits.ue()
    luma, chroma_depth = bits.ue(), bits.ue()
    if chroma > 3 or luma > 7 or chroma_depth > 7:
        raise _damaged("an HEVC parameter set has an impossible format")
    return rbsp[1:13], chroma, luma, chroma_depth, sub_layers, nested, sps_id


def _hvcc_arrays(data: bytes, box: Box) -> tuple[int, list[tuple[int, list[bytes]]]]:
    """lengthSizeMinusOne and the parameter-set arrays (array head, NAL units) of an hvcC."""
    reader = _reader(data, box.body, box.end)
    if reader.uint(1) != 1:
        raise _damaged("unknown HEVC configuration version")
    reader.take(20)  # the fixed fields, rebuilt from the SPS
    length_size = reader.uint(1) & 3
    return length_size, parameter_set_arrays(reader)


def parameter_set_arrays(reader: Reader) -> list[tuple[int, list[bytes]]]:
    """The NAL unit arrays of an HEVC or L-HEVC configuration from its array count on, only
    those of parameter sets (VPS, SPS, PPS), each with only the units whose own header names
    its type (an SEI in the SPS array is no SPS): (array head, reserved bit 0; NAL units)."""
    found: list[tuple[int, list[bytes]]] = []
    for _ in range(reader.uint(1)):
        head = reader.uint(1)
        units = [reader.take(reader.uint(2)) for _ in range(reader.uint(2))]
        units = [unit for unit in units if unit and unit[0] >> 1 & 0x3F == head & 0x3F]
        if head & 0x3F in _HEVC_PARAMETER_SETS and units:
            found.append((head & 0xBF, units))
    return found


def nal_arrays(found: list[tuple[int, list[bytes]]]) -> bytes:
    """`found` (from `parameter_set_arrays`) written back, each array with its counts."""
    return b"".join(bytes([head]) + _counted(units) for head, units in found)


def _rebuilt_size(data: bytes, box: Box) -> int | None:
    """The size a kept property has once rebuilt (None: it goes), without always building it."""
    if box.type == b"hvcC":
        _, found = _hvcc_arrays(data, box)
        return 8 + 23 + sum(3 + sum(2 + len(unit) for unit in units) for _, units in found)
    rebuilt = _new_property(data, box)
    return None if rebuilt is None else len(rebuilt)


def _referenced(
    found: list[tuple[int, list[bytes]]], used: set[int]
) -> list[tuple[int, list[bytes]]]:
    """Only the picture parameter sets the slices name, the sequence parameter sets those name
    and the video parameter sets those name: an unused parameter set is not picture data. When
    an id cannot be read, every parameter set stays."""
    try:
        pps = {u for _, units in found for u in units if u[0] >> 1 & 0x3F == 34}
        pps = {u for u in pps if _parameter_ids(u)[0] in used}
        sps_ids = {_parameter_ids(u)[1] for u in pps}
        sps = {u for _, units in found for u in units if u[0] >> 1 & 0x3F == 33}
        sps = {u for u in sps if _parameter_ids(u)[0] in sps_ids}
        vps_ids = {_parameter_ids(u)[1] for u in sps}
        vps = {u for _, units in found for u in units if u[0] >> 1 & 0x3F == 32}
        vps = {u for u in vps if _parameter_ids(u)[0] in vps_ids}
    except DamagedImage:
        return found
    if not pps or not sps:
        return found
    keep = pps | sps | vps
    kept = [(head, [u for u in units if u in keep]) for head, units in found]
    return [(head, units) for head, units in kept if units]


def _parameter_ids(unit: bytes) -> tuple[int, int]:
    """A parameter set's own id and the id of the set it refers to (VPS: none, 0)."""
    kind = unit[0] >> 1 & 0x3F
    rbsp = _rbsp(unit, _SPS_PREFIX)
    if not rbsp:
        raise _damaged("a parameter set is cut short")
    if kind == 32:
        return rbsp[0] >> 4, 0
    if kind == 34:
        bits = _Bits(rbsp)
        return bits.ue(), bits.ue()
    return _sps_fields(rbsp, raw=True)[6], rbsp[0] >> 4


def _slice_pps(unit: _Buffer) -> int:
    """The picture parameter set a slice segment names (its header's third field)."""
    kind = unit[0] >> 1 & 0x3F
    bits = _Bits(_rbsp(bytes(unit[:40]), 32))
    bits.bits(1)  # first_slice_segment_in_pic_flag
    if 16 <= kind <= 23:
        bits.bits(1)  # no_output_of_prior_pics_flag
    return bits.ue()


def _used_pps(data: bytes, meta: _Meta, items: list[int]) -> set[int] | None:
    """The picture parameter set ids the slices of `items` name; None if one cannot be read."""
    used: set[int] = set()
    try:
        for item in items:
            payload = _item_view(data, meta, item)
            for start, end in _nal_units(payload, _length_size(data, meta, item)):
                if payload[start] >> 1 & 0x3F in _HEVC_SLICES:
                    used.add(_slice_pps(payload[start:end]))
    except DamagedImage:
        return None
    return used


def _counted(units: list[bytes]) -> bytes:
    return struct.pack(">H", len(units)) + b"".join(
        struct.pack(">H", len(unit)) + unit for unit in units
    )


def _av1c(data: bytes, box: Box) -> bytes | None:
    """AV1CodecConfigurationRecord (AV1-ISOBMFF 2.3) with only sequence header OBUs."""
    reader = _reader(data, box.body, box.end)
    if reader.uint(1) != 0x81:
        raise _damaged("unknown AV1 configuration version")
    fields = reader.take(2)
    delay = reader.uint(1)
    delay = delay & 0x1F if delay & 0x10 else 0
    obus, _ = _obus(reader.rest())
    config = b"".join(_obu(*obu) for obu in obus if obu[0] == _OBU_SEQUENCE)
    return isobmff.box(b"av1C", bytes([0x81]) + fields + bytes([delay]) + config)


_REBUILDERS: dict[bytes, Callable[[bytes, Box], bytes | None]] = {
    b"hvcC": _hvcc,
    b"avcC": _avcc,
    b"av1C": _av1c,
    b"ispe": _ispe,
    b"pixi": _pixi,
    b"colr": _colr,
    b"irot": _irot,
    b"imir": _imir,
    b"clap": _clap,
    b"pasp": _words(2),
    b"auxC": _auxc,
    b"clli": _words(2, 2),
    b"mdcv": _words(6, 4),
    b"a1op": _words(1, 1),
    b"a1lx": _a1lx,
    b"lsel": _words(1, 2),
    b"cloc": _full_words(1, 1),
    b"rloc": _full_words(2, 4),
    b"tols": _full_words(1, 2),
    b"amve": _words(2, 4),
}


def _new_property(data: bytes, box: Box) -> bytes | None:
    """A kept property written from its fields; None drops it. Properties of rarer codecs that
    we cannot take apart (avcC, vvcC, uncC, ...) are copied whole: see the module docstring."""
    rebuild = _REBUILDERS.get(box.type)
    return rebuild(data, box) if rebuild else data[box.start : box.end]


# --- units inside the picture data ---------------------------------------------------------------

_OBU_SEQUENCE = 1
# Sequence header, frame header, tile group, frame: what a decoder uses. A redundant frame
# header (7) may only repeat the frame header being decoded (AV1 7.5), which decoders then
# skip: a copy of anything, so it goes.
_KEPT_OBUS = frozenset({1, 3, 4, 6})
_MAX_UNITS = 100_000  # NAL units or OBUs in one item


def _leb128(payload: _Buffer, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        if pos + i >= len(payload):
            raise isobmff.truncated(_LABEL)
        byte = payload[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise _damaged("an AV1 size field is too long")


def _obus(payload: _Buffer) -> tuple[list[tuple[int, int | None, _Buffer]], bool]:
    """(type, extension byte or None, payload) of each OBU, read by its own size fields, and
    whether every OBU is already written as `_obu` writes it."""
    found: list[tuple[int, int | None, _Buffer]] = []
    canonical = True
    pos = 0
    while pos < len(payload):
        if len(found) >= _MAX_UNITS:
            raise _damaged("too many AV1 units")
        head = payload[pos]
        pos += 1
        if head & 0x80:
            raise _damaged("an AV1 unit has its forbidden bit set")
        extension = None
        if head & 4:
            if pos >= len(payload):
                raise isobmff.truncated(_LABEL)
            extension, pos = payload[pos], pos + 1
        if head & 2:
            start = pos
            size, pos = _leb128(payload, pos)
            canonical = canonical and pos - start == max(1, (size.bit_length() + 6) // 7)
        else:
            size, canonical = len(payload) - pos, False
        if pos + size > len(payload):
            raise isobmff.truncated(_LABEL)
        canonical = canonical and not head & 1 and (extension is None or not extension & 7)
        kind, body = (head >> 3) & 15, payload[pos : pos + size]
        if kind == _OBU_SEQUENCE and canonical:
            canonical = _sequence_header(body) == body
        found.append((kind, extension, body))
        pos += size
    return found, canonical


def _uvlc(bits: "_Bits") -> int:
    zeros = 0
    while not bits.bits(1):
        zeros += 1
        if zeros >= 32:
            return 0xFFFFFFFF
    return (1 << zeros) - 1 + bits.bits(zeros)


def _sequence_header(body: _Buffer) -> bytes:
    """An AV1 sequence header OBU's payload cut at its last field (AV1 5.5), then the standard
    trailing bits: nothing after what the decoder reads survives."""
    payload = bytes(body)
    bits = _Bits(payload)
    profile = bits.bits(3)
    bits.bits(1)  # still_picture
    reduced = bits.bits(1)
    if reduced:
        bits.bits(5)  # seq_level_idx[0]
        decoder_model = display_delay = 0
    else:
        decoder_model = display_delay = 0
        buffer_delay = 0
        if bits.bits(1):  # timing_info_present_flag
            bits.bits(64)  # num_units_in_display_tick, time_scale
            if bits.bits(1):  # equal_picture_interval
                _uvlc(bits)
            decoder_model = bits.bits(1)
            if decoder_model:
                buffer_delay = bits.bits(5) + 1
                bits.bits(32 + 5 + 5)
        display_delay = bits.bits(1)
        for _ in range(bits.bits(5) + 1):  # operating points
            bits.bits(12)  # operating_point_idc
            if bits.bits(5) > 7:  # seq_level_idx
                bits.bits(1)  # seq_tier
            if decoder_model and bits.bits(1):
                bits.bits(2 * buffer_delay + 1)
            if display_delay and bits.bits(1):
                bits.bits(4)
    width_bits, height_bits = bits.bits(4) + 1, bits.bits(4) + 1
    bits.bits(width_bits + height_bits)
    if not reduced and bits.bits(1):  # frame_id_numbers_present_flag
        bits.bits(4 + 3)
    bits.bits(3)  # 128x128 superblocks, filter intra, intra edge filter
    if not reduced:
        bits.bits(4)  # interintra, masked compound, warped motion, dual filter
        order_hint = bits.bits(1)
        if order_hint:
            bits.bits(2)  # jnt_comp, ref_frame_mvs
        screen_tools = 2 if bits.bits(1) else bits.bits(1)
        if screen_tools and not bits.bits(1):  # seq_choose_integer_mv
            bits.bits(1)
        if order_hint:
            bits.bits(3)
    bits.bits(3)  # superres, cdef, restoration
    _color_config(bits, profile)
    bits.bits(1)  # film_grain_params_present
    end = bits.pos
    out = bytearray(payload[: end // 8 + 1])
    if len(out) > len(payload):
        raise _damaged("an AV1 sequence header is cut short")
    out[end // 8] = (out[end // 8] & (0xFF00 >> (end % 8)) & 0xFF) | (0x80 >> (end % 8))
    return bytes(out)


def _color_config(bits: "_Bits", profile: int) -> None:
    """AV1 5.5.2: the colour fields of a sequence header (read, to find where it ends)."""
    high = bits.bits(1)
    twelve = bits.bits(1) if profile == 2 and high else 0
    mono = 0 if profile == 1 else bits.bits(1)
    primaries = transfer = matrix = 2  # unspecified
    if bits.bits(1):  # color_description_present_flag
        primaries, transfer, matrix = bits.bits(8), bits.bits(8), bits.bits(8)
    if mono:
        bits.bits(1)  # color_range
        return
    if (primaries, transfer, matrix) == (1, 13, 0):
        pass  # sRGB: full range, 4:4:4, nothing more is written
    else:
        bits.bits(1)  # color_range
        if profile == 0:
            sub_x = sub_y = 1
        elif profile == 1:
            sub_x = sub_y = 0
        elif twelve:
            sub_x = bits.bits(1)
            sub_y = bits.bits(1) if sub_x else 0
        else:
            sub_x, sub_y = 1, 0
        if sub_x and sub_y:
            bits.bits(2)  # chroma_sample_position
    bits.bits(1)  # separate_uv_delta_q


def _obu(kind: int, extension: int | None, body: _Buffer) -> bytes:
    """An OBU with its size field, written as the standard writes it (minimal LEB128)."""
    if kind == _OBU_SEQUENCE:
        body = _sequence_header(body)
    head = bytes([kind << 3 | (6 if extension is not None else 2)])
    if extension is not None:
        head += bytes([extension & 0xF8])
    size, value = bytearray(), len(body)
    while True:
        size.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            break
    return head + bytes(size) + bytes(body)


def _nal_units(payload: _Buffer, length_size: int) -> list[tuple[int, int]]:
    """(start, end) of each length-prefixed NAL unit (after its length field)."""
    found: list[tuple[int, int]] = []
    pos = 0
    while pos < len(payload):
        if len(found) >= _MAX_UNITS:
            raise _damaged("too many HEVC units")
        if pos + length_size > len(payload):
            raise isobmff.truncated(_LABEL)
        size = int.from_bytes(payload[pos : pos + length_size], "big")
        if size == 0 and not any(payload[pos:]):
            break  # zero padding after the last unit: a writer's filler, not a unit
        pos += length_size
        if size < 1 or pos + size > len(payload):
            raise _damaged("a coded unit does not fit its item")
        found.append((pos, pos + size))
        pos += size
    return found


def _decoded_nal(payload: _Buffer, start: int) -> bool:
    """VCL slices (types 0-9, 16-21) and parameter sets of the base layer: what a decoder
    uses."""
    if start + 2 > len(payload):
        raise _damaged("an HEVC unit is shorter than its header")
    first, second = payload[start], payload[start + 1]
    kind = first >> 1 & 0x3F
    layer = (first & 1) << 5 | second >> 3
    if first & 0x80:
        raise _damaged("an HEVC unit has its forbidden bit set")
    return layer == 0 and (kind in _HEVC_SLICES or kind in _HEVC_PARAMETER_SETS)


_HEVC_DELIMITERS = (35, 36, 37)  # access unit delimiter, end of sequence, end of bitstream


def _empty_delimiter(payload: _Buffer, start: int, end: int) -> bool:
    """An HEVC delimiter NAL unit of at most its standard size (3 bytes): dropped, but no
    finding (AVC units are judged by the same header bits; any error is only a finding more
    or less, never a unit kept)."""
    return payload[start] >> 1 & 0x3F in _HEVC_DELIMITERS and end - start <= 3


def _length_size(data: bytes, meta: _Meta, item: int, kind: bytes = b"hvcC") -> int:
    """The size of the length field before each NAL unit, from hvcC (byte 21) or avcC (4)."""
    config = _property(meta, item, kind)
    at = 21 if kind == b"hvcC" else 4
    if config is None or config.end - config.body <= at:
        raise _damaged("a picture has no decoder configuration")
    return (data[config.body + at] & 3) + 1


def _item_view(data: bytes, meta: _Meta, item: int) -> _Buffer:
    """The item's bytes; a one-extent item (the usual case) as a view, without a copy."""
    location = meta.locations.get(item)
    if location and len(location.extents) == 1:
        start, end = location.extents[0]
        return memoryview(data)[start:end]
    return _item_bytes(data, meta, item)


def _picture_data(data: bytes, meta: _Meta, item: _Item) -> tuple[_Buffer, int]:
    """The item's data as we write it, and how many units decoders skip were left out."""
    if item.type in (b"hvc1", b"avc1"):
        payload = _item_view(data, meta, item.id)
        size = _length_size(data, meta, item.id, b"hvcC" if item.type == b"hvc1" else b"avcC")
        units = _nal_units(payload, size)
        decoded = _decoded_nal if item.type == b"hvc1" else _decoded_avc
        kept = [(a, b) for a, b in units if decoded(payload, a)]
        if len(kept) == len(units) and (units[-1][1] if units else 0) == len(payload):
            return payload, 0
        out = b"".join((b - a).to_bytes(size, "big") + payload[a:b] for a, b in kept)
        carriers = [u for u in units if u not in kept and not _empty_delimiter(payload, *u)]
        return out, len(carriers)
    if item.type == b"av01":
        obus, canonical = _obus(_item_view(data, meta, item.id))
        kept_obus = [obu for obu in obus if obu[0] in _KEPT_OBUS]
        if canonical and len(kept_obus) == len(obus):
            return _item_view(data, meta, item.id), 0
        # An empty temporal delimiter goes too (AV1-ISOBMFF), but it carried nothing.
        dropped = [o for o in obus if o[0] not in _KEPT_OBUS and (o[0] != 2 or len(o[2]))]
        return b"".join(_obu(*obu) for obu in kept_obus), len(dropped)
    payload = _item_bytes(data, meta, item.id)
    if item.type == b"jpeg":
        return _jpeg_item(payload)[0], 0
    if item.type == b"grid":
        return _grid(payload), 0
    if item.type == b"iovl":
        return _overlay_bytes(meta.overlays[item.id]), 0
    if item.type == b"iden":
        return b"", 0
    if item.type == b"tmap":
        return _tone_map(payload), 0
    return payload, 0


_TONE_MAP_HEAD, _TONE_MAP_CHANNEL = 22, 40  # ISO 21496-1 gain map metadata, version 0


def _tone_map(payload: bytes) -> bytes:
    """Gain map metadata at its length (ISO 21496-1 / AVIF 'tmap', version 0): minimum
    version 0, writer version written 0, the multichannel and base colour space flags with
    the reserved bits 0, the headrooms and per channel (3 when multichannel, else 1) the gain
    map minimum, maximum, gamma and the two offsets; bytes after them are dropped."""
    if len(payload) < _TONE_MAP_HEAD or payload[0] != 0 or payload[1:3] != b"\0\0":
        raise _damaged("a gain map of a version we cannot read")
    flags = payload[5] & 0xC0
    end = _TONE_MAP_HEAD + _TONE_MAP_CHANNEL * (3 if flags & 0x80 else 1)
    if len(payload) < end:
        raise _damaged("a gain map's fields are cut short")
    return bytes(5) + bytes([flags]) + payload[6:end]


def _jpeg_item(payload: bytes) -> tuple[bytes, tuple[Block, ...]]:
    """A JPEG-coded item, cleaned as a JPEG file is (its own segments rebuilt or dropped), and
    what that JPEG held."""
    from bot.formats import jpeg  # here: the videos that share this module never need it

    if not payload.startswith(b"\xff\xd8"):
        raise UnsupportedFormat("A HEIF image whose JPEG data is split from its tables")
    parsed = jpeg.FORMAT.parse(payload)
    return jpeg.FORMAT.strip(payload, parsed), parsed.blocks


def _grid(payload: bytes) -> bytes:
    reader = Reader(payload, 0, len(payload), _LABEL)
    if reader.uint(1) != 0:
        raise _damaged("unknown grid version")
    large = reader.uint(1) & 1
    rows, columns = reader.uint(1), reader.uint(1)
    width, height = reader.uint(4 if large else 2), reader.uint(4 if large else 2)
    large = 1 if max(width, height) > 0xFFFF else 0
    size = ">II" if large else ">HH"
    return bytes([0, large, rows, columns]) + struct.pack(size, width, height)


@dataclass(frozen=True)
class _Overlay:
    fill: bytes  # four 16-bit canvas fill values
    width: int
    height: int
    offsets: tuple[tuple[int, int], ...]  # of the visible inputs, in reference order


def _read_overlay(
    data: bytes, meta: _Meta, item: int, inputs: tuple[int, ...]
) -> tuple[_Overlay, tuple[int, ...]]:
    """The overlay and the inputs that show on its canvas (a hidden one goes with its data)."""
    payload = _item_bytes(data, meta, item)
    reader = Reader(payload, 0, len(payload), _LABEL)
    if reader.uint(1) != 0:
        raise _damaged("unknown overlay version")
    size = 4 if reader.uint(1) & 1 else 2
    fill = reader.take(8)
    width, height = reader.uint(size), reader.uint(size)
    offsets, visible = [], []
    for target in inputs:
        x = int.from_bytes(reader.take(size), "big", signed=True)
        y = int.from_bytes(reader.take(size), "big", signed=True)
        w, h = _ispe_of(data, meta, target)
        if x < width and y < height and (w == 0 or x + w > 0) and (h == 0 or y + h > 0):
            offsets.append((x, y))
            visible.append(target)
            if x <= 0 and y <= 0 and x + w >= width and y + h >= height:
                fill = bytes(8)  # one input covers the canvas: the fill colour is never seen
    return _Overlay(fill, width, height, tuple(offsets)), tuple(visible)


def _overlay_bytes(overlay: _Overlay) -> bytes:
    values = [overlay.width, overlay.height] + [v for xy in overlay.offsets for v in xy]
    large = any(not -0x8000 <= v < 0x8000 for v in values[2:]) or max(values[:2]) > 0xFFFF
    out = bytes([0, 1 if large else 0]) + overlay.fill
    out += struct.pack(">II" if large else ">HH", overlay.width, overlay.height)
    pair = ">ii" if large else ">hh"
    return out + b"".join(struct.pack(pair, x, y) for x, y in overlay.offsets)


def _ispe_of(data: bytes, meta: _Meta, item: int) -> tuple[int, int]:
    ispe = _property(meta, item, b"ispe")
    if ispe is None:
        return 0, 0
    _, _, reader = _full_box(data, ispe)
    return reader.uint(4), reader.uint(4)


# --- writing: a new file, every box written from its fields ------------------------------------

# References between kept items that a decoder follows; any other type is a name we do not keep.
_KEPT_REFERENCES = frozenset({b"dimg", b"auxl", b"prem", b"base"})
_KEPT_GROUPS = frozenset({b"altr", b"ster"})
# Standard brands a cleaned still image may claim, in the order we write them.
_STILL_BRANDS = (b"mif1", b"mif2", b"miaf", b"MiHE", b"MiHA", b"MiHB", b"MiAC", b"MiPr")
_CODEC_BRANDS = (b"heic", b"heix", b"avif", b"MA1A", b"MA1B")
_SEQUENCE_BRANDS = (b"avis", b"hevc", b"msf1", b"iso8")


def _brands(data: bytes, top: tuple[Box, ...]) -> set[bytes]:
    ftyp = top[0]
    end = min(ftyp.end, ftyp.body + 8 + 4 * MAX_BRANDS)
    brands = {data[pos : pos + 4] for pos in range(ftyp.body + 8, end - 3, 4)}
    return brands | {data[ftyp.body : ftyp.body + 4]}


def _new_ftyp(data: bytes, layout: _Layout, order: list[int]) -> bytes:
    """The major brand of the codec, then 'mif1' and the standard brands the file had."""
    types = {layout.meta.items[i].type for i in order}
    had = _brands(data, layout.top)
    if b"av01" in types:
        major = b"avif"
    elif b"hvc1" in types:
        major = b"heix" if b"heix" in had and b"heic" not in had else b"heic"
    else:
        major = b"mif1"
    needed = {major, b"mif1"} | (had & set(_STILL_BRANDS + _CODEC_BRANDS))
    if major != b"avif":
        needed -= {b"avif", b"MA1A", b"MA1B"}
    if b"hvc1" not in types:
        needed -= {b"heic", b"heix"}
    if layout.movie is not None:  # an image sequence: its brands, the still ones after
        sequence = b"avis" if b"av01" in {t.codec for t in layout.movie.tracks} else b"hevc"
        major, needed = sequence, needed | {sequence, b"msf1", b"iso8"}
    compatible = [b for b in _SEQUENCE_BRANDS + _STILL_BRANDS + _CODEC_BRANDS if b in needed]
    return isobmff.box(b"ftyp", major + bytes(4) + b"".join(compatible))


def _new_hdlr() -> bytes:
    """The handler: pre_defined, 'pict', three reserved words, all zero, and an empty name."""
    return isobmff.full(b"hdlr", 0, 0, bytes(4) + b"pict" + bytes(12) + b"\0")


def _new_dinf() -> bytes:
    """One data reference: a self-contained 'url ' (flag 1), with no location."""
    url = isobmff.full(b"url ", 0, 1, b"")
    return isobmff.box(b"dinf", isobmff.full(b"dref", 0, 0, struct.pack(">I", 1) + url))


def _new_iinf(layout: _Layout, order: list[int]) -> bytes:
    entries = []
    for new, old in enumerate(order, start=1):
        item = layout.meta.items[old]
        body = struct.pack(">HH4s", new, 0, item.type) + b"\0"  # protection 0, empty name
        entries.append(isobmff.full(b"infe", 2, item.flags & 1, body))  # flag 1: hidden
    return isobmff.full(b"iinf", 0, 0, struct.pack(">H", len(entries)) + b"".join(entries))


def _new_iref(layout: _Layout, ids: dict[int, int]) -> bytes:
    refs = []
    for ref in layout.meta.refs:
        targets = [ids[t] for t in ref.targets if t in ids]
        if ref.type in _KEPT_REFERENCES and ref.source in ids and targets:
            body = struct.pack(">HH", ids[ref.source], len(targets))
            refs.append(isobmff.box(ref.type, body + struct.pack(f">{len(targets)}H", *targets)))
    return isobmff.full(b"iref", 0, 0, b"".join(refs)) if refs else b""


def _props_of(meta: _Meta, item: int) -> tuple[tuple[int, bool], ...]:
    association = meta.associations.get(item)
    return association.properties if association else ()


def _one_colour_of_each_kind(
    props: list[tuple[int, bool]], written: list[bytes]
) -> list[tuple[int, bool]]:
    """An item's properties with one 'colr' of each kind (nclx, profile); a second that says
    the same goes, one that differs is refused (decoders disagree on which one counts)."""
    seen: dict[bytes, bytes] = {}
    out = []
    for index, essential in props:
        box = written[index - 1]
        if box[4:8] == b"colr":
            kind = b"nclx" if box[8:12] == b"nclx" else b"prof"
            if kind in seen:
                if seen[kind] != box:
                    raise _damaged("a picture has two different colour descriptions")
                continue
            seen[kind] = box
        out.append((index, essential))
    return out


def _new_iprp(data: bytes, layout: _Layout, order: list[int]) -> bytes:
    meta = layout.meta
    remap: dict[int, int] = {}
    written: list[bytes] = []
    where: dict[bytes, int] = {}  # rebuilt property -> its 1-based index in `written`
    for old in layout.kept_properties:
        box = meta.properties[old - 1]
        if box.type == b"hvcC":
            users = [i for i in order if old in {p for p, _ in _props_of(meta, i)}]
            hevc = [i for i in users if meta.items[i].type == b"hvc1"]
            rebuilt = _hvcc(data, box, _used_pps(data, meta, hevc) if hevc == users else None)
        else:
            rebuilt = _new_property(data, box)
        if rebuilt is not None and rebuilt in where:  # identical properties stored once
            remap[old] = where[rebuilt]
        elif rebuilt is not None:
            written.append(rebuilt)
            remap[old] = where[rebuilt] = len(written)
    wide = len(written) > 127
    top = 0x8000 if wide else 0x80
    entries = []
    for new, old in enumerate(order, start=1):
        association = meta.associations.get(old)
        props = (
            [(remap[i], e) for i, e in association.properties if i in remap] if association else []
        )
        if not props:
            continue
        props = _one_colour_of_each_kind(props, written)
        if len(props) > 255:
            raise _damaged("an item has too many properties")
        values = b"".join(
            (i | (top if essential else 0)).to_bytes(2 if wide else 1, "big")
            for i, essential in props
        )
        entries.append(struct.pack(">HB", new, len(props)) + values)
    ipma = isobmff.full(
        b"ipma", 0, 1 if wide else 0, struct.pack(">I", len(entries)) + b"".join(entries)
    )
    return isobmff.box(b"iprp", isobmff.box(b"ipco", b"".join(written)) + ipma)


def _new_grpl(layout: _Layout, ids: dict[int, int]) -> bytes:
    """Entity groups of a kind decoders use whose every member stays, under new ids."""
    groups: list[bytes] = []
    for group, members in layout.meta.groups:
        if group.type in _KEPT_GROUPS and members and all(m in ids for m in members):
            group_id = len(ids) + 1 + len(groups)
            body = struct.pack(
                f">II{len(members)}I", group_id, len(members), *(ids[m] for m in members)
            )
            groups.append(isobmff.full(group.type, 0, 0, body))
    return isobmff.box(b"grpl", b"".join(groups)) if groups else b""


def _new_iloc(places: list[tuple[int, int]]) -> bytes:
    """Version 0: 4-byte offsets and lengths, no base offset; one extent per item with data."""
    entries = []
    for new, (offset, size) in enumerate(places, start=1):
        if size:
            if offset + size > 0xFFFFFFFF:
                raise _damaged("the picture data is too large")
            entries.append(struct.pack(">HHHII", new, 0, 1, offset, size))
    return isobmff.full(
        b"iloc", 0, 0, struct.pack(">BBH", 0x44, 0, len(entries)) + b"".join(entries)
    )


def _iloc_size(sizes: list[int]) -> int:
    return 8 + 4 + 4 + 14 * sum(1 for size in sizes if size)


# --- image sequences: 'moov' with picture tracks -------------------------------------------------

MAX_SAMPLES = 20_000  # frames in one sequence, over all tracks (ten minutes at 30 fps)
_SEQUENCE_CODECS = frozenset({b"av01", b"hvc1", b"hev1"})
_IDENTITY = isobmff.IDENTITY
_UNDETERMINED = 0x55C4  # ISO 639-2 'und', packed
_ENTRY_CHILDREN = frozenset({b"av1C", b"hvcC", b"colr", b"pasp", b"clli", b"mdcv"})
_KEPT_TRACK_REFERENCES = frozenset({b"auxl", b"prem"})
_ENTRY_HEADER = 8 + 78  # box header and the fixed fields of a visual sample entry


@dataclass
class _Track:
    id: int
    handler: bytes  # 'pict' or 'auxv' (an alpha plane)
    matrix: bytes  # tkhd: a rotation or mirroring by quarter turns, or the identity
    flags: int  # tkhd: enabled, in movie, in preview
    duration: int  # in the movie's timescale
    width: int  # 16.16 fixed point
    height: int
    timescale: int
    media_duration: int
    edits: list[tuple[int, int, int]]  # (segment duration, media time, media rate)
    edit_flags: int  # 1: the edit list repeats (a looping animation)
    codec: bytes
    entry: bytes  # the rebuilt sample entry, children included
    length_size: int  # HEVC NAL length field size (0 for AV1)
    times: list[tuple[int, int]]  # stts (count, delta)
    offsets: list[tuple[int, int]] | None  # ctts (count, offset), signed
    sync: list[int] | None  # stss sample numbers
    samples: list[tuple[int, int]]  # absolute (start, end) of each sample
    refs: list[tuple[bytes, tuple[int, ...]]] = field(default_factory=list)  # tref


@dataclass(frozen=True)
class _Movie:
    timescale: int
    duration: int
    tracks: tuple[_Track, ...]


def _times(reader: Reader, version: int) -> int:
    """Skip creation and modification times; return the timescale that follows."""
    reader.take(16 if version == 1 else 8)
    return reader.uint(4)


def _read_movie(data: bytes, moov: Box, budget: Budget, blocks: list[Block]) -> _Movie | None:
    """The picture tracks of a 'moov' (None when it has none: then it goes like any other box)."""
    children = boxes(data, moov.body, moov.end, budget)
    mvhd = _one(children, b"mvhd")
    traks = [box for box in children if box.type == b"trak"]
    tracks = []
    samples = 0
    for trak in traks:
        track = _read_track(data, trak, budget, blocks)
        if track is not None:
            samples += len(track.samples)
            if samples > MAX_SAMPLES:
                raise _damaged("too many frames")
            tracks.append(track)
    if not any(track.handler == b"pict" for track in tracks):
        return None
    if mvhd is None:
        raise _damaged("no movie header")
    version, _, reader = _full_box(data, mvhd)
    timescale = _times(reader, version)
    duration = reader.uint(8 if version == 1 else 4)
    for box in children:
        if box.type not in (b"mvhd", b"trak"):
            blocks.append(Block(BlockKind.OTHER, f"HEIF '{_name(box.type)}' box in moov"))
    headers = [mvhd]
    for trak in traks:
        for box in boxes(data, trak.body, trak.end, budget):
            if box.type == b"tkhd":
                headers.append(box)
            elif box.type == b"mdia":
                headers.extend(
                    b for b in boxes(data, box.body, box.end, budget) if b.type == b"mdhd"
                )
    stamps = [stamp for box in headers if (stamp := _stamp(data, box))]
    if stamps:
        when = _EPOCH_1904 + datetime.timedelta(seconds=min(stamps))
        text = when.strftime("%Y:%m:%d %H:%M:%S").encode()
        blocks.append(Block(BlockKind.DATE, "HEIF image sequence times (creation)", text))
    ids = {track.id for track in tracks}
    for track in tracks:
        track.refs = [(kind, t) for kind, targets in track.refs if (t := _in(targets, ids))]
    return _Movie(timescale, duration, tuple(tracks))


_EPOCH_1904 = datetime.datetime(1904, 1, 1)
_MAX_STAMP = int((datetime.datetime(9999, 12, 31) - _EPOCH_1904).total_seconds())


def _stamp(data: bytes, box: Box) -> int:
    """The creation time (else modification time) a movie, track or media header gives, in
    seconds since 1904; 0 when it says none."""
    width = 8 if data[box.body] == 1 else 4
    created = int.from_bytes(data[box.body + 4 : box.body + 4 + width], "big")
    modified = int.from_bytes(data[box.body + 4 + width : box.body + 4 + 2 * width], "big")
    return min(created or modified, _MAX_STAMP)


def _in(targets: tuple[int, ...], ids: set[int]) -> tuple[int, ...]:
    return tuple(target for target in targets if target in ids)


def _read_track(data: bytes, trak: Box, budget: Budget, blocks: list[Block]) -> _Track | None:
    children = boxes(data, trak.body, trak.end, budget)
    mdia = _one(children, b"mdia")
    tkhd = _one(children, b"tkhd")
    if mdia is None or tkhd is None:
        raise _damaged("a track without header or media")
    media = boxes(data, mdia.body, mdia.end, budget)
    hdlr, mdhd, minf = (_one(media, kind) for kind in (b"hdlr", b"mdhd", b"minf"))
    if hdlr is None or mdhd is None or minf is None:
        raise _damaged("a track without handler or media information")
    handler = data[hdlr.body + 8 : hdlr.body + 12]
    if handler not in (b"pict", b"auxv"):
        blocks.append(Block(BlockKind.MEDIA, f"'{_name(handler)}' track"))
        return None
    stbl = _one(boxes(data, minf.body, minf.end, budget), b"stbl")
    if stbl is None:
        raise _damaged("a track without sample table")
    table = boxes(data, stbl.body, stbl.end, budget)
    codec, entry, length_size = _sample_entry(data, _one(table, b"stsd"), budget)
    if handler == b"auxv" and not _alpha_entry(entry):
        blocks.append(Block(BlockKind.IMAGE, "auxiliary track that is no alpha plane"))
        return None
    samples = isobmff.sample_ranges(data, table, MAX_SAMPLES, budget)
    if samples is None:
        raise UnsupportedFormat("An image sequence without a plain sample table")
    version, flags, reader = _full_box(data, tkhd)
    reader.take(16 if version == 1 else 8)
    track_id = reader.uint(4)
    reader.take(4)
    duration = reader.uint(8 if version == 1 else 4)
    reader.take(8 + 2 + 2 + 2 + 2)  # reserved, layer, alternate group, volume, reserved
    matrix = reader.take(36)
    width, height = reader.uint(4), reader.uint(4)
    version, _, reader = _full_box(data, mdhd)
    timescale = _times(reader, version)
    media_duration = reader.uint(8 if version == 1 else 4)
    edits, edit_flags = isobmff.edit_list(data, _one(children, b"edts"), budget)
    for box in children:
        if box.type == b"meta":
            blocks.extend(_track_meta_blocks(data, box, budget))
        elif box.type not in (b"tkhd", b"mdia", b"edts", b"tref"):
            blocks.append(Block(BlockKind.OTHER, f"HEIF '{_name(box.type)}' box in a track"))
    track = _Track(
        track_id,
        handler,
        isobmff.quarter_turns(matrix, width, height),
        flags & 7,
        duration,
        width,
        height,
        timescale,
        media_duration,
        edits,
        edit_flags,
        codec,
        entry,
        length_size,
        isobmff.pairs(data, _one(table, b"stts"), _LABEL) or [],
        isobmff.pairs(data, _one(table, b"ctts"), _LABEL, signed=True),
        isobmff.numbers(data, _one(table, b"stss"), _LABEL),
        samples,
    )
    if sum(count for count, _ in track.times) != len(track.samples):
        raise _damaged("the frame times do not match the frames")
    tref = _one(children, b"tref")
    for ref in boxes(data, tref.body, tref.end, budget) if tref else ():
        if ref.type in _KEPT_TRACK_REFERENCES:
            reader = _reader(data, ref.body, ref.end)
            track.refs.append((ref.type, tuple(reader.uint(4) for _ in range(reader.left() // 4))))
    return track


def _track_meta_blocks(data: bytes, box: Box, budget: Budget) -> list[Block]:
    """What a track's own 'meta' holds (libavif puts an animation's Exif and XMP there); it is
    dropped whole, so one it cannot read is still reported, never a reason to refuse."""
    try:
        meta = _Meta(box, boxes(data, box.body + 4, box.end, budget))
        meta.idat = _one(meta.children, b"idat")
        _read_items(data, meta, budget)
        _read_locations(data, meta)
        found = [_item_block(data, meta, item) for item in meta.items.values()]
        found = [replace(b, name=b.name.replace("HEIF item", "HEIF track item")) for b in found]
    except DamagedImage:
        found = []
    return found or [Block(BlockKind.OTHER, "HEIF 'meta' box in a track")]


def _alpha_entry(entry: bytes) -> bool:
    """Whether a rebuilt sample entry says its track is an alpha plane (it kept an 'auxi')."""
    children = boxes(entry, _ENTRY_HEADER, len(entry), Budget(_LABEL))
    return any(child.type == b"auxi" for child in children)


def _sample_entry(data: bytes, stsd: Box | None, budget: Budget) -> tuple[bytes, bytes, int]:
    """The one visual sample entry, rebuilt: fixed fields as the standard sets them (no
    compressor name), and only the children a decoder needs, each from its fields."""
    if stsd is None:
        raise _damaged("a track without sample description")
    _, _, reader = _full_box(data, stsd)
    entries = boxes(data, reader.pos + 4, stsd.end, budget)
    if reader.uint(4) != 1 or len(entries) != 1:
        raise UnsupportedFormat("An image sequence with several sample descriptions")
    entry = entries[0]
    if entry.type not in _SEQUENCE_CODECS:
        raise UnsupportedFormat("An image sequence in a codec other than AV1 or HEVC")
    reader = _reader(data, entry.body, entry.end)
    reader.take(6)
    if reader.uint(2) != 1:
        raise UnsupportedFormat("An image sequence with its frames in another file")
    reader.take(16)
    width, height = reader.uint(2), reader.uint(2)
    reader.take(50)  # resolutions, reserved, frame count, compressor name, depth, pre_defined
    children = []
    length_size = 0
    for child in boxes(data, reader.pos, entry.end, budget):
        if child.type == b"hvcC":
            length_size = (data[child.body + 21] & 3) + 1 if child.end - child.body >= 23 else 0
        if child.type == b"auxi":
            _, _, aux = _full_box(data, child)
            if (urn := aux.string()) in ALPHA_URNS:
                children.append(isobmff.full(b"auxi", 0, 0, urn + b"\0"))
        elif child.type == b"ccst":
            _, _, ccst = _full_box(data, child)
            flags = struct.pack(">I", ccst.uint(4) & 0xFC000000)
            children.append(isobmff.full(b"ccst", 0, 0, flags))
        elif child.type in _ENTRY_CHILDREN and (rebuilt := _new_property(data, child)):
            children.append(rebuilt)
    if entry.type != b"av01" and not length_size:
        raise _damaged("an HEVC track has no configuration")
    fixed = bytes(6) + struct.pack(">H", 1) + bytes(16) + struct.pack(">HH", width, height)
    fixed += struct.pack(">IIIH", 0x00480000, 0x00480000, 0, 1) + bytes(32)
    fixed += struct.pack(">Hh", 0x0018, -1)
    return entry.type, isobmff.box(entry.type, fixed + b"".join(children)), length_size


def _sample_data(data: bytes, track: _Track, sample: tuple[int, int]) -> _Buffer:
    """A frame as we write it: the units decoders skip cut out, like in an item."""
    payload = memoryview(data)[sample[0] : sample[1]]
    if track.codec == b"av01":
        obus, canonical = _obus(payload)
        kept = [obu for obu in obus if obu[0] in _KEPT_OBUS]
        return (
            payload if canonical and len(kept) == len(obus) else b"".join(_obu(*o) for o in kept)
        )
    units = _nal_units(payload, track.length_size)
    good = [(a, b) for a, b in units if _decoded_nal(payload, a)]
    if len(good) == len(units) and (units[-1][1] if units else 0) == len(payload):
        return payload
    size = track.length_size
    return b"".join((b - a).to_bytes(size, "big") + payload[a:b] for a, b in good)


def _new_mvhd(movie: _Movie, next_id: int) -> bytes:
    version, duration = isobmff.sized(movie.duration)
    body = bytes(16 if version else 8) + struct.pack(">I", movie.timescale) + duration
    body += struct.pack(">IH", 0x10000, 0x100) + bytes(10) + _IDENTITY + bytes(24)
    return isobmff.full(b"mvhd", version, 0, body + struct.pack(">I", next_id))


def _new_trak(track: _Track, ids: dict[int, int], sizes: list[int], offset: int) -> bytes:
    version, duration = isobmff.sized(track.duration)
    tkhd = bytes(16 if version else 8) + struct.pack(">II", ids[track.id], 0) + duration
    tkhd += bytes(16) + track.matrix + struct.pack(">II", track.width, track.height)
    parts = [isobmff.full(b"tkhd", version, track.flags, tkhd)]
    refs = [
        isobmff.box(kind, b"".join(struct.pack(">I", ids[t]) for t in targets))
        for kind, targets in track.refs
    ]
    if refs:
        parts.append(isobmff.box(b"tref", b"".join(refs)))
    if track.edits:
        wide = any(d > 0xFFFFFFFF or not -(2**31) <= t < 2**31 for d, t, _ in track.edits)
        size = 8 if wide else 4
        entries = b"".join(
            d.to_bytes(size, "big") + t.to_bytes(size, "big", signed=True) + struct.pack(">I", r)
            for d, t, r in track.edits
        )
        elst = isobmff.full(
            b"elst", int(wide), track.edit_flags, struct.pack(">I", len(track.edits)) + entries
        )
        parts.append(isobmff.box(b"edts", elst))
    version, duration = isobmff.sized(track.media_duration)
    mdhd = bytes(16 if version else 8) + struct.pack(">I", track.timescale) + duration
    mdhd = isobmff.full(b"mdhd", version, 0, mdhd + struct.pack(">HH", _UNDETERMINED, 0))
    hdlr = isobmff.full(b"hdlr", 0, 0, bytes(4) + track.handler + bytes(12) + b"\0")
    minf = (
        isobmff.full(b"vmhd", 0, 1, bytes(8))
        + _new_dinf()
        + isobmff.box(b"stbl", _new_stbl(track, sizes, offset))
    )
    parts.append(isobmff.box(b"mdia", mdhd + hdlr + isobmff.box(b"minf", minf)))
    return isobmff.box(b"trak", b"".join(parts))


def _new_stbl(track: _Track, sizes: list[int], offset: int) -> bytes:
    count = len(sizes)
    out = [isobmff.full(b"stsd", 0, 0, struct.pack(">I", 1) + track.entry)]
    out.append(isobmff.table(b"stts", 0, [struct.pack(">II", c, d) for c, d in track.times]))
    if track.offsets is not None:
        negative = any(o < 0 for _, o in track.offsets)
        rows = [struct.pack(">Ii" if negative else ">II", c, o) for c, o in track.offsets]
        out.append(isobmff.table(b"ctts", int(negative), rows))
    if track.sync is not None:
        out.append(isobmff.table(b"stss", 0, [struct.pack(">I", n) for n in track.sync]))
    out.append(isobmff.table(b"stsc", 0, [struct.pack(">III", 1, count, 1)] if count else []))
    out.append(isobmff.full(b"stsz", 0, 0, struct.pack(f">II{count}I", 0, count, *sizes)))
    out.append(isobmff.table(b"stco", 0, [struct.pack(">I", offset)] if count else []))
    return b"".join(out)


def _new_moov(movie: _Movie, first_id: int, sizes: list[list[int]], starts: list[int]) -> bytes:
    """The movie with zero times, an identity movie matrix, tracks numbered after the items and
    one chunk per track (its frames in order)."""
    ids = {track.id: first_id + n for n, track in enumerate(movie.tracks)}
    traks = [
        _new_trak(track, ids, frames, start)
        for track, frames, start in zip(movie.tracks, sizes, starts, strict=True)
    ]
    mvhd = _new_mvhd(movie, first_id + len(movie.tracks))
    return isobmff.box(b"moov", mvhd + b"".join(traks))


def _write(data: bytes, layout: _Layout) -> bytes:
    order = [item for item in layout.meta.items if item in layout.kept]  # file order
    ids = {old: new for new, old in enumerate(order, start=1)}
    payloads = [_picture_data(data, layout.meta, layout.meta.items[i])[0] for i in order]
    sizes = [len(payload) for payload in payloads]
    if any(
        not size
        for size, i in zip(sizes, order, strict=True)
        if layout.meta.items[i].type != b"iden"
    ):
        raise _damaged("a picture has no data")
    ftyp = _new_ftyp(data, layout, order)
    pitm = isobmff.full(b"pitm", 0, 0, struct.pack(">H", ids[layout.meta.primary]))
    before = _new_hdlr() + _new_dinf() + pitm + _new_iinf(layout, order)
    after = _new_iref(layout, ids) + _new_iprp(data, layout, order) + _new_grpl(layout, ids)
    meta_size = 12 + len(before) + _iloc_size(sizes) + len(after)
    movie = layout.movie
    frames: list[list[_Buffer]] = []
    if movie is not None:
        frames = [[_sample_data(data, t, sample) for sample in t.samples] for t in movie.tracks]
    frame_sizes = [[len(frame) for frame in track] for track in frames]
    moov_size = (
        len(_new_moov(movie, len(order) + 1, frame_sizes, [0] * len(frames))) if movie else 0
    )
    # 'mdat': each track's frames in order, then the items' data. An item whose bytes are
    # exactly a frame's (the still image that is also the first frame) points at that frame.
    pos = len(ftyp) + meta_size + moov_size + 8
    starts: list[int] = []
    frame_places: dict[tuple[int, int], int] = {}
    for track, sizes_of_track in zip(movie.tracks if movie else (), frame_sizes, strict=True):
        starts.append(pos)
        for sample, size in zip(track.samples, sizes_of_track, strict=True):
            frame_places.setdefault(sample, pos)
            pos += size
    places, written = [], []
    for item, payload in zip(order, payloads, strict=True):
        location = layout.meta.locations.get(item)
        extents = location.extents if location and not location.in_idat else ()
        shared = frame_places.get(extents[0]) if len(extents) == 1 else None
        if shared is not None and _frame_at(frames, frame_sizes, starts, shared) == payload:
            places.append((shared, len(payload)))
        else:
            places.append((pos, len(payload)))
            written.append(payload)
            pos += len(payload)
    meta = isobmff.full(b"meta", 0, 0, before + _new_iloc(places) + after)
    moov = _new_moov(movie, len(order) + 1, frame_sizes, starts) if movie else b""
    if len(meta) != meta_size or len(moov) != moov_size:
        raise NotClean
    if pos > 0xFFFFFFFF:
        raise _damaged("the picture data is too large")
    mdat = struct.pack(">I4s", 8 + pos - (len(ftyp) + meta_size + moov_size + 8), b"mdat")
    return b"".join([ftyp, meta, moov, mdat, *(f for track in frames for f in track), *written])


def _frame_at(
    frames: list[list[_Buffer]], sizes: list[list[int]], starts: list[int], offset: int
) -> _Buffer | None:
    """The frame written at `offset` in the new file."""
    for track, track_sizes, start in zip(frames, sizes, starts, strict=True):
        for frame, size in zip(track, track_sizes, strict=True):
            if start == offset:
                return frame
            start += size
    return None


MAX_MISSING_TAIL = 64  # bytes: a writer's off-by-a-few, not a picture cut in half
_MAX_TOP_BOXES = 1024


def completed(data: bytes) -> bytes:
    """The file with a cut-short final 'mdat' padded back to its declared size with zeros.

    Some writers leave the last bytes out; decoders read such files, so we do too, as long as
    only a few bytes are missing. Everything else about the file is checked as usual.
    """
    pos = 0
    for _ in range(_MAX_TOP_BOXES):
        if pos + 8 > len(data):
            return data
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size == 1 and pos + 16 <= len(data):
            size = struct.unpack_from(">Q", data, pos + 8)[0]
        if size < 8:
            return data
        if pos + size > len(data):
            missing = pos + size - len(data)
            if kind == b"mdat" and missing <= MAX_MISSING_TAIL:
                return data + bytes(missing)
            return data
        pos += size
    return data


def parse(data: bytes) -> Parsed:
    layout = _read(completed(data))
    frames = 1
    if layout.movie is not None:
        pictures = [len(t.samples) for t in layout.movie.tracks if t.handler == b"pict"]
        frames = max(1, max(pictures))
    return Parsed(layout.width, layout.height, layout.blocks, frames=frames)


def strip(data: bytes, parsed: Parsed) -> bytes:
    data = completed(data)
    return _write(data, _read(data, with_blocks=False))


def _brand_format(head: bytes) -> str | None:
    """'heif' or 'avif' for an ISO file whose brands name one, else None."""
    if head[4:8] != b"ftyp":
        return None
    try:
        return sniff_brand(head, FORMAT).name
    except UnsupportedFormat:
        return None


def accepts(head: bytes) -> bool:
    return _brand_format(head) == "heif"


def accepts_avif(head: bytes) -> bool:
    return _brand_format(head) == "avif"


FORMAT = Format("heif", "image/heic", "heic", parse, strip, accepts=accepts, label="HEIC")
AVIF_FORMAT = Format("avif", "image/avif", "avif", parse, strip, accepts=accepts_avif)
