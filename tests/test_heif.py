"""HEIF/HEIC/AVIF scrubber: corpus photos, pillow-heif files with values planted by ExifTool,
hand-edited box layouts (boxes before and after the picture data, item names, sequences), brand
sniffing and damaged files."""

import io
import random
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image, ImageOps

from bot import scrub
from bot.errors import DamagedImage, NotClean, ScrubError, TooLarge, UnsupportedFormat
from bot.formats import heif, isobmff
from bot.formats.base import BlockKind
from bot.metadata.pictures import video_seconds
from tests.conftest import corpus_files, corpus_params
from tests.judge import exiftool_tags, leftovers
from tests.pictures import malformed_params, plant, secrets, shown_frames

pillow_heif.register_heif_opener()

# What each corpus file must be found to hold (a subset of the blocks).
EXPECTED = {
    "motionphoto.heic": {BlockKind.EXIF, BlockKind.XMP, BlockKind.THUMBNAIL, BlockKind.MEDIA},
    "aux_YCbCr.heic": {BlockKind.EXIF, BlockKind.XMP, BlockKind.IMAGE, BlockKind.OTHER},
    "arrow.heic": {BlockKind.EXIF, BlockKind.THUMBNAIL, BlockKind.ICC},
    "mountains.avif": {BlockKind.EXIF, BlockKind.XMP, BlockKind.ICC},
    "Issue_649.avif": {BlockKind.EXIF, BlockKind.XMP},
    "exif-at-eof.heic": {BlockKind.EXIF, BlockKind.XMP},
    "empty_icc.heic": {BlockKind.EXIF, BlockKind.XMP, BlockKind.IMAGE, BlockKind.THUMBNAIL},
    "L_exif_xmp_iptc.heic": {BlockKind.EXIF, BlockKind.XMP, BlockKind.OTHER},
    "Stonehenge.heic": {BlockKind.EXIF, BlockKind.XMP},
    "dirty.avif": {BlockKind.EXIF, BlockKind.XMP},
    "avif_metadata2.avif": {BlockKind.EXIF, BlockKind.XMP},
    "dirty.heic": {BlockKind.ICC},
    "7949_mirror_horizontal_rotate_270_cw.HEIC": {BlockKind.EXIF, BlockKind.ICC},
    "truncated.heic": set(),  # its last byte is missing: padded back, then cleaned
}


def _shown(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    """The primary picture as a viewer shows it (pillow-heif applies 'irot'/'imir')."""
    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image)
        return upright.mode, upright.size, upright.tobytes()


def _rotation(path: Path) -> object:
    """ExifTool's reading of 'irot' (no box means no rotation)."""
    return exiftool_tags(path).get("QuickTime:Rotation", 0)


def _assert_clean(
    data: bytes, tmp_path: Path, name: str = "cleaned.heic", rotation: object = None
) -> bytes:
    """Scrub `data`: nothing left per ExifTool, same pixels and orientation, nothing to find."""
    result = scrub.scrub(data)
    cleaned = result.data
    original, out = tmp_path / f"original-{name}", tmp_path / name
    original.write_bytes(data)
    out.write_bytes(cleaned)
    assert leftovers(out) == {}
    assert _shown(cleaned) == _shown(data)
    assert _rotation(out) == (_rotation(original) if rotation is None else rotation)
    assert scrub.inspect(cleaned).findings == ()
    assert {block.kind for block in heif.parse(cleaned).blocks} <= {BlockKind.ICC}
    # Never grows, but for the 36-byte 'dinf' a file may lack (a cut tail is padded).
    assert len(cleaned) <= len(heif.completed(data)) + 36
    return cleaned


def _removed_payloads_absent(data: bytes, cleaned: bytes) -> None:
    for block in heif.parse(data).blocks:
        if block.kind is not BlockKind.ICC and len(block.data) >= 16:
            assert block.data not in cleaned, block.name


@pytest.mark.parametrize("path", corpus_params("heic"))
def test_corpus_file_comes_out_clean(path: Path, tmp_path: Path) -> None:
    data = path.read_bytes()
    cleaned = _assert_clean(data, tmp_path, "cleaned" + path.suffix.lower())
    _removed_payloads_absent(data, cleaned)
    assert b"<x:xmpmeta" not in cleaned
    assert scrub.scrub(cleaned).data == cleaned  # a second pass changes nothing
    assert heif.strip(cleaned, heif.parse(cleaned)) == cleaned  # canonical: parse, write, same
    assert [box[0] for box in _top_boxes(cleaned)] == [b"ftyp", b"meta", b"mdat"]


@pytest.mark.parametrize("path", corpus_params("heic"))
def test_corpus_file_metadata_is_found(path: Path) -> None:
    blocks = heif.parse(path.read_bytes()).blocks
    assert EXPECTED[path.name] <= {block.kind for block in blocks}
    for block in blocks:
        if block.kind is BlockKind.EXIF:  # the TIFF bytes, past the item's header offset
            assert block.data[:4] in (b"II*\0", b"MM\0*")


@pytest.mark.parametrize("path", corpus_params("heic"))
def test_corpus_brand_decides_mime_and_extension(path: Path) -> None:
    fmt = scrub.sniff(path.read_bytes())
    if path.suffix.lower() == ".avif":
        assert (fmt.mime, fmt.extension) == ("image/avif", "avif")
    else:
        assert (fmt.mime, fmt.extension) == ("image/heic", "heic")


def test_motion_photo_video_is_cut_off(tmp_path: Path) -> None:
    files = [p for p in corpus_files("heic") if p.name == "motionphoto.heic"]
    if not files:
        pytest.skip("../shared/corpus is absent")
    data = files[0].read_bytes()
    cleaned = scrub.scrub(data).data
    assert b"mpvd" not in cleaned
    assert len(cleaned) < len(data) - 2_000_000


@pytest.mark.parametrize(
    "path", malformed_params(*(struct.pack(">I", n) + b"ftyp" for n in range(8, 256)))
)
def test_malformed_corpus_file_is_cleaned_or_refused(path: Path, tmp_path: Path) -> None:
    data = path.read_bytes()
    try:
        cleaned = scrub.scrub(data).data
    except ScrubError:
        return
    out = tmp_path / "cleaned.heic"
    out.write_bytes(cleaned)
    assert leftovers(out) == {}


# --- files we make ------------------------------------------------------------------------


def _make(
    mode: str = "RGB",
    size: tuple[int, int] = (64, 48),
    exif: bytes | None = None,
    xmp: bytes | None = None,
) -> bytes:
    image = Image.new(mode, size, (10, 200, 30, 128)[: len(mode)])
    for x in range(size[0]):
        image.putpixel((x, x % size[1]), (x * 3 % 256, 40, 255 - x * 3 % 256, 255)[: len(mode)])
    out = io.BytesIO()
    image.save(out, format="HEIF", quality=-1, exif=exif, xmp=xmp)
    return out.getvalue()


def _planted(exiftool: str, tmp_path: Path, data: bytes, seed: int) -> tuple[bytes, list[str]]:
    values = secrets(seed)
    path = tmp_path / "planted.heic"
    path.write_bytes(data)
    plant(
        exiftool,
        path,
        f"-GPSLatitude={values['latitude']}",
        "-GPSLatitudeRef=N",
        f"-GPSLongitude={values['longitude']}",
        "-GPSLongitudeRef=W",
        f"-SerialNumber={values['serial']}",
        f"-Artist={values['name']}",
        f"-XMP-dc:Creator={values['name']}",
        f"-XMP-photoshop:Instructions={values['fbmd']}",
        f"-UserComment={values['comment']}",
        f"-ImageDescription={values['comment']}",
        "-DateTimeOriginal=2021:03:04 05:06:07",
    )
    return path.read_bytes(), [values["name"], values["serial"], values["fbmd"], values["comment"]]


@pytest.mark.parametrize("seed", range(3))
def test_planted_values_are_gone(exiftool: str, tmp_path: Path, seed: int) -> None:
    data, planted = _planted(exiftool, tmp_path, _make(), seed)
    assert all(value.encode() in data for value in planted)
    kinds = {block.kind for block in heif.parse(data).blocks}
    assert {BlockKind.EXIF, BlockKind.XMP} <= kinds
    assert scrub.inspect(data).findings
    cleaned = _assert_clean(data, tmp_path)
    for value in planted:
        assert value.encode() not in cleaned


def test_alpha_plane_and_rotation_are_kept(exiftool: str, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # pillow-heif turns this into an 'irot' box
    exif[0x010F] = "Acme"
    data = _make("RGBA", exif=exif.tobytes(), xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
    data, _ = _planted(exiftool, tmp_path, data, 7)
    cleaned = _assert_clean(data, tmp_path)
    assert _shown(cleaned)[0] == "RGBA"
    (tmp_path / "rotated.heic").write_bytes(cleaned)
    tags = exiftool_tags(tmp_path / "rotated.heic")
    assert tags.get("QuickTime:Rotation") == 270
    assert "urn:mpeg:hevc:2015:auxid:1" in str(tags.get("QuickTime:AuxiliaryImageType"))


def test_clean_file_has_no_findings_and_keeps_its_pixels(tmp_path: Path) -> None:
    data = _make()
    assert heif.parse(data).blocks == ()
    cleaned = _assert_clean(data, tmp_path)
    assert _assert_clean(cleaned, tmp_path) == cleaned  # our own output is a fixed point


def test_a_little_missing_at_the_end_is_padded_back_too_much_is_damage() -> None:
    data = _make()
    tail = _top_boxes(data)[-1]
    assert tail[0] == b"mdat"
    with pytest.raises(DamagedImage):
        scrub.scrub(data[: tail[1] + 8])  # the picture's bytes are gone
    big = data[: tail[1]] + struct.pack(">I4s", 8 + heif.MAX_MISSING_TAIL + 100, b"mdat")
    with pytest.raises(DamagedImage):
        scrub.scrub(big + data[tail[1] + 8 :])
    assert len(scrub.scrub(data[:-1]).data) == len(scrub.scrub(data).data)


# --- hand-edited layouts ------------------------------------------------------------------------


def _top_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    boxes, pos = [], 0
    while pos < len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        boxes.append((kind, pos, pos + size))
        pos += size
    return boxes


def _children(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    return [(k, start + a, start + b) for k, a, b in _top_boxes(data[start:end])]


def _iloc_offsets(data: bytes) -> list[int]:
    """Where the absolute offsets of a pillow-heif 'iloc' sit (version 0/1, 4-byte fields)."""
    meta = next(box for box in _top_boxes(data) if box[0] == b"meta")
    _, start, _ = next(c for c in _children(data, meta[1] + 12, meta[2]) if c[0] == b"iloc")
    return _iloc_offsets_at(data, start)


def _iloc_offsets_at(data: bytes, start: int) -> list[int]:
    kind = data[start + 4 : start + 8]
    version, sizes = data[start + 8], data[start + 12]
    assert kind == b"iloc"
    assert version in (0, 1)
    assert sizes == 0x44
    base_size = data[start + 13] >> 4
    pos, found = start + 16, []
    for _ in range(struct.unpack_from(">H", data, start + 14)[0]):
        method = struct.unpack_from(">H", data, pos + 2)[0] & 15 if version else 0
        pos += 2 + (2 if version else 0) + 2
        base_at, pos = pos, pos + base_size
        count = struct.unpack_from(">H", data, pos)[0]
        pos += 2
        for _ in range(count):
            if method == 0:
                found.append(base_at if base_size else pos)
            pos += 8
    return sorted(set(found))


def _insert(data: bytes, at: int, extra: bytes, enclosing: list[int]) -> bytes:
    """Insert `extra` at `at`, growing the boxes starting at `enclosing` and moving every
    absolute 'iloc' offset that points past `at`."""
    out = bytearray(data[:at] + extra + data[at:])
    for start in enclosing:
        size = struct.unpack_from(">I", out, start)[0]
        struct.pack_into(">I", out, start, size + len(extra))
    for pos in _iloc_offsets(bytes(out)):
        value = struct.unpack_from(">I", out, pos)[0]
        if value >= at:
            struct.pack_into(">I", out, pos, value + len(extra))
    return bytes(out)


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")


def test_boxes_before_the_picture_data_are_cut_out(tmp_path: Path) -> None:
    data = _make(exif=b"Exif\0\0" + Image.Exif().tobytes()[6:])
    mdat = next(box for box in _top_boxes(data) if box[0] == b"mdat")
    secret = b"c2pa-manifest-" + bytes(random.Random(3).randbytes(40)).hex().encode()
    dirty = _insert(data, mdat[1], _box(b"uuid", C2PA_UUID + secret), [])
    dirty = _insert(dirty, mdat[1], _box(b"Xtra", b"tracking-code-12345"), [])
    assert _shown(dirty) == _shown(data)
    kinds = [block.kind for block in heif.parse(dirty).blocks]
    assert BlockKind.C2PA in kinds
    assert BlockKind.OTHER in kinds
    cleaned = _assert_clean(dirty, tmp_path)
    assert secret not in cleaned
    assert b"tracking-code" not in cleaned
    assert [box[0] for box in _top_boxes(cleaned)] == [b"ftyp", b"meta", b"mdat"]
    assert cleaned == scrub.scrub(data).data


def test_boxes_after_the_picture_data_are_cut_off(tmp_path: Path) -> None:
    data = _make()
    video = _box(b"ftyp", b"isom\0\0\0\0isommp42") + _box(b"mdat", b"video" * 100)
    dirty = data + _box(b"mpvd", video) + _box(b"sefd", b"SEFT-Image_UTC_Data1612345678")
    parsed = heif.parse(dirty)
    assert [b.kind for b in parsed.blocks] == [BlockKind.MEDIA, BlockKind.OTHER]
    assert parsed.blocks[0].data == video
    assert _assert_clean(dirty, tmp_path) == scrub.scrub(data).data


def test_item_names_and_handler_name_are_blanked(tmp_path: Path) -> None:
    """Kept items lose their names: the output is the one the unnamed file gives."""
    data = _make()
    meta = next(box for box in _top_boxes(data) if box[0] == b"meta")
    iinf = next(c for c in _children(data, meta[1] + 12, meta[2]) if c[0] == b"iinf")
    infe = _children(data, iinf[1] + 14, iinf[2])[0]
    assert data[infe[2] - 5 : infe[2]] == b"hvc1\0"  # an empty name
    dirty = _insert(data, infe[2] - 1, b"Kid", [meta[1], iinf[1], infe[1]])
    assert b"hvc1Kid\0" in dirty
    assert _shown(dirty) == _shown(data)
    cleaned = _assert_clean(dirty, tmp_path)
    assert b"Kid" not in cleaned
    assert cleaned == scrub.scrub(data).data


def test_broken_image_sequence_is_refused() -> None:
    """A picture track without its sample table cannot be cleaned frame by frame."""
    data = _make()
    hdlr = _box(b"hdlr", bytes(8) + b"pict" + bytes(13))
    tkhd = _full(b"tkhd", 0, 1, bytes(80))
    moov = _box(b"moov", _box(b"trak", tkhd + _box(b"mdia", hdlr)))
    with pytest.raises(DamagedImage):
        scrub.scrub(data + moov)


def test_pixel_bomb_is_refused_before_decoding() -> None:
    data = bytearray(_make())
    at = data.index(b"ispe") + 8
    struct.pack_into(">II", data, at, 60_000, 60_000)
    with pytest.raises(TooLarge):
        scrub.scrub(bytes(data))


def test_metadata_item_used_as_picture_input_is_refused() -> None:
    """A grid may not be built from the Exif item: removing it would break the picture."""
    data = bytearray(_make(exif=Image.Exif().tobytes()))
    at = data.index(b"hvc1", data.index(b"iinf"))
    data[at : at + 4] = b"grid"
    at = data.index(b"cdsc")  # Exif -> picture becomes picture -> Exif
    source, count, target = struct.unpack_from(">HHH", data, at + 4)
    assert count == 1
    data[at : at + 10] = b"dimg" + struct.pack(">HHH", target, 1, source)
    with pytest.raises(ScrubError):
        scrub.scrub(bytes(data))
    with pytest.raises(NotClean):
        heif.parse(bytes(data))


# --- brands ---------------------------------------------------------------------------------


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    return _box(b"ftyp", major + bytes(4) + b"".join(compatible)) + bytes(16)


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (_ftyp(b"heic", b"mif1", b"heic"), "heif"),
        (_ftyp(b"mif1", b"mif1", b"heic"), "heif"),
        (_ftyp(b"heix", b"mif1"), "heif"),
        (_ftyp(b"msf1", b"hevc"), "heif"),
        (_ftyp(b"mif1", b"mif1"), "heif"),
        (_ftyp(b"avif", b"mif1", b"miaf"), "avif"),
        (_ftyp(b"mif1", b"avif", b"mif1"), "avif"),
        (_ftyp(b"avis", b"msf1"), "avif"),
    ],
)
def test_heif_brands_are_recognised(head: bytes, name: str) -> None:
    assert scrub.sniff(head).name == name


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (_ftyp(b"jxl ", b"jxl "), "JPEG XL"),
        (_ftyp(b"crx ", b"crx "), "raw"),
        (_ftyp(b"abcd", b"efgh"), "ISO media"),
    ],
)
def test_other_brands_are_refused_by_name(head: bytes, what: str) -> None:
    with pytest.raises(UnsupportedFormat, match=what):
        scrub.sniff(head)


# --- damage -----------------------------------------------------------------------------------


def test_every_truncation_is_refused_or_clean() -> None:
    data = _make(exif=Image.Exif().tobytes(), xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
    for end in range(len(data)):
        try:
            cleaned = scrub.scrub(data[:end]).data
        except ScrubError:
            continue
        assert heif.parse(cleaned).blocks == ()


@pytest.mark.parametrize("seed", range(4))
def test_corrupted_structure_is_refused_or_clean(seed: int) -> None:
    data = _make(exif=Image.Exif().tobytes(), xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
    rng = random.Random(seed)
    meta_end = next(box for box in _top_boxes(data) if box[0] == b"meta")[2]
    for _ in range(300):
        broken = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            broken[rng.randrange(meta_end)] = rng.randrange(256)
        try:
            cleaned = scrub.scrub(bytes(broken)).data
        except ScrubError:
            continue
        assert {b.kind for b in heif.parse(cleaned).blocks} <= {BlockKind.ICC}


@pytest.mark.parametrize(
    "tail",
    [
        struct.pack(">I4s", 1, b"free") + struct.pack(">Q", 2**62),  # 64-bit size past the end
        struct.pack(">I4s", 4, b"free"),  # smaller than its own header
        b"\0\0\0",  # not even a box header
    ],
)
def test_impossible_top_level_box_is_damage(tail: bytes) -> None:
    with pytest.raises(ScrubError, match="incomplete"):
        scrub.scrub(_make() + tail)


# --- the generic box reader and writer (bot/formats/isobmff.py) ----------------------------------


def test_box_reader_reads_64_bit_sizes_size_0_and_uuid() -> None:
    large = struct.pack(">I4sQ", 1, b"mdat", 16 + 3) + b"abc"
    user = b"U" * 16
    uuid = isobmff.box(b"uuid", user + b"xyz")
    tail = struct.pack(">I4s", 0, b"free") + b"to the end"
    data = large + uuid + tail
    found = isobmff.boxes(data, 0, len(data), isobmff.Budget())
    assert [(b.type, b.end - b.body) for b in found] == [(b"mdat", 3), (b"uuid", 3), (b"free", 10)]
    assert isobmff.uuid_of(data, found[1]) == user
    assert found[2].end == len(data)
    small = isobmff.full(b"x   ", 2, 7, b"\1")
    version, flags, reader = isobmff.full_box(small, isobmff.box_at(small, 0, len(small)))
    assert (version, flags, reader.rest()) == (2, 7, b"\1")


def test_box_reader_is_bounded() -> None:
    data = isobmff.box(b"free", b"") * 50
    with pytest.raises(DamagedImage, match="too many boxes"):
        isobmff.boxes(data, 0, len(data), isobmff.Budget(limit=10))
    with pytest.raises(DamagedImage, match="incomplete"):
        isobmff.box_at(struct.pack(">I4s", 100, b"free"), 0, 8)
    with pytest.raises(DamagedImage, match="incomplete"):
        isobmff.Reader(b"abcd", 0, 2).take(3)


@pytest.mark.parametrize("version", [0, 1])
def test_video_seconds_reads_mvhd(version: int) -> None:
    times = struct.pack(">QQIQ" if version else ">IIII", 1, 2, 600, 600 * 3)
    moov = isobmff.box(b"moov", isobmff.full(b"mvhd", version, 0, times + bytes(80)))
    ftyp = isobmff.box(b"ftyp", b"isom\0\0\0\0")
    assert video_seconds(ftyp + moov + struct.pack(">I4s", 0, b"mdat") + b"frames") == 3.0
    assert video_seconds(ftyp + moov[:20]) is None
    assert video_seconds(ftyp) is None


# --- adversarial files built box by box, each with random planted codes ------------------------


def _code(rng: random.Random) -> bytes:
    return b"PLANT" + rng.randbytes(6).hex().upper().encode()


def _assert_codes_gone(cleaned: bytes, codes: list[bytes]) -> None:
    """Judged by the raw bytes: no code as ASCII or UTF-16 (either byte order)."""
    for code in codes:
        text = code.decode()
        for encoded in (code, text.encode("utf-16-le"), text.encode("utf-16-be")):
            assert encoded not in cleaned, code


def _full(kind: bytes, version: int, flags: int, body: bytes) -> bytes:
    return _box(kind, struct.pack(">I", version << 24 | flags) + body)


@dataclass
class _Item:
    type: bytes
    data: bytes = b""
    props: list[tuple[bytes, bool]] = field(default_factory=list)  # (box, essential)
    name: bytes = b""
    hidden: bool = False
    inside: tuple[int, int, int] | None = None  # (item index, offset, length): bytes of another


def _ingredients(fmt: str) -> tuple[bytes, dict[bytes, bytes]]:
    """The picture data and properties of a small picture made by pillow-heif or Pillow."""
    image = Image.new("RGB", (64, 64), (10, 200, 30))
    for x in range(64):
        image.putpixel((x, x * 7 % 64), (x * 3, 40, 255 - x * 3))
    out = io.BytesIO()
    image.save(out, format=fmt, quality=-1 if fmt == "HEIF" else 95)
    data = out.getvalue()
    top = _top_boxes(data)
    meta = next(box for box in top if box[0] == b"meta")
    children = _children(data, meta[1] + 12, meta[2])
    iprp = next(c for c in children if c[0] == b"iprp")
    ipco = _children(data, iprp[1] + 8, iprp[2])[0]
    props = {k: data[a:b] for k, a, b in _children(data, ipco[1] + 8, ipco[2])}
    mdat = next(box for box in top if box[0] == b"mdat")
    return data[mdat[1] + 8 : mdat[2]], props


def _build(
    items: list[_Item],
    refs: list[tuple[bytes, int, list[int]]] | None = None,
    *,
    brands: bytes = b"mif1heic",
    hdlr: bytes | None = None,
    dinf: bytes = b"",
    meta_extra: bytes = b"",
    top_extra: bytes = b"",
    gap: bytes = b"",
    tail: bytes = b"",
) -> bytes:
    """A HEIF file: 'ftyp', 'meta', `top_extra`, one 'mdat' (items' data, `gap` after each)."""
    refs = refs or []
    ftyp = _box(b"ftyp", brands[:4] + bytes(4) + brands)
    hdlr = hdlr or _full(b"hdlr", 0, 0, bytes(4) + b"pict" + bytes(12) + b"\0")
    ipco, ipma = b"", b""
    index = 0
    for number, item in enumerate(items, start=1):
        indices = b""
        for prop, essential in item.props:
            ipco += prop
            index += 1
            indices += bytes([index | (0x80 if essential else 0)])
        ipma += struct.pack(">HB", number, len(item.props)) + indices
    iprp = _box(
        b"iprp", _box(b"ipco", ipco) + _full(b"ipma", 0, 0, struct.pack(">I", len(items)) + ipma)
    )
    infes = b"".join(
        _full(
            b"infe", 2, 1 if it.hidden else 0, struct.pack(">HH", n, 0) + it.type + it.name + b"\0"
        )
        for n, it in enumerate(items, start=1)
    )
    iinf = _full(b"iinf", 0, 0, struct.pack(">H", len(items)) + infes)
    iref = b"".join(
        _box(kind, struct.pack(f">HH{len(to)}H", source, len(to), *to))
        for kind, source, to in refs
    )
    iref = _full(b"iref", 0, 0, iref) if refs else b""
    pitm = _full(b"pitm", 0, 0, struct.pack(">H", 1))

    def meta_with(first: int) -> bytes:
        starts, entries, pos = [], b"", first
        for item in items:
            starts.append(pos)
            pos += len(item.data) + (len(gap) if item.data else 0)
        for number, item in enumerate(items, start=1):
            if item.inside is not None:
                k, offset, length = item.inside
                start, size = starts[k] + offset, length
            elif item.data:
                start, size = starts[number - 1], len(item.data)
            else:
                continue
            entries += struct.pack(">HHHHII", number, 0, 0, 1, start, size)
        count = len(entries) // 16
        iloc = _full(b"iloc", 1, 0, struct.pack(">BBH", 0x44, 0, count) + entries)
        body = hdlr + dinf + pitm + iinf + iloc + iref + iprp + meta_extra
        return _full(b"meta", 0, 0, body)

    first = len(ftyp) + len(meta_with(0)) + len(top_extra) + 8
    payload = b"".join(it.data + (gap if it.data else b"") for it in items)
    return ftyp + meta_with(first) + top_extra + _box(b"mdat", payload) + tail


def _grown(box: bytes, extra: bytes) -> bytes:
    """The box with `extra` bytes after its fields (a structure longer than its specification)."""
    return _box(box[4:8], box[8:] + extra)


def _nal(kind: int, payload: bytes, layer: int = 0) -> bytes:
    unit = struct.pack(">H", kind << 9 | layer << 3 | 1) + payload
    return struct.pack(">I", len(unit)) + unit


def _obu_bytes(kind: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return bytes([kind << 3 | 2, len(payload)]) + payload


def _sei_array(code: bytes) -> bytes:
    unit = struct.pack(">H", 39 << 9 | 1) + b"\x05" + bytes([16 + len(code)]) + bytes(16) + code
    return bytes([0x80 | 39]) + struct.pack(">HH", 1, len(unit)) + unit


def _with_sei_array(hvcc: bytes, code: bytes) -> bytes:
    """An hvcC with one more array (prefix SEI) holding `code`, and `code` after the arrays."""
    body = bytearray(hvcc[8:])
    body[22] += 1
    return _box(b"hvcC", bytes(body) + _sei_array(code) + code)


def _tiff_with(code: bytes) -> bytes:
    exif = Image.Exif()
    exif[0x013B] = code.decode()  # Artist
    return exif.tobytes()


def test_every_heic_structure_class_is_rebuilt(tmp_path: Path, exiftool: str) -> None:
    rng = random.Random(1201)
    codes = [_code(rng) for _ in range(24)]
    data, props = _ingredients("HEIF")
    c = iter(codes)
    exif_in_sei = b"\0\0\0\x06Exif\0\0" + _tiff_with(next(c))
    picture = (
        _nal(35, b"\x50")  # access unit delimiter
        + _nal(39, b"\x05" + bytes([len(code := next(c))]) + code)  # prefix SEI, user data
        + data[:4]
        + data[4:]
        + _nal(40, b"\x05" + bytes([len(code := next(c))]) + code)  # suffix SEI
        + _nal(38, b"\xff" * 4 + next(c))  # filler data
        + _nal(45, next(c))  # reserved
        + _nal(50, next(c))  # unspecified
        + _nal(1, next(c), layer=1)  # a slice of another layer
        + _nal(39, b"\x05" + bytes([16 + len(exif_in_sei)]) + bytes(16) + exif_in_sei)
    )
    exif_at = len(picture) - len(exif_in_sei)  # an Exif item whose bytes lie inside an SEI
    ispe = _grown(props[b"ispe"], next(c))
    pixi = _grown(props[b"pixi"], next(c))
    clap_fields = struct.pack(">8I", 64, 1, 64, 1, 0, 1, 0, 1)  # the whole picture
    clap = _box(b"clap", clap_fields + next(c))
    irot = _box(b"irot", b"\xfd" + next(c))  # reserved bits set, then bytes
    imir = _box(b"imir", b"\xfe" + next(c))
    colr = _box(b"colr", props[b"colr"][8:18] + b"\x7f" + next(c))  # nclx, reserved bits set
    ftyp_code, hdlr_code, url_code, ref_code = next(c)[:4], next(c), next(c), next(c)[-4:]
    hdlr = _full(b"hdlr", 0, 0, bytes(4) + b"pict" + hdlr_code[:12] + hdlr_code + b"\0")
    url = _full(b"url ", 0, 0, url_code + b"\0")
    dinf = _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1) + url))
    hvcc = _with_sei_array(props[b"hvcC"], next(c))
    items = [
        _Item(
            b"hvc1",
            picture,
            [
                (hvcc, True),
                (ispe, False),
                (pixi, False),
                (colr, False),
                (clap, True),
                (irot, True),
                (imir, True),
            ],
            name=next(c),
        ),
        _Item(b"Exif", inside=(0, exif_at, len(exif_in_sei))),
        _Item(
            b"mime", b"<x:xmpmeta>" + next(c) + b"</x:xmpmeta>", name=b"XMP\0application/rdf+xml"
        ),
    ]
    grpl = _box(b"grpl", _full(b"altr", 0, 0, struct.pack(">IIII", 99, 2, 1, 3)))
    dirty = _build(
        items,
        [(b"cdsc", 2, [1]), (b"cdsc", 3, [1]), (ref_code, 1, [1])],
        brands=b"heic" + ftyp_code + b"mif1heic",
        hdlr=hdlr,
        dinf=dinf,
        meta_extra=grpl + _box(b"free", next(c)),
        top_extra=_box(b"Xtra", next(c)),
        gap=next(c),
        tail=_box(b"free", next(c)),
    )
    used = [code for code in codes if code in dirty]
    assert len(used) >= 20
    names = " ".join(block.name for block in heif.parse(dirty).blocks)
    for kind in ("ispe", "pixi", "clap", "irot", "imir", "hvcC"):
        assert f"'{kind}' property with" in names, kind
    assert {BlockKind.EXIF, BlockKind.XMP, BlockKind.OTHER} <= {
        block.kind for block in heif.parse(dirty).blocks
    }
    # ExifTool misreads the planted 'irot' (its reserved bits are set): the angle is 1 (90°).
    cleaned = _assert_clean(dirty, tmp_path, rotation=90)
    _assert_codes_gone(cleaned, [*used, ftyp_code, hdlr_code, ref_code])
    assert _shown(cleaned) == _shown(dirty)
    # What was kept is what the standard says, at its length.
    assert cleaned.startswith(_box(b"ftyp", b"heic\0\0\0\0mif1heic"))
    assert _full(b"hdlr", 0, 0, bytes(4) + b"pict" + bytes(12) + b"\0") in cleaned
    self_contained = _full(b"url ", 0, 1, b"")
    assert _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1) + self_contained)) in cleaned
    for prop in (props[b"ispe"], props[b"pixi"], _box(b"clap", clap_fields), _box(b"irot", b"\1")):
        assert prop in cleaned
    assert _box(b"imir", b"\0") in cleaned
    assert _box(b"colr", props[b"colr"][8:18] + b"\0") in cleaned
    assert scrub.scrub(cleaned).data == cleaned


def test_hidden_overlay_input_is_dropped(tmp_path: Path) -> None:
    rng = random.Random(1202)
    secret = _code(rng)
    data, props = _ingredients("HEIF")
    hidden = data[:4] + data[4:] + _nal(1, secret)  # a picture nobody sees, carrying a code
    fill = secret[:8]  # canvas fill values nobody sees: the first input covers the canvas
    overlay = bytes([0, 0]) + fill + struct.pack(">HHhhhh", 64, 64, 0, 0, 64, 0)
    tile = [(props[b"hvcC"], True), (props[b"ispe"], False)]
    items = [
        _Item(b"iovl", overlay, [(props[b"ispe"], False)]),
        _Item(b"hvc1", data, tile, hidden=True),
        _Item(b"hvc1", hidden, tile, hidden=True),
    ]
    dirty = _build(items, [(b"dimg", 1, [2, 3])])
    assert secret in dirty
    assert any("second picture" in block.name for block in heif.parse(dirty).blocks)
    cleaned = _assert_clean(dirty, tmp_path)
    _assert_codes_gone(cleaned, [secret, fill])
    assert len(heif._read(cleaned).kept) == 2
    assert struct.pack(">HHhh", 64, 64, 0, 0) in cleaned


def test_avif_structure_classes_are_rebuilt(tmp_path: Path) -> None:
    rng = random.Random(1203)
    codes = [_code(rng)[:16] for _ in range(7)]
    data, props = _ingredients("AVIF")
    c = iter(codes)
    picture = (
        _obu_bytes(5, b"\x05" + next(c))  # metadata OBU (ITU-T T.35)
        + data
        + _obu_bytes(15, next(c))  # padding
        + _obu_bytes(12, next(c))  # reserved
    )
    av1c = props[b"av1C"]
    sequence_header = av1c[12:]
    config = _box(b"av1C", av1c[8:12] + sequence_header + _obu_bytes(5, b"\x05" + next(c)))
    aux = _full(b"auxC", 0, 0, b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha\0" + next(c))
    alpha = _Item(b"av01", picture, [(config, True), (props[b"ispe"], False), (aux, True)])
    items = [
        _Item(b"av01", picture, [(config, True), (_grown(props[b"ispe"], next(c)), False)]),
        alpha,
    ]
    dirty = _build(items, [(b"auxl", 2, [1])], brands=b"avifmif1miafMA1B" + next(c)[:4])
    used = [code for code in codes if code in dirty]
    assert len(used) == len(codes) - 1  # the last one is cut to a 4-letter brand
    cleaned = scrub.scrub(dirty).data
    _assert_codes_gone(cleaned, used)
    assert cleaned.startswith(_box(b"ftyp", b"avif\0\0\0\0mif1miafavifMA1B"))
    assert _full(b"auxC", 0, 0, b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha\0") in cleaned
    assert scrub.inspect(cleaned).findings == ()
    assert scrub.scrub(cleaned).data == cleaned
    with Image.open(io.BytesIO(dirty)) as before, Image.open(io.BytesIO(cleaned)) as after:
        assert after.size == before.size
        assert after.convert("RGBA").tobytes() == before.convert("RGBA").tobytes()
    (tmp_path / "cleaned.avif").write_bytes(cleaned)
    assert leftovers(tmp_path / "cleaned.avif") == {}


# --- image sequences ----------------------------------------------------------------------------

_TRACK_STRUCTURE = {
    "TrackHeaderVersion",
    "TrackID",
    "TrackDuration",
    "TrackLayer",
    "TrackVolume",
    "MatrixStructure",
    "ImageWidth",
    "ImageHeight",
    "MediaHeaderVersion",
    "MediaTimeScale",
    "MediaDuration",
    "MediaLanguageCode",
    "HandlerType",
    "GraphicsMode",
    "OpColor",
    "OtherFormat",
}
_NO_DATE = "0000:00:00 00:00:00"


def _sequence_leftovers(path: Path) -> dict[str, object]:
    """What ExifTool still reads beyond structure: track structure and zero times are allowed."""
    return {
        tag: value
        for tag, value in leftovers(path).items()
        if value != _NO_DATE
        and not (tag.startswith("Track") and tag.split(":")[1] in _TRACK_STRUCTURE)
    }


def _animated(rng: random.Random, codes: list[bytes]) -> bytes:
    """A three-frame AVIF by Pillow (libavif) with codes in Exif, XMP, the sample entry's
    compressor name and a 'udta' box in the movie; every chunk offset moved to match."""
    frames = [Image.new("RGB", (32, 32), (i * 70, 10 + i, 200 - i * 60)) for i in range(3)]
    for i, frame in enumerate(frames):
        frame.putpixel((i, rng.randrange(32)), (255, 255, 255))
    exif = Image.Exif()
    exif[0x013B] = codes[0].decode()
    out = io.BytesIO()
    frames[0].save(
        out,
        format="AVIF",
        save_all=True,
        append_images=frames[1:],
        duration=[100, 200, 300],
        exif=exif,
        xmp=b"<x:xmpmeta><dc:creator>" + codes[1] + b"</dc:creator></x:xmpmeta>",
    )
    data = bytearray(out.getvalue())
    entry = data.index(b"av01", data.index(b"stsd"))
    name = b"\x1f" + codes[2][:31].ljust(31, b"\0")
    data[entry + 4 + 42 : entry + 4 + 74] = name  # compressorname, fixed 32 bytes
    moov = next(box for box in _top_boxes(bytes(data)) if box[0] == b"moov")
    udta = _box(b"udta", _box(b"\xa9nam", codes[3]))
    grown = _insert(bytes(data), moov[2], udta, [moov[1]])
    stco = grown.index(b"stco") - 4
    moved = [stco + 16 + 4 * i for i in range(struct.unpack_from(">I", grown, stco + 12)[0])]
    track_meta = grown.index(b"meta", moov[1])  # its items' offsets (Exif, XMP) move too
    moved += _iloc_offsets_at(grown, grown.index(b"iloc", track_meta) - 4)
    out_data = bytearray(grown)
    for at in moved:
        struct.pack_into(">I", out_data, at, struct.unpack_from(">I", grown, at)[0] + len(udta))
    return bytes(out_data)


def _durations(data: bytes) -> list[object]:
    with Image.open(io.BytesIO(data)) as image:
        found = []
        for index in range(image.n_frames):
            image.seek(index)
            image.load()
            found.append(image.info.get("duration"))
        return found


def test_image_sequence_keeps_every_frame(tmp_path: Path, exiftool: str) -> None:
    rng = random.Random(1204)
    codes = [_code(rng) for _ in range(4)]
    dirty = _animated(rng, codes)
    assert all(code in dirty for code in codes)
    assert len(shown_frames(dirty)) == 3
    kinds = {block.kind for block in heif.parse(dirty).blocks}
    assert {BlockKind.EXIF, BlockKind.XMP, BlockKind.DATE, BlockKind.OTHER} <= kinds
    assert heif.parse(dirty).frames == 3
    names = {block.name for block in heif.parse(dirty).blocks}
    assert {"HEIF track item 2 (Exif)", "HEIF track item 3 (XMP)"} <= names  # libavif's place
    assert codes[0].decode() in {finding.value for finding in scrub.inspect(dirty).findings}
    cleaned = scrub.scrub(dirty).data
    _assert_codes_gone(cleaned, codes)
    assert shown_frames(cleaned) == shown_frames(dirty)
    assert _durations(cleaned) == _durations(dirty) == [100, 200, 300]
    assert cleaned.startswith(_box(b"ftyp", b"avis\0\0\0\0avismsf1iso8mif1miafavifMA1B"))
    assert scrub.inspect(cleaned).findings == ()
    assert scrub.scrub(cleaned).data == cleaned
    (tmp_path / "cleaned.avif").write_bytes(cleaned)
    assert _sequence_leftovers(tmp_path / "cleaned.avif") == {}
    (tmp_path / "dirty.avif").write_bytes(dirty)
    assert _sequence_leftovers(tmp_path / "dirty.avif") != {}  # the judge can see times


def test_image_sequence_with_alpha_keeps_its_alpha_track() -> None:
    frames = [
        Image.new("RGBA", (32, 32), (i * 60, 10, 200 - i * 50, 60 + i * 50)) for i in range(3)
    ]
    out = io.BytesIO()
    frames[0].save(out, format="AVIF", save_all=True, append_images=frames[1:], duration=100)
    dirty = out.getvalue()
    cleaned = scrub.scrub(dirty).data
    assert len(cleaned) <= len(dirty)  # the still image and the first frame share their bytes
    assert shown_frames(cleaned) == shown_frames(dirty)
    assert {alpha for _, pixels in shown_frames(cleaned) for alpha in pixels[3::4]} == {
        60,
        110,
        160,
    }
    movie = heif._read(cleaned).movie
    assert movie is not None
    assert [(t.handler, len(t.samples)) for t in movie.tracks] == [(b"pict", 3), (b"auxv", 3)]
    assert movie.tracks[1].refs == [(b"auxl", (movie.tracks[0].id,))]


def test_properties_whose_numbers_hold_a_code_are_dropped_or_reduced(tmp_path: Path) -> None:
    """pixi depths and clap fractions are numbers, so a code can be written as them."""
    rng = random.Random(1205)
    code = _code(rng)[:12]
    data, props = _ingredients("HEIF")
    pixi = _full(b"pixi", 0, 0, bytes([len(code)]) + code)  # 12 "channels" of ASCII depth
    clap = _box(b"clap", code[:4] + code[4:8] + code[8:12] + b"\0\0\0\1" + bytes(16))
    tile = [(props[b"hvcC"], True), (props[b"ispe"], False)]
    dirty = _build([_Item(b"hvc1", data, [*tile, (pixi, False), (clap, True)])])
    plain = _build([_Item(b"hvc1", data, tile)])
    cleaned = scrub.scrub(dirty).data
    _assert_codes_gone(cleaned, [code, code[:4], code[4:8], code[8:]])
    assert cleaned == scrub.scrub(plain).data
    unreduced = _box(b"clap", struct.pack(">8I", 128, 2, 192, 3, 0, 1, 0, 1))
    cleaned = scrub.scrub(_build([_Item(b"hvc1", data, [*tile, (unreduced, True)])])).data
    assert _box(b"clap", struct.pack(">8I", 64, 1, 64, 1, 0, 1, 0, 1)) in cleaned
    assert _shown(cleaned) == _shown(plain)


def test_hevc_configuration_fields_come_from_the_sequence_parameters(tmp_path: Path) -> None:
    """hvcC repeats what the SPS says; a code written over its flags and hints is not kept."""
    code = _code(random.Random(1206))[:12]
    data, props = _ingredients("HEIF")
    body = bytearray(props[b"hvcC"][8:])
    body[2:12] = code[:10]  # profile compatibility and constraint flags
    body[13:15] = body[15:17] = body[19:21] = code[10:12]  # segmentation, ..., frame rate
    dirty = _build(
        [_Item(b"hvc1", data, [(_box(b"hvcC", bytes(body)), True), (props[b"ispe"], False)])]
    )
    plain = _build([_Item(b"hvc1", data, [(props[b"hvcC"], True), (props[b"ispe"], False)])])
    cleaned = scrub.scrub(dirty).data
    _assert_codes_gone(cleaned, [code[:10], code[:4], code[4:8]])
    assert cleaned == scrub.scrub(plain).data
    assert _shown(cleaned) == _shown(plain)


_IDENTITY = struct.pack(">9i", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_QUARTER_TURN = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 64 << 16, 0, 0x40000000)


def _hevc_sequence(
    frames: list[bytes], hvcc: bytes, ispe: bytes, extra: bytes, matrix: bytes = _IDENTITY
) -> bytes:
    """A HEIF image sequence made here: a still item (the first frame) and one 'pict' track
    with `frames` in one chunk; `extra` goes at the end of the sample entry's fixed fields'
    compressor name and into a 'udta' of the track."""
    name = bytes([min(31, len(extra))]) + extra[:31].ljust(31, b"\0")
    entry = bytes(6) + struct.pack(">H", 1) + bytes(16) + struct.pack(">HH", 64, 64)
    entry += struct.pack(">IIIH", 0x480000, 0x480000, 0, 1) + name + struct.pack(">Hh", 24, -1)
    entry_box = _box(b"hvc1", entry + hvcc)

    def moov(offset: int) -> bytes:
        count = len(frames)
        stbl = _full(b"stsd", 0, 0, struct.pack(">I", 1) + entry_box)
        stbl += _full(b"stts", 0, 0, struct.pack(">III", 1, count, 512))
        stbl += _full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, count, 1))
        sizes = struct.pack(f">II{count}I", 0, count, *map(len, frames))
        stbl += _full(b"stsz", 0, 0, sizes) + _full(b"stco", 0, 0, struct.pack(">II", 1, offset))
        url = _full(b"url ", 0, 1, b"")
        dinf = _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1) + url))
        minf = _full(b"vmhd", 0, 1, bytes(8)) + dinf + _box(b"stbl", stbl)
        hdlr = _full(b"hdlr", 0, 0, bytes(4) + b"pict" + bytes(12) + extra + b"\0")
        mdhd = _full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 7, 8, 1024, 512 * count, 0x55C4, 0))
        mdia = _box(b"mdia", mdhd + hdlr + _box(b"minf", minf))
        tkhd = struct.pack(">IIIII", 7, 8, 9, 0, 99) + bytes(16) + matrix
        tkhd = _full(b"tkhd", 0, 7, tkhd + struct.pack(">II", 64 << 16, 64 << 16))
        udta = _box(b"udta", _box(b"\xa9nam", extra))
        mvhd = _full(b"mvhd", 0, 0, struct.pack(">IIII", 7, 8, 1000, 1000) + bytes(80))
        return _box(b"moov", mvhd + _box(b"trak", tkhd + mdia + udta))

    still = _build(
        [_Item(b"hvc1", frames[0], [(hvcc, True), (ispe, False)])], brands=b"msf1hevcmif1heic"
    )
    head = _top_boxes(still)
    mdat = head[-1]
    size = len(moov(0))
    first = mdat[1] + size + 8
    out = bytearray(still[: mdat[1]] + moov(first + len(frames[0])))
    for pos in _iloc_offsets_at(bytes(out), bytes(out).index(b"iloc") - 4):
        struct.pack_into(">I", out, pos, struct.unpack_from(">I", out, pos)[0] + size)
    return bytes(out) + _box(b"mdat", frames[0] + b"".join(frames))


def test_hevc_image_sequence_keeps_every_frame_without_its_metadata() -> None:
    rng = random.Random(1207)
    codes = [_code(rng) for _ in range(3)]
    data, props = _ingredients("HEIF")
    frames = [data, _nal(39, b"\x05" + bytes([16 + 17]) + bytes(16) + codes[1]) + data, data]
    hvcc = _with_sei_array(props[b"hvcC"], codes[2])
    dirty = _hevc_sequence(frames, hvcc, props[b"ispe"], codes[0][:17])
    assert all(code[:17] in dirty for code in codes)
    parsed = heif.parse(dirty)
    assert parsed.frames == 3
    kinds = {block.kind for block in parsed.blocks}
    assert {BlockKind.DATE, BlockKind.OTHER} <= kinds
    cleaned = scrub.scrub(dirty).data
    _assert_codes_gone(cleaned, [code[:17] for code in codes])
    movie = heif._read(cleaned).movie
    assert movie is not None
    (track,) = movie.tracks
    assert [bytes(cleaned[a:b]) for a, b in track.samples] == [data, data, data]
    assert track.times == [(3, 512)]
    assert _shown(cleaned) == _shown(dirty)
    assert scrub.scrub(cleaned).data == cleaned


def test_sequence_track_matrix_keeps_quarter_turns_only() -> None:
    code = _code(random.Random(1208))
    data, props = _ingredients("HEIF")
    coded = _QUARTER_TURN[:24] + code[:8] + _QUARTER_TURN[32:]  # a code as the translation
    for matrix, kept in ((_QUARTER_TURN, _QUARTER_TURN), (coded, _IDENTITY)):
        dirty = _hevc_sequence([data], props[b"hvcC"], props[b"ispe"], b"x", matrix)
        cleaned = scrub.scrub(dirty).data
        assert kept in cleaned
        _assert_codes_gone(cleaned, [code[:8]])


def test_zero_padding_after_the_last_hevc_unit_is_dropped_not_refused() -> None:
    data, props = _ingredients("HEIF")
    tile = [(props[b"hvcC"], True), (props[b"ispe"], False)]
    padded = scrub.scrub(_build([_Item(b"hvc1", data + bytes(7), tile)])).data
    assert padded == scrub.scrub(_build([_Item(b"hvc1", data, tile)])).data
    with pytest.raises(DamagedImage):
        scrub.scrub(_build([_Item(b"hvc1", data + b"\0\0\0\x09\x26", tile)]))  # cut short


def _length_prefixed(*units: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(unit)) + unit for unit in units)


def test_avc_item_keeps_slices_and_parameter_sets_only() -> None:
    rng = random.Random(1209)
    codes = [_code(rng) for _ in range(5)]
    sps = bytes([0x67, 0x42, 0xC0, 0x1E]) + rng.randbytes(8)
    pps = bytes([0x68, 0xCE, 0x3C, 0x80])
    slice_ = bytes([0x65]) + rng.randbytes(40)
    lists = b"\xe1" + struct.pack(">H", len(sps)) + sps + b"\x01" + struct.pack(">H", len(pps))
    avcc = _box(b"avcC", b"\x01" + codes[0][:3] + b"\x03" + lists + pps + codes[1])
    data = _length_prefixed(
        b"\x06" + codes[2], b"\x09\xf0", slice_, b"\x0c" + codes[3], b"\x1e" + codes[4]
    )
    _, props = _ingredients("HEIF")
    dirty = _build([_Item(b"avc1", data, [(avcc, True), (props[b"ispe"], False)])])
    assert "units decoders skip" in " ".join(b.name for b in heif.parse(dirty).blocks)
    cleaned = scrub.scrub(dirty).data
    _assert_codes_gone(cleaned, [codes[0][:3], *codes[1:]])
    expected = b"\x01\x42\xc0\x1e\xff" + lists + pps
    assert _box(b"avcC", expected) in cleaned
    layout = heif._read(cleaned)
    assert heif._item_bytes(cleaned, layout.meta, layout.meta.primary) == _length_prefixed(slice_)
    assert scrub.scrub(cleaned).data == cleaned


def test_jpeg_item_is_cleaned_as_a_jpeg_file_is() -> None:
    rng = random.Random(1210)
    codes = [_code(rng) for _ in range(2)]
    picture = Image.new("RGB", (64, 64), (200, 30, 60))
    picture.putpixel((3, 5), (0, 0, 0))
    out = io.BytesIO()
    picture.save(out, format="JPEG", exif=_tiff_with(codes[0]), comment=codes[1])
    original = out.getvalue()
    _, props = _ingredients("HEIF")
    dirty = _build([_Item(b"jpeg", original, [(props[b"ispe"], False)])], brands=b"mif1jpeg")
    kinds = {block.kind for block in heif.parse(dirty).blocks}
    assert {BlockKind.EXIF, BlockKind.COMMENT} <= kinds
    cleaned = scrub.scrub(dirty).data
    _assert_codes_gone(cleaned, codes)
    layout = heif._read(cleaned)
    item = heif._item_bytes(cleaned, layout.meta, layout.meta.primary)
    with Image.open(io.BytesIO(item)) as after, Image.open(io.BytesIO(original)) as before:
        assert after.tobytes() == before.tobytes()
    assert scrub.scrub(cleaned).data == cleaned


def test_av1_sequence_header_ends_at_its_last_field() -> None:
    """Bytes after a sequence header's trailing bits (in av1C and in the picture) are cut."""
    code = _code(random.Random(1211))[:16]
    data, props = _ingredients("AVIF")
    av1c = props[b"av1C"]
    assert data[:2] == b"\x12\x00"  # a temporal delimiter, then the sequence header
    header = data[2 : 4 + data[3]]
    assert header[0] == 0x0A
    padded = bytes([header[0], header[1] + len(code)]) + header[2:] + code
    config = _box(b"av1C", av1c[8:12] + padded)
    picture = data.replace(header, padded, 1)
    assert picture != data
    ispe = (props[b"ispe"], False)
    dirty = _build([_Item(b"av01", picture, [(config, True), ispe])], brands=b"avifmif1")
    plain_config = _box(b"av1C", av1c[8:12] + header)
    plain = _build([_Item(b"av01", data, [(plain_config, True), ispe])], brands=b"avifmif1")
    cleaned = scrub.scrub(dirty).data
    _assert_codes_gone(cleaned, [code])
    assert cleaned == scrub.scrub(plain).data
    with Image.open(io.BytesIO(cleaned)) as after, Image.open(io.BytesIO(plain)) as before:
        assert after.convert("RGB").tobytes() == before.convert("RGB").tobytes()


def test_sample_tables_give_every_sample_and_are_bounded() -> None:
    """Two chunks (two samples, then one), sizes 3, 4, 5: where each sample lies."""
    stsz = isobmff.full(b"stsz", 0, 0, struct.pack(">IIIII", 0, 3, 3, 4, 5))
    stsc = isobmff.table(b"stsc", 0, [struct.pack(">III", 1, 2, 1), struct.pack(">III", 2, 1, 1)])
    stco = isobmff.table(b"stco", 0, [struct.pack(">I", 100), struct.pack(">I", 200)])
    data = stsz + stsc + stco + bytes(300)
    budget = isobmff.Budget()
    table = isobmff.boxes(data, 0, len(stsz + stsc + stco), budget)
    ranges = isobmff.sample_ranges(data, table, 10, budget)
    assert ranges == [(100, 103), (103, 107), (200, 205)]
    with pytest.raises(DamagedImage, match="too many samples"):
        isobmff.sample_ranges(data, table, 2, budget)
    assert isobmff.sample_ranges(data, table[:2], 10, budget) is None  # no chunk offsets
    assert isobmff.sized(5) == (0, b"\0\0\0\5")
    assert isobmff.sized(2**33)[0] == 1


def test_parameter_sets_no_slice_names_are_dropped() -> None:
    """A second PPS (id 5, which no slice uses) holding a code is not picture data."""
    code = _code(random.Random(1212))
    data, props = _ingredients("HEIF")
    unused = b"\x44\x01\x36" + code  # PPS: pps_id ue(5), sps_id ue(0), then anything
    body = bytearray(props[b"hvcC"][8:])
    body[22] += 1
    array = bytes([0x80 | 34]) + struct.pack(">HH", 1, len(unused)) + unused
    hvcc = _box(b"hvcC", bytes(body) + array)
    ispe = (props[b"ispe"], False)
    dirty = _build([_Item(b"hvc1", data, [(hvcc, True), ispe])])
    plain = _build([_Item(b"hvc1", data, [(props[b"hvcC"], True), ispe])])
    cleaned = scrub.scrub(dirty).data
    _assert_codes_gone(cleaned, [code])
    assert cleaned == scrub.scrub(plain).data
    assert _shown(cleaned) == _shown(plain)


@pytest.mark.parametrize("kind", [10, 11, 12, 13, 14, 15])
def test_reserved_slice_types_are_cut_out(kind: int, tmp_path: Path) -> None:
    code = _code(random.Random(1210 + kind))
    data, props = _ingredients("HEIF")
    tile = [(props[b"hvcC"], True), (props[b"ispe"], False)]
    dirty = _build([_Item(b"hvc1", data + _nal(kind, code), tile)])
    assert code in dirty
    cleaned = _assert_clean(dirty, tmp_path)
    _assert_codes_gone(cleaned, [code])


@pytest.mark.parametrize(
    "prop",
    b"cmpd uncC cmpC icef cpat splz sbpm snuc jpgC j2kH lhvC oinf vvcC cclv".split(),
)
def test_another_codecs_configuration_is_not_copied(prop: bytes, tmp_path: Path) -> None:
    """Properties we cannot take apart (copied whole for their own codec) never ride along on
    an item of another codec, where no decoder reads them."""
    code = _code(random.Random(prop))
    data, props = _ingredients("HEIF")
    extra = _box(prop, bytes(4) + code)
    tile = [(props[b"hvcC"], True), (props[b"ispe"], False)]
    dirty = _build([_Item(b"hvc1", data, [*tile, (extra, False)])])
    if prop == b"vvcC":  # libheif refuses an HEVC item that also claims VVC: judged by bytes
        cleaned = scrub.scrub(dirty).data
        assert _shown(cleaned) == _shown(_build([_Item(b"hvc1", data, tile)]))
    else:
        cleaned = _assert_clean(dirty, tmp_path)
    _assert_codes_gone(cleaned, [code])


@pytest.mark.parametrize("values", [(3, 3, 3), (1, 13, 87), (81, 13, 0), (1, 90, 0), (300, 13, 0)])
def test_colour_code_points_no_standard_defines_are_refused(values: tuple[int, int, int]) -> None:
    """libheif refuses such a picture; we never copy the values (they could spell anything)."""
    data, props = _ingredients("HEIF")
    tile = [(props[b"hvcC"], True), (props[b"ispe"], False)]
    nclx = _box(b"colr", b"nclx" + struct.pack(">3H", *values) + b"\x80")
    with pytest.raises(DamagedImage, match="colour description"):
        scrub.scrub(_build([_Item(b"hvc1", data, [*tile, (nclx, False)])]))
    srgb = _box(b"colr", b"nclx" + struct.pack(">3H", 1, 13, 0) + b"\x80")
    assert srgb in scrub.scrub(_build([_Item(b"hvc1", data, [*tile, (srgb, False)])])).data


def test_two_different_colour_descriptions_for_one_picture_are_refused() -> None:
    data, props = _ingredients("HEIF")
    tile = [(props[b"hvcC"], True), (props[b"ispe"], False)]
    srgb = _box(b"colr", b"nclx" + struct.pack(">3H", 1, 13, 0) + b"\x80")
    p3 = _box(b"colr", b"nclx" + struct.pack(">3H", 12, 13, 0) + b"\x80")
    with pytest.raises(DamagedImage, match="two different colour descriptions"):
        scrub.scrub(_build([_Item(b"hvc1", data, [*tile, (srgb, False), (p3, False)])]))
    twice = scrub.scrub(_build([_Item(b"hvc1", data, [*tile, (srgb, False), (srgb, False)])]))
    assert twice.data.count(srgb) == 1


def test_redundant_av1_frame_header_is_cut_out() -> None:
    code = _code(random.Random(1230))[:16]
    data, props = _ingredients("AVIF")
    tile = [(props[b"av1C"], True), (props[b"ispe"], False)]
    brands = b"avifmif1miaf"
    dirty = _build([_Item(b"av01", data + _obu_bytes(7, code), tile)], brands=brands)
    cleaned = scrub.scrub(dirty).data
    _assert_codes_gone(cleaned, [code])
    # (dav1d fails on this one after the frame, where it is no copy: the picture is the same
    # as without it.)
    assert cleaned == scrub.scrub(_build([_Item(b"av01", data, tile)], brands=brands)).data


def test_gain_map_metadata_is_written_at_its_length() -> None:
    code = _code(random.Random(1240))
    data, props = _ingredients("HEIF")
    tile = [(props[b"hvcC"], True), (props[b"ispe"], False)]
    fields = struct.pack(">4I", 1, 1, 3, 1) + struct.pack(">10I", 0, 1, 1, 1, 1, 1, 0, 64, 0, 64)
    tmap = b"\0\0\0" + code[:2] + b"\x3f" + fields + code  # writer version, reserved bits, tail
    items = [
        _Item(b"tmap", tmap, [(props[b"ispe"], False)]),
        _Item(b"hvc1", data, tile, hidden=True),
        _Item(b"hvc1", data, tile, hidden=True),
    ]
    dirty = _build(items, [(b"dimg", 1, [2, 3])])
    cleaned = scrub.scrub(dirty).data
    _assert_codes_gone(cleaned, [code, code[:2]])
    assert b"\0" * 6 + fields in cleaned
    assert scrub.scrub(cleaned).data == cleaned
    with pytest.raises(DamagedImage, match="gain map"):
        scrub.scrub(
            _build([replace(items[0], data=tmap[:30]), *items[1:]], [(b"dimg", 1, [2, 3])])
        )
