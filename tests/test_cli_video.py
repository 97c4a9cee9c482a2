"""`scrubbot clean` on videos: read by ranges, copied by the kernel, checked on disk.

The clips are made here with ffmpeg; memory is the peak RSS of the `scrubbot` child, measured by
a small parent process of its own (so ffmpeg and pytest never count)."""

import errno
import os
import random
import shutil
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import cli, cli_files, cli_video
from bot.errors import NotClean
from bot.formats.base import ALIGN
from bot.scrub import scrub

FFMPEG = shutil.which("ffmpeg")
pytestmark = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is missing: .ci/run installs it")

_PEAK = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-m", "bot", *sys.argv[1:]], check=False)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""


def make_clip(path: Path, seconds: int, size: str = "1280x720", *extra: str) -> Path:
    """An H.264 (lossless, so it is big fast) and AAC clip with a title to remove."""
    subprocess.run(
        [
            str(FFMPEG),
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-qp",
            "0",
            "-c:a",
            "aac",
            "-metadata",
            "title=planted title",
            *extra,
            str(path),
        ],
        check=True,
    )
    return path


def clean_measured(source: Path, target: Path) -> tuple[int, int]:
    """(exit code, peak RSS in bytes) of `scrubbot clean source -o target` as a child."""
    result = subprocess.run(
        [sys.executable, "-c", _PEAK, "clean", str(source), "--output", str(target)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "SCRUBBOT_MAX_BYTES": str(1 << 40)},
    )
    code, peak = result.stdout.split()
    return int(code), int(peak)


@pytest.fixture(scope="module")
def big_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("video") / "big.mp4", 20)


def cleaned_in_little_memory(clip: Path, tmp_path: Path) -> bytes:
    """`clip` cleaned by a whole `scrubbot clean`, whose peak memory over that of cleaning a
    tiny clip stays under an eighth of the clip's size (read whole, the clip alone would add its
    size, and the copy and verify's strip twice more); the clean copy's bytes."""
    small = make_clip(tmp_path / "small.mp4", 1, "64x64")
    code, base = clean_measured(small, tmp_path / "small-clean.mp4")
    assert code == 0
    code, peak = clean_measured(clip, tmp_path / "clean.mp4")
    assert code == 0
    size = clip.stat().st_size
    assert peak - base < size // 8, (peak, base, size)
    return (tmp_path / "clean.mp4").read_bytes()


def test_a_big_clip_is_cleaned_in_little_memory(big_clip: Path, tmp_path: Path) -> None:
    assert big_clip.stat().st_size > 30 * 1024 * 1024
    cleaned = cleaned_in_little_memory(big_clip, tmp_path)
    assert cleaned == scrub(big_clip.read_bytes()).data
    assert b"planted title" not in cleaned


def test_a_big_fragmented_clip_is_cleaned_by_ranges_too(big_clip: Path, tmp_path: Path) -> None:
    """The fragments ('moof') are boxes outside 'mdat': their runs are copied as ranges. A
    fragment per frame (600 here) is the hard case: the kernel maps the cached pages around each
    box read, so unless they are let go as the boxes are read, most of the file gets mapped."""
    fragmented = tmp_path / "fragmented.mp4"
    subprocess.run(
        [
            *(str(FFMPEG), "-v", "error", "-i", str(big_clip), "-c", "copy"),
            *("-movflags", "+empty_moov+frag_every_frame", str(fragmented)),
        ],
        check=True,
    )
    cleaned = cleaned_in_little_memory(fragmented, tmp_path)
    assert b"moof" in cleaned
    assert cleaned == scrub(fragmented.read_bytes()).data
    assert b"planted title" not in cleaned


@pytest.mark.parametrize(
    "movflags",
    ["+faststart", "-faststart", "+frag_keyframe+empty_moov", "+frag_keyframe+default_base_moof"],
)
def test_the_copy_is_the_in_memory_scrub(movflags: str, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mov", 2, "160x120", "-movflags", movflags)
    assert cli.main(["clean", str(clip), "--output", str(tmp_path / "out.mov")]) == 0
    assert (tmp_path / "out.mov").read_bytes() == scrub(clip.read_bytes()).data


def test_without_kernel_copies_the_ranges_are_read_and_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = make_clip(tmp_path / "in.mp4", 2, "160x120")
    calls: list[str] = []

    def refuse(name: str) -> object:
        def call(*args: object) -> int:
            calls.append(name)
            raise OSError(errno.EXDEV if name == "copy_file_range" else errno.EINVAL, name)

        return call

    monkeypatch.setattr(os, "copy_file_range", refuse("copy_file_range"))
    monkeypatch.setattr(os, "sendfile", refuse("sendfile"))
    assert cli.main(["clean", str(clip), "--output", str(tmp_path / "out.mp4")]) == 0
    assert {"copy_file_range", "sendfile"} <= set(calls)
    assert (tmp_path / "out.mp4").read_bytes() == scrub(clip.read_bytes()).data


def _tamper_then_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy gets a movie date written into it after its parts, before the check."""
    real = cli_video.check_written

    def tampered(out: int, parts: list[bytes | tuple[int, int]]) -> None:
        written = os.pread(out, os.fstat(out).st_size, 0)
        os.pwrite(out, b"\x01\x02\x03\x04", written.index(b"mvhd") + 8)
        real(out, parts)

    monkeypatch.setattr(cli_video, "check_written", tampered)


def test_the_skeleton_is_checked_in_a_child_and_its_verdict_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A skeleton that does not verify (here: a check that says so) refuses the copy; the
    check ran in another process, which the parent waited for."""
    clip = make_clip(tmp_path / "in.mp4", 1, "160x120")
    marker = tmp_path / "checked"

    def refuse(fmt: object, parts: object) -> None:
        marker.write_text(str(os.getpid()))
        raise NotClean

    monkeypatch.setattr(cli_video, "verify_parts", refuse)
    assert cli.main(["clean", str(clip), "--output", str(tmp_path / "out.mp4")]) == 1
    assert int(marker.read_text()) != os.getpid()
    assert not (tmp_path / "out.mp4").exists()
    assert "Traceback" not in capsys.readouterr().err


def test_without_fork_the_skeleton_is_checked_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = make_clip(tmp_path / "in.mp4", 1, "160x120")

    def no_fork() -> int:
        raise OSError(errno.EAGAIN, "no room for a process")

    monkeypatch.setattr(os, "fork", no_fork)
    assert cli.main(["clean", str(clip), "--output", str(tmp_path / "out.mp4")]) == 0
    assert (tmp_path / "out.mp4").read_bytes() == scrub(clip.read_bytes()).data


@pytest.mark.parametrize("unnamed", [True, False])
def test_a_copy_that_does_not_verify_is_never_named(
    unnamed: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clip = make_clip(tmp_path / "in.mp4", 1, "160x120")
    out = tmp_path / "out"
    out.mkdir()
    _tamper_then_verify(monkeypatch)
    if not unnamed:  # a file system without unnamed files: a hidden temporary name
        monkeypatch.setattr(cli_files, "_open_unnamed", lambda folder: None)
    assert cli.main(["clean", str(clip), "--output", str(out / "clean.mp4")]) == 1
    assert list(out.iterdir()) == []
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "Traceback" not in lines[0]


def test_in_place_a_copy_that_does_not_verify_leaves_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = make_clip(tmp_path / "in.mp4", 1, "160x120")
    before = clip.read_bytes()
    _tamper_then_verify(monkeypatch)
    assert cli.main(["clean", str(clip), "--in-place"]) == 1
    assert clip.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["in.mp4"]


def test_a_truncated_video_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = make_clip(tmp_path / "in.mp4", 1, "160x120", "-movflags", "+faststart")
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])
    assert cli.main(["clean", str(clip), "--output", str(tmp_path / "out.mp4")]) == 1
    assert not (tmp_path / "out.mp4").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "incomplete" in err[0]


def clean_with_limit(clip: Path, out: Path, limit: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot clean clip --output out` with the limit named `limit` set to 1000."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "clean", str(clip), "--output", str(out)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, limit: "1000"},
    )


def test_the_byte_limit_guards_memory_so_a_mapped_video_is_not_held_to_it(
    tmp_path: Path,
) -> None:
    """A behaviour this issue adds: SCRUBBOT_MAX_BYTES still refuses photos (test_cli), but a
    video cleaned by ranges holds none of its bytes in memory."""
    clip = make_clip(tmp_path / "in.mp4", 1, "160x120")
    result = clean_with_limit(clip, tmp_path / "o.mp4", "SCRUBBOT_MAX_BYTES")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "o.mp4").read_bytes() == scrub(clip.read_bytes()).data


def test_the_pixel_limit_still_applies_to_a_mapped_video(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", 1, "160x120")
    result = clean_with_limit(clip, tmp_path / "o.mp4", "SCRUBBOT_MAX_PIXELS")
    assert result.returncode == 1
    assert "too many pixels" in result.stderr
    assert not (tmp_path / "o.mp4").exists()


_SOURCE = random.Random(7).randbytes(12 * ALIGN)


@st.composite
def laid_out(draw: st.DrawFn) -> list[bytes | tuple[int, int]]:
    """Parts as `mp4._media` lays them out: ranges of `_SOURCE` in order, some with our bytes
    filling exactly the gap the input had (a stretch: they keep their distance), others not;
    bytes anywhere, several in one block, across block edges."""
    parts: list[bytes | tuple[int, int]] = [draw(st.binary(max_size=40))]
    offset = draw(st.integers(0, ALIGN))
    while offset < len(_SOURCE) - 1 and len(parts) < 24:
        size = draw(st.integers(1, min(2 * ALIGN, len(_SOURCE) - offset)))
        parts.append((offset, size))
        gap = draw(st.sampled_from([0, 2, 8, 16, 23, ALIGN - 5, ALIGN + 40, 3 * ALIGN]))
        pieces = draw(st.lists(st.integers(0, 30), max_size=3))
        if draw(st.booleans()):  # our bytes fill the gap: the next range keeps its distance
            cuts = sorted({min(cut, gap) for cut in pieces} | {0, gap})
            filler = draw(st.binary(min_size=gap, max_size=gap))
            parts.extend(filler[a:b] for a, b in pairwise(cuts))
        else:
            parts.extend(draw(st.binary(min_size=1, max_size=60)) for _ in pieces)
        offset += size + gap
    return parts


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=laid_out())
def test_write_parts_gives_the_parts_whatever_it_joins(
    parts: list[bytes | tuple[int, int]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("parts")
    (folder / "source").write_bytes(_SOURCE)
    expected = b"".join(
        part if isinstance(part, bytes) else _SOURCE[part[0] : part[0] + part[1]] for part in parts
    )
    source = os.open(folder / "source", os.O_RDONLY)
    out = os.open(folder / "out", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        cli_video.write_parts(source, out, parts)
    finally:
        os.close(source)
        os.close(out)
    assert (folder / "out").read_bytes() == expected


def test_ranges_that_keep_their_distance_are_copied_in_one_call() -> None:
    """Two runs with our 25 bytes of boxes in the place of a 25-byte removed sample: one copy
    from the input, then only the block that holds our bytes is written."""
    parts: list[bytes | tuple[int, int]] = [b"head", (100, 9000), b"b" * 17, b"c" * 8, (9125, 30)]
    stretches = cli_video._stretches(parts)
    assert stretches[0] == b"head"
    [one] = stretches[1:]
    assert not isinstance(one, bytes)
    assert (one.offset, one.size, one.start) == (100, 9055, 4)
    assert one.ours == [(9000, b"b" * 17), (9017, b"c" * 8)]
    assert cli_video._blocks(one) == [  # the stretch ends in that block
        (8192, 9059 - 8192, [(9004 - 8192, b"b" * 17), (9021 - 8192, b"c" * 8)])
    ]
    shifted: list[bytes | tuple[int, int]] = [b"head", (100, 9000), b"b" * 17, (9125, 30)]
    assert len(cli_video._stretches(shifted)) == 4  # 8 bytes short: copied on its own


def test_inspect_reads_a_video_by_ranges_whatever_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As `clean` does: SCRUBBOT_MAX_BYTES guards memory, and a mapped video holds none."""
    clip = make_clip(tmp_path / "in.mp4", 1, "160x120")
    monkeypatch.setenv("SCRUBBOT_MAX_BYTES", str(clip.stat().st_size // 4))
    assert cli.main(["inspect", str(clip)]) == 0
    out = capsys.readouterr().out
    assert "This video contains " in out
    assert "Cleaning it would remove all of it." in out
    assert "planted title" in out
    assert cli.main(["inspect", "--lang", "de", str(clip)]) == 0
    assert "Dieses Video enthält " in capsys.readouterr().out
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff" + bytes(clip.stat().st_size))
    assert cli.main(["inspect", str(tmp_path / "photo.jpg")]) == 1  # a photo: still read whole
    assert "larger than" in capsys.readouterr().err


@pytest.mark.skipif(sys.maxsize < 2**40, reason="a 64-bit address space")
def test_a_skeleton_larger_than_memory_is_mapped() -> None:
    """A video bigger than the machine's memory still gets its skeleton checked: the mapping
    reserves nothing (the kernel refused 30 GB on a 24 GB machine before)."""
    from bot import mapped_video

    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    with mapped_video.skeleton([b"head", (0, 2 * memory), b"tail"]) as mapped:
        assert mapped[:4] == b"head"
        assert mapped[-4:] == b"tail"
        assert mapped[memory : memory + 4] == bytes(4)
