"""`scrubbot run` on a fresh clone: how to set the bot up, and what it does to a sample photo.

"Nothing configured" means no SCRUBBOT_ variable nor one of a chat network's (TELEGRAM_,
MATRIX_, as the registry lists them) has a value and there is no `.env` in the working folder.
Then `scrubbot run` prints the setup steps, makes a phone-like photo in memory (place, Facebook
code, phone and serial number, capture time, thumbnail), cleans it with the same code the bot
uses and prints the reply a parent would get; it writes no file and exits 0. Anything
configured, even wrongly, is not a first run: a missing or placeholder setting stops `scrubbot
run` with exit status 2 and names the variable.
"""

import io
import struct
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.scrub import inspect, scrub
from bot.summary import render

if TYPE_CHECKING:  # `scrubbot clean` imports this module; the registry loads only for `run`
    from bot.network import Network

WIDTH = 96

# Made up, but shaped like what a phone and Facebook write. The place is Kreuzberg, Berlin.
SAMPLE_FBMD = "FBMD0100096e0300002e2d00009a6f0000b87a0000"
SAMPLE_SERIAL = "SN4711XYZ"
SAMPLE_POSITION = (52.4986, 13.4031)
SAMPLE_TIME = "2025:05:02 08:13:27"

SETUP = "scrubbot is not set up yet: no chat network is configured and there is no .env file.\n\n"


def _registry(networks: "Sequence[Network] | None") -> "Sequence[Network]":
    from bot.config import registry

    return registry() if networks is None else networks


def nothing_configured(
    env: Mapping[str, str],
    dotenv: Path = Path(".env"),
    networks: "Sequence[Network] | None" = None,
) -> bool:
    """True on a fresh clone: no setting has a value and there is no `.env` file."""
    prefixes = ("SCRUBBOT_", *(network.prefix for network in _registry(networks)))
    settings = [v for k, v in env.items() if k.startswith(prefixes) and v.strip()]
    return not settings and not dotenv.exists()


def introduce(
    out: TextIO,
    language: str,
    command: str = "scrubbot",
    networks: "Sequence[Network] | None" = None,
) -> None:
    """Print the setup steps, then clean a sample photo in memory and print what it held;
    `command` is how the user can call scrubbot (`.venv/bin/scrubbot` from a checkout)."""
    out.write(SETUP + "".join(network.setup for network in _registry(networks)))
    photo = sample_photo()
    cleaned = scrub(photo)
    left = inspect(cleaned.data).findings
    out.write(
        "\nMeanwhile, here is what it does: a phone photo made in memory just now "
        f"({len(photo):,} bytes),\ncleaned. A parent sending it would get this reply:\n\n"
    )
    for line in render(cleaned.findings, language).text.splitlines():
        wrapped = textwrap.fill(line, WIDTH, initial_indent="  ", subsequent_indent="    ")
        out.write(f"{wrapped}\n")
    verdict = "nothing is left" if not left else f"{len(left)} findings are left (a bug!)"
    out.write(
        f"\nThe cleaned copy ({len(cleaned.data):,} bytes) is the same picture, pixel for pixel; "
        f"read again,\n{verdict}. No file was written. Try it on your own photos:\n"
        f"  {command} inspect PHOTO\n  {command} clean PHOTO --output CLEANED\n"
    )


def sample_photo() -> bytes:
    """A small JPEG carrying what a phone photo shared from Facebook typically carries."""
    import piexif  # only the first run needs them
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (320, 240), (135, 190, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 170, 320, 240), fill=(90, 160, 80))  # a meadow
    draw.ellipse((230, 30, 290, 90), fill=(250, 215, 90))  # the sun
    thumbnail = io.BytesIO()
    image.resize((160, 120)).save(thumbnail, "JPEG", quality=70)
    latitude, longitude = SAMPLE_POSITION
    exif = piexif.dump(
        {
            "0th": {
                piexif.ImageIFD.Make: b"Apple",
                piexif.ImageIFD.Model: b"iPhone 14 Pro",
                piexif.ImageIFD.Software: b"17.4.1",
            },
            "Exif": {
                piexif.ExifIFD.DateTimeOriginal: SAMPLE_TIME.encode(),
                piexif.ExifIFD.BodySerialNumber: SAMPLE_SERIAL.encode(),
            },
            "GPS": {
                piexif.GPSIFD.GPSLatitudeRef: b"N",
                piexif.GPSIFD.GPSLatitude: _degrees(latitude),
                piexif.GPSIFD.GPSLongitudeRef: b"E",
                piexif.GPSIFD.GPSLongitude: _degrees(longitude),
            },
            "1st": {piexif.ImageIFD.JPEGInterchangeFormat: 0},
            "thumbnail": thumbnail.getvalue(),
        }
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, exif=exif)
    data = out.getvalue()
    return data[:2] + _iptc_segment(SAMPLE_FBMD) + data[2:]  # APP13 right after SOI


def _degrees(value: float) -> tuple[tuple[int, int], ...]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60 * 100)
    return ((degrees, 1), (minutes, 1), (seconds, 100))


def _iptc_segment(special_instructions: str) -> bytes:
    """An APP13 Photoshop segment with one IPTC record, 2:40 Special Instructions, where
    Facebook writes its FBMD code."""
    value = special_instructions.encode()
    record = b"\x1c\x02\x28" + struct.pack(">H", len(value)) + value
    resource = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(record)) + record
    resource += b"\x00" * (len(record) % 2)  # resource data is padded to an even length
    payload = b"Photoshop 3.0\x00" + resource
    return b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload
