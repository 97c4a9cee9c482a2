"""mp4: MP4, MOV (QuickTime), M4V and 3GP videos, cleaned by lossless container surgery.

What a phone clip can carry besides its pictures and sound:
- 'udta' user data (file and track level): QuickTime text items ('©xyz' place, '©mak', '©mod',
  '©swr', '©day', ...), 3GPP 'loci' places and text boxes, XMP ('XMP_'), maker boxes;
- 'meta' boxes: Apple keys/ilst ('com.apple.quicktime.location.ISO6709', make, model, software,
  creation date, the Live Photo 'content.identifier'), iTunes-style ilst ('©too' encoder,
  'covr' cover picture with its own EXIF);
- XMP 'uuid' boxes, 'free'/'skip' boxes with old bytes, unknown top-level boxes, trailing data;
- creation and modification times in every movie, track and media header, handler names,
  compressor names and vendor codes in sample entries, SEI arrays in 'hvcC';
- whole tracks that are no picture or sound: timed metadata ('mebx' Apple location and Live
  Photo tracks, GoPro 'gpmd', 'camm', DJI 'djmd', other 'meta'-handler tracks), chapter, text and
  subtitle tracks, timecode tracks; and their samples in 'mdat'.

How we remove it, losslessly: the output is a new file written from parsed fields ('ftyp', then
'moov' and the 'mdat' in the order the input had them, so faststart stays faststart):
- 'ftyp': the major brand and the known compatible brands, minor version 0;
- 'mvhd', 'tkhd', 'mdhd': zero creation/modification times (version 1 only when a duration needs
  64 bits), timescales, durations, rate, volume, layer, alternate group and language as they
  were, a sound track's size 0, a picture track's only as its pictures can be shown (else
  their size, `_display_size`), a track matrix only as a quarter turn or mirror (else the
  identity); empty handler names; one self-contained data reference; no 'udta', 'meta', 'tref'
  (but between kept tracks), 'iods';
- only 'vide' and 'soun' tracks in a known codec are kept; every table of their sample tables
  is rewritten from its entries ('stts' and 'ctts' without rows of no samples, 'stss', 'stps',
  'sdtp' (reserved values as unknown), 'stsc', 'stsz'; 'cslg' worked out from 'stts' and
  'ctts'), sample groups
  'roll'/'prol'/'sync'/'rap '/'tele' are kept, written from their fields, their runs checked
  against the samples and descriptions (`_sample_group`);
- sample entries: the fixed fields without compressor name or vendor, and only the children a
  decoder needs: 'avcC' (SPS/PPS only, each cut at its stop bit), 'hvcC' and 'lhvC' (VPS/SPS/PPS
  only), 'av1C', 'colr', 'pasp' (reduced, 16-bit), 'clap', 'clli', 'mdcv' (in the ranges of
  SMPTE ST 2086), 'fiel', 'gama', 'amve' (in the ranges of H.274), 'hfov',
  Dolby Vision 'dvcC'/'dvvC'/'dvwC' (their fields only), 'damr' (without the vendor), 'esds'
  (its fields and the decoder's configuration, `_esds`; MPEG-4 Visual's without its user
  data), 'dfLa' (STREAMINFO only), the sound
  configurations 'dac3', 'dec3', 'dOps', 'alac', 'chan', 'pcmC', 'srat', VP9's 'vpcC', 'SmDm',
  'CoLL', QuickTime's 'wave' children, Apple's 'vexu' (the boxes of a spatial video's views,
  `_vexu`), a spherical video's 'st3d', 'sv3d' (`_sv3d`: without the name of the tool that
  wrote it) and 'SA3D' at the length their fields give, their fields no
  decoder reads set as their standards give them (`_alac`, `_chan`, `_vpcc`, `_sound_fields`);
  the QuickTime terminator (four zero bytes after the last child) and 'btrt' (bitrate hints)
  are dropped;
- 'mdat' holds exactly the chunks the kept tracks reference, in file order with no gaps but
  one: a run of 64 KB or more starts an 'mdat' of its own after a zero-filled 'free' box, at
  its offset modulo 4096 (see `_media`: XFS and btrfs then share its blocks); 'stco'
  or 'co64' (co64 when the input had it or an offset needs it) point at their new places. The
  samples are never decoded and stay byte for byte.

Fragmented files ('moov' with 'mvex', then 'moof' + 'mdat' pairs; ffmpeg's frag_keyframe,
dash, ismv; CMAF): the movie as above with empty sample tables and an 'mvex' of the fragment
duration ('mehd') and the kept tracks' defaults ('trex'); then each fragment anew: 'mfhd' (its
sequence number untouched), a 'traf' per kept track ('tfhd' with default-base-is-moof and the
defaults it had, 'tfdt' untouched, each 'trun' with its per-sample fields as they were and a data
offset from the 'moof'; 'sdtp' and the kept sample groups), and an 'mdat' of exactly the kept
runs in file order (a fragment whose first run has 64 KB or more after a zero-filled 'free'
box, as in the movie's 'mdat'). The trafs of removed tracks and their samples leave with them;
a fragment left with no kept track is dropped whole. The fragments' boxes have their own budget.
A segment index 'sidx' of a kept track is kept (ffprobe and players take the duration from it,
DASH players seek with it), written anew before the fragment it came before (`_read_indexes`,
`_indexed_parts`): version, reference_ID, timescale, earliest presentation time, subsegment
durations and SAP fields untouched (timing), reserved bits zero, each referenced_size and the
first_offset from where the referenced fragments land in the copy. A fragment's bytes begin at
the index, label and padding boxes just before its 'moof' ('sidx', 'ssix', 'styp', 'free', and
a DASH segment's 'emsg' and 'prft', which we drop), so a reference must start where a fragment
starts and end where another starts, where a fragment's 'mdat' boxes end, or where the
fragments end; a 'sidx' with a reference that cuts a fragment or holds no kept fragment, a
hierarchical one (reference_type 1), one of a removed track, with a lying count, or whose
values do not fit its fields in the copy is dropped, never copied. 'ssix' (byte ranges inside
subsegments, by levels we would have to map anew), 'styp' and 'mfra' (indexes of the old
layout, no user data) are dropped.

Findings come from what is removed: every metadata item as a MOVIE block (`bot.metadata.movie`),
a cover or maker's preview picture with the blocks of its own JPEG structure, the first producer
reference time ('prft', a wall-clock time) as the time; for an Apple 'mebx' location track, a
GoPro GPMF track, Google's 'camm' (its GPS records) or a drone's subtitles ('tx3g', 'text':
DJI's "GPS (lon, lat" and "[latitude: ...]") its route (one position per sample, read with its
own bounded budget; in a fragmented file from its samples in the fragments, timed by 'tfdt' and
the sample durations); for a chapter track (named by a 'chap' reference) its chapters' titles.

Refused: encrypted tracks ('senc', 'pssh' too), auxiliary sample information in fragments
('saiz'/'saio': offsets we do not rewrite), data in other files, picture or sound tracks in
codecs we do not know (we never drop a user's picture or sound), damage: fragments pointing
outside their 'mdat' or the file, runs that overlap, a removed track's samples inside a kept
chunk or run (they would be copied with it), a fragment of a track the movie does not have or
two of one track, a track without its 'trex', an 'ftyp' whose major brand is no video brand.
Dropped without a finding (display hints, no user data): 'tapt', 'clip', 'matt', 'load', the
QuickTime data handler in 'minf', the component type of 'hdlr'.

Residual (documented, copied as they are): the configuration boxes 'dac4' (AC-4) and 'glbl',
the VPS/SPS/PPS units of 'hvcC' and 'lhvC' (whole: their extension data and bytes after their
stop bits too; H.264's are cut, `bot.formats.avc`), the decoder's own configuration inside
'esds' when it is no general-audio AAC configuration `bot.formats.aac` can cut at its last
field (other codecs, a program config element with its comment, error protection), two bytes
after E-AC-3's substreams (read as the Atmos extension), and the
sample data itself (the x264/x265 settings SEI in the first frame, ffmpeg's "Lavc" string in the
first AAC packet): the samples must stay byte for byte.
"""

import math
import mmap
import re
import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain, compress, islice, pairwise, repeat
from operator import add, le, lt, mul, ne, sub

from bot.errors import DamagedImage, UnsupportedFormat
from bot.formats import aac, avc, isobmff
from bot.formats.base import ALIGN, Block, BlockKind, Format, Parsed
from bot.formats.heif import (
    _new_property,  # the photo properties, rebuilt from their fields
    nal_arrays,
    parameter_set_arrays,
)
from bot.formats.isobmff import VIDEO_BRANDS, Box, Budget, Reader
from bot.formats.isobmff import name as _name

_LABEL = "MP4"
MAX_SAMPLES = 20_000_000  # samples in one file: ten hours of 4K video at 60 fps and its sound
MAX_TRACKS = 100
MAX_ENTRIES = 16  # sample descriptions in one track
MAX_BRANDS = 64
MAX_ROUTE_UNITS = 2_000_000  # boxes or GPMF entries read from timed tracks to tell the route
MAX_FRAGMENT_BOXES = 2_000_000  # boxes of the fragments: ten hours in one-second fragments
_U32 = "I" if array("I").itemsize == 4 else "L"  # the array type of a 32-bit word
ALIGN_RUN = 1 << 16  # a run of samples this long keeps its offset modulo ALIGN (see _media)
_RELEASE_EVERY = 64  # top-level boxes or fragments read between unmapping a mapped file's pages
_MAX_32 = 0xFFFFFFFF
_MAX_31 = 0x7FFFFFFF
_PRINTABLE = bytes(range(32, 127))  # the bytes of a box type

# Compatible brands we write back (known structural brands only: no free four-byte codes).
_KEPT_BRANDS = VIDEO_BRANDS | {b"hvc1", b"dby1", b"cmfc"}
# QuickTime files from old cameras have no 'ftyp': the first box is one of these.
_BARE_STARTS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip"})

VIDEO_CODECS = frozenset(
    {
        b"avc1",
        b"avc3",
        b"hvc1",
        b"hev1",
        b"dvh1",
        b"dvhe",
        b"dva1",
        b"dvav",
        b"av01",
        b"dav1",
        b"vp08",
        b"vp09",
        b"mp4v",
        b"s263",
        b"h263",
        b"jpeg",
        b"mjpa",
        b"mjpb",
        b"apcn",
        b"apch",
        b"apcs",
        b"apco",
        b"ap4h",
        b"ap4x",
    }
)
AUDIO_CODECS = frozenset(
    {
        b"mp4a",
        b"samr",
        b"sawb",
        b"sawp",
        b"sevc",
        b"sqcp",
        b"ac-3",
        b"ec-3",
        b"ac-4",
        b"Opus",
        b"fLaC",
        b"alac",
        b"ipcm",
        b"fpcm",
        b"lpcm",
        b"sowt",
        b"twos",
        b"raw ",
        b"in24",
        b"in32",
        b"fl32",
        b"fl64",
        b"ulaw",
        b"alaw",
        b".mp3",
        b"mp3 ",
    }
)
# Children of a sample entry copied as they are (see Residual in the module docstring).
_COPIED_CHILDREN = frozenset(
    {
        b"dac4",
        b"glbl",
    }
)
_PROPERTY_CHILDREN = frozenset({b"hvcC", b"av1C", b"clap", b"clli"})
_WAVE_CHILDREN = frozenset({b"frma", b"mp4a", b"esds", b"enda", b"chan", b"alac", b"\0\0\0\0"})
# Children of a track that only say how to show it (rewritten or dropped without a finding).
_TRACK_STRUCTURE = frozenset(
    {b"tkhd", b"mdia", b"edts", b"tref", b"tapt", b"clip", b"matt", b"load", b"imap", b"txas"}
)
_KEPT_GROUPS = frozenset({b"roll", b"prol", b"sync", b"rap ", b"tele"})  # see _GROUP_ENTRIES
_KEPT_REFERENCES = frozenset({b"vdep", b"vplx", b"sbas", b"scal", b"fall", b"folw"})
# Top-level boxes of a fragmented file that only index or label its fragments: not copied (a
# 'sidx' of a kept track is written anew for the new layout, see `_read_indexes`).
_FRAGMENT_INDEXES = frozenset({b"sidx", b"ssix", b"mfra", b"styp"})
# Boxes just before a 'moof' that a 'sidx' reference may start at (its fragment's first bytes):
# indexes, labels, padding, and what a DASH media segment may hold before its 'moof' (event
# messages, the producer's time), which we drop.
_LEAD = _FRAGMENT_INDEXES | {b"free", b"skip", b"emsg", b"prft"}
MAX_INDEX_REFERENCES = 2_000_000  # 'sidx' references in one file: as many as fragment boxes
_FRAGMENT_TOP = _FRAGMENT_INDEXES | {b"moof", b"mdat"}
_READ_ELSEWHERE = _FRAGMENT_INDEXES | {b"ftyp", b"moov", b"mdat", b"moof"}  # not by _top_block
XMP_UUID = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")
_EPOCH_1904_TO_1970 = 2082844800
_EPOCH_1900_TO_1970 = 2208988800


def _damaged(what: str) -> DamagedImage:
    return DamagedImage(f"The video is damaged ({what}).")


def _reader(data: bytes, box: Box) -> Reader:
    return Reader(data, box.body, box.end, _LABEL)


def _full(data: bytes, box: Box) -> tuple[int, int, Reader]:
    return isobmff.full_box(data, box, _LABEL)


def _children(data: bytes, box: Box, budget: Budget, skip: int = 0) -> list[Box]:
    return isobmff.boxes(data, box.body + skip, box.end, budget)


def _one(found: list[Box], kind: bytes) -> Box | None:
    return isobmff.one(found, kind)


# --- recognising -------------------------------------------------------------------------------


def accepts(data: bytes) -> bool:
    """Whether `data` starts like a video this module cleans: an 'ftyp' whose major brand is a
    video brand, or (old QuickTime) a bare 'moov'/'mdat'/'wide'/'free' box."""
    if data[4:8] == b"ftyp":
        return data[8:12] in VIDEO_BRANDS
    return data[4:8] in _BARE_STARTS and len(data) >= 8


# --- the parsed movie --------------------------------------------------------------------------


@dataclass
class _Track:
    id: int
    handler: bytes
    flags: int
    duration: int
    layer_group_volume: bytes  # layer, alternate group, volume (2 bytes each)
    matrix: bytes
    width: int  # 16.16
    height: int
    timescale: int
    media_duration: int
    language: int
    balance: bytes  # 'smhd' balance (sound tracks)
    edits: list[tuple[int, int, int]]
    entries: list[bytes]
    tables: list[bytes]  # rewritten sample table boxes but the chunk offsets, in our order
    groups: list[bytes]
    chunks: list[tuple[int, int]]  # (offset, size) of every chunk
    wide: bool  # offsets in 'co64'
    refs: list[tuple[bytes, tuple[int, ...]]] = field(default_factory=list)


@dataclass
class _Extends:
    """'mvex': the fragment duration ('mehd') and each track's defaults ('trex': description,
    duration, size and flags of its samples), by track id."""

    duration: int | None
    defaults: dict[int, tuple[int, int, int, int]]


@dataclass
class _Run:
    """One 'trun' of a kept track: its fields as read, and where its samples lie."""

    version: int
    flags: int  # first-sample-flags and the per-sample fields present (the data offset we write)
    count: int
    first_flags: bytes
    rows: bytes  # the per-sample fields, as the flags lay them out
    start: int  # absolute offset of its first sample in the input
    size: int


@dataclass
class _Traf:
    """One 'traf' of a kept track."""

    track: int
    flags: int  # 'tfhd' flags we keep: description index, defaults, duration-is-empty
    fields: bytes  # the 'tfhd' fields after the track id those flags name
    decode_time: tuple[int, int] | None  # 'tfdt' version and time (timing: untouched)
    runs: list[_Run]
    extra: list[bytes]  # 'sdtp' rewritten, kept sample groups


@dataclass
class _Fragment:
    sequence: int  # 'mfhd' (timing: untouched)
    trafs: list[_Traf]
    start: int = 0  # where its 'moof' was in the input


@dataclass
class _Index:
    """A kept 'sidx': its fields as read (timing of a kept track: untouched) and the input
    offsets its references span, each where a fragment starts or the file ends."""

    start: int  # where it was in the input: it goes before the first kept fragment after it
    version: int
    track: int
    timescale: int
    earliest: int
    rows: bytes  # the references' 12-byte rows as read, their sizes rewritten when written
    bounds: "array[int]"  # the first byte of each reference in the input, then the last's end


@dataclass
class _Movie:
    brands: tuple[bytes, list[bytes]] | None  # major, compatible; None: the file had no 'ftyp'
    timescale: int
    duration: int
    rate_volume: bytes  # rate (4) and volume (2)
    matrix: bytes
    tracks: list[_Track]
    faststart: bool
    blocks: list[Block]
    extends: _Extends | None = None  # a fragmented movie's 'mvex'
    fragments: list[_Fragment] = field(default_factory=list)
    track_ids: list[int] = field(default_factory=list)  # every track's, removed ones too
    # removed tracks of a fragmented movie: handler, sample entries, timescale (for the route)
    removed: dict[int, tuple[bytes, list[Box], int]] = field(default_factory=dict)
    chunks: "_Chunks | None" = None  # the kept tracks' chunks in file order, once they are read
    indexes: list[_Index] = field(default_factory=list)  # the kept 'sidx' boxes, in file order
    dropped: list[tuple[int, int]] = field(default_factory=list)  # removed tracks' chunks


def parse(data: bytes) -> Parsed:
    """Walk every box (bounded), list what the video carries, check what we would keep."""
    return _parsed(_read(data))


def _parsed(movie: _Movie) -> Parsed:
    video = [t for t in movie.tracks if t.handler == b"vide"]
    if not video:
        raise UnsupportedFormat("A video file without pictures (sound only)")
    width, height = video[0].width >> 16, video[0].height >> 16
    if width <= 0 or height <= 0:
        raise _damaged("its picture track has no size")
    return Parsed(width, height, tuple(movie.blocks))


def strip(data: bytes, parsed: Parsed) -> bytes:
    """Write the movie anew with only the kept tracks and exactly their chunks."""
    return _write(data, _read(data))


Part = bytes | tuple[int, int]  # bytes we wrote, or (offset, size) of bytes kept from the input
Samples = Iterable[tuple[float, int, int]]  # (start in seconds, first byte, end) of each sample


def strip_parts(data: bytes, parsed: Parsed) -> list[Part]:
    """What `strip` writes, as parts in file order: the boxes we wrote as bytes and each kept
    chunk as its (offset, size) in `data`, so a caller can copy those without reading them.
    `data` may be an mmap of the file: only the boxes outside 'mdat' (and the samples of timed
    metadata tracks, for their route) are read. b"".join of the parts, each range taken from
    `data`, is exactly `strip(data, parsed)`."""
    return _parts(data, _read(data))


def parse_parts(data: bytes) -> tuple[Parsed, list[Part]]:
    """`parse(data)` and `strip_parts(data, ...)` from one walk of the boxes (the same results:
    both are functions of the bytes alone)."""
    movie = _read(data)
    return _parsed(movie), _parts(data, movie)


def _read(data: bytes) -> _Movie:
    budget = Budget(_LABEL)
    pieces = Budget(_LABEL, MAX_FRAGMENT_BOXES)  # the fragments': a long clip has many
    blocks: list[Block] = []
    top = list(_top(data, budget, blocks, pieces))
    ftyp, moov = _one(top, b"ftyp"), _one(top, b"moov")
    if moov is None:
        raise _damaged("it has no movie header")
    brands = _brands(data, ftyp) if ftyp else None
    moofs = [index for index, box in enumerate(top) if box.type == b"moof"]
    before = top[: moofs[0]] if moofs else top  # the movie's own media data comes first
    mdats = [box for box in before if box.type == b"mdat"]
    others = [box for box in top if box.type not in _READ_ELSEWHERE]
    prft = next((box for box in others if box.type == b"prft"), None)
    if prft is not None:  # one per fragment in a live stream: the first is told
        blocks.append(_reference_time(data, prft))
        others = [box for box in others if box.type != b"prft"]
    for count, box in enumerate(others, start=1):
        _release(data, count, 8)  # there may be many: 'free' boxes between fragments
        blocks.extend(_top_block(data, box, budget))
    movie = _read_moov(data, moov, budget, blocks, bool(moofs))
    movie.brands = brands
    movie.faststart = not mdats or moov.start < mdats[0].start
    if movie.extends is not None:
        if moofs and top[moofs[0]].start < moov.start:
            raise _damaged("a fragment comes before the movie header")
        movie.faststart = True  # a fragmented file is read from its start: the movie first
        movie.fragments = _read_fragments(data, top, moofs, movie, pieces, blocks)
        movie.indexes = _read_indexes(data, top, moofs, movie)
    movie.chunks = _Chunks(movie)
    if not _inside(movie.chunks.runs, [(box.body, box.end) for box in mdats]):
        raise _damaged("a track points outside its media data")
    kept = list(movie.chunks.runs)  # every kept chunk with bytes lies in one of these
    if movie.dropped:  # a removed track's table may point anywhere: into a fragment too
        runs = (traf.runs for fragment in movie.fragments for traf in fragment.trafs)
        kept += [(run.start, run.size) for run in chain.from_iterable(runs)]
    if _overlapping(kept, movie.dropped):
        raise _damaged("a removed track's samples lie in a kept one's")
    return movie


def _overlapping(kept: list[tuple[int, int]], removed: list[tuple[int, int]]) -> bool:
    """Whether a byte of one of the `removed` (offset, size) ranges lies in a `kept` one: we
    copy kept chunks whole, so that byte would be copied too."""
    kept = sorted(chunk for chunk in kept if chunk[1])
    starts = [offset for offset, _ in kept]
    reach = list(accumulate((offset + size for offset, size in kept), max))  # furthest end yet
    for offset, size in removed:
        before = bisect_left(starts, offset + size)  # kept chunks starting before its end
        if size and before and reach[before - 1] > offset:
            return True
    return False


def _inside(runs: list[tuple[int, int]], spans: list[tuple[int, int]]) -> bool:
    """Whether every run of chunks lies inside one of `spans` (the 'mdat' payloads, in file
    order): then so does each chunk, and a run cannot span two 'mdat's (a header between)."""
    if not runs:
        return True
    offsets, sizes = _columns(runs)
    starts = [-1, *(start for start, _ in spans)]  # a span no run fits in, for those before
    stops = [-1, *(stop for _, stop in spans)]
    found = map(bisect_right, repeat(starts), offsets)  # 1 + the span each starts in
    limits = map(stops.__getitem__, map(sub, found, repeat(1)))
    return all(map(le, map(add, offsets, sizes), limits))


def _top(data: bytes, budget: Budget, blocks: list[Block], pieces: Budget) -> Iterator[Box]:
    """The top-level boxes; bytes after the last box that are no box are trailing data. After
    the first 'moof', the fragments' boxes count on their own budget `pieces`."""
    pos, fragmented, count = 0, False, 0
    while pos < len(data):
        count += 1
        _release(data, count)
        kind = data[pos + 4 : pos + 8]
        (pieces if fragmented and kind in _FRAGMENT_TOP else budget).spend()
        if len(kind) < 4 or kind.translate(None, _PRINTABLE):  # what is left is no type
            break
        try:
            found = isobmff.box_at(data, pos, len(data), _LABEL)
        except DamagedImage:
            if kind in (b"moov", b"mdat", b"ftyp", b"moof"):
                raise
            break
        fragmented = fragmented or kind == b"moof"
        yield found
        pos = found.end
    if pos < len(data):
        if pos == 0:
            raise _damaged("it does not start with a box")
        blocks.append(Block(BlockKind.MEDIA, "data after the last MP4 box", data[pos:]))


def _release(data: bytes, count: int, every: int = _RELEASE_EVERY) -> None:
    """When `data` is a mapped file (the CLI's way), unmap the pages read so far every
    `every` boxes: the kernel maps the cached pages around each read too (64 KB), which
    for a file of many small fragments would add up to most of the file. They stay cached."""
    madvise = getattr(data, "madvise", None)
    if count % every == 0 and madvise is not None and hasattr(mmap, "MADV_DONTNEED"):
        madvise(mmap.MADV_DONTNEED)


def _brands(data: bytes, ftyp: Box) -> tuple[bytes, list[bytes]]:
    """The major brand (a video brand, as `accepts` wants of a first 'ftyp': one after a
    'wide' or 'free' box is written back too) and the known compatible brands."""
    reader = _reader(data, ftyp)
    major = reader.take(4)
    if major not in VIDEO_BRANDS:
        raise _damaged(f"its file type '{_name(major)}' is no video's")
    reader.take(4)
    compatible: list[bytes] = []
    for _ in range(min(reader.left() // 4, MAX_BRANDS)):
        brand = reader.take(4)
        if brand in _KEPT_BRANDS and brand not in compatible:
            compatible.append(brand)
    return major, compatible


def _reference_time(data: bytes, prft: Box) -> Block:
    """A producer reference time ('prft'): the wall-clock time (NTP, seconds since 1900) at
    which a fragment's frame was captured or encoded."""
    _, _, reader = _full(data, prft)
    reader.take(4)  # the reference track
    seconds = reader.uint(4) - _EPOCH_1900_TO_1970
    return Block(BlockKind.MOVIE, "created@the producer reference time", str(seconds).encode())


def _top_block(data: bytes, box: Box, budget: Budget) -> list[Block]:
    payload = data[box.body : box.end]
    if box.type in (b"free", b"skip", b"wide"):
        if payload.strip(b"\0"):
            return [Block(BlockKind.MEDIA, f"old data in a '{_name(box.type)}' box", payload)]
        return []
    if box.type == b"uuid":
        if isobmff.uuid_of(data, box) == XMP_UUID:
            return [Block(BlockKind.XMP, "XMP (MP4 uuid box)", payload)]
        return [Block(BlockKind.OTHER, "MP4 'uuid' box")]
    if box.type == b"meta":
        return _meta_blocks(data, box, budget, "the file")
    if box.type == b"PICT":  # old QuickTime's preview picture (a 'pnot' names it)
        return [Block(BlockKind.THUMBNAIL, "QuickTime preview picture ('PICT')", payload)]
    if box.type == b"udta":
        return _udta_blocks(data, box, budget, "the file")
    return [Block(BlockKind.OTHER, f"MP4 '{_name(box.type)}' box")]


def _read_moov(
    data: bytes, moov: Box, budget: Budget, blocks: list[Block], fragments: bool = False
) -> _Movie:
    children = _children(data, moov, budget)
    mvhd = _one(children, b"mvhd")
    if mvhd is None:
        raise _damaged("it has no movie header")
    mvex = _one(children, b"mvex")
    if fragments and mvex is None:
        raise _damaged("it has fragments but no movie extends box")
    extends = _read_mvex(data, mvex, budget, blocks) if mvex else None
    version, _, reader = _full(data, mvhd)
    stamps = [_stamp(reader, version)]
    timescale = reader.uint(4)
    duration = reader.uint(8 if version == 1 else 4)
    rate_volume = reader.take(6)
    reader.take(10)
    matrix = reader.take(36)
    traks = [box for box in children if box.type == b"trak"]
    if len(traks) > MAX_TRACKS:
        raise _damaged("too many tracks")
    tracks: list[_Track] = []
    track_ids: list[int] = []
    removed: dict[int, tuple[bytes, list[Box], int]] = {}
    dropped: list[tuple[int, int]] = []
    chapters = _chapter_tracks(data, traks, budget)
    for trak in traks:
        track = _read_track(
            data, trak, budget, blocks, stamps, track_ids, removed, extends, chapters
        )
        if isinstance(track, _Track):
            tracks.append(track)
        else:
            dropped.extend(track)
    for box in children:
        if box.type == b"udta":
            blocks.extend(_udta_blocks(data, box, budget, "the movie"))
        elif box.type == b"meta":
            blocks.extend(_meta_blocks(data, box, budget, "the movie"))
        elif box.type in (b"uuid", b"free", b"skip"):  # XMP some editors put here; old bytes
            blocks.extend(_top_block(data, box, budget))
        elif box.type not in (b"mvhd", b"trak", b"iods", b"mvex"):
            blocks.append(Block(BlockKind.OTHER, f"MP4 '{_name(box.type)}' box in the movie"))
    if any(stamps):
        blocks.append(_date_block(min(s for s in stamps if s), "movie and track headers"))
    ids = {track.id for track in tracks}
    if len(ids) != len(tracks):
        raise _damaged("two tracks have the same number")
    for track in tracks:
        track.refs = [
            (kind, targets) for kind, targets in track.refs if targets and set(targets) <= ids
        ]
    if timescale <= 0:
        raise _damaged("the movie has no timescale")
    if extends is not None:
        if len(set(track_ids)) != len(track_ids):
            raise _damaged("two tracks have the same number")
        if any(track.id not in extends.defaults for track in tracks):
            raise _damaged("a track has no fragment defaults")
    movie = _Movie(None, timescale, duration, rate_volume, matrix, tracks, True, blocks)
    movie.extends, movie.track_ids, movie.removed = extends, track_ids, removed
    movie.dropped = dropped
    return movie


def _stamp(reader: Reader, version: int) -> int:
    """Creation (else modification) time of a header in seconds since 1904; 0 when none."""
    width = 8 if version == 1 else 4
    created, modified = reader.uint(width), reader.uint(width)
    return created or modified


def _date_block(stamp: int, where: str) -> Block:
    return Block(BlockKind.MOVIE, f"created@{where}", str(stamp - _EPOCH_1904_TO_1970).encode())


def _read_track(
    data: bytes,
    trak: Box,
    budget: Budget,
    blocks: list[Block],
    stamps: list[int],
    ids: list[int],
    removed: dict[int, tuple[bytes, list[Box], int]],
    extends: _Extends | None,
    chapters: set[int],
) -> _Track | list[tuple[int, int]]:
    """A kept track, or the chunks of a removed one (to check no kept chunk holds them)."""
    fragmented = extends is not None
    children = _children(data, trak, budget)
    tkhd, mdia = _one(children, b"tkhd"), _one(children, b"mdia")
    if tkhd is None or mdia is None:
        raise _damaged("a track without header or media")
    media = _children(data, mdia, budget)
    mdhd, hdlr, minf = (_one(media, kind) for kind in (b"mdhd", b"hdlr", b"minf"))
    if mdhd is None or hdlr is None or minf is None:
        raise _damaged("a track without media header, handler or media information")
    _, _, reader = _full(data, hdlr)
    reader.take(4)
    handler = reader.take(4)
    info = _children(data, minf, budget)
    stbl = _one(info, b"stbl")
    if stbl is None:
        raise _damaged("a track without sample table")
    table = _children(data, stbl, budget)
    stsd = _one(table, b"stsd")
    if stsd is None:
        raise _damaged("a track without sample description")
    _, _, reader = _full(data, stsd)
    count = reader.uint(4)
    entries = isobmff.boxes(data, reader.pos, stsd.end, budget)
    if count != len(entries) or not 0 < count <= MAX_ENTRIES:
        raise _damaged("a track's sample descriptions do not add up")
    known = {b"vide": VIDEO_CODECS, b"soun": AUDIO_CODECS}.get(handler, frozenset())
    unknown = [entry.type for entry in entries if entry.type not in known]
    if unknown and handler in (b"vide", b"soun"):
        if any(kind in (b"encv", b"enca") for kind in unknown):
            raise UnsupportedFormat("An encrypted video")
        what = "picture" if handler == b"vide" else "sound"
        raise UnsupportedFormat(f"A video whose {what} is in '{_name(unknown[0])}'")
    version, _, reader = _full(data, tkhd)
    created = _stamp(reader, version)
    ids.append(reader.uint(4))
    for box in children:  # a removed track's are told too
        if box.type == b"udta":
            blocks.extend(_udta_blocks(data, box, budget, "a track"))
        elif box.type == b"meta":
            blocks.extend(_meta_blocks(data, box, budget, "a track"))
        elif box.type not in _TRACK_STRUCTURE:
            blocks.append(Block(BlockKind.OTHER, f"MP4 '{_name(box.type)}' box in a track"))
    if unknown:
        version, _, reader = _full(data, mdhd)
        stamps.extend((created, _stamp(reader, version)))
        timescale = reader.uint(4)
        samples = _timed_samples(data, entries, table, timescale)
        blocks.extend(_removed_track(data, handler, entries, samples, ids[-1] in chapters))
        if fragmented:
            removed[ids[-1]] = (handler, entries, timescale)
        return _removed_chunks(data, table, len(entries))
    version, flags, reader = _full(data, tkhd)
    stamps.append(_stamp(reader, version))
    track_id = reader.uint(4)
    reader.take(4)
    duration = reader.uint(8 if version == 1 else 4)
    reader.take(8)
    layer_group_volume = reader.take(6)
    reader.take(2)
    matrix = reader.take(36)
    width, height = (reader.uint(4), reader.uint(4)) if handler == b"vide" else (0, 0)
    if handler == b"vide":
        first = entries[0]
        coded = data[first.body + 24 : min(first.body + 28, first.end)]
        width, height = _display_size(width, height, coded)
    version, _, reader = _full(data, mdhd)
    stamps.append(_stamp(reader, version))
    timescale = reader.uint(4)
    media_duration = reader.uint(8 if version == 1 else 4)
    language = reader.uint(2) & 0x7FFF
    if not timescale:
        raise _damaged("a track has no timescale")
    _check_references(data, _one(info, b"dinf"), budget)
    balance = b"\0\0"
    smhd = _one(info, b"smhd")
    if smhd is not None:
        balance = _full(data, smhd)[2].take(2)
    tables, groups, chunks, wide = _sample_table(data, table, len(entries), fragmented)
    rebuilt = [_sample_entry(data, entry, handler, budget, blocks) for entry in entries]
    track = _Track(
        track_id,
        handler,
        flags & 7,
        duration,
        layer_group_volume,
        isobmff.quarter_turns(matrix, width, height),
        width,
        height,
        timescale,
        media_duration,
        language,
        balance,
        _edits(data, _one(children, b"edts"), budget),
        rebuilt,
        tables,
        groups,
        chunks,
        wide,
    )
    tref = _one(children, b"tref")
    for ref in _children(data, tref, budget) if tref else ():
        if ref.type in _KEPT_REFERENCES:
            reader = _reader(data, ref)
            track.refs.append((ref.type, tuple(reader.uint(4) for _ in range(reader.left() // 4))))
    return track


def _display_size(width: int, height: int, coded: bytes) -> tuple[int, int]:
    """A picture track's display size (16.16) as it was when it can be that of its pictures
    (`coded`: the first sample description's width and height): its height theirs give or
    take a crop, its width within a factor of four (an anamorphic picture's); else theirs.
    Any other pair of numbers could be a planted code."""
    if len(coded) < 4 or not (pictures := struct.unpack(">HH", coded))[0]:
        return width, height
    wide, high = pictures
    if abs((height >> 16) - high) <= high // 8 + 8 and wide // 4 <= width >> 16 <= wide * 4:
        return width, height
    return wide << 16, high << 16


def _removed_track(
    data: bytes, handler: bytes, entries: list[Box], samples: Samples, chapters: bool
) -> list[Block]:
    """What a track we drop was: its handler and codec, and for a timed location track its
    route as "seconds place" lines, for a chapter track its chapters' titles (read from its
    samples)."""
    codec = _name(entries[0].type) if entries else "none"
    found = [Block(BlockKind.MOVIE, f"track@{_what(handler, entries)}", codec.encode())]
    if chapters and codec in ("text", "tx3g"):
        return found + _chapter_titles(data, samples)
    return found + _route(data, handler, entries, samples)


_MAX_CHAPTERS = 20  # titles told of a chapter track
_MAX_TITLE = 200  # bytes of each
_CHAPTER_SAMPLES = 1000  # samples read for them (a count costs eight bytes of 'stts')


def _chapter_titles(data: bytes, samples: Samples) -> list[Block]:
    """The titles of a chapter track's samples (each a 16-bit length, then the text)."""
    titles = []
    for _, pos, end in islice(samples, _CHAPTER_SAMPLES):
        length = int.from_bytes(data[pos : pos + 2], "big") if pos + 2 <= end else 0
        title = _text(data[pos + 2 : min(end, pos + 2 + length, pos + 2 + _MAX_TITLE)])
        if title:
            titles.append(title)
        if len(titles) == _MAX_CHAPTERS:
            break
    text = "; ".join(titles)
    return [Block(BlockKind.MOVIE, "chapters@a chapter track", text.encode())] if text else []


def _chapter_tracks(data: bytes, traks: list[Box], budget: Budget) -> set[int]:
    """The ids of the tracks a 'tref' names as chapters ('chap')."""
    found: set[int] = set()
    for trak in traks:
        tref = _one(_children(data, trak, budget), b"tref")
        for ref in _children(data, tref, budget) if tref else ():
            if ref.type == b"chap":
                reader = _reader(data, ref)
                found.update(reader.uint(4) for _ in range(reader.left() // 4))
    return found


def _what(handler: bytes, entries: list[Box]) -> str:
    codec = _name(entries[0].type) if entries else "none"
    return f"'{_name(handler)}' track ('{codec}')"


def _route(data: bytes, handler: bytes, entries: list[Box], samples: Samples) -> list[Block]:
    """The route of a removed 'mebx' or GPMF track, as "seconds place" lines (none if the
    samples cannot be read: the track is found and named all the same)."""
    codec = _name(entries[0].type) if entries else "none"
    try:
        read = _ROUTES.get(codec)
        # Their own budget: a long route must not use up the boxes of the whole file.
        budget = Budget(_LABEL, MAX_ROUTE_UNITS)
        route = read(data, entries, samples, budget) if read else []
    except (DamagedImage, ValueError, IndexError, struct.error):
        route = []
    if not route:
        return []
    text = "\n".join(f"{t:.3f} {place}" for t, place in route)
    return [Block(BlockKind.MOVIE, f"route@{_what(handler, entries)}", text.encode())]


def _check_references(data: bytes, dinf: Box | None, budget: Budget) -> None:
    """Refuse samples kept in another file: we could not clean what is not here."""
    dref = _one(_children(data, dinf, budget), b"dref") if dinf else None
    if dref is None:
        return
    for entry in isobmff.boxes(data, dref.body + 8, dref.end, budget):
        _, flags, _ = _full(data, entry)
        if not flags & 1:
            raise UnsupportedFormat("A video whose pictures are in another file")


def _edits(data: bytes, edts: Box | None, budget: Budget) -> list[tuple[int, int, int]]:
    elst = _one(_children(data, edts, budget), b"elst") if edts else None
    if elst is None:
        return []
    version, _, reader = _full(data, elst)
    size = 8 if version == 1 else 4
    count = reader.uint(4)
    if count * (2 * size + 4) > reader.left():
        raise isobmff.truncated(_LABEL)
    edits = []
    for _ in range(count):
        duration = reader.uint(size)
        time = int.from_bytes(reader.take(size), "big", signed=True)
        edits.append((duration, time, reader.uint(4)))
    return edits


# --- fragments ---------------------------------------------------------------------------------

# 'tfhd' flags: base data offset, description index, default duration, size, flags; then
# duration-is-empty and default-base-is-moof. 'trun' flags: data offset, first sample flags,
# then per sample: duration, size, flags, composition time offset.
_BASE_OFFSET, _DESCRIPTION, _DEFAULT_SIZE, _BASE_IS_MOOF = 0x1, 0x2, 0x10, 0x20000
_KEPT_TFHD_FLAGS = 0x2 | 0x8 | 0x10 | 0x20 | 0x10000
_DATA_OFFSET, _FIRST_FLAGS, _SAMPLE_SIZE = 0x1, 0x4, 0x200
_SAMPLE_FIELDS = (0x100, 0x200, 0x400, 0x800)
_SMOOTH_TIMING = frozenset(
    {
        bytes.fromhex("6D1D9B0542D544E680E2141DAFF757B2"),
        bytes.fromhex("D4807EF2CA3946958E5426CB9E46A79F"),
    }
)
_REFUSED_IN_FRAGMENTS = {
    b"senc": "An encrypted video",
    b"pssh": "An encrypted video",
    b"saiz": "A fragmented video with auxiliary sample information",
    b"saio": "A fragmented video with auxiliary sample information",
}


def _read_mvex(data: bytes, mvex: Box, budget: Budget, blocks: list[Block]) -> _Extends:
    """'mvex': the fragment duration and every track's sample defaults."""
    duration: int | None = None
    defaults: dict[int, tuple[int, int, int, int]] = {}
    for child in _children(data, mvex, budget):
        if child.type == b"mehd":
            if duration is not None:
                raise _damaged("more than one fragment duration")
            version, _, reader = _full(data, child)
            duration = reader.uint(8 if version == 1 else 4)
        elif child.type == b"trex":
            _, _, reader = _full(data, child)
            track = reader.uint(4)
            if track in defaults:
                raise _damaged("two fragment defaults for one track")
            defaults[track] = (reader.uint(4), reader.uint(4), reader.uint(4), reader.uint(4))
        else:
            blocks.append(Block(BlockKind.OTHER, f"MP4 '{_name(child.type)}' box in the movie"))
    return _Extends(duration, defaults)


def _read_fragments(
    data: bytes,
    top: list[Box],
    moofs: list[int],
    movie: _Movie,
    budget: Budget,
    blocks: list[Block],
) -> list[_Fragment]:
    """Every 'moof' with the 'mdat' boxes after it (up to the next 'moof'): the kept tracks'
    fragments, each run checked to lie in its fragment's media data, none overlapping."""
    extends = movie.extends
    if extends is None:
        return []
    kept = {track.id: len(track.entries) for track in movie.tracks}
    known = set(movie.track_ids)
    fragments: list[_Fragment] = []
    samples = [0]
    timed: dict[int, list[_Traf]] = {}  # removed timed tracks' fragments, for the route
    noted: dict[bytes, Box] = {}  # other boxes in fragments: the first of each type is told
    for number, index in enumerate(moofs):
        _release(data, number + 1)
        stop = moofs[number + 1] if number + 1 < len(moofs) else len(top)
        spans = [(box.body, box.end) for box in top[index + 1 : stop] if box.type == b"mdat"]
        moof = top[index]
        children = _children(data, moof, budget)
        mfhd = _one(children, b"mfhd")
        if mfhd is None:
            raise _damaged("a fragment without its header")
        sequence = _full(data, mfhd)[2].uint(4)
        previous_end, seen, trafs = moof.start, set(), []
        dropped: list[tuple[int, int]] = []  # the removed tracks' runs
        for child in children:
            if child.type in _REFUSED_IN_FRAGMENTS:
                raise UnsupportedFormat(_REFUSED_IN_FRAGMENTS[child.type])
            if child.type == b"mfhd":
                continue
            if child.type != b"traf":
                noted.setdefault(child.type, child)
                continue
            traf, previous_end = _read_traf(
                data, child, moof.start, previous_end, extends, known, budget, noted, samples
            )
            if traf.track in seen:
                raise _damaged("a fragment repeats a track")
            seen.add(traf.track)
            for run in traf.runs:
                inside = any(a <= run.start and run.start + run.size <= b for a, b in spans)
                if run.size and not inside:
                    raise _damaged("a fragment points outside its media data")
            if traf.track in movie.removed:
                timed.setdefault(traf.track, []).append(traf)
                dropped.extend((run.start, run.size) for run in traf.runs)
            if traf.track in kept:
                description = traf.fields[:4] if traf.flags & _DESCRIPTION else b""
                index_ = (
                    int.from_bytes(description, "big")
                    if description
                    else extends.defaults[traf.track][0]
                )
                if not 0 < index_ <= kept[traf.track]:
                    raise _damaged("a fragment names a sample description that is not there")
                trafs.append(traf)
        if _overlapping([(run.start, run.size) for t in trafs for run in t.runs], dropped):
            raise _damaged("a removed track's samples lie in a kept one's")
        if trafs:
            fragments.append(_Fragment(sequence, trafs, moof.start))
    for kind in sorted(noted):
        blocks.extend(_fragment_block(data, noted[kind], budget))
    for track, track_fragments in timed.items():
        handler, entries, timescale = movie.removed[track]
        if timescale:
            found = _fragment_samples(track_fragments, extends, timescale)
            blocks.extend(_route(data, handler, entries, found))
    return fragments


def _read_indexes(data: bytes, top: list[Box], moofs: list[int], movie: _Movie) -> list[_Index]:
    """The 'sidx' boxes we keep, written anew once the fragments have landed (`_indexed_parts`):
    each one among the boxes just before a 'moof' (`_LEAD`), of a kept track, with media
    references only, each reference from where a fragment starts (its 'moof' or one of those
    boxes before it) to where another starts, its 'mdat' boxes end or the fragments end, and
    holding at least one kept fragment. Any other 'sidx' is dropped: its values are never
    copied. Every reference read counts, kept or not (`MAX_INDEX_REFERENCES`)."""
    if not moofs:  # a movie that could have fragments (an 'mvex') but has none
        return []
    starts, candidates = _fragment_starts(top, moofs, len(data))
    kept = [fragment.start for fragment in movie.fragments]  # in file order
    tracks = {track.id for track in movie.tracks}
    indexes: list[_Index] = []
    references = 0
    for box in candidates:
        index = _read_sidx(data, box)
        if index is None:
            continue
        references += len(index.bounds) - 1
        if references > MAX_INDEX_REFERENCES:
            raise _damaged("its segment indexes have too many references")
        if index.track not in tracks:
            continue  # a removed track's
        if all(map(starts.__contains__, index.bounds)) and _holds_fragments(index.bounds, kept):
            indexes.append(index)
    return indexes


def _fragment_starts(top: list[Box], moofs: list[int], size: int) -> tuple[set[int], list[Box]]:
    """Where a 'sidx' reference may start or end (each 'moof' and each of the index, label and
    'free' boxes just before it; the end of its 'mdat' boxes; the boxes after the last fragment
    and the end of the file), and the 'sidx' boxes just before a 'moof' (one elsewhere indexes
    no fragment of ours)."""
    starts: set[int] = set()
    candidates: list[Box] = []
    for index in moofs:
        lead, after = index, index + 1
        while lead > 0 and top[lead - 1].type in _LEAD:
            lead -= 1
        while after < len(top) and top[after].type == b"mdat":
            after += 1
        starts.update(box.start for box in top[lead : index + 1])
        starts.add(top[after - 1].end)  # what follows is not the fragment's: 'udta', ...
        candidates.extend(box for box in top[lead:index] if box.type == b"sidx")
    tail = len(top)
    while tail > moofs[-1] + 1 and top[tail - 1].type in _LEAD:
        tail -= 1
    starts.update(box.start for box in top[tail:])
    starts.update((top[-1].end, size))
    return starts, candidates


def _read_sidx(data: bytes, box: Box) -> _Index | None:
    """A 'sidx' read field by field (ISO 14496-12 8.16.3), or None when we cannot rewrite it:
    an unknown version, no timescale or no reference, references that do not fill the box (a
    lying count, a truncated box), a reference to another 'sidx' (reference_type 1)."""
    size = box.end - box.body
    version = data[box.body] if size else 2
    width = 8 if version else 4
    head = 12 + 2 * width + 4  # version and flags, reference_ID, timescale, two times, count
    if version > 1 or size < head:
        return None
    fields = data[box.body + 4 : box.body + head]
    track, timescale = struct.unpack_from(">II", fields)
    earliest, offset = struct.unpack_from(">QQ" if version else ">II", fields, 8)
    count = int.from_bytes(fields[-2:], "big")
    if not timescale or not count or size != head + 12 * count:
        return None
    rows = bytes(data[box.body + head : box.end])
    sizes = _words32(rows)[0::3]  # reference_type (top bit) and referenced_size
    if max(sizes) > _MAX_31:
        return None
    bounds = array("q", accumulate(sizes, initial=box.end + offset))  # 8 bytes each
    return _Index(box.start, version, track, timescale, earliest, rows, bounds)


def _holds_fragments(bounds: Sequence[int], kept: list[int]) -> bool:
    """Whether each reference (from one bound to the next) holds a kept fragment's start."""
    for first, end in pairwise(bounds):
        found = bisect_left(kept, first)
        if found == len(kept) or kept[found] >= end:
            return False
    return True


def _fragment_block(data: bytes, box: Box, budget: Budget) -> list[Block]:
    """What another box in a fragment holds: user data, metadata and XMP as in the movie."""
    if box.type == b"udta":
        return _udta_blocks(data, box, budget, "a fragment")
    if box.type == b"meta":
        return _meta_blocks(data, box, budget, "a fragment")
    if box.type == b"uuid" and isobmff.uuid_of(data, box) == XMP_UUID:
        return [Block(BlockKind.XMP, "XMP (MP4 uuid box in a fragment)", data[box.body : box.end])]
    return [Block(BlockKind.OTHER, f"MP4 '{_name(box.type)}' box in a fragment")]


def _fragment_samples(
    trafs: list[_Traf], extends: _Extends, timescale: int
) -> Iterator[tuple[float, int, int]]:
    """(start in seconds, first byte, end) of each sample with bytes in a removed track's
    fragments, one at a time: 'tfdt' (else the end of the fragment before) and the durations."""
    clock = 0
    for traf in trafs:
        _, duration, size, _ = extends.defaults[traf.track]
        pos = 0
        for flag in (0x2, 0x8, 0x10, 0x20):
            if traf.flags & flag:
                value = int.from_bytes(traf.fields[pos : pos + 4], "big")
                pos += 4
                duration = value if flag == 0x8 else duration
                size = value if flag == _DEFAULT_SIZE else size
        clock = traf.decode_time[1] if traf.decode_time else clock
        for run in traf.runs:
            present = [flag for flag in _SAMPLE_FIELDS if run.flags & flag]
            if not present:  # every sample of the run alike
                for sample in range(run.count if size else 0):
                    yield (
                        clock / timescale,
                        run.start + sample * size,
                        run.start + (sample + 1) * size,
                    )
                    clock += duration
                clock += 0 if size else duration * run.count
                continue
            rows, width, at = _words32(run.rows), len(present), run.start
            durations = present[0] == 0x100
            column = present.index(_SAMPLE_SIZE) if _SAMPLE_SIZE in present else -1
            for sample in range(run.count):
                length = rows[sample * width + column] if column >= 0 else size
                if length:
                    yield clock / timescale, at, at + length
                at += length
                clock += rows[sample * width] if durations else duration


def _words32(raw: bytes) -> "array[int]":
    """Big-endian 32-bit words as a compact array (4 bytes each, no object per word)."""
    words = array(_U32, raw)
    if sys.byteorder == "little":
        words.byteswap()
    return words


def _read_traf(
    data: bytes,
    traf: Box,
    moof_start: int,
    previous_end: int,
    extends: _Extends,
    known: set[int],
    budget: Budget,
    noted: dict[bytes, Box],
    samples: list[int],
) -> tuple[_Traf, int]:
    """One track fragment and the end of its data (the base of the next one, unless it says)."""
    children = _children(data, traf, budget)
    tfhd = _one(children, b"tfhd")
    if tfhd is None:
        raise _damaged("a track fragment without its header")
    flags, reader = _full(data, tfhd)[1:]
    track = reader.uint(4)
    if track not in known:
        raise _damaged("a fragment of a track that is not there")
    if track not in extends.defaults:
        raise _damaged("a track has no fragment defaults")
    size = extends.defaults[track][2]
    base = moof_start if flags & _BASE_IS_MOOF else previous_end
    if flags & _BASE_OFFSET:
        base = reader.uint(8)
    fields = b""
    for flag in (0x2, 0x8, 0x10, 0x20):
        if flags & flag:
            value = reader.take(4)
            fields += value
            if flag == _DEFAULT_SIZE:
                size = int.from_bytes(value, "big")
    decode_time = None
    if tfdt := _one(children, b"tfdt"):
        version, _, reader = _full(data, tfdt)
        decode_time = (version & 1, reader.uint(8 if version == 1 else 4))
    runs: list[_Run] = []
    pos = base
    count = 0
    extra: list[bytes] = []
    for child in children:
        if child.type == b"trun":
            run = _read_trun(data, child, base, pos, size, samples)
            runs.append(run)
            count += run.count
            pos = run.start + run.size
        elif child.type in _REFUSED_IN_FRAGMENTS:
            raise UnsupportedFormat(_REFUSED_IN_FRAGMENTS[child.type])
        elif child.type in (b"sbgp", b"sgpd"):
            pass  # after the runs: how many samples there are
        elif child.type == b"uuid" and isobmff.uuid_of(data, child) in _SMOOTH_TIMING:
            pass  # Smooth Streaming's fragment times ('tfxd', 'tfrf'): timing, rebuilt by players
        elif child.type not in (b"tfhd", b"tfdt", b"sdtp"):
            noted.setdefault(child.type, child)
    extra.extend(_sample_groups(data, children, count, fragment=True))
    if sdtp := _one(children, b"sdtp"):
        extra.insert(0, _sdtp(data, sdtp, count))
    return _Traf(track, flags & _KEPT_TFHD_FLAGS, fields, decode_time, runs, extra), pos


def _read_trun(
    data: bytes, trun: Box, base: int, pos: int, default_size: int, samples: list[int]
) -> _Run:
    """One track run: its samples' fields as they are, and where its samples lie."""
    version, flags, reader = _full(data, trun)
    if version > 1:
        raise _damaged("a fragment run of an unknown version")
    count = reader.uint(4)
    start = pos
    if flags & _DATA_OFFSET:
        start = base + int.from_bytes(reader.take(4), "big", signed=True)
    first_flags = reader.take(4) if flags & _FIRST_FLAGS else b""
    present = [flag for flag in _SAMPLE_FIELDS if flags & flag]
    samples[0] += count
    if samples[0] > MAX_SAMPLES or count * 4 * len(present) > reader.left():
        raise _damaged("a fragment run is longer than its box")
    rows = reader.take(count * 4 * len(present))
    if flags & _SAMPLE_SIZE:
        size = sum(_words32(rows)[present.index(_SAMPLE_SIZE) :: len(present)])
    else:
        size = default_size * count
    if start < 0 or start + size > len(data):
        raise _damaged("a fragment points outside the file")
    mask = _FIRST_FLAGS | sum(_SAMPLE_FIELDS)
    return _Run(version, flags & mask, count, first_flags, rows, start, size)


# --- sample tables -----------------------------------------------------------------------------


def _words(reader: Reader, count: int, size: int = 4) -> tuple[int, ...]:
    if count > MAX_SAMPLES or count * size > reader.left():
        raise _damaged("a sample table is longer than its box")
    code = {4: "I", 8: "Q"}[size]
    values = struct.unpack_from(f">{count}{code}", reader.data, reader.pos)
    reader.pos += count * size
    return values


def _sample_groups(
    data: bytes, boxes: list[Box], samples: int, fragment: bool = False, whole: bool = False
) -> list[bytes]:
    """The kept groupings of a sample table or a track fragment (of `samples` samples), each
    box written anew (`_sample_group`). `whole`: every reference to these descriptions is
    here (the movie has no fragments), so those no sample uses are written as zeros."""
    described = _descriptions(data, boxes)
    used = _used_descriptions(data, boxes) if whole else None
    return [
        rebuilt
        for box in boxes
        if box.type in (b"sgpd", b"sbgp")
        and (rebuilt := _sample_group(data, box, samples, described, fragment, used)) is not None
    ]


def _used_descriptions(data: bytes, boxes: list[Box]) -> dict[bytes, set[int]]:
    """The description indices the 'sbgp' of each grouping type among `boxes` names."""
    used: dict[bytes, set[int]] = {}
    for box in boxes:
        if box.type == b"sbgp":
            version, _, reader = _full(data, box)
            kind = reader.take(4)
            reader.take(4 if version == 1 else 0)
            used.setdefault(kind, set()).update(_words(reader, 2 * reader.uint(4))[1::2])
    return used


def _descriptions(data: bytes, boxes: list[Box]) -> dict[bytes, int]:
    """How many entries the 'sgpd' of each grouping type among `boxes` has."""
    found = {}
    for box in boxes:
        if box.type == b"sgpd":
            version, _, reader = _full(data, box)
            kind = reader.take(4)
            reader.take((4 if version >= 1 else 0) + (4 if version >= 2 else 0))
            found[kind] = reader.uint(4)
    return found


_LOCAL_GROUPS = 0x10000  # a fragment's own descriptions are numbered from 0x10001


def _described(index: int, entries: int, fragment: bool) -> bool:
    """Whether a group description index names one there is (0: no group). A fragment's
    indices below 0x10000 name the movie's descriptions (not checked here)."""
    if fragment and index > _LOCAL_GROUPS:
        return index - _LOCAL_GROUPS <= entries
    return index <= (_LOCAL_GROUPS - 1 if fragment else entries)


def _sample_group(
    data: bytes,
    box: Box,
    samples: int,
    described: dict[bytes, int],
    fragment: bool,
    used: dict[bytes, set[int]] | None = None,
) -> bytes | None:
    """A kept grouping's 'sgpd' or 'sbgp' written anew from its fields (None for the other
    groupings, and for a description whose entries are not the size its grouping gives): the
    type, parameter, default index and entries as they were, reserved bits zero, nothing after
    the last entry; with `used`, the entries no run and no default names as zeros. Runs of
    more samples than there are, or an index of a description that is not there, are damage
    (or a code planted in them)."""
    version, _, reader = _full(data, box)
    kind = reader.take(4)
    if kind not in _KEPT_GROUPS or version > 2:
        return None
    known = described.get(kind, 0)
    if box.type == b"sbgp":
        head = kind + (reader.take(4) if version == 1 else b"")
        count = reader.uint(4)
        rows = _words(reader, 2 * count)
        if sum(rows[0::2]) > samples or not all(
            _described(index, known, fragment) for index in rows[1::2]
        ):
            raise _damaged("a sample group names samples or descriptions that are not there")
        return isobmff.full(
            b"sbgp", version, 0, head + struct.pack(f">I{2 * count}I", count, *rows)
        )
    size, mask = _GROUP_ENTRIES[kind]
    length = reader.uint(4) if version >= 1 else size
    default = reader.take(4) if version >= 2 else b""
    if default and not _described(int.from_bytes(default, "big"), known, fragment):
        raise _damaged("a sample group's default names a description that is not there")
    count = reader.uint(4)
    if count > reader.left():
        raise _damaged("a sample group is longer than its box")
    named = None
    if used is not None:  # the descriptions the runs name, and the default
        named = used.get(kind, set()) | {int.from_bytes(default or bytes(4), "big")}
    entries = []
    for index in range(1, count + 1):
        if (reader.uint(4) if length == 0 else length) != size:
            return None
        entry = bytes(a & b for a, b in zip(reader.take(size), mask, strict=True))
        entries.append(entry if named is None or index in named else bytes(size))
    body = kind + (struct.pack(">I", size) if version >= 1 else b"") + default
    return isobmff.full(b"sgpd", version, 0, body + struct.pack(">I", count) + b"".join(entries))


# The entry of each kept grouping: its size and the bits it defines (the rest are reserved).
_GROUP_ENTRIES = {
    b"roll": (2, b"\xff\xff"),  # roll distance
    b"prol": (2, b"\xff\xff"),
    b"sync": (1, b"\x3f"),  # the NAL unit type
    b"rap ": (1, b"\xff"),  # leading samples known, how many
    b"tele": (1, b"\x80"),  # level independently decodable
}


def _reserved_to_unknown(flags: int) -> int:
    """One 'sdtp' entry with each of its three last fields that holds the reserved value 3
    (depends on, is depended on, redundancy) as 0, unknown; leading samples as they were."""
    for shift in (4, 2, 0):
        if flags >> shift & 3 == 3:
            flags &= ~(3 << shift)
    return flags


_SDTP_ENTRIES = bytes(map(_reserved_to_unknown, range(256)))


def _sdtp(data: bytes, box: Box, samples: int) -> bytes:
    """'sdtp': an entry for each of the `samples` at most, reserved values as unknown (a
    code planted in the entries keeps only what the fields mean)."""
    reader = _full(data, box)[2]
    return _table(b"sdtp", 0, reader.take(min(reader.left(), samples)).translate(_SDTP_ENTRIES))


def _table(kind: bytes, version: int, body: bytes) -> bytes:
    return isobmff.full(kind, version, 0, body)


def _counted(kind: bytes, version: int, values: tuple[int, ...]) -> bytes:
    """A full box of a count and `values` (uint32), as 'stts', 'stss', 'stsc' are laid out."""
    count = len(values) // {b"stts": 2, b"ctts": 2, b"stsc": 3}.get(kind, 1)
    return _table(kind, version, struct.pack(f">I{len(values)}I", count, *values))


def _sample_table(
    data: bytes, table: list[Box], descriptions: int, fragmented: bool = False
) -> tuple[list[bytes], list[bytes], list[tuple[int, int]], bool]:
    """The rewritten tables, kept sample groups, the chunks (offset, size) and whether the
    offsets were 64-bit, checked against each other (empty ones in a fragmented movie, whose
    samples are in its fragments)."""
    found = {box.type: box for box in table}
    grouping = sum(box.type in (b"sgpd", b"sbgp") for box in table)  # one pair per grouping
    if len(found) + grouping - len(found.keys() & {b"sgpd", b"sbgp"}) != len(table):
        raise _damaged("a sample table repeats a box")
    if b"stz2" in found:
        raise UnsupportedFormat("A video with compact sample sizes ('stz2')")
    stsz, stsc = found.get(b"stsz"), found.get(b"stsc")
    offsets_box = found.get(b"stco") or found.get(b"co64")
    stts = found.get(b"stts")
    if stsz is None or stsc is None or offsets_box is None or stts is None:
        raise _damaged("a sample table is incomplete")
    constant, sizes = _sizes(data, stsz)
    count = len(sizes)
    out = []
    _, _, reader = _full(data, stts)
    times = _counted_rows(_words(reader, 2 * reader.uint(4)))
    if sum(times[0::2]) != count:
        raise _damaged("the sample times do not match the samples")
    out.append(_counted(b"stts", 0, times))
    if ctts := found.get(b"ctts"):
        version, _, reader = _full(data, ctts)
        offsets = _counted_rows(_words(reader, 2 * reader.uint(4)))
        if sum(offsets[0::2]) > count:
            raise _damaged("the composition offsets cover more samples than there are")
        out.append(_counted(b"ctts", 1 if version == 1 else 0, offsets))
        if b"cslg" in found and offsets:
            out.append(_cslg(times, offsets))
    for kind in (b"stss", b"stps"):
        if box := found.get(kind):
            _, _, reader = _full(data, box)
            numbers = _words(reader, reader.uint(4))
            if any(not 0 < n <= count for n in numbers):
                raise _damaged("a sample table names a sample that is not there")
            out.append(_counted(kind, 0, numbers))
    if sdtp := found.get(b"sdtp"):
        out.append(_sdtp(data, sdtp, count))
    _, _, reader = _full(data, stsc)
    runs = _words(reader, 3 * reader.uint(4))
    out.append(_counted(b"stsc", 0, runs))
    out.append(
        _table(
            b"stsz",
            0,
            struct.pack(">II", constant, count)
            + (b"" if constant else struct.pack(f">{count}I", *sizes)),
        )
    )
    wide = offsets_box.type == b"co64"
    _, _, reader = _full(data, offsets_box)
    offsets = _words(reader, reader.uint(4), 8 if wide else 4)
    groups = _sample_groups(data, table, count, whole=not fragmented)
    empty = fragmented and not sizes and not runs and not offsets
    return out, groups, _chunks(sizes, runs, offsets, descriptions, empty), wide


def _sizes(data: bytes, stsz: Box) -> tuple[int, tuple[int, ...]]:
    """The constant size of 'stsz' (0: none) and every sample's size."""
    _, _, reader = _full(data, stsz)
    constant, count = reader.uint(4), reader.uint(4)
    if count > MAX_SAMPLES:  # before the sizes are made: a count costs four bytes of the file
        raise _damaged("too many samples")
    if constant * count > len(data):
        raise _damaged("its samples are larger than the file")
    return constant, (constant,) * count if constant else _words(reader, count)


def _chunks(
    sizes: tuple[int, ...],
    runs: tuple[int, ...],
    offsets: tuple[int, ...],
    descriptions: int,
    empty: bool,
) -> list[tuple[int, int]]:
    """(offset, size) of every chunk, from the sample sizes, the sample-to-chunk runs and the
    chunk offsets, checked against each other (`empty`: a fragmented movie's empty tables)."""
    ends = [0, *accumulate(sizes)]
    layout = [] if empty else _chunk_runs(len(sizes), runs, len(offsets), descriptions)
    firsts = chain.from_iterable(  # each chunk's first sample, a run of chunks at a time
        range(first, first + (stop - start) * n, n) if n else repeat(first, stop - start)
        for start, stop, first, n in layout
    )
    at = list(map(ends.__getitem__, chain(firsts, (len(sizes),))))  # their first bytes
    return list(zip(offsets if layout else (), map(sub, at[1:], at[:-1]), strict=True))


def _removed_chunks(data: bytes, table: list[Box], descriptions: int) -> list[tuple[int, int]]:
    """(offset, size) of every chunk of a track we remove, from its sizes, sample-to-chunk
    and offset tables alone (none when it has no such tables: no sample to find)."""
    found = {box.type: box for box in table}
    if b"stz2" in found:
        raise UnsupportedFormat("A video with compact sample sizes ('stz2')")
    stsz, stsc = found.get(b"stsz"), found.get(b"stsc")
    offsets_box = found.get(b"stco") or found.get(b"co64")
    if stsz is None or stsc is None or offsets_box is None:
        return []
    sizes = _sizes(data, stsz)[1]
    _, _, reader = _full(data, stsc)
    runs = _words(reader, 3 * reader.uint(4))
    _, _, reader = _full(data, offsets_box)
    offsets = _words(reader, reader.uint(4), 8 if offsets_box.type == b"co64" else 4)
    empty = not sizes and not runs and not offsets
    return _chunks(sizes, runs, offsets, descriptions, empty)


def _counted_rows(values: tuple[int, ...]) -> tuple[int, ...]:
    """The (count, value) rows of 'stts' or 'ctts' without those of no samples: they describe
    nothing, so their value could be anything (a planted 64-bit date is a row of count 0)."""
    if all(values[0::2]):
        return values
    rows = zip(values[0::2], values[1::2], strict=True)
    return tuple(chain.from_iterable(row for row in rows if row[0]))


def _cslg(times: tuple[int, ...], offsets: tuple[int, ...]) -> bytes:
    """'cslg' (ISO/IEC 14496-12 8.6.1.4) worked out from the decoding times and composition
    offsets (as signed 32-bit numbers, as players read them), not copied: any 20 or 40 bytes
    could stand in it. Version 1 when a time needs 64 bits."""
    shifts = [value - (value >> 31 << 32) for value in offsets[1::2]]
    least, greatest = min(shifts), max(shifts)
    start, end = _composition_span(times, offsets[0::2], shifts)
    fields = (max(0, -least), least, greatest, start, end)
    if all(-(2**31) <= value < 2**31 for value in fields):
        return _table(b"cslg", 0, struct.pack(">5i", *fields))
    return _table(b"cslg", 1, struct.pack(">5q", *fields))


def _composition_span(
    times: tuple[int, ...], counts: tuple[int, ...], shifts: list[int]
) -> tuple[int, int]:
    """The earliest composition time and the latest composition end of the samples the
    composition offsets cover, a run of samples alike in both tables at a time."""
    decoding = iter(zip(times[0::2], times[1::2], strict=True))
    clock, left, delta = 0, 0, 0
    start, end = None, None
    for count, shift in zip(counts, shifts, strict=True):
        while count:
            while not left:
                left, delta = next(decoding, (-1, 0))
                if left < 0:
                    raise _damaged("the composition offsets cover more samples than there are")
            run = min(count, left)
            first, last = clock + shift, clock + shift + run * delta
            start = first if start is None else min(start, first)
            end = last if end is None else max(end, last)
            clock, count, left = clock + run * delta, count - run, left - run
    return start or 0, end or 0


def _layout(
    samples: int, runs: tuple[int, ...], chunk_count: int, descriptions: int
) -> Iterator[tuple[int, int, int]]:
    """(chunk index, first sample, samples) of every chunk, from the sample-to-chunk runs."""
    for start, stop, sample, per_chunk in _chunk_runs(samples, runs, chunk_count, descriptions):
        for chunk in range(start, stop):
            yield chunk, sample, per_chunk
            sample += per_chunk


def _chunk_runs(
    samples: int, runs: tuple[int, ...], chunk_count: int, descriptions: int
) -> list[tuple[int, int, int, int]]:
    """(first chunk index, index after the last, first sample, samples per chunk) of each run
    of the sample-to-chunk table, checked: every sample is in exactly one chunk. Computed a
    column at a time: a long clip's table has tens of thousands of runs."""
    firsts, per_chunk, kinds = runs[0::3], runs[1::3], runs[2::3]
    if not firsts and not samples and not chunk_count:
        return []  # an empty track
    if not firsts or firsts[0] != 1:
        raise _damaged("the sample-to-chunk table does not start at the first chunk")
    starts = tuple(map(add, firsts, repeat(-1)))
    stops = (*starts[1:], chunk_count)
    counts = tuple(map(sub, stops, starts))
    if min(counts) < 1 or not 0 < min(kinds) <= max(kinds) <= descriptions:
        raise _damaged("the sample-to-chunk table is impossible")
    ends = tuple(accumulate(map(mul, counts, per_chunk)))
    if ends[-1] > samples:
        raise _damaged("the chunks hold more samples than there are")
    if ends[-1] != samples:
        raise _damaged("the chunks do not hold every sample")
    return list(zip(starts, stops, (0, *ends[:-1]), per_chunk, strict=True))


# --- sample entries ----------------------------------------------------------------------------


def _sample_entry(
    data: bytes, entry: Box, handler: bytes, budget: Budget, blocks: list[Block]
) -> bytes:
    reader = _reader(data, entry)
    reader.take(6)
    reader.uint(2)  # data reference index: we write one self-contained reference
    if handler == b"vide":
        reader.take(16)  # version, revision, vendor, qualities (QuickTime); pre_defined (ISO)
        size = reader.take(4)
        reader.take(12)  # resolutions, reserved: written as the standard gives them
        frames = reader.take(2)
        compressor = reader.take(32)
        depth = reader.take(2)
        reader.take(2)
        name = compressor[1 : 1 + min(compressor[0], 31)].strip(b"\0 ")
        if name:
            blocks.append(Block(BlockKind.MOVIE, "encoder@the sample description", name))
        fixed = bytes(16) + size + struct.pack(">III", 0x00480000, 0x00480000, 0)
        fixed += frames + bytes(32) + depth + b"\xff\xff"
    else:
        version = reader.uint(2)
        reader.take(6)  # revision, vendor
        fixed = struct.pack(">H", version) + bytes(6) + _sound_fields(reader, version)
    end = _unterminated(data, reader.pos, entry.end)
    children = [
        rebuilt
        for child in isobmff.boxes(data, reader.pos, end, budget)
        if (rebuilt := _entry_child(data, child, budget, blocks)) is not None
    ]
    return isobmff.box(entry.type, bytes(6) + b"\0\1" + fixed + b"".join(children))


def _unterminated(data: bytes, start: int, end: int) -> int:
    """The end of the boxes in [start, end) without QuickTime's terminator: four zero bytes
    after the last box (no box) that sample entries and user data lists may have."""
    if end - start >= 4 and data[end - 4 : end] == bytes(4) and not _boxes_to(data, start, end):
        return end - 4
    return end


def _sound_fields(reader: Reader, version: int) -> bytes:
    """A sound description's fields after its vendor: channels, sample size and rate as they
    were, the compression id only as QuickTime defines it (0, -1, -2), the packet size 0; a
    version 1 description's packet sizes, a version 2's fields with their constants written
    as QuickTime gives them (3, 16, -2, 0, 65536; 72 and 0x7F000000)."""
    channels_size, compression = reader.take(4), int.from_bytes(reader.take(2), "big", signed=True)
    reader.take(2)  # packet size
    rate = reader.take(4)
    fields = channels_size + struct.pack(">hH", compression * (compression in (-1, -2)), 0) + rate
    if version == 0:
        return fields
    if version == 1:
        return fields + reader.take(16)  # samples per packet, bytes per packet, frame, sample
    if version != 2:
        raise _damaged("a sound description of an unknown version")
    reader.take(4)  # the size of the version 2 fields: 72
    rate_channels = reader.take(12)
    reader.take(4)  # 0x7F000000
    layout = reader.take(16)  # bits per channel, format flags, bytes and frames per packet
    head = struct.pack(">HHhHI", 3, 16, -2, 0, 0x10000)
    return head + struct.pack(">I", 72) + rate_channels + struct.pack(">I", 0x7F000000) + layout


def _boxes_to(data: bytes, pos: int, end: int) -> bool:
    """Whether box headers alone lead from `pos` exactly to `end` (sizes only, no budget)."""
    while pos + 8 <= end:
        size = int.from_bytes(data[pos : pos + 4], "big")
        if size < 8:
            return False
        pos += size
    return pos == end


def _entry_child(data: bytes, child: Box, budget: Budget, blocks: list[Block]) -> bytes | None:
    kind = child.type
    reader = _reader(data, child)
    if kind == b"avcC":
        return _avcc(reader)
    if kind == b"colr":
        if data[child.body : child.body + 4] == b"nclc":
            return isobmff.box(b"colr", reader.take(4) + reader.take(6))
        if data[child.body : child.body + 4] == b"nclx" and child.end - child.body == 10:
            # without its last byte (some Android phones): the range flag 0, limited range
            whole = isobmff.box(b"colr", data[child.body : child.end] + b"\0")
            return _new_property(whole, Box(b"colr", 0, 8, len(whole)))
        return _new_property(data, child)
    if kind in _PROPERTY_CHILDREN:
        return _new_property(data, child)
    if kind == b"btrt":  # buffer size and bitrates: a hint no decoder needs, any 12 bytes
        return None
    if kind == b"pasp":
        return _pasp(reader)
    if kind == b"mdcv":
        return _mdcv(reader)
    if kind == b"fiel":
        return isobmff.box(kind, reader.take(2))
    if kind in (b"gama", b"hfov"):  # gamma; Apple's horizontal field of view (spatial video)
        return isobmff.box(kind, reader.take(4))
    if kind == b"amve":
        return _amve(reader)
    if kind in (b"dvcC", b"dvvC", b"dvwC"):
        head = reader.take(5)
        return isobmff.box(kind, head[:4] + bytes([head[4] & 0xF0]) + bytes(19))
    if kind == b"damr":
        reader.take(4)  # the vendor of the encoder
        fields = reader.take(5)  # decoder version (the encoder's, no decoder reads it), modes
        return isobmff.box(kind, bytes(5) + fields[1:])
    if kind in _FIXED_CHILDREN:  # their fields only: whatever follows them goes
        return isobmff.box(kind, reader.take(_FIXED_CHILDREN[kind]))
    if kind in _SIZED_CHILDREN:
        return isobmff.box(kind, _SIZED_CHILDREN[kind](reader))
    if kind == b"esds":
        return _esds(reader)
    if kind == b"dfLa":
        return _dfla(reader, blocks)
    if kind == b"wave":  # QuickTime's sound description extension, its children rebuilt too
        kept = [
            _wave_child(data, box, budget, blocks)
            for box in isobmff.boxes(data, child.body, child.end, budget)
            if box.type in _WAVE_CHILDREN
        ]
        return isobmff.box(kind, b"".join(kept))
    if kind == b"vexu":
        return _vexu(data, child, budget)
    if kind == b"st3d":  # a stereoscopic video's layout (Google's Spherical Video V2)
        return isobmff.full(kind, 0, 0, _full(data, child)[2].take(1))
    if kind == b"sv3d":
        return _sv3d(data, child, budget, blocks)
    if kind == b"SA3D":
        return _sa3d(reader)
    if kind in _COPIED_CHILDREN:
        return data[child.start : child.end]
    blocks.append(Block(BlockKind.OTHER, f"MP4 '{_name(kind)}' box in a sample description"))
    return None


# Apple's video extended usage ('vexu': how a spatial video's two views are shown): the boxes
# each of its containers may hold, and the fields of its full boxes (stereo flags, hero eye,
# baseline, disparity adjustment, projection and view packing kinds).
_VEXU_BOXES = {
    b"vexu": frozenset({b"eyes", b"proj", b"pack"}),
    b"eyes": frozenset({b"stri", b"hero", b"cams", b"cmfy"}),
    b"cams": frozenset({b"blin"}),
    b"cmfy": frozenset({b"dadj"}),
    b"proj": frozenset({b"prji"}),
    b"pack": frozenset({b"pkin"}),
}
_VEXU_FIELDS = {b"stri": 1, b"hero": 1, b"blin": 4, b"dadj": 4, b"prji": 4, b"pkin": 4}


def _vexu(data: bytes, box: Box, budget: Budget) -> bytes:
    """'vexu' written anew from its known boxes, their fields only (version 0)."""
    if box.type in _VEXU_FIELDS:
        return isobmff.full(box.type, 0, 0, _full(data, box)[2].take(_VEXU_FIELDS[box.type]))
    known = _VEXU_BOXES[box.type]
    kept = [child for child in _children(data, box, budget) if child.type in known]
    return isobmff.box(box.type, b"".join(_vexu(data, child, budget) for child in kept))


# Projections of a spherical video and the fields of each: pose (yaw, pitch, roll),
# equirectangular bounds, cube map layout and padding. A mesh ('mshp') is not rebuilt.
_PROJECTIONS = {b"equi": 16, b"cbmp": 8}


def _sv3d(data: bytes, box: Box, budget: Budget, blocks: list[Block]) -> bytes | None:
    """'sv3d' (Spherical Video V2): its projection written anew, its header without the name
    of the tool that wrote it ('svhd' metadata source); with a mesh projection or none, it goes
    (the video then plays flat)."""
    proj = _one(_children(data, box, budget), b"proj")
    found = _children(data, proj, budget) if proj else []
    kinds = [child for child in found if child.type in _PROJECTIONS]
    if len(kinds) != 1:
        blocks.append(Block(BlockKind.OTHER, "MP4 'sv3d' box in a sample description"))
        return None
    body = b""
    if prhd := _one(found, b"prhd"):
        body += isobmff.full(b"prhd", 0, 0, _full(data, prhd)[2].take(12))
    projection = kinds[0]
    fields = _full(data, projection)[2].take(_PROJECTIONS[projection.type])
    body += isobmff.full(projection.type, 0, 0, fields)
    header = isobmff.full(b"svhd", 0, 0, b"\0")
    return isobmff.box(b"sv3d", header + isobmff.box(b"proj", body))


def _sa3d(reader: Reader) -> bytes:
    """Spatial audio (ambisonics, 'SA3D'): version, type, order, channel ordering and
    normalization, and the channel map."""
    head = reader.take(8)  # version, type, order (4), ordering, normalization
    count = reader.uint(4)
    return isobmff.box(b"SA3D", head + struct.pack(">I", count) + reader.take(4 * count))


def _wave_child(data: bytes, box: Box, budget: Budget, blocks: list[Block]) -> bytes:
    """'frma' (the format), 'enda' (byte order), the 'mp4a' marker and the terminator at their
    lengths; the configurations as in a sample entry."""
    lengths = {b"frma": 4, b"enda": 2, b"mp4a": 4, b"\0\0\0\0": 0}
    if box.type in lengths:  # at most that long (an empty 'mp4a' marker is seen too)
        reader = _reader(data, box)
        return isobmff.box(box.type, reader.take(min(lengths[box.type], reader.left())))
    rebuilt = _entry_child(data, box, budget, blocks)
    return rebuilt if rebuilt is not None else b""


def _pasp(reader: Reader) -> bytes | None:
    """The pixel aspect ratio reduced; a pair H.264 and H.265 could not give (16 bits each)
    is no aspect ratio and goes (the parameter sets carry the decoder's own)."""
    wide, high = reader.uint(4), reader.uint(4)
    divisor = math.gcd(wide, high)
    if not wide or not high or max(wide, high) // divisor > 0xFFFF:
        return None
    return isobmff.box(b"pasp", struct.pack(">II", wide // divisor, high // divisor))


_MAX_CHROMATICITY = 50_000  # 1.0 in units of 0.00002 (SMPTE ST 2086)
_MAX_LUMINANCE = 100_000_000  # 10 000 cd/m2 in units of 0.0001


def _mdcv(reader: Reader) -> bytes | None:
    """The mastering display (SMPTE ST 2086): primaries and white point, maximum and minimum
    luminance; numbers outside what the standard allows are no display and go (the HDR
    stream carries its own in its SEI)."""
    points = struct.unpack(">8H", reader.take(16))
    brightest, darkest = reader.uint(4), reader.uint(4)
    if max(points) > _MAX_CHROMATICITY or not darkest < brightest <= _MAX_LUMINANCE:
        return None
    return isobmff.box(b"mdcv", struct.pack(">8HII", *points, brightest, darkest))


def _amve(reader: Reader) -> bytes | None:
    """The ambient viewing environment (HDR): illuminance (not 0) and the light's
    chromaticity (H.274); numbers outside those ranges are no environment and go."""
    illuminance, x, y = struct.unpack(">IHH", reader.take(8))
    if not illuminance or max(x, y) > _MAX_CHROMATICITY:
        return None
    return isobmff.box(b"amve", struct.pack(">IHH", illuminance, x, y))


def _dops(reader: Reader) -> bytes:
    """Opus: version, channels, pre-skip, rate, gain, mapping family; its table if not 0."""
    head = reader.take(11)
    return head + (reader.take(2 + head[1]) if head[10] else b"")


_BY_DESCRIPTIONS, _BY_BITMAP = 0, 0x10000  # the two layout tags that use the fields after them


def _chan(reader: Reader) -> bytes:
    """QuickTime's channel layout (version 0): its tag, the bitmap only for a bitmap layout,
    the channel descriptions only for a layout of descriptions, each with its label, its flags
    and its coordinates only when those flags say it has them."""
    reader.take(4)  # version and flags
    tag, bitmap, count = reader.uint(4), reader.uint(4), reader.uint(4)
    rows = [reader.take(20) for _ in range(count)]
    rows = rows if tag == _BY_DESCRIPTIONS else []
    kept = []
    for row in rows:
        flags = int.from_bytes(row[4:8], "big") & 7  # rectangular, spherical, meters
        kept.append(row[:4] + struct.pack(">I", flags) + (row[8:] if flags & 3 else bytes(12)))
    bitmap = bitmap if tag == _BY_BITMAP else 0
    return struct.pack(">IIII", 0, tag, bitmap, len(kept)) + b"".join(kept)


def _vpcc(reader: Reader) -> bytes:
    """VP8's and VP9's configuration: its fields; their codecs have no initialization data,
    so whatever its size names goes."""
    return reader.take(10) + bytes(2)


def _alac(reader: Reader) -> bytes:
    """ALACSpecificConfig: what the decoder reads as it was; the compatible version 0, the
    unused run limit 255 (as Apple's encoder writes it) and the average bitrate 0 (unknown)."""
    reader.take(4)  # version and flags
    frames = reader.take(4)
    reader.take(1)  # compatible version
    decoding = reader.take(5)  # bit depth, the three rice parameters, channels
    reader.take(2)  # run limit
    largest = reader.take(4)  # the largest frame
    reader.take(4)  # average bitrate
    rate = reader.take(4)
    return bytes(4) + frames + b"\0" + decoding + b"\x00\xff" + largest + bytes(4) + rate


def _dec3(reader: Reader) -> bytes:
    """E-AC-3 (ETSI TS 102 366 F.6): rate and substreams, each 3 bytes, or 4 with dependent
    substreams; then the Dolby Atmos extension if there, its reserved bits zero."""
    head = reader.take(2)
    out = [head]
    for _ in range((head[1] & 0x07) + 1):
        substream = reader.take(3)
        out.append(substream + (reader.take(1) if substream[2] >> 1 & 0x0F else b""))
    if reader.left() >= 2:
        extension = reader.take(2)
        out.append(bytes([extension[0] & 0x01, extension[1]]))
    return b"".join(out)


def _lhvc(reader: Reader) -> bytes:
    """The L-HEVC configuration (ISO/IEC 14496-15 9.6.3: MV-HEVC, an iPhone's spatial video)
    with its parameter-set arrays only (VPS, SPS, PPS: no SEI), reserved bits as specified."""
    if reader.uint(1) != 1:
        raise _damaged("unknown L-HEVC configuration version")
    segmentation, parallelism, layers = reader.uint(2) & 0x0FFF, reader.uint(1) & 3, reader.uint(1)
    found = parameter_set_arrays(reader)
    fixed = struct.pack(">BHBB", 1, 0xF000 | segmentation, 0xFC | parallelism, 0xC0 | layers)
    return fixed + bytes([len(found)]) + nal_arrays(found)


# Sample entry children of a fixed length (after their header): dac3 AC-3, pcmC and srat (ISO
# PCM), SmDm and CoLL (VP9 HDR).
_FIXED_CHILDREN = {b"dac3": 3, b"pcmC": 6, b"srat": 8, b"SmDm": 28, b"CoLL": 8}
# Those whose fields give their length.
_SIZED_CHILDREN: dict[bytes, Callable[[Reader], bytes]] = {
    b"dOps": _dops,
    b"chan": _chan,
    b"vpcC": _vpcc,
    b"alac": _alac,
    b"dec3": _dec3,
    b"lhvC": _lhvc,
}


def _esds(reader: Reader) -> bytes:
    """An MPEG-4 elementary stream description (ISO/IEC 14496-1 7.2.6.5, as ISO/IEC 14496-14
    puts it in 'esds') written from its fields: ES_ID and priority, the decoder configuration
    (object type, stream type, buffer size; the bitrates 0: any eight bytes, no decoder reads
    them) with the decoder's own configuration bytes (for AAC the AudioSpecificConfig, cut at
    its last field), and the SL configuration MP4 files use (predefined 2).
    Dependencies and clock references (ignored in a file) go, and so does whatever follows the
    descriptors; a stream kept at a URL is data in another file: refused."""
    reader.take(4)  # version and flags
    es = _descriptor(reader, 0x03)
    es_id, flags = es.uint(2), es.uint(1)
    if flags & 0x40:
        raise UnsupportedFormat("A video whose sound is kept in another file")
    es.take((2 if flags & 0x80 else 0) + (2 if flags & 0x20 else 0))
    config = _descriptor(es, 0x04)
    fields = config.take(13)  # object type, stream type, buffer size, max and average bitrate
    following = config.data[config.pos : config.pos + 1] if config.left() else b""
    specific = _descriptor(config, 0x05).rest() if following == b"\x05" else b""
    body = struct.pack(">HB", es_id, flags & 0x1F)
    decoder = fields[:1] + bytes([fields[1] | 0x01]) + fields[2:5] + bytes(8)  # bitrates 0
    if specific and fields[0] in _AAC_OBJECT_TYPES:
        specific = aac.trimmed(specific)
    if specific and fields[0] == _MPEG4_VISUAL:
        specific = _without_user_data(specific)
    if specific:
        decoder += _wrapped(0x05, specific)
    body += _wrapped(0x04, decoder) + _wrapped(0x06, b"\x02")
    return isobmff.full(b"esds", 0, 0, _wrapped(0x03, body))


_AAC_OBJECT_TYPES = frozenset({0x40, 0x66, 0x67, 0x68})  # MPEG-4 audio; MPEG-2 AAC profiles
_MPEG4_VISUAL, _USER_DATA = 0x20, 0xB2
_START_CODE = b"\0\0\1"


def _without_user_data(config: bytes) -> bytes:
    """MPEG-4 Visual headers (ISO/IEC 14496-2 6.2.2) without their user data (start code
    0xB2: the encoder's name and version, ffmpeg's "Lavc59.37.100", a camera's), which a
    decoder does not need. The headers' fields cannot contain a start code."""
    starts = []
    at = config.find(_START_CODE)
    while at >= 0:
        starts.append(at)
        at = config.find(_START_CODE, at + 3)
    bounds = zip([0, *starts], [*starts, len(config)], strict=True)
    parts = (config[start:end] for start, end in bounds)
    return b"".join(part for part in parts if part[3:4] != bytes([_USER_DATA]))


def _descriptor(reader: Reader, tag: int) -> Reader:
    """The payload of the descriptor with `tag` at the reader's place (size in 1-4 bytes of
    7 bits each)."""
    if reader.uint(1) != tag:
        raise _damaged("an MPEG-4 descriptor is not the one expected")
    size = 0
    for _ in range(4):
        byte = reader.uint(1)
        size = size << 7 | byte & 0x7F
        if not byte & 0x80:
            break
    start = reader.pos
    reader.take(size)  # DamagedImage when it runs past the descriptor around it
    return Reader(reader.data, start, start + size, _LABEL)


def _wrapped(tag: int, payload: bytes) -> bytes:
    """A descriptor with its size in four bytes, as ffmpeg and Apple write it."""
    size = len(payload)
    length = bytes([0x80 | size >> 21 & 0x7F, 0x80 | size >> 14 & 0x7F, 0x80 | size >> 7 & 0x7F])
    return bytes([tag]) + length + bytes([size & 0x7F]) + payload


def _dfla(reader: Reader, blocks: list[Block]) -> bytes:
    """FLAC's configuration ('dfLa', the FLAC-in-ISOBMFF mapping) with its STREAMINFO block
    only: the others are Vorbis comments (tags), pictures, padding, application data."""
    reader.take(4)  # version and flags
    header = reader.take(4)
    if header[0] & 0x7F != 0 or int.from_bytes(header[1:], "big") != 34:
        raise _damaged("a FLAC configuration without its stream information")
    info = reader.take(34)
    if reader.left():
        blocks.append(Block(BlockKind.OTHER, "FLAC metadata in a sound description"))
    return isobmff.full(b"dfLa", 0, 0, b"\x80" + header[1:] + info)


_AVC_HIGH_PROFILES = frozenset({100, 110, 122, 144})


def _avcc(reader: Reader) -> bytes:
    """AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3) with only its SPS and PPS, each
    checked to be the NAL type its list says and cut at its stop bit (`bot.formats.avc`),
    reserved bits as specified. SPS extensions (the alpha planes of auxiliary pictures, which
    players do not show) go: a decoder of the main picture skips them."""
    if reader.uint(1) != 1:
        raise _damaged("unknown H.264 configuration version")
    profile, compatibility, level = reader.take(3)
    length_size = reader.uint(1) & 3
    parts = [bytes([1, profile, compatibility, level, 0xFC | length_size])]
    chroma: dict[int, int] = {}
    for mask, nal_type in ((0x1F, 7), (0xFF, 8)):
        count = reader.uint(1) & mask
        units = [reader.take(reader.uint(2)) for _ in range(count)]
        units = [unit for unit in units if unit and unit[0] & 0x1F == nal_type]
        if nal_type == 7:
            chroma.update(map(avc.sps_chroma, units))
            units = [avc.trimmed_sps(unit) for unit in units]
        else:
            units = [avc.trimmed_pps(unit, chroma) for unit in units]
        parts.append(bytes([(0xE0 if nal_type == 7 else 0) | len(units)]))
        parts.extend(struct.pack(">H", len(unit)) + unit for unit in units)
    if profile in _AVC_HIGH_PROFILES and reader.left() >= 4:
        chroma_format, luma, chroma_depth = (reader.uint(1) & m for m in (3, 7, 7))
        parts.append(bytes([0xFC | chroma_format, 0xF8 | luma, 0xF8 | chroma_depth, 0]))
    return isobmff.box(b"avcC", b"".join(parts))


# --- metadata boxes (read for the findings, never written) -------------------------------------

_APPLE_KEYS = {
    "com.apple.quicktime.location.iso6709": "location",
    "com.apple.quicktime.location.name": "place",
    "com.apple.quicktime.location.note": "place",
    "com.apple.quicktime.location.date": "taken",
    "com.apple.quicktime.make": "make",
    "com.apple.quicktime.model": "model",
    "com.apple.quicktime.software": "software",
    "com.apple.quicktime.creationdate": "taken",
    "com.apple.quicktime.content.identifier": "identifier",
    "com.apple.quicktime.camera.lens_model": "lens",
    "com.apple.quicktime.camera.identifier": "lens",
    "com.apple.quicktime.author": "author",
    "com.apple.quicktime.artist": "author",
    "com.apple.quicktime.copyright": "author",
    "com.apple.quicktime.publisher": "author",
    "com.apple.quicktime.producer": "author",
    "com.apple.quicktime.album": "title",
    "com.apple.quicktime.information": "comment",
    "com.apple.quicktime.displayname": "title",
    "com.apple.quicktime.title": "title",
    "com.apple.quicktime.description": "comment",
    "com.apple.quicktime.comment": "comment",
    "com.apple.quicktime.keywords": "comment",
    "com.android.version": "software",
    "com.android.manufacturer": "make",
    "com.android.model": "model",
}
_ITEM_KEYS = {
    b"\xa9xyz": "location",
    b"\xa9mak": "make",
    b"\xa9mod": "model",
    b"\xa9swr": "software",
    b"\xa9too": "software",
    b"\xa9enc": "software",
    b"\xa9day": "taken",
    b"\xa9nam": "title",
    b"\xa9cmt": "comment",
    b"\xa9des": "comment",
    b"\xa9inf": "comment",
    b"\xa9ART": "author",
    b"\xa9aut": "author",
    b"\xa9wrt": "author",
    b"\xa9cpy": "author",
    b"cprt": "author",
    b"auth": "author",
    b"perf": "author",
    b"albm": "title",
    b"gnre": "comment",
    b"titl": "title",
    b"dscp": "comment",
    b"desc": "comment",
    b"kywd": "comment",
    b"\xa9chp": "chapters",
    b"chpl": "chapters",
}

# User data items that are their value alone (GoPro's; 'cmnm' some Android phones'); 'CAME' is
# a hash of the camera's serial number (16 bytes, told in hex).
_RAW_ITEMS = {
    b"FIRM": "software",
    b"LENS": "lens_serial",
    b"CAME": "serial",
    b"SNum": "serial",
    b"cmnm": "model",
}


def _text(value: bytes, utf16: bool = False) -> str:
    """A text value: UTF-8, or UTF-16 when it starts with a byte order mark (3GPP and QuickTime
    text may) or its type says so (`utf16`: Apple's 'data' type 2, big-endian)."""
    if value[:2] in (b"\xfe\xff", b"\xff\xfe"):
        return value.decode("utf-16", "replace").strip("\0 ")
    return value.decode("utf-16-be" if utf16 else "utf-8", "replace").strip("\0 ")


def _udta_blocks(data: bytes, udta: Box, budget: Budget, where: str) -> list[Block]:
    return _told(_read_udta(data, udta, budget, where), f"user data of {where}")


def _meta_blocks(data: bytes, meta: Box, budget: Budget, where: str) -> list[Block]:
    return _told(_read_meta(data, meta, budget, where), f"metadata of {where}")


def _told(read: Iterator[Block], what: str) -> list[Block]:
    """What `read` finds in user data or metadata; where it is not laid out as it should be,
    what was found before that and a finding for the rest. It all goes whatever it holds, so
    its damage does not refuse the video (a box that runs past its parent still does: that
    is the file's structure); a box bomb in it has spent the file's budget all the same."""
    found: list[Block] = []
    try:
        found.extend(read)
    except (DamagedImage, ValueError, IndexError, KeyError, struct.error, OverflowError):
        found.append(Block(BlockKind.OTHER, f"{what} we could not read"))
    return found


def _read_udta(data: bytes, udta: Box, budget: Budget, where: str) -> Iterator[Block]:
    source = f"user data of {where}"
    end = _unterminated(data, udta.body, udta.end)
    for item in isobmff.walk(data, udta.body, end, budget):  # told up to any damage
        key = _ITEM_KEYS.get(item.type)
        if item.type == b"meta":
            yield from _meta_blocks(data, item, budget, where)
        elif item.type == b"XMP_":
            yield Block(BlockKind.XMP, f"XMP ({source})", data[item.body : item.end])
        elif item.type == b"loci":
            yield from _loci(data, item, source)
        elif item.type in _MAKER_PICTURES:
            yield from _maker_pictures(data, item, budget, source)
        elif item.type == b"smta":  # Samsung's: four bytes, then boxes; 'mdln' the model
            for child in _maker_boxes(data, item.body + 4, item.end, budget):
                if child.type == b"mdln":
                    yield Block(BlockKind.MOVIE, f"model@{source}", data[child.body : child.end])
            yield Block(BlockKind.MOVIE, f"maker_notes@{source}", b"smta")
        elif item.type in _RAW_ITEMS:
            raw = data[item.body : item.end]
            text = raw.hex() if item.type == b"CAME" else _text(raw)
            yield Block(BlockKind.MOVIE, f"{_RAW_ITEMS[item.type]}@{source}", text.encode())
        elif key and item.type[0] == 0xA9:
            yield Block(BlockKind.MOVIE, f"{key}@{source}", _quicktime_text(data, item).encode())
        elif key:  # 3GPP text boxes: a full box, a language, then the text
            text = _text(data[item.body + 6 : item.end])
            yield Block(BlockKind.MOVIE, f"{key}@{source}", text.encode())
        elif item.end - item.body > 0:
            yield Block(BlockKind.OTHER, f"'{_name(item.type)}' in the {source}")


def _quicktime_text(data: bytes, item: Box) -> str:
    """A QuickTime user data text item: (size, language, text) records; the first is read."""
    reader = _reader(data, item)
    if reader.left() >= 4:
        size = reader.uint(2)
        reader.take(2)
        return _text(reader.take(min(size, reader.left())))
    return ""


def _loci(data: bytes, item: Box, source: str) -> Iterator[Block]:
    """3GPP location information: a name, a role, then longitude, latitude, altitude, the
    astronomical body and notes (the name and the notes are a person's words)."""
    _, _, reader = _full(data, item)
    reader.take(2)
    name = _text(_string(reader))
    reader.take(1)
    lon, lat, alt = (int.from_bytes(reader.take(4), "big", signed=True) / 65536 for _ in "xyz")
    yield Block(BlockKind.MOVIE, f"location@{source}", f"{lat:+.6f}{lon:+.6f}{alt:+.1f}/".encode())
    _string(reader)  # the body: "earth"
    for text in (name, _text(_string(reader))):
        if text:
            yield Block(BlockKind.MOVIE, f"place@{source}", text.encode())


def _string(reader: Reader) -> bytes:
    """A NUL-terminated 3GPP string: UTF-8, or UTF-16 after a byte order mark (ended by two
    NULs, at an even place)."""
    data, start = reader.data, reader.pos
    if data[start : start + 2] not in (b"\xfe\xff", b"\xff\xfe"):
        return reader.string()
    for stop in range(start, reader.end - 1, 2):
        if data[stop : stop + 2] == b"\0\0":
            text = reader.take(stop - start)
            reader.take(2)
            return text
    return reader.rest()


# Camera makers' user data boxes and their children holding a JPEG preview (with its own EXIF):
# Canon's 'CNTH' ('CNDA', the THM picture), Nikon's 'NCDT' ('NCTH', 'NCVW').
_MAKER_PICTURES = {b"CNTH": (b"CNDA",), b"NCDT": (b"NCTH", b"NCVW")}


def _maker_boxes(data: bytes, start: int, end: int, budget: Budget) -> list[Box]:
    """The boxes of a camera maker's user data item, none when it is laid out otherwise (it
    goes all the same: only what we tell of it depends on them)."""
    try:
        return isobmff.boxes(data, start, end, budget)
    except DamagedImage:
        return []


def _maker_pictures(data: bytes, item: Box, budget: Budget, source: str) -> Iterator[Block]:
    """A camera maker's notes (told as such) and the previews in them."""
    yield Block(BlockKind.MOVIE, f"maker_notes@{source}", _name(item.type).encode())
    for child in _maker_boxes(data, item.body, item.end, budget):
        if child.type in _MAKER_PICTURES[item.type]:
            yield from _picture(
                data[child.body : child.end], BlockKind.THUMBNAIL, "preview", source
            )


def _read_meta(data: bytes, meta: Box, budget: Budget, where: str) -> Iterator[Block]:
    """A 'meta' box: Apple keys/ilst ('mdta') or an iTunes-style ilst ('mdir')."""
    quicktime = data[meta.body + 4 : meta.body + 8] == b"hdlr"  # QuickTime: no version/flags
    children = isobmff.boxes(data, meta.body + (0 if quicktime else 4), meta.end, budget)
    source = f"metadata of {where}"
    names: list[str] = []
    keys = _one(children, b"keys")
    if keys is not None:
        _, _, reader = _full(data, keys)
        for _ in range(min(reader.uint(4), reader.left() // 8)):
            size = reader.uint(4)
            reader.take(4)
            names.append(_text(reader.take(size - 8)).lower())
    ilst = _one(children, b"ilst")
    for item in isobmff.boxes(data, ilst.body, ilst.end, budget) if ilst else ():
        index = int.from_bytes(item.type, "big")
        name = names[index - 1] if keys is not None and 0 < index <= len(names) else ""
        key = _APPLE_KEYS.get(name) if name else _ITEM_KEYS.get(item.type)
        for value_box in isobmff.boxes(data, item.body, item.end, budget):
            if value_box.type != b"data" or value_box.end - value_box.body < 8:
                continue
            kind = int.from_bytes(data[value_box.body + 1 : value_box.body + 4], "big")
            value = data[value_box.body + 8 : value_box.end]
            if item.type == b"covr" or kind in (13, 14, 27):
                yield from _picture(value, BlockKind.IMAGE, "cover picture", source)
            elif key:
                text = _text(value, kind == 2)
                yield Block(BlockKind.MOVIE, f"{key}@{source}", text.encode())
            else:
                label = name or _name(item.type)
                yield Block(BlockKind.OTHER, f"'{label}' in the {source}")
    for child in children:
        if child.type == b"xml " and _is_xmp(xml := data[child.body + 4 : child.end]):
            yield Block(BlockKind.XMP, f"XMP ({source})", xml)
        elif child.type not in (b"hdlr", b"keys", b"ilst", b"free"):
            yield Block(BlockKind.OTHER, f"'{_name(child.type)}' in the {source}")


def _is_xmp(text: bytes) -> bool:
    """Whether an 'xml ' box (version and flags, then XML) holds XMP."""
    return b"<x:xmpmeta" in text or b"<rdf:RDF" in text


def _picture(picture: bytes, kind: BlockKind, what: str, source: str) -> Iterator[Block]:
    """A cover or preview picture, and what its own metadata holds (a JPEG keeps its EXIF)."""
    yield Block(kind, f"{what} in the {source}", picture)
    if picture.startswith(b"\xff\xd8\xff"):
        from bot.formats import jpeg

        try:
            parsed = jpeg.FORMAT.parse(picture)
        except (DamagedImage, UnsupportedFormat, ValueError, IndexError, struct.error):
            return
        yield from parsed.blocks


def _timed_samples(
    data: bytes, entries: list[Box], table: list[Box], timescale: int
) -> Iterator[tuple[float, int, int]]:
    """(start in seconds, first byte, end) of every sample of a timed metadata track."""
    found = {box.type: box for box in table}
    if not timescale or not {b"stts", b"stsz", b"stsc"} <= found.keys():
        return
    _, _, reader = _full(data, found[b"stts"])
    times = _words(reader, 2 * reader.uint(4))
    starts = _starts(times, timescale)
    _, _, reader = _full(data, found[b"stsz"])
    constant, count = reader.uint(4), reader.uint(4)
    if count > MAX_SAMPLES or constant * count > len(data):  # a count costs four bytes
        return
    sizes = () if constant else _words(reader, count)
    offsets_box = found.get(b"stco") or found[b"co64"]
    _, _, reader = _full(data, offsets_box)
    offsets = _words(reader, reader.uint(4), 8 if offsets_box.type == b"co64" else 4)
    _, _, reader = _full(data, found[b"stsc"])
    runs = _words(reader, 3 * reader.uint(4))
    for chunk, first, n in _layout(count, runs, len(offsets), len(entries)):
        pos = offsets[chunk]
        for sample in range(first, first + n):  # in order: the chunks hold the samples in turn
            start = next(starts, None)
            if start is None:
                return
            end = pos + (constant or sizes[sample])
            if end > len(data):
                return
            yield start, pos, end
            pos = end


def _starts(times: tuple[int, ...], timescale: int) -> Iterator[float]:
    """The start of each sample in seconds, from the (count, delta) rows of 'stts', one at a
    time (a row of a billion samples costs eight bytes of the file)."""
    clock = 0
    for count, delta in zip(times[0::2], times[1::2], strict=True):
        for _ in range(count):
            yield clock / timescale
            clock += delta


def _mebx_route(
    data: bytes, entries: list[Box], samples: Samples, budget: Budget
) -> list[tuple[float, str]]:
    """An Apple timed metadata track's positions: (seconds, ISO 6709 text) per sample."""
    reader = _reader(data, entries[0])
    reader.take(8)
    location_ids = set()
    keys = _one(isobmff.boxes(data, reader.pos, entries[0].end, budget), b"keys")
    for key in isobmff.boxes(data, keys.body, keys.end, budget) if keys else ():
        for part in isobmff.boxes(data, key.body, key.end, budget):
            text = data[part.body : part.end]
            if part.type == b"keyd" and text[4:].lower().endswith(b"location.iso6709"):
                location_ids.add(key.type)
    route: list[tuple[float, str]] = []
    if not location_ids:
        return route
    for start, pos, end in samples:
        for value in isobmff.boxes(data, pos, end, budget):
            if value.type in location_ids:
                route.append((start, _text(data[value.body : value.end])))
    return route


# Google's camera motion metadata ('camm'): records of a 2-byte reserved field, a 2-byte type
# (little-endian) and its fields; the size of each type's record, and where a GPS record has
# its latitude and longitude (little-endian doubles): type 5 a fix, type 6 a full GPS reading.
_CAMM_SIZES = {0: 16, 1: 12, 2: 16, 3: 16, 4: 16, 5: 28, 6: 60, 7: 16}
_CAMM_PLACES = {5: 4, 6: 16}
_CAMM_RECORDS = 64  # records read per sample: a GPS reading comes with a few motion ones


def _camm_route(
    data: bytes, entries: list[Box], samples: Samples, budget: Budget
) -> list[tuple[float, str]]:
    """A 'camm' track's first GPS position per sample: (seconds, ISO 6709 text)."""
    route: list[tuple[float, str]] = []
    for start, pos, end in samples:
        for _ in range(_CAMM_RECORDS):
            budget.spend()
            kind = int.from_bytes(data[pos + 2 : pos + 4], "little") if pos + 4 <= end else -1
            size = _CAMM_SIZES.get(kind, 0)
            if not size or pos + size > end:
                break
            if kind in _CAMM_PLACES:
                lat, lon = struct.unpack_from("<dd", data, pos + _CAMM_PLACES[kind])
                if abs(lat) <= 90 and abs(lon) <= 180 and (lat or lon):
                    route.append((start, f"{lat:+.6f}{lon:+.6f}/"))
                    break
            pos += size
    return route


# Positions in subtitle text, as drones write them: DJI's "GPS (8.6499, 53.1665, 18)"
# (longitude first) and "[latitude: 53.1665] [longitude: 8.6499]" (also "longtitude").
_TEXT_GPS = re.compile(rb"GPS \(([-+]?\d*\.\d+),\s*([-+]?\d*\.\d+)")
_TEXT_LATITUDE = re.compile(rb"latitude\s*:?\s*([-+]?\d+\.\d+)", re.IGNORECASE)
_TEXT_LONGITUDE = re.compile(rb"longt?itude\s*:?\s*([-+]?\d+\.\d+)", re.IGNORECASE)
_TEXT_READ = 4096  # bytes of each subtitle read for a position


def _text_route(
    data: bytes, entries: list[Box], samples: Samples, budget: Budget
) -> list[tuple[float, str]]:
    """A subtitle track's positions ('tx3g', QuickTime 'text': a 16-bit length, then the
    text): (seconds, ISO 6709 text) per sample that names one."""
    route: list[tuple[float, str]] = []
    for start, pos, end in samples:
        budget.spend()
        text = data[pos + 2 : min(end, pos + 2 + _TEXT_READ)]
        if found := _TEXT_GPS.search(text):
            lon, lat = float(found[1]), float(found[2])
        elif (north := _TEXT_LATITUDE.search(text)) and (east := _TEXT_LONGITUDE.search(text)):
            lat, lon = float(north[1]), float(east[1])
        else:
            continue
        if abs(lat) <= 90 and abs(lon) <= 180 and (lat or lon):
            route.append((start, f"{lat:+.6f}{lon:+.6f}/"))
    return route


_GPMF_DEPTH = 8  # DEVC > STRM > GPS5 is three levels


def _gpmf_route(
    data: bytes, entries: list[Box], samples: Samples, budget: Budget
) -> list[tuple[float, str]]:
    """A GoPro GPMF track's first GPS fix per sample: (seconds, ISO 6709 text). GPMF is KLV:
    a key, a type, a structure size and a repeat count, then the payload padded to 4 bytes;
    type 0 nests; 'GPS5' holds latitude, longitude, ... as int32 divided by the 'SCAL' before."""
    route: list[tuple[float, str]] = []
    for start, pos, end in samples:
        fix = _gpmf_fix(data, pos, end, budget, 0)
        if fix is not None:
            route.append((start, f"{fix[0]:+.6f}{fix[1]:+.6f}/"))
    return route


_GPMF_FIELDS = 255  # fields of a GPMF structure at most: one byte gives its size
# GPMF's number types: struct code and size ('?' structures name their fields with these).
_GPMF_NUMBERS = {
    b"b": ("b", 1),
    b"B": ("B", 1),
    b"s": ("h", 2),
    b"S": ("H", 2),
    b"l": ("i", 4),
    b"L": ("I", 4),
    b"f": ("f", 4),
    b"d": ("d", 8),
    b"j": ("q", 8),
    b"J": ("Q", 8),
}


def _gpmf_fix(
    data: bytes, pos: int, end: int, budget: Budget, depth: int
) -> tuple[float, float] | None:
    scale: tuple[float, ...] = ()
    types, units = b"", [b""]
    while pos + 8 <= end and depth < _GPMF_DEPTH:
        budget.spend()
        key, kind, size, repeat = struct.unpack_from(">4scBH", data, pos)
        length = size * repeat
        body, pos = pos + 8, pos + 8 + (length + 3) // 4 * 4
        if body + length > end:
            return None
        if kind == b"\0":
            if (fix := _gpmf_fix(data, body, body + length, budget, depth + 1)) is not None:
                return fix
        elif repeat > _GPMF_FIELDS and key in (b"SCAL", b"TYPE", b"UNIT", b"SIUN"):
            continue  # more than a structure of 255 bytes can have: not read (a CPU bomb)
        elif key == b"SCAL" and kind in _GPMF_NUMBERS and size == _GPMF_NUMBERS[kind][1]:
            scale = struct.unpack_from(f">{repeat}{_GPMF_NUMBERS[kind][0]}", data, body)
        elif key == b"TYPE" and kind == b"c":
            types = data[body : body + length].rstrip(b"\0")
        elif key in (b"UNIT", b"SIUN") and kind == b"c":
            units = [data[at : at + size].rstrip(b"\0") for at in range(body, body + length, size)]
        elif key == b"GPS5" and kind == b"l" and size == 20 and repeat:
            lat, lon = struct.unpack_from(">2i", data, body)
            lat_scale, lon_scale = (*scale, 1, 1)[:2] if len(scale) < 2 else scale[:2]
            if lat_scale and lon_scale:
                return lat / lat_scale, lon / lon_scale
        elif (
            kind == b"?" and repeat and (fix := _typed_fix(data, body, size, types, units, scale))
        ):
            return fix
    return None


def _typed_fix(
    data: bytes, body: int, size: int, types: bytes, units: list[bytes], scale: tuple[float, ...]
) -> tuple[float, float] | None:
    """The first position of a GPMF structure of the fields its 'TYPE' names (GoPro Karma's
    'GPRI' raw GPS and 'GLPI' position): its first two fields in degrees ('UNIT' "deg"), each
    divided by its 'SCAL'."""
    fields = [_GPMF_NUMBERS.get(bytes([code])) for code in types]
    if len(units) != len(fields) or None in fields or len(scale) not in (1, len(fields)):
        return None
    codes = "".join(field[0] for field in fields if field is not None)
    if struct.calcsize(f">{codes}") != size:
        return None
    values = struct.unpack_from(f">{codes}", data, body)
    degrees = [i for i, unit in enumerate(units) if unit == b"deg"][:2]
    scales = [scale[i] if len(scale) > 1 else scale[0] for i in degrees]
    if len(degrees) < 2 or not all(scales):
        return None
    lat, lon = (values[i] / divisor for i, divisor in zip(degrees, scales, strict=True))
    return (lat, lon) if abs(lat) <= 90 and abs(lon) <= 180 and (lat or lon) else None


# How the route of a removed timed track is read, by its codec.
_ROUTES: dict[str, Callable[[bytes, list[Box], Samples, Budget], list[tuple[float, str]]]] = {
    "mebx": _mebx_route,
    "gpmd": _gpmf_route,
    "camm": _camm_route,
    "tx3g": _text_route,
    "text": _text_route,
}


# --- writing -----------------------------------------------------------------------------------


def _sized(value: int) -> tuple[int, bytes]:
    """A full box version (0 or 1) and `value` at the width that version gives."""
    wide = value > _MAX_32
    return (1 if wide else 0), value.to_bytes(8 if wide else 4, "big")


def _write(data: bytes, movie: _Movie) -> bytes:
    view = memoryview(data)
    return b"".join(
        part if isinstance(part, bytes) else view[part[0] : part[0] + part[1]]
        for part in _parts(data, movie)
    )


def _parts(data: bytes, movie: _Movie) -> list[Part]:
    chunks = movie.chunks or _Chunks(movie)
    ftyp = b""
    if movie.brands is not None:
        major, compatible = movie.brands
        ftyp = isobmff.box(b"ftyp", major + bytes(4) + b"".join(compatible))
    wide = any(track.wide for track in movie.tracks)
    while True:  # once more with 64-bit offsets when a chunk lands beyond 4 GB
        before = len(ftyp) + (len(_moov(movie, chunks.nowhere(), wide)) if movie.faststart else 0)
        media, where = _media(chunks.runs, before, bool(chunks.order) or not movie.faststart)
        if wide or before + sum(map(_length, media)) <= _MAX_32:
            break
        wide = True
    moov = _moov(movie, chunks.placed(where), wide)
    parts: list[Part] = [ftyp, moov, *media] if movie.faststart else [ftyp, *media, moov]
    parts = [part for part in parts if part]
    if movie.fragments:
        parts.extend(_indexed_parts(movie, sum(map(_length, parts))))
    return parts


class _Chunks:
    """Every kept track's chunks in file order, and the runs of neighbouring ones, computed a
    column at a time (loops in C): a long clip has tens of thousands of chunks."""

    def __init__(self, movie: _Movie) -> None:
        self.counts = [len(track.chunks) for track in movie.tracks]
        flat = list(chain.from_iterable(track.chunks for track in movie.tracks))
        self.order = sorted(range(len(flat)), key=flat.__getitem__)  # by offset, then size
        self.offsets, self.sizes = _columns(list(map(flat.__getitem__, self.order)))
        self.runs, self.lengths = _runs(self.offsets, self.sizes, "two chunks overlap")

    def nowhere(self) -> list[list[int]]:
        """Every chunk offset 0: a header of the same length, before the layout is known."""
        return [[0] * count for count in self.counts]

    def placed(self, where: dict[int, int]) -> list[list[int]]:
        """Each track's chunk offsets in the copy: a run's chunks moved where `where` puts the
        run (input offset of its first byte -> output offset); a chunk of no bytes right after
        the chunk before it."""
        if all(self.sizes):
            moves = (where[start] - start for start, _ in self.runs)
            shifts = chain.from_iterable(map(repeat, moves, self.lengths))
            moved_in_order = list(map(add, self.offsets, shifts))
        else:  # rare: one at a time
            moved_in_order, pos = [], min(where.values(), default=0)
            for offset, size in zip(self.offsets, self.sizes, strict=True):
                pos = where.get(offset, pos)
                moved_in_order.append(pos)
                pos += size
        moved = [0] * len(self.order)
        for index, offset in zip(self.order, moved_in_order, strict=True):
            moved[index] = offset
        ends = list(accumulate(self.counts))
        return [moved[end - count : end] for end, count in zip(ends, self.counts, strict=True)]


def _columns(pairs: list[tuple[int, int]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if not pairs:
        return (), ()
    first, second = zip(*pairs, strict=True)
    return first, second


def _runs(
    offsets: Sequence[int], sizes: Sequence[int], overlap: str
) -> tuple[list[tuple[int, int]], list[int]]:
    """The (offset, size) ranges of chunks given in file order, neighbouring ones as one, and
    how many chunks with bytes each holds; DamagedImage(`overlap`) when a chunk starts before
    the one before it ends."""
    ends = list(map(add, offsets, sizes))
    if any(map(lt, offsets[1:], ends[:-1])):
        raise _damaged(overlap)
    held, held_ends = list(compress(offsets, sizes)), list(compress(ends, sizes))
    if not held:
        return [], []
    breaks = list(compress(range(1, len(held)), map(ne, held[1:], held_ends[:-1])))
    starts = [held[0], *map(held.__getitem__, breaks)]
    stops = [*map(held_ends.__getitem__, map(add, breaks, repeat(-1))), held_ends[-1]]
    lengths = list(map(sub, [*breaks, len(held)], [0, *breaks]))
    return list(zip(starts, map(sub, stops, starts), strict=True)), lengths


def _length(part: Part) -> int:
    return len(part) if isinstance(part, bytes) else part[1]


def _media(
    runs: list[tuple[int, int]], pos: int, wanted: bool
) -> tuple[list[Part], dict[int, int]]:
    """The movie's 'mdat' boxes from `pos` on, holding exactly `runs`, and where each run's
    first byte lands (input offset -> output offset). A run of `ALIGN_RUN` bytes or more starts
    a new 'mdat', after a zero-filled 'free' box that puts it at the offset it had modulo
    `ALIGN`, so that a file system that shares blocks between files (XFS, btrfs: a reflink
    through copy_file_range) can share its blocks instead of copying them; smaller ones follow
    the run before them. `wanted`: an empty 'mdat' when there is no run."""
    groups: list[list[tuple[int, int]]] = []
    for run in runs:
        if not groups or run[1] >= ALIGN_RUN:
            groups.append([])
        groups[-1].append(run)
    if not groups and wanted:
        groups.append([])
    parts: list[Part] = []
    where: dict[int, int] = {}
    for group in groups:
        total = sum(size for _, size in group)
        head = _mdat_head(total)
        if group and group[0][1] >= ALIGN_RUN:
            pad = _padding(group[0][0] - pos - len(head))
            if pad:
                parts.append(isobmff.box(b"free", bytes(pad - 8)))
                pos += pad
        parts.append(head)
        pos += len(head)
        for offset, size in group:
            where[offset] = pos
            parts.append((offset, size))
            pos += size
    return parts, where


def _padding(shift: int) -> int:
    """Bytes of a 'free' box (none, or 8 and more: its header) that move an offset by `shift`
    modulo `ALIGN`."""
    pad = shift % ALIGN
    return pad + ALIGN if 0 < pad < 8 else pad


def _mdat_head(total: int) -> bytes:
    if total + 8 > _MAX_32:
        return struct.pack(">I4sQ", 1, b"mdat", 16 + total)
    return struct.pack(">I4s", 8 + total, b"mdat")


def _fragment_parts(
    fragments: list[_Fragment],
    pos: int,
    indexes: Sequence[_Index] = (),
    landed: dict[int, int] | None = None,
) -> Iterator[Part]:
    """Each fragment as a new 'moof' and an 'mdat' of exactly its kept runs, in file order, the
    runs' data offsets counted from their 'moof' (default-base-is-moof). A fragment whose first
    run has `ALIGN_RUN` bytes or more comes after a zero-filled 'free' box that puts that run at
    its input offset modulo `ALIGN` (see `_media`); `pos` is where the first fragment starts.
    Each of `indexes` goes before the first fragment after it in the input, as zeros of its
    size (`_indexed_parts` writes it); `landed` gets where each index and fragment starts in
    the copy (a fragment's padding is its first bytes), by where it started in the input."""
    landed = {} if landed is None else landed
    waiting = 0  # the first of `indexes` not yet placed
    for fragment in fragments:
        while waiting < len(indexes) and indexes[waiting].start < fragment.start:
            landed[indexes[waiting].start] = pos
            size = _sidx_size(indexes[waiting])
            yield bytes(size)
            pos += size
            waiting += 1
        landed[fragment.start] = pos
        placed = sorted(
            (run.start, run.size, t, r)
            for t, traf in enumerate(fragment.trafs)
            for r, run in enumerate(traf.runs)
        )
        total = sum(size for _, size, _, _ in placed)
        head = _mdat_head(total)
        offsets = [[0] * len(traf.runs) for traf in fragment.trafs]
        moof_size = len(_moof(fragment, offsets))  # the offsets have a fixed width
        at = moof_size + len(head)
        for _, size, t, r in placed:
            offsets[t][r] = at
            at += size
        if at > 2**31 - 1:
            raise UnsupportedFormat("A video with a fragment larger than 2 GB")
        starts, sizes = _columns([(start, size) for start, size, _, _ in placed])
        runs, _ = _runs(starts, sizes, "two fragment runs overlap")
        if runs and runs[0][1] >= ALIGN_RUN:
            pad = _padding(runs[0][0] - pos - moof_size - len(head))
            if pad:
                yield isobmff.box(b"free", bytes(pad - 8))
                pos += pad
        yield _moof(fragment, offsets)
        yield head
        yield from runs
        pos += at


def _indexed_parts(movie: _Movie, pos: int) -> list[Part]:
    """The fragments from `pos` on with the kept 'sidx' boxes before them, each written once
    every fragment has landed; one whose values no longer fit its fields is dropped and the
    fragments laid out again without it."""
    indexes = movie.indexes
    while True:
        landed: dict[int, int] = {}
        parts = list(_fragment_parts(movie.fragments, pos, indexes, landed))
        where = _landing(landed, pos + sum(map(_length, parts)))
        written: dict[int, bytes] = {}  # output offset -> the 'sidx' written there
        for index in indexes:
            box = _sidx(index, where, landed[index.start]) if index.start in landed else None
            if box is not None:
                written[landed[index.start]] = box
        if len(written) == len(indexes):
            break
        indexes = [index for index in indexes if landed.get(index.start, -1) in written]
    filled, at = [], pos
    for part in parts:
        filled.append(written.pop(at, part) if isinstance(part, bytes) else part)
        at += _length(part)
    return filled


def _landing(landed: dict[int, int], end: int) -> Callable[[int], int]:
    """Where an input offset lands in the copy: where the first index or fragment at or after
    it landed (a dropped one's bytes are gone), else at `end`."""
    keys = sorted(landed)
    places = [*map(landed.__getitem__, keys), end]
    return lambda offset: places[bisect_left(keys, offset)]


def _sidx_size(index: _Index) -> int:
    return 8 + 4 + 8 + (16 if index.version else 8) + 4 + len(index.rows)


def _sidx(index: _Index, where: Callable[[int], int], start: int) -> bytes | None:
    """`index` written at `start` in the copy: its fields as read, the reserved bits zero, and
    each referenced_size and the first_offset from where the bytes it spans landed (`where`);
    None when one does not fit its field."""
    width = 8 if index.version else 4
    bounds = list(map(where, index.bounds))
    offset = bounds[0] - start - _sidx_size(index)
    sizes = list(map(sub, bounds[1:], bounds[:-1]))
    if offset < 0 or offset >> (8 * width) or min(sizes) <= 0 or max(sizes) > _MAX_31:
        return None
    words = _words32(index.rows)
    words[0::3] = array(_U32, sizes)  # reference_type 0: media
    if sys.byteorder == "little":
        words.byteswap()
    fields = struct.pack(">II", index.track, index.timescale)
    fields += index.earliest.to_bytes(width, "big") + offset.to_bytes(width, "big")
    fields += struct.pack(">HH", 0, len(sizes))
    return isobmff.full(b"sidx", index.version, 0, fields + words.tobytes())


def _moof(fragment: _Fragment, offsets: list[list[int]]) -> bytes:
    trafs = []
    for traf, run_offsets in zip(fragment.trafs, offsets, strict=True):
        body = isobmff.full(
            b"tfhd", 0, traf.flags | _BASE_IS_MOOF, struct.pack(">I", traf.track) + traf.fields
        )
        if traf.decode_time is not None:
            version, time = traf.decode_time
            width = 8 if version else 4
            body += isobmff.full(b"tfdt", version, 0, time.to_bytes(width, "big"))
        for run, offset in zip(traf.runs, run_offsets, strict=True):
            head = struct.pack(">Ii", run.count, offset) + run.first_flags
            body += isobmff.full(b"trun", run.version, run.flags | _DATA_OFFSET, head + run.rows)
        trafs.append(isobmff.box(b"traf", body + b"".join(traf.extra)))
    mfhd = isobmff.full(b"mfhd", 0, 0, struct.pack(">I", fragment.sequence))
    return isobmff.box(b"moof", mfhd + b"".join(trafs))


def _moov(movie: _Movie, offsets: list[list[int]], wide: bool) -> bytes:
    """The movie header, each track's chunks at `offsets`."""
    version, duration = _sized(movie.duration)
    next_id = max((track.id for track in movie.tracks), default=0) + 1
    mvhd = bytes(16 if version else 8) + struct.pack(">I", movie.timescale) + duration
    mvhd += movie.rate_volume + bytes(10) + isobmff.quarter_turns(movie.matrix, 0, 0) + bytes(24)
    mvhd += struct.pack(">I", next_id)
    traks = [_trak(track, offsets[t], wide) for t, track in enumerate(movie.tracks)]
    return isobmff.box(
        b"moov", isobmff.full(b"mvhd", version, 0, mvhd) + b"".join(traks) + _mvex(movie)
    )


def _mvex(movie: _Movie) -> bytes:
    """'mvex' of a fragmented movie: its fragment duration and the kept tracks' defaults."""
    if movie.extends is None:
        return b""
    body = b""
    if movie.extends.duration is not None:
        version, duration = _sized(movie.extends.duration)
        body += isobmff.full(b"mehd", version, 0, duration)
    for track in movie.tracks:
        fields = movie.extends.defaults[track.id]
        body += isobmff.full(b"trex", 0, 0, struct.pack(">5I", track.id, *fields))
    return isobmff.box(b"mvex", body)


def _trak(track: _Track, offsets: list[int], wide: bool) -> bytes:
    version, duration = _sized(track.duration)
    tkhd = bytes(16 if version else 8) + struct.pack(">I", track.id) + bytes(4) + duration
    tkhd += bytes(8) + track.layer_group_volume + bytes(2) + track.matrix
    tkhd += struct.pack(">II", track.width, track.height)
    parts = [isobmff.full(b"tkhd", version, track.flags, tkhd)]
    if track.edits:
        edit_version = int(
            any(d > _MAX_32 or not -(2**31) <= t < 2**31 for d, t, _ in track.edits)
        )
        size = 8 if edit_version else 4
        body = struct.pack(">I", len(track.edits)) + b"".join(
            d.to_bytes(size, "big") + t.to_bytes(size, "big", signed=True) + struct.pack(">I", r)
            for d, t, r in track.edits
        )
        parts.append(isobmff.box(b"edts", isobmff.full(b"elst", edit_version, 0, body)))
    if track.refs:
        refs = b"".join(
            isobmff.box(kind, struct.pack(f">{len(ids)}I", *ids)) for kind, ids in track.refs
        )
        parts.append(isobmff.box(b"tref", refs))
    version, duration = _sized(track.media_duration)
    mdhd = bytes(16 if version else 8) + struct.pack(">I", track.timescale) + duration
    mdhd += struct.pack(">HH", track.language, 0)
    hdlr = isobmff.full(b"hdlr", 0, 0, bytes(4) + track.handler + bytes(12) + b"\0")
    if track.handler == b"vide":
        header = isobmff.full(b"vmhd", 0, 1, bytes(8))
    else:
        header = isobmff.full(b"smhd", 0, 0, track.balance + bytes(2))
    dinf = isobmff.box(
        b"dinf",
        isobmff.full(b"dref", 0, 0, struct.pack(">I", 1) + isobmff.full(b"url ", 0, 1, b"")),
    )
    stsd = isobmff.full(
        b"stsd", 0, 0, struct.pack(">I", len(track.entries)) + b"".join(track.entries)
    )
    code = "Q" if wide else "I"
    chunk_offsets = isobmff.full(
        b"co64" if wide else b"stco",
        0,
        0,
        struct.pack(f">I{len(offsets)}{code}", len(offsets), *offsets),
    )
    stbl = isobmff.box(
        b"stbl", stsd + b"".join(track.tables) + chunk_offsets + b"".join(track.groups)
    )
    minf = isobmff.box(b"minf", header + dinf + stbl)
    mdia = isobmff.box(b"mdia", isobmff.full(b"mdhd", version, 0, mdhd) + hdlr + minf)
    parts.append(mdia)
    return isobmff.box(b"trak", b"".join(parts))


def _accepts_as(name: str) -> Callable[[bytes], bool]:
    def accepts_head(head: bytes) -> bool:
        return accepts(head) and _family(head) == name

    return accepts_head


def _family(head: bytes) -> str:
    """Which of the four registry entries a video is, by its major brand."""
    major = head[8:12] if head[4:8] == b"ftyp" else b"qt  "
    if major == b"qt  ":
        return "mov"
    if major.startswith(b"3g"):
        return "3gp"
    if major.startswith(b"M4V"):
        return "m4v"
    return "mp4"


FORMAT = Format("mp4", "video/mp4", "mp4", parse, strip, accepts=_accepts_as("mp4"))
MOV_FORMAT = Format("mov", "video/quicktime", "mov", parse, strip, accepts=_accepts_as("mov"))
M4V_FORMAT = Format("m4v", "video/x-m4v", "m4v", parse, strip, accepts=_accepts_as("m4v"))
THREEGP_FORMAT = Format("3gp", "video/3gpp", "3gp", parse, strip, accepts=_accepts_as("3gp"))
