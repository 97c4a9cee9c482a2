"""heif: HEIC, HEIF and AVIF still images (ISO base media file format), cleaned by box surgery.

What these files can carry besides the picture:
- an 'Exif' item (GPS, capture times, camera serials, maker notes, an EXIF thumbnail);
- 'mime' items: XMP (application/rdf+xml), C2PA content credentials (application/c2pa);
- thumbnail items (iref 'thmb'), auxiliary images (iref 'auxl': depth maps, HDR gain maps),
  other pictures ('tmap' gain-map images, alternates), 'uri ' items, region annotations;
- item properties holding text or times ('udes', 'crtt', 'mdft', ...) and the handler name;
- boxes next to the picture: Samsung motion photo video ('mpvd'), Samsung trailer ('sefd'),
  'uuid' boxes (C2PA, XMP), a 'moov' video track, old bytes in 'free' boxes or between items.

How we remove it, losslessly and without moving a single byte of picture data:
- the `meta` box is rewritten without the removed items (their 'infe', 'iloc' entries, every
  'iref' reference from or to them, their 'ipma' associations, entity groups naming them), and
  only decoding properties of the kept items stay in 'ipco' ('irot'/'imir' orientation
  included; a 'colr' profile rebuilt with only its colour data by `bot.formats.icc`); a
  'free' box pads it back to its old size, so every absolute 'iloc' offset stays valid;
- every 'mdat'/'idat' byte that no kept item uses is zeroed (removed items, gaps, old data);
- other top-level boxes before the last needed box become zero-filled 'free' boxes of the same
  size, and those after it are cut off.

Kept: the primary item and what it is derived from ('dimg': grid tiles, 'iden', 'iovl', 'tmap'
inputs) and its alpha planes. Image sequences ('moov' with picture tracks) are refused.
"""

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from bot.errors import DamagedImage, NotClean, UnsupportedFormat
from bot.formats import icc
from bot.formats.base import Block, BlockKind, Format, Parsed

MAX_BOXES = 20_000  # boxes read in one file; an iPhone photo has a few hundred
MAX_ITEMS = 10_000
MAX_EXTENTS = 100_000
MAX_BRANDS = 64
SMALL_THUMBNAIL = 256 * 1024  # thumbnails up to this size are handed on as bytes

_TRUNCATED = "The file ends in the middle of its HEIF boxes, so it is incomplete."

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
SEQUENCE_BRANDS = frozenset({b"msf1", b"avis", b"hevc", b"hevx", b"hevs", b"jpgs", b"vvis"})
_OTHER_BRANDS: dict[bytes, str] = {
    b"jxl ": "A JPEG XL image",
    b"crx ": "A Canon raw photo (CR3)",
    b"M4A ": "An audio file (M4A)",
    b"M4B ": "An audio book (M4B)",
    b"M4P ": "An audio file (M4P)",
    b"qt  ": "A video (MOV)",
    **dict.fromkeys(
        (
            b"isom",
            b"iso2",
            b"iso3",
            b"iso4",
            b"iso5",
            b"iso6",
            b"iso7",
            b"iso8",
            b"iso9",
            b"mp41",
            b"mp42",
            b"mp71",
            b"avc1",
            b"M4V ",
            b"M4VH",
            b"M4VP",
            b"dash",
            b"mmp4",
            b"MSNV",
            b"f4v ",
            b"F4V ",
            b"NDAS",
            b"XAVC",
        ),
        "A video (MP4/MOV)",
    ),
    **dict.fromkeys(
        (b"3gp4", b"3gp5", b"3gp6", b"3gp7", b"3gp8", b"3gp9", b"3g2a", b"3g2b", b"3g2c"),
        "A video (3GP)",
    ),
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
# Item properties a decoder needs to show the kept picture as it was; everything else goes.
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
        b"cclv",
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


@dataclass(frozen=True)
class _Box:
    type: bytes
    start: int
    body: int  # first byte after the header (and after the extended type of a 'uuid')
    end: int


@dataclass(frozen=True)
class _Item:
    id: int
    type: bytes  # b"" for version 0/1 entries, which carry no type
    content_type: bytes
    box: _Box
    version: int
    flags: int


@dataclass(frozen=True)
class _Location:
    raw: bytes  # the item's entry in 'iloc', copied as is into the new 'iloc'
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
    box: _Box
    children: list[_Box]
    items: dict[int, _Item] = field(default_factory=dict)
    locations: dict[int, _Location] = field(default_factory=dict)
    iloc_header: bytes = b""  # version, flags and field sizes of 'iloc'
    refs: list[_Ref] = field(default_factory=list)
    ref_version: int = 0
    primary: int = -1
    properties: list[_Box] = field(default_factory=list)
    associations: dict[int, _Association] = field(default_factory=dict)
    idat: _Box | None = None
    groups: list[tuple[_Box, tuple[int, ...]]] = field(default_factory=list)  # entity groups


@dataclass(frozen=True)
class _Layout:
    top: tuple[_Box, ...]
    meta: _Meta
    kept: frozenset[int]
    kept_properties: tuple[int, ...]  # 1-based ipco indices, in order
    blocks: tuple[Block, ...]
    width: int
    height: int


class _Budget:
    """Counts boxes across the whole file so hostile nesting cannot make us read forever."""

    def __init__(self) -> None:
        self.boxes = 0

    def spend(self) -> None:
        self.boxes += 1
        if self.boxes > MAX_BOXES:
            raise DamagedImage("The HEIF file has too many boxes to be a photo.")


# --- reading ------------------------------------------------------------------------------


def _damaged(what: str) -> DamagedImage:
    return DamagedImage(f"The HEIF file is damaged ({what}).")


class _Reader:
    """Big-endian fields inside [pos, end) of one box body; reading past `end` is damage."""

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > self.end:
            raise DamagedImage(_TRUNCATED)
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big") if size else 0

    def string(self) -> bytes:
        """A NUL-terminated string; one that runs to the end of the box is taken as is."""
        stop = self.data.find(b"\0", self.pos, self.end)
        text = self.take((self.end if stop < 0 else stop) - self.pos)
        if stop >= 0:
            self.pos += 1
        return text

    def left(self) -> int:
        return self.end - self.pos


def _box_at(data: bytes, pos: int, end: int) -> _Box:
    if pos + 8 > end:
        raise DamagedImage(_TRUNCATED)
    size, kind = struct.unpack_from(">I4s", data, pos)
    header = 8
    if size == 1:
        if pos + 16 > end:
            raise DamagedImage(_TRUNCATED)
        size = struct.unpack_from(">Q", data, pos + 8)[0]
        header = 16
    elif size == 0:
        size = end - pos
    if kind == b"uuid":
        header += 16
    if size < header or pos + size > end:
        raise DamagedImage(_TRUNCATED)
    return _Box(kind, pos, pos + header, pos + size)


def _boxes(data: bytes, start: int, end: int, budget: _Budget) -> list[_Box]:
    """The boxes laid end to end in [start, end); nesting is walked only where we expect it."""
    found = []
    pos = start
    while pos < end:
        budget.spend()
        box = _box_at(data, pos, end)
        found.append(box)
        pos = box.end
    return found


def _full_box(data: bytes, box: _Box) -> tuple[int, int, _Reader]:
    """Version, flags and a reader positioned after them."""
    reader = _Reader(data, box.body, box.end)
    head = reader.uint(4)
    return head >> 24, head & 0xFFFFFF, reader


def _one(boxes: Iterable[_Box], kind: bytes) -> _Box | None:
    matches = [box for box in boxes if box.type == kind]
    if len(matches) > 1:
        raise _damaged(f"more than one '{_name(kind)}' box")
    return matches[0] if matches else None


def _name(kind: bytes) -> str:
    return "".join(chr(b) if 32 <= b < 127 else "?" for b in kind)


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


def _read_meta(data: bytes, box: _Box, budget: _Budget) -> _Meta:
    version, _, _ = _full_box(data, box)
    if version != 0:
        raise _damaged("unknown 'meta' version")
    meta = _Meta(box, _boxes(data, box.body + 4, box.end, budget))
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


def _read_items(data: bytes, meta: _Meta, budget: _Budget) -> None:
    iinf = _one(meta.children, b"iinf")
    if iinf is None:
        raise _damaged("no item list")
    version, _, reader = _full_box(data, iinf)
    count = reader.uint(2 if version == 0 else 4)
    entries = _boxes(data, reader.pos, iinf.end, budget)
    if count != len(entries) or count > MAX_ITEMS:
        raise _damaged("the item count is wrong")
    for entry in entries:
        if entry.type != b"infe":
            raise _damaged("unexpected box in the item list")
        item = _read_infe(data, entry)
        if item.id in meta.items:
            raise _damaged("two items share an id")
        meta.items[item.id] = item


def _read_infe(data: bytes, box: _Box) -> _Item:
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
    meta.iloc_header = data[iloc.body : reader.pos]
    count = reader.uint(2 if version < 2 else 4)
    extents_left = MAX_EXTENTS
    for _ in range(count):
        start = reader.pos
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
        raw = data[start : reader.pos]
        meta.locations[item_id] = _place(data, meta, method, extents, raw)


def _place(
    data: bytes, meta: _Meta, method: int, extents: list[tuple[int, int]], raw: bytes
) -> _Location:
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
            raise DamagedImage(_TRUNCATED)
        ranges.append((start, end))
    return _Location(raw, tuple(ranges), method == 1)


def _read_refs(data: bytes, meta: _Meta, budget: _Budget) -> None:
    iref = _one(meta.children, b"iref")
    if iref is None:
        return
    version, _, reader = _full_box(data, iref)
    if version > 1:
        raise _damaged("unknown item reference version")
    meta.ref_version = version
    size = 2 if version == 0 else 4
    for box in _boxes(data, reader.pos, iref.end, budget):
        ref = _Reader(data, box.body, box.end)
        source = ref.uint(size)
        targets = tuple(ref.uint(size) for _ in range(ref.uint(2)))
        meta.refs.append(_Ref(box.type, source, targets))


def _read_properties(data: bytes, meta: _Meta, budget: _Budget) -> None:
    iprp = _one(meta.children, b"iprp")
    if iprp is None:
        return
    children = _boxes(data, iprp.body, iprp.end, budget)
    ipco = _one(children, b"ipco")
    if ipco is None:
        raise _damaged("no item properties")
    meta.properties = _boxes(data, ipco.body, ipco.end, budget)
    for ipma in (box for box in children if box.type == b"ipma"):
        for association in _read_ipma(data, ipma, len(meta.properties)):
            if association.item in meta.associations:
                raise _damaged("an item has two property lists")
            meta.associations[association.item] = association


def _read_groups(data: bytes, meta: _Meta, budget: _Budget) -> None:
    grpl = _one(meta.children, b"grpl")
    for group in _boxes(data, grpl.body, grpl.end, budget) if grpl else ():
        reader = _Reader(data, group.body + 8, group.end)  # after version, flags and group id
        members = tuple(reader.uint(4) for _ in range(reader.uint(4)))
        meta.groups.append((group, members))


def _read_ipma(data: bytes, box: _Box, property_count: int) -> Iterator[_Association]:
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


def _property(meta: _Meta, item: int, kind: bytes) -> _Box | None:
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


def _kept_properties(meta: _Meta, kept: frozenset[int]) -> list[int]:
    used = _used_properties(meta, kept)
    return [i for i in used if meta.properties[i - 1].type in KEPT_PROPERTIES]


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


def _meta_blocks(data: bytes, meta: _Meta) -> Iterator[Block]:
    for box in meta.children:
        if box.type in _KNOWN_META or box.type in _PADDING:
            continue
        payload = data[box.body : box.end]
        if box.type == b"xml ":
            yield Block(BlockKind.XMP, "HEIF 'xml ' box", payload[4:])
        else:
            yield Block(BlockKind.OTHER, f"HEIF '{_name(box.type)}' box in meta", payload)


def _top_block(data: bytes, box: _Box) -> Block | None:
    payload = data[box.body : box.end]
    if box.type in (b"ftyp", b"meta", b"mdat") or box.type in _PADDING:
        return None
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


def _refuse_sequences(data: bytes, top: list[_Box], budget: _Budget) -> None:
    """A 'moov' with picture or video tracks in an image-sequence file is an animation."""
    moov = _one(top, b"moov")
    if moov is None:
        return
    handlers = set()
    for trak in _boxes(data, moov.body, moov.end, budget):
        if trak.type != b"trak":
            continue
        for mdia in _boxes(data, trak.body, trak.end, budget):
            if mdia.type != b"mdia":
                continue
            hdlr = _one(_boxes(data, mdia.body, mdia.end, budget), b"hdlr")
            if hdlr is not None:
                handlers.add(data[hdlr.body + 8 : hdlr.body + 12])
    ftyp = top[0]
    compatible = range(ftyp.body + 8, min(ftyp.end, ftyp.body + 8 + 4 * MAX_BRANDS), 4)
    brands = {data[ftyp.body : ftyp.body + 4]} | {data[pos : pos + 4] for pos in compatible}
    if b"pict" in handlers or brands & SEQUENCE_BRANDS:
        raise UnsupportedFormat("An image sequence (HEIF/AVIF animation)")


def _read(data: bytes) -> _Layout:
    budget = _Budget()
    top = _boxes(data, 0, len(data), budget)
    if not top or top[0].type != b"ftyp":
        raise _damaged("no file type box first")
    _refuse_sequences(data, top, budget)
    meta_box = _one(top, b"meta")
    if meta_box is None:
        raise UnsupportedFormat("This ISO media file without a picture")
    meta = _read_meta(data, meta_box, budget)
    kept = _kept_items(data, meta)
    _check_kept_extents(top, meta, kept)
    blocks = [
        *_item_blocks(data, meta, kept),
        *_property_blocks(data, meta, kept),
        *_meta_blocks(data, meta),
        *(block for box in top if (block := _top_block(data, box)) is not None),
    ]
    width, height = _size(data, meta)
    properties = tuple(_kept_properties(meta, kept))
    return _Layout(tuple(top), meta, kept, properties, tuple(blocks), width, height)


def _check_kept_extents(top: list[_Box], meta: _Meta, kept: frozenset[int]) -> None:
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


# --- writing ------------------------------------------------------------------------------------


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _free(size: int) -> bytes:
    return struct.pack(">I4s", size, b"free") + bytes(size - 8)


def _zero_outside(buffer: bytearray, start: int, end: int, keep: list[tuple[int, int]]) -> None:
    """Zero buffer[start:end] except the (absolute) ranges in `keep`."""
    pos = start
    for a, b in sorted(keep):
        if b <= start or a >= end:
            continue
        if a > pos:
            buffer[pos:a] = bytes(a - pos)
        pos = max(pos, min(b, end))
    if pos < end:
        buffer[pos:end] = bytes(end - pos)


def _kept_ranges(layout: _Layout, in_idat: bool) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for item in layout.kept:
        location = layout.meta.locations.get(item)
        if location and location.in_idat == in_idat:
            ranges.extend(location.extents)
    return ranges


def _new_hdlr(data: bytes, box: _Box, pad: int) -> bytes:
    """The handler with its name blanked: 24 fixed bytes, then zeros (plus `pad` more)."""
    fixed = data[box.body : box.body + 24]
    return _box(b"hdlr", fixed + bytes(box.end - box.body - len(fixed) + pad))


def _in_file_order(layout: _Layout) -> list[int]:
    return [item for item in layout.meta.items if item in layout.kept]


def _new_iinf(data: bytes, layout: _Layout, box: _Box) -> bytes:
    version = data[box.body]
    items = [layout.meta.items[i] for i in _in_file_order(layout)]
    count = len(items).to_bytes(2 if version == 0 else 4, "big")
    return _box(b"iinf", data[box.body : box.body + 4] + count + b"".join(map(_new_infe, items)))


def _new_infe(item: _Item) -> bytes:
    """An item entry with its name blanked (kept items are pictures, with no more fields)."""
    head = struct.pack(">B3s", item.version, item.flags.to_bytes(3, "big"))
    item_id = item.id.to_bytes(4 if item.version == 3 else 2, "big")
    return _box(b"infe", head + item_id + b"\0\0" + item.type + b"\0")


def _new_iloc(data: bytes, layout: _Layout, box: _Box) -> bytes:
    meta = layout.meta
    version = data[box.body]
    entries = [location.raw for i, location in meta.locations.items() if i in layout.kept]
    count = len(entries).to_bytes(2 if version < 2 else 4, "big")
    return _box(b"iloc", meta.iloc_header + count + b"".join(entries))


def _new_iref(data: bytes, layout: _Layout, box: _Box) -> bytes:
    size = 2 if layout.meta.ref_version == 0 else 4
    out = []
    for ref in layout.meta.refs:
        targets = [t for t in ref.targets if t in layout.kept]
        if ref.source in layout.kept and targets:
            ids = b"".join(t.to_bytes(size, "big") for t in targets)
            body = ref.source.to_bytes(size, "big") + len(targets).to_bytes(2, "big") + ids
            out.append(_box(ref.type, body))
    return _box(b"iref", data[box.body : box.body + 4] + b"".join(out)) if out else b""


def _new_iprp(data: bytes, layout: _Layout, box: _Box) -> bytes:
    meta = layout.meta
    written = [(i, _property_bytes(data, meta.properties[i - 1])) for i in layout.kept_properties]
    written = [(i, box) for i, box in written if box]
    remap = {old: new for new, (old, _) in enumerate(written, start=1)}
    ipco = b"".join(box for _, box in written)
    children = [_box(b"ipco", ipco)]
    wide = len(remap) > 127
    out = []
    for item in _in_file_order(layout):
        association = meta.associations.get(item)
        if association is None:
            continue
        props = [(remap[i], essential) for i, essential in association.properties if i in remap]
        item_id = item.to_bytes(2 if item < 0x10000 else 4, "big")
        values = b"".join(_association(i, essential, wide) for i, essential in props)
        out.append((item_id, len(props).to_bytes(1, "big") + values))
    version = 1 if any(len(item_id) == 4 for item_id, _ in out) else 0
    entries = b"".join(item_id.rjust(4 if version else 2, b"\0") + rest for item_id, rest in out)
    head = struct.pack(">B3sI", version, (1 if wide else 0).to_bytes(3, "big"), len(out))
    children.append(_box(b"ipma", head + entries))
    return _box(b"iprp", b"".join(children))


def _property_bytes(data: bytes, box: _Box) -> bytes:
    """A kept property as written: a colour profile rebuilt (`bot.formats.icc`) or dropped."""
    kind = data[box.body : box.body + 4]
    if box.type == b"colr" and kind in (b"prof", b"rICC"):
        profile = icc.clean(data[box.body + 4 : box.end])
        return _box(b"colr", kind + profile) if profile else b""
    return data[box.start : box.end]


def _association(index: int, essential: bool, wide: bool) -> bytes:
    if wide:
        return (index | (0x8000 if essential else 0)).to_bytes(2, "big")
    return (index | (0x80 if essential else 0)).to_bytes(1, "big")


def _new_idat(data: bytes, layout: _Layout, box: _Box) -> bytes:
    body = bytearray(data[box.body : box.end])
    keep = [(a - box.body, b - box.body) for a, b in _kept_ranges(layout, in_idat=True)]
    _zero_outside(body, 0, len(body), keep)
    return _box(b"idat", bytes(body))


def _new_grpl(data: bytes, layout: _Layout, box: _Box) -> bytes:
    """Entity groups whose every member stays; a group that lost a member means nothing."""
    groups = [
        data[group.start : group.end]
        for group, members in layout.meta.groups
        if all(member in layout.kept for member in members)
    ]
    return _box(b"grpl", b"".join(groups)) if groups else b""


_REWRITERS = {
    b"iinf": _new_iinf,
    b"iloc": _new_iloc,
    b"iref": _new_iref,
    b"iprp": _new_iprp,
    b"idat": _new_idat,
    b"grpl": _new_grpl,
}


def _new_meta(data: bytes, layout: _Layout, last: bool) -> bytes:
    """The rewritten 'meta', padded to exactly its old size so no offset moves (unless nothing
    follows it, when the rest of the file is cut anyway)."""
    meta = layout.meta
    parts = []
    for box in meta.children:
        if box.type in _REWRITERS:
            parts.append(_REWRITERS[box.type](data, layout, box))
        elif box.type in (b"pitm", b"dinf"):
            parts.append(data[box.start : box.end])
        elif box.type == b"hdlr":
            parts.append(_new_hdlr(data, box, 0))
    head = data[meta.box.body : meta.box.body + 4]
    gap = (meta.box.end - meta.box.start) - (8 + len(head) + sum(map(len, parts)))
    if gap < 0:
        raise NotClean
    if last:
        gap = 0
    elif 0 < gap < 8:  # too small for a 'free' box: the handler name absorbs it
        hdlr = next(box for box in meta.children if box.type == b"hdlr")
        parts = [_new_hdlr(data, hdlr, gap) if p[4:8] == b"hdlr" else p for p in parts]
        gap = 0
    return _box(b"meta", head + b"".join(parts)) + (_free(gap) if gap else b"")


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
    return Parsed(layout.width, layout.height, layout.blocks)


def strip(data: bytes, parsed: Parsed) -> bytes:
    data = completed(data)
    layout = _read(data)
    needed = [box for box in layout.top if box.type in (b"ftyp", b"meta", b"mdat")]
    cut = max(box.end for box in needed)
    out = bytearray(data[:cut])
    kept_ranges = _kept_ranges(layout, in_idat=False)
    for box in layout.top:
        if box.end > cut:
            break
        if box.type == b"meta":
            out[box.start : box.end] = _new_meta(data, layout, last=box.end == cut)
        elif box.type == b"mdat":
            _zero_outside(out, box.body, box.end, kept_ranges)
        elif box.type != b"ftyp":
            out[box.start : box.end] = _free(box.end - box.start)
    return bytes(out)


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
