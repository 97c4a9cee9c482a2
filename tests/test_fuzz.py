"""Structure-aware fuzzing of every format parser through `bot.scrub.scrub`.

Each seed (tiny files made here with Pillow/pillow-heif, plus a few corpus files when present) is
cut into its pieces -- JPEG segments, PNG chunks, RIFF chunks, GIF blocks, TIFF IFD entries,
ISOBMFF boxes -- and the numbers that say where things are (segment lengths, chunk sizes, IFD
offsets and counts, box sizes, item locations) are listed as fields. Hypothesis then sets fields
to hostile values (0, 1, the maximum, one past the end, pointing back at themselves), truncates at
every boundary, duplicates, drops, swaps and moves pieces, and flips bytes.

Properties, for every input:
  - `scrub` raises nothing but `ScrubError` subclasses,
  - it finishes within TIME_BOUND seconds,
  - any output it returns has nothing left to find, and decodes whenever the input did.

`make test` runs a short derandomized run; `make fuzz` sets SCRUBBOT_FUZZ_EXAMPLES for a long one.
Crashers found are kept in tests/regressions/ and replayed by `test_regressions`.
"""

import io
import os
import struct
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import piexif
import pillow_heif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from bot.errors import ScrubError
from bot.scrub import inspect, scrub
from tests.conftest import CORPUS

pillow_heif.register_heif_opener()

EXAMPLES = int(os.environ.get("SCRUBBOT_FUZZ_EXAMPLES", "40"))
TIME_BOUND = 2.0  # seconds per input
DECODE_PIXELS = 4_000_000  # decode outputs with Pillow only up to this size (a fuzz-run budget)
REGRESSIONS = Path(__file__).with_name("regressions")

# --- the pieces of a file ---------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A number in the file that says where or how big something is."""

    offset: int
    size: int  # bytes: 1, 2, 3, 4 or 8
    order: str  # "big" or "little"


@dataclass
class Layout:
    fields: list[Field] = field(default_factory=list)
    pieces: list[tuple[int, int]] = field(default_factory=list)  # [start, end) of each piece

    def add(self, offset: int, size: int, order: str, data: bytes) -> None:
        if offset >= 0 and offset + size <= len(data):
            self.fields.append(Field(offset, size, order))


def _u(data: bytes | bytearray, offset: int, size: int, order: str) -> int:
    return int.from_bytes(data[offset : offset + size], "big" if order == "big" else "little")


def jpeg_layout(data: bytes) -> Layout:
    layout = Layout()
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            layout.pieces.append((pos, pos + 2))
            pos += 2
            continue
        if marker == 0xD9:
            break
        layout.add(pos + 2, 2, "big", data)
        end = pos + 2 + _u(data, pos + 2, 2, "big")
        layout.pieces.append((pos, min(end, len(data))))
        if marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\0\0":
            tiff_fields(data, pos + 10, min(end, len(data)), layout)
        if marker == 0xDA:
            layout.pieces.append((min(end, len(data)), len(data)))  # scan data to the end
            break
        pos = end
    return layout


def tiff_fields(data: bytes, base: int, end: int, layout: Layout) -> None:
    """IFD offsets, entry counts, value counts and value offsets of a TIFF structure at `base`."""
    order = {b"II": "little", b"MM": "big"}.get(data[base : base + 2])
    if order is None or base + 8 > end:
        return
    layout.add(base + 4, 4, order, data)
    todo, seen = [_u(data, base + 4, 4, order)], set[int]()
    pointers = {0x8769, 0x8825, 0xA005, 0x014A, 0x0111, 0x0117, 0x0201, 0x0202}
    while todo and len(seen) < 16:
        ifd = base + todo.pop()
        if ifd in seen or ifd + 2 > end:
            continue
        seen.add(ifd)
        layout.add(ifd, 2, order, data)
        count = _u(data, ifd, 2, order)
        for index in range(min(count, 200)):
            entry = ifd + 2 + 12 * index
            if entry + 12 > end:
                break
            layout.pieces.append((entry, entry + 12))
            layout.add(entry + 2, 2, order, data)  # type
            layout.add(entry + 4, 4, order, data)  # value count
            layout.add(entry + 8, 4, order, data)  # value or offset
            if _u(data, entry, 2, order) in (0x8769, 0x8825, 0xA005, 0x014A):
                todo.append(_u(data, entry + 8, 4, order))
            elif _u(data, entry, 2, order) in pointers:
                continue
        next_at = ifd + 2 + 12 * count
        if next_at + 4 <= end:
            layout.add(next_at, 4, order, data)
            if nxt := _u(data, next_at, 4, order):
                todo.append(nxt)


def tiff_layout(data: bytes) -> Layout:
    layout = Layout()
    tiff_fields(data, 0, len(data), layout)
    return layout


def png_layout(data: bytes) -> Layout:
    layout = Layout()
    pos = 8
    while pos + 12 <= len(data):
        layout.add(pos, 4, "big", data)
        end = pos + 12 + _u(data, pos, 4, "big")
        kind = data[pos + 4 : pos + 8]
        if kind == b"IHDR":
            layout.add(pos + 8, 4, "big", data)
            layout.add(pos + 12, 4, "big", data)
        if kind == b"eXIf":
            tiff_fields(data, pos + 8, min(end - 4, len(data)), layout)
        layout.pieces.append((pos, min(end, len(data))))
        pos = end
    return layout


def fix_png_crcs(data: bytes) -> bytes:
    """Recompute the CRC of every chunk that still fits, so mutations reach past the CRC check."""
    out = bytearray(data)
    pos = 8
    while pos + 12 <= len(out):
        length = _u(out, pos, 4, "big")
        end = pos + 12 + length
        if end > len(out):
            break
        out[end - 4 : end] = struct.pack(">I", zlib.crc32(out[pos + 4 : end - 4]))
        pos = end
    return bytes(out)


def webp_layout(data: bytes) -> Layout:
    layout = Layout()
    layout.add(4, 4, "little", data)
    pos = 12
    while pos + 8 <= len(data):
        layout.add(pos + 4, 4, "little", data)
        size = _u(data, pos + 4, 4, "little")
        end = pos + 8 + size + (size & 1)
        kind = data[pos : pos + 4]
        if kind == b"VP8X":
            layout.add(pos + 12, 3, "little", data)  # canvas width - 1
            layout.add(pos + 15, 3, "little", data)  # canvas height - 1
        if kind == b"ANMF":
            layout.add(pos + 14, 3, "little", data)
            layout.add(pos + 17, 3, "little", data)
        if kind == b"EXIF":
            tiff_fields(data, pos + 8, min(end, len(data)), layout)
        layout.pieces.append((pos, min(end, len(data))))
        pos = end
    return layout


def gif_layout(data: bytes) -> Layout:
    layout = Layout()
    for offset in (6, 8):
        layout.add(offset, 2, "little", data)
    if len(data) < 13:
        return layout
    pos = 13 + (3 * 2 ** ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while pos < len(data):
        start = pos
        if data[pos] == 0x21:
            pos += 2
        elif data[pos] == 0x2C and pos + 10 <= len(data):
            for offset in (5, 7):
                layout.add(pos + offset, 2, "little", data)
            flags = data[pos + 9]
            pos += 10 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0) + 1
        else:
            break
        while pos < len(data) and data[pos]:
            layout.add(pos, 1, "big", data)
            pos += 1 + data[pos]
        pos += 1
        layout.pieces.append((start, min(pos, len(data))))
    return layout


CONTAINERS = {
    b"moov": 0,
    b"trak": 0,
    b"mdia": 0,
    b"minf": 0,
    b"stbl": 0,
    b"dinf": 0,
    b"edts": 0,
    b"iprp": 0,
    b"ipco": 0,
    b"grpl": 0,
    b"meta": 4,  # full box
    b"iref": 4,
    b"dref": 8,
    b"iinf": 6,  # full box + 16-bit entry count (version 0)
}


def isobmff_layout(data: bytes) -> Layout:
    layout = Layout()
    _boxes(data, 0, len(data), layout, 0)
    return layout


def _boxes(data: bytes, start: int, end: int, layout: Layout, depth: int) -> None:
    pos = start
    while pos + 8 <= end and depth < 8:
        size = _u(data, pos, 4, "big")
        header = 8
        layout.add(pos, 4, "big", data)
        if size == 1 and pos + 16 <= end:
            layout.add(pos + 8, 8, "big", data)
            size, header = _u(data, pos + 8, 8, "big"), 16
        box_end = end if size == 0 else min(pos + size, end)
        if box_end <= pos:
            break
        kind = data[pos + 4 : pos + 8]
        layout.pieces.append((pos, box_end))
        if kind in CONTAINERS:
            _boxes(data, pos + header + CONTAINERS[kind], box_end, layout, depth + 1)
        elif kind == b"iloc":
            _iloc_fields(data, pos + header, box_end, layout)
        elif kind == b"ispe":
            layout.add(pos + header + 4, 4, "big", data)
            layout.add(pos + header + 8, 4, "big", data)
        pos = box_end


def _iloc_fields(data: bytes, pos: int, end: int, layout: Layout) -> None:
    """Extent offsets and lengths of every item location."""
    if pos + 8 > end:
        return
    version = data[pos]
    sizes = data[pos + 4 : pos + 6]
    offset_size, length_size = sizes[0] >> 4, sizes[0] & 15
    base_size, index_size = sizes[1] >> 4, (sizes[1] & 15) if version in (1, 2) else 0
    wide = 4 if version == 2 else 2
    layout.add(pos + 6, wide, "big", data)
    count = _u(data, pos + 6, wide, "big")
    at = pos + 6 + wide
    for _ in range(min(count, 100)):
        at += wide + (2 if version in (1, 2) else 0) + 2  # item id, construction method, dref
        layout.add(at, base_size, "big", data) if base_size in (4, 8) else None
        at += base_size
        if at + 2 > end:
            return
        extents = _u(data, at, 2, "big")
        layout.add(at, 2, "big", data)
        at += 2
        for _ in range(min(extents, 100)):
            at += index_size
            if offset_size in (4, 8):
                layout.add(at, offset_size, "big", data)
            at += offset_size
            if length_size in (4, 8):
                layout.add(at, length_size, "big", data)
            at += length_size
            if at > end:
                return


LAYOUTS: dict[str, Callable[[bytes], Layout]] = {
    "jpeg": jpeg_layout,
    "png": png_layout,
    "webp": webp_layout,
    "gif": gif_layout,
    "tiff": tiff_layout,
    "heif": isobmff_layout,
}

# --- seeds -------------------------------------------------------------------------------------


def _exif() -> bytes:
    return piexif.dump(
        {
            "0th": {piexif.ImageIFD.Make: b"Apple", piexif.ImageIFD.Artist: b"Mia"},
            "Exif": {piexif.ExifIFD.BodySerialNumber: b"SN-1"},
            "GPS": {
                piexif.GPSIFD.GPSLatitudeRef: b"N",
                piexif.GPSIFD.GPSLatitude: ((52, 1), (29, 1), (55, 1)),
            },
        }
    )


XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
    b'syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="Mia"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


def _picture(size: tuple[int, int] = (24, 16), mode: str = "RGB") -> Image.Image:
    image = Image.new(mode, size)
    image.putdata([(x * 9 % 256, x * 5 % 256, 80)[: len(mode)] for x in range(size[0] * size[1])])
    return image


def _made(fmt: str) -> list[bytes]:
    out = io.BytesIO()
    exif = _exif()
    if fmt == "jpeg":
        _picture().save(out, "JPEG", exif=exif, comment=b"FBMD0100", xmp=XMP)
    elif fmt == "png":
        info = PngImagePlugin.PngInfo()
        info.add_text("Author", "Mia")
        info.add_text("Comment", "a long comment " * 20, zip=True)
        info.add_itxt("XML:com.adobe.xmp", XMP.decode())
        _picture().save(out, "PNG", pnginfo=info, exif=exif)
    elif fmt == "webp":
        _picture().save(out, "WEBP", exif=exif, xmp=XMP, lossless=True)
    elif fmt == "gif":
        frames = [_picture(mode="RGB").convert("P"), _picture((24, 16)).convert("P")]
        frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], comment=b"Mia", loop=0)
    elif fmt == "tiff":
        _picture().save(out, "TIFF", exif=exif)
    elif fmt == "heif":
        _picture((64, 64)).save(out, "HEIF", exif=exif, xmp=XMP, quality=50)
    return [out.getvalue()]


CORPUS_SEEDS = {
    "jpeg": ("jpeg/GPS.jpg", "jpeg/Apple.jpg", "jpeg/ExtendedXMP.jpg", "jpeg/IPTC.jpg"),
    "png": ("png/PNG.png", "png/sampleWithExifData.png"),
    "webp": ("webp/flower.webp",),
    "gif": ("gif/dirty.gif", "gif/GIF.gif"),
    "tiff": ("tiff/ExifTool.tif", "tiff/g4_orientation_3.tif"),
    "heif": ("heic/Stonehenge.heic", "heic/avif_metadata2.avif"),
}


@cache
def seeds(fmt: str) -> tuple[bytes, ...]:
    found = [
        (CORPUS / name).read_bytes() for name in CORPUS_SEEDS[fmt] if (CORPUS / name).is_file()
    ]
    return tuple(_made(fmt) + found)


# --- mutations ---------------------------------------------------------------------------------

MUTATIONS = ("field", "field", "truncate", "duplicate", "drop", "swap", "move", "flip")


def _hostile_values(data: bytes, spot: Field, old: int) -> list[int]:
    top = 2 ** (8 * spot.size) - 1
    return [0, 1, 2, 7, 8, top, top - 1, old + 1, old - 1, old * 2, old + 12, len(data),
            len(data) - spot.offset, spot.offset, spot.offset - 8, top // 2 + 1]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, fmt: str) -> bytes:
    data = draw(st.sampled_from(seeds(fmt)))
    for _ in range(draw(st.integers(1, 4))):
        layout = LAYOUTS[fmt](data)
        data = _mutate(draw, data, layout)
        if fmt == "png" and draw(st.booleans()):
            data = fix_png_crcs(data)
    return data


def _mutate(draw: st.DrawFn, data: bytes, layout: Layout) -> bytes:
    kind = draw(st.sampled_from(MUTATIONS))
    pieces = layout.pieces or [(0, len(data))]
    if kind == "field" and layout.fields:
        spot = draw(st.sampled_from(layout.fields))
        old = _u(data, spot.offset, spot.size, spot.order)
        value = draw(st.sampled_from(_hostile_values(data, spot, old)) | st.integers(0, 2**32))
        value %= 2 ** (8 * spot.size)
        raw = value.to_bytes(spot.size, "big" if spot.order == "big" else "little")
        return data[: spot.offset] + raw + data[spot.offset + spot.size :]
    if kind == "truncate":
        bounds = sorted({b for piece in pieces for b in piece} | {s.offset for s in layout.fields})
        cut = draw(st.sampled_from(bounds)) + draw(st.integers(-2, 2))
        return data[: max(cut, 0)]
    a_start, a_end = draw(st.sampled_from(pieces))
    b_start, b_end = draw(st.sampled_from(pieces))
    if kind == "duplicate":
        return data[:a_end] + data[a_start:a_end] + data[a_end:]
    if kind == "drop":
        return data[:a_start] + data[a_end:]
    if kind == "swap" and a_end <= b_start:
        a, b = data[a_start:a_end], data[b_start:b_end]
        return data[:a_start] + b + data[a_end:b_start] + a + data[b_end:]
    if kind == "move" and a_end <= b_start:  # piece a goes after piece b
        return data[:a_start] + data[a_end:b_end] + data[a_start:a_end] + data[b_end:]
    position = draw(st.integers(0, max(len(data) - 1, 0)))
    if not data:
        return data
    return data[:position] + bytes([draw(st.integers(0, 255))]) + data[position + 1 :]


# --- properties --------------------------------------------------------------------------------


def _decodes(data: bytes) -> bool | None:
    """True when Pillow decodes `data`, False when it cannot, None when too big to try here."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height * getattr(image, "n_frames", 1) > DECODE_PIXELS:
                    return None
                image.load()
        return True
    except Exception:  # anything Pillow or libheif raise means "does not decode"
        return False


def check(data: bytes) -> None:
    try:
        _check(data)
    except BaseException:
        if folder := os.environ.get("SCRUBBOT_FUZZ_SAVE"):  # keep crashers for tests/regressions
            name = f"crash-{zlib.crc32(data):08x}-{len(data)}.bin"
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / name).write_bytes(data)
        raise


def _check(data: bytes) -> None:
    started = time.perf_counter()
    try:
        result = scrub(data)
    except ScrubError:
        assert time.perf_counter() - started < TIME_BOUND
        return
    assert time.perf_counter() - started < TIME_BOUND
    assert inspect(result.data).findings == ()
    if _decodes(data):
        assert _decodes(result.data) is not False, "the input decodes, the output does not"


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="SCRUBBOT_FUZZ_EXAMPLES" not in os.environ,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("fmt", sorted(LAYOUTS))
def test_seeds_are_cleaned(fmt: str) -> None:
    """The unmutated seeds scrub, so mutations start from files the parsers accept."""
    for data in seeds(fmt):
        check(data)
        assert LAYOUTS[fmt](data).pieces


@pytest.mark.parametrize("fmt", sorted(LAYOUTS))
def test_mutated_files(fmt: str) -> None:
    @FUZZ
    @given(mutated(fmt))
    def run(data: bytes) -> None:
        check(data)

    run()


@pytest.mark.parametrize(
    "path", sorted(REGRESSIONS.glob("*")) if REGRESSIONS.is_dir() else [], ids=lambda p: p.name
)
def test_regressions(path: Path) -> None:
    check(path.read_bytes())
