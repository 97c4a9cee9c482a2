"""A clean video keeps each long run of samples at its offset modulo a file-system block
(`mp4._media`), so that a file system that shares blocks between files (XFS, btrfs) shares the
samples with the original instead of copying them: `scrubbot clean` of a big clip then writes
little more than the rebuilt boxes.

The clips are made here with ffmpeg: big lossless frames (runs of hundreds of KB) and a subtitle
track with a position every second between them, which cleaning removes (the gaps it leaves are
what moves the later runs)."""

import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import cli
from bot.errors import DamagedImage
from bot.formats import isobmff, mp4
from bot.formats.base import ALIGN
from bot.scrub import scrub
from tests.test_mp4 import _FRAGMENT_STRUCTURE, assert_clean, top_boxes

FFMPEG = shutil.which("ffmpeg")
pytestmark = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is missing: .ci/run installs it")


def subtitled_clip(path: Path, seconds: int, movflags: str, planted: str) -> Path:
    """Lossless 1280x720 H.264 (a key frame a second: a fragment a second when fragmented),
    AAC, and a mov_text track of one position a second."""
    cues = "".join(
        f"{n + 1}\n00:00:{n:02},000 --> 00:00:{n:02},900\nGPS {planted} {48 + n / 1e3:.4f}\n\n"
        for n in range(seconds)
    )
    srt = path.with_suffix(".srt")
    srt.write_text(cues)
    subprocess.run(
        [
            *(str(FFMPEG), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"),
            *("-f", "lavfi", "-i", "sine=frequency=440", "-i", str(srt)),
            *("-map", "0:v", "-map", "1:a", "-map", "2:s", "-t", str(seconds)),
            *("-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-g", "30", "-c:a", "aac"),
            *("-c:s", "mov_text", "-movflags", movflags, str(path)),
        ],
        check=True,
    )
    srt.unlink()
    return path


def landed(data: bytes) -> list[tuple[int, int, int]]:
    """(input offset, output offset, size) of every range of input the clean copy holds."""
    parts = mp4.strip_parts(data, mp4.parse(data))
    found, pos = [], 0
    for part in parts:
        if isinstance(part, tuple):
            found.append((part[0], pos, part[1]))
        pos += len(part) if isinstance(part, bytes) else part[1]
    return found


@pytest.mark.parametrize("movflags", ["+faststart", "-faststart", "+frag_keyframe+empty_moov"])
def test_long_runs_keep_their_offset_modulo_a_block(movflags: str, tmp_path: Path) -> None:
    planted = f"{random.randrange(10**9):09d}"
    clip = subtitled_clip(tmp_path / "in.mp4", 4, movflags, planted)
    data = clip.read_bytes()
    long_runs = [run for run in landed(data) if run[2] >= mp4.ALIGN_RUN]
    assert len(long_runs) >= 3  # several, each after a removed subtitle or another fragment
    assert all(source % ALIGN == target % ALIGN for source, target, _ in long_runs)
    # ExifTool (-u) names the padding 'Free': its bytes are checked to be zeros below.
    structure = _FRAGMENT_STRUCTURE | {"Free"}
    cleaned = assert_clean(data, tmp_path, "clip.mp4", [planted], structure)
    boxes = top_boxes(cleaned)
    padding = [cleaned[box.body : box.end] for box in boxes if box.type == b"free"]
    assert padding, "no run needed moving: the test proves nothing"
    assert all(not pad.strip(b"\0") and len(pad) < ALIGN + 8 for pad in padding)
    if "frag" not in movflags:  # a moved run starts an 'mdat' of its own
        assert sum(box.type == b"mdat" for box in boxes) > 1


def test_short_runs_are_packed_without_padding(tmp_path: Path) -> None:
    """A tiny clip's samples are one run shorter than ALIGN_RUN: one 'mdat', nothing added."""
    clip = tmp_path / "small.mp4"
    subprocess.run(
        [
            *(str(FFMPEG), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=10"),
            *("-t", "1", "-c:v", "libx264", "-preset", "ultrafast", str(clip)),
        ],
        check=True,
    )
    data = clip.read_bytes()
    assert [size for _, _, size in landed(data)] < [mp4.ALIGN_RUN]
    cleaned = scrub(data).data
    assert [box.type for box in top_boxes(cleaned)] == [b"ftyp", b"mdat", b"moov"]


@pytest.fixture
def xfs(tmp_path: Path) -> Iterator[Path]:
    """A small XFS (with reflinks, mkfs.xfs's default) mounted from a sparse file; skipped
    where this machine cannot make or mount one (no xfsprogs, not root, no loop devices)."""
    mkfs = shutil.which("mkfs.xfs") or shutil.which("mkfs.xfs", path="/sbin:/usr/sbin")
    if mkfs is None or os.geteuid() != 0:
        pytest.skip("needs root and mkfs.xfs (xfsprogs) to make an XFS")
    image, point = tmp_path / "xfs.img", tmp_path / "xfs"
    with image.open("wb") as file:
        file.truncate(512 * 1024 * 1024)
    point.mkdir()
    made = subprocess.run([mkfs, "-q", "-m", "reflink=1", str(image)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"mkfs.xfs failed: {made.stderr.decode(errors='replace').strip()}")
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount an XFS here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield point
    finally:  # lazily if something still holds it: the file system goes once it is let go
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], check=True)


def _free_bytes(folder: Path) -> int:
    os.sync()
    stats = os.statvfs(folder)
    return stats.f_bfree * stats.f_frsize


def test_on_xfs_the_clean_copy_shares_the_samples(xfs: Path) -> None:
    planted = f"{random.randrange(10**9):09d}"
    clip = subtitled_clip(xfs / "in.mp4", 12, "+faststart", planted)
    size = clip.stat().st_size
    assert size > 20 * 1024 * 1024
    before = _free_bytes(xfs)
    assert cli.main(["clean", str(clip), "--output", str(xfs / "out.mp4")]) == 0
    used = before - _free_bytes(xfs)
    cleaned = (xfs / "out.mp4").read_bytes()
    assert cleaned == scrub(clip.read_bytes()).data
    assert planted.encode() not in cleaned
    print(f"clip {size / 1e6:.1f} MB, clean copy {len(cleaned) / 1e6:.1f} MB, new blocks {used} B")
    assert used < size // 20  # copied, it would need all of its size anew


def test_the_free_box_is_the_only_padding_and_holds_nothing() -> None:
    """`_padding` moves an offset by any amount modulo ALIGN with a box of 0 or 8+ bytes."""
    for shift in range(-3 * ALIGN, 3 * ALIGN, 7):
        pad = mp4._padding(shift)
        assert pad == 0 or 8 <= pad < ALIGN + 8
        assert (pad - shift) % ALIGN == 0
    assert isobmff.box(b"free", bytes(0)) == b"\0\0\0\x08free"


@dataclass
class _Chunked:
    """What `mp4._Chunks` reads of a movie: its tracks' chunks."""

    tracks: list[SimpleNamespace]


_LAYOUTS = st.lists(  # (gap before it, size, track) of each chunk, in file order
    st.tuples(
        st.sampled_from([0, 0, 0, 3, 100, 5000]),
        st.sampled_from([0, 1, 700, mp4.ALIGN_RUN - 1, mp4.ALIGN_RUN, 300_000]),
        st.integers(0, 2),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(_LAYOUTS, st.integers(0, 10_000))
def test_the_layout_puts_every_chunk_where_its_offset_says(
    layout: list[tuple[int, int, int]], start: int
) -> None:
    """Over any chunk layout (gaps, empty chunks, interleaved tracks): each chunk's new offset
    holds its bytes, a long run keeps its offset modulo ALIGN, padding is zeros."""
    tracks: list[list[tuple[int, int]]] = [[], [], []]
    pos = 1000
    for gap, size, track in layout:
        pos += gap
        tracks[track].append((pos, size))
        pos += size
    movie = _Chunked([SimpleNamespace(chunks=chunks) for chunks in tracks])
    chunks = mp4._Chunks(movie)  # type: ignore[arg-type]
    media, where = mp4._media(chunks.runs, start, True)
    placed: dict[int, tuple[int, int]] = {}  # output offset of each range -> (input, size)
    at = start
    for part in media:
        if isinstance(part, bytes):
            if part[4:8] == b"free":
                assert 8 <= len(part) < ALIGN + 8
                assert not part[8:].strip(b"\0")
        else:
            placed[at] = part
            if part[1] >= mp4.ALIGN_RUN and part[0] in where:
                assert at % ALIGN == part[0] % ALIGN
        at += len(part) if isinstance(part, bytes) else part[1]
    offsets = chunks.placed(where)
    for track, moved in zip(tracks, offsets, strict=True):
        for (source, size), target in zip(track, moved, strict=True):
            if not size:
                continue
            holder = max(p for p in placed if p <= target)
            first, length = placed[holder]
            assert target - holder == source - first  # its bytes, at their place in the run
            assert target + size <= holder + length


def test_overlapping_chunks_are_refused() -> None:
    movie = _Chunked([SimpleNamespace(chunks=[(100, 50)]), SimpleNamespace(chunks=[(120, 10)])])
    with pytest.raises(DamagedImage, match="overlap"):
        mp4._Chunks(movie)  # type: ignore[arg-type]
