"""EXIF: what its tags reveal, and the only EXIF we ever write back (orientation alone)."""

import struct

import piexif

from bot.findings import Finding, Kind
from bot.metadata.ifd import Entry, Ifds
from bot.metadata.pictures import jpeg_size, shows_more
from bot.metadata.text import readable

ORIENTATION = 0x0112
NEW_SUBFILE_TYPE = 0x00FE
EXIF_HEADER = b"Exif\0\0"

# Tags that describe how to decode a TIFF's pixels: kept in TIFF files, never a finding.
STRUCTURAL_TAGS = frozenset(
    {
        0x00FE,  # NewSubfileType
        0x00FF,  # SubfileType
        0x0100,  # ImageWidth
        0x0101,  # ImageLength
        0x0102,  # BitsPerSample
        0x0103,  # Compression
        0x0106,  # PhotometricInterpretation
        0x0107,  # Threshholding
        0x010A,  # FillOrder
        0x0111,  # StripOffsets
        0x0112,  # Orientation
        0x0115,  # SamplesPerPixel
        0x0116,  # RowsPerStrip
        0x0117,  # StripByteCounts
        0x0118,  # MinSampleValue
        0x0119,  # MaxSampleValue
        0x011A,  # XResolution
        0x011B,  # YResolution
        0x011C,  # PlanarConfiguration
        0x0124,  # T4Options
        0x0125,  # T6Options
        0x0128,  # ResolutionUnit
        0x012D,  # TransferFunction
        0x013D,  # Predictor
        0x013E,  # WhitePoint
        0x013F,  # PrimaryChromaticities
        0x0140,  # ColorMap
        0x0142,  # TileWidth
        0x0143,  # TileLength
        0x0144,  # TileOffsets
        0x0145,  # TileByteCounts
        0x014C,  # InkSet
        0x014D,  # InkNames
        0x014E,  # NumberOfInks
        0x0150,  # DotRange
        0x0152,  # ExtraSamples
        0x0153,  # SampleFormat
        0x0154,  # SMinSampleValue
        0x0155,  # SMaxSampleValue
        0x015B,  # JPEGTables
        0x0211,  # YCbCrCoefficients
        0x0212,  # YCbCrSubSampling
        0x0213,  # YCbCrPositioning
        0x0214,  # ReferenceBlackWhite
        0x8773,  # InterColorProfile (ICC)
    }
)


def minimal(orientation: int) -> bytes:
    """A TIFF-structured EXIF block holding nothing but Orientation (no header)."""
    return bytes(piexif.dump({"0th": {ORIENTATION: orientation}}))[len(EXIF_HEADER) :]


def strip_header(data: bytes) -> bytes:
    """EXIF payloads sometimes start with the JPEG APP1 identifier; the TIFF data follows it."""
    return data[len(EXIF_HEADER) :] if data.startswith(EXIF_HEADER) else data


def orientation(data: bytes) -> int:
    """The Orientation tag of an EXIF block, 1 when absent, unreadable or out of range."""
    try:
        ifds = Ifds(strip_header(data), follow_chain=False)
        entry = ifds.find("IFD0", ORIENTATION)
        value = ifds.ints(entry)[0] if entry else 1
    except (ValueError, IndexError):
        return 1
    return value if 1 <= value <= 8 else 1


def declared_orientation(data: bytes) -> int | None:
    """The Orientation tag (1 when out of range), or None when the block has none or cannot
    be read: then a reader falls back to XMP's tiff:Orientation."""
    try:
        ifds = Ifds(strip_header(data), follow_chain=False)
        entry = ifds.find("IFD0", ORIENTATION)
        values = ifds.ints(entry) if entry else ()
    except (ValueError, IndexError, struct.error):
        return None
    if not values:
        return None
    return values[0] if 1 <= values[0] <= 8 else 1


def only_orientation(data: bytes) -> bool:
    """True when an EXIF block holds Orientation and nothing else (what we write back)."""
    try:
        ifds = Ifds(strip_header(data))
    except (ValueError, IndexError):
        return False
    tags = [entry.tag for _, entry in ifds.all_entries()]
    return len(ifds.directories) == 1 and tags in ([], [ORIENTATION])


def only_structure(data: bytes) -> bool:
    """True when every directory of a TIFF file holds only pixel-decoding tags."""
    try:
        ifds = Ifds(data)
    except (ValueError, IndexError):
        return False
    for _, entry in ifds.all_entries():
        if entry.tag not in STRUCTURAL_TAGS:
            return False
        if entry.tag == NEW_SUBFILE_TYPE and any(v & 1 for v in ifds.ints(entry)):
            return False  # a reduced-resolution copy is a hidden thumbnail
    return True


# (directory, tag) -> (kind, key); tags not listed here are reported as OTHER by name.
_MEANING: dict[int, tuple[Kind, str]] = {
    0x010E: (Kind.DESCRIPTION, "description"),
    0x010F: (Kind.DEVICE, "make"),
    0x0110: (Kind.DEVICE, "model"),
    0x0131: (Kind.DEVICE, "software"),
    0x0132: (Kind.TIME, "modified"),
    0x013B: (Kind.PEOPLE, "artist"),
    0x013C: (Kind.DEVICE, "computer"),
    0x8298: (Kind.PEOPLE, "copyright"),
    0x9003: (Kind.TIME, "taken"),
    0x9004: (Kind.TIME, "digitized"),
    0x9010: (Kind.TIME, "time_zone"),
    0x9011: (Kind.TIME, "time_zone"),
    0x9012: (Kind.TIME, "time_zone"),
    0x9286: (Kind.DESCRIPTION, "comment"),
    0x9C9B: (Kind.DESCRIPTION, "title"),
    0x9C9C: (Kind.DESCRIPTION, "comment"),
    0x9C9D: (Kind.PEOPLE, "author"),
    0x9C9E: (Kind.DESCRIPTION, "keywords"),
    0x9C9F: (Kind.DESCRIPTION, "subject"),
    0xA420: (Kind.TRACKING, "image_id"),
    0xA430: (Kind.PEOPLE, "owner"),
    0xA431: (Kind.DEVICE, "serial"),
    0xA433: (Kind.DEVICE, "lens_make"),
    0xA434: (Kind.DEVICE, "lens"),
    0xA435: (Kind.DEVICE, "lens_serial"),
    0xC62F: (Kind.DEVICE, "serial"),
    0x927C: (Kind.DEVICE, "maker_notes"),
}
_SKIP = frozenset({0x8769, 0x8825, 0xA005, 0x014A, 0x0201, 0x0202, 0x9000, 0xA000, 0x0001, 0x0002})
_GPS_LATITUDE, _GPS_LONGITUDE, _GPS_ALTITUDE = 2, 4, 6
_GPS_MEANING = {
    0x07: (Kind.TIME, "gps_time"),
    0x0D: (Kind.LOCATION, "speed"),
    0x11: (Kind.LOCATION, "direction"),
    0x12: (Kind.LOCATION, "map_datum"),
    0x1C: (Kind.LOCATION, "area"),
    0x1D: (Kind.TIME, "gps_date"),
}
_GPS_SKIP = frozenset({0x00, 0x01, 0x03, 0x05, 0x0C, 0x10, 0x1B})  # version and reference letters
_NAME_TABLES = {"IFD0": "0th", "IFD1": "1st", "Exif": "Exif", "GPS": "GPS", "Interop": "Interop"}


def findings(data: bytes, width: int, height: int, source: str = "EXIF") -> list[Finding]:
    """What an EXIF block (or a TIFF file's directories) reveals, with values."""
    try:
        ifds = Ifds(strip_header(data))
    except (ValueError, IndexError, struct.error):
        return [Finding(Kind.OTHER, "unreadable", "EXIF", source)]
    found: list[Finding] = []
    for directory, entry in ifds.all_entries():
        if entry.tag in _SKIP or (entry.tag in STRUCTURAL_TAGS and directory.name != "GPS"):
            continue
        try:
            found.extend(_entry_findings(ifds, directory.name, entry, source))
        except (ValueError, IndexError, struct.error):
            found.append(
                Finding(Kind.OTHER, "unreadable", _tag_name(directory.name, entry), source)
            )
    found.extend(_gps_position(ifds, source))
    found.extend(_thumbnail(ifds, width, height, source))
    found.extend(_apple_ids(ifds, source))
    return found


def _entry_findings(ifds: Ifds, directory: str, entry: Entry, source: str) -> list[Finding]:
    if directory == "GPS":
        if entry.tag in (_GPS_LATITUDE, _GPS_LONGITUDE) or entry.tag in _GPS_SKIP:
            return []
        if entry.tag == _GPS_ALTITUDE:
            (metres,) = ifds.rationals(entry)[:1] or (0.0,)
            below = (ref := ifds.find("GPS", 5)) is not None and ifds.ints(ref)[:1] == (1,)
            return [
                Finding(Kind.LOCATION, "altitude", f"{-metres if below else metres:.0f} m", source)
            ]
        kind, key = _GPS_MEANING.get(entry.tag, (Kind.LOCATION, "gps"))
        return [Finding(kind, key, _value(ifds, entry), source)]
    kind, key = _MEANING.get(entry.tag, (Kind.OTHER, _tag_name(directory, entry)))
    if entry.tag == 0x927C:
        return [Finding(kind, key, _maker(ifds), source)]
    value = _value(ifds, entry)
    if not value and kind is not Kind.OTHER:
        return []
    return [Finding(kind, key, value, source)]


def _value(ifds: Ifds, entry: Entry) -> str:
    if entry.type == 2 or entry.tag in (0x9286, 0x9C9B, 0x9C9C, 0x9C9D, 0x9C9E, 0x9C9F):
        return readable(ifds.text(entry))
    if entry.type in (5, 10):
        return readable(" ".join(f"{v:g}" for v in ifds.rationals(entry)[:8]))
    if entry.type == 7:
        return f"{entry.size} bytes"
    return readable(" ".join(str(v) for v in ifds.ints(entry)[:8]))


_APPLE_IDS = {0x000B: "burst", 0x0011: "live photo", 0x0015: "image", 0x002B: "photo"}


def _apple_ids(ifds: Ifds, source: str) -> list[Finding]:
    """Apple's MakerNote holds IDs that link a photo to its Live Photo video and burst."""
    note = ifds.find("Exif", 0x927C)
    raw = ifds.raw(note) if note else b""
    if not raw.startswith(b"Apple iOS\0") or raw[12:14] != b"MM":
        return []
    try:  # a TIFF header over the 14-byte Apple header: offsets count from the note's start
        apple = Ifds(b"MM\0*\0\0\0\x0e" + raw[8:], follow_chain=False)
    except (ValueError, IndexError, struct.error):
        return []
    return [
        Finding(
            Kind.TRACKING,
            "apple_id",
            f"{_APPLE_IDS[entry.tag]}: {readable(apple.text(entry))}",
            source,
        )
        for _, entry in apple.all_entries()
        if entry.tag in _APPLE_IDS and entry.type == 2
    ]


def _maker(ifds: Ifds) -> str:
    make = ifds.find("IFD0", 0x010F)
    return readable(ifds.text(make)) if make else ""


def _tag_name(directory: str, entry: Entry) -> str:
    table = piexif.TAGS.get(_NAME_TABLES.get(directory, "0th"), {})
    info = table.get(entry.tag) or piexif.TAGS["Image"].get(entry.tag)
    return str(info["name"]) if info else f"Tag 0x{entry.tag:04X}"


def _gps_position(ifds: Ifds, source: str) -> list[Finding]:
    lat, lon = ifds.find("GPS", _GPS_LATITUDE), ifds.find("GPS", _GPS_LONGITUDE)
    if lat is None or lon is None:
        return []
    try:
        latitude = _degrees(ifds.rationals(lat)) * _sign(ifds, 1, b"S")
        longitude = _degrees(ifds.rationals(lon)) * _sign(ifds, 3, b"W")
    except (ValueError, IndexError, struct.error):
        return [Finding(Kind.LOCATION, "coordinates", "", source)]
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return [Finding(Kind.LOCATION, "coordinates", "", source)]
    return [
        Finding(
            Kind.LOCATION,
            "coordinates",
            f"{latitude:.6f}, {longitude:.6f}",
            source,
            position=(latitude, longitude),
        )
    ]


def _degrees(parts: tuple[float, ...]) -> float:
    d, m, s = (*parts, 0.0, 0.0, 0.0)[:3]
    return d + m / 60 + s / 3600


def _sign(ifds: Ifds, ref_tag: int, negative: bytes) -> int:
    ref = ifds.find("GPS", ref_tag)
    return -1 if ref is not None and ifds.raw(ref)[:1].upper() == negative else 1


def _thumbnail(ifds: Ifds, width: int, height: int, source: str) -> list[Finding]:
    offset, length = ifds.find("IFD1", 0x0201), ifds.find("IFD1", 0x0202)
    if offset is None or length is None:
        return []
    start, size = (ifds.ints(offset) or (0,))[0], (ifds.ints(length) or (0,))[0]
    picture = ifds.data[start : start + size]
    found = [Finding(Kind.HIDDEN_PICTURE, "thumbnail", _size_text(picture), source)]
    if shows_more(picture, width, height):
        found.append(Finding(Kind.HIDDEN_PICTURE, "thumbnail_shows_more", "", source))
    return found


def _size_text(picture: bytes) -> str:
    size = jpeg_size(picture)
    return f"{size[0]}x{size[1]}" if size else ""
