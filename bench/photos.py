"""Phone-sized test JPEGs made in memory, carrying what a phone and a platform write into a photo.

4032x3024 pixels (12 MP) of gradient plus noise at quality 90, so the file is 3-5 MB like a real
phone photo, with an EXIF block (GPS, time, Make/Model, BodySerialNumber, Orientation and a
thumbnail), an XMP packet, an IPTC block with an FBMD-like code, and a comment.
"""

import io
import random
import struct

import piexif
from PIL import Image

WIDTH, HEIGHT = 4032, 3024
# Share of noise in each pixel; tuned so quality 90 lands at 3-5 MB like a phone photo.
NOISE = 0.13


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _pixels(rng: random.Random) -> Image.Image:
    gradient = Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").rotate(90).resize((WIDTH, HEIGHT)),
            Image.linear_gradient("L").resize((WIDTH, HEIGHT)),
            Image.radial_gradient("L").resize((WIDTH, HEIGHT)),
        ),
    )
    noise = Image.frombytes("RGB", (WIDTH, HEIGHT), rng.randbytes(WIDTH * HEIGHT * 3))
    return Image.blend(gradient, noise, NOISE)


def _rational(value: float) -> tuple[int, int]:
    return round(value * 10_000), 10_000


def _exif(rng: random.Random) -> bytes:
    """The APP1 payload, "Exif\\0\\0" included (piexif.dump adds it)."""
    thumbnail = io.BytesIO()
    _pixels(rng).resize((160, 120)).save(thumbnail, "JPEG", quality=80)
    lat, lon = rng.uniform(47.3, 54.9), rng.uniform(5.9, 15.0)
    taken = f"2024:{rng.randint(1, 12):02}:{rng.randint(1, 28):02} 16:{rng.randint(0, 59):02}:07"
    return bytes(
        piexif.dump(
            {
                "0th": {
                    piexif.ImageIFD.Make: b"Google",
                    piexif.ImageIFD.Model: b"Pixel 8 Pro",
                    piexif.ImageIFD.Orientation: 1,
                    piexif.ImageIFD.DateTime: taken.encode(),
                },
                "Exif": {
                    piexif.ExifIFD.DateTimeOriginal: taken.encode(),
                    piexif.ExifIFD.BodySerialNumber: f"{rng.getrandbits(48):012X}".encode(),
                },
                "GPS": {
                    piexif.GPSIFD.GPSLatitudeRef: b"N",
                    piexif.GPSIFD.GPSLatitude: (_rational(lat), (0, 1), (0, 1)),
                    piexif.GPSIFD.GPSLongitudeRef: b"E",
                    piexif.GPSIFD.GPSLongitude: (_rational(lon), (0, 1), (0, 1)),
                },
                "1st": {piexif.ImageIFD.Compression: 6},
                "thumbnail": thumbnail.getvalue(),
            }
        )
    )


def _xmp(rng: random.Random) -> bytes:
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
        ' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/">'
        f"<xmpMM:DocumentID>{rng.getrandbits(128):032x}</xmpMM:DocumentID>"
        "<dc:creator><rdf:Seq><rdf:li>Anna Example</rdf:li></rdf:Seq></dc:creator>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    return b"http://ns.adobe.com/xap/1.0/\0" + packet.encode()


def _iptc(rng: random.Random) -> bytes:
    """Photoshop IRB holding IPTC Special Instructions with an FBMD-like tracking code."""
    code = b"FBMD" + f"{rng.getrandbits(376):094x}".encode()
    record = b"\x1c\x02\x28" + struct.pack(">H", len(code)) + code
    record += b"\0" * (len(record) % 2)
    resource = b"8BIM\x04\x04\0\0" + struct.pack(">I", len(record)) + record
    return b"Photoshop 3.0\0" + resource


def phone_jpeg(seed: int) -> bytes:
    """A 12 MP JPEG with the metadata a phone and a platform leave in it; same seed, same bytes."""
    rng = random.Random(seed)
    out = io.BytesIO()
    _pixels(rng).save(out, "JPEG", quality=90)
    plain = out.getvalue()
    metadata = (
        _segment(0xE1, _exif(rng))
        + _segment(0xE1, _xmp(rng))
        + _segment(0xED, _iptc(rng))
        + _segment(0xFE, b"Shared from the family album")
    )
    return plain[:2] + metadata + plain[2:]  # right after SOI
