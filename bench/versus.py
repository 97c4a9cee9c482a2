"""Wall time of whole processes cleaning the same phone JPEGs, run alternately (A B A B ...).

    scrubbot   .venv/bin/scrubbot clean FILES --out-dir D -q
    exiftool   ExifTool's lossless recipe, one batch process:
               exiftool -all= -tagsfromfile @ -Orientation -icc_profile -o D/ FILES
    mat2       mat2 --inplace on copies of FILES (only when `mat2` is on PATH; it re-encodes)
    pillow     one python process re-saving each file: Image.open(f).save(out, quality=95)
               (decodes and re-encodes, so it is lossy: the naive baseline)

Each round runs every contender once, back to back, into fresh folders, and the round's ratios
(contender's time / scrubbot's time, so "2.5" means scrubbot took 1/2.5 of the time) are
printed; the verdict is the median of the rounds' ratios, which keeps this machine's drift
between rounds out of the comparison. Start-up is included: that is what a user waits for.
Each tool's CPU time (user + system, its child processes included) is printed too: it tells
how the ratio moves when other jobs take cores away. `startup` is `scrubbot --version`, which
loads what `clean` loads and cleans nothing. The machine (nproc, CPU model, load) comes first.
Goal (issue 16): scrubbot at least 2.5x faster than ExifTool, median of 9 rounds.
Usage: .venv/bin/python bench/versus.py [--photos N] [--rounds N] [--no-pillow]
"""

import argparse
import os
import platform
import resource
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
GOAL = 2.5  # times faster than ExifTool

PILLOW_LOOP = """
import sys
from pathlib import Path
from PIL import Image
out = Path(sys.argv[1])
for name in sys.argv[2:]:
    with Image.open(name) as image:
        image.save(out / Path(name).name, quality=95)
"""


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    cores = os.cpu_count()
    return f"{platform.node()}: nproc {cores}, {model}, {platform.system()}; load {load}"


def commands(files: list[Path], out: Path, use_mat2: bool, pillow: bool) -> dict[str, list[str]]:
    """The command line of each contender, writing into `out/<name>/`."""
    names = [str(f) for f in files]
    recipe = ["-all=", "-tagsfromfile", "@", "-Orientation", "-icc_profile"]
    exiftool = shutil.which("exiftool") or "exiftool"
    found = {
        "scrubbot": [str(SCRUBBOT), "clean", *names, "--out-dir", str(out / "scrubbot"), "-q"],
        "exiftool": [exiftool, "-q", *recipe, "-o", f"{out / 'exiftool'}/", *names],
    }
    if use_mat2:
        copies = [str(out / "mat2" / f.name) for f in files]
        found["mat2"] = [shutil.which("mat2") or "mat2", "--inplace", *copies]
    if pillow:
        found["pillow"] = [sys.executable, "-c", PILLOW_LOOP, str(out / "pillow"), *names]
    return found


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(name: str, command: list[str], out_dir: Path, files: list[Path]) -> tuple[float, float]:
    """Wall and CPU seconds for `command`, which must succeed and leave one file per photo in
    `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if name == "mat2":  # mat2 cleans in place: give it its own copies (not timed)
        for f in files:
            shutil.copyfile(f, out_dir / f.name)
    os.sync()  # flush what the previous tool wrote, so its writeback does not slow this one
    cpu = cpu_seconds()
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    written = len(list(out_dir.iterdir()))
    if result.returncode != 0 or written != len(files):
        sys.exit(
            f"{name} failed (exit {result.returncode}, {written}/{len(files)}"
            f" files written):\n{result.stderr.strip()}"
        )
    return seconds, cpu


def startup() -> float:
    start = time.perf_counter()
    subprocess.run([str(SCRUBBOT), "--version"], capture_output=True, check=True)
    return time.perf_counter() - start


def missing_tools() -> str | None:
    if not SCRUBBOT.is_file():
        return f"{SCRUBBOT} is missing: `make bench` installs it"
    if shutil.which("exiftool") is None:
        return "exiftool is missing (Debian: apt-get install libimage-exiftool-perl)"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=16, help="JPEGs per run (default 16)")
    parser.add_argument("--rounds", type=int, default=9, help="rounds (default 9)")
    parser.add_argument("--no-pillow", action="store_true", help="leave out the slow re-save")
    args = parser.parse_args()
    problem = missing_tools()
    if problem:
        print(f"versus.py: {problem}", file=sys.stderr)
        return 1
    use_mat2 = shutil.which("mat2") is not None
    print(machine())

    with tempfile.TemporaryDirectory(prefix="scrubbot-bench-") as tmp:
        work = Path(tmp)
        files = [work / f"photo{seed:02}.jpg" for seed in range(args.photos)]
        for seed, path in enumerate(files):
            path.write_bytes(phone_jpeg(seed))
        size = sum(f.stat().st_size for f in files) / 1e6
        print(f"{len(files)} JPEGs, 4032x3024, {size:.1f} MB in all; {args.rounds} rounds")
        if not use_mat2:
            print("mat2 is not on PATH: left out")

        seconds: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        starts: list[float] = []
        for round_ in range(args.rounds):
            out = work / f"round{round_}"
            starts.append(startup())
            for name, command in commands(files, out, use_mat2, not args.no_pillow).items():
                wall, used = timed(name, command, out / name, files)
                seconds.setdefault(name, []).append(wall)
                cpu.setdefault(name, []).append(used)
            shutil.rmtree(out)
            ratios = "  ".join(
                f"{name} {times[-1] / seconds['scrubbot'][-1]:.2f}x"
                for name, times in seconds.items()
                if name != "scrubbot"
            )
            print(f"round {round_ + 1}: scrubbot {seconds['scrubbot'][-1]:.3f} s  {ratios}")

    print(
        f"\n{'tool':<10} {'median s':>8} {'min-max s':>13} {'CPU s (range)':>20}"
        "  median ratio (range) to scrubbot"
    )
    for name, times in seconds.items():
        ratios = [t / s for t, s in zip(times, seconds["scrubbot"], strict=True)]
        spread = f"{min(times):.3f}-{max(times):.3f}"
        used = cpu[name]
        cpus = f"{statistics.median(used):.3f} ({min(used):.2f}-{max(used):.2f})"
        ratio = f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
        print(f"{name:<10} {statistics.median(times):>8.3f} {spread:>13} {cpus:>20}  {ratio}")
    print(
        f"startup    {statistics.median(starts):>8.3f} {min(starts):.3f}-{max(starts):.3f}"
        "  (scrubbot --version)"
    )
    paired = [e / s for e, s in zip(seconds["exiftool"], seconds["scrubbot"], strict=True)]
    verdict = "met" if statistics.median(paired) >= GOAL else "NOT met"
    print(
        f"\nscrubbot is {statistics.median(paired):.2f}x faster than ExifTool (median of "
        f"{len(paired)} rounds; goal >= {GOAL}x: {verdict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
