"""The scrubber's registry and verify: formats recognised by their own `accepts`, refusals that
list the registry, and every corpus photo's colour profile rebuilt with the same colours."""

import io
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image

from bot import scrub, texts
from bot.errors import ScrubError, UnsupportedFormat
from bot.formats import icc
from bot.formats.base import SNIFF_BYTES, BlockKind
from tests.conftest import PHOTO_FOLDERS, corpus_params
from tests.test_icc import assert_same_colours

pillow_heif.register_heif_opener()

FOLDER_FORMATS = {
    "jpeg": {"jpeg"},
    "png": {"png"},
    "webp": {"webp"},
    "gif": {"gif"},
    "tiff": {"tiff"},
    "heic": {"heif", "avif"},
}


@pytest.mark.parametrize("path", corpus_params(*PHOTO_FOLDERS))
def test_exactly_one_format_accepts_each_photo(path: Path) -> None:
    head = path.read_bytes()[:SNIFF_BYTES]
    accepting = [fmt.name for fmt in scrub.FORMATS.values() if fmt.accepts(head)]
    expected = FOLDER_FORMATS[path.parent.name]
    if path.name == "normalphoto.jpg":  # a PNG under a JPEG name: the bytes decide
        expected = {"png"}
    assert len(accepting) == 1
    assert set(accepting) <= expected
    assert scrub.sniff(path.read_bytes()).name == accepting[0]


@pytest.mark.parametrize("name", list(scrub.FORMATS))
def test_every_registered_format_recognises_its_own_files_only(name: str) -> None:
    out = io.BytesIO()
    saved_as = {"jpeg": "JPEG", "heif": "HEIF", "avif": "AVIF"}.get(name, name.upper())
    Image.new("RGB", (16, 16), "teal").save(out, saved_as)
    head = out.getvalue()[:SNIFF_BYTES]
    assert [fmt.name for fmt in scrub.FORMATS.values() if fmt.accepts(head)] == [name]
    assert not scrub.FORMATS[name].accepts(b"")


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (b"%PDF-1.7", "A PDF document"),
        (b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom", None),
        (b"just some text", "This file"),
    ],
)
def test_other_files_are_refused_naming_what_they_are(head: bytes, what: str | None) -> None:
    with pytest.raises(UnsupportedFormat) as refused:
        scrub.sniff(head + bytes(64))
    if what:
        assert refused.value.what == what


@pytest.mark.parametrize("language", ["en", "de"])
def test_the_refusal_lists_the_registry(language: str) -> None:
    text = texts.refusal(UnsupportedFormat("This file"), language)
    shown = scrub.supported()
    assert shown == ("JPEG", "PNG", "WebP", "GIF", "TIFF", "HEIC", "AVIF")
    positions = [text.index(name) for name in shown]
    assert positions == sorted(positions)


def _profiles(data: bytes) -> list[bytes]:
    parsed = scrub.inspect(data).parsed
    return [block.data for block in parsed.blocks if block.kind is BlockKind.ICC and block.data]


@pytest.mark.parametrize("path", corpus_params(*PHOTO_FOLDERS))
def test_corpus_photos_keep_their_colours(path: Path) -> None:
    data = path.read_bytes()
    try:
        before = _profiles(data)
        result = scrub.scrub(data)
    except ScrubError:
        pytest.skip("refused: other tests say whether it should be")
    after = _profiles(result.data)
    assert len(after) <= len(before)
    for original, kept in zip(before, after, strict=False):
        assert icc.is_canonical(kept)
        assert kept == icc.clean(original)
        assert_same_colours(original, kept)
    if before and after and path.parent.name != "gif":
        with Image.open(io.BytesIO(result.data)) as image:
            assert image.info.get("icc_profile") == after[0]
