"""A burst through the real `scrubbot run`: 200 photos of mixed sizes (up to ~20 MB) from 50 users
at once, over the fake Bot API on 127.0.0.1. Printed figures, not a timed test.

Usage: .venv/bin/python bench/burst.py [--users 50] [--per-user 4]

Checks that every photo is answered exactly once (one sendDocument per photo per user, each with
nothing left to find), and prints the burst's wall time, the bot process's peak RSS (VmHWM, and
the largest VmRSS seen while polling every 20 ms) and its event-loop lag (p50/p99 of how late a
50 ms sleep wakes up, measured inside the bot with SCRUBBOT_LAG_PROBE=1). Goals: RSS under
400 MB, lag p99 under 100 ms.
"""

import argparse
import asyncio
import io
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from photos import phone_jpeg
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.scrub import inspect  # noqa: E402
from tests.fake_telegram import FakeTelegram  # noqa: E402
from tests.test_telegram import leaky_photo  # noqa: E402

TOKEN = "424242:burst-bench-token"  # noqa: S105 (the fake Bot API's token)
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
RSS_GOAL_MB, LAG_GOAL_MS = 400, 100


def noise_jpeg(size: tuple[int, int], below: int) -> bytes:
    """Noise at the highest JPEG quality whose file stays below `below` bytes."""
    rng = random.Random(7)
    image = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    for quality in (92, 88, 84, 80, 75, 70, 60):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        if out.tell() < below:
            return out.getvalue()
    raise SystemExit("could not make a big JPEG under the download limit")


def noise_png(size: tuple[int, int]) -> bytes:
    rng = random.Random(8)
    out = io.BytesIO()
    Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3)).save(out, "PNG")
    return out.getvalue()


def photo_mix(count: int) -> list[tuple[str, bytes]]:
    """`count` photos: mostly small, a share of phone photos, some 8 MB PNGs and ~20 MB JPEGs."""
    kinds = [
        ("small jpeg", leaky_photo(3, (800, 600)), 0.55),
        ("12 MP jpeg", phone_jpeg(1), 0.25),
        ("png", noise_png((1700, 1700)), 0.10),
        ("big jpeg", noise_jpeg((6000, 4500), TELEGRAM_DOWNLOAD_LIMIT - 65536), 0.10),
    ]
    mix: list[tuple[str, bytes]] = []
    for name, data, share in kinds:
        mix += [(name, data)] * round(count * share)
    mix = (mix + [kinds[0][:2]] * count)[:count]
    random.Random(1).shuffle(mix)
    return mix


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid` in kB (empty once the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {k: int(v) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, re.MULTILINE)}


async def burst(users: int, per_user: int) -> int:
    mix = photo_mix(users * per_user)
    sizes = Counter(name for name, _ in mix)
    biggest = max(len(data) for _, data in mix)
    total = sum(len(data) for _, data in mix)
    kinds = ", ".join(f"{n} {k}" for k, n in sizes.items())
    print(f"{len(mix)} photos from {users} users, {total / 1e6:.0f} MB, largest ", end="")
    print(f"{biggest / 1e6:.1f} MB: {kinds}")
    user_ids = [5000 + u for u in range(users)]
    async with FakeTelegram(TOKEN) as fake:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PYTHONPATH": str(ROOT),
                "TELEGRAM_BOT_TOKEN": fake.token,
                "TELEGRAM_API_URL": fake.api_url,
                "TELEGRAM_FILE_URL": fake.file_url,
                "SCRUBBOT_DATA_DIR": str(work / "data"),
                "SCRUBBOT_LAG_PROBE": "1",
            }
            log_path = work / "bot.log"
            with log_path.open("wb") as log_file:
                bot = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot", "run", cwd=work, env=env, stderr=log_file
                )
                await fake.wait_for(lambda calls: any(c.method == "getUpdates" for c in calls), 30)
                idle = memory(bot.pid)
                peak_polled = 0
                stop_polling = asyncio.Event()

                async def poll() -> None:
                    nonlocal peak_polled
                    while not stop_polling.is_set():
                        peak_polled = max(peak_polled, memory(bot.pid).get("VmRSS", 0))
                        await asyncio.sleep(0.02)

                poller = asyncio.create_task(poll())
                started = time.perf_counter()
                for index, (_, data) in enumerate(mix):
                    user = user_ids[index % users]
                    fake.add_document(data, user_id=user, file_name=f"IMG_{index:04d}.jpg")

                def documents() -> Counter[int]:
                    return Counter(
                        int(str(c.params["chat_id"]))
                        for c in fake.calls
                        if c.method == "sendDocument"
                    )

                def answered(_: object) -> bool:
                    return sum(documents().values()) >= len(mix)

                try:
                    await fake.wait_for(answered, timeout=900)
                finally:
                    wall = time.perf_counter() - started
                    final = memory(bot.pid)
                    stop_polling.set()
                    await poller
                    bot.send_signal(signal.SIGTERM)
                    code = await asyncio.wait_for(bot.wait(), 20)
            log = log_path.read_text()
        counts = documents()
        lost = [u for u in user_ids if counts[u] < per_user]
        duplicated = [u for u in user_ids if counts[u] > per_user]
        leftovers = sum(
            1
            for c in fake.calls
            if c.method == "sendDocument"
            and inspect(next(iter(c.files.values()))[1]).findings != ()
        )
    lag = re.search(r"event-loop lag: p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms", log)
    hwm = final.get("VmHWM", 0) / 1024
    print()
    print("| measure | result |")
    print("| --- | --- |")
    print(f"| photos answered | {sum(counts.values())} of {len(mix)} |")
    print(f"| lost / duplicated / not clean | {len(lost)} / {len(duplicated)} / {leftovers} |")
    print(f"| burst wall time (first sent to last answered) | {wall:.1f} s |")
    print(f"| throughput | {len(mix) / wall:.1f} photos/s, {total / 1e6 / wall:.0f} MB/s |")
    print(f"| bot RSS idle | {idle.get('VmRSS', 0) / 1024:.0f} MB |")
    print(f"| bot RSS peak (VmHWM / polled) | {hwm:.0f} MB / {peak_polled / 1024:.0f} MB |")
    if lag:
        p50, p99, worst = lag.groups()
        print(f"| event-loop lag p50 / p99 / max | {p50} / {p99} / {worst} ms |")
    print(f"| bot exit status after SIGTERM | {code} |")
    ok = (
        not lost
        and not duplicated
        and not leftovers
        and code == 0
        and hwm < RSS_GOAL_MB
        and lag is not None
        and float(lag.group(2)) < LAG_GOAL_MS
    )
    if "Traceback" in log:
        print("the bot logged a traceback:\n" + log[-3000:])
        ok = False
    print("\nall goals met" if ok else "\nGOAL MISSED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--per-user", type=int, default=4)
    args = parser.parse_args()
    return asyncio.run(burst(args.users, args.per_user))


if __name__ == "__main__":
    sys.exit(main())
