"""In-process scrub time of phone-sized PNG, WebP and GIF files, and what it would cost to look
inside their compressed picture data (issue 12, point 5).

Usage: .venv/bin/python bench/lossless.py [--runs N] [--costs]

The pictures are 4032x3024 (12 MP) gradient plus noise, made in memory (not timed): a PNG
(RGB, Pillow's default compression), an indexed PNG (256 colours), a lossy WebP (quality 85), a
lossless WebP, and a GIF (256 colours). Each figure is the best of --runs passes. With --costs
it also times the decoding each point-5 check needs: inflating a PNG's IDAT stream to its end,
counting the palette entries an indexed PNG uses, decoding a GIF's LZW data and a WebP's
bitstream (libwebp through Pillow).
"""

import argparse
import io
import random
import sys
import zlib

from photos import HEIGHT, WIDTH, _pixels
from PIL import Image
from timing import best_ms

from bot.formats import png
from bot.scrub import scrub


def pictures() -> dict[str, bytes]:
    image = _pixels(random.Random(1))
    out = {}
    for name, fmt, options in (
        ("png", "PNG", {}),
        ("png-indexed", "PNG", {}),
        ("webp-lossy", "WEBP", {"quality": 85}),
        ("webp-lossless", "WEBP", {"lossless": True, "method": 0}),
        ("gif", "GIF", {}),
    ):
        buffer = io.BytesIO()
        indexed = fmt == "GIF" or name.endswith("indexed")
        source = image.quantize(256) if indexed else image
        source.save(buffer, fmt, **options)
        out[name] = buffer.getvalue()
    return out


def idat(data: bytes) -> bytes:
    return b"".join(c.body(data) for c in png._chunks(data) if c.type == b"IDAT")


def inflate_to_end(stream: bytes) -> bytes:
    """The bytes after the zlib stream's end (what a check would have to find)."""
    inflater = zlib.decompressobj()
    rest = stream
    while rest and not inflater.eof:
        inflater.decompress(rest, 1 << 20)
        rest = inflater.unconsumed_tail
    return inflater.unused_data


def palette_use(data: bytes) -> int:
    """How many palette entries the pixels use: decode, then count (what pruning would need)."""
    with Image.open(io.BytesIO(data)) as image:
        return len(set(image.histogram()) - {0})


def decode(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="passes; the best counts (default 5)")
    parser.add_argument("--costs", action="store_true", help="also time the point-5 decoding")
    args = parser.parse_args()
    files = pictures()
    print(f"{WIDTH}x{HEIGHT}, best of {args.runs} passes\n")
    print(f"{'file':<15} {'MB':>6} {'scrub ms':>9}")
    for name, data in files.items():
        ms = best_ms(lambda data=data: scrub(data), args.runs)  # type: ignore[misc]
        print(f"{name:<15} {len(data) / 1e6:>6.2f} {ms:>9.2f}")
    if not args.costs:
        return 0
    stream = idat(files["png"])
    print("\npoint 5: decoding needed to look inside the picture data")
    for what, step in (
        ("png: inflate IDAT to its end", lambda: inflate_to_end(stream)),
        ("png: full decode", lambda: decode(files["png"])),
        ("png indexed: palette use", lambda: palette_use(files["png-indexed"])),
        ("gif: LZW decode", lambda: decode(files["gif"])),
        ("webp lossy: VP8 decode", lambda: decode(files["webp-lossy"])),
        ("webp lossless: VP8L decode", lambda: decode(files["webp-lossless"])),
    ):
        print(f"{what:<32} {best_ms(step, max(1, args.runs // 2)):>9.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
