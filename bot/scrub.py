"""The scrubber: sniff the format from the bytes, list findings, strip, then verify (fail closed).

    scrub(data) -> Scrubbed      cleaned bytes + findings, or a ScrubError; never anything else
    inspect(data) -> Inspection  findings only, nothing written

Nothing here touches the disk or the network; callers run it off the event loop.
"""

import importlib
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from typing import TypeVar

from bot.errors import DamagedImage, NotClean, ScrubError, TooLarge, UnsupportedFormat
from bot.findings import Finding
from bot.formats.base import SNIFF_BYTES, Block, BlockKind, Format, Parsed

# The registry, in sniffing order: each module of bot.formats and its entries. A module is
# imported when a file may be in its format (start-up is most of a short `scrubbot clean`, so
# cleaning JPEGs never loads the HEIF or MP4 code); `FORMATS` imports them all.
_REGISTRY: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("jpeg", ("FORMAT",)),
    ("png", ("FORMAT",)),
    ("webp", ("FORMAT",)),
    ("gif", ("FORMAT",)),
    ("tiff", ("FORMAT",)),
    ("heif", ("FORMAT", "AVIF_FORMAT")),
    ("mp4", ("FORMAT", "MOV_FORMAT", "M4V_FORMAT", "THREEGP_FORMAT")),
)
# A hint only (the module's `accepts` decides): which module a file starting so is likely in.
_LIKELY = ((b"\xff\xd8", "jpeg"), (b"\x89PNG", "png"), (b"RIFF", "webp"), (b"GIF8", "gif"))
_ISO_MEDIA = ("heif", "mp4")  # a file with an 'ftyp' first (a video needs no photo module)


@cache
def _module_formats(module: str) -> tuple[Format, ...]:
    loaded = importlib.import_module(f"bot.formats.{module}")
    return tuple(getattr(loaded, entry) for entry in dict(_REGISTRY)[module])


@cache
def _formats() -> dict[str, Format]:
    return {fmt.name: fmt for module, _ in _REGISTRY for fmt in _module_formats(module)}


def __getattr__(name: str) -> dict[str, Format]:
    """`FORMATS`, the whole registry by name ({"jpeg": ..., "3gp": ...}), loaded on first use."""
    if name == "FORMATS":
        return _formats()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
        from bot.metadata.readers import collect

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
    return tuple(fmt.shown for fmt in _formats().values())


def sniff(data: bytes) -> Format:
    """The format of `data` from its first bytes (never from a name or a claimed MIME type).

    Each registered format says whether it accepts the head; otherwise the refusal names what
    the file is when we recognise it.
    """
    head = data[:SNIFF_BYTES]
    likely = [module for prefix, module in _LIKELY if head.startswith(prefix)]
    if head[4:8] == b"ftyp" and not head.startswith((b"II*\0", b"MM\0*")):  # no TIFF's either
        likely.extend(_ISO_MEDIA)
    for fmt in (fmt for module in likely for fmt in _module_formats(module)):
        if fmt.accepts(head):
            return fmt
    for fmt in _formats().values():
        if fmt.accepts(head):
            return fmt
    if head[4:8] == b"ftyp":
        from bot.formats import heif

        heif.sniff_brand(head, _formats()["heif"])  # raises, naming the kind of ISO media file
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
    verify(report.format, cleaned, (data, report.parsed))
    return Scrubbed(cleaned, report)


def verify(fmt: Format, cleaned: bytes, source: tuple[bytes, Parsed] | None = None) -> None:
    """Re-read our own output and refuse it unless it is clean and canonical.

    Clean: no block is left but colour profile and orientation. Canonical: stripping the output
    again gives the same bytes, so every structure that survived is exactly what `strip` writes
    from its parsed fields; a byte `strip` copied without understanding it would not be stable.
    Colour: every profile left is one `bot.formats.icc` wrote (`icc.is_canonical`).
    With `source` (the input and its parse), a format's `reparse` may prove parts of the output
    by comparing them with bytes its parse of the input already read, instead of reading them
    twice; the result is the same as parsing the output.
    """
    reparse = fmt.reparse
    try:
        if source is not None and reparse is not None:
            parsed = _guarded(lambda: reparse(cleaned, *source))
        else:
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
    from bot.formats import icc  # here: a video's check needs neither (nor their imports)
    from bot.metadata import exif

    if block.kind is BlockKind.ICC:
        return icc.is_canonical(block.data)
    if block.kind is BlockKind.EXIF:
        return exif.only_orientation(block.data)
    if block.kind is BlockKind.TIFF:
        return exif.only_structure(block.data)
    return False
