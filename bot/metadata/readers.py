"""Turns raw blocks into findings: one reader per block kind."""

from collections.abc import Callable

from bot.findings import Finding, Kind
from bot.formats import icc
from bot.formats.base import Block, BlockKind, Parsed
from bot.metadata import exif, iptc, photoshop, xmp
from bot.metadata.pictures import jpeg_size, shows_more, video_seconds
from bot.metadata.text import readable

Reader = Callable[[Block, Parsed], list[Finding]]


def collect(parsed: Parsed) -> list[Finding]:
    """Interpret every block of a parsed file into findings."""
    found: list[Finding] = []
    for block in parsed.blocks:
        found.extend(_READERS[block.kind](block, parsed))
    return found


def _exif(block: Block, parsed: Parsed) -> list[Finding]:
    return exif.findings(block.data, parsed.width, parsed.height)


def _tiff(block: Block, parsed: Parsed) -> list[Finding]:
    return exif.findings(block.data, parsed.width, parsed.height, source="TIFF")


def _xmp(block: Block, parsed: Parsed) -> list[Finding]:
    return xmp.findings(block.data)


def _iptc(block: Block, parsed: Parsed) -> list[Finding]:
    return iptc.findings(block.data)


def _photoshop(block: Block, parsed: Parsed) -> list[Finding]:
    found: list[Finding] = []
    for ident, payload in photoshop.resources(block.data):
        if ident == photoshop.IPTC:
            found.extend(iptc.findings(payload))
        elif ident == photoshop.EXIF:
            found.extend(exif.findings(payload, parsed.width, parsed.height))
        elif ident == photoshop.XMP:
            found.extend(xmp.findings(payload))
        elif ident in (photoshop.THUMBNAIL, photoshop.THUMBNAIL_OLD):
            found.extend(
                _picture(Kind.HIDDEN_PICTURE, "thumbnail", payload[28:], parsed, "Photoshop")
            )
    return found


def _picture(kind: Kind, key: str, data: bytes, parsed: Parsed, source: str) -> list[Finding]:
    size = jpeg_size(data)
    found = [Finding(kind, key, f"{size[0]}x{size[1]}" if size else "", source)]
    if key == "thumbnail" and shows_more(data, parsed.width, parsed.height):
        found.append(Finding(kind, "thumbnail_shows_more", "", source))
    return found


def _text(block: Block, parsed: Parsed) -> list[Finding]:
    """PNG-style keyword/value text: the keyword says what the value is."""
    keyword = block.name.rsplit("'", 2)[-2] if block.name.count("'") >= 2 else block.name
    value = readable(block.data)
    word = keyword.lower()
    if value.upper().startswith("FBMD"):
        return [Finding(Kind.TRACKING, "facebook_code", value, block.name)]
    for words, kind, key in _TEXT_KEYWORDS:
        if any(w in word for w in words):
            return [Finding(kind, key, value, block.name)]
    return [Finding(Kind.OTHER, readable(keyword, 60), value, block.name)]


_TEXT_KEYWORDS: tuple[tuple[tuple[str, ...], Kind, str], ...] = (
    (("gps", "latitude", "longitude", "location"), Kind.LOCATION, "place"),
    (("author", "artist", "creator", "owner", "copyright"), Kind.PEOPLE, "author"),
    (("serial",), Kind.DEVICE, "serial"),
    (("make", "model", "source", "camera", "lens"), Kind.DEVICE, "model"),
    (("software",), Kind.DEVICE, "software"),
    (("date", "time"), Kind.TIME, "modified"),
    (
        ("comment", "description", "title", "subject", "keyword", "caption"),
        Kind.DESCRIPTION,
        "comment",
    ),
)


def _date(block: Block, parsed: Parsed) -> list[Finding]:
    data = block.data
    if len(data) == 7:
        year = int.from_bytes(data[:2], "big")
        value = f"{year:04d}:{data[2]:02d}:{data[3]:02d} {data[4]:02d}:{data[5]:02d}:{data[6]:02d}"
    else:
        value = readable(data)
    return [Finding(Kind.TIME, "modified", value, block.name)]


def _comment(block: Block, parsed: Parsed) -> list[Finding]:
    value = readable(block.data)
    if value.upper().startswith("FBMD"):
        return [Finding(Kind.TRACKING, "facebook_code", value, block.name)]
    return [Finding(Kind.DESCRIPTION, "comment", value, block.name)] if value else []


def _thumbnail(block: Block, parsed: Parsed) -> list[Finding]:
    return _picture(Kind.HIDDEN_PICTURE, "thumbnail", block.data, parsed, block.name)


def _image(block: Block, parsed: Parsed) -> list[Finding]:
    size = jpeg_size(block.data)
    value = f"{block.name}, {size[0]}x{size[1]}" if size else block.name
    return [Finding(Kind.HIDDEN_PICTURE, "image", value, block.name)]


def _media(block: Block, parsed: Parsed) -> list[Finding]:
    seconds = video_seconds(block.data)
    if seconds is not None:
        return [Finding(Kind.HIDDEN_MEDIA, "video", f"{seconds:.1f}", block.name)]
    return [Finding(Kind.HIDDEN_MEDIA, "data", f"{len(block.data)} bytes", block.name)]


def _c2pa(block: Block, parsed: Parsed) -> list[Finding]:
    return [Finding(Kind.CREDENTIALS, "c2pa", "", block.name)]


def _other(block: Block, parsed: Parsed) -> list[Finding]:
    return [Finding(Kind.OTHER, "container", block.name, block.name)]


def _icc(block: Block, parsed: Parsed) -> list[Finding]:
    """The colour profile is kept (rebuilt), but what it named (maker, a person) is not."""
    return [
        Finding(Kind.DESCRIPTION, "colour_profile", text, block.name)
        for text in icc.named(block.data)
    ]


_READERS: dict[BlockKind, Reader] = {
    BlockKind.EXIF: _exif,
    BlockKind.TIFF: _tiff,
    BlockKind.XMP: _xmp,
    BlockKind.IPTC: _iptc,
    BlockKind.PHOTOSHOP: _photoshop,
    BlockKind.ICC: _icc,
    BlockKind.COMMENT: _comment,
    BlockKind.TEXT: _text,
    BlockKind.DATE: _date,
    BlockKind.THUMBNAIL: _thumbnail,
    BlockKind.IMAGE: _image,
    BlockKind.MEDIA: _media,
    BlockKind.C2PA: _c2pa,
    BlockKind.OTHER: _other,
}
