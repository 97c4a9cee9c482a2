"""The `scrubbot` command as a user runs it: exit codes, messages, and no partial files."""

import io
import json
import subprocess
import sys
from pathlib import Path

import piexif
import pytest
from PIL import Image

from tests.conftest import corpus_files
from tests.judge import leftovers


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=cwd, check=False
    )


@pytest.fixture
def leaky(tmp_path: Path) -> Path:
    """A JPEG with GPS, a camera serial and an owner name."""
    exif = piexif.dump(
        {
            "0th": {piexif.ImageIFD.Make: b"Canon", piexif.ImageIFD.Artist: b"Ada Lovelace"},
            "Exif": {piexif.ExifIFD.BodySerialNumber: b"SN123456789"},
            "GPS": {
                piexif.GPSIFD.GPSLatitudeRef: b"N",
                piexif.GPSIFD.GPSLatitude: ((52, 1), (30, 1), (0, 1)),
                piexif.GPSIFD.GPSLongitudeRef: b"E",
                piexif.GPSIFD.GPSLongitude: ((13, 1), (23, 1), (0, 1)),
            },
        }
    )
    out = io.BytesIO()
    Image.new("RGB", (32, 24), "green").save(out, "JPEG", exif=exif)
    path = tmp_path / "IMG_20250502_081300.jpg"
    path.write_bytes(out.getvalue())
    return path


def test_clean_one_photo_to_output(leaky: Path, tmp_path: Path, exiftool: str) -> None:
    target = tmp_path / "clean.jpg"
    result = run("clean", str(leaky), "--output", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert leftovers(target) == {}
    assert b"SN123456789" not in target.read_bytes()


def test_clean_many_reports_each_refusal_on_one_line(leaky: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(leaky.read_bytes()[:300])
    text = tmp_path / "notes.jpg"
    text.write_text("just text, not a photo")
    result = run("clean", str(leaky), str(broken), str(text), "--out-dir", str(out_dir))
    assert result.returncode == 1
    *lines, summary = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert summary == "1 cleaned, 2 refused"  # a batch ends with its counts
    assert "Traceback" not in result.stderr
    assert lines[0].startswith(f"{broken}: not cleaned:")
    assert "incomplete" in lines[0]
    assert lines[1].startswith(f"{text}: not cleaned:")
    assert "not a photo or video format" in lines[1]
    assert sorted(p.name for p in out_dir.iterdir()) == [leaky.name]  # no partial or temp file


def test_missing_file_is_a_refusal_not_a_crash(tmp_path: Path) -> None:
    result = run("clean", str(tmp_path / "nope.jpg"), "--out-dir", str(tmp_path))
    assert result.returncode == 1
    assert "cannot read it" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("clean",),
        ("clean", "a.jpg"),
        ("clean", "a.jpg", "b.jpg", "--output", "x.jpg"),
        ("clean", "a.jpg", "--out-dir", "/does/not/exist"),
        ("inspect",),
        ("polish", "a.jpg"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    assert run(*args).returncode == 2


def test_limits_come_from_the_environment(leaky: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "clean", str(leaky), "--output", str(tmp_path / "x.jpg")],
        capture_output=True,
        text=True,
        check=False,
        env={"SCRUBBOT_MAX_BYTES": "100", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert "larger than" in result.stderr
    assert not (tmp_path / "x.jpg").exists()


def test_inspect_json_lists_values(leaky: Path) -> None:
    result = run("inspect", "--json", str(leaky))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema_version"] == 1
    (report,) = document["files"]
    assert report["format"] == "jpeg"
    found = {(f["kind"], f["key"]): f["value"] for f in report["findings"]}
    assert found[("device", "serial")] == "SN123456789"
    assert found[("people", "artist")] == "Ada Lovelace"
    assert found[("location", "coordinates")] == {"latitude": 52.5, "longitude": 13.383333}


def test_inspect_prints_the_private_summary(leaky: Path) -> None:
    result = run("inspect", str(leaky), "--lang", "en")
    assert result.returncode == 0
    assert "Place: near Kreuzberg, Berlin, Germany (52.50, 13.38)" in result.stdout
    assert "Camera: Canon, serial number SN123456789" in result.stdout


GERMAN_PLACE = "Ort: in der Nähe von Kreuzberg, Berlin, Deutschland"
ENGLISH_PLACE = "Place: near Kreuzberg, Berlin, Germany"


@pytest.mark.parametrize(
    ("args", "env", "place"),
    [
        (("--lang", "de-AT"), {}, GERMAN_PLACE),
        ((), {"LANG": "de_DE.UTF-8"}, GERMAN_PLACE),
        ((), {"LANG": "de_DE.UTF-8", "LC_ALL": "en_GB.UTF-8"}, ENGLISH_PLACE),
        ((), {}, ENGLISH_PLACE),
    ],
)
def test_inspect_speaks_the_terminals_language_or_lang(
    leaky: Path, args: tuple[str, ...], env: dict[str, str], place: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "inspect", str(leaky), *args],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert result.returncode == 0, result.stderr
    assert place in result.stdout


def test_chat_libraries_are_not_imported_for_cleaning(leaky: Path) -> None:
    code = (
        "import sys; from bot.cli import main; main(['inspect', sys.argv[1]]);"
        "heavy = [m for m in ('telegram', 'nio', 'aiosqlite') if m in sys.modules];"
        "print('heavy:', heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(leaky)], capture_output=True, text=True, check=True
    )
    assert "heavy: []" in result.stdout


@pytest.mark.skipif(not corpus_files("other"), reason="../shared/corpus is absent")
def test_other_and_malformed_corpus_files_get_one_line_each(tmp_path: Path) -> None:
    """Every odd file is cleaned or refused with one plain line, never a traceback."""
    files = corpus_files("other", "malformed")
    result = run("clean", *map(str, files), "--out-dir", str(tmp_path))
    *lines, summary = result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    refused = {line.split(": not cleaned: ")[0] for line in lines}
    assert len(lines) == len(refused)  # one line per refused file
    cleaned = {p.name for p in tmp_path.iterdir()}
    for path in files:
        assert (str(path) in refused) != (path.name in cleaned), path.name
    assert summary == f"{len(cleaned)} cleaned, {len(refused)} refused"
    assert result.returncode == (1 if refused else 0)
