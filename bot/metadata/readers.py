"""Turns raw blocks into findings: one reader per block kind."""

from collections.abc import Callable, Iterator

from bot.findings import Finding, Kind
from bot.formats.base import Block, BlockKind, Parsed


def collect(parsed: Parsed) -> list[Finding]:
    """Interpret every block of a parsed file into findings."""
    found: list[Finding] = []
    for block in parsed.blocks:
        found.extend(read_block(block, parsed))
    return found


def read_block(block: Block, parsed: Parsed) -> Iterator[Finding]:
    reader = _READERS.get(block.kind)
    if reader is not None:
        yield from reader(block, parsed)


def _generic(kind: Kind, key: str) -> Callable[[Block, Parsed], Iterator[Finding]]:
    def read(block: Block, parsed: Parsed) -> Iterator[Finding]:
        yield Finding(kind, key, "", block.name)

    return read


_READERS: dict[BlockKind, Callable[[Block, Parsed], Iterator[Finding]]] = {
    BlockKind.EXIF: _generic(Kind.OTHER, "exif"),
    BlockKind.XMP: _generic(Kind.OTHER, "xmp"),
    BlockKind.IPTC: _generic(Kind.OTHER, "iptc"),
    BlockKind.PHOTOSHOP: _generic(Kind.OTHER, "photoshop"),
    BlockKind.COMMENT: _generic(Kind.DESCRIPTION, "comment"),
    BlockKind.TEXT: _generic(Kind.OTHER, "text"),
    BlockKind.DATE: _generic(Kind.TIME, "modified"),
    BlockKind.THUMBNAIL: _generic(Kind.HIDDEN_PICTURE, "thumbnail"),
    BlockKind.IMAGE: _generic(Kind.HIDDEN_PICTURE, "image"),
    BlockKind.MEDIA: _generic(Kind.HIDDEN_MEDIA, "media"),
    BlockKind.C2PA: _generic(Kind.CREDENTIALS, "c2pa"),
    BlockKind.OTHER: _generic(Kind.OTHER, "other"),
}
