"""JPEG: every kept segment is written again from its parsed fields; the entropy-coded picture
data is copied (one copy, from memoryview slices), never decoded.

What a JPEG can carry, and what we do with it:
- APP0 JFIF: rebuilt at its specified 16 bytes (version written as 1.02, units and density),
  without its thumbnail; JFXX thumbnails and other APP0 dropped.
- APP1 EXIF (GPS, times, camera, serials, MakerNotes, thumbnail), XMP and Extended XMP (names, face
  regions, edit history, document IDs, Google depth/motion data): dropped.
- APP2 ICC_PROFILE: the profile (chunks put together in sequence order) is rebuilt with only
  its colour data (`bot.formats.icc`) and written back in canonical chunks where the first one
  was; chunks holding no valid profile are dropped. APP2 MPF and its secondary images (stereo
  pair, gain map, depth map): dropped.
- APP11 JUMBF/C2PA, APP13 Photoshop/IPTC (Facebook's FBMD code), other APPn, COM: dropped.
- APP14 Adobe: rebuilt at its specified 14 bytes; only the colour transform is kept (version and
  flags are written as 100, 0, 0).
- Frame (SOFn) and scan (SOS) headers, DRI and DNL: rebuilt from their fields at their specified
  lengths, so nothing can ride after the fields a decoder reads; table selectors a scan does
  not decode with are written as 0, a sequential scan's spectral fields as 0, 63, 0, 0.
- DQT, DHT and DAC: only the tables the frame and its scans use, each definition judged where it
  stands (a table redefined between scans is kept only where a later scan uses it; quantisation
  tables as libjpeg latches them, at the first scan of each component). DNL only when the frame
  leaves its height to it.
- Fill bytes (0xFF) before markers, restart and TEM markers between segments, reserved markers
  (JPGn, RES) and anything after EOI (motion-photo MP4, Samsung SEFT, MPF images, appended
  archives): dropped. Hierarchical (differential) and JPEG-LS files are refused.
Orientation survives as a minimal EXIF block holding only the Orientation tag: EXIF's, or when
EXIF has none, the XMP `tiff:Orientation`.

Tolerance: a dropped metadata segment (APP1, APP3-APP13, APP15, COM) whose length field is up to
SEGMENT_LENGTH_SLACK bytes short is read as libjpeg reads it: the bytes between its declared end
and the next marker (0xFF then neither 0x00 nor 0xFF) belong to it and are dropped with it. Any
other gap between segments refuses the file.

Inside the entropy-coded data, restart markers (RSTn) lose the fill bytes before them, and
whole restart intervals after the last one the scan's MCUs fill are cut. What stays out of reach
without decoding it (bytes after the last MCU of a scan or of a restart interval): see
THREAT_MODEL.md.
"""

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from bot.errors import DamagedImage, UnsupportedFormat
from bot.formats import icc, jpeg_scan
from bot.formats.base import Block, BlockKind, Format, Parsed, need
from bot.metadata import exif, xmp
from bot.metadata.ifd import Ifds

SOI, EOI, SOS, COM, DQT, DHT, DAC, DRI, DNL = 0xD8, 0xD9, 0xDA, 0xFE, 0xDB, 0xC4, 0xCC, 0xDD, 0xDC
APP0, APP1, APP2, APP11, APP13, APP14, APP15 = 0xE0, 0xE1, 0xE2, 0xEB, 0xED, 0xEE, 0xEF
SOF_BASELINE, SOF_PROGRESSIVE = 0xC0, 0xC2
DATA = -1  # a layout entry for the entropy-coded data after a scan header
RESTART = -2  # a layout entry for a restart marker (RSTn) inside that data, after DATA
MAX_RESTARTS = (
    1024  # RSTn listed per scan (each costs ~3 us a scrub); a scan with more is copied whole
)
_SEQUENTIAL = frozenset({0xC0, 0xC1, 0xC9})
_PROGRESSIVE = frozenset({0xC2, 0xCA})
_LOSSLESS = frozenset({0xC3, 0xCB})
_ARITHMETIC = frozenset({0xC9, 0xCA, 0xCB})
_SOF_MARKERS = _SEQUENTIAL | _PROGRESSIVE | _LOSSLESS
_HIERARCHICAL = frozenset({0xC5, 0xC6, 0xC7, 0xCD, 0xCE, 0xCF, 0xDE, 0xDF})  # + DHP, EXP
_JPEG_LS = frozenset({0xF7, 0xF8})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# Segments we drop whole, so a length a few bytes short cannot make us keep a wrong byte.
_SLACK_ALLOWED = frozenset({APP1, *range(0xE3, 0xEE), APP15, COM})
SEGMENT_LENGTH_SLACK = 256
_NEXT_MARKER = jpeg_scan.NEXT_MARKER  # 0xFF and anything but stuffing (00), RSTn or fill
_NEXT_MARKER_OR_RESTART = re.compile(rb"\xff[^\x00\xff]")

_EXIF_IDS = (b"Exif\0\0", b"Exif\0\xff")
_XMP_ID = b"http://ns.adobe.com/xap/1.0/\0"
_XMP_EXT_ID = b"http://ns.adobe.com/xmp/extension/\0"
_ICC_ID = b"ICC_PROFILE\0"
_ICC_CHUNK = 65533 - len(_ICC_ID) - 2  # profile bytes per APP2 segment
_ICC_NAME = "ICC colour profile"
_MPF_ID = b"MPF\0"
_PHOTOSHOP_ID = b"Photoshop 3.0\0"
_JFIF_ID = b"JFIF\0"
_ADOBE_ID = b"Adobe"
_ADOBE_VERSION = 100
_MAX_EXTENDED_XMP = 16 * 1024 * 1024

_MP_TYPES = {
    0x010001: "large thumbnail",
    0x010002: "large thumbnail",
    0x020001: "panorama frame",
    0x020002: "second view (3D)",
    0x020003: "other angle",
    0x030000: "picture",
}

Layout = list[tuple[int, int, int]]
# What parse read of one scan's data (see reparse): its bytes, whether restart intervals were
# set, and where its restart markers are (offsets from the data's start).
_Scanned = tuple[memoryview, bool, tuple[int, ...]]


def _segments(data: bytes, scanned: list[_Scanned] | None = None) -> Layout:
    """(marker, payload start, payload end) for each segment up to EOI, then (EOI, end, end).

    After each SOS comes (DATA, start, end): its entropy-coded data, found with one regex scan so
    this stays fast on large photos, without the fill bytes before the next marker; when a
    restart interval is set, (RESTART, at, at + 2) for each RSTn inside it follows. Markers
    between progressive scans are listed like any other.
    """
    if not data.startswith(b"\xff\xd8"):
        raise DamagedImage
    out: Layout = []
    pos, size = 2, len(data)
    restarts = False
    while True:
        while pos + 1 < size and data[pos] == 0xFF and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes before a marker
        need(data, pos + 2, "structure")
        if data[pos] != 0xFF:
            pos = _after_short_segment(data, pos, out)
        marker = data[pos + 1]
        if marker == EOI:
            out.append((EOI, pos + 2, pos + 2))
            return out
        if marker in _STANDALONE or marker == SOI:
            pos += 2
            continue
        need(data, pos + 4, "structure")
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if length < 2:
            raise DamagedImage("The file has a broken JPEG segment.")
        end = pos + 2 + length
        need(data, end, "segment")
        out.append((marker, pos + 4, end))
        if marker == DRI and length >= 4:
            restarts = data[pos + 4] != 0 or data[pos + 5] != 0
        pos = end
        if marker == SOS:
            known = _known(data, pos, restarts, scanned.pop(0)) if scanned else None
            stop, found, marks = _scan_data(data, pos, restarts, known)
            out.append((DATA, pos, stop))
            out.extend((RESTART, at, at + 2) for at in marks)
            pos = found


def _known(
    data: bytes, pos: int, restarts: bool, scan: _Scanned
) -> tuple[int, tuple[int, ...]] | None:
    """(length, restart offsets) of the scan data at `pos` when it is `scan`'s bytes exactly
    and read with the same restart setting; else None (it is scanned)."""
    view, scan_restarts, marks = scan
    if scan_restarts != restarts or not data.startswith(view, pos):
        return None
    return len(view), marks


def _scan_data(
    data: bytes, start: int, restarts: bool, known: tuple[int, tuple[int, ...]] | None = None
) -> tuple[int, int, list[int]]:
    """Where a scan's data ends (fill bytes before the next marker left out), where that
    marker is, and where each restart marker inside it is (only when restarts are set).
    `known` is (length, restart offsets) of a start of the data already proven (see reparse);
    its last byte is no 0xFF, so no marker can begin inside it and the search resumes after."""
    marks: list[int] = []
    found, resume = None, start
    if known is not None:
        resume = start + known[0]
        marks = [start + offset for offset in known[1]] if restarts else []
    if restarts:
        for match in _NEXT_MARKER_OR_RESTART.finditer(data, resume):
            if not 0xD0 <= data[match.start() + 1] <= 0xD7:
                found = match.start()
                break
            marks.append(match.start())
            resume = match.start() + 2
            if len(marks) > MAX_RESTARTS:
                marks = []
                break
    if found is None:
        found = jpeg_scan.next_marker(data, resume)
        if found < 0:
            raise DamagedImage("The picture data ends before the end-of-image marker.")
    return _unfilled(data, start, found), found, marks


def _unfilled(data: bytes, start: int, stop: int) -> int:
    """`stop` without the fill bytes before it (a 0xFF of picture data is always stuffed)."""
    while stop > start and data[stop - 1] == 0xFF:
        stop -= 1
    return stop


def _after_short_segment(data: bytes, pos: int, out: Layout) -> int:
    """Where the next marker starts when the segment before ends a little after its length
    says (see the module docstring); that segment is extended to it."""
    found = _NEXT_MARKER.search(data, pos, pos + SEGMENT_LENGTH_SLACK + 2)
    if not out or out[-1][0] not in _SLACK_ALLOWED or found is None:
        raise DamagedImage("The file has a broken JPEG structure.")
    marker, start, _ = out[-1]
    out[-1] = (marker, start, found.start())
    return found.start()


def parse(data: bytes) -> Parsed:
    return _parsed(data, _segments(data))


def reparse(data: bytes, source: bytes, parsed: Parsed) -> Parsed:
    """`parse(data)` for our own output `data` = strip(source, parsed), with the same result.

    A scan's data that is byte for byte the data of the same scan in `source` is not scanned
    again: `parse` found no marker in those bytes but the restart markers it listed, and equal
    bytes hold the same markers, so comparing them proves what scanning would (at memory speed,
    where the marker regex runs at about 3 GB/s). Everything else is read as `parse` reads it.
    """
    return _parsed(data, _segments(data, _scanned(source, parsed.layout)))


def _scanned(source: bytes, layout: tuple[tuple[int, int, int], ...]) -> list[_Scanned]:
    view = memoryview(source)
    scans: list[_Scanned] = []
    restarts = False
    for index, (marker, start, end) in enumerate(layout):
        if marker == DRI and end - start >= 2:
            restarts = source[start] != 0 or source[start + 1] != 0
        elif marker == DATA:
            marks = []
            for following, at, _ in layout[index + 1 :]:
                if following != RESTART:
                    break
                marks.append(at - start)
            scans.append((view[start:end], restarts, tuple(marks)))
    return scans


def _parsed(data: bytes, segments: Layout) -> Parsed:
    blocks: list[Block] = []
    width = height = 0
    frames = 0
    icc_chunks: list[bytes] = []
    photoshop: list[bytes] = []
    extended_xmp: dict[bytes, bytearray] = {}
    for marker, start, end in segments:
        if marker in (DATA, RESTART):
            continue
        payload = data[start:end]
        if marker in _SOF_MARKERS:
            frames += 1
            need(payload, 5, "frame header")
            height, width = struct.unpack_from(">HH", payload, 1)
        elif marker == DNL and height == 0 and len(payload) >= 2:
            (height,) = struct.unpack_from(">H", payload)
        elif marker in _HIERARCHICAL:
            raise UnsupportedFormat("A hierarchical JPEG")
        elif marker in _JPEG_LS:
            raise UnsupportedFormat("A JPEG-LS image")
        elif marker == APP0:
            blocks.extend(_app0_blocks(payload))
        elif marker == APP1:
            blocks.append(_app1_block(payload, extended_xmp))
        elif marker == APP2 and payload.startswith(_ICC_ID):
            icc_chunks.append(payload[len(_ICC_ID) :])
        elif marker == APP2 and payload.startswith(_MPF_ID):
            blocks.extend(_mpf_blocks(data, start + len(_MPF_ID), payload[len(_MPF_ID) :]))
        elif marker == APP11 and payload.startswith(b"JP"):
            kind = BlockKind.C2PA if b"c2pa" in payload else BlockKind.OTHER
            blocks.append(Block(kind, "APP11 JUMBF segment", payload))
        elif marker == APP13 and payload.startswith(_PHOTOSHOP_ID):
            photoshop.append(payload[len(_PHOTOSHOP_ID) :])
        elif marker == APP14 and payload.startswith(_ADOBE_ID):
            pass  # colour transform flag: part of the picture
        elif APP0 <= marker <= APP15:
            blocks.append(Block(BlockKind.OTHER, _app_name(marker, payload), payload))
        elif marker == COM:
            blocks.append(Block(BlockKind.COMMENT, "JPEG comment", payload))
    if frames > 1:
        raise DamagedImage("The file has more than one picture frame.")
    if width == 0 or height == 0:
        raise DamagedImage("The file has no picture dimensions.")
    if not any(marker == DATA for marker, _, _ in segments):
        raise DamagedImage("The file has no picture data.")
    if icc_chunks:
        blocks.append(Block(BlockKind.ICC, _ICC_NAME, _icc_profile(icc_chunks)))
    if photoshop:
        blocks.append(Block(BlockKind.PHOTOSHOP, "Photoshop/IPTC segment", b"".join(photoshop)))
    blocks.extend(
        Block(BlockKind.XMP, "extended XMP segments", bytes(chunks))
        for chunks in extended_xmp.values()
    )
    blocks.extend(_trailer_blocks(data, segments[-1][2], blocks))
    return Parsed(width, height, tuple(blocks), layout=tuple(segments))


def _icc_profile(chunks: list[bytes]) -> bytes:
    """The profile from its APP2 chunks (sequence number, count, bytes), in sequence order."""
    numbers = [chunk[0] for chunk in chunks if len(chunk) >= 2]
    if sorted(numbers) == list(range(1, len(chunks) + 1)):
        chunks = sorted(chunks, key=lambda chunk: chunk[0])
    return b"".join(chunk[2:] for chunk in chunks)


def _icc_segments(parsed: Parsed) -> list[bytes]:
    """The rebuilt profile in canonical APP2 chunks; none when it is best dropped."""
    found = next((b.data for b in parsed.blocks if b.kind is BlockKind.ICC), None)
    profile = icc.clean(found) if found else None
    if not profile:
        return []
    pieces = [profile[i : i + _ICC_CHUNK] for i in range(0, len(profile), _ICC_CHUNK)]
    if len(pieces) > 255:
        raise DamagedImage("The picture's colour profile is too large.")
    return [
        _segment(APP2, _ICC_ID + bytes((n, len(pieces))) + piece)
        for n, piece in enumerate(pieces, 1)
    ]


def _app_name(marker: int, payload: bytes) -> str:
    ident = payload[:16].split(b"\0", 1)[0]
    label = "".join(chr(c) if 32 <= c < 127 else "?" for c in ident[:16])
    return f"APP{marker - APP0} segment ({label})" if label else f"APP{marker - APP0} segment"


def _app0_blocks(payload: bytes) -> list[Block]:
    if payload.startswith(_JFIF_ID) and len(payload) >= 14:
        if payload[12] and payload[13]:
            return [Block(BlockKind.THUMBNAIL, "JFIF thumbnail", b"")]
        if len(payload) > 14:
            return [Block(BlockKind.OTHER, "data after the JFIF header", payload[14:])]
        return []
    if payload.startswith(b"JFXX\0"):
        return [Block(BlockKind.THUMBNAIL, "JFXX thumbnail", payload[6:])]
    return [Block(BlockKind.OTHER, _app_name(APP0, payload), payload)]


def _app1_block(payload: bytes, extended_xmp: dict[bytes, bytearray]) -> Block:
    if payload[:6] in _EXIF_IDS:
        return Block(BlockKind.EXIF, "EXIF segment", payload[6:])
    if payload.startswith(_XMP_ID):
        return Block(BlockKind.XMP, "XMP segment", payload[len(_XMP_ID) :])
    if payload.startswith(_XMP_EXT_ID) and len(payload) >= len(_XMP_EXT_ID) + 40:
        head = len(_XMP_EXT_ID)
        guid = payload[head : head + 32]
        (total, offset) = struct.unpack_from(">II", payload, head + 32)
        chunk = payload[head + 40 :]
        whole = extended_xmp.setdefault(guid, bytearray())
        if total <= _MAX_EXTENDED_XMP and offset + len(chunk) <= total:
            whole.extend(b"\0" * max(0, offset + len(chunk) - len(whole)))
            whole[offset : offset + len(chunk)] = chunk
        return Block(BlockKind.OTHER, "extended XMP segment", b"")
    return Block(BlockKind.OTHER, _app_name(APP1, payload), payload)


def _mpf_blocks(data: bytes, base: int, mpf: bytes) -> list[Block]:
    """One IMAGE block per secondary MPF picture; offsets count from the MPF TIFF header."""
    try:
        ifds = Ifds(mpf, follow_chain=False)
        entry = ifds.find("IFD0", 0xB002)
        raw = ifds.raw(entry) if entry else b""
    except (ValueError, IndexError, struct.error):
        return [Block(BlockKind.IMAGE, "MPF segment (unreadable)", b"")]
    blocks = []
    for i in range(16, len(raw) - 15, 16):  # the first entry is the primary picture itself
        attribute, size, offset = struct.unpack_from(ifds.order + "III", raw, i)
        label = _MP_TYPES.get(attribute & 0xFFFFFF, "picture")
        start = base + offset
        picture = data[start : start + size] if offset and start + size <= len(data) else b""
        blocks.append(Block(BlockKind.IMAGE, f"MPF {label}", picture))
    return blocks or [Block(BlockKind.OTHER, "MPF segment", b"")]


def _trailer_blocks(data: bytes, end: int, blocks: list[Block]) -> list[Block]:
    trailer = data[end:]
    if not trailer.strip(b"\0"):
        return []
    video = trailer.find(b"ftyp")
    if video >= 4:
        return [Block(BlockKind.MEDIA, "video after the picture", trailer[video - 4 :])]
    if trailer.endswith(b"SEFT"):
        return [Block(BlockKind.MEDIA, "Samsung data after the picture", trailer)]
    if trailer.startswith(b"\xff\xd8") and any(b.name.startswith("MPF") for b in blocks):
        return []  # the MPF blocks already describe these pictures
    if trailer.startswith(b"\xff\xd8"):
        return [Block(BlockKind.IMAGE, "second picture after the first", trailer)]
    return [Block(BlockKind.OTHER, "data after the end of the picture", trailer)]


# -- the canonical writer ----------------------------------------------------------------------


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


@dataclass(frozen=True)
class _Frame:
    marker: int
    fields: bytes  # P, Y, X, Nf and three bytes per component, exactly as specified
    quant: dict[int, int]  # component id -> quantisation table slot
    sampling: dict[int, tuple[int, int]]  # component id -> horizontal, vertical factor

    def mcus(self, components: list[int]) -> int:
        """How many MCUs a scan of `components` holds (libjpeg's arithmetic); 0 if unknown."""
        height, width = (int(n) for n in struct.unpack_from(">HH", self.fields, 1))
        if self.marker in _LOSSLESS or not height or not width:
            return 0
        h_max = max(h for h, _ in self.sampling.values())
        v_max = max(v for _, v in self.sampling.values())
        if len(components) == 1:  # one block an MCU
            h, v = self.sampling[components[0]]
            return -(-width * h // (h_max * 8)) * -(-height * v // (v_max * 8))
        return -(-width // (h_max * 8)) * -(-height // (v_max * 8))


def _frame(marker: int, payload: bytes) -> _Frame:
    need(payload, 6, "frame header")
    count = payload[5]
    size = 6 + 3 * count
    need(payload, size, "frame header")
    quant, sampling = {}, {}
    for i in range(6, size, 3):
        h, v = payload[i + 1] >> 4, payload[i + 1] & 15
        if payload[i + 2] > 3 or payload[i] in quant or not (1 <= h <= 4 and 1 <= v <= 4):
            raise DamagedImage("The JPEG frame header is broken.")
        quant[payload[i]] = payload[i + 2]
        sampling[payload[i]] = (h, v)
    if not quant:
        raise DamagedImage("The JPEG frame header is broken.")
    return _Frame(marker, bytes(payload[:size]), quant, sampling)


def _scan(payload: bytes, frame: _Frame) -> tuple[bytes, list[tuple[int, int]]]:
    """The scan header's fields as written back, and (class, slot) of every entropy table the
    scan decodes with: class 0 for DC, 1 for AC (Huffman tables, or arithmetic conditioning).

    A table selector the scan does not decode with is written as 0, and a sequential scan's
    spectral selection and approximation as 0, 63, 0, 0 (libjpeg reads any other values as
    those, with a warning: some baseline files have zeroes there)."""
    need(payload, 1, "scan header")
    count = payload[0]
    size = 4 + 2 * count
    need(payload, size, "scan header")
    if not 1 <= count <= 4:
        raise DamagedImage("The JPEG scan header is broken.")
    tail = payload[size - 3 : size]
    ss, ah = tail[0], tail[2] >> 4
    if frame.marker in _LOSSLESS:
        dc, ac = True, False
    elif frame.marker in _PROGRESSIVE:
        dc, ac = ss == 0 and ah == 0, ss > 0
    else:
        dc, ac, tail = True, True, b"\0\x3f\0"
    uses = []
    fields = bytearray(payload[: size - 3])
    for i in range(1, size - 3, 2):
        if payload[i] not in frame.quant or payload[i + 1] >> 4 > 3 or payload[i + 1] & 15 > 3:
            raise DamagedImage("The JPEG scan header is broken.")
        dc_slot, ac_slot = (payload[i + 1] >> 4) * dc, (payload[i + 1] & 15) * ac
        fields[i + 1] = dc_slot << 4 | ac_slot
        if dc:
            uses.append((0, dc_slot))
        if ac:
            uses.append((1, ac_slot))
    return bytes(fields + tail), uses


def _tables(marker: int, payload: bytes) -> Iterator[tuple[tuple[int, int, int], bytes]]:
    """Each table a DQT, DHT or DAC segment defines: ((marker, class, slot), its bytes)."""
    pos, size = 0, len(payload)
    if size == 0:
        raise DamagedImage("A JPEG table segment is empty.")
    while pos < size:
        head = payload[pos]
        if marker == DQT:
            precision, slot, kind = head >> 4, head & 15, 2
            length = 1 + 64 * (precision + 1)
            bad = precision > 1
        elif marker == DHT:
            kind, slot = head >> 4, head & 15
            need(payload, pos + 17, "Huffman table")
            length = 17 + sum(payload[pos + 1 : pos + 17])
            bad = kind > 1 or length > 17 + 256
        else:  # DAC: class and slot, one conditioning value
            kind, slot, length = head >> 4, head & 15, 2
            bad = kind > 1
        if bad or slot > 3 or pos + length > size:
            raise DamagedImage("A JPEG table is broken.")
        yield (marker, kind, slot), bytes(payload[pos : pos + length])
        pos += length


def _orientation(data: bytes, segments: Layout) -> int:
    """The first EXIF segment's Orientation (the one viewers read), or when it has none, XMP's
    tiff:Orientation; 1 when neither."""
    packet, seen_exif = b"", False
    for marker, start, end in segments:
        if marker == APP1 and not seen_exif and data[start : start + 6] in _EXIF_IDS:
            found = exif.declared_orientation(data[start + 6 : end])
            if found is not None:
                return found
            seen_exif = True
        elif marker == APP1 and not packet and data.startswith(_XMP_ID, start):
            packet = data[start + len(_XMP_ID) : end]
        elif marker == SOS:
            break
    return (xmp.orientation(packet) if packet else None) or 1


def _used(data: bytes, segments: Layout) -> tuple[set[tuple[int, int]], _Frame]:
    """(segment index, table index) of every table definition a scan decodes with, and the
    frame. DRI counts as a table (class 0, slot 0) used by the scans after it."""
    current: dict[tuple[int, int, int], tuple[int, int]] = {}
    used: set[tuple[int, int]] = set()
    latched: set[int] = set()  # components whose quantisation table is fixed (libjpeg latches)
    frame: _Frame | None = None
    for index, (marker, start, end) in enumerate(segments):
        if marker in (DQT, DHT, DAC):
            for number, (key, _) in enumerate(_tables(marker, data[start:end])):
                current[key] = (index, number)
        elif marker == DRI:
            current[DRI, 0, 0] = (index, 0)
        elif marker in _SOF_MARKERS:
            frame = _frame(marker, data[start:end])
        elif marker == SOS:
            if frame is None:
                raise DamagedImage("A JPEG scan comes before its frame header.")
            _, uses = _scan(data[start:end], frame)
            table = DAC if frame.marker in _ARITHMETIC else DHT
            keys = [(table, kind, slot) for kind, slot in uses] + [(DRI, 0, 0)]
            for i in range(start + 1, start + 1 + 2 * data[start], 2):
                if data[i] not in latched:
                    latched.add(data[i])
                    keys.append((DQT, 2, frame.quant[data[i]]))
            used.update(current[key] for key in keys if key in current)
    if frame is None:
        raise DamagedImage("The file has no picture frame.")
    return used, frame


def _header_segments(data: bytes, segments: Layout, profile: list[bytes]) -> list[bytes]:
    """JFIF, orientation, the colour profile's segments and Adobe's colour transform."""
    out = []
    jfif = next(
        (
            data[start + 5 : start + 12]
            for marker, start, end in segments
            if marker == APP0 and end - start >= 14 and data.startswith(_JFIF_ID, start)
        ),
        None,
    )
    if jfif is not None:  # version 1.02, units, densities; no thumbnail
        units = jfif[2] if jfif[2] <= 2 else 0
        out.append(_segment(APP0, _JFIF_ID + b"\x01\x02" + bytes([units]) + jfif[3:] + b"\0\0"))
    turned = _orientation(data, segments)
    if turned != 1:
        out.append(_segment(APP1, _EXIF_IDS[0] + exif.minimal(turned)))
    out.extend(profile)
    adobe = next(
        (
            data[start + 11]
            for marker, start, end in segments
            if marker == APP14 and end - start >= 12 and data.startswith(_ADOBE_ID, start)
        ),
        None,
    )
    if adobe is not None:
        out.append(_segment(APP14, _ADOBE_ID + struct.pack(">HHHB", _ADOBE_VERSION, 0, 0, adobe)))
    return out


def strip(data: bytes, parsed: Parsed) -> bytes:
    """The same picture, written from its parsed fields; `data` itself when that is identical
    (so checking our own output costs no copy)."""
    segments = list(parsed.layout) or _segments(data)
    return _rebuild(data, segments, _header_segments(data, segments, _icc_segments(parsed)))


def strip_stream(data: bytes) -> bytes:
    """A JPEG stream inside another file (a TIFF strip or tile, TIFF JPEGTables) written from its
    fields: tables, frame, scans and the Adobe colour transform; no JFIF, EXIF, ICC or APPn/COM.
    An abbreviated stream (tables only, or picture data whose tables are elsewhere) stays so."""
    segments = _segments(data)
    if any(marker in _HIERARCHICAL or marker in _JPEG_LS for marker, _, _ in segments):
        raise DamagedImage("A JPEG stream inside the file uses a process we cannot rewrite.")
    headers = [part for part in _header_segments(data, segments, []) if part[1] == APP14]
    if not any(marker in _SOF_MARKERS for marker, _, _ in segments):  # tables only
        return _rebuild(data, segments, headers, keep_all_tables=True)
    return _rebuild(data, segments, headers)


def _rebuild(
    data: bytes, segments: Layout, headers: list[bytes], *, keep_all_tables: bool = False
) -> bytes:
    if keep_all_tables:
        used = {
            (index, number)
            for index, (marker, start, end) in enumerate(segments)
            if marker in (DQT, DHT, DAC)
            for number, _ in enumerate(_tables(marker, data[start:end]))
        }
        frame = None
    else:
        used, frame = _used(data, segments)
    pieces: list[bytes | tuple[int, int]] = [b"\xff\xd8", *headers]
    lines_left = frame is not None and struct.unpack_from(">H", frame.fields, 1)[0] == 0
    interval, intervals = 0, 0
    for index, (marker, start, end) in enumerate(segments):
        if marker == DATA:
            _data_pieces(data, segments, index, intervals, pieces)
        elif marker in (DQT, DHT, DAC):
            kept = [
                raw
                for number, (_, raw) in enumerate(_tables(marker, data[start:end]))
                if (index, number) in used
            ]
            if kept:
                pieces.append(_segment(marker, b"".join(kept)))
        elif marker == DRI and (index, 0) in used:
            need(data, start + 2, "restart interval")
            pieces.append(_segment(DRI, data[start : start + 2]))
        if marker == DRI and end - start >= 2:
            (interval,) = struct.unpack_from(">H", data, start)
        elif marker in _SOF_MARKERS and frame is not None:
            pieces.append(_segment(marker, frame.fields))
        elif marker == SOS and frame is not None:
            pieces.append(_segment(SOS, _scan(data[start:end], frame)[0]))
            components = list(data[start + 1 : start + 1 + 2 * data[start] : 2])
            mcus = frame.mcus(components) if interval else 0
            intervals = -(-mcus // interval) if mcus else 0
        elif marker == DNL and lines_left and index and segments[index - 1][0] == DATA:
            need(data, start + 2, "number of lines")
            pieces.append(_segment(DNL, data[start : start + 2]))
            lines_left = False
        elif marker == EOI:
            pieces.append(b"\xff\xd9")  # everything after it is dropped
    return _same_or_joined(data, pieces)


def _data_pieces(
    data: bytes,
    segments: Layout,
    index: int,
    intervals: int,
    pieces: list[bytes | tuple[int, int]],
) -> None:
    """A scan's data as ranges of `data`: restart markers without the fill bytes before them,
    and nothing after the last restart interval the scan's MCUs fill (decoders skip whatever
    follows it, so a code could ride there)."""
    _, start, end = segments[index]
    restarts = []
    for marker, at, _ in segments[index + 1 :]:
        if marker != RESTART:
            break
        restarts.append(at)
    if intervals and len(restarts) >= intervals:  # more intervals than MCUs to fill them
        end = _unfilled(data, start, restarts[intervals - 1])
        restarts = restarts[: intervals - 1]
    for at in restarts:
        pieces.append((start, _unfilled(data, start, at)))
        pieces.append(data[at : at + 2])
        start = at + 2
    pieces.append((start, end))


def _same_or_joined(data: bytes, pieces: list[bytes | tuple[int, int]]) -> bytes:
    """`data` when the pieces spell it exactly (its own ranges in place), else the pieces joined:
    written parts as they are, ranges (start, end) of `data` as views, so each is copied once."""
    pos = 0
    for piece in pieces:
        if isinstance(piece, tuple):
            same, size = piece[0] == pos, piece[1] - piece[0]
        else:
            same, size = data.startswith(piece, pos), len(piece)
        if not same:
            break
        pos += size
    else:
        if pos == len(data):
            return data
    view = memoryview(data)
    return b"".join(view[p[0] : p[1]] if isinstance(p, tuple) else p for p in pieces)


def accepts(head: bytes) -> bool:
    return head.startswith(b"\xff\xd8\xff")


FORMAT = Format("jpeg", "image/jpeg", "jpg", parse, strip, accepts=accepts, reparse=reparse)
