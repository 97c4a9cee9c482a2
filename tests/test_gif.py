"""GIF: corpus files, planted metadata, extensions kept and dropped, frames, damage."""

import io
import random
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.errors import DamagedImage, NotClean, ScrubError, TooLarge
from bot.formats import gif
from bot.formats.base import BlockKind
from bot.formats.icc import srgb
from bot.scrub import Limits, inspect, scrub, verify
from tests.conftest import corpus_params
from tests.pictures import (
    assert_clean,
    assert_code_gone,
    malformed_params,
    plant,
    planted_code,
    secrets,
)


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
    """Whatever a few changed bytes make of the file: refused, or cleaned without the comment
    wherever the parse still reads it as hidden data. (A changed screen descriptor can make the
    comment's bytes colour table entries: the residual THREAT_MODEL.md lists for GIF tables.)"""
    original = small_gif(frames=2)
    data = bytearray(before_first_frame(original, extension(0xFE, b"a secret")))
    for _ in range(draw.draw(st.integers(1, 4))):
        at = draw.draw(st.integers(0, len(data) - 1))
        data[at] = draw.draw(st.integers(0, 255))
    try:
        scrubbed = scrub(bytes(data))
    except ScrubError:
        return
    blocks = scrubbed.inspection.parsed.blocks
    if any(b"secret" in block.data for block in blocks):  # read as hidden data: it goes
        assert b"secret" not in scrubbed.data


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


def parts(data: bytes) -> list[bytes]:
    """The raw bytes of every frame and extension, in order (trailer included)."""
    return [data[p.start : p.end] for p in gif._parts(data)]


def assert_gif_without(data: bytes, code: bytes, tmp_path: Path) -> bytes:
    cleaned = assert_clean(data, tmp_path, "out.gif")
    assert_code_gone(cleaned, code)
    return cleaned


def timing(flags: int, delay: int, index: int, extra: bytes = b"") -> bytes:
    body = struct.pack("<BHB", flags, delay, index) + extra
    return bytes([0x21, 0xF9, len(body)]) + body


@pytest.mark.parametrize("seed", range(3))
def test_graphic_control_extension_is_written_at_its_four_bytes(seed: int, tmp_path: Path) -> None:
    code = planted_code(seed)
    data = small_gif(frames=2)
    frames = [p for p in parts(data) if p[0] == gif.IMAGE]
    stream = data[: gif._stream_start(data)]
    # reserved bits set, a transparent index without the flag, a longer block, more blocks
    dirty = timing(0xE0 | 0x08, 5, code[0], code[1:5]) + sub_blocks(code)[:-1] + b"\0"
    clean = timing(0x08, 5, 0) + b"\0"
    cleaned = assert_gif_without(stream + dirty + frames[0] + frames[1] + b";", code, tmp_path)
    assert cleaned == stream + clean + frames[0] + frames[1] + b";"


@pytest.mark.parametrize("seed", range(3))
def test_loop_extension_is_rebuilt_and_kept_once(seed: int, tmp_path: Path) -> None:
    code = planted_code(seed)
    data = small_gif(frames=3)
    start = gif._stream_start(data)
    loop = extension(0xFF, b"\x01\x02\x00", app=b"NETSCAPE2.0")
    body = [p for p in parts(data) if not p.startswith(b"\x21\xff")]
    dirty_loop = bytes([0x21, 0xFF, 11]) + b"NETSCAPE2.0"
    dirty_loop += bytes([3 + len(code[:8])]) + b"\x01\x02\x00" + code[:8] + sub_blocks(code)
    late_loop = extension(0xFF, b"\x01" + code[8:10], app=b"NETSCAPE2.0")
    dirty = data[:start] + dirty_loop + dirty_loop + body[0] + late_loop + b"".join(body[1:])
    cleaned = assert_gif_without(dirty, code, tmp_path)
    assert_code_gone(cleaned, code[8:10])
    assert cleaned == data[:start] + loop + b"".join(body)


@pytest.mark.parametrize("seed", range(3))
def test_picture_data_is_split_into_full_sub_blocks(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    image = Image.frombytes("P", (64, 64), rng.randbytes(64 * 64))
    image.putpalette(list(range(256)) * 3)
    buffer = io.BytesIO()
    image.save(buffer, "GIF")
    data = buffer.getvalue()
    [frame] = [p for p in gif._parts(data) if p.label == gif.IMAGE]
    code_size = frame.start + 10 + gif._table_size(data[frame.start + 9])
    payload = gif._sub_blocks(data, code_size + 1, frame.end, limit=frame.end)
    assert len(payload) > 600
    odd, at = b"", 0
    for size in [1, 7, 100, 254] * (len(payload) // 362 + 1):  # how a file is split spells bits
        odd, at = odd + bytes([len(payload[at : at + size])]) + payload[at : at + size], at + size
        if at >= len(payload):
            break
    split = data[: code_size + 1] + odd + b"\0" + data[frame.end :]
    assert assert_clean(split, tmp_path, "out.gif") == data


@pytest.mark.parametrize("seed", range(3))
def test_screen_and_frame_descriptors_have_no_free_bits(seed: int, tmp_path: Path) -> None:
    code = planted_code(seed)
    image = Image.new("RGB", (16, 10), (10, 20, 30))
    buffer = io.BytesIO()
    image.save(buffer, "GIF")
    data = bytearray(buffer.getvalue())
    # move the global table into the frame: the screen then has no table of its own
    table_end = 13 + gif._table_size(data[10])
    table, screen_flags = bytes(data[13:table_end]), data[10]
    rest = bytes(data[table_end:])
    at = rest.index(b",")
    descriptor = bytearray(rest[at : at + 10])
    descriptor[9] = 0x80 | 0x18 | (screen_flags & 7)  # local table, reserved bits set
    dirty_screen = bytes(data[:10]) + bytes([(screen_flags & 0x70) | 5, code[0], 0])
    clean_screen = bytes(data[:10]) + bytes([screen_flags & 0x70, 0, 0])
    tail = table + rest[at + 10 :]
    dirty = dirty_screen + rest[:at] + bytes(descriptor) + tail
    descriptor[9] = 0x80 | (screen_flags & 7)
    assert (
        assert_clean(dirty, tmp_path, "out.gif")
        == clean_screen + rest[:at] + bytes(descriptor) + tail
    )


def test_timing_block_after_the_last_frame_is_dropped(tmp_path: Path) -> None:
    code = planted_code(11)
    data = small_gif()
    dirty = data[:-1] + timing(0, int.from_bytes(code[:2], "little"), code[2]) + b"\0;"
    assert assert_gif_without(dirty, code[:3], tmp_path) == data


def test_two_timing_blocks_for_one_frame_are_refused() -> None:
    data = small_gif()
    start = gif._stream_start(data)
    double = timing(0, 5, 0) + b"\0" + timing(1, 7, 3) + b"\0"
    with pytest.raises(DamagedImage):
        scrub(data[:start] + double + data[start:])


@pytest.mark.parametrize("path", corpus_params("gif"))
def test_corpus_output_is_canonical(path: Path) -> None:
    # Parse the output and write it again from the parse: the same bytes, exactly.
    cleaned = scrub(path.read_bytes()).data
    assert gif.strip(cleaned, gif.parse(cleaned)) == cleaned


def lzw(indices: list[int], code_size: int) -> bytes:
    """LZW data a decoder reads back as `indices`: literal codes only, a clear code before every
    two, so the code width never grows."""
    clear, width = 1 << code_size, code_size + 1
    codes = [c for at in range(0, len(indices), 2) for c in (clear, *indices[at : at + 2])]
    bits = sum(code << (width * n) for n, code in enumerate([*codes, clear + 1]))
    return bits.to_bytes((width * (len(codes) + 1) + 7) // 8, "little")


def hand_made_gif(table: bytes, local: bool) -> bytes:
    """A 16x10 GIF89a using indices 0-3 (code size 2) with `table` global or local."""
    indices = [(x // 4 + y) % 4 for y in range(10) for x in range(16)]
    size = (len(table) // 3).bit_length() - 2
    screen = struct.pack("<HHBBB", 16, 10, (0x80 | size) if not local else 0, 0, 0)
    descriptor = struct.pack("<B4HB", 0x2C, 0, 0, 16, 10, (0x80 | size) if local else 0)
    head = b"GIF89a" + screen + (b"" if local else table) + descriptor + (table if local else b"")
    return head + b"\x02" + sub_blocks(lzw(indices, 2)) + b";"


@pytest.mark.parametrize(("seed", "local"), [(0, False), (1, False), (2, True)])
def test_colour_table_entries_no_index_can_reach_are_dropped(
    seed: int, local: bool, tmp_path: Path
) -> None:
    code = planted_code(seed)
    table = bytes([10, 20, 30, 200, 100, 50, 0, 255, 0, 9, 9, 9])
    big = table + (code * 48)[: 768 - len(table)]  # 256 entries: the rest spell the code
    cleaned = assert_gif_without(hand_made_gif(big, local), code, tmp_path)
    assert cleaned == hand_made_gif(table, local)


def test_pixel_aspect_ratio_is_written_as_zero(tmp_path: Path) -> None:
    data = small_gif(frames=2)
    assert data[12] == 0
    dirty = data[:12] + b"I" + data[13:]
    assert assert_clean(dirty, tmp_path, "out.gif") == data


def test_verify_refuses_a_block_strip_would_not_write() -> None:
    cleaned = scrub(small_gif(frames=2)).data
    assert verify(gif.FORMAT, cleaned) is None
    with pytest.raises(NotClean):  # an aspect ratio strip writes as 0
        verify(gif.FORMAT, cleaned[:12] + b"\x31" + cleaned[13:])
    with pytest.raises(NotClean):  # a timing block after the last frame
        verify(gif.FORMAT, cleaned[:-1] + timing(0, 5, 0) + b"\0;")
