"""Test helpers for the PNG, GIF and WebP tests: decoded frames as Pillow shows them, planted
metadata via ExifTool, and the common checks on a scrubbed file."""

import io
import random
import string
import subprocess
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageOps, ImageSequence

from bot.scrub import inspect, scrub
from tests.conftest import corpus_files
from tests.judge import leftovers


def malformed_params(*signatures: bytes) -> list[object]:
    """Malformed corpus files that start with one of `signatures` (sniffed, not by name)."""
    files = [p for p in corpus_files("malformed") if p.read_bytes()[:12].startswith(signatures)]
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no such corpus file"))]
    return [pytest.param(p, id=p.name) for p in files]


def shown_frames(data: bytes) -> list[tuple[tuple[int, int], bytes]]:
    """Every frame as a viewer shows it: orientation applied, as RGBA (size, pixels)."""
    shown = []
    with Image.open(io.BytesIO(data)) as image:
        for frame in ImageSequence.Iterator(image):
            upright = ImageOps.exif_transpose(frame).convert("RGBA")
            shown.append((upright.size, upright.tobytes()))
    return shown


def orientation(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as image:
        return int(image.getexif().get(0x0112, 1))


def plant(exiftool: str, path: Path, *assignments: str) -> None:
    """Write tags into `path` in place with ExifTool; fails the test when ExifTool fails."""
    subprocess.run(
        [exiftool, "-q", "-overwrite_original", *assignments, str(path)],
        check=True,
        capture_output=True,
    )


def secrets(seed: int) -> dict[str, str]:
    """Random values to plant, so a test cannot pass by matching a fixed string."""
    rng = random.Random(seed)
    word = "".join(rng.choices(string.ascii_letters, k=12))
    return {
        "name": f"Kid{word}",
        "serial": "".join(rng.choices(string.digits, k=10)),
        "fbmd": "FBMD01000a" + "".join(rng.choices("0123456789abcdef", k=40)),
        "comment": f"note{rng.randrange(10**9)}secret",
        "latitude": f"{rng.uniform(1, 80):.5f}",
        "longitude": f"{rng.uniform(1, 170):.5f}",
    }


def assert_clean(data: bytes, tmp_path: Path, name: str) -> bytes:
    """Scrub `data` and check every invariant; returns the cleaned bytes."""
    cleaned = scrub(data).data
    out = tmp_path / name
    out.write_bytes(cleaned)
    assert leftovers(out) == {}
    assert shown_frames(cleaned) == shown_frames(data)
    assert orientation(cleaned) == orientation(data)
    assert inspect(cleaned).findings == ()
    assert scrub(cleaned).data == cleaned
    return cleaned


def planted_code(seed: int) -> bytes:
    """A random identifier to hide in a file; printable ASCII so every encoding can be searched."""
    rng = random.Random(seed)
    return ("ID" + "".join(rng.choices(string.ascii_letters + string.digits, k=14))).encode()


def inflated(data: bytes) -> list[bytes]:
    """The output of every zlib stream that starts somewhere in `data` (bounded per stream)."""
    streams = []
    for at in range(len(data) - 1):
        if data[at] & 0x0F != 8 or ((data[at] << 8) | data[at + 1]) % 31:
            continue
        try:
            text = zlib.decompressobj().decompress(data[at:], 1 << 24)
        except zlib.error:
            continue
        if text:
            streams.append(text)
    return streams


def assert_code_gone(cleaned: bytes, code: bytes, *streams: bytes) -> None:
    """`code` is not in `cleaned` as ASCII or UTF-16, nor inside any zlib stream in it or in
    `streams` (picture data the caller joined, such as a PNG's IDAT run)."""
    text = code.decode("ascii")
    forms = [code, text.encode("utf-16-le"), text.encode("utf-16-be")]
    for where in [cleaned, *inflated(cleaned), *(t for s in streams for t in inflated(s))]:
        for form in forms:
            assert form not in where


def assert_scrubbed_without(data: bytes, code: bytes, tmp_path: Path, name: str) -> bytes:
    """Every invariant of `assert_clean`, and the planted `code` gone from the output."""
    cleaned = assert_clean(data, tmp_path, name)
    assert_code_gone(cleaned, code)
    return cleaned
