"""How fast this machine reads and writes one phone photo, by each way the CLI could do it.

Usage: .venv/bin/python bench/disk.py [--rounds 7] [--files 16]

Reads (from the page cache) a 3.7 MB phone JPEG into something the format parsers can take:
    os.read     one read of exactly the file's size into a new bytes object (what clean does)
    readinto    into a bytearray allocated once and reused
    mmap        map the file, then bytes(map) (the parsers need bytes: a copy either way)
Writes it as a new file:
    write       one write() of the whole cleaned buffer (what clean does)
    writev      os.writev of the photo as 3 parts (new header, picture data, end)
    copy_range  the small header written, the picture data copied by the kernel from the input
                (os.copy_file_range), which skips the copy from user memory
    sendfile    the same with os.sendfile
Each way runs --files times per round, the ways in turn, into fresh files (removed and synced
between rounds); printed is the median and range over the rounds of ms per photo.
"""

import argparse
import mmap
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from photos import phone_jpeg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--files", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scrubbot-io-") as tmp:
        folder = Path(tmp)
        source = folder / "photo.jpg"
        data = phone_jpeg(0)
        source.write_bytes(data)
        size = len(data)
        head, body, tail = data[:4096], data[4096:-2], data[-2:]
        reusable = bytearray(size)

        def read_os(_: int) -> None:
            fd = os.open(source, os.O_RDONLY)
            try:
                os.read(fd, size)
            finally:
                os.close(fd)

        def read_into(_: int) -> None:
            with open(source, "rb", buffering=0) as handle:
                handle.readinto(reusable)

        def read_mmap(_: int) -> None:
            with open(source, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=1) as m:
                bytes(m)

        def create(n: int) -> int:
            return os.open(folder / f"out{n}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)

        def write(n: int) -> None:
            fd = create(n)
            os.write(fd, data)
            os.close(fd)

        def writev(n: int) -> None:
            fd = create(n)
            os.writev(fd, [head, body, tail])
            os.close(fd)

        def kernel_copy(copy: Callable[[int, int, int, int], int]) -> Callable[[int], None]:
            def run(n: int) -> None:
                fd, src = create(n), os.open(source, os.O_RDONLY)
                os.write(fd, head)
                offset, left = len(head), len(body)
                while left:
                    done = copy(src, fd, offset, left)
                    offset, left = offset + done, left - done
                os.write(fd, tail)
                os.close(src)
                os.close(fd)

            return run

        ways: dict[str, Callable[[int], None]] = {
            "os.read": read_os,
            "readinto": read_into,
            "mmap": read_mmap,
            "write": write,
            "writev": writev,
            "copy_range": kernel_copy(lambda s, d, o, n: os.copy_file_range(s, d, n, o, o)),
            "sendfile": kernel_copy(lambda s, d, o, n: os.sendfile(d, s, o, n)),
        }
        times: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.rounds):
            for name, way in ways.items():
                for old in folder.glob("out*"):
                    old.unlink()
                os.sync()
                start = time.perf_counter()
                for n in range(args.files):
                    way(n)
                times[name].append((time.perf_counter() - start) / args.files * 1e3)
    print(f"nproc {os.cpu_count()}; one {size / 1e6:.1f} MB photo; {args.rounds} rounds\n")
    print(f"{'way':<12} {'ms/photo':>9} {'range':>13} {'GB/s':>6}")
    for name, values in times.items():
        median = statistics.median(values)
        spread = f"{min(values):.2f}-{max(values):.2f}"
        print(f"{name:<12} {median:>9.2f} {spread:>13} {size / median / 1e6:>6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
