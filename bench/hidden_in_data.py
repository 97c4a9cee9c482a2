"""What finding bytes hidden inside compressed picture data would cost (issue 12, point 5).

Usage: .venv/bin/python bench/hidden_in_data.py

Bytes after a JPEG scan's last MCU (or a restart interval's), after a deflate stream's end or an
LZW end code are found only by decoding the data. This times the cheapest decoders at hand on a
12 MP phone-sized photo (bench/photos.py): Pillow's full JPEG decode, its 1/8-scale draft decode
(entropy decoding without the full IDCT), zlib inflating a 12 MP RGB deflate stream to its end,
and Pillow decoding an LZW TIFF. Best of several runs, in milliseconds.
"""

import io
import sys
import zlib

from photos import phone_jpeg
from PIL import Image
from timing import best_ms


def main() -> int:
    photo = phone_jpeg(1)

    def full() -> None:
        with Image.open(io.BytesIO(photo)) as image:
            image.load()

    def draft() -> None:
        with Image.open(io.BytesIO(photo)) as image:
            image.draft("RGB", (image.width // 8, image.height // 8))
            image.load()

    print(f"12 MP JPEG, {len(photo) / 1e6:.2f} MB")
    print(f"  Pillow full decode          {best_ms(full, 7):7.1f} ms")
    print(f"  Pillow 1/8 draft decode     {best_ms(draft, 7):7.1f} ms")
    with Image.open(io.BytesIO(photo)) as image:
        image.load()
        pixels = image.tobytes()
        lzw = io.BytesIO()
        image.save(lzw, "TIFF", compression="tiff_lzw")
    deflated = zlib.compress(pixels, 6)

    def inflate() -> None:
        zlib.decompressobj().decompress(deflated)

    def lzw_decode() -> None:
        with Image.open(io.BytesIO(lzw.getvalue())) as image:
            image.load()

    print(f"12 MP RGB deflate, {len(deflated) / 1e6:.1f} MB")
    print(f"  zlib inflate to its end     {best_ms(inflate, 3):7.1f} ms")
    print(f"12 MP RGB LZW TIFF, {lzw.tell() / 1e6:.1f} MB")
    print(f"  Pillow decode               {best_ms(lzw_decode, 3):7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
