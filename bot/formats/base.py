"""What every format scrubber hands back: the hidden-data `Block`s it found, and the image size.

The rule (THREAT_MODEL.md): the output holds only what a decoder needs for the same pixels, plus
orientation and a colour profile reduced to its colour data (`bot.formats.icc`). Every structure
that survives is re-serialised from its parsed fields at its specified length, never copied
whole; `bot.scrub.verify` proves it by re-parsing the output (fail closed).

A format module has three pure functions over bytes, and one `FORMAT` entry naming them:

    accepts(head) -> bool      whether the first `SNIFF_BYTES` bytes are this format's signature
    parse(data) -> Parsed      walk the container (bounded), list every metadata block
    strip(data, parsed) -> bytes   write the same picture with only colour profile and orientation

`bot.scrub` interprets blocks into findings and re-parses the output to verify it (fail closed).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from bot.errors import DamagedImage

SNIFF_BYTES = 512  # what `Format.accepts` sees: enough for an ISO 'ftyp' box with 64 brands
# A file system's block. A copied range at its source offset modulo this can share the source's
# blocks (a reflink: XFS, btrfs), so the video writer keeps long runs of samples there (mp4).
ALIGN = 4096


class BlockKind(StrEnum):
    EXIF = "exif"  # TIFF-structured EXIF bytes (APP1, eXIf, EXIF chunk, Exif item)
    TIFF = "tiff"  # the IFD structure of a TIFF file itself; data is the whole file
    XMP = "xmp"  # XMP packet (XML bytes)
    IPTC = "iptc"  # IPTC-IIM records
    PHOTOSHOP = "photoshop"  # Photoshop image resource blocks (8BIM), may hold IPTC and thumbnails
    ICC = "icc"  # colour profile: kept
    COMMENT = "comment"  # free text comment (JPEG COM, GIF comment)
    TEXT = "text"  # keyword/value text (PNG tEXt/zTXt/iTXt); name holds the keyword
    DATE = "date"  # a modification time stored by the container (PNG tIME)
    THUMBNAIL = "thumbnail"  # embedded preview picture; data is the picture
    IMAGE = "image"  # a second picture: MPF image, depth map, gain map, auxiliary image
    MEDIA = "media"  # video or audio (motion photo), or unknown data after the image end
    C2PA = "c2pa"  # content credentials (JUMBF)
    MOVIE = "movie"  # a video's metadata item: name "key@where" (bot.metadata.movie), data text
    OTHER = "other"  # anything else we drop; name says what it was


@dataclass(frozen=True)
class Block:
    """One hidden-data container found in a file, not yet interpreted."""

    kind: BlockKind
    name: str
    data: bytes = b""


@dataclass(frozen=True)
class Parsed:
    width: int
    height: int
    blocks: tuple[Block, ...] = ()
    frames: int = 1
    notes: tuple[str, ...] = field(default=())
    # Positions a format's parse found (e.g. JPEG segments), so strip need not walk the file again.
    layout: tuple[tuple[int, int, int], ...] = ()


def _accepts_nothing(head: bytes) -> bool:
    return False


@dataclass(frozen=True)
class Format:
    """A registry entry: how to recognise, parse and strip one image format."""

    name: str  # "jpeg"
    mime: str  # "image/jpeg"
    extension: str  # "jpg"
    parse: Callable[[bytes], Parsed]
    strip: Callable[[bytes, Parsed], bytes]
    lossless: bool = True
    # Recognised from the first bytes only (never a name or a claimed MIME type).
    accepts: Callable[[bytes], bool] = _accepts_nothing
    label: str = ""  # what a person calls it ("JPEG", "HEIC"); the name in capitals if empty
    # parse(out) for our own output out = strip(source, parsed), with the same result but
    # allowed to skip re-scanning stretches it proves byte-equal to ones parse already read.
    reparse: Callable[[bytes, bytes, Parsed], Parsed] | None = None

    @property
    def shown(self) -> str:
        return self.label or self.name.upper()


def need(data: bytes, end: int, what: str) -> None:
    """Raise DamagedImage when `data` ends before `end` (a truncated structure)."""
    if end > len(data):
        raise DamagedImage(f"The file ends in the middle of its {what}, so it is incomplete.")
