"""Shared fixtures: the sample corpus (read in place, never copied) and the ExifTool judge."""

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.judge import EXIFTOOL

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PHOTO_FOLDERS = ("jpeg", "png", "webp", "gif", "tiff", "heic")
REFUSED_OR_CLEANED_FOLDERS = ("malformed", "other")


def corpus_files(*folders: str) -> list[Path]:
    """Corpus files in `folders`, sorted; empty when the corpus is absent."""
    if not CORPUS.is_dir():
        return []
    return sorted(p for folder in folders for p in (CORPUS / folder).glob("*") if p.is_file())


def corpus_params(*folders: str) -> list[object]:
    """Parametrize values for corpus files, or a single skipped param when the corpus is absent."""
    files = corpus_files(*folders)
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason="../shared/corpus is absent"))]
    return [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in files]


@pytest.fixture(scope="session")
def exiftool() -> str:
    if EXIFTOOL is None:
        pytest.fail("exiftool is missing: .ci/run installs libimage-exiftool-perl")
    return EXIFTOOL


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Tests that run `bot.run` (which configures logging) give the root logger back as it was."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
