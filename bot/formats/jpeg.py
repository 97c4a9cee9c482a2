"""JPEG: segment surgery; the entropy-coded picture data is copied, never decoded.

What a JPEG can carry, and what we do with it:
- APP0 JFIF: kept (pixel density) without its thumbnail; JFXX thumbnails and other APP0 dropped.
- APP1 EXIF (GPS, times, camera, serials, MakerNotes, thumbnail), XMP and Extended XMP (names, face
  regions, edit history, document IDs, Google depth/motion data): dropped.
- APP2 ICC_PROFILE: the profile (chunks put together in sequence order) is rebuilt with only
  its colour data (`bot.formats.icc`) and written back in canonical chunks where the first one
  was; chunks holding no valid profile are dropped. APP2 MPF and its secondary images (stereo
  pair, gain map, depth map): dropped.
- APP11 JUMBF/C2PA, APP13 Photoshop/IPTC (Facebook's FBMD code), other APPn, COM: dropped.
- APP14 Adobe: kept (CMYK/YCCK colours depend on its transform flag).
- Anything after EOI (motion-photo MP4, Samsung SEFT, MPF images, appended archives): dropped.
Orientation survives as a minimal EXIF block holding only the Orientation tag.
"""

import re
import struct

from bot.errors import DamagedImage
from bot.formats import icc
from bot.formats.base import Block, BlockKind, Format, Parsed, need
from bot.metadata import exif
from bot.metadata.ifd import Ifds

SOI, EOI, SOS, COM = 0xD8, 0xD9, 0xDA, 0xFE
APP0, APP1, APP2, APP11, APP13, APP14, APP15 = 0xE0, 0xE1, 0xE2, 0xEB, 0xED, 0xEE, 0xEF
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# A marker after entropy-coded data: 0xFF followed by anything but stuffing (00), RSTn or fill.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")

_EXIF_IDS = (b"Exif\0\0", b"Exif\0\xff")
_XMP_ID = b"http://ns.adobe.com/xap/1.0/\0"
_XMP_EXT_ID = b"http://ns.adobe.com/xmp/extension/\0"
_ICC_ID = b"ICC_PROFILE\0"
_ICC_CHUNK = 65533 - len(_ICC_ID) - 2  # profile bytes per APP2 segment
_ICC_NAME = "ICC colour profile"
_MPF_ID = b"MPF\0"
_PHOTOSHOP_ID = b"Photoshop 3.0\0"
_MAX_EXTENDED_XMP = 16 * 1024 * 1024

_MP_TYPES = {
    0x010001: "large thumbnail",
    0x010002: "large thumbnail",
    0x020001: "panorama frame",
    0x020002: "second view (3D)",
    0x020003: "other angle",
    0x030000: "picture",
}


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, payload start, payload end) for each segment up to EOI, then (EOI, end, end).

    Entropy-coded data after each SOS is skipped with one regex scan, so this stays fast on
    large photos; markers between progressive scans are listed like any other.
    """
    if not data.startswith(b"\xff\xd8"):
        raise DamagedImage
    out: list[tuple[int, int, int]] = []
    pos, size = 2, len(data)
    while True:
        while pos < size and data[pos] == 0xFF and pos + 1 < size and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes before a marker
        need(data, pos + 2, "structure")
        if data[pos] != 0xFF:
            raise DamagedImage("The file has a broken JPEG structure.")
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
        pos = end
        if marker == SOS:
            found = _NEXT_MARKER.search(data, pos)
            if found is None:
                raise DamagedImage("The picture data ends before the end-of-image marker.")
            pos = found.start()


def parse(data: bytes) -> Parsed:
    segments = _segments(data)
    blocks: list[Block] = []
    width = height = 0
    icc_chunks: list[bytes] = []
    photoshop: list[bytes] = []
    extended_xmp: dict[bytes, bytearray] = {}
    for marker, start, end in segments:
        payload = data[start:end]
        if marker in _SOF_MARKERS and width == 0:
            need(payload, 5, "frame header")
            height, width = struct.unpack_from(">HH", payload, 1)
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
        elif marker == APP14 and payload.startswith(b"Adobe"):
            pass  # colour transform flag: part of the picture
        elif APP0 <= marker <= APP15:
            blocks.append(Block(BlockKind.OTHER, _app_name(marker, payload), payload))
        elif marker == COM:
            blocks.append(Block(BlockKind.COMMENT, "JPEG comment", payload))
    if width == 0 or height == 0:
        raise DamagedImage("The file has no picture dimensions.")
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
    if payload.startswith(b"JFIF\0") and len(payload) >= 14:
        if payload[12] and payload[13]:
            return [Block(BlockKind.THUMBNAIL, "JFIF thumbnail", b"")]
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


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def strip(data: bytes, parsed: Parsed) -> bytes:
    segments = list(parsed.layout) or _segments(data)
    orientation = 1
    for marker, start, end in segments:
        if marker == APP1 and data[start : start + 6] in _EXIF_IDS:
            orientation = exif.orientation(data[start + 6 : end])
            break
    out: list[bytes | memoryview] = [b"\xff\xd8"]
    view = memoryview(data)
    pending_exif = orientation != 1
    icc_segments = _icc_segments(parsed)
    for index, (marker, start, end) in enumerate(segments):
        if marker == EOI:
            out.append(view[start - 2 : end])  # EOI itself; everything after it is dropped
            break
        if marker == APP0 and bytes(view[start : start + 5]) == b"JFIF\0" and end - start >= 14:
            out.append(_segment(APP0, bytes(view[start : start + 12]) + b"\0\0"))
        elif _keep(marker, view[start:end]):
            if pending_exif:
                out.append(_segment(APP1, _EXIF_IDS[0] + exif.minimal(orientation)))
                pending_exif = False
            if marker == APP2:  # the colour profile, the only APP2 kept: rebuilt once
                out.extend(icc_segments)
                icc_segments = []
                continue
            # a segment, and for SOS the entropy-coded data up to the next segment
            stop = segments[index + 1][1] - 4 if marker == SOS else end
            if marker == SOS and segments[index + 1][0] == EOI:
                stop = segments[index + 1][1] - 2
            out.append(view[start - 4 : stop])
    return b"".join(out)


def _keep(marker: int, payload: memoryview) -> bool:
    if marker == APP2:
        return bytes(payload[: len(_ICC_ID)]) == _ICC_ID
    if marker == APP14:
        return bytes(payload[:5]) == b"Adobe"
    return not (APP0 <= marker <= APP15 or marker == COM)


def accepts(head: bytes) -> bool:
    return head.startswith(b"\xff\xd8\xff")


FORMAT = Format("jpeg", "image/jpeg", "jpg", parse, strip, accepts=accepts)
