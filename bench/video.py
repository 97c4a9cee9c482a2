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
With --subtitles the clip also has a subtitle track with a position each second (as drones
write them), which scrubbot removes: its samples sit between the picture and sound chunks.
--folder puts the clip and the outputs in that folder (default: the system's temporary folder);
its file system is printed, since it decides the copy: on one that shares blocks between files
(XFS, btrfs) the kernel's copy_file_range shares the unchanged samples instead of copying them,
on ext4 or tmpfs every tool writes the whole gigabyte. The clip is synced to disk once it is made,
so no tool pays for writing it back.
Goal (issue 18): peak memory under 150 MB for a 1 GB video, at least 3x faster than both.
Usage: .venv/bin/python bench/video.py [--megabytes 1024] [--rounds 5] [--subtitles] [--folder D]
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


def make_clip(folder: Path, megabytes: int, subtitles: bool = False) -> Path:
    piece = folder / "piece.mp4"
    ffmpeg = str(shutil.which("ffmpeg"))
    track: list[str] = []
    if subtitles:
        srt = folder / "route.srt"
        srt.write_text("".join(_cue(second) for second in range(_PIECE_SECONDS)))
        track = ["-i", str(srt), "-map", "0:v", "-map", "1:a", "-map", "2:s", "-c:s", "mov_text"]
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
            *track,
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
            "-map",
            "0",
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


def _cue(second: int) -> str:
    lat, lon = 48.8584 + second / 1e4, 2.2945 + second / 1e4
    at = f"00:00:{second:02}"
    return f"{second + 1}\n{at},000 --> {at},900\nGPS ({lon:.4f}, {lat:.4f})\n\n"


def file_system(folder: Path) -> str:
    """The type of the file system `folder` is on (the longest mount point above it)."""
    best, kind = "", "unknown"
    with open("/proc/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            point = fields[1].replace("\\040", " ")
            inside = str(folder.resolve()).startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, kind = point, fields[2]
    return f"{kind} ({best})"


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
    parser.add_argument("--subtitles", action="store_true")
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory(prefix="scrubbot-video-bench-", dir=args.folder) as folder:
        print(f"folder on {file_system(Path(folder))}")
        made = time.perf_counter()
        big = make_clip(Path(folder), args.megabytes, args.subtitles)
        os.sync()
        size = big.stat().st_size
        tracks = "picture, sound, subtitles" if args.subtitles else "picture, sound"
        print(f"clip: {size / 1e6:.0f} MB ({tracks}) made in {time.perf_counter() - made:.1f} s")
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
