"""In-process `scrub` time per format, this tree against an earlier revision, alternating.

Usage: .venv/bin/python bench/formats.py [--before REV] [--rounds N]

Each round runs one worker process per tree (this working tree, then REV, default `main`,
extracted with `git archive` into a temporary folder that holds only code), A B A B ...; each
worker times `bot.scrub.scrub` over every sample set (best of 5 passes) and the best round
counts. Sample sets, made in memory: four 12 MP phone JPEGs (bench/photos.py), the same
picture as an uncompressed and an LZW TIFF; and the corpus files of each format folder when
../shared/corpus is there (read in place). Prints ms per file and MB/s for both trees and the
ratio (before / after: above 1 means faster now).
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
FOLDERS = ("jpeg", "tiff", "png", "webp", "gif", "heic")


def samples() -> dict[str, list[bytes]]:
    from photos import phone_jpeg
    from PIL import Image

    jpegs = [phone_jpeg(seed) for seed in range(4)]
    sets = {"phone jpeg 12 MP": jpegs}
    with Image.open(io.BytesIO(jpegs[0])) as image:
        for name, compression in (("raw", None), ("lzw", "tiff_lzw")):
            out = io.BytesIO()
            image.save(out, "TIFF", compression=compression)
            sets[f"tiff 12 MP {name}"] = [out.getvalue()]
    for folder in FOLDERS:
        files = sorted(CORPUS.glob(f"{folder}/*")) if CORPUS.is_dir() else []
        if files:
            sets[f"corpus {folder}"] = [path.read_bytes() for path in files if path.is_file()]
    return sets


def worker() -> int:
    from bot.errors import ScrubError
    from bot.scrub import scrub

    results = {}
    for name, files in samples().items():
        usable = []
        for data in files:
            try:
                scrub(data)
            except ScrubError:
                continue
            usable.append(data)
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for data in usable:
                scrub(data)
            best = min(best, time.perf_counter() - start)
        results[name] = (len(usable), sum(map(len, usable)), best)
    print(json.dumps(results))
    return 0


def run(tree: Path) -> dict[str, tuple[int, int, float]]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    command = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return {k: tuple(v) for k, v in json.loads(done.stdout).items()}  # type: ignore[misc]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds (default 3)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    best: dict[str, dict[str, tuple[int, int, float]]] = {"after": {}, "before": {}}
    with tempfile.TemporaryDirectory(prefix="scrubbot-bench-") as folder:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "bot"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        for _ in range(args.rounds):
            for label, tree in (("after", ROOT), ("before", Path(folder))):
                for name, result in run(tree).items():
                    if name not in best[label] or result[2] < best[label][name][2]:
                        best[label][name] = result
    print(f"scrub in process, best of {args.rounds} rounds x 5 passes; before = {args.before}")
    print(
        f"{'samples':<20} {'files':>5} {'before ms':>10} {'after ms':>9} "
        f"{'before MB/s':>11} {'after MB/s':>10} {'ratio':>6}"
    )
    for name, (count, size, seconds) in best["after"].items():
        old = best["before"].get(name)
        if old is None or not count or not old[0]:
            print(f"{name:<20} {count:>5} {'-':>10} {seconds / max(count, 1) * 1e3:>9.2f}")
            continue
        print(
            f"{name:<20} {count:>5} {old[2] / old[0] * 1e3:>10.2f} {seconds / count * 1e3:>9.2f} "
            f"{old[1] / old[2] / 1e6:>11.0f} {size / seconds / 1e6:>10.0f} "
            f"{(old[2] / old[0]) / (seconds / count):>6.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
