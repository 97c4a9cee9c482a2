"""`scrubbot clean` with a user's only copy: nothing overwritten unless asked, nothing lost on a
name collision, Ctrl-C or a full disk, and the conventions of the field (`-`, --version, -r,
progress, counts, --quiet, the terminal's language, broken pipes). Each test runs the real
command in a subprocess; ExifTool judges what was written."""

import io
import os
import pty
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import piexif
import pytest
from PIL import Image

from bot.scrub import scrub
from tests.judge import leftovers

ROOT = Path(__file__).resolve().parents[1]


def open_terminal() -> tuple[int, int]:
    """A pseudo-terminal, or a skip where the machine has none (a chroot without /dev/pts)."""
    try:
        return pty.openpty()
    except OSError as error:
        pytest.skip(f"no pseudo-terminal: {error}")


def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        input=stdin,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **(env or {})},
        check=False,
        timeout=120,
    )


def photo(seed: int = 0, size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG with an owner name, a serial number and GPS; `seed` makes the pixels differ."""
    exif = piexif.dump(
        {
            "0th": {piexif.ImageIFD.Artist: b"Ada Lovelace", piexif.ImageIFD.Make: b"Canon"},
            "Exif": {
                piexif.ExifIFD.BodySerialNumber: b"SN123456789",
                piexif.ExifIFD.ExposureProgram: 2,
                piexif.ExifIFD.DateTimeOriginal: b"2025:05:02 08:13:27",
            },
            "GPS": {
                piexif.GPSIFD.GPSLatitudeRef: b"N",
                piexif.GPSIFD.GPSLatitude: ((52, 1), (30, 1), (0, 1)),
                piexif.GPSIFD.GPSLongitudeRef: b"E",
                piexif.GPSIFD.GPSLongitude: ((13, 1), (23, 1), (0, 1)),
            },
        }
    )
    out = io.BytesIO()
    Image.effect_noise(size, 40 + seed).convert("RGB").save(out, "JPEG", exif=exif)
    return out.getvalue()


def cleaned(data: bytes) -> bytes:
    return scrub(data).data


def hidden(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*")]


def err(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stderr.decode()


# Never lose a file


def test_clean_into_the_inputs_own_folder_does_not_overwrite_it(tmp_path: Path) -> None:
    original = photo()
    (tmp_path / "g.jpg").write_bytes(original)
    result = run("clean", "g.jpg", "-d", ".", cwd=tmp_path)
    assert result.returncode == 1
    assert err(result).strip() == (
        "g.jpg: not cleaned: ./g.jpg is one of the photos being cleaned"
        " (--in-place replaces them)."
    )
    assert (tmp_path / "g.jpg").read_bytes() == original
    # --overwrite is about other files: it never makes an input a target
    assert run("clean", "g.jpg", "-d", ".", "--overwrite", cwd=tmp_path).returncode == 1
    assert run("clean", "g.jpg", "-o", "g.jpg", "--overwrite", cwd=tmp_path).returncode == 1
    assert (tmp_path / "g.jpg").read_bytes() == original


def test_an_existing_output_is_kept_unless_overwrite(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jpg", tmp_path / "out.jpg"
    source.write_bytes(photo())
    target.write_bytes(b"someone's other file")
    result = run("clean", str(source), "-o", str(target))
    assert result.returncode == 1
    assert "already exists (--overwrite replaces it)" in err(result)
    assert target.read_bytes() == b"someone's other file"
    result = run("clean", str(source), "-o", str(target), "--overwrite")
    assert result.returncode == 0, err(result)
    assert target.read_bytes() == cleaned(source.read_bytes())
    assert hidden(tmp_path) == []


def test_same_names_into_one_folder_get_distinct_names_and_are_reported(tmp_path: Path) -> None:
    for n, folder in enumerate(("a", "b", "c")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "IMG_0001.jpg").write_bytes(photo(n))
    (tmp_path / "out").mkdir()
    names = [f"{folder}/IMG_0001.jpg" for folder in ("a", "b", "c")]
    result = run("clean", *names, "-d", "out", cwd=tmp_path)
    assert result.returncode == 0, err(result)
    assert err(result).splitlines() == [
        "b/IMG_0001.jpg: written as out/IMG_0001-1.jpg, another photo has its name",
        "c/IMG_0001.jpg: written as out/IMG_0001-2.jpg, another photo has its name",
        "3 cleaned, 0 refused",
    ]
    for name, written in zip(names, ("IMG_0001", "IMG_0001-1", "IMG_0001-2"), strict=True):
        copy = tmp_path / "out" / f"{written}.jpg"
        assert copy.read_bytes() == cleaned((tmp_path / name).read_bytes())


def test_in_place_replaces_each_input_with_its_verified_copy(tmp_path: Path) -> None:
    good, broken = tmp_path / "good.jpg", tmp_path / "broken.jpg"
    good.write_bytes(photo())
    good.chmod(0o640)
    broken.write_bytes(photo()[:400])
    before_broken = broken.read_bytes()
    expected = cleaned(good.read_bytes())
    result = run("clean", str(good), str(broken), "--in-place")
    assert result.returncode == 1
    assert f"{broken}: not cleaned:" in err(result)
    assert good.read_bytes() == expected
    assert leftovers(good) == {}
    assert good.stat().st_mode & 0o777 == 0o640  # the photo keeps its permissions
    assert broken.read_bytes() == before_broken  # a refused photo is left as it was
    assert hidden(tmp_path) == []


def _interrupt_when_written(command: list[str], out: Path) -> tuple[int, str]:
    """Start `command`, press Ctrl-C (SIGINT to its process group) once it has written a file."""
    process = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 60
    while not any(out.rglob("*.jpg")) and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr.decode()


def test_ctrl_c_leaves_no_temporary_or_partial_file_and_exits_130(tmp_path: Path) -> None:
    source = tmp_path / "photos"
    source.mkdir()
    big = photo(0, (3000, 2000))
    for n in range(60):
        (source / f"p{n:02}.jpg").write_bytes(big)
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, "-m", "bot", "clean", "-r", str(source), "-d", str(out)]
    code, stderr = _interrupt_when_written(command, out)
    assert code == 130
    assert stderr.strip().splitlines()[-1] == (
        "Interrupted: no partial or temporary file was left behind."
    )
    assert "Traceback" not in stderr
    written = list((out / "photos").iterdir())
    assert 0 < len(written) < 60  # interrupted in the middle
    expected = cleaned(big)
    for path in written:
        assert not path.name.startswith("."), path.name
        assert path.read_bytes() == expected, path.name  # complete, or not there at all


def test_ctrl_c_during_in_place_keeps_every_original_or_its_whole_copy(tmp_path: Path) -> None:
    big = photo(0, (3000, 2000))
    for n in range(100):  # enough that the batch is still running when Ctrl-C comes
        (tmp_path / f"p{n:02}.jpg").write_bytes(big)
    command = [sys.executable, "-m", "bot", "clean", "--in-place", "-r", str(tmp_path)]
    process = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    expected = cleaned(big)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(p.stat().st_size == len(expected) for p in tmp_path.glob("*.jpg")):
            break
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    contents = [p.read_bytes() for p in sorted(tmp_path.iterdir())]
    assert len(contents) == 100  # no temporary file beside them
    assert all(data in (big, expected) for data in contents)
    assert expected in contents


def test_a_full_disk_is_one_line_per_photo_and_leaves_no_partial_file(tmp_path: Path) -> None:
    names = []
    for n in range(3):
        (tmp_path / f"p{n}.jpg").write_bytes(photo(n, (400, 300)))
        names.append(f"p{n}.jpg")
    (tmp_path / "out").mkdir()

    def small_disk() -> None:  # writes past 2 kB fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    result = subprocess.run(
        [sys.executable, "-m", "bot", "clean", *names, "-d", "out"],
        capture_output=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        preexec_fn=small_disk,
        check=False,
    )
    assert result.returncode == 1
    *lines, summary = err(result).splitlines()
    assert [line.split(": ")[0] for line in lines] == names
    assert all("cannot write out/" in line and "File too large" in line for line in lines)
    assert summary == "0 cleaned, 3 refused"
    assert list((tmp_path / "out").iterdir()) == []


def test_an_unwritable_place_is_one_line_per_photo(tmp_path: Path) -> None:
    tree = tmp_path / "Holiday"
    (tree / "beach").mkdir(parents=True)
    (tree / "top.jpg").write_bytes(photo(0))
    (tree / "beach" / "a.jpg").write_bytes(photo(1))
    (tree / "beach" / "b.jpg").write_bytes(photo(2))
    out = tmp_path / "out"
    (out / "Holiday").mkdir(parents=True)
    (out / "Holiday" / "beach").write_text("a file where the folder should go")
    result = run("clean", "-r", "Holiday", "-d", "out", cwd=tmp_path)
    assert result.returncode == 1
    lines = err(result).splitlines()
    assert lines[:2] == [
        f"Holiday/beach/{name}: not cleaned: cannot write out/Holiday/beach/{name}"
        " (Not a directory)."
        for name in ("a.jpg", "b.jpg")
    ]
    assert lines[2:] == ["1 cleaned, 2 refused"]
    assert "Traceback" not in err(result)


# The conventions of the field


def test_dash_reads_standard_input_and_writes_standard_output(tmp_path: Path) -> None:
    original = photo()
    result = run("clean", "-", "-o", "-", stdin=original, cwd=tmp_path)
    assert result.returncode == 0, err(result)
    assert result.stdout == cleaned(original)
    assert list(tmp_path.iterdir()) == []  # no file named "-"
    (tmp_path / "in.jpg").write_bytes(original)
    result = run("clean", "in.jpg", "-o", "-", cwd=tmp_path)
    assert result.stdout == cleaned(original)
    result = run("inspect", "--json", "-", stdin=original)
    assert b'"file": "-"' in result.stdout


def test_a_photo_is_not_printed_on_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(photo())
    primary, secondary = open_terminal()
    result = subprocess.run(
        [sys.executable, "-m", "bot", "clean", "a.jpg", "-o", "-"],
        cwd=tmp_path,
        stdout=secondary,
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        check=False,
    )
    os.close(secondary)
    os.close(primary)
    assert result.returncode == 2
    assert b"redirect it" in result.stderr


def test_dash_without_an_output_is_a_usage_error() -> None:
    result = run("clean", "-", "-d", ".", stdin=photo())
    assert result.returncode == 2
    assert "standard input" in err(result)


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.decode().startswith("scrubbot 0.")


def test_help_shows_examples_and_exit_codes() -> None:
    text = run("clean", "--help").stdout.decode()
    assert "scrubbot clean -r Holiday/ -d cleaned/" in text
    assert "130  interrupted" in text


def test_a_folder_needs_r_and_keeps_its_layout(tmp_path: Path) -> None:
    tree = tmp_path / "Holiday"
    (tree / "beach" / "day 2").mkdir(parents=True)
    files = {"top.jpg": photo(0), "beach/a.jpg": photo(1), "beach/day 2/a.jpg": photo(2)}
    for name, data in files.items():
        (tree / name).write_bytes(data)
    (tmp_path / "out").mkdir()
    result = run("clean", "Holiday", "-d", "out", cwd=tmp_path)
    assert result.returncode == 1
    assert err(result) == "Holiday: not cleaned: it is a folder (-r cleans folders).\n"
    result = run("clean", "-r", "Holiday", "-d", "out", cwd=tmp_path)
    assert result.returncode == 0, err(result)
    assert err(result) == "3 cleaned, 0 refused\n"
    copies = {
        str(p.relative_to(tmp_path / "out" / "Holiday")): p.read_bytes()
        for p in (tmp_path / "out").rglob("*.jpg")
    }
    assert copies == {name: cleaned(data) for name, data in files.items()}


def test_recursion_skips_an_output_folder_inside_the_input(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(photo())
    (tmp_path / "clean").mkdir()
    result = run("clean", "-r", ".", "-d", "clean", cwd=tmp_path)
    assert result.returncode == 0, err(result)
    assert [p.name for p in (tmp_path / "clean").rglob("*.jpg")] == ["a.jpg"]


def test_progress_on_a_terminal_and_quiet(tmp_path: Path) -> None:
    names = []
    for n in range(3):
        (tmp_path / f"p{n}.jpg").write_bytes(photo(n))
        names.append(f"p{n}.jpg")
    (tmp_path / "out").mkdir()
    primary, secondary = open_terminal()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "clean", *names, "-d", "out"],
        cwd=tmp_path,
        stderr=secondary,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        seen += chunk
    os.close(primary)
    assert process.wait(timeout=60) == 0
    text = seen.decode()
    assert "\r3/3: 3 cleaned, 0 refused" in text  # the counting line, redrawn in place
    assert text.endswith("3 cleaned, 0 refused\r\n")
    result = run("clean", *names, "-d", "out", "--overwrite", "--quiet", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stderr == b""
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    result = run("clean", "broken.jpg", *names, "-d", "out", "--overwrite", "-q", cwd=tmp_path)
    assert result.returncode == 1
    assert err(result).startswith("broken.jpg: not cleaned:")
    assert len(err(result).splitlines()) == 1  # the refusal only, no counts


def test_messages_follow_the_terminals_language(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("not a photo")
    (tmp_path / "a.jpg").write_bytes(photo())
    (tmp_path / "out").mkdir()
    german = {"LANG": "de_DE.UTF-8"}
    result = run("clean", "notes.jpg", "a.jpg", "-d", "out", cwd=tmp_path, env=german)
    assert result.returncode == 1
    assert err(result).splitlines() == [
        "notes.jpg: nicht bereinigt: es ist kein Foto- oder Videoformat, das ich bereinigen kann.",
        "1 bereinigt, 1 abgelehnt",
    ]
    result = run("inspect", "a.jpg", cwd=tmp_path, env=german)
    assert "Beim Bereinigen würde alles davon entfernt." in result.stdout.decode()


def test_inspect_says_what_cleaning_would_remove(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(photo())
    text = run("inspect", "a.jpg", "--lang", "en", cwd=tmp_path).stdout.decode()
    assert "Cleaning it would remove all of it." in text
    assert "I removed" not in text  # inspect writes nothing


def test_inspect_json_has_a_schema_version_and_normalised_values(tmp_path: Path) -> None:
    import json

    (tmp_path / "a.jpg").write_bytes(photo())
    (tmp_path / "b.txt").write_text("text")
    result = run("inspect", "--json", "a.jpg", "b.txt", cwd=tmp_path)
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["schema_version"] == 1
    first, second = document["files"]
    refused = "This file is not a photo or video format I can clean."
    assert second == {"file": "b.txt", "error": refused}
    values = {f["key"]: f["value"] for f in first["findings"]}
    assert values["ExposureProgram"] == 2  # a number, not "2"
    assert values["taken"] == "2025-05-02T08:13:27"
    assert values["coordinates"] == {"latitude": 52.5, "longitude": 13.383333}
    assert values["serial"] == "SN123456789"
    assert first["kinds"] == ["location", "people", "device", "time", "other"]
    assert {f["kind"] for f in first["findings"]} == set(first["kinds"])


def test_a_broken_pipe_ends_quietly(tmp_path: Path) -> None:
    names = []
    data = photo()
    for n in range(300):  # far more JSON than a pipe holds
        (tmp_path / f"p{n}.jpg").write_bytes(data)
        names.append(f"p{n}.jpg")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "inspect", "--json", *names],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.read(10)  # like `| head -c 10`
    process.stdout.close()
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=60) == 141
    assert stderr == b""


def _python(code: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """`code` run by a fresh interpreter in `folder`, on this checkout, with a bare environment."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=folder,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


def test_cleaning_imports_neither_places_nor_babel(tmp_path: Path) -> None:
    """Start-up is most of a short run: cleaning JPEGs loads no other format's code, no
    findings readers and no OpenSSL (a profile ID is only computed for a profile)."""
    (tmp_path / "a.jpg").write_bytes(photo())
    (tmp_path / "out").mkdir()
    code = (
        "import sys; from bot.cli import main; main(['clean', 'a.jpg', '-d', 'out']);"
        "print(sorted(m for m in ('numpy', 'babel', 'bot.places', 'bot.summary', 'telegram',"
        " 'nio', 'aiosqlite', 'multiprocessing', 'bot.formats.heif', 'bot.formats.mp4',"
        " 'bot.formats.png', 'bot.formats.tiff', 'bot.metadata.readers', 'hashlib',"
        " 'hyperscan')"
        " if m in sys.modules))"
    )
    result = _python(code, tmp_path)
    assert result.stdout.strip() == "[]"


def test_a_big_video_does_not_load_the_simd_scanner(tmp_path: Path) -> None:
    """Hyperscan scans JPEG picture data only: a batch big by its videos does not load it."""
    pytest.importorskip("hyperscan", reason="Hyperscan is installed on x86-64 only")
    (tmp_path / "a.jpg").write_bytes(photo())
    (tmp_path / "b.mp4").write_bytes(b"\0\0\0\x18ftypisom" + bytes(4096))  # refused: no movie
    (tmp_path / "out").mkdir()
    code = (
        "import os, sys; from bot import cli; from bot.formats import jpeg_scan;"
        "cli.SIMD_BATCH_BYTES = os.path.getsize('a.jpg') + 1;"
        "cli.main(['clean', 'a.jpg', 'b.mp4', '-d', 'out', '-q']);"
        "print('hyperscan' in sys.modules, jpeg_scan._allowed)"
    )
    result = _python(code, tmp_path)
    assert result.stdout.split() == ["False", "False"], result.stderr
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["a.jpg"]


def test_a_big_batch_loads_the_simd_scanner_before_its_workers_fork(tmp_path: Path) -> None:
    pytest.importorskip("hyperscan", reason="Hyperscan is installed on x86-64 only")
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(photo())
    (tmp_path / "out").mkdir()
    code = (
        "import os, sys; from bot import cli; from bot.formats import jpeg_scan;"
        "cli.SIMD_BATCH_BYTES = sum(os.path.getsize(n) for n in ('a.jpg', 'b.jpg', 'c.jpg'));"
        "cli.main(['clean', 'a.jpg', 'b.jpg', 'c.jpg', '-d', 'out', '-q']);"
        "print('hyperscan' in sys.modules, jpeg_scan._database is not None, jpeg_scan._allowed)"
    )
    result = _python(code, tmp_path)
    assert result.stdout.split() == ["True", "True", "True"], result.stderr
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        "a.jpg",
        "b.jpg",
        "c.jpg",
    ]


@pytest.mark.parametrize(("workers", "count"), [(1, 25), (2, 25), (3, 25), (2, 2), (3, 4)])
def test_every_photo_is_reported_in_order_whatever_the_workers(workers: int, count: int) -> None:
    from bot import cli_batch

    seen: list[tuple[int, cli_batch.Result]] = []
    jobs = list(range(count))

    def work(job: int) -> cli_batch.Result:
        return job % 4 != 0, f"job {job} in {os.getpid()}"

    cli_batch.run(jobs, work, lambda i, r: seen.append((i, r)), workers, (False, "lost"))
    assert [i for i, _ in seen] == jobs
    assert [done for _, (done, _) in seen] == [job % 4 != 0 for job in jobs]
    assert all(text.startswith(f"job {i} in ") for i, (_, text) in seen)
    processes = {text.split(" in ")[1] for _, (_, text) in seen}
    assert len(processes) == workers  # the work really was spread
    assert str(os.getpid()) not in processes or workers == 1


def test_sigterm_stops_a_batch_like_ctrl_c_with_status_143(tmp_path: Path) -> None:
    source = tmp_path / "photos"
    source.mkdir()
    big = photo(0, (3000, 2000))
    for n in range(100):
        (source / f"p{n:02}.jpg").write_bytes(big)
    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "clean", "-r", str(source), "-d", str(out)],
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 60
    while not any(out.rglob("*.jpg")) and time.monotonic() < deadline:
        time.sleep(0.002)
    process.terminate()  # SIGTERM to scrubbot alone, as `kill` or `timeout` send it
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143
    assert "Traceback" not in stderr.decode()
    written = sorted((out / "photos").iterdir())
    time.sleep(0.5)  # its workers were stopped too: nothing more appears
    assert sorted((out / "photos").iterdir()) == written
    assert 0 < len(written) < 100
    expected = cleaned(big)
    assert all(p.read_bytes() == expected for p in written)


def test_in_place_says_when_a_hard_link_still_shows_the_original(tmp_path: Path) -> None:
    original = photo()
    (tmp_path / "a.jpg").write_bytes(original)
    os.link(tmp_path / "a.jpg", tmp_path / "backup.jpg")
    result = run("clean", "a.jpg", "--in-place", cwd=tmp_path)
    assert result.returncode == 0, err(result)
    assert err(result) == (
        "a.jpg: cleaned, but another name (a hard link) of this file still shows the original\n"
    )
    assert (tmp_path / "a.jpg").read_bytes() == cleaned(original)
    assert (tmp_path / "backup.jpg").read_bytes() == original


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_in_place_keeps_the_owner(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(photo())
    os.chown(tmp_path / "a.jpg", 4321, 4321)
    result = run("clean", str(tmp_path / "a.jpg"), "--in-place")
    assert result.returncode == 0, err(result)
    info = (tmp_path / "a.jpg").stat()
    assert (info.st_uid, info.st_gid) == (4321, 4321)


def test_a_worker_that_dies_costs_only_its_own_photos() -> None:
    from bot import cli_batch

    seen: dict[int, cli_batch.Result] = {}

    def work(job: int) -> cli_batch.Result:
        if job == 7:
            os._exit(9)  # as if killed, or out of memory
        return True, ""

    cli_batch.run(list(range(20)), work, seen.__setitem__, 2, lambda i: (False, f"photo {i} lost"))
    assert sorted(seen) == list(range(20))
    lost = [i for i, (done, _) in seen.items() if not done]
    assert 7 in lost
    assert len(lost) <= 1 + cli_batch.QUEUED  # at most what that worker held
    assert all(seen[i] == (False, f"photo {i} lost") for i in lost)
