"""JPEG: corpus photos and photos made here with planted values come out clean and unchanged."""

import io
import random
import struct
import warnings
from pathlib import Path

import piexif
import pytest
from PIL import Image, ImageCms, ImageOps

from bot.errors import ScrubError
from bot.findings import Kind
from bot.formats import icc
from bot.scrub import inspect, scrub
from tests.conftest import corpus_params
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
