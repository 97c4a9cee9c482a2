"""Colour profiles through the whole scrub, in every format that carries one.

Each file is made here with a profile full of planted codes (header fields, description,
copyright, device texts, a private tag, bytes between tags); the output is judged by its raw
bytes (ASCII and UTF-16, and inside every deflate stream), by Pillow (pixels, the embedded
profile) and by littleCMS (colours).
"""

import io
import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image

from bot import scrub
from bot.errors import NotClean
from bot.findings import Kind
from bot.formats import icc
from bot.formats.base import Block, BlockKind
from tests.judge import leftovers
from tests.test_icc import _codes, _matrix_tags, _profile, _text, assert_same_colours

pillow_heif.register_heif_opener()


def _hostile(seed: int) -> tuple[bytes, list[bytes]]:
    """A working RGB profile whose every hiding place holds a random code."""
    codes = _codes(seed, 12)
    tags = [
        *_matrix_tags(codes),
        (b"desc", _text(b"mluc", b"Profile of " + codes[4])),
        (b"cprt", _text(b"mluc", codes[5])),
        (b"dmnd", _text(b"mluc", codes[6])),
        (b"dmdd", _text(b"mluc", codes[7])),
        (b"Priv", b"Priv\0\0\0\0" + codes[8] * 4),
    ]
    header = {4: codes[9][:4], 48: codes[9][4:] + codes[10][:4], 80: codes[10][4:], 100: codes[11]}
    return _profile(tags, header_codes=header, gap=codes[0], tail=codes[1]), codes


def _picture() -> Image.Image:
    rng = random.Random(3)
    return Image.frombytes("RGB", (48, 32), bytes(rng.randrange(256) for _ in range(48 * 32 * 3)))


def _saved(kind: str, profile: bytes) -> bytes:
    out = io.BytesIO()
    options: dict[str, object] = {"icc_profile": profile}
    if kind == "JPEG":
        options["quality"] = 95
    if kind == "WEBP":
        options["lossless"] = True
    _picture().save(out, kind, **options)
    return out.getvalue()


def _gif(profile: bytes) -> bytes:
    """A GIF with the ICCRGBG1012 application extension right after its colour table."""
    out = io.BytesIO()
    _picture().convert("P").save(out, "GIF")
    data = out.getvalue()
    table = 3 * 2 ** ((data[10] & 7) + 1) if data[10] & 0x80 else 0
    start = 13 + table
    blocks = b"".join(
        bytes([len(profile[i : i + 255])]) + profile[i : i + 255]
        for i in range(0, len(profile), 255)
    )
    extension = b"\x21\xff\x0bICCRGBG1012" + blocks + b"\0"
    return data[:start] + extension + data[start:]


MAKERS: dict[str, Callable[[bytes], bytes]] = {
    "jpeg": lambda p: _saved("JPEG", p),
    "png": lambda p: _saved("PNG", p),
    "webp": lambda p: _saved("WEBP", p),
    "tiff": lambda p: _saved("TIFF", p),
    "gif": _gif,
    "heif": lambda p: _saved("HEIF", p),
    "avif": lambda p: _saved("AVIF", p),
}


def _inflated(data: bytes) -> bytes:
    """Every zlib stream in `data`, inflated (a code must not hide in a compressed chunk)."""
    out = bytearray()
    for pos in range(len(data) - 1):
        if data[pos] == 0x78 and data[pos + 1] in (0x01, 0x5E, 0x9C, 0xDA):
            try:
                out += zlib.decompressobj().decompress(data[pos:], 1 << 20)
            except zlib.error:
                continue
    return bytes(out)


def _absent(codes: list[bytes], data: bytes) -> None:
    haystack = data + _inflated(data)
    for code in codes:
        for piece in (code, code[:4], code[4:]):
            assert piece not in haystack
            assert piece.decode().encode("utf-16-be") not in haystack


def _pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").tobytes()


def _embedded(data: bytes) -> bytes | None:
    with Image.open(io.BytesIO(data)) as image:
        found = image.info.get("icc_profile")
    return bytes(found) if found else None


@pytest.mark.parametrize("kind", list(MAKERS))
def test_every_format_keeps_the_colours_and_loses_the_codes(kind: str, tmp_path: Path) -> None:
    profile, codes = _hostile(len(kind))
    original = MAKERS[kind](profile)
    assert codes[8] in original or codes[8] in _inflated(original)  # the code went in
    result = scrub.scrub(original)
    assert result.format.name == kind
    named = {f.value for f in result.findings if f.key == "colour_profile"}
    assert named == {"Profile of " + codes[4].decode(), *(c.decode() for c in codes[5:8])}
    assert all(f.kind is Kind.DESCRIPTION for f in result.findings if f.key == "colour_profile")
    cleaned = result.data
    _absent(codes, cleaned)
    if kind != "gif":  # Pillow does not read a GIF's profile
        kept = _embedded(cleaned)
        assert kept == icc.clean(profile)
        assert_same_colours(profile, kept)
    assert _pixels(cleaned) == _pixels(original)
    assert not scrub.inspect(cleaned).findings
    out = tmp_path / f"cleaned.{result.format.extension}"
    out.write_bytes(cleaned)
    assert leftovers(out) == {}


@pytest.mark.parametrize("kind", list(MAKERS))
def test_a_profile_that_holds_nothing_valid_is_dropped(kind: str) -> None:
    junk = bytes(40) + b"acsp" + b"K1234567" * 40  # says ICC_PROFILE / iCCP, holds no profile
    original = MAKERS[kind](junk)
    cleaned = scrub.scrub(original).data
    assert b"K1234567" not in cleaned + _inflated(cleaned)
    assert not [b for b in scrub.inspect(cleaned).parsed.blocks if b.kind is BlockKind.ICC]
    assert _pixels(cleaned) == _pixels(original)
    if kind == "jpeg":
        assert b"ICC_PROFILE" not in cleaned
    if kind == "webp":
        assert not scrub.inspect(cleaned).parsed.blocks
        assert cleaned[20] & 0x20 == 0  # the VP8X ICC flag went with it


def test_png_profile_has_a_neutral_name() -> None:
    profile, _ = _hostile(9)
    cleaned = scrub.scrub(_saved("PNG", profile)).data
    start = cleaned.index(b"iCCP") + 4
    assert cleaned[start : start + 13] == b"ICC Profile\0\0"


def _app2(payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, 0xE2, len(payload) + 2) + payload


def test_jpeg_chunks_out_of_order_come_back_in_canonical_chunks() -> None:
    """A profile over 64 KiB, its chunks stored in reverse order, comes back in order."""
    rng = random.Random(11)
    lut = (
        b"mft2\0\0\0\0"
        + bytes((3, 3, 33, 0))
        + b"".join(struct.pack(">i", v) for v in (65536, 0, 0, 0, 65536, 0, 0, 0, 65536))
    )
    lut += struct.pack(">HH", 2, 2) + struct.pack(">HH", 0, 65535) * 3
    lut += (
        bytes(rng.randrange(40, 200) for _ in range(33**3 * 3 * 2))
        + struct.pack(">HH", 0, 65535) * 3
    )
    profile = _profile(
        [(b"wtpt", _matrix_tags(_codes(1, 4))[0][1][:20]), (b"A2B0", lut)],
        cls=b"scnr",
        pcs=b"Lab ",
    )
    assert len(profile) > 2 * 65519
    pieces = [profile[i : i + 65519] for i in range(0, len(profile), 65519)]
    chunks = [
        _app2(b"ICC_PROFILE\0" + bytes((n, len(pieces))) + p) for n, p in enumerate(pieces, 1)
    ]
    plain = _saved("JPEG", b"")
    original = plain[:2] + b"".join(reversed(chunks)) + plain[2:]
    cleaned = scrub.scrub(original).data
    rebuilt = icc.clean(profile)
    assert rebuilt is not None
    assert _embedded(cleaned) == rebuilt
    assert_same_colours(profile, rebuilt)
    assert cleaned.count(b"ICC_PROFILE\0") == len(pieces)


def test_verify_refuses_a_profile_it_did_not_write() -> None:
    profile, _ = _hostile(5)
    assert not scrub._allowed(Block(BlockKind.ICC, "profile", profile))
    rebuilt = icc.clean(profile)
    assert rebuilt is not None
    assert scrub._allowed(Block(BlockKind.ICC, "profile", rebuilt))
    for kind in MAKERS:
        with pytest.raises(NotClean):
            scrub.verify(scrub.sniff(MAKERS[kind](profile)), MAKERS[kind](profile))
