"""Segment indexes ('sidx') of fragmented videos: kept for the kept tracks, written anew for
the new layout, so players and ffprobe report the same durations and DASH players can seek.

The clips are made here with ffmpeg in the layouts that write a 'sidx' (one before each
fragment, one for the whole file, DASH's single file), some with a subtitle track cleaning
removes; then 'sidx' boxes edited by hand (a reference that cuts a fragment, a hierarchical
reference, a planted value in the reserved bits, a lying count, truncation). The judges:
ffprobe's durations (format and streams), ffmpeg's stream hashes, a full decode, ExifTool, our
own output as a fixed point, and every kept reference read back independently here."""

import json
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.errors import DamagedImage, ScrubError
from bot.formats import isobmff, mp4
from bot.scrub import scrub
from tests.test_mp4 import (
    _FRAGMENT_STRUCTURE,
    assert_clean,
    codes,
    decodes,
    leftovers,
    stream_hashes,
    top_boxes,
)

FFMPEG = shutil.which("ffmpeg")
pytestmark = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is missing: .ci/run installs it")

# ffmpeg's layouts that write a 'sidx': (muxer arguments, with a subtitle track)
LAYOUTS = {
    "dash": (["-movflags", "+dash"], False),
    "global-sidx": (
        ["-movflags", "+frag_keyframe+empty_moov+default_base_moof+global_sidx"],
        False,
    ),
    "dash-global-sidx": (["-movflags", "+dash+global_sidx"], False),
    "dash-subtitles": (["-movflags", "+dash"], True),
    "global-sidx-subtitles": (
        ["-movflags", "+frag_keyframe+empty_moov+default_base_moof+global_sidx"],
        True,
    ),
}
_LEAD = (b"sidx", b"free", b"styp")  # the boxes a reference may start at before a 'moof'


@dataclass
class Sidx:
    """A 'sidx' as this test reads it (ISO 14496-12 8.16.3)."""

    box: isobmff.Box
    version: int
    track: int
    timescale: int
    earliest: int
    first_offset: int
    reserved: int
    rows: list[tuple[int, int, int, int]]  # type, size, duration, SAP word

    def timing(self) -> tuple[object, ...]:
        """What must stay: all but the sizes and the first offset."""
        rows = [(kind, duration, sap) for kind, _, duration, sap in self.rows]
        return self.version, self.track, self.timescale, self.earliest, rows


def read_sidx(data: bytes, box: isobmff.Box) -> Sidx:
    version = data[box.body]
    pos = box.body + 4
    track, timescale = struct.unpack_from(">II", data, pos)
    wide = ">QQ" if version else ">II"
    earliest, first = struct.unpack_from(wide, data, pos + 8)
    pos += 8 + struct.calcsize(wide)
    reserved, count = struct.unpack_from(">HH", data, pos)
    rows = []
    for n in range(count):
        word, duration, sap = struct.unpack_from(">III", data, pos + 4 + 12 * n)
        rows.append((word >> 31, word & 0x7FFFFFFF, duration, sap))
    return Sidx(box, version, track, timescale, earliest, first, reserved, rows)


def indexes(data: bytes) -> list[Sidx]:
    return [read_sidx(data, b) for b in top_boxes(data) if b.type == b"sidx"]


def assert_true_references(data: bytes) -> None:
    """Every reference of every 'sidx' starts where a fragment starts (its 'moof' or the index
    and padding boxes just before it) and ends where the next one starts or the file ends."""
    boxes = top_boxes(data)
    starts = {len(data)}
    for n, found in enumerate(boxes):
        if found.type == b"moof":
            lead = n
            while lead > 0 and boxes[lead - 1].type in _LEAD:
                lead -= 1
            starts.update(b.start for b in boxes[lead : n + 1])
    for index in indexes(data):
        assert index.reserved == 0
        pos = index.box.end + index.first_offset
        assert pos in starts
        for kind, size, _, _ in index.rows:
            assert kind == 0
            pos += size
            assert pos in starts


def clip(tmp_path: Path, layout: str, title: str) -> bytes:
    """Three seconds of 64x64 H.264 and AAC, a fragment every half second, a planted title
    (and for some layouts a mov_text subtitle track), in an ffmpeg layout with a 'sidx'."""
    args, subtitles = LAYOUTS[layout]
    srt = tmp_path / "cues.srt"
    cues = ["00:00:00,000 --> 00:00:01,000\nGPS 48.1", "00:00:01,500 --> 00:00:02,500\nGPS 48.2"]
    srt.write_text("".join(f"{n + 1}\n{cue}\n\n" for n, cue in enumerate(cues)))
    inputs = ["-i", str(srt), "-map", "0", "-map", "1", "-map", "2", "-c:s", "mov_text"]
    out = tmp_path / f"{layout}.mp4"
    subprocess.run(
        [
            *(str(FFMPEG), "-v", "error", "-y"),
            *("-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=3"),
            *("-f", "lavfi", "-i", "sine=frequency=440:duration=3"),
            *(inputs if subtitles else []),
            *("-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "5", "-c:a", "aac", "-t", "3"),
            *("-metadata", f"title={title}", *args, str(out)),
        ],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def dash_single_file(tmp_path: Path) -> bytes:
    """DASH's single-file segments (`-f dash -single_file 1`): the video stream's file."""
    subprocess.run(
        [
            *(str(FFMPEG), "-v", "error", "-y"),
            *("-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=3"),
            *("-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "5"),
            *("-f", "dash", "-single_file", "1", "-seg_duration", "0.5"),
            str(tmp_path / "single.mpd"),
        ],
        check=True,
        capture_output=True,
    )
    return (tmp_path / "single-stream0.mp4").read_bytes()


def durations(data: bytes, path: Path) -> tuple[str, list[tuple[str, str]]]:
    """ffprobe's format duration and each picture and sound stream's."""
    path.write_bytes(data)
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    found = json.loads(result.stdout)
    streams = [
        (s["codec_type"], s.get("duration", ""))
        for s in found["streams"]
        if s["codec_type"] in ("video", "audio")
    ]
    return found["format"].get("duration", ""), streams


def assert_clean_of(
    original: bytes, changed: bytes, tmp_path: Path, *maps: str, name: str = "clip.mp4"
) -> bytes:
    """`assert_clean`'s judges for the cleaned `changed`, packets compared with `original`'s
    (ffmpeg believes a lying 'sidx': the changed input is no reference)."""
    cleaned = scrub(changed).data
    source, out = tmp_path / f"original-{name}", tmp_path / f"out-{name}"
    source.write_bytes(original)
    out.write_bytes(cleaned)
    left = leftovers(out).items()
    assert {t: v for t, v in left if t.partition(":")[2] not in _FRAGMENT_STRUCTURE} == {}
    assert stream_hashes(out, *maps) == stream_hashes(source, *maps)
    assert decodes(out) == ""
    assert scrub(cleaned).data == cleaned
    return cleaned


def assert_kept_indexes(original: bytes, cleaned: bytes, removed: set[int]) -> None:
    """The cleaned copy has each 'sidx' of a kept track with its timing as it was, in the same
    order, and true references."""
    kept = [index.timing() for index in indexes(original) if index.track not in removed]
    assert kept
    assert [index.timing() for index in indexes(cleaned)] == kept
    assert_true_references(cleaned)


def assert_same_durations(original: bytes, cleaned: bytes, tmp_path: Path) -> None:
    before = durations(original, tmp_path / "before.mp4")
    after = durations(cleaned, tmp_path / "after.mp4")
    assert after == before
    assert before[0]
    assert all(duration for _, duration in before[1])


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_segment_indexes_are_kept_true_of_the_clean_copy(layout: str, tmp_path: Path) -> None:
    title = codes(300 + len(layout))["title"]
    data = clip(tmp_path, layout, title)
    assert len([b for b in top_boxes(data) if b.type == b"moof"]) >= 5
    cleaned = assert_clean(data, tmp_path, f"{layout}.mp4", [title], _FRAGMENT_STRUCTURE)
    assert_same_durations(data, cleaned, tmp_path)
    assert_kept_indexes(data, cleaned, {3} if LAYOUTS[layout][1] else set())
    assert mp4.strip(cleaned, mp4.parse(cleaned)) == cleaned


def test_dash_single_file_segments_keep_their_index(tmp_path: Path) -> None:
    data = dash_single_file(tmp_path)
    assert len(indexes(data)) >= 5
    cleaned = assert_clean_of(data, data, tmp_path, "0:V")
    assert_same_durations(data, cleaned, tmp_path)
    assert_kept_indexes(data, cleaned, set())


def edited(data: bytes, nth: int, change: "dict[int, int]") -> bytes:
    """`data` with words of its `nth` 'sidx' replaced: {offset in its body: new 32-bit word}."""
    box = [b for b in top_boxes(data) if b.type == b"sidx"][nth]
    changed = bytearray(data)
    for offset, word in change.items():
        changed[box.body + offset : box.body + offset + 4] = struct.pack(">I", word)
    return bytes(changed)


# Offsets in the body of a version-1 'sidx' (ffmpeg's): the word holding reserved and the count,
# the first reference's type-and-size word.
_COUNT, _FIRST_REFERENCE = 28, 32


def test_a_sidx_that_cuts_a_fragment_or_indexes_indexes_is_dropped(tmp_path: Path) -> None:
    """A reference that ends inside a fragment, or one to another 'sidx' (reference_type 1):
    that 'sidx' is dropped, never copied; the others stay, true of the copy."""
    data = clip(tmp_path, "dash", "cut")
    clean = indexes(scrub(data).data)
    assert len(clean) == len(indexes(data))
    third = indexes(data)[2]
    size_word = third.rows[0][1]
    cut = edited(data, 2, {_FIRST_REFERENCE: size_word - 8})
    hierarchical = edited(data, 2, {_FIRST_REFERENCE: size_word | 1 << 31})
    for lying in (cut, hierarchical):
        cleaned = assert_clean_of(data, lying, tmp_path)
        assert [i.timing() for i in indexes(cleaned)] == [
            i.timing() for n, i in enumerate(clean) if n != 2
        ]
        assert_true_references(cleaned)


def test_a_value_planted_in_the_reserved_bits_leaves(tmp_path: Path) -> None:
    data = clip(tmp_path, "global-sidx", "reserved")
    planted = edited(data, 0, {_COUNT: 0xBEEF0000 | len(indexes(data)[0].rows)})
    assert indexes(planted)[0].reserved == 0xBEEF
    cleaned = scrub(planted).data
    assert cleaned == scrub(data).data
    assert len(indexes(cleaned)) == 2
    assert b"\xbe\xef" not in cleaned


def clean_or_refusal(data: bytes) -> bytes | str:
    """The cleaned copy, or the one-line message of a refusal (anything else raises)."""
    try:
        return scrub(data).data
    except ScrubError as refused:
        return refused.message


def test_lying_or_truncated_indexes_are_dropped_or_refused(tmp_path: Path) -> None:
    data = clip(tmp_path, "global-sidx", "lying")
    count = len(indexes(data)[0].rows)
    for lie in (count + 1, count - 1, 0, 0xFFFF):
        lying = edited(data, 0, {_COUNT: lie})
        cleaned = assert_clean_of(data, lying, tmp_path)
        assert [i.track for i in indexes(cleaned)] == [2]  # the sound's stays
        assert_true_references(cleaned)
    boxes = top_boxes(data)
    sidx = [b for b in boxes if b.type == b"sidx"]
    cuts = {b.start + n for b in sidx for n in (4, 20, 40, 60)} | {b.end - 1 for b in sidx}
    for cut in sorted(cuts):
        cleaned = clean_or_refusal(data[:cut])
        if isinstance(cleaned, str):
            assert cleaned
            assert "\n" not in cleaned
            continue
        assert_true_references(cleaned)
        assert scrub(cleaned).data == cleaned


def test_a_file_cut_inside_a_later_sidx_keeps_the_earlier_ones(tmp_path: Path) -> None:
    data = clip(tmp_path, "dash", "cut-late")
    last = [b for b in top_boxes(data) if b.type == b"sidx"][-1]
    cut = data[: last.start + 30]
    cleaned = scrub(cut).data
    assert [i.timing() for i in indexes(cleaned)] == [i.timing() for i in indexes(data)[:-2]]
    assert_true_references(cleaned)
    assert scrub(cleaned).data == cleaned


def test_the_references_of_all_indexes_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hostile file may claim millions of references: they count against a budget."""
    data = clip(tmp_path, "global-sidx", "budget")
    monkeypatch.setattr(mp4, "MAX_INDEX_REFERENCES", len(indexes(data)[0].rows) + 1)
    with pytest.raises(DamagedImage, match="too many references"):
        scrub(data)


def test_a_reference_holding_only_dropped_fragments_drops_its_sidx() -> None:
    """Fragments at 100, 200 and 300 in the input, the one at 200 dropped (no kept track): a
    reference of it alone, or of nothing but index boxes, holds no kept fragment."""
    kept = [100, 300]
    assert mp4._holds_fragments([100, 200, 400], kept)
    assert not mp4._holds_fragments([100, 200, 300, 400], kept)  # 200..300: only dropped bytes
    assert not mp4._holds_fragments([100, 200, 250, 300], kept)  # 200..250: only dropped bytes
    assert not mp4._holds_fragments([50, 90], kept)  # index boxes before the first fragment
    assert not mp4._holds_fragments([300, 400, 500], kept)  # after the last kept fragment


def test_a_reference_may_end_where_its_fragments_media_data_ends(tmp_path: Path) -> None:
    """A box after a fragment's 'mdat' that is no part of it (a planted 'udta' here): the
    reference of that fragment ends at the 'mdat's end, and the 'udta' leaves."""
    data = clip(tmp_path, "dash", "udta")
    mdat = [b for b in top_boxes(data) if b.type == b"mdat"][2]
    udta = isobmff.box(b"udta", isobmff.box(b"\xa9cmt", b"planted-comment"))
    planted = data[: mdat.end] + udta + data[mdat.end :]
    cleaned = assert_clean_of(data, planted, tmp_path)
    assert b"planted-comment" not in cleaned
    assert cleaned == scrub(data).data
    assert_kept_indexes(data, cleaned, set())


def test_a_reference_may_start_at_a_dash_event_message(tmp_path: Path) -> None:
    """A DASH media segment may have 'emsg' boxes between its 'sidx' and its 'moof' (in-band
    events, dropped here): the references that start there start the fragment."""
    data = clip(tmp_path, "dash", "emsg")
    boxes = top_boxes(data)
    moof = [b for b in boxes if b.type == b"moof"][2]
    emsg = isobmff.full(b"emsg", 0, 0, b"urn:planted-event\0\0" + bytes(16) + b"planted-event")
    mine = [i for i in indexes(data) if i.box.end <= moof.start and i.box.start > boxes[0].end]
    changed = bytearray(data[: moof.start] + emsg + data[moof.start :])
    for index in mine[-2:]:  # the picture's and the sound's 'sidx' of that fragment
        at = index.box.body + _FIRST_REFERENCE
        struct.pack_into(">I", changed, at, index.rows[0][1] + len(emsg))
    cleaned = assert_clean_of(data, bytes(changed), tmp_path)
    assert b"planted-event" not in cleaned
    assert cleaned == scrub(data).data
    assert_kept_indexes(data, cleaned, set())
