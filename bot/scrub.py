"""The scrubber: sniff the format from the bytes, list findings, strip, then verify (fail closed).

    scrub(data) -> Scrubbed      cleaned bytes + findings, or a ScrubError; never anything else
    inspect(data) -> Inspection  findings only, nothing written

Nothing here touches the disk or the network; callers run it off the event loop.
"""

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from bot.errors import DamagedImage, NotClean, ScrubError, TooLarge, UnsupportedFormat
from bot.findings import Finding
from bot.formats import gif, heif, icc, jpeg, png, tiff, webp
from bot.formats.base import SNIFF_BYTES, Block, BlockKind, Format, Parsed
from bot.metadata import exif
from bot.metadata.readers import collect

FORMATS: dict[str, Format] = {
    fmt.name: fmt
    for fmt in (
        jpeg.FORMAT,
        png.FORMAT,
        webp.FORMAT,
        gif.FORMAT,
        tiff.FORMAT,
        heif.FORMAT,
        heif.AVIF_FORMAT,
    )
}

# Recognised but refused, so the message can say what the file is.
_OTHER_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"%PDF", 0, "A PDF document"),
    (b"PK\x03\x04", 0, "A ZIP archive or office document"),
    (b"8BPS", 0, "A Photoshop document (PSD)"),
    (b"\xff\x0a", 0, "A JPEG XL image"),
    (b"\0\0\0\x0cJXL \r\n\x87\n", 0, "A JPEG XL image"),
    (b"BM", 0, "A BMP bitmap"),
    (b"\0\0\1\0", 0, "A Windows icon"),
    (b"\x1a\x45\xdf\xa3", 0, "A video (WebM/MKV)"),
    (b"ID3", 0, "An audio file"),
    (b"OggS", 0, "An audio or video file (Ogg)"),
    (b"II\xbc", 0, "A JPEG XR image"),
    (b"<svg", 0, "An SVG drawing"),
    (b"<?xml", 0, "An XML document"),
)


@dataclass(frozen=True)
class Limits:
    """Checked before any decoding: whole-file bytes and declared pixels (width x height)."""

    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 200_000_000

    def check_size(self, size: int) -> None:
        """Refuse a file of `size` bytes over the limit (callers may know it before reading)."""
        if size > self.max_bytes:
            raise TooLarge(f"The file is larger than {self.max_bytes // (1024 * 1024)} MB.")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Limits":
        """Limits from SCRUBBOT_MAX_BYTES / SCRUBBOT_MAX_PIXELS; ValueError names a bad one."""
        values = {}
        for field, name in (
            ("max_bytes", "SCRUBBOT_MAX_BYTES"),
            ("max_pixels", "SCRUBBOT_MAX_PIXELS"),
        ):
            if env.get(name):
                try:
                    values[field] = int(env[name])
                except ValueError:
                    values[field] = 0
                if values[field] <= 0:
                    raise ValueError(f"{name} must be a positive whole number")
        return cls(**values)


@dataclass(frozen=True)
class Inspection:
    format: Format
    parsed: Parsed

    @cached_property
    def findings(self) -> tuple[Finding, ...]:
        """Interpreted on first use: cleaning alone (the CLI) never pays for it."""
        return tuple(_guarded(lambda: collect(self.parsed)))


@dataclass(frozen=True)
class Scrubbed:
    data: bytes
    inspection: Inspection

    @property
    def format(self) -> Format:
        return self.inspection.format

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.inspection.findings


def supported() -> tuple[str, ...]:
    """What the registry can clean, as people call the formats: ("JPEG", ..., "AVIF")."""
    return tuple(fmt.shown for fmt in FORMATS.values())


def sniff(data: bytes) -> Format:
    """The format of `data` from its first bytes (never from a name or a claimed MIME type).

    Each registered format says whether it accepts the head; otherwise the refusal names what
    the file is when we recognise it.
    """
    head = data[:SNIFF_BYTES]
    for fmt in FORMATS.values():
        if fmt.accepts(head):
            return fmt
    if head[4:8] == b"ftyp":
        heif.sniff_brand(head, FORMATS["heif"])  # raises, naming the kind of ISO media file
        raise UnsupportedFormat("This ISO media file")
    for signature, offset, what in _OTHER_SIGNATURES:
        if head[offset:].startswith(signature):
            raise UnsupportedFormat(what)
    if head[:4] == b"RIFF":
        raise UnsupportedFormat("A RIFF media file")
    raise UnsupportedFormat("This file")


_T = TypeVar("_T")

# What a parser may raise on hostile structures it did not anticipate; reported as damage.
_PARSE_ERRORS = (ValueError, IndexError, KeyError, struct.error, OverflowError, RecursionError)


def _guarded(step: Callable[[], _T]) -> _T:
    try:
        return step()
    except ScrubError:
        raise
    except _PARSE_ERRORS as error:
        raise DamagedImage from error


def inspect(data: bytes, limits: Limits = Limits()) -> Inspection:
    """Parse `data` within `limits` and list what it would reveal."""
    limits.check_size(len(data))
    fmt = sniff(data)
    parsed = _guarded(lambda: fmt.parse(data))
    if parsed.width <= 0 or parsed.height <= 0:
        raise DamagedImage("The picture has no width or height.")
    if parsed.width * parsed.height * parsed.frames > limits.max_pixels:
        raise TooLarge("The picture has too many pixels to handle safely.")
    return Inspection(fmt, parsed)


def scrub(data: bytes, limits: Limits = Limits()) -> Scrubbed:
    """Remove every metadata block but colour profile and orientation; verify before returning."""
    report = inspect(data, limits)
    cleaned = _guarded(lambda: report.format.strip(data, report.parsed))
    verify(report.format, cleaned)
    return Scrubbed(cleaned, report)


def verify(fmt: Format, cleaned: bytes) -> None:
    """Re-read our own output and refuse it unless it is clean and canonical.

    Clean: no block is left but colour profile and orientation. Canonical: stripping the output
    again gives the same bytes, so every structure that survived is exactly what `strip` writes
    from its parsed fields; a byte `strip` copied without understanding it would not be stable.
    Colour: every profile left is one `bot.formats.icc` wrote (`icc.is_canonical`).
    """
    try:
        parsed = _guarded(lambda: fmt.parse(cleaned))
        if any(not _allowed(block) for block in parsed.blocks):
            raise NotClean
        if _guarded(lambda: fmt.strip(cleaned, parsed)) != cleaned:
            raise NotClean
    except NotClean:
        raise
    except ScrubError as error:
        raise NotClean from error


def _allowed(block: Block) -> bool:
    if block.kind is BlockKind.ICC:
        return icc.is_canonical(block.data)
    if block.kind is BlockKind.EXIF:
        return exif.only_orientation(block.data)
    if block.kind is BlockKind.TIFF:
        return exif.only_structure(block.data)
    return False
