"""Segment indexes ('sidx') of fragmented videos: kept for the kept tracks, written anew for
the new layout, so players and ffprobe report the same durations and DASH players can seek.

The clips are made here with ffmpeg in the layouts that write a 'sidx' (one before each
fragment, one for the whole file, DASH's single file), some with a subtitle track cleaning
removes; then 'sidx' boxes edited by hand (a reference that cuts a fragment, a hierarchical
reference, a planted value in the reserved bits, a lying count, truncation). The judges:
ffprobe's durations (format and streams), ffmpeg's stream hashes, a full decode, ExifTool, our
own output as a fixed point, and every kept reference read back independently here."""

import json
import random
import shutil
import struct
import subprocess
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

from bot.errors import DamagedImage, ScrubError
from bot.findings import Kind
from bot.formats import isobmff, mp4
from bot.formats.base import ALIGN
from bot.scrub import inspect, scrub
from tests.test_mp4 import (
    _FRAGMENT_STRUCTURE,
    assert_clean,
    codes,
    decodes,
    leftovers,
    moov_changed,
    route_sample,
    stream_hashes,
    timed_track,
    timed_traf,
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
    starts = {len(data)} | {b.start for b in boxes if b.type == b"mfra"}  # an input's last
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


def refused_or_true(data: bytes) -> bytes | None:
    """The cleaned copy, its indexes true of it and its own fixed point; None when `data` is
    refused, in one line (anything else raises)."""
    try:
        cleaned = scrub(data).data
    except ScrubError as refused:
        message = refused.message
    else:
        assert_true_references(cleaned)
        assert scrub(cleaned).data == cleaned
        return cleaned
    assert message
    assert "\n" not in message
    return None


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
        refused_or_true(data[:cut])


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


def with_location_fragment(data: bytes, after: int, lead: bytes, value: dict[str, str]) -> bytes:
    """`data` (moof-relative) with an Apple location track 90 in its movie and, after the
    `after`-th fragment's 'mdat', `lead` and a fragment of that track alone (one position)."""

    def change(d: bytes, b: isobmff.Box) -> bytes:
        if b.type == b"mvex":
            trex = isobmff.full(b"trex", 0, 0, struct.pack(">5I", 90, 1, 0, 0, 0))
            return isobmff.box(b"mvex", d[b.body : b.end] + trex)
        return d[b.start : b.end]

    data = moov_changed(data, change)
    (moov,) = [b for b in top_boxes(data) if b.type == b"moov"]
    mvex_at = data.index(b"mvex", moov.start) - 4
    body = data[moov.body : mvex_at] + timed_track(90, b"mebx", [], 0) + data[mvex_at : moov.end]
    data = data[: moov.start] + isobmff.box(b"moov", body) + data[moov.end :]
    mdat = [b for b in top_boxes(data) if b.type == b"mdat"][after]
    return data[: mdat.end] + lead + location_fragment(value) + data[mdat.end :]


def location_fragment(value: dict[str, str]) -> bytes:
    sample = route_sample(value)
    mfhd = isobmff.full(b"mfhd", 0, 0, struct.pack(">I", 999))
    moof_size = 8 + len(mfhd) + len(timed_traf(90, 0, 0, sample))
    traf = timed_traf(90, 0, moof_size + 8, sample)
    return isobmff.box(b"moof", mfhd + traf) + isobmff.box(b"mdat", sample)


def test_a_dropped_fragment_inside_a_reference_leaves_it_and_its_bytes(tmp_path: Path) -> None:
    """A fragment of a removed track alone (an Apple location here) inside a reference of a
    whole-file 'sidx': the fragment is dropped, the reference keeps the kept fragment only."""
    value = codes(310)
    data = clip(tmp_path, "global-sidx", "dropped")
    extra = len(location_fragment(value))
    changed = bytearray(with_location_fragment(data, 2, b"", value))
    for index in indexes(bytes(changed)):  # the picture's and the sound's: reference 2 grows
        at = index.box.body + _FIRST_REFERENCE + 2 * 12
        struct.pack_into(">I", changed, at, index.rows[2][1] + extra)
    assert_true_references(bytes(changed))
    assert any(f.kind is Kind.LOCATION for f in inspect(bytes(changed)).findings)
    cleaned = assert_clean_of(data, bytes(changed), tmp_path)
    assert cleaned == scrub(data).data
    assert value["lon"].encode() not in cleaned
    assert_kept_indexes(data, cleaned, set())


def test_a_sidx_of_dropped_fragments_only_is_dropped(tmp_path: Path) -> None:
    """A 'sidx' of a kept track whose one reference is a fragment of a removed track alone."""
    value = codes(311)
    data = clip(tmp_path, "dash", "only-dropped")
    fragment = location_fragment(value)
    body = struct.pack(">IIQQHH", 1, 10240, 0, 0, 0, 1) + struct.pack(">III", len(fragment), 1, 0)
    lonely = isobmff.full(b"sidx", 1, 0, body)
    changed = with_location_fragment(data, 2, lonely, value)
    assert len(indexes(changed)) == len(indexes(data)) + 1
    assert_true_references(changed)
    cleaned = assert_clean_of(data, changed, tmp_path)
    assert cleaned == scrub(data).data
    assert_kept_indexes(data, cleaned, set())


@pytest.mark.parametrize(
    "movflags", ["+dash", "+frag_keyframe+empty_moov+default_base_moof+global_sidx"]
)
def test_the_padding_before_a_fragment_is_in_its_reference(movflags: str, tmp_path: Path) -> None:
    """Big fragments (runs of 64 KB and more) come after a zero-filled 'free' box that keeps
    their offset modulo a block (`mp4._fragment_parts`): it is the fragment's first bytes, after
    the 'sidx' before it, and the reference of that fragment holds it."""
    from tests.test_video_blocks import landed, subtitled_clip

    planted = codes(320)["title"]
    data = subtitled_clip(tmp_path / "big.mp4", 3, movflags, planted).read_bytes()
    long_runs = [run for run in landed(data) if run[2] >= mp4.ALIGN_RUN]
    assert all(source % ALIGN == target % ALIGN for source, target, _ in long_runs)
    structure = _FRAGMENT_STRUCTURE | {"Free"}
    cleaned = assert_clean(data, tmp_path, "big.mp4", [planted], structure)
    kinds = [b.type for b in top_boxes(cleaned)]
    assert b"free" in kinds
    if movflags == "+dash":
        assert (b"sidx", b"free") in set(pairwise(kinds))
    # The streams' durations; the format's is the longest stream's, here the subtitles' (a cue
    # until 3.9 s), which leave with their track.
    after = durations(cleaned, tmp_path / "after.mp4")
    assert after[1] == durations(data, tmp_path / "before.mp4")[1]
    assert after[0] == max(duration for _, duration in after[1])
    assert_kept_indexes(data, cleaned, {3})


@pytest.mark.parametrize("layout", ["dash", "global-sidx"])
def test_fuzzed_indexes_are_dropped_rewritten_or_refused(layout: str, tmp_path: Path) -> None:
    """Random bytes of the 'sidx' boxes changed (sizes, counts, versions, offsets, types): the
    file is refused in one line or cleaned, every kept reference true, a fixed point."""
    data = clip(tmp_path, layout, "fuzz")
    sidx = [b for b in top_boxes(data) if b.type == b"sidx"]
    rng = random.Random(layout)
    kept = 0
    for _ in range(150):
        changed = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            target = rng.choice(sidx)
            changed[rng.randrange(target.start, target.end)] = rng.randrange(256)
        cleaned = refused_or_true(bytes(changed))
        kept += len(indexes(cleaned)) if cleaned is not None else 0
    assert kept
