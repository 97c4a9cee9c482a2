"""One big video cleaned by whole processes, run alternately (A B C A B C ...): time and memory.

    scrubbot   .venv/bin/scrubbot clean BIG --output D/s.mp4
    ffmpeg     ffmpeg -v error -i BIG -map 0 -map_metadata -1 -c copy D/f.mp4   (a remux)
    exiftool   exiftool -q -all= -o D/e.mp4 BIG

The clip is made with ffmpeg in a temporary folder (removed at the end; nothing is kept): a
lossless H.264 + AAC piece of `testsrc2` (big fast), repeated with `-stream_loop` and `-c copy`
until the file is about `--megabytes` MB, with a title, a place and a date planted. Each round
runs every tool once into a fresh folder (the outputs are removed after each run) and prints
its wall time, CPU time and peak RSS (of that process and its children, from wait4); the round's
ratios are the other tool's time over scrubbot's, so "3.0" means scrubbot took a third of the
time; the verdict is the median of the rounds. The machine (cores, CPU, load) comes first.
Goal (issue 18): peak memory under 150 MB for a 1 GB video, at least 3x faster than both.
Usage: .venv/bin/python bench/video.py [--megabytes 1024] [--rounds 5]
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

from versus import machine

ROOT = Path(__file__).resolve().parents[1]
SCRUBBOT = ROOT / ".venv" / "bin" / "scrubbot"
GOAL_MB = 150
GOAL_RATIO = 3.0
_PIECE_SECONDS = 20  # about 41 MB at 1280x720, lossless


def make_clip(folder: Path, megabytes: int) -> Path:
    piece = folder / "piece.mp4"
    ffmpeg = str(shutil.which("ffmpeg"))
    subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-t",
            str(_PIECE_SECONDS),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-qp",
            "0",
            "-c:a",
            "aac",
            str(piece),
        ],
        check=True,
    )
    loops = max(1, round(megabytes * 1024 * 1024 / piece.stat().st_size))
    big = folder / "big.mp4"
    subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-stream_loop",
            str(loops - 1),
            "-i",
            str(piece),
            "-c",
            "copy",
            "-metadata",
            "title=bench title",
            "-metadata",
            "location=+48.8584+002.2945/",
            "-metadata",
            "creation_time=2024-05-06T07:08:09Z",
            "-movflags",
            "+faststart",
            str(big),
        ],
        check=True,
    )
    piece.unlink()
    return big


def contenders(big: Path, out: Path) -> dict[str, list[str]]:
    found = {"scrubbot": [str(SCRUBBOT), "clean", str(big), "--output", str(out / "s.mp4")]}
    if shutil.which("ffmpeg"):
        found["ffmpeg"] = [
            str(shutil.which("ffmpeg")),
            "-v",
            "error",
            "-i",
            str(big),
            "-map",
            "0",
            "-map_metadata",
            "-1",
            "-c",
            "copy",
            str(out / "f.mp4"),
        ]
    if shutil.which("exiftool"):
        found["exiftool"] = [
            str(shutil.which("exiftool")),
            "-q",
            "-all=",
            "-o",
            str(out / "e.mp4"),
            str(big),
        ]
    return found


def timed(command: list[str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds (user + system), peak RSS in bytes) of one whole process and
    its children; it must succeed."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"{command[0]} failed with exit status {child.returncode}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory(prefix="scrubbot-video-bench-") as folder:
        made = time.perf_counter()
        big = make_clip(Path(folder), args.megabytes)
        size = big.stat().st_size
        print(f"clip: {size / 1e6:.0f} MB made in {time.perf_counter() - made:.1f} s")
        times: dict[str, list[float]] = {}
        peaks: dict[str, int] = {}
        cpus: dict[str, list[float]] = {}
        ratios: dict[str, list[float]] = {}
        for round_ in range(1, args.rounds + 1):
            out = Path(folder) / "out"
            line = []
            this: dict[str, float] = {}
            for name, command in contenders(big, out).items():
                out.mkdir()
                seconds, cpu, peak = timed(command)
                shutil.rmtree(out)
                this[name] = seconds
                times.setdefault(name, []).append(seconds)
                peaks[name] = max(peaks.get(name, 0), peak)
                cpus.setdefault(name, []).append(cpu)
                line.append(f"{name} {seconds:.2f} s (cpu {cpu:.2f}) {peak / 2**20:.0f} MB")
            for name, seconds in this.items():
                if name != "scrubbot":
                    ratios.setdefault(name, []).append(seconds / this["scrubbot"])
            print(f"round {round_}: " + ", ".join(line))
        print("median wall time, median CPU time, peak RSS:")
        for name, values in times.items():
            wall, cpu = statistics.median(values), statistics.median(cpus[name])
            print(f"  {name:9} {wall:7.2f} s  cpu {cpu:5.2f} s  {peaks[name] / 2**20:6.0f} MB")
        missed = peaks["scrubbot"] / 2**20 >= GOAL_MB
        for name, values in ratios.items():
            ratio = statistics.median(values)
            missed |= ratio < GOAL_RATIO
            each = ", ".join(f"{r:.2f}" for r in values)
            print(f"  {name}/scrubbot: {ratio:.2f}x (rounds: {each})")
        verdict = "missed" if missed else "met"
        print(f"goal (under {GOAL_MB} MB, at least {GOAL_RATIO}x faster): {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
