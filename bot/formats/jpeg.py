"""jpeg: placeholder until its scrubber lands."""

from bot.errors import UnsupportedFormat
from bot.formats.base import Format, Parsed


def parse(data: bytes) -> Parsed:
    raise UnsupportedFormat("This format")


def strip(data: bytes, parsed: Parsed) -> bytes:
    raise UnsupportedFormat("This format")


FORMAT = Format("jpeg", "image/jpeg", "jpg", parse, strip)
