"""EXIF: what the tags mean, and the only EXIF we ever write back (orientation alone)."""

import piexif

from bot.metadata.ifd import Ifds

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
