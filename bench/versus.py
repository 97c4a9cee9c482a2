"""Wall time of three ways to clean 16 phone JPEGs, each a whole process with its start-up.

    scrubbot   .venv/bin/scrubbot clean FILES --out-dir D1
    exiftool   ExifTool's lossless recipe, one batch process:
               exiftool -all= -tagsfromfile @ -Orientation -icc_profile -o D2/ FILES
    pillow     one python process re-saving each file: Image.open(f).save(out, quality=95)
               (decodes and re-encodes, so it is lossy; shown as the naive baseline)

The three run in turn, --runs times (fresh output directories each time); the median counts.
Goal of the scrubber core issue: scrubbot at most 0.5x ExifTool's wall time.
Usage: .venv/bin/python bench/versus.py [--photos N] [--runs N]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from photos import phone_jpeg

ROOT = Path(__file__).resolve().parents[1]
SCRUBBOT = ROOT / ".venv" / "bin" / "scrubbot"
GOAL = 0.5

PILLOW_LOOP = """
import sys
from pathlib import Path
from PIL import Image
out = Path(sys.argv[1])
for name in sys.argv[2:]:
    with Image.open(name) as image:
        image.save(out / Path(name).name, quality=95)
"""


def commands(files: list[Path], exiftool: str, out: Path) -> dict[str, list[str]]:
    """The command line of each contender, writing into its own directory under `out`."""
    names = [str(f) for f in files]
    recipe = ["-all=", "-tagsfromfile", "@", "-Orientation", "-icc_profile"]
    return {
        "scrubbot": [str(SCRUBBOT), "clean", *names, "--out-dir", str(out / "scrubbot")],
        "exiftool": [exiftool, "-q", *recipe, "-o", f"{out / 'exiftool'}/", *names],
        "pillow": [sys.executable, "-c", PILLOW_LOOP, str(out / "pillow"), *names],
    }


def timed(command: list[str], out_dir: Path, expected: int) -> float:
    """Seconds for `command`, which must succeed and write `expected` files into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    os.sync()  # flush what the previous tool wrote, so its disk writes do not slow this one
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    written = len(list(out_dir.iterdir()))
    if result.returncode != 0 or written != expected:
        sys.exit(
            f"{Path(command[0]).name} failed (exit {result.returncode}, {written}/{expected}"
            f" files written):\n{result.stderr.strip()}"
        )
    return seconds


def missing_tools() -> str | None:
    if not (ROOT / "bot" / "cli.py").is_file():
        return "the scrubbot CLI (bot/cli.py) does not exist yet"
    if not SCRUBBOT.is_file():
        return f"{SCRUBBOT} is missing: `make bench` installs it"
    if shutil.which("exiftool") is None:
        return "exiftool is missing (Debian: apt-get install libimage-exiftool-perl)"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=16, help="JPEGs per run (default 16)")
    parser.add_argument("--runs", type=int, default=5, help="runs; the median counts (default 5)")
    args = parser.parse_args()
    problem = missing_tools()
    if problem:
        print(f"versus.py: {problem}", file=sys.stderr)
        return 1
    exiftool = shutil.which("exiftool") or "exiftool"

    with tempfile.TemporaryDirectory(prefix="scrubbot-bench-") as tmp:
        work = Path(tmp)
        files = [work / f"photo{seed:02}.jpg" for seed in range(args.photos)]
        for seed, path in enumerate(files):
            path.write_bytes(phone_jpeg(seed))
        size = sum(f.stat().st_size for f in files) / 1e6
        print(f"{len(files)} JPEGs, 4032x3024, {size:.1f} MB in all; median of {args.runs} runs")

        seconds: dict[str, list[float]] = {}
        for run in range(args.runs):
            out = work / f"run{run}"
            for name, command in commands(files, exiftool, out).items():
                seconds.setdefault(name, []).append(timed(command, out / name, len(files)))

    median = {name: statistics.median(times) for name, times in seconds.items()}
    print(f"\n{'tool':<10} {'median s':>8}  runs")
    for name, value in median.items():
        runs = " ".join(f"{t:.2f}" for t in seconds[name])
        print(f"{name:<10} {value:>8.2f}  {runs}")
    # This machine's speed drifts between runs, so each run's tools are compared with each other
    # (they ran back to back on the same files) and the median of those ratios is the verdict.
    paired = [s / e for s, e in zip(seconds["scrubbot"], seconds["exiftool"], strict=True)]
    to_exiftool = statistics.median(paired)
    to_pillow = median["scrubbot"] / median["pillow"]
    verdict = "met" if to_exiftool <= GOAL else "NOT met"
    print(f"\nscrubbot/exiftool per run: {' '.join(f'{r:.2f}' for r in paired)}")
    print(f"scrubbot/exiftool {to_exiftool:.2f}x, median of runs (goal <= {GOAL}x: {verdict})")
    print(f"scrubbot/pillow   {to_pillow:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
