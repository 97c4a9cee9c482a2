"""JPEG: corpus photos and photos made here with planted values come out clean and unchanged."""

import io
import random
import string
import struct
import warnings
from collections.abc import Callable
from pathlib import Path

import piexif
import pytest
from PIL import Image, ImageCms, ImageOps

from bot.errors import DamagedImage, ScrubError, UnsupportedFormat
from bot.findings import Kind
from bot.formats import icc, jpeg
from bot.metadata import xmp
from bot.scrub import inspect, scrub
from tests.conftest import CORPUS, corpus_params
from tests.judge import leftovers
from tests.pictures import malformed_params, plant, secrets


def photo(size: tuple[int, int] = (96, 64), **save: object) -> bytes:
    """A small JPEG with enough detail that a changed pixel would show."""
    image = Image.new("RGB", size)
    image.putdata(
        [
            ((x * 7) % 256, (y * 5) % 256, (x * y) % 256)
            for y in range(size[1])
            for x in range(size[0])
        ]
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, **save)
    return out.getvalue()


def shown(data: bytes) -> tuple[tuple[int, int], bytes, int]:
    """The first picture as a viewer shows it (MPO files hold more, which we drop), and the
    orientation tag that turned it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Image appears to be a malformed MPO file")
        image = Image.open(io.BytesIO(data))
    with image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
        return upright.size, upright.tobytes(), int(image.getexif().get(0x0112, 1))


def assert_clean(data: bytes, tmp_path: Path, name: str) -> bytes:
    """Scrub `data`, then: ExifTool finds nothing, same pixels as shown, same orientation,
    nothing left to find, and scrubbing again changes nothing."""
    cleaned = scrub(data).data
    out = tmp_path / name
    out.write_bytes(cleaned)
    assert leftovers(out) == {}
    assert shown(cleaned) == shown(data)
    assert inspect(cleaned).findings == ()
    assert scrub(cleaned).data == cleaned
    return cleaned


def insert_after_soi(data: bytes, *segments: bytes) -> bytes:
    return data[:2] + b"".join(segments) + data[2:]


def segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def mp4(seconds: int) -> bytes:
    """A minimal MP4 header (ftyp + moov/mvhd) saying how long the video runs."""
    ftyp = struct.pack(">I4s4sI4s", 20, b"ftyp", b"mp42", 0, b"isom")
    mvhd_body = struct.pack(">B3xIIII", 0, 0, 0, 1000, seconds * 1000) + bytes(80)
    mvhd = struct.pack(">I4s", 8 + len(mvhd_body), b"mvhd") + mvhd_body
    moov = struct.pack(">I4s", 8 + len(mvhd), b"moov") + mvhd
    return ftyp + moov + b"\0" * 64


@pytest.mark.parametrize("path", corpus_params("jpeg"))
def test_corpus_jpeg_comes_out_clean(path: Path, tmp_path: Path) -> None:
    assert_clean(path.read_bytes(), tmp_path, "out.jpg")


@pytest.mark.parametrize("path", [p for p in corpus_params("other") if "mpo" in str(p)])
def test_corpus_mpo_keeps_only_the_first_picture(path: Path, tmp_path: Path) -> None:
    original = path.read_bytes()
    assert any(f.kind is Kind.HIDDEN_PICTURE for f in inspect(original).findings)
    cleaned = assert_clean(original, tmp_path, "out.jpg")
    with Image.open(io.BytesIO(cleaned)) as image:
        assert getattr(image, "n_frames", 1) == 1


@pytest.mark.parametrize("seed", range(6))
def test_values_planted_by_exiftool_are_found_then_gone(
    seed: int, exiftool: str, tmp_path: Path
) -> None:
    value = secrets(seed)
    rng = random.Random(seed)
    source = tmp_path / "planted.jpg"
    source.write_bytes(photo())
    thumb = tmp_path / "thumb.jpg"
    thumb.write_bytes(photo((160, 120)))
    turned = rng.choice([1, 3, 6, 8])
    plant(
        exiftool,
        source,
        f"-GPSLatitude={value['latitude']}",
        "-GPSLatitudeRef=N",
        f"-GPSLongitude={value['longitude']}",
        "-GPSLongitudeRef=E",
        "-GPSAltitude=123",
        "-Make=Apple",
        f"-Model=iPhone {rng.randrange(10, 17)}",
        f"-SerialNumber={value['serial']}",
        f"-OwnerName={value['name']}",
        f"-Artist={value['name']}",
        "-DateTimeOriginal=2025:05:02 08:13:00",
        f"-ImageUniqueID={value['serial']}abc",
        f"-IPTC:OriginalTransmissionReference={value['fbmd']}",
        f"-IPTC:SpecialInstructions={value['fbmd']}",
        f"-IPTC:By-line={value['name']}",
        f"-XMP-dc:Creator={value['name']}",
        f"-XMP-iptcExt:PersonInImage={value['name']}",
        f"-XMP-xmpMM:DocumentID=xmp.did:{value['serial']}",
        f"-Comment={value['comment']}",
        f"-ThumbnailImage<={thumb}",
        f"-Orientation#={turned}",
    )
    original = source.read_bytes()
    found = inspect(original).findings
    values = " ".join(f.value for f in found)
    for key in ("name", "serial", "fbmd", "comment"):
        assert value[key] in values, key
    kinds = {f.kind for f in found}
    assert {Kind.LOCATION, Kind.TRACKING, Kind.PEOPLE, Kind.DEVICE, Kind.TIME} <= kinds
    assert Kind.HIDDEN_PICTURE in kinds
    position = next(f.position for f in found if f.key == "coordinates")
    assert position == pytest.approx(
        (float(value["latitude"]), float(value["longitude"])), abs=1e-4
    )

    cleaned = assert_clean(original, tmp_path, "out.jpg")
    for key in ("name", "serial", "fbmd", "comment"):
        assert value[key].encode() not in cleaned, key
    assert cleaned.count(b"\xff\xd8") == 1  # the thumbnail is gone


def test_hand_built_containers_are_found_and_removed(tmp_path: Path) -> None:
    """C2PA (APP11), Extended XMP, FPXR and an appended motion-photo video."""
    xmp_ext_id = b"http://ns.adobe.com/xmp/extension/\0"
    guid = b"0" * 32
    depth = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/"'
        b' GDepth:Data="AAAA"/></rdf:RDF></x:xmpmeta>'
    )
    extended = segment(0xE1, xmp_ext_id + guid + struct.pack(">II", len(depth), 0) + depth)
    c2pa = segment(0xEB, b"JP\0\x01" + b"\0\0\0\x20jumb" + b"c2pa" + bytes(16))
    fpxr = segment(0xE2, b"FPXR\0" + bytes(20))
    original = insert_after_soi(photo(), c2pa, extended, fpxr) + mp4(3)
    found = inspect(original).findings
    assert any(f.kind is Kind.CREDENTIALS for f in found)
    assert any(f.key == "video" and f.value == "3.0" for f in found)
    assert any(f.kind is Kind.HIDDEN_PICTURE and "depth" in f.value for f in found)
    assert any(f.kind is Kind.OTHER and "FPXR" in f.value for f in found)
    cleaned = assert_clean(original, tmp_path, "out.jpg")
    for marker in (b"jumb", b"ftyp", b"GDepth", b"FPXR"):
        assert marker not in cleaned


def test_mpo_second_view_is_reported_and_dropped(tmp_path: Path) -> None:
    left, right = Image.new("RGB", (64, 48), "red"), Image.new("RGB", (64, 48), "blue")
    out = io.BytesIO()
    left.save(out, "MPO", save_all=True, append_images=[right])
    found = inspect(out.getvalue()).findings
    assert any(f.kind is Kind.HIDDEN_PICTURE and "64x48" in f.value for f in found)
    cleaned = assert_clean(out.getvalue(), tmp_path, "out.jpg")
    assert cleaned.count(b"\xff\xd8") == 1


@pytest.mark.parametrize(
    "save",
    [
        {"progressive": True},
        {"restart_marker_blocks": 2},
        {"subsampling": 0},
        {"icc_profile": ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()},
        {"comment": b"secret comment"},
    ],
    ids=["progressive", "restart-markers", "444", "icc", "comment"],
)
def test_encodings_keep_their_pixels(save: dict[str, object], tmp_path: Path) -> None:
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Canon", piexif.ImageIFD.Orientation: 6}})
    original = photo((120, 80), exif=exif, **save)
    cleaned = assert_clean(original, tmp_path, "out.jpg")
    if "icc_profile" in save:
        with Image.open(io.BytesIO(cleaned)) as image:
            assert image.info.get("icc_profile") == icc.clean(save["icc_profile"])  # type: ignore[arg-type]


def test_cmyk_keeps_the_adobe_segment_and_colours(tmp_path: Path) -> None:
    image = Image.new("CMYK", (40, 30), (10, 200, 30, 40))
    out = io.BytesIO()
    image.save(out, "JPEG", exif=piexif.dump({"0th": {piexif.ImageIFD.Artist: b"someone"}}))
    original = out.getvalue()
    assert b"Adobe" in original
    cleaned = assert_clean(original, tmp_path, "out.jpg")
    assert b"Adobe" in cleaned


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_is_kept(orientation: int, tmp_path: Path) -> None:
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: orientation}, "GPS": {}})
    original = photo((60, 40), exif=exif)
    cleaned = assert_clean(original, tmp_path, "out.jpg")
    assert shown(cleaned)[0] == ((40, 60) if orientation >= 5 else (60, 40))


def test_jfif_thumbnail_is_cut(tmp_path: Path) -> None:
    thumb = bytes(range(256)) * 3 * 4  # 32x32 RGB thumbnail
    jfif = b"JFIF\0\x01\x02\x01\0\x48\0\x48" + bytes([32, 32]) + thumb[: 32 * 32 * 3]
    original = photo()
    original = original[:2] + segment(0xE0, jfif) + original[2:]
    assert any(f.key == "thumbnail" for f in inspect(original).findings)
    cleaned = assert_clean(original, tmp_path, "out.jpg")
    assert thumb[:64] not in cleaned


def test_every_truncation_is_refused_or_cleaned() -> None:
    exif = piexif.dump(
        {"0th": {piexif.ImageIFD.Make: b"Canon"}, "GPS": {2: ((1, 1), (2, 1), (3, 1))}}
    )
    original = photo((64, 48), exif=exif, progressive=True)
    for end in range(0, len(original), 7):
        try:
            result = scrub(original[:end])
        except ScrubError:
            continue
        assert inspect(result.data).findings == ()


@pytest.mark.parametrize("path", malformed_params(b"\xff\xd8"))
def test_malformed_jpeg_is_refused_cleanly(path: Path) -> None:
    try:
        result = scrub(path.read_bytes())
    except ScrubError:
        return
    assert inspect(result.data).findings == ()


# -- every kept structure rebuilt from its fields (issue 12) ------------------------------------

Piece = tuple[int, bytes]


def pieces(data: bytes) -> list[Piece]:
    """The file after SOI as (marker, bytes) pieces: whole segments, entropy data (DATA), EOI."""
    out = []
    for marker, start, end in jpeg._segments(data):
        if marker == jpeg.RESTART:
            continue  # inside the DATA before it
        if marker == jpeg.DATA:
            out.append((marker, data[start:end]))
        elif marker == jpeg.EOI:
            out.append((marker, data[start - 2 : end]))
        else:
            out.append((marker, data[start - 4 : end]))
    return out


def joined(parts: list[Piece]) -> bytes:
    return b"\xff\xd8" + b"".join(raw for _, raw in parts)


def code(rng: random.Random) -> bytes:
    return ("PLANT" + "".join(rng.choices(string.ascii_letters + string.digits, k=20))).encode()


def leaks(cleaned: bytes, planted: bytes) -> bool:
    """The planted code in the output's raw bytes: ASCII, UTF-16 either way, or its tail."""
    text = planted.decode()
    forms = (planted, planted[-12:], text.encode("utf-16-le"), text.encode("utf-16-be"))
    return any(form in cleaned for form in forms)


def decoded(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as image:
        return image.mode, image.size, image.tobytes()


def judged(cleaned: bytes, tmp_path: Path, planted: bytes) -> None:
    """Nothing for ExifTool, no planted code in the bytes, and the output a fixed point."""
    out = tmp_path / "judged.jpg"
    out.write_bytes(cleaned)
    assert leftovers(out) == {}
    assert not leaks(cleaned, planted)
    assert jpeg.strip(cleaned, jpeg.parse(cleaned)) == cleaned
    assert inspect(cleaned).findings == ()


def insert_before(parts: list[Piece], marker: int, *new: bytes, nth: int = 0) -> list[Piece]:
    at = [i for i, (m, _) in enumerate(parts) if m == marker][nth]
    return parts[:at] + [(0, raw) for raw in new] + parts[at:]


def lengthened(raw: bytes, tail: bytes) -> bytes:
    """A segment with `tail` after its fields and its length field counting it."""
    return segment(raw[1], raw[4:] + tail)


@pytest.mark.parametrize("seed", range(3))
def test_jfif_and_adobe_are_rebuilt_at_their_length(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    planted = code(rng)
    image = Image.new("CMYK", (48, 32))
    image.putdata([(x * 5, y * 7, (x * y) % 256, 40) for y in range(32) for x in range(48)])
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    original = out.getvalue()
    parts = pieces(original)
    adobe = next(raw for m, raw in parts if m == jpeg.APP14)
    transform = adobe[15]
    # Adobe: version and flags hold part of the code, more of it rides after the fields
    bad_adobe = segment(jpeg.APP14, b"Adobe" + planted[:6] + bytes([transform]) + planted)
    jfif = segment(jpeg.APP0, b"JFIF\0\x01\x02\x01\0\x48\0\x48\0\0" + planted)
    parts = [(0, jfif)] + [(m, bad_adobe if m == jpeg.APP14 else raw) for m, raw in parts]
    dirty = joined(parts)
    assert decoded(dirty) == decoded(original)
    cleaned = scrub(dirty).data
    judged(cleaned, tmp_path, planted)
    assert decoded(cleaned) == decoded(original)
    kept = {m: raw for m, raw in pieces(cleaned) if m in (jpeg.APP0, jpeg.APP14)}
    assert kept[jpeg.APP0] == b"\xff\xe0\0\x10JFIF\0\x01\x02\x01\0\x48\0\x48\0\0"
    assert kept[jpeg.APP14] == b"\xff\xee\0\x0eAdobe\0\x64\0\0\0\0" + bytes([transform])


def dqt(slot: int, values: bytes) -> bytes:
    return segment(jpeg.DQT, bytes([slot]) + values.ljust(64, b"\x01")[:64])


def dht(kind: int, slot: int, symbols: bytes) -> bytes:
    counts = bytearray(16)
    counts[7] = len(symbols)  # 8-bit codes for every symbol
    return segment(jpeg.DHT, bytes([kind << 4 | slot]) + bytes(counts) + symbols)


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
@pytest.mark.parametrize("seed", range(3))
def test_tables_no_scan_uses_are_dropped(progressive: bool, seed: int, tmp_path: Path) -> None:
    """Unused slots, definitions superseded before any scan uses them, definitions after the
    last scan, and a quantisation table redefined after its components were latched."""
    rng = random.Random(seed)
    planted = code(rng)
    original = photo((80, 48), progressive=progressive)
    parts = pieces(original)
    first = next(raw for m, raw in parts if m == jpeg.DHT)
    superseded = segment(jpeg.DHT, b"".join(table for _, table in _redefined(first[4:], planted)))
    frame = jpeg.SOF_PROGRESSIVE if progressive else jpeg.SOF_BASELINE
    parts = insert_before(parts, frame, dqt(3, planted), dht(0, 3, planted), dht(1, 2, planted))
    parts = insert_before(parts, jpeg.DHT, superseded)
    if progressive:  # before the last scan: every component was latched at the first
        parts = insert_before(parts, jpeg.SOS, dqt(0, planted), nth=-1)
    else:  # the only scan came before: the redefinition follows it
        parts = insert_before(parts, jpeg.EOI, dqt(0, planted))
    parts = insert_before(parts, jpeg.EOI, dht(0, 0, planted), dht(1, 1, planted))
    dirty = joined(parts)
    assert decoded(dirty) == decoded(original)
    cleaned = scrub(dirty).data
    judged(cleaned, tmp_path, planted)
    assert decoded(cleaned) == decoded(original)
    assert cleaned == scrub(original).data  # exactly the tables the clean photo has


def _redefined(tables: bytes, planted: bytes) -> list[tuple[tuple[int, int, int], bytes]]:
    """The same (class, slot) definitions as `tables`, holding the planted code instead."""
    out = []
    for key, _ in jpeg._tables(jpeg.DHT, tables):
        out.append((key, dht(key[1], key[2], planted)[4:]))
    return out


def test_frame_scan_restart_and_lines_are_rebuilt(tmp_path: Path) -> None:
    """Longer SOF/SOS/DRI than their fields, a DNL in a frame that has its height, reserved
    markers and fill bytes: libjpeg refuses most of these, we write the picture canonically."""
    rng = random.Random(7)
    planted = code(rng)
    original = photo((64, 40), restart_marker_blocks=2)
    parts = pieces(original)
    rebuilt = []
    for marker, raw in parts:
        if marker in (jpeg.SOF_BASELINE, jpeg.SOS, jpeg.DRI):
            raw = lengthened(raw, planted)
        elif marker == jpeg.DATA:
            raw += b"\xff" * 5  # fill bytes before the next marker
        elif marker == jpeg.EOI:
            rebuilt.append((0, segment(jpeg.DNL, b"\0\x28" + planted)))
        rebuilt.append((marker, raw))
    rebuilt = insert_before(rebuilt, jpeg.SOF_BASELINE, segment(0xF1, planted), b"\xff\x01")
    dirty = joined(rebuilt)
    cleaned = scrub(dirty).data
    judged(cleaned, tmp_path, planted)
    assert decoded(cleaned) == decoded(original)
    assert cleaned == scrub(original).data


def test_hierarchical_jpeg_is_refused() -> None:
    parts = pieces(photo())
    parts = [(m, b"\xff\xc5" + raw[2:] if m == jpeg.SOF_BASELINE else raw) for m, raw in parts]
    with pytest.raises(UnsupportedFormat, match="hierarchical"):
        scrub(joined(parts))


@pytest.mark.parametrize("name", ["pixel_8.jpg", "Google.jpg", "DSCN0010.jpg"])
@pytest.mark.parametrize("short", [1, 3, 16, jpeg.SEGMENT_LENGTH_SLACK])
def test_xmp_segment_a_few_bytes_short_is_read_like_libjpeg(
    name: str, short: int, tmp_path: Path
) -> None:
    path = CORPUS / "jpeg" / name
    if not path.is_file():
        pytest.skip("../shared/corpus is absent")
    original = path.read_bytes()
    parts = pieces(original)
    at = next(
        i
        for i, (m, raw) in enumerate(parts)
        if m == jpeg.APP1 and raw[4:].startswith(b"http://ns.adobe.com/xap/1.0/\0")
    )
    xmp_raw = parts[at][1]
    if len(xmp_raw) - 4 <= short:
        pytest.skip("segment smaller than the shortfall")
    struct_length = len(xmp_raw) - 2 - short
    parts[at] = (jpeg.APP1, xmp_raw[:2] + struct.pack(">H", struct_length) + xmp_raw[4:])
    dirty = joined(parts)
    assert decoded(dirty) == decoded(original)  # libjpeg (through Pillow) reads it
    cleaned = scrub(dirty).data
    assert cleaned == scrub(original).data
    assert shown(cleaned) == shown(original)


def test_segment_shorter_than_the_tolerance_is_refused() -> None:
    xmp_id = b"http://ns.adobe.com/xap/1.0/\0"
    packet = xmp_id + b"<x:xmpmeta>" + b" " * 600 + b"</x:xmpmeta>"
    raw = segment(jpeg.APP1, packet)
    short = jpeg.SEGMENT_LENGTH_SLACK + 1
    dirty = insert_after_soi(photo(), raw[:2] + struct.pack(">H", len(raw) - 2 - short) + raw[4:])
    with pytest.raises(DamagedImage):
        scrub(dirty)
    dqt_short = insert_after_soi(photo(), dqt(1, b"\x02" * 64)[:-3])  # a kept segment: no slack
    with pytest.raises(DamagedImage):
        scrub(dqt_short)


def xmp_packet(body: str) -> bytes:
    return (
        b"http://ns.adobe.com/xap/1.0/\0"
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        + body.encode()
        + b"</rdf:RDF></x:xmpmeta>"
    )


@pytest.mark.parametrize("turned", [3, 6, 8])
@pytest.mark.parametrize("form", ["attribute", "element"])
def test_xmp_orientation_is_written_back_when_exif_has_none(
    turned: int, form: str, tmp_path: Path
) -> None:
    tiff_ns = 'xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'
    body = (
        f'<rdf:Description {tiff_ns} tiff:Orientation="{turned}" tiff:Make="Secret"/>'
        if form == "attribute"
        else f"<rdf:Description {tiff_ns}><tiff:Orientation>{turned}</tiff:Orientation>"
        "</rdf:Description>"
    )
    plain = photo((60, 40))
    with_exif = photo((60, 40), exif=piexif.dump({"0th": {piexif.ImageIFD.Make: b"Canon"}}))
    for original in (plain, with_exif):
        dirty = insert_after_soi(original, segment(jpeg.APP1, xmp_packet(body)))
        cleaned = scrub(dirty).data
        assert shown(cleaned)[2] == turned
        assert shown(cleaned)[0] == ((40, 60) if turned >= 5 else (60, 40))
        judged(cleaned, tmp_path, b"Secret")
    # EXIF's own Orientation wins over XMP's
    exif_turned = photo((60, 40), exif=piexif.dump({"0th": {piexif.ImageIFD.Orientation: 2}}))
    dirty = insert_after_soi(exif_turned, segment(jpeg.APP1, xmp_packet(body)))
    assert shown(scrub(dirty).data)[2] == 2


def test_xmp_orientation_helper_ignores_what_is_not_tiff_orientation() -> None:
    other = '<rdf:Description xmlns:o="http://example.com/" o:Orientation="6"/>'
    bad = '<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="9"/>'
    assert xmp.orientation(xmp_packet(other)) is None
    assert xmp.orientation(xmp_packet(bad)) is None
    assert xmp.orientation(b"<unclosed Orientation") is None
    assert xmp.orientation(b"no packet") is None


@pytest.mark.parametrize("path", corpus_params("jpeg"))
def test_corpus_output_is_canonical(path: Path) -> None:
    """Parse and re-serialise every corpus output: the same bytes (the very object)."""
    cleaned = scrub(path.read_bytes()).data
    assert jpeg.strip(cleaned, jpeg.parse(cleaned)) is cleaned


def test_only_the_first_exif_segment_says_the_orientation(tmp_path: Path) -> None:
    """Viewers read the first EXIF segment; a second one's Orientation must not turn the photo."""
    first = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Canon"}})
    second = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6}})
    dirty = insert_after_soi(
        photo((60, 40)), segment(jpeg.APP1, first), segment(jpeg.APP1, second)
    )
    assert shown(dirty)[2] == 1
    cleaned = assert_clean(dirty, tmp_path, "out.jpg")
    assert shown(cleaned)[2] == 1


def _scans(parts: list[Piece], change: Callable[[bytes], bytes]) -> list[Piece]:
    return [(m, change(raw) if m == jpeg.SOS else raw) for m, raw in parts]


def test_sequential_scan_fields_and_unused_selectors_are_normalised(tmp_path: Path) -> None:
    """Baseline scans with zeroes (or a code) in Ss/Se/Ah-Al, which libjpeg reads as a full
    scan, and progressive scans whose unused table selectors hold bits."""
    original = photo((64, 40))
    zeroed = joined(_scans(pieces(original), lambda raw: raw[:-3] + b"\0\0\0"))
    assert decoded(zeroed) == decoded(original)
    assert scrub(zeroed).data == scrub(original).data
    coded = joined(_scans(pieces(original), lambda raw: raw[:-3] + b"\x05\x2a\x35"))
    assert scrub(coded).data == scrub(original).data

    progressive = photo((64, 40), progressive=True)

    def planted_selectors(raw: bytes) -> bytes:
        fields = bytearray(raw)
        ss, ah = fields[-3], fields[-1] >> 4
        for i in range(6, len(fields) - 3, 2):  # after marker, length, Ns: (Cs, Td|Ta)
            dc, ac = fields[i] >> 4, fields[i] & 15
            if ss > 0:
                dc = 3  # an AC scan decodes with no DC table
            if ss == 0:
                ac = 2  # a DC scan decodes with no AC table
            if ss == 0 and ah > 0:
                dc = 1  # a DC refinement decodes with no table at all
            fields[i] = dc << 4 | ac
        return bytes(fields)

    dirty = joined(_scans(pieces(progressive), planted_selectors))
    assert decoded(dirty) == decoded(progressive)
    cleaned = scrub(dirty).data
    assert cleaned == scrub(progressive).data
    judged(cleaned, tmp_path, b"PLANTnothing-planted-here")


RESTART_CASES = [
    ((97, 61), {"restart_marker_blocks": 3}),
    ((97, 61), {"restart_marker_blocks": 1, "subsampling": 0}),
    ((130, 45), {"restart_marker_rows": 1, "subsampling": 1}),
    ((64, 64), {"restart_marker_blocks": 5, "progressive": True}),
    ((75, 33), {"restart_marker_blocks": 2, "progressive": True, "subsampling": 2}),
]


@pytest.mark.parametrize(("size", "save"), RESTART_CASES)
def test_restart_intervals_are_counted_as_libjpeg_writes_them(
    size: tuple[int, int], save: dict[str, object]
) -> None:
    """Every scan libjpeg writes has exactly one restart marker fewer than its intervals."""
    original = photo(size, **save)
    layout = jpeg._segments(original)
    frame = None
    interval = 0
    checked = 0
    for index, (marker, start, end) in enumerate(layout):
        if marker in jpeg._SOF_MARKERS:
            frame = jpeg._frame(marker, original[start:end])
        elif marker == jpeg.DRI:
            (interval,) = struct.unpack_from(">H", original, start)
        elif marker == jpeg.SOS:
            assert frame is not None
            components = list(original[start + 1 : start + 1 + 2 * original[start] : 2])
            intervals = -(-frame.mcus(components) // interval)
            restarts = 0
            for later, _, _ in layout[index + 2 :]:
                if later != jpeg.RESTART:
                    break
                restarts += 1
            assert restarts == intervals - 1
            checked += 1
    assert checked >= 1
    cleaned = scrub(original).data  # nothing to cut: every restart marker stays
    assert [cleaned.count(bytes([0xFF, n])) for n in range(0xD0, 0xD8)] == [
        original.count(bytes([0xFF, n])) for n in range(0xD0, 0xD8)
    ]


@pytest.mark.parametrize(("size", "save"), RESTART_CASES)
def test_data_after_the_last_restart_interval_is_cut(
    size: tuple[int, int], save: dict[str, object], tmp_path: Path
) -> None:
    """Extra restart intervals after the last MCU (decoders skip them) and fill bytes before
    restart markers carry a planted code; the output is the clean photo's, byte for byte."""
    planted = code(random.Random(str(size)))
    original = photo(size, **save)
    parts = []
    for marker, raw in pieces(original):
        if marker == jpeg.DATA:
            at = raw.find(b"\xff\xd1")
            if at > 0:
                raw = raw[:at] + b"\xff\xff\xff" + raw[at:]  # fill before a restart marker
            raw += b"\xff\xd3" + planted + b"\xff\xd4" + planted  # intervals no MCU needs
        parts.append((marker, raw))
    dirty = joined(parts)
    assert decoded(dirty) == decoded(original)
    cleaned = scrub(dirty).data
    judged(cleaned, tmp_path, planted)
    assert cleaned == scrub(original).data
    assert decoded(cleaned) == decoded(original)


def test_scan_with_more_restarts_than_listed_is_copied_whole(tmp_path: Path) -> None:
    original = photo((288, 240), restart_marker_blocks=1, subsampling=0)  # 1,079 RSTn
    restarts = sum(1 for m, _, _ in jpeg._segments(original) if m == jpeg.RESTART)
    assert restarts == 0  # over MAX_RESTARTS: not listed
    assert original.count(b"\xff\xd7") * 8 > jpeg.MAX_RESTARTS
    cleaned = assert_clean(original, tmp_path, "out.jpg")
    assert decoded(cleaned) == decoded(original)


def _reparse_cases() -> list[bytes]:
    plain = photo((97, 61))
    filled = []
    for marker, raw in pieces(photo((97, 61), restart_marker_blocks=3)):
        if marker == jpeg.DATA:
            at = raw.find(b"\xff\xd1")
            raw = raw[:at] + b"\xff\xff" + raw[at:] + b"\xff\xd5extra"  # fill, a cut interval
        filled.append((marker, raw))
    return [
        plain,
        insert_after_soi(plain, segment(0xE1, b"Exif\0\0" + b"x" * 40), segment(0xFE, b"hi")),
        photo((64, 64), progressive=True),
        *(photo(size, **save) for size, save in RESTART_CASES),
        photo((288, 240), restart_marker_blocks=1, subsampling=0),  # restarts not listed
        joined(filled),
    ]


@pytest.mark.parametrize("original", _reparse_cases())
def test_reparse_of_our_output_is_parse(original: bytes) -> None:
    """verify's shortcut (scan data equal to what parse read is not scanned again) gives the
    same parse as reading the output from scratch, restarts, progressive scans and cuts too."""
    parsed = jpeg.parse(original)
    cleaned = jpeg.strip(original, parsed)
    assert jpeg.reparse(cleaned, original, parsed) == jpeg.parse(cleaned)


def _outcome(read: Callable[[], object]) -> object:
    try:
        return read()
    except ScrubError as error:
        return type(error)


@pytest.mark.parametrize("restarts", [False, True], ids=["plain", "restarts"])
@pytest.mark.parametrize("where", [40, -3], ids=["inside", "at-the-end"])
def test_output_not_equal_to_the_data_parse_read_is_scanned(restarts: bool, where: int) -> None:
    """A marker segment planted inside our output's scan data (so the bytes differ from the
    input's) is read as a scan reads it, and verify refuses the output."""
    from bot.errors import NotClean
    from bot.scrub import verify

    original = photo((97, 61), **({"restart_marker_blocks": 3} if restarts else {}))
    parsed = jpeg.parse(original)
    cleaned = jpeg.strip(original, parsed)
    _, start, stop = next(e for e in jpeg.parse(cleaned).layout if e[0] == jpeg.DATA)
    at = (start if where > 0 else stop) + where
    while cleaned[at - 1] == 0xFF or cleaned[at] == 0xFF:
        at += 1
    tampered = cleaned[:at] + segment(0xE1, b"planted") + cleaned[at:]
    assert _outcome(lambda: jpeg.reparse(tampered, original, parsed)) == _outcome(
        lambda: jpeg.parse(tampered)
    )
    with pytest.raises(NotClean):
        verify(jpeg.FORMAT, tampered, (original, parsed))
