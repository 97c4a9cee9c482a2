"""bot.cli_files: a copy is written whole or not at all, by either of its two ways (an unnamed
O_TMPFILE file linked in when complete, or a hidden temporary name where the kernel has none)."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot import cli_files
from bot.cli_files import Source, plan
from bot.cli_text import Messages

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["unnamed", "named"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs both ways; "named" is what a file system without O_TMPFILE gets."""
    if request.param == "named":
        monkeypatch.setattr(cli_files, "_open_unnamed", lambda folder: None)
    return str(request.param)


def test_a_new_file_is_written_whole(tmp_path: Path, way: str) -> None:
    target = tmp_path / "a.jpg"
    cli_files.write_atomically(str(target), b"photo" * 1000, replace=False)
    assert target.read_bytes() == b"photo" * 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg"]


def test_an_existing_file_is_kept_unless_replace(tmp_path: Path, way: str) -> None:
    target = tmp_path / "a.jpg"
    target.write_bytes(b"theirs")
    with pytest.raises(FileExistsError):
        cli_files.write_atomically(str(target), b"ours", replace=False)
    assert target.read_bytes() == b"theirs"
    cli_files.write_atomically(str(target), b"ours", replace=True)
    assert target.read_bytes() == b"ours"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg"]


def test_keep_mode_gives_the_copy_the_originals_permissions(tmp_path: Path, way: str) -> None:
    target = tmp_path / "a.jpg"
    target.write_bytes(b"original")
    target.chmod(0o600)
    cli_files.write_atomically(str(target), b"clean", replace=True, keep_mode=True)
    assert target.read_bytes() == b"clean"
    assert target.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left"), KeyboardInterrupt()])
def test_a_failed_write_leaves_nothing(
    tmp_path: Path, way: str, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    real_write = os.write

    def half_then_fail(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise failure

    monkeypatch.setattr(cli_files.os, "write", half_then_fail)
    target = tmp_path / "a.jpg"
    with pytest.raises(type(failure)):
        cli_files.write_atomically(str(target), b"x" * 100_000, replace=False)
    assert list(tmp_path.iterdir()) == []
    assert set() == cli_files.TEMPORARY


def test_an_existing_file_stays_whole_when_its_replacement_fails(
    tmp_path: Path, way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "a.jpg"
    target.write_bytes(b"the only copy")

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cli_files.os, "write", full)
    with pytest.raises(OSError, match="No space"):
        cli_files.write_atomically(str(target), b"clean", replace=True)
    assert target.read_bytes() == b"the only copy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg"]


def test_kill_9_in_the_middle_of_a_batch_leaves_no_file_behind(tmp_path: Path) -> None:
    """The unnamed file dies with the process: not even SIGKILL leaves a partial copy."""
    from tests.test_cli_trust import cleaned, photo

    source, out = tmp_path / "photos", tmp_path / "out"
    source.mkdir()
    out.mkdir()
    big = photo(0, (3000, 2000))
    for n in range(100):
        (source / f"p{n:02}.jpg").write_bytes(big)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "clean", "-r", str(source), "-d", str(out)],
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 60
    while not any(out.rglob("*.jpg")) and time.monotonic() < deadline:
        time.sleep(0.002)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    written = list((out / "photos").iterdir())
    assert 0 < len(written) < 100
    expected = cleaned(big)
    for path in written:
        assert path.read_bytes() == expected, path.name


def test_plan_never_targets_an_input_and_numbers_collisions(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "x.jpg").write_bytes(b"photo")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x-1.jpg").write_bytes(b"someone's file")
    found = [Source(str(tmp_path / f / "x.jpg"), "x.jpg") for f in ("a", "b", "a")]
    jobs = plan(
        found,
        output=None,
        out_dir=str(tmp_path / "out"),
        in_place=False,
        overwrite=False,
        messages=Messages("en"),
    )
    assert [Path(j.target).name for j in jobs] == ["x.jpg", "x-2.jpg", "x-3.jpg"]
    assert [bool(j.note) for j in jobs] == [False, True, True]
    onto_input = plan(
        found[:1],
        output=None,
        out_dir=str(tmp_path / "a"),
        in_place=False,
        overwrite=True,
        messages=Messages("en"),
    )
    assert onto_input[0].target == ""
    assert "is one of the photos being cleaned" in onto_input[0].problem


def test_in_place_cleans_a_file_named_twice_once(tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"photo")
    os.link(photo, tmp_path / "same.jpg")
    found = [Source(str(photo), "a.jpg"), Source(str(tmp_path / "same.jpg"), "same.jpg")]
    jobs = plan(
        found, output=None, out_dir=None, in_place=True, overwrite=False, messages=Messages("en")
    )
    assert [j.target for j in jobs] == [str(photo)]
