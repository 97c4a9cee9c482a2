"""MP4, MOV, M4V and 3GP videos: clips made here with ffmpeg, then boxes ffmpeg cannot write
planted by hand (Apple keys/ilst with a place, an Apple 'mebx' location track with its samples,
a GPMF-like track, 'covr' with GPS EXIF, XMP 'uuid', old bytes in 'free', trailing data,
version-1 header dates, 'co64'), each with random values. ExifTool (-ee) judges what is left,
ffmpeg's stream hashes prove every kept packet identical, and ffmpeg decodes the output."""

import datetime
import json
import random
import shutil
import struct
import subprocess
from collections.abc import Callable, Set
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import DamagedImage, ScrubError, UnsupportedFormat
from bot.findings import Kind
from bot.formats import aac, avc, isobmff, mp4
from bot.formats.base import SNIFF_BYTES
from bot.formats.isobmff import Budget, box, full
from bot.scrub import FORMATS, inspect, scrub, sniff
from bot.summary import render
from tests.pictures import plant

FFMPEG = shutil.which("ffmpeg")
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
pytestmark = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is missing: .ci/run installs it")

# Container variants ffmpeg writes: (file name, extra arguments).
VARIANTS = {
    "mp4": ("clip.mp4", []),
    "mp4-faststart": ("clip.mp4", ["-movflags", "+faststart"]),
    "mov": ("clip.mov", []),
    "mov-faststart": ("clip.mov", ["-movflags", "+faststart"]),
    "3gp": ("clip.3gp", ["-ac", "1", "-ar", "8000"]),
    "m4v": ("clip.m4v", ["-f", "ipod"]),
    "mp4-hevc": (
        "hevc.mp4",
        [
            "-c:v",
            "libx265",
            "-tag:v",
            "hvc1",
            "-x265-params",
            "log-level=error",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
            "-colorspace",
            "bt709",
        ],
    ),
}


def make_clip(tmp_path: Path, variant: str, *extra: str) -> bytes:
    """A 64x64, one-second clip with H.264 pictures and AAC sound, as ffmpeg writes it."""
    name, args = VARIANTS[variant]
    out = tmp_path / f"{variant}-{name}"
    subprocess.run(
        [
            str(FFMPEG),
            *("-v", "error", "-y"),
            *("-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=1"),
            *("-f", "lavfi", "-i", "sine=frequency=440:duration=1"),
            *("-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"),
            *extra,
            *args,
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def codes(seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    word = "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ", k=10))
    return {
        "make": f"Make{word}",
        "model": f"Model{rng.randrange(10**8)}",
        "software": f"Soft{rng.randrange(10**8)}",
        "identifier": f"{rng.randrange(16**12):012X}-LIVE",
        "xmp": f"xmpcode{rng.randrange(10**9)}",
        "free": f"freebytes{rng.randrange(10**9)}",
        "trailer": f"trailer{rng.randrange(10**9)}",
        "gpmf": f"GPMF{rng.randrange(10**9)}",
        "title": f"title{rng.randrange(10**9)}",
        "trackname": f"trackname{rng.randrange(10**9)}",
        "lat": f"{rng.uniform(10, 60):+08.4f}",
        "lon": f"{rng.uniform(10, 120):+09.4f}",
    }


# --- ExifTool and ffmpeg as judges ---------------------------------------------------------------

# Tags that only describe structure, timing and how to play the video.
_STRUCTURE = {
    "MajorBrand",
    "MinorVersion",
    "CompatibleBrands",
    "MediaDataSize",
    "MediaDataOffset",
    "MovieHeaderVersion",
    "TimeScale",
    "Duration",
    "PreferredRate",
    "PreferredVolume",
    "MatrixStructure",
    "PreviewTime",
    "PreviewDuration",
    "PosterTime",
    "SelectionTime",
    "SelectionDuration",
    "CurrentTime",
    "NextTrackID",
    "TrackHeaderVersion",
    "TrackID",
    "TrackDuration",
    "TrackLayer",
    "TrackVolume",
    "ImageWidth",
    "ImageHeight",
    "MediaHeaderVersion",
    "MediaTimeScale",
    "MediaDuration",
    "MediaLanguageCode",
    "HandlerType",
    "GraphicsMode",
    "OpColor",
    "CompressorID",
    "SourceImageWidth",
    "SourceImageHeight",
    "XResolution",
    "YResolution",
    "BitDepth",
    "PixelAspectRatio",
    "BufferSize",
    "MaxBitrate",
    "AverageBitrate",
    "VideoFrameRate",
    "Balance",
    "AudioFormat",
    "AudioChannels",
    "AudioBitsPerSample",
    "AudioSampleRate",
    "ImageSize",
    "Megapixels",
    "AvgBitrate",
    "Rotation",
    "Encoder",  # only ever empty here: checked below with the codes
    "ColorProfiles",
    "ColorPrimaries",
    "TransferCharacteristics",
    "MatrixCoefficients",
    "VideoFullRangeFlag",
    # the kept sample tables and codec configuration (binary; the codes are checked in bytes)
    "MediaData",
    "Unknown_edts",
    "AVCConfiguration",
    "HEVCConfiguration",
    "CompositionTimeToSample",
    "SyncSampleTable",
    "TimeToSampleTable",
    "SampleToChunk",
    "CompositionToDecodeTimelineMapping",  # 'cslg'
    "SampleSizes",
    "ChunkOffset",
    "ChunkOffset64",
    "SampleGroupDescription",
    "SampleToGroup",
    "Unknown_esds",
    "Unknown_btrt",
    "Unknown_wave",
    "Unknown_chan",
    "Unknown_damr",
    "Unknown_hvcC",
    "IdependentAndDisposableSamples",  # (sic: ExifTool's name for 'sdtp')
    "VideoFieldOrder",
    "PurchaseFileFormat",  # 'frma' in a MOV 'wave': the codec's four letters
    "Unknown_mp4a",
    "LayoutFlags",
    "AudioChannelLayout",
}
_DATES = {"CreateDate", "ModifyDate", "TrackCreateDate", "TrackModifyDate"}
_DATES |= {"MediaCreateDate", "MediaModifyDate"}


def exif_tags(path: Path) -> dict[str, object]:
    """Every tag ExifTool (-ee: timed metadata too) reads, by group and name."""
    result = subprocess.run(
        ["exiftool", "-j", "-ee", "-a", "-G1", "-u", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    tags: dict[str, object] = json.loads(result.stdout)[0]
    return tags


def leftovers(path: Path) -> dict[str, object]:
    """Tags that would tell a stranger something: anything not structure, dates not zero."""
    found = {}
    for tag, value in exif_tags(path).items():
        group, _, name = tag.partition(":")
        if group in ("ExifTool", "System", "File") or tag == "SourceFile":
            continue
        if name in _DATES:
            if value != "0000:00:00 00:00:00":
                found[tag] = value
        elif name not in _STRUCTURE:
            found[tag] = value
    return found


def stream_hashes(path: Path, *maps: str) -> str:
    """ffmpeg's hash of every packet of the picture and sound streams ('V': not the cover)."""
    selected = [arg for m in (maps or ("0:V", "0:a")) for arg in ("-map", m)]
    result = subprocess.run(
        [
            str(FFMPEG),
            "-v",
            "error",
            "-i",
            str(path),
            *selected,
            "-c",
            "copy",
            "-f",
            "streamhash",
            "-",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def ffprobe_streams(path: Path) -> list[dict[str, Any]]:
    """The streams ffprobe reports, as its JSON gives them."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    streams: list[dict[str, Any]] = json.loads(result.stdout)["streams"]
    return streams


def probe(path: Path) -> list[tuple[str, str, str]]:
    """(codec, duration, rotation) of every picture and sound stream ffprobe reports (not a
    cover picture, not data tracks)."""
    streams = ffprobe_streams(path)
    return [
        (
            s["codec_name"],
            s.get("duration", ""),
            str([d.get("rotation") for d in s.get("side_data_list", [])]),
        )
        for s in streams
        if s["codec_type"] in ("video", "audio") and not s["disposition"].get("attached_pic")
    ]


def decodes(path: Path) -> str:
    """What ffmpeg complains about when decoding every frame (empty: nothing)."""
    result = subprocess.run(
        [str(FFMPEG), "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stderr + ("" if result.returncode == 0 else f"exit {result.returncode}")


def assert_clean(
    original: bytes,
    tmp_path: Path,
    name: str,
    planted: list[str],
    structure: Set[str] = frozenset(),
) -> bytes:
    """Scrub and check every invariant; returns the cleaned bytes. ExifTool tags named in
    `structure` may stay (the fields of rebuilt fragments), and 'Free' (the zero-filled boxes
    that align a long run of samples: checked to hold zeros only)."""
    source = tmp_path / f"in-{name}"
    source.write_bytes(original)
    cleaned = scrub(original).data
    out = tmp_path / f"out-{name}"
    out.write_bytes(cleaned)
    left = leftovers(out).items()
    shown = structure | {"Free"}
    assert {tag: value for tag, value in left if tag.partition(":")[2] not in shown} == {}
    for padding in (found for found in top_boxes(cleaned) if found.type == b"free"):
        assert not cleaned[padding.body : padding.end].strip(b"\0")
    for code in planted:
        assert code.encode() not in cleaned, code
        assert code not in json.dumps(exif_tags(out)), code
    assert stream_hashes(out) == stream_hashes(source)
    assert probe(out) == probe(source)
    assert decodes(out) == ""
    assert inspect(cleaned).findings == ()
    assert scrub(cleaned).data == cleaned
    return cleaned


# --- boxes ffmpeg cannot write -------------------------------------------------------------------


def top_boxes(data: bytes) -> list[isobmff.Box]:
    """The top-level boxes up to trailing data that is no box."""
    found, pos = [], 0
    while pos < len(data):
        try:
            found.append(isobmff.box_at(data, pos, len(data)))
        except DamagedImage:
            break
        pos = found[-1].end
    return found


def qt_text(text: str) -> bytes:
    encoded = text.encode()
    return struct.pack(">HH", len(encoded), 0x55C4) + encoded


def apple_meta(items: dict[str, bytes | str | tuple[int, bytes]]) -> bytes:
    """A QuickTime 'meta' (no version/flags): handler 'mdta', 'keys', 'ilst' with one 'data'
    per key (type 1 text, 13 JPEG, or the type and bytes given)."""
    keys = b"".join(struct.pack(">I4s", 8 + len(k), b"mdta") + k.encode() for k in items)
    entries = []
    for index, value in enumerate(items.values(), start=1):
        if isinstance(value, tuple):
            kind, payload = value
        else:
            kind, payload = (13, value) if isinstance(value, bytes) else (1, value.encode())
        data_box = box(b"data", struct.pack(">II", kind, 0) + payload)
        entries.append(box(struct.pack(">I", index), data_box))
    hdlr = full(b"hdlr", 0, 0, bytes(4) + b"mdta" + bytes(12) + b"\0")
    body = hdlr + full(b"keys", 0, 0, struct.pack(">I", len(items)) + keys)
    return box(b"meta", body + box(b"ilst", b"".join(entries)))


def timed_track(
    track_id: int, codec: bytes, samples: list[bytes], first: int, handler: bytes = b"meta"
) -> bytes:
    """A timed metadata track (`handler` 'meta' unless told) in `codec` whose samples start at
    `first`; version-1 headers with a creation date; one chunk. A 'mebx' entry names the
    location key."""
    stamp = 3_800_000_000
    tkhd = struct.pack(">QQII", stamp, stamp, track_id, 0) + struct.pack(">Q", 1000)
    tkhd += bytes(16) + struct.pack(">9i", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    tkhd += bytes(8)
    mdhd = struct.pack(">QQIQ", stamp, stamp, 1000, 1000) + bytes(4)
    hdlr = full(b"hdlr", 0, 0, bytes(4) + handler + bytes(12) + b"Core Media Metadata\0")
    entry_body = bytes(6) + b"\0\1"
    if codec == b"mebx":
        keyd = full(b"keyd", 0, 0, b"mdta" + b"com.apple.quicktime.location.ISO6709")
        entry_body += box(b"keys", box(b"\0\0\0\1", keyd))
    stsd = full(b"stsd", 0, 0, struct.pack(">I", 1) + box(codec, entry_body))
    count = len(samples)
    stts = full(b"stts", 0, 0, struct.pack(">III", 1, count, 30_000))
    stsc = full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, count, 1))
    stsz = full(b"stsz", 0, 0, struct.pack(f">II{count}I", 0, count, *map(len, samples)))
    stco = full(b"stco", 0, 0, struct.pack(">II", 1, first))
    dinf = box(b"dinf", full(b"dref", 0, 0, struct.pack(">I", 1) + full(b"url ", 0, 1, b"")))
    stbl = box(b"stbl", stsd + stts + stsc + stsz + stco)
    minf = box(b"minf", full(b"nmhd", 0, 0, b"") + dinf + stbl)
    mdia = box(b"mdia", full(b"mdhd", 1, 0, mdhd) + hdlr + minf)
    return box(b"trak", full(b"tkhd", 1, 3, tkhd) + mdia)


def version_1(header: bytes, stamp: int) -> bytes:
    """A version-0 'mvhd', 'tkhd' or 'mdhd' rewritten as version 1 with dates `stamp`."""
    kind, body = header[4:8], header[12:]
    middle = body[8:16] if kind == b"tkhd" else body[8:12]  # track id + reserved, or timescale
    duration = int.from_bytes(body[8 + len(middle) : 12 + len(middle)], "big")
    rest = body[12 + len(middle) :]
    new = struct.pack(">QQ", stamp, stamp) + middle + struct.pack(">Q", duration) + rest
    return full(kind, 1, int.from_bytes(header[9:12], "big"), new)


Change = Callable[[bytes, isobmff.Box], bytes]


def rewrite(data: bytes, box_: isobmff.Box, change: Change) -> bytes:
    """`box_` with its children passed through `change` (recursively where it says)."""
    out = []
    for child in isobmff.boxes(data, box_.body, box_.end, Budget()):
        out.append(change(data, child))
    return box(box_.type, b"".join(out))


def with_dates(data: bytes, stamp: int) -> bytes:
    """Every movie, track and media header as version 1 with creation dates (moov last)."""
    *_, moov = top_boxes(data)
    assert moov.type == b"moov"

    def change(d: bytes, b: isobmff.Box) -> bytes:
        if b.type in (b"mvhd", b"tkhd", b"mdhd"):
            return version_1(d[b.start : b.end], stamp)
        if b.type in (b"trak", b"mdia"):
            return rewrite(d, b, change)
        return d[b.start : b.end]

    return data[: moov.start] + rewrite(data, moov, change)


def with_co64(data: bytes) -> bytes:
    """Every 'stco' as 'co64' (moov last, so no sample moves)."""
    *_, moov = top_boxes(data)

    def change(d: bytes, b: isobmff.Box) -> bytes:
        if b.type == b"stco":
            count = int.from_bytes(d[b.body + 4 : b.body + 8], "big")
            offsets = struct.unpack_from(f">{count}I", d, b.body + 8)
            return full(b"co64", 0, 0, struct.pack(f">I{count}Q", count, *offsets))
        if b.type in (b"trak", b"mdia", b"minf", b"stbl"):
            return rewrite(d, b, change)
        return d[b.start : b.end]

    return data[: moov.start] + rewrite(data, moov, change)


def klv(key: bytes, kind: bytes, size: int, payload: bytes) -> bytes:
    """One GPMF entry: key, type, structure size, repeat, payload padded to 4 bytes."""
    repeat = len(payload) // size if size else 0
    return struct.pack(">4scBH", key, kind, size, repeat) + payload.ljust(
        -(-len(payload) // 4) * 4, b"\0"
    )


def gpmf_sample(value: dict[str, str], second: int) -> bytes:
    """A GoPro-like GPMF sample: DEVC > STRM > (STNM with a code, SCAL, GPS5 fixes)."""
    lat, lon = float(value["lat"]) - second / 500, float(value["lon"]) + second / 500
    fixes = struct.pack(">5i", round(lat * 1e7), round(lon * 1e7), 123_000, 500, 500) * 2
    stream = klv(b"STNM", b"c", 1, value["gpmf"].encode())
    stream += klv(b"SCAL", b"l", 4, struct.pack(">5i", 10**7, 10**7, 1000, 1000, 100))
    stream += klv(b"GPS5", b"l", 20, fixes)
    device = klv(b"DVNM", b"c", 1, b"Camera") + klv(b"STRM", b"\0", 1, stream)
    return klv(b"DEVC", b"\0", 1, device)


def gps_jpeg(tmp_path: Path, value: dict[str, str]) -> bytes:
    """A 16x16 JPEG whose EXIF has the place and the model of `value`."""
    cover = tmp_path / "cover.jpg"
    subprocess.run(
        [
            str(FFMPEG),
            *("-v", "error", "-y"),
            *("-f", "lavfi", "-i", "color=red:size=16x16"),
            *("-frames:v", "1", str(cover)),
        ],
        check=True,
        capture_output=True,
    )
    plant(
        "exiftool",
        cover,
        f"-GPSLatitude={value['lat'][1:]}",
        "-GPSLatitudeRef=N",
        f"-GPSLongitude={value['lon'][1:]}",
        "-GPSLongitudeRef=E",
        f"-Model={value['model']}",
    )
    return cover.read_bytes()


def phone_clip(
    tmp_path: Path, variant: str, value: dict[str, str], stamp: int = 0, positions: int = 12
) -> bytes:
    """A clip (moov last) with everything a phone and its apps add, planted by hand; with a
    `stamp`, every header is version 1 with that date."""
    data = make_clip(tmp_path, variant, "-metadata", f"title={value['title']}")
    if stamp:
        data = with_dates(data, stamp)
    *_, moov = top_boxes(data)
    assert moov.type == b"moov", "the builder needs the movie last"
    place = f"{value['lat']}{value['lon']}+012.000/"
    cover = gps_jpeg(tmp_path, value)
    meta = apple_meta(
        {
            "com.apple.quicktime.location.ISO6709": place,
            "com.apple.quicktime.make": value["make"],
            "com.apple.quicktime.model": value["model"],
            "com.apple.quicktime.software": value["software"],
            "com.apple.quicktime.creationdate": "2024-05-17T16:41:07+0200",
            "com.apple.quicktime.content.identifier": value["identifier"],
            "com.apple.quicktime.artwork": cover,
        }
    )
    udta = box(b"udta", box(b"\xa9xyz", qt_text(place)) + box(b"\xa9mak", qt_text(value["make"])))
    track_udta = box(b"udta", box(b"\xa9nam", qt_text(value["trackname"])))
    track_udta += box(b"uuid", bytes(range(16)) + value["trackname"].encode())
    moov_body = b"".join(
        box(b"trak", data[b.body : b.end] + track_udta)
        if b.type == b"trak"
        else data[b.start : b.end]
        for b in isobmff.boxes(data, moov.body, moov.end, Budget())
    )
    moov_body += meta + udta
    # Timed tracks: their samples go into a second 'mdat' after the movie.
    route = [
        box(b"\0\0\0\1", f"{float(value['lat']) + i / 1000:+08.4f}{value['lon']}/".encode())
        for i in range(positions)
    ]
    gpmf = [gpmf_sample(value, second) for second in range(3)]
    tracks_len = len(timed_track(90, b"mebx", route, 0)) + len(timed_track(91, b"gpmd", gpmf, 0))
    first = moov.start + 8 + len(moov_body) + tracks_len + 8
    mebx = timed_track(90, b"mebx", route, first)
    gpmd = timed_track(91, b"gpmd", gpmf, first + sum(map(len, route)))
    new_moov = box(b"moov", moov_body + mebx + gpmd)
    mdat2 = box(b"mdat", b"".join(route) + b"".join(gpmf))
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description>{value["xmp"]}'
    xmp += "</rdf:Description></rdf:RDF></x:xmpmeta>"
    uuid = box(b"uuid", mp4.XMP_UUID + xmp.encode())
    free = box(b"free", value["free"].encode())
    preview = box(b"pnot", bytes(12)) + box(b"PICT", bytes(10) + value["free"].encode())
    trailer = b"PK\x03\x04" + value["trailer"].encode()
    return data[: moov.start] + new_moov + mdat2 + uuid + free + preview + trailer


# --- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["mp4", "mov", "3gp", "m4v"])
def test_each_video_entry_accepts_its_own_files_only(variant: str, tmp_path: Path) -> None:
    head = make_clip(tmp_path, variant)[:SNIFF_BYTES]
    assert [name for name, fmt in FORMATS.items() if fmt.accepts(head)] == [variant]
    assert not FORMATS[variant].accepts(b"")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_ffmpeg_clips_are_cleaned_losslessly(variant: str, tmp_path: Path) -> None:
    value = codes(len(variant))
    data = make_clip(tmp_path, variant, "-metadata", f"title={value['title']}")
    assert sniff(data).name == variant.split("-")[0]
    found = inspect(data).findings
    assert any(f.kind is Kind.DESCRIPTION and f.value == value["title"] for f in found)
    # (ffmpeg's AAC encoder also writes "Lavc" into the first sound packet: samples stay)
    planted = [value["title"], *(["Lavf"] if b"Lavf" in data else [])]
    cleaned = assert_clean(data, tmp_path, VARIANTS[variant][0], planted)
    moov_first = [b.type for b in top_boxes(cleaned) if b.type in (b"moov", b"mdat")]
    was_first = [b.type for b in top_boxes(data) if b.type in (b"moov", b"mdat")]
    assert moov_first == was_first  # faststart stays faststart, and the other way round


def test_a_phone_clip_loses_place_route_device_times_and_ids(tmp_path: Path) -> None:
    value = codes(7)
    data = phone_clip(tmp_path, "mov", value, stamp=3_700_000_000)
    found = inspect(data).findings
    keys = {(f.kind, f.key) for f in found}
    assert (Kind.LOCATION, "coordinates") in keys
    assert (Kind.LOCATION, "route") in keys
    gopro = [f for f in found if f.key == "route" and "gpmd" in f.source]
    assert [f.value for f in gopro] == ["3 60"]  # three fixes, over a minute (in seconds)
    assert gopro[0].position == pytest.approx((float(value["lat"]), float(value["lon"])), abs=1e-5)
    assert (Kind.TRACKING, "apple_id") in keys
    assert (Kind.HIDDEN_PICTURE, "image") in keys
    assert (Kind.HIDDEN_MEDIA, "track") in keys
    assert (Kind.HIDDEN_PICTURE, "thumbnail") in keys  # QuickTime's 'PICT' preview
    values = {f.value for f in found}
    assert {value["make"], value["model"], value["software"], value["identifier"]} <= values
    assert value["trackname"] in values  # from the user data of a track
    assert "MP4 'uuid' box in a track" in values
    place = next(f.position for f in found if f.key == "coordinates" and f.position)
    assert place == pytest.approx((float(value["lat"]), float(value["lon"])), abs=1e-3)
    assert any(f.kind is Kind.TIME and f.value.startswith("2021") for f in found)
    positions = {f.source for f in found if f.key == "coordinates" and f.position}
    assert len(positions) >= 3  # Apple keys, '©xyz' and the cover picture's own EXIF
    source = tmp_path / "phone.mov"
    source.write_bytes(data)
    before = leftovers(source)
    assert any("GPS" in tag for tag in before)
    assert any("Date" in tag for tag in before)
    planted = [v for k, v in value.items() if k not in ("lat", "lon")]
    planted += [value["lat"][1:], "ISO6709", "mebx", "gpmd"]
    assert_clean(data, tmp_path, "phone.mov", planted)


def test_the_route_is_summarised_in_english_and_german(tmp_path: Path) -> None:
    data = phone_clip(tmp_path, "mp4", codes(3))
    found = inspect(data).findings
    english = render(found, "en").text
    german = render(found, "de").text
    assert "a route of 12 positions over 6 minutes" in english
    assert "eine Route aus 12 Positionen über 6 Minuten" in german
    assert "1 extra picture (cover picture)" in english  # the Apple artwork
    assert "1 zusätzliches Bild (Titelbild)" in german


@pytest.mark.parametrize("brand", ["dash", "iso8", "mp71", "F4V "])
def test_every_video_brand_heif_names_a_video_is_cleaned(brand: str, tmp_path: Path) -> None:
    """A major brand the HEIF sniffer calls a video is one this module takes (before, 'dash'
    was refused as "A video (MP4/MOV) is not a ... format I can clean")."""
    data = make_clip(tmp_path, "mp4", "-brand", brand)
    assert data[8:12] == brand.encode()
    assert_clean(data, tmp_path, "branded.mp4", [])


def test_co64_stays_co64_and_samples_stay_identical(tmp_path: Path) -> None:
    data = with_co64(make_clip(tmp_path, "mp4"))
    assert b"co64" in data
    assert b"stco" not in data
    cleaned = assert_clean(data, tmp_path, "co64.mp4", [])
    assert b"co64" in cleaned
    assert b"stco" not in cleaned


def apple_like(data: bytes, junk: bytes = b"", sync_byte: int = 19) -> bytes:
    """What real iPhone and Android clips have and ffmpeg does not write (moov last, so no
    sample moves): two sample groups in one table, and in the picture's sample entry an
    18-byte 'nclx' (no range byte), 'amve', 'hfov' and QuickTime's four-zero terminator.
    `junk` rides after each group's last entry; `sync_byte` may set the reserved bits."""
    *_, moov = top_boxes(data)
    roll = full(b"sgpd", 1, 0, b"roll" + struct.pack(">IIh", 2, 1, -1) + junk)
    roll += full(b"sbgp", 0, 0, b"roll" + struct.pack(">III", 1, 10, 1) + junk)
    sync = full(b"sgpd", 1, 0, b"sync" + struct.pack(">IIB", 1, 1, sync_byte) + junk)
    sync += full(b"sbgp", 0, 0, b"sync" + struct.pack(">III", 1, 1, 1) + junk)

    def change(d: bytes, b: isobmff.Box) -> bytes:
        if b.type == b"stsd" and d[b.body + 12 : b.body + 16] == b"avc1":
            entry = isobmff.box_at(d, b.body + 8, b.end)
            extra = box(b"colr", b"nclx" + struct.pack(">3H", 1, 1, 1))
            extra += box(b"amve", struct.pack(">IHH", 3140000, 15635, 16450))
            extra += box(b"hfov", struct.pack(">I", 63400)) + bytes(4)
            body = d[entry.body : entry.end] + extra
            return full(b"stsd", 0, 0, d[b.body + 4 : b.body + 8] + box(b"avc1", body))
        if b.type == b"stbl" and b"avc1" in d[b.start : b.end]:
            return box(b"stbl", rewrite(d, b, change)[8:] + roll + sync)
        if b.type in (b"trak", b"mdia", b"minf"):
            return rewrite(d, b, change)
        return d[b.start : b.end]

    return data[: moov.start] + rewrite(data, moov, change)


def test_what_real_phones_write_in_a_sample_table_is_understood(tmp_path: Path) -> None:
    """Found on real clips (an iPhone 14 Pro's, Android phones'): before, each was refused."""
    data = apple_like(make_clip(tmp_path, "mp4"))
    shown = {"Unknown_amve", "Unknown_hfov"}  # ExifTool (-u) names them: display fields
    cleaned = assert_clean(data, tmp_path, "apple.mp4", [], shown)
    entry = cleaned[cleaned.index(b"avc1") - 4 :]
    entry = entry[: int.from_bytes(entry[:4], "big")]
    assert box(b"colr", b"nclx" + struct.pack(">3HB", 1, 1, 1, 0)) in entry  # 19 bytes now
    assert box(b"hfov", struct.pack(">I", 63400)) in entry
    assert b"amve" in entry
    assert not entry.endswith(bytes(4))  # the terminator is not kept
    assert cleaned.count(b"sgpd") == data.count(b"sgpd") >= 2  # every kept group stays
    assert cleaned.count(b"sbgp") == data.count(b"sbgp") >= 2


def test_kept_sample_groups_are_written_anew_without_what_rides_along(tmp_path: Path) -> None:
    """Bytes after a group's last entry and reserved bits set: the groups come out rebuilt
    from their fields, exactly as from a clip without them."""
    planted = codes(23)["title"]
    clip = make_clip(tmp_path, "mp4")
    data = apple_like(clip, planted.encode(), sync_byte=0xC0 | 19)
    shown = {"Unknown_amve", "Unknown_hfov"}
    cleaned = assert_clean(data, tmp_path, "groups.mp4", [planted], shown)
    assert cleaned == scrub(apple_like(clip)).data


def test_sample_groups_naming_what_is_not_there_are_refused(tmp_path: Path) -> None:
    """A code planted in a group's run (as a count of samples or a description index) went
    through; the runs must hold the track's samples and name its descriptions."""
    data = apple_like(make_clip(tmp_path, "mp4"))
    row = data.index(b"sbgp") + 16  # the first run: sample count, description index
    stamp = struct.pack(">Q", random.Random(37).randrange(2**32, 2**40))
    text = codes(37)["title"][:8].encode()
    default = full(b"sgpd", 2, 0, b"roll" + struct.pack(">IIIh", 2, 7, 1, -1))
    for lying in (
        data[:row] + stamp + data[row + 8 :],
        data[:row] + text + data[row + 8 :],
        replaced(data, b"sgpd", default),
    ):
        with pytest.raises(DamagedImage, match="sample group"):
            scrub(lying)


def test_the_composition_shift_box_is_worked_out_from_the_offsets(tmp_path: Path) -> None:
    """'cslg' (iPhones write it) was copied as it was, so any 20 bytes went through; now its
    fields come from 'stts' and 'ctts', as Apple's and androidx/media's clips have them."""
    planted = codes(39)["title"].encode()[:20]
    data = make_clip(tmp_path, "mp4")
    start = data.index(b"ctts") - 4
    ctts = data[start : start + int.from_bytes(data[start : start + 4], "big")]
    lying = replaced(data, b"ctts", ctts + full(b"cslg", 0, 0, planted))
    cleaned = assert_clean(lying, tmp_path, "cslg.mp4", [planted.decode()])
    assert cleaned == scrub(replaced(data, b"ctts", ctts + full(b"cslg", 0, 0, bytes(20)))).data
    count = int.from_bytes(ctts[12:16], "big")
    rows = struct.unpack_from(f">{2 * count}I", ctts, 16)
    least, greatest = min(rows[1::2]), max(rows[1::2])
    fields = cleaned[cleaned.index(b"cslg") + 8 :][:12]
    assert struct.unpack(">3i", fields) == (max(0, -least), least, greatest)


def test_sample_dependencies_keep_only_what_their_fields_mean(tmp_path: Path) -> None:
    """'sdtp' has a byte per sample: a code planted in them went through; the reserved value
    of each field is now 0 (unknown), so only dependencies stay."""
    planted = codes(42)["title"].encode()[:10]
    data = make_clip(tmp_path, "mp4")  # ten pictures
    start = data.index(b"stss") - 4
    stss = data[start : start + int.from_bytes(data[start : start + 4], "big")]
    real = bytes([0x20, 0x10, 0x18, 0x08, 0x10, 0x18, 0x08, 0x10, 0x18, 0x08])
    cleaned = scrub(replaced(data, b"stss", stss + full(b"sdtp", 0, 0, real))).data
    assert full(b"sdtp", 0, 0, real) in cleaned
    lying = replaced(data, b"stss", stss + full(b"sdtp", 0, 0, planted))
    assert_clean(lying, tmp_path, "sdtp.mp4", [planted.decode()])


def found_box(data: bytes, kind: bytes, nth: int = 0) -> bytes:
    """The `nth` (from 0) `kind` box of `data`, whole."""
    at = -1
    for _ in range(nth + 1):
        at = data.index(kind, at + 1)
    return data[at - 4 : at - 4 + int.from_bytes(data[at - 4 : at], "big")]


def test_rows_of_no_samples_and_a_sound_tracks_size_go(tmp_path: Path) -> None:
    """A 64-bit date planted as a time row of no samples ('stts', 'ctts': count 0, then the
    value) or as a sound track's width and height went through; a composition table of more
    samples than there are is refused."""
    stamp = struct.pack(">Q", random.Random(46).randrange(2**31, 2**32))  # seconds since 1904
    data = make_clip(tmp_path, "mp4")
    lying = data
    for kind in (b"stts", b"ctts"):
        table = found_box(data, kind)
        count = int.from_bytes(table[12:16], "big")
        rows = struct.pack(">I", count + 1) + table[16:] + stamp
        lying = replaced(lying, kind, full(kind, table[8], 0, rows))
    sound = found_box(lying, b"tkhd", 1)
    lying = lying.replace(sound, sound[:-8] + stamp)
    cleaned = assert_clean(lying, tmp_path, "rows.mp4", [])
    assert stamp not in cleaned
    assert cleaned == scrub(data).data
    ctts = found_box(data, b"ctts")
    more = ctts[:16] + struct.pack(">I", 99) + ctts[20:]
    with pytest.raises(DamagedImage, match="composition"):
        scrub(data.replace(ctts, more))


def test_sample_group_descriptions_no_run_names_are_zeros(tmp_path: Path) -> None:
    """Entries of a 'sgpd' that no 'sbgp' run names held a planted code (four 'roll'
    distances are a 64-bit date); they are written as zeros, the one the runs name stays."""
    stamp = struct.pack(">Q", random.Random(47).randrange(2**31, 2**32))
    data = apple_like(make_clip(tmp_path, "mp4"))
    roll = found_box(data, b"sgpd")  # one entry, -1, named by the runs
    lying = full(b"sgpd", 1, 0, b"roll" + struct.pack(">IIh", 2, 5, -1) + stamp)
    cleaned = scrub(replaced(data, b"sgpd", lying)).data
    assert stamp not in cleaned
    assert full(b"sgpd", 1, 0, b"roll" + struct.pack(">IIh", 2, 5, -1) + bytes(8)) in cleaned
    assert roll in scrub(data).data


_ENTRIES = (
    *(b"mp4a", b"fLaC", b"ac-3", b"ec-3", b"Opus", b"alac", b"sowt", b"lpcm", b"wave", b"hvc1"),
    b"vp09",
    b"avc1",
)


def replaced(data: bytes, kind: bytes, new: bytes, nth: int = 0) -> bytes:
    """The `nth` (from 0) `kind` box in the movie (moov last, so no sample moves) replaced by
    `new`, the sizes of the boxes around it grown to match."""
    at = -1
    for _ in range(nth + 1):
        at = data.index(kind, at + 1)
    at -= 4
    old = int.from_bytes(data[at : at + 4], "big")
    out = bytearray(data[:at] + new + data[at + old :])
    grow = len(new) - old
    for parent in (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd", *_ENTRIES):
        start = data.rfind(parent, 0, at) - 4
        size = int.from_bytes(data[start : start + 4], "big")
        if start >= 0 and start < at < start + size:
            out[start : start + 4] = (size + grow).to_bytes(4, "big")
    return bytes(out)


def descriptor(tag: int, payload: bytes) -> bytes:
    return bytes([tag, 0x80, 0x80, 0x80, len(payload)]) + payload


@pytest.mark.parametrize(
    "where", ["after the descriptors", "in the ES", "in the decoder", "in the configuration"]
)
def test_the_aac_configuration_is_written_anew(where: str, tmp_path: Path) -> None:
    """'esds' (in every AAC clip): its fields and the AudioSpecificConfig, nothing else."""
    planted = codes(31)["title"].encode()
    data = make_clip(tmp_path, "mp4")
    start = data.index(b"esds") - 4
    esds = data[start : start + int.from_bytes(data[start : start + 4], "big")]
    specific = esds[esds.index(b"\x05\x80\x80\x80") :][: 5 + esds[esds.index(b"\x05\x80") + 4]]
    if where == "in the configuration":  # after the AudioSpecificConfig's last field
        specific = descriptor(5, specific[5:] + planted)
    decoder = esds[esds.index(b"\x04\x80\x80\x80") + 5 :][:13] + specific
    extra = {"in the decoder": descriptor(0x14, planted)}.get(where, b"")
    es = b"\x00\x02\x00" + descriptor(4, decoder + extra) + descriptor(6, b"\x02")
    es += descriptor(0x0A, planted) if where == "in the ES" else b""
    tail = planted if where == "after the descriptors" else b""
    lying = replaced(data, b"esds", full(b"esds", 0, 0, descriptor(3, es) + tail))
    cleaned = assert_clean(lying, tmp_path, f"esds-{where}.mp4", [planted.decode()])
    assert cleaned == scrub(data).data  # exactly what ffmpeg's own 'esds' gives


def test_he_aac_signalling_stays_and_what_follows_it_goes() -> None:
    """AAC-LC at 48 kHz with SBR (24 -> 48 kHz output) and PS signalled after its fields."""
    fields = "00010 0011 0010 000" + "01010110111 00101 1 0110" + "10101001000 1"
    fields += "0" * (-len(fields.replace(" ", "")) % 8)
    config = int(fields.replace(" ", ""), 2).to_bytes(7, "big")
    assert aac.trimmed(config + codes(40)["title"].encode()) == config
    assert aac.trimmed(bytes.fromhex("1210") + bytes(14)) == bytes.fromhex("1210")


def test_mpeg4_visual_headers_lose_their_user_data(tmp_path: Path) -> None:
    """The 'esds' of MPEG-4 Visual ('mp4v': old cameras, ffmpeg's mpeg4) kept the user data
    of its headers: the encoder's name and version, or a code planted there."""
    data = make_clip(tmp_path, "mp4", "-c:v", "mpeg4")
    user = data.index(b"\x00\x00\x01\xb2", data.index(b"esds")) + 4
    assert data[user : user + 4] == b"Lavc"
    planted = codes(44)["title"][:13]
    lying = data[:user] + planted.encode() + data[user + 13 :]
    cleaned = assert_clean(lying, tmp_path, "mp4v.mp4", [planted])
    assert cleaned == scrub(data).data
    esds = cleaned.index(b"esds")
    assert b"\x00\x00\x01\xb2" not in cleaned[esds : esds + cleaned[esds - 1]]


# Real configurations to mutate: x264's high-profile SPS and PPS, AAC-LC, HE-AAC with PS.
_SPS = bytes.fromhex("6764000aacd94426c044000003000400000300503c489658")
_PPS = bytes.fromhex("68ebe3cb22c0")
_AAC = (bytes.fromhex("1210"), bytes.fromhex("119056e5b54880"))


def _pps_of_sps_0(unit: bytes) -> bytes:
    return avc.trimmed_pps(unit, {0: 1})


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    st.sampled_from([_SPS, _PPS, *_AAC]),
    st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), max_size=4),
    st.binary(max_size=24),
)
def test_configuration_readers_refuse_or_cut(
    unit: bytes, changes: list[tuple[int, int]], tail: bytes
) -> None:
    """Mutated parameter sets and AAC configurations: refused as damage, or cut to a prefix
    of themselves that reads as itself again (a second scrub changes nothing)."""
    mutated = bytearray(unit + tail)
    for at, value in changes:
        mutated[at % len(mutated)] = value
    read: Callable[[bytes], bytes] = aac.trimmed if unit in _AAC else avc.trimmed_sps
    if unit == _PPS:
        read = _pps_of_sps_0
    try:
        cut = read(bytes(mutated))
    except DamagedImage:
        return
    assert cut[:-1] == bytes(mutated[: len(cut) - 1])
    assert read(cut) == cut


def test_aac_kept_in_another_file_is_refused(tmp_path: Path) -> None:
    data = make_clip(tmp_path, "mp4")
    start = data.index(b"esds") - 4
    esds = data[start : start + int.from_bytes(data[start : start + 4], "big")]
    at = esds.index(b"\x03\x80\x80\x80") + 7  # the ES flags
    url = esds[:at] + b"\x40" + b"\x0bhttp://x.y/" + esds[at + 1 :]
    with pytest.raises(UnsupportedFormat, match="another file"):
        scrub(replaced(data, b"esds", fix_descriptor_sizes(url)))


def fix_descriptor_sizes(esds: bytes) -> bytes:
    """`esds` with its box and ES_Descriptor sizes made true after an insertion."""
    body = esds[12:]
    es = body[5:]
    return full(b"esds", 0, 0, descriptor(3, es))


def test_flac_keeps_its_stream_information_only(tmp_path: Path) -> None:
    """'dfLa' may carry Vorbis comments (tags) and pictures: only STREAMINFO stays."""
    planted = codes(32)["title"].encode()
    data = make_clip(tmp_path, "mp4", "-c:a", "flac", "-strict", "-2")
    start = data.index(b"dfLa") - 4
    dfla = data[start : start + int.from_bytes(data[start : start + 4], "big")]
    header, info = dfla[12:16], dfla[16:50]  # STREAMINFO, flagged as the last block
    assert header == b"\x80\x00\x00\x22"
    comment = b"\x84" + len(planted).to_bytes(3, "big") + planted  # a Vorbis comment, last
    lying = full(b"dfLa", 0, 0, b"\x00" + header[1:] + info + comment)
    tagged = replaced(data, b"dfLa", lying)
    assert planted in tagged
    found = inspect(tagged).findings
    assert any("FLAC" in f.source or "FLAC" in f.value for f in found), found
    shown = {"Unknown_dfLa"}  # ExifTool (-u) names FLAC's configuration: its STREAMINFO
    cleaned = assert_clean(tagged, tmp_path, "flac.mp4", [planted.decode()], shown)
    assert cleaned == scrub(data).data


@pytest.mark.parametrize(
    ("codec", "container", "kind", "nth"),
    [
        ("ac3", "mp4", b"dac3", 0),
        ("eac3", "mp4", b"dec3", 0),
        ("libopus", "mp4", b"dOps", 0),
        ("alac", "mp4", b"alac", 1),  # the configuration inside the 'alac' sample entry
        ("pcm_s16le", "mov", b"chan", 0),
        ("aac", "mov", b"frma", 0),  # in QuickTime's 'wave'
    ],
)
def test_sound_configurations_keep_their_fields_only(
    codec: str, container: str, kind: bytes, nth: int, tmp_path: Path
) -> None:
    """Bytes planted after a sound configuration's last field go; the rest is as it was."""
    planted = codes(33)["title"].encode()
    data = make_clip(tmp_path, container, "-c:a", codec, "-strict", "-2")
    at = -1
    for _ in range(nth + 1):
        at = data.index(kind, at + 1)
    config = data[at - 4 : at - 4 + int.from_bytes(data[at - 4 : at], "big")]
    lying = replaced(data, kind, box(kind, config[8:] + planted), nth)
    assert planted in lying
    cleaned = scrub(lying).data
    assert planted not in cleaned
    expected = data
    if kind == b"dec3":  # two bytes after the substreams are read as the Atmos extension
        atmos = bytes([planted[0] & 0x01, planted[1]])
        expected = replaced(data, kind, box(kind, config[8:] + atmos))
    assert cleaned == scrub(expected).data


def overwritten(data: bytes, kind: bytes, nth: int, at: bytes, skip: int, code: bytes) -> bytes:
    """`code` written over the bytes `skip` after `at` (b"": the start) in the `nth` `kind` box."""
    start = -1
    for _ in range(nth + 1):
        start = data.index(kind, start + 1)
    start -= 4
    pos = data.index(at, start) + skip if at else start + skip
    return data[:pos] + code + data[pos + len(code) :]


@pytest.mark.parametrize(
    ("args", "kind", "nth", "at", "skip", "size"),
    [
        (("mp4",), b"btrt", 0, b"", 12, 8),  # maximum and average bitrate
        (("mp4",), b"esds", 0, b"\x04\x80\x80\x80", 10, 8),  # the same in the AAC decoder's
        (("mp4",), b"mp4a", 0, b"", 28, 4),  # compression id, packet size (reserved in ISO)
        (("mov", "-c:a", "pcm_s16le", "-ar", "96000"), b"lpcm", 0, b"", 36, 4),  # v2: always 72
        (("mov", "-c:a", "pcm_s16le"), b"chan", 0, b"", 16, 4),  # a bitmap its tag does not use
        (("mp4", "-c:a", "alac"), b"alac", 1, b"", 26, 10),  # run limit, frame size, bitrate
        (("mp4", "-vf", "setsar=4/3"), b"pasp", 0, b"", 8, 8),  # no 16-bit aspect ratio
    ],
)
def test_fields_no_decoder_reads_are_written_as_their_standards_give(
    args: tuple[str, ...], kind: bytes, nth: int, at: bytes, skip: int, size: int, tmp_path: Path
) -> None:
    """Numbers no decoder reads (bitrate hints, reserved and constant fields) held a planted
    code through the scrub; now they are written as their standards give them."""
    planted = codes(35)["title"][-size:]
    data = make_clip(tmp_path, *args)
    lying = overwritten(data, kind, nth, at, skip, planted.encode())
    shown = {"Unknown_alac"}  # ExifTool (-u) names ALAC's configuration
    assert_clean(lying, tmp_path, f"fields-{kind.decode()}.{args[0]}", [planted], shown)


def test_a_pixel_aspect_ratio_is_kept_reduced(tmp_path: Path) -> None:
    data = make_clip(tmp_path, "mp4", "-vf", "setsar=4/3")
    assert box(b"pasp", struct.pack(">II", 4, 3)) in scrub(data).data
    doubled = overwritten(data, b"pasp", 0, b"", 8, struct.pack(">II", 8, 6))
    assert box(b"pasp", struct.pack(">II", 4, 3)) in scrub(doubled).data


def test_hdr_and_channel_fields_keep_only_what_they_describe(tmp_path: Path) -> None:
    """A mastering display outside SMPTE ST 2086 goes; VP9 has no initialization data; a
    channel description without coordinates has none."""
    planted = codes(36)["title"].encode()
    hevc = make_clip(tmp_path, "mp4-hevc")
    start = hevc.index(b"hvcC") - 4
    hvcc = hevc[start : start + int.from_bytes(hevc[start : start + 4], "big")]
    display = box(b"mdcv", struct.pack(">8H", *[10_000] * 8) + planted[:8])
    cleaned = scrub(replaced(hevc, b"hvcC", hvcc + display)).data
    assert planted[:8] not in cleaned
    assert b"mdcv" not in cleaned
    real = box(b"mdcv", struct.pack(">8HII", *[10_000] * 8, 10_000_000, 50))
    assert real in scrub(replaced(hevc, b"hvcC", hvcc + real)).data
    stamp = struct.pack(">Q", random.Random(36).randrange(2**31, 2**32))  # no illuminance
    cleaned = scrub(replaced(hevc, b"hvcC", hvcc + box(b"amve", stamp))).data
    assert stamp not in cleaned
    assert b"amve" not in cleaned
    vp9 = make_clip(tmp_path, "mp4", "-c:v", "libvpx-vp9", "-deadline", "realtime")
    start = vp9.index(b"vpcC") - 4
    config = vp9[start + 8 : start + 18]
    lying = replaced(vp9, b"vpcC", box(b"vpcC", config + struct.pack(">H", 14) + planted[:14]))
    cleaned = scrub(lying).data  # (ffmpeg refuses to read it; a player may not)
    assert planted[:14] not in cleaned
    assert cleaned == scrub(vp9).data
    pcm = make_clip(tmp_path, "mov", "-c:a", "pcm_s16le")
    row = struct.pack(">II", 1, 0) + planted[:12]  # left, no coordinates flagged
    chan = box(b"chan", struct.pack(">IIII", 0, 0, 0, 1) + row)
    cleaned = scrub(replaced(pcm, b"chan", chan)).data
    assert planted[:12] not in cleaned
    assert box(b"chan", struct.pack(">IIIIII", 0, 0, 0, 1, 1, 0) + bytes(12)) in cleaned


def avc_units(data: bytes) -> tuple[bytes, list[bytes], list[bytes]]:
    """The head of the first 'avcC' record (five bytes), its SPS and its PPS units."""
    at = data.index(b"avcC") + 4
    head, pos, found = data[at : at + 5], at + 5, []
    for mask in (0x1F, 0xFF):
        units = []
        for _ in range(data[pos] & mask):
            size = int.from_bytes(data[pos + 1 : pos + 3], "big")
            units.append(data[pos + 3 : pos + 3 + size])
            pos += 2 + size
        found.append(units)
        pos += 1
    return head, found[0], found[1]


def avc_record(head: bytes, sps: list[bytes], pps: list[bytes]) -> bytes:
    lists = [bytes([0xE0 | len(sps)]), *(struct.pack(">H", len(u)) + u for u in sps)]
    lists += [bytes([len(pps)]), *(struct.pack(">H", len(u)) + u for u in pps)]
    return box(b"avcC", head + b"".join(lists) + bytes([0xFC | 1, 0xF8, 0xF8, 0]))


@pytest.mark.parametrize("profile", ["baseline", "high"])
def test_h264_parameter_sets_are_cut_at_their_stop_bit(profile: str, tmp_path: Path) -> None:
    """Bytes after an SPS's stop bit (a decoder ignores them) went through in 'avcC'; now each
    parameter set ends at its stop bit, and a unit that is no parameter set is refused."""
    planted = codes(38)["title"].encode()
    data = make_clip(tmp_path, "mp4", "-profile:v", profile, "-x264-params", "nal-hrd=vbr")
    head, sps, pps = avc_units(data)
    original = replaced(data, b"avcC", avc_record(head, sps, pps))
    lying = replaced(data, b"avcC", avc_record(head, [sps[0] + planted], pps))
    cleaned = scrub(lying).data
    assert planted not in cleaned
    assert cleaned == scrub(original).data
    assert avc_units(cleaned)[1:] == (sps, pps)  # ffmpeg's own come out byte for byte
    named = b"\x68\x8d" + planted  # PPS 0 of SPS 12, which is not there
    for fake_sps, fake_pps in (([*sps, b"\x67" + planted], pps), (sps, [*pps, named])):
        with pytest.raises(DamagedImage, match="parameter set"):
            scrub(replaced(data, b"avcC", avc_record(head, fake_sps, fake_pps)))


def hvcc_arrays(data: bytes) -> tuple[bytes, list[bytes]]:
    """The first 'hvcC' box and each of its NAL unit arrays (head, count, units)."""
    start = data.index(b"hvcC") - 4
    hvcc = data[start : start + int.from_bytes(data[start : start + 4], "big")]
    arrays, pos = [], 8 + 23
    for _ in range(hvcc[8 + 22]):
        count = int.from_bytes(hvcc[pos + 1 : pos + 3], "big")
        end = pos + 3
        for _ in range(count):
            end += 2 + int.from_bytes(hvcc[end : end + 2], "big")
        arrays.append(hvcc[pos:end])
        pos = end
    return hvcc, arrays


def test_an_sei_in_a_parameter_set_array_goes(tmp_path: Path) -> None:
    """A unit whose own header says SEI, put in the PPS array of 'hvcC', went through."""
    planted = codes(41)["title"].encode()
    data = make_clip(tmp_path, "mp4-hevc")
    hvcc, arrays = hvcc_arrays(data)
    pps = next(array for array in arrays if array[0] & 0x3F == 34)
    sei = b"\x4e\x01" + planted
    count = int.from_bytes(pps[1:3], "big") + 1
    lying_pps = pps[:1] + struct.pack(">HH", count, len(sei)) + sei + pps[3:]
    lying = replaced(data, b"hvcC", box(b"hvcC", hvcc[8:].replace(pps, lying_pps)))
    cleaned = assert_clean(lying, tmp_path, "sei.mp4", [planted.decode()])
    assert cleaned == scrub(data).data


def test_the_spatial_video_configuration_keeps_parameter_sets_only(tmp_path: Path) -> None:
    """'lhvC' (an iPhone's spatial video) as 'hvcC': an SEI array planted in it goes."""
    planted = codes(34)["title"].encode()
    data = make_clip(tmp_path, "mp4-hevc")
    hvcc, arrays = hvcc_arrays(data)
    sets = [array for array in arrays if array[0] & 0x3F in (32, 33, 34)]  # VPS, SPS, PPS
    sei = bytes([39]) + struct.pack(">HH", 1, len(planted) + 2) + b"\x4e\x01" + planted
    head = b"\x01\xf0\x00\xfc\xcb"
    lhvc = box(b"lhvC", head + bytes([len(sets) + 1]) + b"".join(sets) + sei)
    # the lhvC goes right after the hvcC, inside the 'hvc1' sample entry
    lying = replaced(data, b"hvcC", hvcc + lhvc)
    cleaned = scrub(lying).data
    assert planted not in cleaned
    assert box(b"lhvC", head + bytes([len(sets)]) + b"".join(sets)) in cleaned


def test_a_spatial_videos_views_keep_their_known_boxes_only(tmp_path: Path) -> None:
    """'vexu' was copied whole, so a box planted in it went through; it is written anew from
    its known boxes (as in androidx/media's MV-HEVC clip, which comes out byte for byte)."""
    planted = codes(43)["title"].encode()
    cams = box(b"cams", full(b"blin", 0, 0, struct.pack(">I", 19240)))
    cmfy = box(b"cmfy", full(b"dadj", 0, 0, struct.pack(">i", 200)))
    eyes = box(b"eyes", full(b"stri", 0, 0, b"\x03") + cams + cmfy)
    vexu = box(b"vexu", eyes + box(b"proj", full(b"prji", 0, 0, b"rect")))
    free = box(b"free", planted)
    lying_eyes = box(b"eyes", eyes[8:] + free)
    lying = box(b"vexu", lying_eyes + box(b"proj", full(b"prji", 0, 0, b"rect" + planted)) + free)
    data = make_clip(tmp_path, "mp4-hevc")
    hvcc, _ = hvcc_arrays(data)
    cleaned = scrub(replaced(data, b"hvcC", hvcc + lying)).data
    assert planted not in cleaned
    assert vexu in cleaned
    assert cleaned == scrub(replaced(data, b"hvcC", hvcc + vexu)).data


def side_data(path: Path) -> list[str]:
    """The side data types ffprobe reports for each stream."""
    streams = ffprobe_streams(path)
    return [d["side_data_type"] for s in streams for d in s.get("side_data_list", [])]


def test_a_spherical_video_keeps_its_projection_without_the_tools_name(tmp_path: Path) -> None:
    """'st3d', 'sv3d' and 'SA3D' (360-degree cameras) were dropped, so the video played flat;
    they are written anew, without the name of the tool in 'svhd' and what rides after."""
    planted = codes(45)["title"].encode()
    st3d = full(b"st3d", 0, 0, b"\x00")
    pose = full(b"prhd", 0, 0, struct.pack(">3i", 0, 0, 0))
    equi = full(b"equi", 0, 0, bytes(16))
    sv3d = box(b"sv3d", full(b"svhd", 0, 0, b"\0") + box(b"proj", pose + equi))
    lying_sv3d = box(
        b"sv3d",
        full(b"svhd", 0, 0, b"Camera " + planted + b"\0")
        + box(b"proj", pose + full(b"equi", 0, 0, bytes(16) + planted) + box(b"free", planted)),
    )
    sa3d = box(b"SA3D", struct.pack(">BBIBBI4I", 0, 0, 1, 0, 0, 4, 0, 1, 2, 3))
    lying_sa3d = box(b"SA3D", sa3d[8:] + planted)
    data = make_clip(tmp_path, "mp4")
    start = data.index(b"avcC") - 4
    avcc = data[start : start + int.from_bytes(data[start : start + 4], "big")]
    esds_at = data.index(b"esds") - 4
    esds = data[esds_at : esds_at + int.from_bytes(data[esds_at : esds_at + 4], "big")]

    def spherical(sv3d: bytes, sa3d: bytes) -> bytes:
        video = replaced(data, b"avcC", avcc + st3d + sv3d)
        return replaced(video, b"esds", esds + sa3d)

    cleaned = scrub(spherical(lying_sv3d, lying_sa3d)).data
    assert planted not in cleaned
    for kept in (st3d, sv3d, sa3d):
        assert kept in cleaned
    assert cleaned == scrub(spherical(sv3d, sa3d)).data
    source, out = tmp_path / "sphere-in.mp4", tmp_path / "sphere-out.mp4"
    source.write_bytes(spherical(sv3d, sa3d))
    out.write_bytes(scrub(source.read_bytes()).data)
    assert "Spherical Mapping" in side_data(out)
    assert side_data(out) == side_data(source)


def turned(data: bytes) -> bytes:
    """The picture track's matrix as a quarter turn, as phones write it (moov last)."""
    *_, moov = top_boxes(data)
    turn = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 64 << 16, 0, 0x40000000)

    def change(d: bytes, b: isobmff.Box) -> bytes:
        if b.type == b"tkhd" and d[b.end - 8 : b.end] != bytes(8):  # the track with a size
            return d[b.start : b.end - 44] + turn + d[b.end - 8 : b.end]
        if b.type == b"trak":
            return rewrite(d, b, change)
        return d[b.start : b.end]

    return data[: moov.start] + rewrite(data, moov, change)


def test_a_display_size_its_pictures_cannot_have_is_theirs(tmp_path: Path) -> None:
    """A picture track's width and height (eight bytes of 'tkhd') kept any code planted in
    them; a size its pictures cannot be shown at is now theirs. An anamorphic one stays."""
    data = make_clip(tmp_path, "mp4", "-vf", "setsar=4/3")
    tkhd = found_box(data, b"tkhd")
    assert tkhd[-8:] == struct.pack(">II", round(64 * 4 / 3 * 65536), 64 << 16)
    assert tkhd[-8:] in scrub(data).data
    rng = random.Random(48)
    planted = struct.pack(">4H", 200, rng.randrange(1 << 16), 150, rng.randrange(1 << 16))
    cleaned = assert_clean(data.replace(tkhd, tkhd[:-8] + planted), tmp_path, "size.mp4", [])
    assert planted not in cleaned
    assert struct.pack(">II", 64 << 16, 64 << 16) in cleaned


def test_rotation_is_kept_and_other_matrices_are_not(tmp_path: Path) -> None:
    data = turned(make_clip(tmp_path, "mp4"))
    source = tmp_path / "turned.mp4"
    source.write_bytes(data)
    assert "90" in str(probe(source))
    assert_clean(data, tmp_path, "turned.mp4", [])
    code = struct.pack(">i", random.Random(4).randrange(1, 2**30))
    planted = data.replace(
        struct.pack(">i", 64 << 16) + bytes(4) + b"\x40", code + bytes(4) + b"\x40"
    )
    assert planted != data
    cleaned = scrub(planted).data
    assert code not in cleaned


def test_only_the_kept_chunks_stay_in_mdat(tmp_path: Path) -> None:
    """The samples of removed tracks and the bytes between chunks leave the file."""
    value = codes(11)
    data = phone_clip(tmp_path, "mp4", value)
    cleaned = scrub(data).data
    mdats = [b for b in top_boxes(cleaned) if b.type == b"mdat"]
    assert len(mdats) == 1
    original = next(b for b in top_boxes(data) if b.type == b"mdat")
    assert mdats[0].end - mdats[0].body <= original.end - original.body
    assert value["gpmf"].encode() not in cleaned


def test_a_gopro_s_serial_numbers_and_firmware_are_told(tmp_path: Path) -> None:
    """GoPro's user data items are their value alone: 'FIRM' firmware, 'LENS' the lens serial
    number, 'CAME' a hash of the camera's; 'SNum' a serial number, 3GPP 'perf' a performer."""
    value = codes(19)
    came = random.Random(19).randbytes(16)
    udta = box(b"FIRM", value["software"].encode()) + box(b"LENS", value["model"].encode())
    udta += box(b"CAME", came) + box(b"SNum", value["identifier"].encode())
    udta += full(b"perf", 0, 0, b"\x15\xc7" + value["make"].encode() + b"\0")
    data = make_clip(tmp_path, "mp4")  # moov last
    (moov,) = [b for b in top_boxes(data) if b.type == b"moov"]
    data = data[: moov.start] + box(b"moov", data[moov.body : moov.end] + box(b"udta", udta))
    found = {(f.kind, f.key, f.value) for f in inspect(data).findings}
    assert {
        (Kind.DEVICE, "software", value["software"]),
        (Kind.DEVICE, "lens_serial", value["model"]),
        (Kind.DEVICE, "serial", came.hex()),
        (Kind.DEVICE, "serial", value["identifier"]),
        (Kind.PEOPLE, "author", value["make"]),
    } <= found
    text = render(inspect(data).findings, "en").text
    assert f"serial number {came.hex()[:10]}" in text
    assert f"lens serial number {value['model']}" in text
    planted = [value["software"], value["model"], value["identifier"], value["make"]]
    cleaned = assert_clean(data, tmp_path, "gopro.mp4", planted)
    assert came not in cleaned


def test_utf_16_text_is_told_as_written(tmp_path: Path) -> None:
    """3GPP text boxes may be UTF-16 after a byte order mark, Apple's 'data' of type 2 is
    UTF-16: each is told as the text it is and goes."""
    value = codes(29)
    titl = full(b"titl", 0, 0, b"\x15\xc7" + f"\ufeff{value['title']}\0".encode("utf-16-be"))
    make = apple_meta({"com.apple.quicktime.make": (2, value["make"].encode("utf-16-be"))})
    data = make_clip(tmp_path, "mp4")  # moov last
    (moov,) = [b for b in top_boxes(data) if b.type == b"moov"]
    added = box(b"udta", titl) + make
    data = data[: moov.start] + box(b"moov", data[moov.body : moov.end] + added)
    found = {f.value for f in inspect(data).findings}
    assert {value["title"], value["make"]} <= found
    cleaned = assert_clean(data, tmp_path, "utf16.mp4", [value["title"], value["make"]])
    assert value["make"].encode("utf-16-be") not in cleaned


def test_place_names_and_makers_previews_are_told(tmp_path: Path) -> None:
    """A 3GPP 'loci' names the place and has notes (UTF-8, or UTF-16 after a byte order mark:
    the coordinates after it still read right); Canon's 'CNTH' and Nikon's 'NCDT' hold a JPEG
    preview with its own EXIF: each is told, and goes."""
    value = codes(31)
    lat, lon = float(value["lat"]), float(value["lon"])
    where = struct.pack(">iii", round(lon * 65536), round(lat * 65536), 0)

    def loci(name: bytes) -> bytes:
        notes = value["trackname"].encode() + b"\0"
        return full(b"loci", 0, 0, b"\x15\xc7" + name + b"\0" + where + b"earth\0" + notes)

    utf16 = f"\ufeff{value['make']}\0".encode("utf-16-be")[:-1]  # loci() adds the last NUL
    preview = gps_jpeg(tmp_path, value)
    udta = loci(value["title"].encode()) + loci(utf16)
    udta += box(b"CNTH", box(b"CNDA", preview)) + box(b"NCDT", box(b"NCTH", preview))
    data = make_clip(tmp_path, "mp4")  # moov last
    (moov,) = [b for b in top_boxes(data) if b.type == b"moov"]
    data = data[: moov.start] + box(b"moov", data[moov.body : moov.end] + box(b"udta", udta))
    found = inspect(data).findings
    places = [f.value for f in found if f.key == "place"]
    assert places == [value["title"], value["trackname"], value["make"], value["trackname"]]
    coordinates = [f.position for f in found if f.key == "coordinates" and f.position]
    assert coordinates  # of 'loci' and the previews' EXIF (the same: told once)
    assert all(place == pytest.approx((lat, lon), abs=1e-4) for place in coordinates)
    assert {f.value for f in found if f.key == "model"} == {value["model"]}
    assert len([f for f in found if f.key == "thumbnail"]) == 2
    assert {f.value for f in found if f.key == "maker_notes"} == {"CNTH", "NCDT"}
    text = render(found, "en").text
    assert value["title"] in text
    assert "the maker's private notes" in text
    planted = [value["title"], value["trackname"], value["make"], value["model"]]
    cleaned = assert_clean(data, tmp_path, "loci.mp4", planted)
    assert preview not in cleaned


def test_xmp_in_the_movie_and_a_samsung_model_are_told(tmp_path: Path) -> None:
    """XMP in a 'uuid' box inside 'moov' (not only at the top) or in the 'xml ' box of a
    'meta' is read as XMP; Samsung's 'smta' names the model in 'mdln'."""
    value = codes(37)
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{RDF}">'
    xmp += '<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'
    xmp += f' tiff:Make="{value["make"]}"/>'
    xmp += "</rdf:RDF></x:xmpmeta>"
    smta = box(b"smta", bytes(4) + box(b"saut", bytes(4)) + box(b"mdln", value["model"].encode()))
    smta += box(b"smta", value["model"].encode())  # laid out otherwise: goes, told as notes
    added = box(b"uuid", mp4.XMP_UUID + xmp.encode()) + box(b"udta", smta)
    made = xmp.replace(value["make"], value["software"]).encode()
    hdlr = full(b"hdlr", 0, 0, bytes(4) + b"mdir" + bytes(12) + b"\0")
    added += full(b"meta", 0, 0, hdlr + full(b"xml ", 0, 0, made))  # XMP in an 'xml ' box
    data = make_clip(tmp_path, "mp4")  # moov last
    (moov,) = [b for b in top_boxes(data) if b.type == b"moov"]
    data = data[: moov.start] + box(b"moov", data[moov.body : moov.end] + added)
    found = {(f.key, f.value) for f in inspect(data).findings}
    assert {("make", value["make"]), ("model", value["model"])} <= found
    assert ("make", value["software"]) in found
    assert_clean(data, tmp_path, "smta.mp4", [value["make"], value["model"], value["software"]])


def test_a_removed_track_s_own_user_data_and_date_are_told(tmp_path: Path) -> None:
    """A track we remove goes whole, but what its 'udta' and headers say is told too."""
    value = codes(39)
    place = f"{value['lat']}{value['lon']}/"
    trak = timed_track(90, b"gpmd", [], 0)  # version-1 headers dated 3_800_000_000
    trak = box(b"trak", trak[8:] + box(b"udta", box(b"\xa9xyz", qt_text(place))))
    data = make_clip(tmp_path, "mp4")  # moov last, its own dates zero
    (moov,) = [b for b in top_boxes(data) if b.type == b"moov"]
    data = data[: moov.start] + box(b"moov", data[moov.body : moov.end] + trak)
    found = inspect(data).findings
    assert any(
        f.key == "coordinates" and f.source == "video (user data of a track)" for f in found
    )
    assert ("taken", "2024:05:31 11:33:20") in {(f.key, f.value) for f in found}
    assert_clean(data, tmp_path, "removed-udta.mp4", [value["lat"][1:]])


def test_apple_place_names_and_people_are_told(tmp_path: Path) -> None:
    value = codes(43)
    meta = apple_meta(
        {
            "com.apple.quicktime.location.name": value["title"],
            "com.apple.quicktime.location.date": "2023-06-01T10:11:12+0200",
            "com.apple.quicktime.copyright": value["make"],
            "com.apple.quicktime.album": value["trackname"],
        }
    )
    data = make_clip(tmp_path, "mp4")  # moov last
    (moov,) = [b for b in top_boxes(data) if b.type == b"moov"]
    data = data[: moov.start] + box(b"moov", data[moov.body : moov.end] + meta)
    found = {(f.kind, f.value) for f in inspect(data).findings}
    assert {
        (Kind.LOCATION, value["title"]),
        (Kind.TIME, "2023-06-01T10:11:12+0200"),
        (Kind.PEOPLE, value["make"]),
        (Kind.DESCRIPTION, value["trackname"]),
    } <= found
    assert_clean(data, tmp_path, "apple.mp4", [value["title"], value["make"], "2023-06-01"])


def test_a_user_data_list_may_end_with_quicktime_s_terminator(tmp_path: Path) -> None:
    """QuickTime lets a 'udta' list end with four zero bytes (old cameras write them): read,
    told and gone. Other bytes that are no box go too (user data is never kept): what came
    before them is told, and that there was more we could not read."""
    value = codes(47)
    data = make_clip(tmp_path, "mov")  # moov last
    (moov,) = [b for b in top_boxes(data) if b.type == b"moov"]
    for tail, name in ((bytes(4), "terminated.mov"), (b"junk" + value["model"].encode(), "j.mov")):
        udta = box(b"udta", box(b"\xa9mak", qt_text(value["make"])) + tail)
        changed = data[: moov.start] + box(b"moov", data[moov.body : moov.end] + udta)
        assert value["make"] in {f.value for f in inspect(changed).findings}
        blocks = {block.name for block in mp4.parse(changed).blocks}
        assert ("user data of the movie we could not read" in blocks) == (tail != bytes(4))
        assert_clean(changed, tmp_path, name, [value["make"], value["model"]])


def test_a_chapter_track_s_titles_are_told(tmp_path: Path) -> None:
    """A QuickTime chapter track (a text track a 'tref' names as 'chap') holds titles a
    person wrote: told as the chapters, then removed with its samples."""
    value = codes(23)
    titles = [value["title"], value["trackname"]]
    samples = [struct.pack(">H", len(t)) + t.encode() + b"\0\0\0\x0cencd\0\0\1\0" for t in titles]
    data = make_clip(tmp_path, "mp4")  # moov last
    (moov,) = [b for b in top_boxes(data) if b.type == b"moov"]
    chap = box(b"tref", box(b"chap", struct.pack(">I", 3)))
    body = b"".join(
        box(b"trak", data[b.body : b.end] + chap) if b.type == b"trak" else data[b.start : b.end]
        for b in isobmff.boxes(data, moov.body, moov.end, Budget())
    )
    first = moov.start + 8 + len(body) + len(timed_track(3, b"text", samples, 0)) + 8
    body += timed_track(3, b"text", samples, first, b"text")
    data = data[: moov.start] + box(b"moov", body) + box(b"mdat", b"".join(samples))
    found = inspect(data).findings
    assert [f.value for f in found if f.key == "chapters"] == ["; ".join(titles)]
    assert f"“{value['title']}; {value['trackname']}”" in render(found, "en").text
    assert_clean(data, tmp_path, "chapters.mp4", titles)


def test_a_late_file_type_box_must_name_a_video_brand(tmp_path: Path) -> None:
    """An 'ftyp' after a 'wide' box is written back: a major brand that is no video brand (a
    planted code) is refused, as it would be first; a video brand is kept."""
    data = make_clip(tmp_path, "mp4")
    ftyp = top_boxes(data)[0]
    for major, kept in ((b"QZ7K", False), (b"mp42", True)):
        late = box(b"wide", b"") + box(b"ftyp", major + data[ftyp.body + 4 : ftyp.end - 8])
        late += data[ftyp.end :]
        if kept:
            assert top_boxes(scrub(late).data)[0].type == b"ftyp"
            continue
        with pytest.raises(DamagedImage, match="its file type 'QZ7K' is no video's"):
            scrub(late)


def test_a_removed_track_whose_samples_lie_in_a_kept_chunk_is_refused(tmp_path: Path) -> None:
    """Kept chunks are copied whole: a removed track's sample inside one (or sharing its
    offset) would be copied with it, so the file is refused."""
    data = make_clip(tmp_path, "mp4")  # moov last: a track added to it moves no sample
    (moov,) = [b for b in top_boxes(data) if b.type == b"moov"]
    stco = data.index(b"stco", moov.start)
    first, second = struct.unpack_from(">II", data, stco + 12)
    for at in (first + 40, second):
        planted = bytearray(data)
        planted[at : at + 12] = b"FBMD12345678"
        added = box(b"moov", data[moov.body : moov.end] + timed_track(9, b"gpmd", [b"F"], at))
        with pytest.raises(DamagedImage, match="removed track's samples lie in a kept"):
            scrub(bytes(planted[: moov.start]) + added)


def test_a_movie_without_pictures_or_in_an_unknown_codec_is_refused(tmp_path: Path) -> None:
    data = make_clip(tmp_path, "mp4")
    for old, new in ((b"avc1", b"zzzz"), (b"vide", b"sdsm")):
        changed = data.replace(old, new)
        with pytest.raises(UnsupportedFormat) as refused:
            scrub(changed)
        assert "\n" not in refused.value.message


@pytest.mark.parametrize("variant", ["mp4", "mp4-faststart", "mov"])
def test_truncated_files_are_refused_in_one_line(variant: str, tmp_path: Path) -> None:
    data = make_clip(tmp_path, variant)
    for cut in (12, 40, len(data) // 3, len(data) // 2, len(data) - 50, len(data) - 1):
        with pytest.raises(ScrubError) as refused:
            scrub(data[:cut])
        assert "\n" not in refused.value.message
        assert refused.value.message


def test_lying_tables_are_refused(tmp_path: Path) -> None:
    data = make_clip(tmp_path, "mp4")
    stsz = data.index(b"stsz")
    sizes = bytearray(data)
    sizes[stsz + 16 : stsz + 20] = struct.pack(">I", 10**9)  # a sample larger than the file
    stco = data.index(b"stco")
    offsets = bytearray(data)
    offsets[stco + 12 : stco + 16] = struct.pack(">I", len(data) + 10)
    stts = data.index(b"stts")
    times = bytearray(data)
    times[stts + 12 : stts + 16] = struct.pack(">I", 999)  # more samples than sizes
    for lying in (sizes, offsets, times):
        with pytest.raises(DamagedImage):
            scrub(bytes(lying))


def configured_clip(tmp_path: Path) -> bytes:
    """A clip whose picture track has what we read field by field: sample groups, 'sdtp',
    'cslg', and in its sample entry a spatial and a spherical video's boxes."""
    data = apple_like(make_clip(tmp_path, "mp4"))
    ctts = found_box(data, b"ctts")
    timing = full(b"cslg", 0, 0, bytes(20)) + full(b"sdtp", 0, 0, bytes([0x20, *[0x18] * 9]))
    data = replaced(data, b"ctts", ctts + timing)
    eyes = box(b"eyes", full(b"stri", 0, 0, b"\x03") + box(b"cams", full(b"blin", 0, 0, bytes(4))))
    views = box(b"vexu", eyes + box(b"proj", full(b"prji", 0, 0, b"rect")))
    projection = box(b"proj", full(b"prhd", 0, 0, bytes(12)) + full(b"equi", 0, 0, bytes(16)))
    sphere = full(b"st3d", 0, 0, b"\0") + box(b"sv3d", full(b"svhd", 0, 0, b"\0") + projection)
    return replaced(data, b"avcC", found_box(data, b"avcC") + views + sphere)


# What ExifTool (-u) shows of the display fields a spatial, spherical or HDR clip keeps.
_DISPLAY = {"Unknown_vexu", "Unknown_amve", "Unknown_hfov", "Stereoscopic3D", "MetadataSource"}
_DISPLAY |= {f"Pose{axis}Degrees" for axis in ("Yaw", "Pitch", "Roll")}
_DISPLAY |= {f"ProjectionBounds{side}" for side in ("Top", "Bottom", "Left", "Right")}


def test_a_clip_with_every_configuration_is_cleaned_losslessly(tmp_path: Path) -> None:
    assert_clean(configured_clip(tmp_path), tmp_path, "configured.mp4", [], _DISPLAY)


@pytest.mark.parametrize("layout", ["plain", "fragmented", "configurations"])
def test_fuzzing_the_box_parser_refuses_or_cleans(layout: str, tmp_path: Path) -> None:
    """Random damage: every result is a refusal or a verified clean file, never another error.
    In a fragmented file, the fragments' boxes ('moof') are damaged as well as the movie; in
    "configurations", the picture track's sample table."""
    if layout == "plain":
        data = phone_clip(tmp_path, "mp4", codes(5))
    elif layout == "fragmented":
        data = timed_fragmented_clip(tmp_path, codes(5))
    else:
        data = configured_clip(tmp_path)
    regions = [(b.start, b.end) for b in top_boxes(data) if b.type in (b"moov", b"moof")]
    if layout == "configurations":
        regions = [(data.index(b"stsd"), data.index(b"stco"))]
    rng = random.Random(18)
    messages: list[str] = []
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            start, end = rng.choice(regions)
            pos = rng.randrange(start, end)
            damaged[pos] = rng.randrange(256)
        try:
            cleaned = scrub(bytes(damaged)).data
        except ScrubError as error:
            messages.append(error.message)
            continue
        assert inspect(cleaned).findings == ()
    assert all(message and "\n" not in message for message in messages)


def test_the_hevc_configuration_keeps_only_parameter_sets(tmp_path: Path) -> None:
    """x265 stores its settings as an SEI array in 'hvcC': the rebuilt record has VPS/SPS/PPS."""
    data = make_clip(tmp_path, "mp4-hevc")
    cleaned = scrub(data).data

    def arrays(file: bytes) -> list[int]:
        record = file.index(b"hvcC") + 4
        pos, types = record + 23, []
        for _ in range(file[record + 22]):
            types.append(file[pos] & 0x3F)
            pos += 3
            for _ in range(int.from_bytes(file[pos - 2 : pos], "big")):
                pos += 2 + int.from_bytes(file[pos : pos + 2], "big")
        return types

    assert 39 in arrays(data) or 40 in arrays(data)  # the SEI array x265 writes
    assert arrays(cleaned) == [32, 33, 34]


# --- the chat networks, end to end (`scrubbot run` against the fake Bot API) ---------------------


async def test_telegram_cleans_a_video_file_and_hints_at_a_compressed_video(
    tmp_path: Path,
) -> None:
    from tests.fake_telegram import FakeTelegram
    from tests.test_telegram import TOKEN, replies, running_bot, sent_file, texts

    value = codes(21)
    clip = phone_clip(tmp_path, "mov", value)
    workdir = tmp_path / "work"
    workdir.mkdir()
    async with FakeTelegram(TOKEN) as fake, running_bot(fake, workdir) as log_path:
        fake.add_document(
            clip, user_id=5005, file_name="IMG_0042.MOV", mime_type="video/quicktime"
        )
        fake.add_document(clip, user_id=5006, file_name="IMG_0042.MOV", language_code="de")
        fake._add_message(
            {
                "video": {
                    "file_id": "v1",
                    "file_unique_id": "v1u",
                    "width": 64,
                    "height": 64,
                    "duration": 1,
                }
            },
            {"user_id": 5007},
        )
        await fake.wait_for(
            lambda calls: (
                all(replies(fake, u, "sendDocument") and texts(fake, u) for u in (5005, 5006))
                and bool(texts(fake, 5007))
            ),
            timeout=30,
        )
        (summary,) = texts(fake, 5005)
        (german,) = texts(fake, 5006)
        (hint,) = texts(fake, 5007)
        name, cleaned = sent_file(fake, replies(fake, 5005, "sendDocument")[0])
        log = log_path.read_text()
    assert summary.startswith("This video contained the route it was recorded along")
    assert "a route of 12 positions" in summary
    assert value["make"] in summary
    assert german.startswith("Dieses Video enthielt")
    assert "eine Route aus 12 Positionen" in german
    assert "send the video as a file" in hint
    assert name is not None
    assert name.endswith(".mov")
    assert inspect(cleaned).findings == ()
    for code in (value["make"], value["identifier"], value["title"], "IMG_0042"):
        assert code.encode() not in cleaned
        assert code not in log


async def test_matrix_answers_an_m_video_with_an_m_video(tmp_path: Path) -> None:
    """A real Synapse: a video sent as `m.video` in a plain and in an encrypted room comes back
    cleaned as an `m.video` (mimetype, size, width, height)."""
    from nio import RoomEncryptedVideo, RoomMessageVideo

    from tests.synapse import Synapse
    from tests.test_matrix import Bot, Parent

    value = codes(33)
    clip = phone_clip(tmp_path, "mp4", value)
    with Synapse.start(tmp_path / "synapse") as synapse:
        bot = Bot(synapse, tmp_path / "bot")
        async with Parent.login(synapse, tmp_path) as parent, bot.running() as log_path:
            plain = await parent.room_with(bot, encrypted=False)
            secret = await parent.room_with(bot, encrypted=True)
            sent = {
                await parent.send_photo(room, clip, "m.video"): (room, answer)
                for room, answer in ((plain, RoomMessageVideo), (secret, RoomEncryptedVideo))
            }

            def videos(room: str, event: str) -> list[object]:
                found = parent.replies(room, event)
                return [e for e in found if isinstance(e, (RoomMessageVideo, RoomEncryptedVideo))]

            await parent.sync_until(
                lambda: all(videos(r, e) and parent.notices(r, e) for e, (r, _) in sent.items())
            )
            for event_id, (room, answer) in sent.items():
                (summary,) = parent.notices(room, event_id)
                assert summary.startswith("This video contained the route it was recorded along")
                (video,) = videos(room, event_id)
                assert type(video) is answer
                info = video.source["content"]["info"]  # type: ignore[attr-defined]
                assert info["mimetype"] == "video/mp4"
                assert (info["w"], info["h"]) == (64, 64)
                cleaned = await parent.download(video)
                assert inspect(cleaned).findings == ()
                assert value["identifier"].encode() not in cleaned
        log = log_path.read_text()
    for code in (value["make"], value["identifier"], value["title"]):
        assert code not in log


def test_a_long_route_is_read_and_removed_without_using_up_the_box_budget(tmp_path: Path) -> None:
    """Ten hours of positions (one every 30 s would be 1200; here 25 000 samples, more boxes
    than a whole file may have) still give the route and a clean file."""
    data = phone_clip(tmp_path, "mp4", codes(8), positions=25_000)
    result = scrub(data)
    (route,) = [f for f in result.findings if f.key == "route" and "mebx" in f.source]
    assert route.value.startswith("25000 ")
    assert inspect(result.data).findings == ()


def karma_sample(lat: float, lon: float) -> bytes:
    """A GoPro Karma-like GPMF sample: the fix in a typed structure ('?'), its fields named by
    'TYPE', their units ('UNIT') and scales ('SCAL'), after a sensor stream of other scales."""
    sensor = klv(b"SCAL", b"s", 2, struct.pack(">h", 100)) + klv(b"ACCL", b"s", 6, bytes(12))
    types = b"JlllSSSSBB"  # time, latitude, longitude, altitude, ... (ExifTool's GPSRaw)
    units = b"".join(u.ljust(3, b"\0") for u in (b"s", b"deg", b"deg", b"m", b"m", b"m", b"m/s"))
    units += b"deg" + bytes(6)
    scales = (1_000_000, 10**7, 10**7, 1000, 100, 100, 100, 100, 1, 1)
    fix = struct.pack(">Q3i4H2B", 1, round(lat * 1e7), round(lon * 1e7), 15711, 1, 2, 3, 4, 5, 6)
    raw = klv(b"TYPE", b"c", 1, types) + klv(b"UNIT", b"c", 3, units)
    raw += klv(b"SCAL", b"l", 4, struct.pack(">10i", *scales)) + klv(b"GPRI", b"?", 30, fix)
    device = klv(b"STRM", b"\0", 1, sensor) + klv(b"STRM", b"\0", 1, raw)
    return klv(b"DEVC", b"\0", 1, device)


def test_a_karma_style_typed_gps_structure_gives_the_fix() -> None:
    lat, lon = 33.125369, -117.331067
    sample = karma_sample(lat, lon)
    fix = mp4._gpmf_fix(sample, 0, len(sample), Budget("test"), 0)
    assert fix == pytest.approx((lat, lon), abs=1e-6)
    lying = sample.replace(b"deg", b"rad")  # no field in degrees: no position made up
    assert mp4._gpmf_fix(lying, 0, len(lying), Budget("test"), 0) is None
    # 60 000 one-byte units (more than a structure can have) are skipped, not listed
    bomb = klv(b"DEVC", b"\0", 1, klv(b"STRM", b"\0", 1, klv(b"UNIT", b"c", 1, bytes(60_000))))
    assert mp4._gpmf_fix(bomb + sample, 0, len(bomb + sample), Budget("test"), 0) == fix


def test_a_route_between_two_cities_names_both() -> None:
    from bot.metadata import movie

    lines = "\n".join(
        f"{i * 600} {52.52 + (48.14 - 52.52) * i / 9:+.4f}{13.40 + (11.58 - 13.40) * i / 9:+.4f}/"
        for i in range(10)
    )
    found = movie.findings("route", lines.encode(), "'meta' track ('mebx')")
    text = render(found, "en", videos=True).text
    assert "a route of 10 positions over 90 minutes, from near " in text
    assert "Berlin" in text
    assert "Munich" in text or "München" in text
    assert (
        "1 position over 1 second"
        in render(movie.findings("route", b"0 +52.52+13.40/", "x"), "en").text
    )


def test_camm_and_drone_subtitle_positions_are_told_as_routes(tmp_path: Path) -> None:
    """Google's 'camm' GPS records (types 5 and 6, among motion ones) and a drone's subtitles
    (DJI's two ways of writing a position) give a route each, and leave with their samples."""
    value = codes(17)
    lat, lon = float(value["lat"]), float(value["lon"])
    gyro = struct.pack("<HH3f", 0, 2, 0.1, 0.2, 0.3)
    fix = struct.pack("<HH3d", 0, 5, lat, lon, 40.0)
    reading = struct.pack("<HHdi3d", 0, 6, 1.7e9, 3, lat + 0.01, lon + 0.01, 41.0) + bytes(28)
    camm = [gyro + fix, value["gpmf"].encode() + gyro, gyro + reading]

    def subtitle(text: str) -> bytes:
        return struct.pack(">H", len(text)) + text.encode()

    subtitles = [
        subtitle(f"F/2.8, SS 320, ISO 100, GPS ({lon:.4f}, {lat:.4f}, 18), {value['title']}"),
        subtitle(f"[iso : 100] [latitude: {lat + 0.01:.6f}] [longtitude: {lon + 0.01:.6f}]"),
    ]
    data = make_clip(tmp_path, "mp4")  # moov last: tracks added to it move no sample
    (moov,) = [b for b in top_boxes(data) if b.type == b"moov"]
    samples = b"".join(camm + subtitles)
    tracks_len = len(timed_track(90, b"camm", camm, 0) + timed_track(91, b"tx3g", subtitles, 0))
    first = moov.start + moov.size() + tracks_len + 8
    tracks = timed_track(90, b"camm", camm, first)
    tracks += timed_track(91, b"tx3g", subtitles, first + sum(map(len, camm)), b"sbtl")
    data = data[: moov.start] + box(b"moov", data[moov.body : moov.end] + tracks)
    data += box(b"mdat", samples)
    found = inspect(data).findings
    routes = {f.source: f for f in found if f.key == "route"}
    assert len(routes) == 2, found
    for route in routes.values():  # thirty seconds a sample: the middle camm one has no fix
        assert route.value == ("2 60" if "camm" in route.source else "2 30")
        assert route.position == pytest.approx((lat, lon), abs=1e-4)
    ends = [f.position for f in found if f.key == "route_end"]
    assert ends == [pytest.approx((lat + 0.01, lon + 0.01), abs=1e-4)] * 2
    cleaned = assert_clean(data, tmp_path, "routes.mp4", [value["gpmf"], value["title"]])
    for code in (b"camm", b"tx3g", value["lat"][1:].encode()):  # (the path names camm)
        assert code not in cleaned


def test_a_route_within_one_place_names_it_once() -> None:
    from bot.metadata import movie

    lines = "\n".join(f"{i * 60} {52.5200 + i / 5000:+.4f}+013.4050/" for i in range(5))
    found = movie.findings("route", lines.encode(), "'meta' track ('mebx')")
    assert "a route of 5 positions over 4 minutes, all near " in render(found, "en").text
    assert "über 4 Minuten, alle in der Nähe von " in render(found, "de").text


def test_a_route_far_from_any_place_is_told_in_numbers() -> None:
    """A route where no place is known (at sea) still says where it went."""
    from bot.metadata import movie

    lines = "\n".join(f"{i * 60} {0.5 + i / 100:+.4f}{-30.2 + i / 100:+.4f}/" for i in range(5))
    found = movie.findings("route", lines.encode(), "'meta' track ('gpmd')")
    assert "over 4 minutes, from 0.50, -30.20 to 0.54, -30.16" in render(found, "en").text
    assert "über 4 Minuten, von 0.50, -30.20 bis 0.54, -30.16" in render(found, "de").text


# --- fragmented files ('moof') -----------------------------------------------------------------

# ffmpeg's fragmented layouts: explicit base offsets, moof-relative ones, the first fragment's
# samples in the movie, DASH (a 'sidx' per fragment), one global 'sidx', Smooth Streaming, CMAF,
# a 'moof' per track, and a fragmented QuickTime movie.
FRAGMENTED = {
    "frag": ["-movflags", "+frag_keyframe+empty_moov"],
    "frag-moof": ["-movflags", "+frag_keyframe+empty_moov+default_base_moof"],
    "frag-first-in-moov": ["-movflags", "+frag_keyframe"],
    "dash": ["-movflags", "dash"],
    "global-sidx": ["-movflags", "+frag_keyframe+empty_moov+default_base_moof+global_sidx"],
    "ismv": ["-f", "ismv"],
    "cmaf": ["-movflags", "cmaf"],
    "separate-moof": ["-movflags", "+frag_keyframe+empty_moov+separate_moof"],
    "mov": ["-movflags", "+frag_keyframe+empty_moov"],
}
# What ExifTool shows of the rebuilt fragments: structure and timing only.
_FRAGMENT_STRUCTURE = {
    "Unknown_mvex",
    "MovieFragmentSequence",
    "Unknown_tfhd",
    "Unknown_tfdt",
    "Unknown_trun",
    "Unknown_sdtp",
    "Unknown_sidx",  # a kept segment index, written anew (tests/test_mp4_sidx.py)
}


def fragmented_clip(tmp_path: Path, layout: str, value: dict[str, str]) -> bytes:
    """A one-second clip in `layout`, a keyframe (so a fragment) every three frames, with a
    planted title and comment."""
    return make_clip(
        tmp_path,
        "mov" if layout == "mov" else "mp4",
        *("-g", "3", "-metadata", f"title={value['title']}"),
        *("-metadata", f"comment={value['software']}"),
        *FRAGMENTED[layout],
    )


def assert_fragments_clean(
    original: bytes, tmp_path: Path, name: str, planted: list[str]
) -> bytes:
    """`assert_clean` for a fragmented file: the same judges, the rebuilt fragments allowed."""
    cleaned = assert_clean(original, tmp_path, name, planted, _FRAGMENT_STRUCTURE)
    assert b"moof" in cleaned
    return cleaned


@pytest.mark.parametrize("layout", list(FRAGMENTED))
def test_fragmented_clips_are_cleaned_losslessly(layout: str, tmp_path: Path) -> None:
    value = codes(100 + len(layout))
    data = fragmented_clip(tmp_path, layout, value)
    assert data.count(b"moof") >= 3
    found = inspect(data).findings
    assert any(f.kind is Kind.DESCRIPTION and f.value == value["title"] for f in found)
    planted = [value["title"], value["software"], *(["Lavf"] if b"Lavf" in data else [])]
    cleaned = assert_fragments_clean(data, tmp_path, f"{layout}.mp4", planted)
    kinds = [b.type for b in top_boxes(cleaned)]
    assert kinds[:2] == [b"ftyp", b"moov"]
    assert not {b"mfra", b"styp", b"free"} & set(kinds)
    assert (b"sidx" in kinds) == (layout in ("dash", "global-sidx"))  # kept, written anew
    assert kinds.count(b"moof") == [b.type for b in top_boxes(data)].count(b"moof")


def moov_changed(data: bytes, change: Change) -> bytes:
    """`data` with its 'moov' rewritten by `change`: fine for fragments whose offsets count from
    their own 'moof' (default-base-is-moof), which do not care where they lie."""
    (moov,) = [b for b in top_boxes(data) if b.type == b"moov"]
    return data[: moov.start] + rewrite(data, moov, change) + data[moov.end :]


def fragment_boxes(data: bytes, moof: isobmff.Box) -> list[tuple[isobmff.Box, list[isobmff.Box]]]:
    """Each 'traf' of `moof` and its children."""
    trafs = [b for b in isobmff.boxes(data, moof.body, moof.end, Budget()) if b.type == b"traf"]
    return [(t, isobmff.boxes(data, t.body, t.end, Budget())) for t in trafs]


def with_timed_fragments(data: bytes, tracks: dict[int, tuple[bytes, list[bytes]]]) -> bytes:
    """A moof-relative fragmented clip with timed metadata tracks (id: codec, one sample per
    fragment) whose samples are in the fragments: a 'trak' with empty tables and a 'trex' each,
    and in every 'moof' a 'traf' per track whose one sample is added at the end of the 'mdat'
    (the other runs' data offsets moved by the new trafs). The index 'mfra' is left out."""

    def change(d: bytes, b: isobmff.Box) -> bytes:
        if b.type == b"mvex":
            trex = b"".join(
                full(b"trex", 0, 0, struct.pack(">5I", track, 1, 0, 0, 0)) for track in tracks
            )
            return box(b"mvex", d[b.body : b.end] + trex)
        return d[b.start : b.end]

    data = moov_changed(data, change)
    (moov,) = [b for b in top_boxes(data) if b.type == b"moov"]
    traks = b"".join(timed_track(track, codec, [], 0) for track, (codec, _) in tracks.items())
    mvex_at = data.index(b"mvex", moov.start) - 4
    new_moov = box(b"moov", data[moov.body : mvex_at] + traks + data[mvex_at : moov.end])
    out = data[: moov.start] + new_moov
    top = top_boxes(data)
    moofs = [i for i, b in enumerate(top) if b.type == b"moof"]
    for n, index in enumerate(moofs):
        moof, mdat = top[index], top[index + 1]
        assert mdat.type == b"mdat"
        old_body = data[mdat.body : mdat.end]
        samples = [sample[n % len(sample)] for _, sample in tracks.values()]
        grow = len(tracks) * len(timed_traf(0, 0, 0, b""))
        moof_body = bytearray(data[moof.body : moof.end])
        for _, children in fragment_boxes(data, moof):
            for child in children:
                if child.type == b"trun":  # count, then the data offset
                    at = child.body + 8 - moof.body
                    (offset,) = struct.unpack_from(">i", moof_body, at)
                    struct.pack_into(">i", moof_body, at, offset + grow)
        at = moof.size() + grow + 8 + len(old_body)  # after the new moof and the old samples
        added = []
        for track, sample in zip(tracks, samples, strict=True):
            added.append(timed_traf(track, n * 1000, at, sample))
            at += len(sample)
        out += box(b"moof", bytes(moof_body) + b"".join(added))
        out += box(b"mdat", old_body + b"".join(samples))
    return out


def timed_traf(track: int, time: int, offset: int, sample: bytes) -> bytes:
    """A moof-relative 'traf' of one sample at `offset` from its 'moof', decode time `time`."""
    tfhd = full(b"tfhd", 0, 0x20000, struct.pack(">I", track))
    tfdt = full(b"tfdt", 1, 0, struct.pack(">Q", time))
    trun = full(b"trun", 0, 0x301, struct.pack(">IiII", 1, offset, 1000, len(sample)))
    return box(b"traf", tfhd + tfdt + trun)


def timed_fragmented_clip(tmp_path: Path, value: dict[str, str]) -> bytes:
    """A moof-relative fragmented clip with an Apple 'mebx' location track and a GoPro-like GPMF
    track in its fragments (random places and codes), an XMP 'uuid' and trailing data."""
    data = fragmented_clip(tmp_path, "frag-moof", value)
    data = data[: data.index(b"mfra") - 4]
    route = [
        box(b"\0\0\0\1", f"{float(value['lat']) + i / 1000:+08.4f}{value['lon']}/".encode())
        for i in range(4)
    ]
    gpmf = [gpmf_sample(value, second) for second in range(4)]
    data = with_timed_fragments(data, {90: (b"mebx", route), 91: (b"gpmd", gpmf)})
    xmp = f"<x:xmpmeta><rdf:Description>{value['xmp']}</rdf:Description></x:xmpmeta>"
    return data + box(b"uuid", mp4.XMP_UUID + xmp.encode()) + value["trailer"].encode()


def test_timed_metadata_in_fragments_leaves_with_its_samples(tmp_path: Path) -> None:
    value = codes(41)
    data = timed_fragmented_clip(tmp_path, value)
    found = inspect(data).findings
    tracks = {f.value for f in found if f.kind is Kind.HIDDEN_MEDIA}
    assert {"mebx", "gpmd"} <= tracks, found
    routes = {f.source: f for f in found if f.key == "route"}
    assert len(routes) == 2  # read from the samples in the fragments, as from a movie's
    for route in routes.values():
        assert route.value == "4 3"  # four positions, one a second
        assert route.position == pytest.approx(
            (float(value["lat"]), float(value["lon"])), abs=1e-3
        )
    assert "a route of 4 positions over 3 seconds" in render(found, "en").text
    assert "eine Route aus 4 Positionen über 3 Sekunden" in render(found, "de").text
    assert value["gpmf"].encode() in data
    planted = [value["gpmf"], value["xmp"], value["trailer"], value["title"], value["lat"][1:]]
    cleaned = assert_fragments_clean(data, tmp_path, "timed.mp4", [*planted, "mebx", "gpmd"])
    for moof in (b for b in top_boxes(cleaned) if b.type == b"moof"):
        assert len(fragment_boxes(cleaned, moof)) == 2  # picture and sound: no timed trafs
    mdats = [b for b in top_boxes(cleaned) if b.type == b"mdat"]
    originals = [b for b in top_boxes(data) if b.type == b"mdat"]
    assert len(mdats) == len(originals)
    for new, old in zip(mdats, originals, strict=True):  # exactly the timed samples left
        assert old.size() - new.size() == len(route_sample(value)) + len(gpmf_sample(value, 0))


def route_sample(value: dict[str, str]) -> bytes:
    return box(b"\0\0\0\1", f"{float(value['lat']):+08.4f}{value['lon']}/".encode())


def test_fragment_timing_and_rotation_stay(tmp_path: Path) -> None:
    """'mfhd' sequence numbers and 'tfdt' decode times are timing: untouched; a quarter turn
    of the picture stays."""
    data = fragmented_clip(tmp_path, "frag-moof", codes(43))
    turn = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 64 << 16, 0, 0x40000000)

    def change(d: bytes, b: isobmff.Box) -> bytes:
        if b.type == b"tkhd" and d[b.end - 8 : b.end] != bytes(8):
            return d[b.start : b.end - 44] + turn + d[b.end - 8 : b.end]
        if b.type == b"trak":
            return rewrite(d, b, change)
        return d[b.start : b.end]

    data = moov_changed(data, change)
    source = tmp_path / "turned.mp4"
    source.write_bytes(data)
    assert "90" in str(probe(source))
    cleaned = assert_fragments_clean(data, tmp_path, "turned.mp4", [])

    def timing(file: bytes) -> list[bytes]:
        found = []
        for moof in (b for b in top_boxes(file) if b.type == b"moof"):
            found.append(file[moof.body + 12 : moof.body + 16])  # the sequence number
            for _, children in fragment_boxes(file, moof):
                found += [file[c.body : c.end] for c in children if c.type == b"tfdt"]
        return found

    assert timing(cleaned) == timing(data)
    assert len(timing(data)) >= 9


def first_trun(data: bytes) -> isobmff.Box:
    moof = next(b for b in top_boxes(data) if b.type == b"moof")
    _, children = fragment_boxes(data, moof)[0]
    return next(c for c in children if c.type == b"trun")


def test_lying_fragments_are_refused_in_one_line(tmp_path: Path) -> None:
    data = fragmented_clip(tmp_path, "frag-moof", codes(45))
    moof = next(b for b in top_boxes(data) if b.type == b"moof")
    _, (_, sound) = fragment_boxes(data, moof)
    tfhd = next(c for c in sound if c.type == b"tfhd")
    trun = first_trun(data)
    lies: dict[str, bytes] = {}
    unknown = bytearray(data)
    unknown[tfhd.body + 4 : tfhd.body + 8] = struct.pack(">I", 77)
    lies["a fragment of a track that is not there"] = bytes(unknown)
    twice = bytearray(data)
    twice[tfhd.body + 4 : tfhd.body + 8] = struct.pack(">I", 1)
    lies["a fragment repeats a track"] = bytes(twice)
    big = bytearray(data)
    big[trun.body + 16 : trun.body + 20] = struct.pack(">I", 10**6)  # first sample's size
    lies["a fragment points outside"] = bytes(big)
    away = bytearray(data)
    away[trun.body + 8 : trun.body + 12] = struct.pack(">i", -(10**6))
    lies["outside"] = bytes(away)
    count = bytearray(data)
    count[trun.body + 4 : trun.body + 8] = struct.pack(">I", 10**7)
    lies["longer than its box"] = bytes(count)
    for why, lying in lies.items():
        with pytest.raises(DamagedImage) as refused:
            scrub(lying)
        assert why in refused.value.message
        assert "\n" not in refused.value.message
    no_mvex = data.replace(b"mvex", b"free", 1)
    with pytest.raises(ScrubError, match="movie extends"):
        scrub(no_mvex)


def test_a_removed_track_whose_fragment_lies_in_a_kept_run_is_refused(tmp_path: Path) -> None:
    data = timed_fragmented_clip(tmp_path, codes(46))
    moof = next(b for b in top_boxes(data) if b.type == b"moof")
    picture, *_, timed = fragment_boxes(data, moof)
    kept = next(c for c in picture[1] if c.type == b"trun")
    removed = next(c for c in timed[1] if c.type == b"trun")
    lying = bytearray(data)
    lying[removed.body + 8 : removed.body + 12] = data[kept.body + 8 : kept.body + 12]
    with pytest.raises(DamagedImage, match="removed track's samples lie in a kept"):
        scrub(bytes(lying))
    # a removed track whose own sample table points into a kept fragment run
    (offset,) = struct.unpack_from(">i", data, kept.body + 8)
    trex = full(b"trex", 0, 0, struct.pack(">5I", 92, 1, 0, 0, 0))
    grow = len(timed_track(92, b"gpmd", [b"F"], 0)) + len(trex)  # what the movie grows by
    pointing = timed_track(92, b"gpmd", [b"F"], moof.start + grow + offset)

    def change(d: bytes, b: isobmff.Box) -> bytes:
        if b.type == b"mvex":  # the track before it, its defaults in it
            return pointing + box(b"mvex", d[b.body : b.end] + trex)
        return d[b.start : b.end]

    moved = moov_changed(data, change)  # the fragments count from their 'moof': unmoved
    assert moved[moof.start + grow :][:64] == data[moof.start :][:64]
    with pytest.raises(DamagedImage, match="removed track's samples lie in a kept"):
        scrub(moved)


@pytest.mark.parametrize(("kind", "message"), [(b"senc", "encrypted"), (b"saiz", "auxiliary")])
def test_fragments_with_encryption_or_auxiliary_data_are_refused(
    kind: bytes, message: str, tmp_path: Path
) -> None:
    data = fragmented_clip(tmp_path, "frag-moof", codes(47))
    trun = first_trun(data)
    # the first run's 'trun' becomes the refused box, a second one of the same size follows
    changed = data[: trun.start + 4] + kind + data[trun.start + 8 :]
    with pytest.raises(UnsupportedFormat, match=message):
        scrub(changed)


@pytest.mark.parametrize("layout", ["frag", "frag-moof", "frag-first-in-moov"])
def test_truncated_fragmented_files_are_refused_in_one_line(layout: str, tmp_path: Path) -> None:
    data = fragmented_clip(tmp_path, layout, codes(49))
    moofs = [b for b in top_boxes(data) if b.type in (b"moof", b"mdat")]
    cuts = {b.start + 20 for b in moofs} | {b.end - 1 for b in moofs} | {len(data) // 2}
    cuts.discard(len(data) - 1)
    for cut in sorted(cuts):
        if data[cut - 4 : cut] == b"mfra":
            continue
        with pytest.raises(ScrubError) as refused:
            scrub(data[:cut])
        assert "\n" not in refused.value.message
        assert refused.value.message


def test_sample_counts_that_cost_four_bytes_cost_no_memory(tmp_path: Path) -> None:
    """A count in 'stsz' or 'stts' is four bytes of the file: a tiny file claiming millions of
    samples is refused (or its timed track read) before anything is made of the count."""
    import tracemalloc

    data = make_clip(tmp_path, "mp4")
    stsz = data.index(b"stsz")
    many = data[: stsz + 8] + struct.pack(">II", 1, 400_000_000) + data[stsz + 16 :]
    fewer = data[: stsz + 8] + struct.pack(">II", 1, 19_000_000) + data[stsz + 16 :]
    *_, moov = top_boxes(data)
    trak = timed_track(90, b"mebx", [box(b"\0\0\0\1", b"+10.0+20.0/")], 0)
    stts = trak.index(b"stts")
    trak = trak[: stts + 12] + struct.pack(">II", 19_000_000, 1) + trak[stts + 20 :]
    timed = data[: moov.start] + box(b"moov", data[moov.body : moov.end] + trak)
    # a fragment of a timed track: one run of 19 million samples, no fields, of no size
    fragmented = bytearray(timed_fragmented_clip(tmp_path, codes(51)))
    moof = next(b for b in top_boxes(bytes(fragmented)) if b.type == b"moof")
    *_, (_, children) = fragment_boxes(bytes(fragmented), moof)
    trun = next(c for c in children if c.type == b"trun")
    fragmented[trun.body : trun.body + 8] = struct.pack(">II", 0x1, 19_000_000)
    tracemalloc.start()
    try:
        for lying in (many, fewer):
            with pytest.raises(DamagedImage):
                scrub(lying)
        assert inspect(timed).findings
        assert inspect(bytes(fragmented)).findings
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024, peak


def with_moof_extra(data: bytes, extra: bytes) -> bytes:
    """A moof-relative fragmented clip with `extra` (boxes) at the end of every 'moof', the
    runs' data offsets moved past it."""
    out, pos = b"", 0
    for moof in (b for b in top_boxes(data) if b.type == b"moof"):
        body = bytearray(data[moof.body : moof.end])
        for _, children in fragment_boxes(data, moof):
            for child in (c for c in children if c.type == b"trun"):
                at = child.body + 8 - moof.body
                (offset,) = struct.unpack_from(">i", body, at)
                struct.pack_into(">i", body, at, offset + len(extra))
        out += data[pos : moof.start] + box(b"moof", bytes(body) + extra)
        pos = moof.end
    return out + data[pos:]


def test_other_boxes_in_fragments_go_and_are_found_once(tmp_path: Path) -> None:
    value = codes(53)
    data = fragmented_clip(tmp_path, "frag-moof", value)
    data = data[: data.index(b"mfra") - 4]
    note = box(b"uuid", bytes(range(16)) + value["xmp"].encode())
    data = with_moof_extra(data, note + box(b"udta", box(b"\xa9cmt", qt_text(value["make"]))))
    found = [f.value for f in inspect(data).findings]
    assert found.count("MP4 'uuid' box in a fragment") == 1
    assert found.count(value["make"]) == 1  # what the first fragment's 'udta' says
    assert_fragments_clean(data, tmp_path, "extra.mp4", [value["xmp"], value["make"]])


def test_a_producer_reference_time_is_told_as_the_time_and_goes(tmp_path: Path) -> None:
    """'prft' (before each fragment of a live recording) holds the wall-clock time its frame
    was captured: told once, as the time it was taken, and dropped with the others."""
    value = codes(55)
    data = fragmented_clip(tmp_path, "frag-moof", value)
    data = data[: data.index(b"mfra") - 4]
    stamp = random.Random(55).randrange(1_500_000_000, 1_900_000_000)
    ntp = struct.pack(">IQQ", 1, (stamp + 2208988800) << 32, 0)
    prft = full(b"prft", 1, 0, ntp)
    moofs = [b.start for b in top_boxes(data) if b.type == b"moof"]
    data = data[: moofs[0]] + prft + data[moofs[0] : moofs[1]] + prft + data[moofs[1] :]
    times = [f for f in inspect(data).findings if f.kind is Kind.TIME]
    when = datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y:%m:%d %H:%M:%S")
    assert [(f.key, f.value) for f in times] == [("taken", when)]
    cleaned = assert_fragments_clean(data, tmp_path, "prft.mp4", [])
    assert b"prft" not in cleaned
