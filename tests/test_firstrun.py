"""`scrubbot run` on a fresh clone: setup steps and a cleaned sample, no file written, exit 0."""

import subprocess
import sys
from pathlib import Path

import pytest

from bot.findings import Kind
from bot.firstrun import SAMPLE_FBMD, SAMPLE_SERIAL, nothing_configured, sample_photo
from bot.scrub import inspect, scrub
from tests.judge import exiftool_tags, leftovers

ROOT = Path(__file__).resolve().parents[1]


def scrubbot_run(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
        check=False,
        timeout=60,
    )


def test_a_fresh_clone_shows_the_setup_and_a_cleaned_sample(tmp_path: Path) -> None:
    result = scrubbot_run(tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for step in ("@BotFather", "cp .env.example .env", "TELEGRAM_BOT_TOKEN", "make run"):
        assert step in out
    for setting in ("MATRIX_HOMESERVER", "MATRIX_USER_ID", "MATRIX_PASSWORD"):
        assert setting in out
    # the reply a parent would get, with the values found in the sample
    assert "Kreuzberg, Berlin" in out
    assert "Facebook download code (FBMD" in out
    assert SAMPLE_SERIAL in out
    assert "2 May 2025" in out
    assert "nothing is left" in out
    assert result.stderr == ""
    assert list(tmp_path.iterdir()) == []  # no file written, no data folder made


def test_the_sample_summary_follows_the_terminal_language(tmp_path: Path) -> None:
    result = scrubbot_run(tmp_path, LANG="de_DE.UTF-8")
    assert result.returncode == 0, result.stderr
    assert "Seriennummer" in result.stdout
    assert "@BotFather" in result.stdout  # the setup steps are for the operator, in English


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SCRUBBOT_DATA_DIR": "data"}, "TELEGRAM_BOT_TOKEN"),
        ({"TELEGRAM_BOT_TOKEN": "123456789:replace-with-the-token-from-botfather"}, "TOKEN"),
        ({"MATRIX_HOMESERVER": "matrix.org"}, "MATRIX_HOMESERVER"),
    ],
)
def test_anything_configured_is_not_a_first_run(
    tmp_path: Path, env: dict[str, str], named: str
) -> None:
    result = scrubbot_run(tmp_path, **env)
    assert result.returncode == 2
    assert named in result.stderr
    assert "BotFather)" not in result.stdout


def test_an_env_file_is_not_a_first_run(tmp_path: Path) -> None:
    """A .env that `make run` would have read, but `scrubbot run` was started without it."""
    (tmp_path / ".env").write_text("# TELEGRAM_BOT_TOKEN=\n")
    result = scrubbot_run(tmp_path)
    assert result.returncode == 2
    assert "TELEGRAM_BOT_TOKEN" in result.stderr


def test_nothing_configured(tmp_path: Path) -> None:
    missing = tmp_path / ".env"
    assert nothing_configured({"HOME": "/root", "LANG": "C"}, missing)
    assert nothing_configured({"TELEGRAM_BOT_TOKEN": "  "}, missing)  # empty counts as unset
    assert not nothing_configured({"TELEGRAM_BOT_TOKEN": "1:a"}, missing)
    assert not nothing_configured({"SCRUBBOT_LOG_FORMAT": "json"}, missing)
    assert not nothing_configured({"MATRIX_USER_ID": "@a:b"}, missing)
    missing.write_text("")
    assert not nothing_configured({}, missing)


def test_the_sample_carries_what_a_shared_phone_photo_carries(
    tmp_path: Path, exiftool: str
) -> None:
    photo = sample_photo()
    kinds = {finding.kind for finding in inspect(photo).findings}
    assert {Kind.LOCATION, Kind.TRACKING, Kind.DEVICE, Kind.TIME, Kind.HIDDEN_PICTURE} <= kinds
    original = tmp_path / "sample.jpg"
    original.write_bytes(photo)
    tags = exiftool_tags(original)  # an independent reader sees the same things
    assert tags["IPTC:SpecialInstructions"] == SAMPLE_FBMD
    assert tags["ExifIFD:SerialNumber"] == SAMPLE_SERIAL
    assert "GPS:GPSLatitude" in tags
    cleaned = tmp_path / "cleaned.jpg"
    cleaned.write_bytes(scrub(photo).data)
    assert leftovers(cleaned) == {}
