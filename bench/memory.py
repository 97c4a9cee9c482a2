"""Peak memory of `scrubbot clean -r FOLDER -d OUT` over a folder of phone photos.

Usage: .venv/bin/python bench/memory.py [--photos 200]

The folder holds --photos copies of 16 distinct phone JPEGs (bench/photos.py; 3.7 MB each).
While `clean` runs, the resident memory (VmRSS) of the scrubbot process and of each worker it
forked is sampled every 2 ms; printed are the peak of their sum (an upper bound: pages the
workers share with the parent after fork count twice), each process's own peak (VmHWM, read
as it ends) and the wall time. Goal (issue 16): under 150 MB.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from photos import phone_jpeg

ROOT = Path(__file__).resolve().parents[1]
SCRUBBOT = ROOT / ".venv" / "bin" / "scrubbot"
GOAL_MB = 150
DISTINCT = 16


def status(pid: int, field: str) -> int:
    """A VmRSS/VmHWM-style field of /proc/PID/status in kB; 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200, help="photos in the folder")
    args = parser.parse_args()
    if not SCRUBBOT.is_file():
        print(f"memory.py: {SCRUBBOT} is missing: `make bench` installs it", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="scrubbot-memory-") as tmp:
        folder, out = Path(tmp) / "photos", Path(tmp) / "out"
        folder.mkdir()
        out.mkdir()
        distinct = [phone_jpeg(seed) for seed in range(min(DISTINCT, args.photos))]
        for n in range(args.photos):
            (folder / f"IMG_{n:04}.jpg").write_bytes(distinct[n % len(distinct)])
        size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        print(f"{args.photos} phone JPEGs, {size:.0f} MB in all")

        start = time.perf_counter()
        process = subprocess.Popen([str(SCRUBBOT), "clean", "-r", str(folder), "-d", str(out)])
        peak_sum = 0
        own_peaks: dict[int, int] = {}
        while process.poll() is None:
            pids = [process.pid, *children(process.pid)]
            rss = [status(pid, "VmRSS") for pid in pids]
            peak_sum = max(peak_sum, sum(rss))
            for pid in pids:
                own_peaks[pid] = max(own_peaks.get(pid, 0), status(pid, "VmHWM"))
            time.sleep(0.002)
        seconds = time.perf_counter() - start
        written = len(list(out.rglob("*.jpg")))
        shutil.rmtree(out)
    if process.returncode != 0 or written != args.photos:
        print(f"clean failed: exit {process.returncode}, {written} written", file=sys.stderr)
        return 1
    peaks = ", ".join(f"{kb / 1024:.0f}" for kb in own_peaks.values())
    verdict = "met" if peak_sum / 1024 < GOAL_MB else "NOT met"
    print(f"wall {seconds:.2f} s; processes: {len(own_peaks)} (parent first)")
    print(f"peak RSS of each process (VmHWM, MB): {peaks}")
    print(f"peak of the summed RSS: {peak_sum / 1024:.0f} MB (goal < {GOAL_MB} MB: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
