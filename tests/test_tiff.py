"""TIFF scrubber: corpus files, Pillow TIFFs with values planted by ExifTool, hand-built
structures (tiles, thumbnails, trailing data, DNG), and damaged files."""

import io
import random
import struct
import subprocess
from itertools import islice
from pathlib import Path

import pytest
from PIL import Image, ImageOps, ImageSequence

from bot import scrub
from bot.errors import DamagedImage, ScrubError, UnsupportedFormat
from bot.findings import Kind
from bot.formats import tiff
from bot.formats.base import BlockKind
from bot.metadata import exif
from bot.metadata.ifd import Ifds
from tests.conftest import corpus_files, corpus_params
from tests.judge import leftovers

ASCII, SHORT, LONG, RATIONAL = 2, 3, 4, 5


def _files(folder: str, suffixes: tuple[str, ...]) -> list[object]:
    files = [p for p in corpus_files(folder) if p.suffix.lower() in suffixes]
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no such corpus files"))]
    return [pytest.param(p, id=p.name) for p in files]


def _pictures(data: bytes, pages: int | None = None) -> list[tuple[str, tuple[int, int], bytes]]:
    """The first `pages` pages (all by default) as displayed: mode, size and pixels after
    applying the orientation."""
    with Image.open(io.BytesIO(data)) as image:
        return [
            (page.mode, page.size, ImageOps.exif_transpose(page.copy()).tobytes())
            for page in islice(ImageSequence.Iterator(image), pages)
        ]


def _orientation(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as image:
        return int(image.getexif().get(exif.ORIENTATION, 1))


def _assert_clean(original: bytes, tmp_path: Path) -> bytes:
    """Scrub `original`; the output has nothing left, the same pixels and the same orientation."""
    cleaned = scrub.scrub(original).data
    out = tmp_path / "cleaned.tif"
    out.write_bytes(cleaned)
    assert leftovers(out) == {}
    assert _pictures(cleaned) == _pictures(original)
    assert _orientation(cleaned) == _orientation(original)
    assert exif.only_structure(cleaned)
    assert {block.kind for block in tiff.parse(cleaned).blocks} <= {BlockKind.TIFF, BlockKind.ICC}
    assert scrub.inspect(cleaned).findings == ()
    return cleaned


# -- corpus -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", corpus_params("tiff"))
def test_corpus_file_comes_out_clean(path: Path, tmp_path: Path, exiftool: str) -> None:
    original = path.read_bytes()
    assert scrub.inspect(original).findings
    cleaned = _assert_clean(original, tmp_path)
    assert len(cleaned) < len(original)


@pytest.mark.parametrize("path", _files("malformed", (".tif", ".tiff")))
def test_malformed_corpus_file_is_refused(path: Path) -> None:
    with pytest.raises(ScrubError):
        scrub.scrub(path.read_bytes())


@pytest.mark.parametrize("path", _files("other", (".dng",)))
def test_dng_is_refused(path: Path) -> None:
    with pytest.raises(UnsupportedFormat, match="DNG"):
        scrub.scrub(path.read_bytes())


# -- Pillow TIFFs with values planted by ExifTool ---------------------------------------------


def _picture(mode: str, seed: int, size: tuple[int, int] = (37, 23)) -> Image.Image:
    """A noisy picture, so that every compression has real work to do."""
    rng = random.Random(seed)
    gray = Image.frombytes("L", size, bytes(rng.randrange(256) for _ in range(size[0] * size[1])))
    if mode == "I;16":
        return gray.convert("I").point(lambda v: v * 257).convert("I;16")
    return (
        gray.convert(mode) if mode != "RGB" else Image.merge("RGB", (gray, gray.rotate(90), gray))
    )


def _tokens(seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    return {
        name: f"{name}{rng.randrange(10**9, 10**10)}"
        for name in (
            "Make",
            "Model",
            "Artist",
            "Copyright",
            "Software",
            "Host",
            "Serial",
            "Creator",
        )
    }


def _plant(path: Path, exiftool: str, seed: int, orientation: int = 1) -> list[str]:
    """Write identifying values into `path` with ExifTool; return the strings planted.
    `-m` lets the FBMD code keep its real length (over the IPTC limit, as Facebook writes it)."""
    token = _tokens(seed)
    fbmd = f"FBMD0{random.Random(seed).randrange(16**40):040x}"
    args = [
        f"-Make={token['Make']}",
        f"-Model={token['Model']}",
        f"-Artist={token['Artist']}",
        f"-Copyright={token['Copyright']}",
        f"-Software={token['Software']}",
        f"-HostComputer={token['Host']}",
        f"-ImageDescription=Birthday at {token['Host']}",
        "-ModifyDate=2023:05:06 07:08:09",
        "-DateTimeOriginal=2023:05:06 07:08:09",
        f"-ExifIFD:SerialNumber={token['Serial']}",
        "-GPSLatitude=52.370216",
        "-GPSLatitudeRef=N",
        "-GPSLongitude=4.895168",
        "-GPSLongitudeRef=E",
        f"-IPTC:OriginalTransmissionReference={fbmd}",
        f"-IPTC:By-line={token['Creator']}",
        f"-XMP-dc:Creator={token['Creator']}",
        f"-Orientation#={orientation}",
    ]
    subprocess.run([exiftool, "-q", "-m", "-overwrite_original", *args, str(path)], check=True)
    return [*token.values(), fbmd]


def _planted(
    tmp_path: Path, exiftool: str, frames: list[Image.Image], seed: int, **save: object
) -> tuple[bytes, list[str]]:
    path = tmp_path / "planted.tif"
    frames[0].save(path, "TIFF", save_all=True, append_images=frames[1:], **save)
    planted = _plant(path, exiftool, seed, orientation=1 + seed % 8)
    return path.read_bytes(), planted


CASES = [
    ("RGB", None),
    ("RGB", "tiff_lzw"),
    ("RGB", "tiff_adobe_deflate"),
    ("RGB", "packbits"),
    ("RGB", "jpeg"),
    ("RGBA", "tiff_lzw"),
    ("L", "tiff_deflate"),
    ("I;16", None),
    ("I;16", "tiff_lzw"),
    ("1", "group4"),
    ("P", "packbits"),
    ("CMYK", "tiff_adobe_deflate"),
]


@pytest.mark.parametrize(("mode", "compression"), CASES)
def test_planted_values_are_removed(
    mode: str, compression: str | None, tmp_path: Path, exiftool: str
) -> None:
    seed = CASES.index((mode, compression))
    data, planted = _planted(
        tmp_path, exiftool, [_picture(mode, seed)], seed, compression=compression
    )
    kinds = {block.kind for block in tiff.parse(data).blocks}
    assert {BlockKind.TIFF, BlockKind.XMP, BlockKind.IPTC} <= kinds
    assert all(value.encode() in data for value in planted)
    found = {finding.kind for finding in scrub.inspect(data).findings}
    assert {Kind.LOCATION, Kind.TRACKING, Kind.PEOPLE, Kind.DEVICE, Kind.TIME} <= found
    cleaned = _assert_clean(data, tmp_path)
    assert not [value for value in planted if value.encode() in cleaned]
    assert cleaned[:2] == data[:2]


def test_multi_page_keeps_every_page(tmp_path: Path, exiftool: str) -> None:
    pages = [_picture("RGB", 1), _picture("L", 2, (20, 50)), _picture("RGBA", 3, (8, 8))]
    data, planted = _planted(tmp_path, exiftool, pages, 5, compression="tiff_lzw")
    assert tiff.parse(data).frames == 3
    cleaned = _assert_clean(data, tmp_path)
    assert tiff.parse(cleaned).frames == 3
    assert not [value for value in planted if value.encode() in cleaned]


# -- hand-built structures --------------------------------------------------------------------

Tags = dict[int, tuple[int, bytes | list[int]]]


def _value(order: str, typ: int, values: bytes | list[int]) -> bytes:
    if isinstance(values, bytes):
        return values
    code = {SHORT: "H", LONG: "I", RATIONAL: "I"}[typ]
    return struct.pack(f"{order}{len(values)}{code}", *values)


def _count(typ: int, values: bytes | list[int]) -> int:
    return len(values) // 2 if typ == RATIONAL else len(values)


def _handmade(pages: list[tuple[Tags, list[bytes]]], order: str = "<", tail: bytes = b"") -> bytes:
    """A TIFF written field by field: each page is its tags plus its strips (or tiles when the
    tags hold TileWidth); offsets and byte counts are filled in here."""
    out = bytearray((b"II*\0" if order == "<" else b"MM\0*") + b"\0\0\0\0")
    link = 4
    for tags, pieces in pages:
        offsets = []
        for piece in pieces:
            offsets.append(len(out))
            out += piece + b"\0" * (len(piece) % 2)
        where, counts = (0x0144, 0x0145) if 0x0142 in tags else (0x0111, 0x0117)
        full = dict(tags)
        if pieces:
            full |= {where: (LONG, offsets), counts: (LONG, [len(p) for p in pieces])}
        struct.pack_into(order + "I", out, link, len(out))
        start, values = len(out), bytearray()
        fields = []
        for tag in sorted(full):
            typ, raw = full[tag][0], _value(order, *full[tag])
            head = struct.pack(order + "HHI", tag, typ, _count(typ, full[tag][1]))
            if len(raw) <= 4:
                fields.append(head + raw.ljust(4, b"\0"))
            else:
                at = start + 2 + 12 * len(full) + 4 + len(values)
                fields.append(head + struct.pack(order + "I", at))
                values += raw + b"\0" * (len(raw) % 2)
        link = start + 2 + 12 * len(full)
        out += struct.pack(order + "H", len(full)) + b"".join(fields) + b"\0\0\0\0" + values
    return bytes(out + tail)


def _rgb_tags(width: int, height: int, extra: Tags | None = None) -> Tags:
    tags: Tags = {
        0x0100: (LONG, [width]),
        0x0101: (LONG, [height]),
        0x0102: (SHORT, [8, 8, 8]),
        0x0103: (SHORT, [1]),
        0x0106: (SHORT, [2]),
        0x0115: (SHORT, [3]),
    }
    return tags | (extra or {})


def _noise(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _tiled_with_thumbnails() -> bytes:
    """A tiled big-endian page, then a reduced-resolution copy, then an EXIF-style IFD holding
    an old JPEG thumbnail (appended after the directories)."""
    tiles = [_noise(16 * 16 * 3, i) for i in range(6)]  # 40x24 in 16x16 tiles: 3 x 2
    page = _rgb_tags(
        40,
        24,
        {
            0x0142: (LONG, [16]),
            0x0143: (LONG, [16]),
            0x0112: (SHORT, [6]),
            0x013B: (ASCII, b"Artist Secret-Person\0"),
            0x010F: (ASCII, b"Make Secret-Camera\0"),
        },
    )
    preview = _rgb_tags(10, 6, {0x00FE: (LONG, [1]), 0x0131: (ASCII, b"Secret-Software\0")})
    jpeg = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 10, 10)).save(jpeg, "JPEG")
    thumb: Tags = {
        0x00FE: (LONG, [1]),
        0x0201: (LONG, [0]),
        0x0202: (LONG, [len(jpeg.getvalue())]),
    }
    data = bytearray(
        _handmade([(page, tiles), (preview, [_noise(180, 9)]), (thumb, [])], order=">")
    )
    index = data.rfind(struct.pack(">HHI", 0x0201, LONG, 1))
    struct.pack_into(">I", data, index + 8, len(data))
    return bytes(data + jpeg.getvalue())


def test_tiled_page_with_thumbnails(tmp_path: Path, exiftool: str) -> None:
    data = _tiled_with_thumbnails()
    parsed = tiff.parse(data)
    assert (parsed.width, parsed.height, parsed.frames) == (40, 24, 1)
    thumbnails = [b for b in parsed.blocks if b.kind is BlockKind.THUMBNAIL]
    assert [b.name for b in thumbnails] == [
        "TIFF preview in IFD1",
        "TIFF preview in IFD2",
        "JPEG thumbnail in IFD2",
    ]
    assert thumbnails[0].data == _noise(180, 9)
    assert thumbnails[2].data.startswith(b"\xff\xd8")
    cleaned = scrub.scrub(data).data
    out = tmp_path / "cleaned.tif"
    out.write_bytes(cleaned)
    assert leftovers(out) == {}
    assert cleaned[:2] == b"MM"
    assert b"Secret" not in cleaned
    assert _orientation(cleaned) == 6
    assert _pictures(cleaned) == _pictures(data, 1)  # Pillow cannot read the JPEG-only IFD
    assert tiff.parse(cleaned).frames == 1


def test_pages_keep_their_subfile_type(tmp_path: Path) -> None:
    pages = [
        (_rgb_tags(5, 4, {0x00FE: (LONG, [2])}), [_noise(60, 1)]),
        (_rgb_tags(3, 2, {0x00FE: (LONG, [2]), 0x013B: (ASCII, b"Someone\0")}), [b"x" * 18]),
    ]
    data = _handmade(pages)
    cleaned = scrub.scrub(data).data
    ifds = Ifds(cleaned)
    assert [d.name for d in ifds.directories] == ["IFD0", "IFD1"]
    assert all(
        ifds.ints(e) == (2,) for _, e in ifds.all_entries() if e.tag == exif.NEW_SUBFILE_TYPE
    )
    assert b"Someone" not in cleaned
    assert _pictures(cleaned) == _pictures(data)


def test_trailing_data_is_reported_and_dropped() -> None:
    video = b"\0\0\0\x18ftypmp42" + _noise(500, 3)
    data = _handmade([(_rgb_tags(4, 4), [_noise(48, 2)])], tail=video)
    media = [b for b in tiff.parse(data).blocks if b.kind is BlockKind.MEDIA]
    assert [b.data for b in media] == [video]
    cleaned = scrub.scrub(data).data
    assert video[4:] not in cleaned
    assert _pictures(cleaned) == _pictures(data)


def test_shared_strips_stay_shared() -> None:
    row = _noise(12, 4)
    tags = _rgb_tags(4, 3, {0x0116: (LONG, [1])})
    data = bytearray(_handmade([(tags, [row, row, row])]))
    ifds = Ifds(bytes(data))
    offsets = ifds.find("IFD0", 0x0111)
    assert offsets is not None
    struct.pack_into("<3I", data, offsets.offset, 8, 8, 8)  # all three rows from one strip
    cleaned = scrub.scrub(bytes(data)).data
    assert cleaned.count(row) == 1
    assert _pictures(cleaned) == _pictures(bytes(data))


def test_dng_version_is_refused() -> None:
    data = _handmade([(_rgb_tags(2, 2, {0xC612: (1, b"\1\4\0\0")}), [_noise(12, 1)])])
    with pytest.raises(UnsupportedFormat, match="DNG"):
        scrub.scrub(data)


@pytest.mark.parametrize("pieces", [[_noise(12, 1)], []])
def test_old_style_jpeg_is_refused(pieces: list[bytes]) -> None:
    data = _handmade([(_rgb_tags(2, 2, {0x0103: (SHORT, [6])}), pieces)])
    with pytest.raises(UnsupportedFormat, match="old-style JPEG"):
        scrub.scrub(data)


def test_thumbnail_only_file_is_refused() -> None:
    data = _handmade([(_rgb_tags(2, 2, {0x00FE: (LONG, [1])}), [_noise(12, 1)])])
    with pytest.raises(DamagedImage):
        scrub.scrub(data)


def test_directory_loop_is_refused() -> None:
    data = bytearray(_handmade([(_rgb_tags(2, 2), [_noise(12, 1)])]))
    (first,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, first)
    struct.pack_into("<I", data, first + 2 + 12 * count, first)
    with pytest.raises(DamagedImage):
        scrub.scrub(bytes(data))


def test_overlapping_strips_cannot_blow_up_the_output() -> None:
    """Compressed (PackBits) strips: uncompressed ones are cut to the bytes their rows need."""
    n = 2000
    tags = _rgb_tags(1, n, {0x0116: (LONG, [1]), 0x0103: (SHORT, [32773])})
    data = bytearray(_handmade([(tags, [_noise(3, i) for i in range(n)])]))
    ifds = Ifds(bytes(data))
    offsets, counts = ifds.find("IFD0", 0x0111), ifds.find("IFD0", 0x0117)
    assert offsets is not None
    assert counts is not None
    size = len(data) - 8 - 64  # every strip a different, almost whole-file slice
    struct.pack_into(f"<{n}I", data, offsets.offset, *range(8, 8 + n))
    struct.pack_into(f"<{n}I", data, counts.offset, *[size - i for i in range(n)])
    with pytest.raises(DamagedImage):
        scrub.scrub(bytes(data))


def test_strip_outside_the_file_is_refused() -> None:
    data = bytearray(_handmade([(_rgb_tags(2, 2), [_noise(12, 1)])]))
    offsets = Ifds(bytes(data)).find("IFD0", 0x0111)
    assert offsets is not None
    struct.pack_into("<I", data, offsets.offset, len(data) - 4)
    with pytest.raises(DamagedImage):
        scrub.scrub(bytes(data))


# -- damage -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted_lzw(tmp_path_factory: pytest.TempPathFactory, exiftool: str) -> bytes:
    path = tmp_path_factory.mktemp("tiff") / "planted.tif"
    _picture("RGB", 7, (64, 48)).save(path, "TIFF", compression="tiff_lzw")
    _plant(path, exiftool, 7, orientation=8)
    return path.read_bytes()


def _scrub_or_refuse(data: bytes) -> None:
    """Damaged input is refused with a ScrubError, or comes out with structure tags only."""
    try:
        cleaned = scrub.scrub(data).data
    except ScrubError:
        return
    assert exif.only_structure(cleaned)


def test_truncated_files_are_refused_or_clean(planted_lzw: bytes) -> None:
    cuts = {*range(16), *range(0, len(planted_lzw), max(1, len(planted_lzw) // 150))}
    for cut in sorted(cuts):
        _scrub_or_refuse(planted_lzw[:cut])


def test_corrupted_files_are_refused_or_clean(planted_lzw: bytes) -> None:
    rng = random.Random(42)
    for _ in range(300):
        data = bytearray(planted_lzw)
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        _scrub_or_refuse(bytes(data))


# -- every kept tag rebuilt at its specified count (issue 12) ----------------------------------


def _leaks(cleaned: bytes, planted: bytes) -> bool:
    text = planted.decode()
    forms = (planted, planted[-12:], text.encode("utf-16-le"), text.encode("utf-16-be"))
    return any(form in cleaned for form in forms)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _xmp_turned(turned: int) -> bytes:
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
        ' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'
        f' tiff:Orientation="{turned}"/></rdf:RDF></x:xmpmeta>'
    ).encode()


@pytest.mark.parametrize("seed", range(3))
def test_tags_jpeg_tables_and_strips_are_rebuilt(seed: int, tmp_path: Path, exiftool: str) -> None:
    """Describing tags longer than specified, InkNames and sample statistics, a JPEGTables and
    JPEG strips with APPn/COM inside, all holding a planted code; XMP-only orientation."""
    rng = random.Random(seed)
    planted = f"PLANT{rng.randrange(10**15, 10**16)}ab".encode()  # 23 bytes
    out = io.BytesIO()
    _picture("RGB", seed, (40, 24)).save(out, "TIFF", compression="jpeg")
    base = out.getvalue()
    ifds = Ifds(base)
    offsets, counts, tables = (ifds.find("IFD0", tag) for tag in (0x0111, 0x0117, 0x015B))
    assert offsets is not None
    assert counts is not None
    assert tables is not None
    rows = ifds.find("IFD0", 0x0116)
    assert rows is not None
    hidden = _segment(0xFE, planted) + _segment(0xE9, planted)
    plain = [base[o : o + n] for o, n in zip(ifds.ints(offsets), ifds.ints(counts), strict=True)]
    strips = [strip[:2] + hidden + strip[2:] for strip in plain]
    words = list(struct.unpack("<10H", planted[:20]))
    raw_tables = ifds.raw(tables)
    tags: Tags = {
        0x0100: (LONG, [40]),
        0x0101: (LONG, [24]),
        0x0102: (SHORT, [8, 8, 8]),
        0x0103: (SHORT, [7]),
        0x0106: (SHORT, [2]),
        0x0115: (SHORT, [3]),
        0x0116: (SHORT, list(ifds.ints(rows))),
        0x011A: (RATIONAL, [72, 1, *words[:4]]),
        0x011B: (RATIONAL, [144, 2]),
        0x011C: (SHORT, [1]),
        0x0128: (SHORT, [2, *words[:3]]),
        0x014D: (ASCII, planted + b"\0"),
        0x0118: (SHORT, words[:3]),
        0x0119: (SHORT, words[3:6]),
        0x015B: (7, raw_tables[:2] + hidden + raw_tables[2:]),
        0x02BC: (1, _xmp_turned(6)),
    }
    data = _handmade([(tags, strips)])
    assert data.count(planted) > 3
    cleaned = scrub.scrub(data).data
    path = tmp_path / "cleaned.tif"
    path.write_bytes(cleaned)
    assert leftovers(path) == {}
    assert not _leaks(cleaned, planted)
    assert exif.only_structure(cleaned)
    assert tiff.strip(cleaned, tiff.parse(cleaned)) == cleaned
    reference = _rgb_tags(40, 24) | {
        0x0103: (SHORT, [7]),
        0x0112: (SHORT, [6]),
        0x0116: (SHORT, list(ifds.ints(rows))),
        0x015B: (7, raw_tables),
    }
    assert _pictures(cleaned) == _pictures(_handmade([(reference, plain)]))
    assert _orientation(cleaned) == 6
    kept = Ifds(cleaned)
    counts_of = {e.tag: e.count for _, e in kept.all_entries()}
    assert (counts_of[0x0100], counts_of[0x0102]) == (1, 3)
    assert not {0x011A, 0x0128} & set(counts_of)  # describing tags with extra values: dropped
    assert not {0x014D, 0x0118, 0x0119} & set(counts_of)
    resolution = kept.find("IFD0", 0x011B)
    assert resolution is not None
    assert kept.raw(resolution) == struct.pack("<II", 72, 1)


def test_one_bits_per_sample_value_is_given_to_every_sample() -> None:
    tags = _rgb_tags(4, 2) | {0x0102: (SHORT, [8])}
    data = _handmade([(tags, [_noise(24, 5)])])
    cleaned = scrub.scrub(data).data
    entry = Ifds(cleaned).find("IFD0", 0x0102)
    assert entry is not None
    assert Ifds(cleaned).ints(entry) == (8, 8, 8)
    assert _pictures(cleaned) == _pictures(data)


@pytest.mark.parametrize("path", corpus_params("tiff"))
def test_corpus_output_is_canonical(path: Path) -> None:
    cleaned = scrub.scrub(path.read_bytes()).data
    assert tiff.strip(cleaned, tiff.parse(cleaned)) == cleaned


@pytest.mark.parametrize("planar", [1, 2])
@pytest.mark.parametrize("tiled", [False, True])
def test_padding_after_uncompressed_rows_is_cut(planar: int, tiled: bool, tmp_path: Path) -> None:
    planted = f"PLANT{random.Random(planar).randrange(10**15, 10**16)}".encode()
    width, height = 20, 7
    if tiled:  # 2 x 1 tiles of 16 x 16, each 16*16*3 bytes (chunky) or 16*16 (a plane)
        size = 16 * 16 * (3 if planar == 1 else 1)
        extra: Tags = {0x0142: (LONG, [16]), 0x0143: (LONG, [16])}
        count = 2 * (1 if planar == 1 else 3)
        pieces = [_noise(size, i) + planted for i in range(count)]
    else:  # 3 rows a strip: 3, 3, 1 rows
        row = width * (3 if planar == 1 else 1)
        extra = {0x0116: (LONG, [3])}
        rows = [3, 3, 1] * (1 if planar == 1 else 3)
        pieces = [_noise(row * r, i) + planted for i, r in enumerate(rows)]
    data = _handmade([(_rgb_tags(width, height, extra | {0x011C: (SHORT, [planar])}), pieces)])
    assert data.count(planted) == len(pieces)
    cleaned = scrub.scrub(data).data
    assert not _leaks(cleaned, planted)
    assert _pictures(cleaned) == _pictures(data)
    assert tiff.strip(cleaned, tiff.parse(cleaned)) == cleaned


@pytest.mark.parametrize("mode", ["RGB", "L", "I;16"])
def test_bigtiff_comes_out_as_a_clean_classic_tiff(mode: str, tmp_path: Path) -> None:
    planted = f"PLANT{random.Random(mode).randrange(10**15, 10**16)}".encode()
    out = io.BytesIO()
    info = {0x013B: planted.decode(), 0x010F: "Make" + planted.decode(), 0x0112: 8}
    _picture(mode, 3, (33, 21)).save(out, "TIFF", big_tiff=True, tiffinfo=info)
    data = out.getvalue()
    assert data[:4] == b"II+\0"
    assert planted in data
    found = " ".join(f.value for f in scrub.inspect(data).findings)
    assert planted.decode() in found
    cleaned = _assert_clean(data, tmp_path)
    assert cleaned[:4] == b"II*\0"
    assert not _leaks(cleaned, planted)
    assert _orientation(cleaned) == 8


def test_bigtiff_directory_out_of_range_is_refused() -> None:
    out = io.BytesIO()
    _picture("L", 4, (8, 8)).save(out, "TIFF", big_tiff=True)
    data = bytearray(out.getvalue())
    struct.pack_into("<Q", data, 8, len(data) + 100)
    with pytest.raises(DamagedImage):
        scrub.scrub(bytes(data))


def test_jpeg_tables_on_a_page_that_is_not_jpeg_and_a_bad_orientation_are_dropped() -> None:
    planted = b"PLANT" + b"7" * 20
    tables = b"\xff\xd8" + _segment(0xFE, planted) + b"\xff\xd9"
    tags = _rgb_tags(4, 2, {0x015B: (7, tables), 0x0112: (SHORT, [0x5A5A])})
    data = _handmade([(tags, [_noise(24, 8)])])
    cleaned = scrub.scrub(data).data
    tags_left = {e.tag for _, e in Ifds(cleaned).all_entries()}
    assert not {0x015B, 0x0112} & tags_left
    assert not _leaks(cleaned, planted)
    assert _pictures(cleaned) == _pictures(data)


@pytest.mark.parametrize(
    ("tag", "typ", "values"),
    [
        (0x0100, LONG, [4, 1234]),  # ImageWidth with a second value
        (0x0102, SHORT, [8, 8, 8, 77]),  # BitsPerSample for four samples of three
        (0x0106, SHORT, [2, 18761, 42]),  # PhotometricInterpretation, readers disagree
        (0x0106, ASCII, b"RGB\0"),  # unreadable as a number
        (0x0212, SHORT, [2]),  # YCbCrSubSampling needs two values
    ],
)
def test_decoding_tag_with_values_it_cannot_have_is_refused(
    tag: int, typ: int, values: bytes | list[int]
) -> None:
    data = _handmade([(_rgb_tags(4, 2, {tag: (typ, values)}), [_noise(24, 9)])])
    with pytest.raises(DamagedImage, match="values its kind does not allow"):
        scrub.scrub(data)
