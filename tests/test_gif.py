"""GIF: corpus files, planted metadata, extensions kept and dropped, frames, damage."""

import io
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.errors import DamagedImage, ScrubError, TooLarge
from bot.formats import gif
from bot.formats.base import BlockKind
from bot.formats.icc import srgb
from bot.scrub import Limits, inspect, scrub
from tests.conftest import corpus_params
from tests.pictures import assert_clean, malformed_params, plant, secrets


def sub_blocks(payload: bytes) -> bytes:
    pieces = [payload[i : i + 255] for i in range(0, len(payload), 255)]
    return b"".join(bytes([len(p)]) + p for p in pieces) + b"\0"


def extension(label: int, payload: bytes, app: bytes = b"") -> bytes:
    head = bytes([0x21, label]) + (bytes([11]) + app if app else b"")
    return head + sub_blocks(payload)


def xmp_extension(packet: bytes) -> bytes:
    """XMP is stored raw, followed by the 258-byte magic trailer."""
    trailer = b"\x01" + bytes(range(255, -1, -1)) + b"\0"
    return bytes([0x21, 0xFF, 11]) + b"XMP DataXMP" + packet + trailer


def small_gif(frames: int = 1) -> bytes:
    images = [Image.new("P", (16, 10), i * 3) for i in range(frames)]
    for i, image in enumerate(images):
        image.putpalette([c * 5 % 256 for c in range(768)])
        image.paste(i * 7 + 1, (i, i, 8 + i, 6))
    buffer = io.BytesIO()
    if frames == 1:
        images[0].save(buffer, "GIF")
    else:
        images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], loop=0, duration=50)
    return buffer.getvalue()


def before_first_frame(data: bytes, extra: bytes) -> bytes:
    at = gif._stream_start(data)
    return data[:at] + extra + data[at:]


@pytest.mark.parametrize("path", corpus_params("gif"))
def test_corpus_file_is_cleaned(path: Path, tmp_path: Path) -> None:
    data = path.read_bytes()
    parsed = inspect(data).parsed
    cleaned = assert_clean(data, tmp_path, "out.gif")
    assert inspect(cleaned).parsed.frames == parsed.frames


@pytest.mark.parametrize("path", malformed_params(b"GIF87a", b"GIF89a"))
def test_malformed_file_is_refused(path: Path) -> None:
    with pytest.raises(ScrubError):
        scrub(path.read_bytes())


@pytest.mark.parametrize("seed", range(3))
def test_planted_metadata_is_found_and_removed(seed: int, exiftool: str, tmp_path: Path) -> None:
    values = secrets(seed)
    path = tmp_path / "in.gif"
    path.write_bytes(small_gif(frames=1 + seed))
    plant(
        exiftool,
        path,
        f"-XMP-exif:GPSLatitude={values['latitude']}",
        "-XMP-exif:GPSLatitudeRef=N",
        f"-XMP-dc:Creator={values['name']}",
        f"-XMP-aux:SerialNumber={values['serial']}",
        f"-XMP-iptcCore:Location={values['fbmd']}",
        f"-Comment={values['comment']}",
    )
    data = path.read_bytes()
    kinds = [block.kind for block in inspect(data).parsed.blocks]
    assert BlockKind.XMP in kinds
    assert BlockKind.COMMENT in kinds
    cleaned = assert_clean(data, tmp_path, "out.gif")
    for value in values.values():
        assert value.encode() not in cleaned
    assert inspect(cleaned).parsed.frames == 1 + seed


def test_extensions_are_sorted_into_kept_and_dropped() -> None:
    icc = srgb()  # a profile as we write it, so kept byte for byte
    grid = bytes([12, 0, 0, 0, 0, 16, 0, 10, 0, 8, 8, 1, 0])  # position, cell size, colours
    kept = extension(0xFF, b"\x01\x00\x00", app=b"NETSCAPE2.0") + extension(
        0xFF, icc, app=b"ICCRGBG1012"
    )
    dropped = (
        bytes([0x21, 0x01])
        + grid
        + sub_blocks(b"text no viewer draws")
        + extension(0xFE, b"Taken at 12 Elm Street")
        + xmp_extension(b"<x:xmpmeta>Ann</x:xmpmeta>")
        + extension(0xFF, b"\x1c\x02\x05\x00\x03abc", app=b"MGKIPTC0000")
        + extension(0xFF, b"whatever", app=b"SOMEAPP1.00")
        + extension(0x77, b"unknown label")
    )
    data = before_first_frame(small_gif(), kept + dropped)
    found = [(b.kind, b.data) for b in gif.parse(data).blocks]
    assert found == [
        (BlockKind.ICC, icc),
        (BlockKind.COMMENT, b"text no viewer draws"),
        (BlockKind.COMMENT, b"Taken at 12 Elm Street"),
        (BlockKind.XMP, b"<x:xmpmeta>Ann</x:xmpmeta>"),
        (BlockKind.IPTC, b"\x1c\x02\x05\x00\x03abc"),
        (BlockKind.OTHER, b"whatever"),
        (BlockKind.OTHER, b""),
    ]
    assert scrub(data).data == before_first_frame(small_gif(), kept)


def test_comment_after_the_last_frame_and_trailing_data_are_dropped() -> None:
    data = small_gif()
    dirty = data[:-1] + extension(0xFE, b"bye") + data[-1:] + b"appended secrets"
    assert [b.kind for b in gif.parse(dirty).blocks] == [BlockKind.COMMENT, BlockKind.MEDIA]
    assert scrub(dirty).data == data


def test_frames_count_for_the_pixel_limit() -> None:
    data = small_gif(frames=5)
    assert inspect(data).parsed.frames == 5
    with pytest.raises(TooLarge):
        scrub(data, Limits(max_pixels=16 * 10 * 4))


def test_a_frame_larger_than_the_screen_counts_its_own_size() -> None:
    data = bytearray(small_gif())
    at = gif._stream_start(bytes(data))
    while data[at] != 0x2C:  # skip the graphic control extension, if any
        at = gif._sub_blocks_end(bytes(data), at + 2, gif._Budget())
    struct.pack_into("<HHHH", data, at + 1, 30_000, 0, 30_000, 10)
    parsed = inspect(bytes(data), Limits(max_pixels=10**9)).parsed
    assert (parsed.width, parsed.height) == (60_000, 10)


@pytest.mark.parametrize("size", [(0, 10), (16, 0)])
def test_empty_screen_is_damage(size: tuple[int, int]) -> None:
    data = bytearray(small_gif())
    struct.pack_into("<HH", data, 6, *size)
    with pytest.raises(DamagedImage):
        scrub(bytes(data))


def test_unknown_block_is_damage() -> None:
    with pytest.raises(DamagedImage):
        scrub(before_first_frame(small_gif(), b"\x99"))


def test_every_truncation_is_refused() -> None:
    data = before_first_frame(small_gif(frames=2), extension(0xFE, b"comment"))
    for end in range(len(data)):
        with pytest.raises(ScrubError):
            scrub(data[:end])


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_corrupted_bytes_are_cleaned_or_refused(draw: st.DataObject) -> None:
    original = small_gif(frames=2)
    label_at = gif._stream_start(original) + 1
    data = bytearray(before_first_frame(original, extension(0xFE, b"a secret")))
    for _ in range(draw.draw(st.integers(1, 4))):
        at = draw.draw(st.integers(0, len(data) - 1))
        data[at] = draw.draw(st.integers(0, 255))
    try:
        cleaned = scrub(bytes(data)).data
    except ScrubError:
        return
    if data[label_at - 1 : label_at + 1] == b"\x21\xfe":  # still a comment, not turned into text
        assert b"secret" not in cleaned


def test_a_chain_of_tiny_blocks_is_refused_quickly() -> None:
    hostile = bytes([0x21, 0xFE]) + b"\x01x" * (gif.MAX_SUB_BLOCKS + 1) + b"\0"
    with pytest.raises(TooLarge):
        scrub(before_first_frame(small_gif(), hostile))


def test_plain_text_extension_is_reported_and_dropped(tmp_path: Path) -> None:
    """Viewers do not draw plain text extensions, so their text is hidden data."""
    grid = bytes([12]) + bytes(12)
    text = b"Mia, class 2b"
    plain_text = bytes([0x21, 0x01]) + grid + sub_blocks(text)
    data = before_first_frame(small_gif(), plain_text)
    found = inspect(data).findings
    assert any(f.key == "comment" and f.value == text.decode() for f in found)
    cleaned = assert_clean(data, tmp_path, "out.gif")
    assert text not in cleaned
