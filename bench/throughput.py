"""In-process throughput of bot.scrub on phone-sized JPEGs: MB/s of `scrub` and of `inspect`,
and of two parts of `scrub`: the format's `parse` and the `verify` of the cleaned output.

Usage: .venv/bin/python bench/throughput.py [--photos N] [--runs N]

Each figure is the best of --runs passes over the same photos (input bytes / seconds, 1 MB = 10^6
bytes); making the photos is not timed.
"""

import argparse
import sys
import time
from collections.abc import Callable

from photos import phone_jpeg

from bot.errors import ScrubError
from bot.memory import reuse_freed_buffers
from bot.scrub import inspect, scrub, sniff, verify


def best_seconds(step: Callable[[bytes], object], photos: list[bytes], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for photo in photos:
            step(photo)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=8, help="distinct photos (default 8)")
    parser.add_argument("--runs", type=int, default=5, help="passes; the best counts (default 5)")
    args = parser.parse_args()

    photos = [phone_jpeg(seed) for seed in range(args.photos)]
    reuse_freed_buffers()  # as `scrubbot clean` does
    total = sum(map(len, photos))
    try:
        cleaned = scrub(photos[0])
    except ScrubError as error:
        print(f"bot.scrub.scrub refuses the test JPEG: {error.message}", file=sys.stderr)
        return 1

    print(f"{len(photos)} JPEGs, 4032x3024, {total / len(photos) / 1e6:.2f} MB each on average;")
    print(f"cleaned: {len(cleaned.data) / 1e6:.2f} MB, {len(cleaned.findings)} findings")
    print(f"best of {args.runs} passes\n")
    print(f"{'step':<10} {'ms/photo':>9} {'MB/s':>8}")
    fmt = sniff(photos[0])
    outputs = {id(photo): scrub(photo).data for photo in photos}
    parses = {id(photo): fmt.parse(photo) for photo in photos}

    def verify_output(photo: bytes) -> None:  # the fail-closed re-read of scrub's own output
        verify(fmt, outputs[id(photo)], (photo, parses[id(photo)]))

    steps: tuple[tuple[str, Callable[[bytes], object]], ...] = (
        ("scrub", scrub),
        ("inspect", inspect),
        ("  parse", fmt.parse),
        ("  verify", verify_output),
    )
    for name, step in steps:
        seconds = best_seconds(step, photos, args.runs)
        print(f"{name:<10} {seconds / len(photos) * 1e3:>9.2f} {total / seconds / 1e6:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
