"""Bombs: files whose headers promise far more than their bytes, refused cheaply.

- pixel bombs (huge declared width x height, per format) raise `TooLarge` from the headers, in
  milliseconds: nothing is ever decoded;
- compressed text and colour profiles (PNG zTXt, iTXt, iCCP) holding gigabytes of zeros are
  never inflated past a small bound (time and tracemalloc peak measured);
- looping or endlessly chained IFDs, and boxes nested or repeated without end, are cut off.
"""

import io
import struct
import time
import tracemalloc
import zlib
from collections.abc import Callable

import pillow_heif
import pytest
from PIL import Image

from bot.errors import ScrubError, TooLarge
from bot.scrub import inspect, scrub

pillow_heif.register_heif_opener()

FAST = 0.05  # seconds: "in milliseconds", with room for a slow CI machine
HUGE = 100_000  # pixels per side: 10 gigapixels


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def refused_fast(data: bytes, error: type[ScrubError] = TooLarge, within: float = FAST) -> float:
    """Seconds `scrub` took to refuse `data` with `error` (best of three, to skip cold caches)."""
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        with pytest.raises(error):
            scrub(data)
        seconds.append(time.perf_counter() - started)
    assert min(seconds) < within, f"{min(seconds) * 1000:.1f} ms"
    return min(seconds)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width: int, height: int, *extra: bytes) -> bytes:
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    pixels = chunk(b"IDAT", zlib.compress(b"\0" * 16))
    return b"\x89PNG\r\n\x1a\n" + header + b"".join(extra) + pixels + chunk(b"IEND", b"")


def saved(fmt: str, size: tuple[int, int] = (16, 16), **options: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 80, 40)).save(out, fmt, **options)
    return out.getvalue()


def jpeg_bomb() -> bytes:
    data = bytearray(saved("JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65535, 65535)
    return bytes(data)


def gif_bomb() -> bytes:
    data = bytearray(saved("GIF"))
    data[6:10] = struct.pack("<HH", 65535, 65535)
    return bytes(data)


def webp_bomb() -> bytes:
    """An extended WebP whose canvas says 16384 x 16384 (the format's maximum)."""
    data = bytearray(saved("WEBP", exif=b"Exif\0\0II*\0\x08\0\0\0\0\0\0\0\0\0", lossless=True))
    vp8x = data.index(b"VP8X")
    data[vp8x + 12 : vp8x + 18] = (16383).to_bytes(3, "little") * 2
    return bytes(data)


def tiff(entries: list[tuple[int, int, int, int]], next_ifd: int = 0, offset: int = 8) -> bytes:
    """A little-endian TIFF with one IFD at `offset` (entries: tag, type, count, value)."""
    ifd = struct.pack("<H", len(entries))
    ifd += b"".join(struct.pack("<HHII", *entry) for entry in sorted(entries))
    ifd += struct.pack("<I", next_ifd)
    return b"II*\0" + struct.pack("<I", offset) + bytes(offset - 8) + ifd + bytes(64)


def tiff_page(width: int, height: int, **more: int) -> list[tuple[int, int, int, int]]:
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 8),  # the strip: the header bytes themselves, enough for the test
        (277, 3, 1, 1),
        (278, 4, 1, height),
        (279, 4, 1, 8),
    ]
    return entries + [(int(tag[1:], 16), 4, 1, value) for tag, value in more.items()]


def heic_bomb() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 80, 40)).save(out, "HEIF", quality=50)
    data = bytearray(out.getvalue())
    pos = data.find(b"ispe")
    while pos >= 0:
        data[pos + 8 : pos + 16] = struct.pack(">II", HUGE, HUGE)
        pos = data.find(b"ispe", pos + 4)
    return bytes(data)


PIXEL_BOMBS: dict[str, Callable[[], bytes]] = {
    "jpeg": jpeg_bomb,
    "png": lambda: png(HUGE, HUGE),
    "gif": gif_bomb,
    "webp": webp_bomb,
    "tiff": lambda: tiff(tiff_page(HUGE, HUGE)),
    "heic": heic_bomb,
}


@pytest.mark.parametrize("fmt", sorted(PIXEL_BOMBS))
def test_pixel_bombs_are_refused_from_the_headers(fmt: str) -> None:
    data = PIXEL_BOMBS[fmt]()
    seconds = refused_fast(data)
    print(f"{fmt} pixel bomb refused in {seconds * 1000:.2f} ms")


def test_animated_pixel_bombs_count_every_frame() -> None:
    """200 frames of 1200 x 1000 pass the per-frame size but not the total."""
    frames = [Image.new("P", (1200, 1000), i % 250) for i in range(200)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    refused_fast(out.getvalue())


def deflate_bomb(inflated: int) -> bytes:
    """A zlib stream that inflates to `inflated` zero bytes, made in milliseconds: a flushed
    block of 1 MiB of zeros compresses to the same bytes every time, so it is repeated."""
    compressor = zlib.compressobj(9)
    zeros = bytes(1 << 20)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    return first + again * (inflated // len(zeros) - 1) + compressor.flush()


GIGABYTES = 4


@pytest.fixture(scope="module")
def bomb() -> bytes:
    stream = deflate_bomb(GIGABYTES << 30)
    assert len(stream) < 8 << 20  # a few MB that would become 4 GB
    return stream


@pytest.mark.parametrize(
    "make",
    [
        lambda s: chunk(b"zTXt", b"Comment\0\0" + s),
        lambda s: chunk(b"zTXt", b"Raw profile type exif\0\0" + s),
        lambda s: chunk(b"iTXt", b"XML:com.adobe.xmp\0\x01\0\0\0" + s),
        lambda s: chunk(b"iCCP", b"icc\0\0" + s),
        lambda s: chunk(b"zTXt", b"Comment\0\0" + s) * 8,  # many chunks share one budget
    ],
    ids=["zTXt", "zTXt-raw-profile", "iTXt-xmp", "iCCP", "eight-zTXt"],
)
def test_compressed_chunks_are_not_inflated_past_a_bound(
    bomb: bytes, make: Callable[[bytes], bytes]
) -> None:
    data = png(16, 16, make(bomb))
    tracemalloc.start()
    try:
        started = time.perf_counter()
        try:
            result = scrub(data)
            result.findings  # noqa: B018 (interpreting the inflated text is part of the work)
        except ScrubError:
            pass
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"{GIGABYTES} GB inflation bomb: {seconds * 1000:.0f} ms, peak {peak >> 20} MiB")
    assert seconds < 2.0
    assert peak < 100 << 20  # the file is ~4 MB per chunk; 4 GB inflated would be obvious


def test_an_ifd_pointing_at_itself_is_cut_off() -> None:
    refused_fast(tiff(tiff_page(16, 16), next_ifd=8), ScrubError)


def test_an_exif_pointer_back_to_its_own_directory_is_cut_off() -> None:
    refused_fast(tiff(tiff_page(16, 16, x8769=8)), ScrubError)


def test_an_endless_chain_of_directories_is_cut_off() -> None:
    """10,000 IFDs, each pointing to the next: far past any real file's chain."""
    entries = tiff_page(16, 16)
    size = 2 + 12 * len(entries) + 4
    ifds = b""
    for index in range(10_000):
        after = 8 + (index + 1) * size if index < 9_999 else 0
        ifds += struct.pack("<H", len(entries))
        ifds += b"".join(struct.pack("<HHII", *entry) for entry in entries)
        ifds += struct.pack("<I", after)
    seconds = refused_fast(b"II*\0\x08\0\0\0" + ifds, ScrubError)
    print(f"10,000-IFD chain refused in {seconds * 1000:.2f} ms")


def test_looping_exif_in_a_jpeg_is_cut_off() -> None:
    """The EXIF block's first IFD has itself as the next one and as its EXIF directory."""
    exif = b"II*\0\x08\0\0\0" + struct.pack("<H", 1) + struct.pack("<HHII", 0x8769, 4, 1, 8)
    exif += struct.pack("<I", 8)
    app1 = b"Exif\0\0" + exif
    jpeg = saved("JPEG")
    data = jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]
    started = time.perf_counter()
    try:
        result = scrub(data)
        assert inspect(result.data).findings == ()
        result.findings  # noqa: B018
    except ScrubError:
        pass
    assert time.perf_counter() - started < FAST


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


FTYP = box(b"ftyp", b"heic\0\0\0\0mif1heic")


def test_boxes_nested_without_end_are_cut_off() -> None:
    """A 'meta' box holding 'iprp' inside 'iprp' ... 20,000 deep."""
    inner = b""
    for _ in range(20_000):
        inner = box(b"iprp", inner)
    data = FTYP + box(b"meta", b"\0\0\0\0" + box(b"hdlr", bytes(8) + b"pict" + bytes(13)) + inner)
    seconds = refused_fast(data, ScrubError)
    print(f"20,000-deep boxes refused in {seconds * 1000:.2f} ms")


# Walks of many tiny pieces stop at the parser's count limit: linear, so not milliseconds.
WALK = 2.0


def test_a_million_tiny_boxes_are_cut_off() -> None:
    data = FTYP + box(b"free", b"") * 1_000_000
    seconds = refused_fast(data, ScrubError, WALK)
    print(f"1,000,000 boxes refused in {seconds * 1000:.2f} ms")


def test_a_million_tiny_png_chunks_are_cut_off() -> None:
    data = png(16, 16, chunk(b"tEXt", b"a\0b") * 200_000)
    seconds = refused_fast(data, ScrubError, WALK)
    print(f"200,000 PNG chunks refused in {seconds * 1000:.2f} ms")
