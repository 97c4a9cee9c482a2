"""WebP: corpus files, chunks assembled by hand (ExifTool cannot write WebP), frames, damage."""

import io
import struct
from pathlib import Path

import piexif
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.errors import DamagedImage, NotClean, ScrubError, TooLarge
from bot.formats import webp
from bot.formats.base import BlockKind
from bot.formats.icc import srgb
from bot.metadata import exif
from bot.scrub import Limits, inspect, scrub, verify
from tests.conftest import corpus_params
from tests.judge import leftovers
from tests.pictures import (
    assert_clean,
    assert_code_gone,
    malformed_params,
    orientation,
    planted_code,
    secrets,
    shown_frames,
)


def chunk(fourcc: bytes, payload: bytes) -> bytes:
    pad = b"\0" if len(payload) % 2 else b""
    return fourcc + struct.pack("<I", len(payload)) + payload + pad


def riff(*chunks: bytes) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 12
    while pos < len(data):
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        out.append((fourcc, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + size % 2
    return out


def vp8x(flags: int, width: int, height: int) -> bytes:
    size = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return chunk(b"VP8X", bytes([flags, 0, 0, 0]) + size)


def bitstream(lossless: bool, alpha: bool = False) -> bytes:
    """The image chunk(s) of a Pillow-made 24x16 WebP: VP8L, or VP8 (with ALPH when alpha)."""
    image = Image.new("RGBA" if alpha else "RGB", (24, 16))
    image.putdata([(x * 9 % 256, x * 5 % 256, 255 - x % 256, 128 + x % 128) for x in range(384)])
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", lossless=lossless, quality=90)
    return b"".join(chunk(f, p) for f, p in chunks(buffer.getvalue()) if f != b"VP8X")


def camera_exif(values: dict[str, str], rotation: int) -> bytes:
    """A phone-like EXIF block (piexif): GPS, make, model, serial, date and `rotation`."""
    degrees = float(values["latitude"])
    return bytes(
        piexif.dump(
            {
                "0th": {
                    piexif.ImageIFD.Make: b"Apple",
                    piexif.ImageIFD.Model: b"iPhone 15",
                    piexif.ImageIFD.Orientation: rotation,
                },
                "Exif": {
                    piexif.ExifIFD.BodySerialNumber: values["serial"].encode(),
                    piexif.ExifIFD.DateTimeOriginal: b"2024:05:06 07:08:09",
                },
                "GPS": {
                    piexif.GPSIFD.GPSLatitudeRef: b"N",
                    piexif.GPSIFD.GPSLatitude: ((int(degrees), 1), (30, 1), (1234, 100)),
                    piexif.GPSIFD.GPSLongitudeRef: b"E",
                    piexif.GPSIFD.GPSLongitude: ((12, 1), (0, 1), (0, 1)),
                },
            }
        )
    )


def xmp_packet(values: dict[str, str]) -> bytes:
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" '
        f'dc:creator="{values["name"]}" dc:source="{values["fbmd"]}"/>'
        "</rdf:RDF></x:xmpmeta>"
    ).encode()


def animated(frames: int = 3) -> bytes:
    images = [Image.new("RGBA", (20, 12), (60 * i, 200 - 50 * i, 90, 255)) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(
        buffer, "WEBP", save_all=True, append_images=images[1:], duration=70, lossless=True
    )
    return buffer.getvalue()


@pytest.mark.parametrize("path", corpus_params("webp"))
def test_corpus_file_is_cleaned(path: Path, tmp_path: Path) -> None:
    data = path.read_bytes()
    cleaned = assert_clean(data, tmp_path, "out.webp")
    kept = {fourcc for fourcc, _ in chunks(cleaned)}
    assert kept <= webp.KEPT | {b"ANMF", b"EXIF"}


@pytest.mark.parametrize("path", malformed_params(b"RIFF"))
def test_malformed_file_is_refused(path: Path) -> None:
    with pytest.raises(ScrubError):
        scrub(path.read_bytes())


@pytest.mark.parametrize(
    ("lossless", "alpha", "rotation", "exif_header"),
    [
        (False, False, 1, False),
        (False, True, 6, True),
        (True, False, 8, False),
        (True, True, 3, True),
    ],
)
def test_planted_metadata_is_found_and_removed(
    lossless: bool, alpha: bool, rotation: int, exif_header: bool, tmp_path: Path
) -> None:
    values = secrets(rotation)
    exif_block = camera_exif(values, rotation)
    exif_payload = exif_block if exif_header else exif.strip_header(exif_block)
    data = riff(
        vp8x(0x08 | 0x04 | (0x10 if alpha else 0), 24, 16),
        bitstream(lossless, alpha),
        chunk(b"EXIF", exif_payload),
        chunk(b"XMP ", xmp_packet(values)),
        chunk(b"ABCD", values["comment"].encode()),
    )
    assert orientation(data) == rotation
    kinds = [block.kind for block in inspect(data).parsed.blocks]
    assert kinds == [BlockKind.EXIF, BlockKind.XMP, BlockKind.OTHER]
    cleaned = assert_clean(data, tmp_path, "out.webp")
    for value in values.values():
        assert value.encode() not in cleaned
    assert cleaned[20] & webp.XMP_FLAG == 0
    assert bool(cleaned[20] & webp.EXIF_FLAG) == (rotation != 1)
    exifs = [p for f, p in chunks(cleaned) if f == b"EXIF"]
    assert exifs == ([exif.minimal(rotation)] if rotation != 1 else [])


def test_icc_profile_is_kept() -> None:
    icc = srgb()  # a profile as we write it, so kept byte for byte
    data = riff(vp8x(0x20, 24, 16), chunk(b"ICCP", icc), bitstream(lossless=True))
    assert [(b.kind, b.data) for b in webp.parse(data).blocks] == [(BlockKind.ICC, icc)]
    assert scrub(data).data == data


def test_simple_files_give_their_bitstream_size() -> None:
    for lossless in (False, True):
        parsed = webp.parse(riff(bitstream(lossless)))
        assert (parsed.width, parsed.height) == (24, 16)


def test_exif_after_a_simple_file_is_dropped() -> None:
    # Readers ignore it (no VP8X), so it is hidden data, not an orientation to keep.
    plain = riff(bitstream(lossless=True))
    data = riff(bitstream(lossless=True), chunk(b"EXIF", exif.minimal(6)))
    assert [b.kind for b in webp.parse(data).blocks] == [BlockKind.EXIF]
    assert scrub(data).data == plain


def test_animation_keeps_every_frame_and_drops_chunks_inside_frames(tmp_path: Path) -> None:
    data = animated()
    parts = chunks(data)
    frames = [p for f, p in parts if f == b"ANMF"]
    assert len(frames) == 3
    # Hide a chunk inside the second frame and an XMP packet after the frames.
    frames[1] += chunk(b"SECR", b"kid's school")
    rebuilt = [chunk(f, p) for f, p in parts if f not in (b"ANMF", b"VP8X")]
    header = chunk(b"VP8X", bytes([parts[0][1][0] | 0x04]) + parts[0][1][1:])
    data = riff(header, *rebuilt, *(chunk(b"ANMF", f) for f in frames), chunk(b"XMP ", b"<x/>"))
    parsed = inspect(data).parsed
    assert parsed.frames == 3
    assert [b.kind for b in parsed.blocks] == [BlockKind.OTHER, BlockKind.XMP]
    cleaned = assert_clean(data, tmp_path, "out.webp")
    assert b"kid's school" not in cleaned
    assert cleaned == animated()


def test_frames_count_for_the_pixel_limit() -> None:
    with pytest.raises(TooLarge):
        scrub(animated(), Limits(max_pixels=20 * 12 * 2))


def test_trailing_data_is_dropped() -> None:
    data = riff(bitstream(lossless=False))
    assert [b.kind for b in webp.parse(data + b"video").blocks] == [BlockKind.MEDIA]
    assert scrub(data + b"video").data == data


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"RIFF\xff\0\0\0WEBPVP8L", id="riff-size-past-end"),
        pytest.param(riff(chunk(b"VP8L", b"\x2f\0\0\0\0"))[:-1], id="cut-chunk"),
        pytest.param(riff(b"VP8L\x05\0\0\0\x2f\0\0\0\0"), id="odd-size-without-pad"),
        pytest.param(riff(chunk(b"VP8 ", b"\0" * 10)), id="bad-vp8-start-code"),
        pytest.param(riff(chunk(b"VP8L", b"\x00" * 5)), id="bad-vp8l-signature"),
        pytest.param(riff(vp8x(0, 24, 16)), id="vp8x-without-picture"),
        pytest.param(riff(chunk(b"VP8X", b"\0" * 4), bitstream(True)), id="short-vp8x"),
        pytest.param(riff(vp8x(0, 24, 16), chunk(b"ANMF", b"\0" * 8)), id="short-frame"),
        pytest.param(riff(), id="no-chunks"),
    ],
)
def test_broken_structures_are_damage(data: bytes) -> None:
    with pytest.raises(DamagedImage):
        scrub(data)


def test_every_truncation_is_refused() -> None:
    data = riff(vp8x(0x08, 24, 16), bitstream(False, True), chunk(b"EXIF", exif.minimal(3)))
    for end in range(len(data)):
        with pytest.raises(ScrubError):
            scrub(data[:end])


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_corrupted_bytes_are_cleaned_or_refused(draw: st.DataObject) -> None:
    values = secrets(0)
    data = bytearray(riff(vp8x(0x0C, 24, 16), bitstream(True), chunk(b"XMP ", xmp_packet(values))))
    for _ in range(draw.draw(st.integers(1, 4))):
        at = draw.draw(st.integers(0, len(data) - 1))
        data[at] = draw.draw(st.integers(0, 255))
    try:
        cleaned = scrub(bytes(data)).data
    except ScrubError:
        return
    assert values["name"].encode() not in cleaned


def test_too_many_chunks_is_refused() -> None:
    with pytest.raises(TooLarge):
        scrub(riff(bitstream(lossless=True), chunk(b"ABCD", b"") * webp.MAX_CHUNKS))


def assert_webp_without(data: bytes, code: bytes, tmp_path: Path, reference: bytes) -> bytes:
    """Clean `data`: no `code` in the output, ExifTool finds nothing, the pixels of `reference`
    (the file without the planted parts, which some decoders refuse), a fixed point of scrub."""
    cleaned = scrub(data).data
    out = tmp_path / "out.webp"
    out.write_bytes(cleaned)
    assert leftovers(out) == {}
    assert_code_gone(cleaned, code)
    assert shown_frames(cleaned) == shown_frames(reference)
    assert scrub(cleaned).data == cleaned
    assert inspect(cleaned).findings == ()
    return cleaned


def uncompressed_alpha(width: int, height: int) -> bytes:
    """An ALPH payload without compression: header byte 0, then one alpha byte per pixel."""
    return b"\0" + bytes((x * 17) % 256 for x in range(width * height))


@pytest.mark.parametrize("seed", range(3))
def test_header_chunks_are_rebuilt_at_their_length(seed: int, tmp_path: Path) -> None:
    code = planted_code(seed)
    reference = riff(vp8x(0, 24, 16), bitstream(lossless=True))
    header = bytes([0xC1]) + code[:3] + (23).to_bytes(3, "little") + (15).to_bytes(3, "little")
    data = riff(chunk(b"VP8X", header + code[3:]), bitstream(lossless=True))
    cleaned = assert_webp_without(data, code[3:], tmp_path, reference)
    assert_code_gone(cleaned, code[:3])
    assert cleaned == reference


@pytest.mark.parametrize("seed", range(3))
def test_animation_headers_are_rebuilt_at_their_length(seed: int, tmp_path: Path) -> None:
    code = planted_code(seed)
    reference = animated()
    parts = chunks(reference)
    out = []
    for fourcc, payload in parts:
        if fourcc == b"ANIM":
            payload += code
        if fourcc == b"ANMF":  # reserved flag bits set, a chunk and a second bitstream inside
            inner = payload[16:] + chunk(b"SECR", code) + chunk(b"VP8L", b"\x2f" + code)
            payload = payload[:15] + bytes([payload[15] | 0xF0]) + inner
        out.append(chunk(fourcc, payload))
    cleaned = assert_webp_without(riff(*out), code, tmp_path, reference)
    assert cleaned == reference


@pytest.mark.parametrize("seed", range(3))
def test_a_simple_file_keeps_only_its_first_bitstream(seed: int, tmp_path: Path) -> None:
    code = planted_code(seed)
    reference = riff(bitstream(lossless=False))
    after = chunk(b"ALPH", b"\0" + code) + chunk(b"VP8L", b"\x2f" + code)
    cleaned = assert_webp_without(riff(bitstream(False), after), code, tmp_path, reference)
    assert cleaned == reference


@pytest.mark.parametrize("seed", range(3))
def test_an_extended_still_keeps_one_picture_with_its_alpha_in_place(
    seed: int, tmp_path: Path
) -> None:
    code = planted_code(seed)
    [(_, vp8)] = chunks(riff(bitstream(lossless=False)))
    alpha = uncompressed_alpha(24, 16)
    reference = riff(vp8x(0x10, 24, 16), chunk(b"ALPH", alpha), chunk(b"VP8 ", vp8))
    data = riff(
        vp8x(0x10, 24, 16),
        chunk(b"ALPH", alpha + code),  # uncompressed alpha longer than the picture
        chunk(b"VP8 ", vp8),
        chunk(b"ALPH", b"\0" + code),  # an alpha chunk after the picture
        chunk(b"VP8 ", vp8[:10] + code),  # and a second bitstream
    )
    cleaned = assert_webp_without(data, code, tmp_path, reference)
    assert cleaned == reference
    assert shown_frames(cleaned)[0][1][3::4] == bytes((x * 17) % 256 for x in range(384))


def test_pad_bytes_are_written_as_zero() -> None:
    [(_, vp8)] = chunks(riff(bitstream(lossless=False)))
    odd = vp8 if len(vp8) % 2 else vp8 + b"\0"
    data = riff(chunk(b"VP8 ", odd))
    assert scrub(data[:-1] + b"\x7f").data == data


def test_a_second_colour_profile_is_dropped() -> None:
    icc = b"\0\0\0\x20fake colour profile...."
    data = riff(
        vp8x(0x20, 24, 16), chunk(b"ICCP", icc), chunk(b"ICCP", b"xy"), bitstream(lossless=True)
    )
    assert [f for f, _ in chunks(scrub(data).data)].count(b"ICCP") <= 1


@pytest.mark.parametrize("value", [2, 6, 7])
def test_xmp_orientation_is_written_back_when_exif_has_none(value: int, tmp_path: Path) -> None:
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        f'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="{value}"/>'
        "</rdf:RDF></x:xmpmeta>"
    ).encode()
    data = riff(vp8x(0x04, 24, 16), bitstream(lossless=True), chunk(b"XMP ", packet))
    assert orientation(data) == value
    cleaned = assert_clean(data, tmp_path, "out.webp")
    assert [p for f, p in chunks(cleaned) if f == b"EXIF"] == [exif.minimal(value)]


@pytest.mark.parametrize("path", corpus_params("webp"))
def test_corpus_output_is_canonical(path: Path) -> None:
    # Parse the output and write it again from the parse: the same bytes, exactly.
    cleaned = scrub(path.read_bytes()).data
    assert webp.strip(cleaned, webp.parse(cleaned)) == cleaned


def test_animation_background_colour_is_written_as_zero(tmp_path: Path) -> None:
    code = planted_code(21)
    reference = animated()
    out = []
    for fourcc, payload in chunks(reference):
        if fourcc == b"ANIM":
            assert payload[:4] == bytes(4)
            payload = code[:4] + payload[4:]
        out.append(chunk(fourcc, payload))
    assert assert_webp_without(riff(*out), code[:4], tmp_path, reference) == reference


def test_verify_refuses_a_structure_strip_would_not_write() -> None:
    cleaned = scrub(riff(vp8x(0, 24, 16), bitstream(lossless=True))).data
    assert verify(webp.FORMAT, cleaned) is None
    reserved = cleaned[:21] + b"\x01" + cleaned[22:]  # a reserved VP8X byte set
    with pytest.raises(NotClean):
        verify(webp.FORMAT, reserved)
    with pytest.raises(NotClean):
        verify(webp.FORMAT, riff(*[chunk(f, p) for f, p in chunks(cleaned)], bitstream(True)))


@pytest.mark.parametrize("seed", range(2))
def test_headers_libwebp_refuses_are_refused_not_copied(seed: int) -> None:
    """An ALPH of an undefined method or preprocessing, a VP8L of another version, a VP8 that
    is not a shown key frame of version 0-3: no decoder opens the file, and we never send one
    that carries such bits (with a planted code behind them)."""
    code = planted_code(seed)
    [(_, vp8)] = chunks(riff(bitstream(lossless=False)))
    [(_, vp8l)] = chunks(riff(bitstream(lossless=True)))
    dirty = []
    for head in (0x02, 0x03, 0x20, 0x31):
        alpha = bytes([head]) + code * 30
        dirty.append(riff(vp8x(0x10, 24, 16), chunk(b"ALPH", alpha), chunk(b"VP8 ", vp8 + code)))
    dirty.append(riff(chunk(b"VP8L", vp8l[:4] + bytes([vp8l[4] | 0x20]) + vp8l[5:] + code)))
    for tag in (vp8[0] | 0x01, (vp8[0] & 0xF1) | 0x08, vp8[0] & 0xEF):  # inter, v4, hidden
        dirty.append(riff(chunk(b"VP8 ", bytes([tag]) + vp8[1:] + code)))
    for data in dirty:
        with pytest.raises(DamagedImage, match="broken"):
            scrub(data)
    kept = riff(
        vp8x(0x10, 24, 16), chunk(b"ALPH", uncompressed_alpha(24, 16)), chunk(b"VP8 ", vp8)
    )
    assert scrub(kept).data == kept


def test_an_animation_frame_outside_its_canvas_is_refused() -> None:
    """libwebp refuses such a file; the frame's bitstream (here with a planted code after it)
    would otherwise ride along in a file nobody can open."""
    code = planted_code(3)
    parts = chunks(animated())
    frame = next(p for f, p in parts if f == b"ANMF")  # 20x12, the whole canvas
    for x, y in ((1, 0), (0, 1), (500, 500)):  # offsets are in units of 2 pixels
        offset = x.to_bytes(3, "little") + y.to_bytes(3, "little")
        outside = chunk(b"ANMF", offset + frame[6:] + chunk(b"SECR", code))
        with pytest.raises(DamagedImage, match="outside its canvas"):
            scrub(riff(*(chunk(f, p) for f, p in parts), outside))
    kept = riff(*(chunk(f, p) for f, p in parts), chunk(b"ANMF", frame))
    assert scrub(kept).data.count(b"ANMF") == 4
