"""Telegram is the journal: after a SIGKILL the restarted bot answers the photos in flight."""

import asyncio
import io
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from tests.fake_telegram import FakeTelegram
from tests.test_telegram import (
    bot_environment,
    fake,
    free_port,
    leaky_photo,
    listening,
    replies,
    running_bot,
    texts,
    workdir,
)

__all__ = ["fake", "workdir"]  # the fixtures

PARENTS = range(9300, 9304)
BURST = 12  # photos, three from each parent


def burst(fake: FakeTelegram, size: tuple[int, int] = (1600, 1200)) -> list[tuple[int, int]]:
    """Twelve photos from four parents, each its own colour; returns (parent, message id)."""
    photos = []
    for round_ in range(BURST // len(PARENTS)):
        for parent in PARENTS:
            message_id = fake.add_document(leaky_photo(parent + round_, size), user_id=parent)
            photos.append((parent, message_id))
    return photos


def _red(seed: int) -> int:
    return seed * 40 % 256  # leaky_photo's colour


def answers(fake: FakeTelegram, photos: list[tuple[int, int]]) -> list[int]:
    """How many clean files each photo got (sends the fake carried out), told by colour: a
    private chat's answer does not quote the photo."""
    got: dict[tuple[int, int], int] = {}
    for parent in PARENTS:
        seeds = [parent + round_ for round_ in range(BURST // len(PARENTS))]
        for call in replies(fake, parent, "sendDocument"):
            (_, data) = next(iter(call.files.values()))
            red = Image.open(io.BytesIO(data)).convert("RGB").getpixel((8, 8))[0]  # type: ignore[index]
            seed = min(seeds, key=lambda s: abs(_red(s) - red))
            got[(parent, seed)] = got.get((parent, seed), 0) + 1
    rounds = {photo: index // len(PARENTS) for index, photo in enumerate(photos)}
    return [got.get((parent, parent + rounds[(parent, m)]), 0) for parent, m in photos]


def taken(fake: FakeTelegram, photos: list[tuple[int, int]]) -> list[bool]:
    """Whether the bot had started on each photo (asked Telegram for its file)."""
    asked = {call.params.get("file_id") for call in fake.calls if call.method == "getFile"}
    files = [fake._state.messages[photo]["document"]["file_id"] for photo in photos]
    return [file_id in asked for file_id in files]


def in_flight(fake: FakeTelegram, photos: list[tuple[int, int]]) -> bool:
    """Some photo taken but not yet answered, and some already answered."""
    counts = answers(fake, photos)
    started = taken(fake, photos)
    return any(counts) and any(s and not n for s, n in zip(started, counts, strict=True))


async def killed_mid_burst(fake: FakeTelegram, workdir: Path) -> tuple[list[tuple[int, int]], int]:
    """Starts `scrubbot run`, sends a burst, SIGKILLs it while photos are in flight; returns
    the photos and how many had been answered by then (every call it made counted)."""
    environment = bot_environment(fake, workdir)
    log_path = workdir.parent / "killed.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=workdir, env=environment, stderr=log_file
        )
        try:
            await fake.wait_for(lambda calls: any(c.method == "getUpdates" for c in calls), 30)
            photos = burst(fake)
            # No fixed timing: killed once some photo is answered and another is under way,
            # however fast or slow the machine is.
            await fake.wait_for(lambda calls: in_flight(fake, photos), 60)
        finally:
            process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(process.wait(), timeout=10)
    # A request the bot had written before it died may still be answered by the fake: it is
    # counted once it is recorded, never after `before` was taken.
    await fake.settled()
    return photos, sum(1 for n in answers(fake, photos) if n)


async def test_after_sigkill_the_restarted_bot_answers_every_photo(
    fake: FakeTelegram, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos, before = await killed_mid_burst(fake, workdir)
    assert 0 < before < BURST  # killed mid-burst
    async with running_bot(fake, workdir):
        await fake.wait_for(lambda calls: all(answers(fake, photos)), timeout=90)
    counts = answers(fake, photos)
    twice = sum(n - 1 for n in counts)
    with capsys.disabled():
        print(
            f"\nSIGKILL mid-burst: {before} of {BURST} answered before the kill; after the "
            f"restart {sum(1 for n in counts if n)} of {BURST} answered, {twice} twice"
        )
    assert all(counts)
    assert max(counts) <= 2
    assert twice <= before  # only photos answered before the kill, not yet confirmed
    assert fake.pending_updates == 0  # SIGTERM confirmed what it answered


async def test_sigterm_mid_burst_answers_every_photo_taken(
    fake: FakeTelegram, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_bot(fake, workdir) as log_path:
        photos = burst(fake, (800, 600))
        await fake.wait_for(lambda calls: in_flight(fake, photos), timeout=60)
        at_signal = sum(1 for n in answers(fake, photos) if n)
    # running_bot sent SIGTERM and checked exit status 0 within 10 s
    counts, started = answers(fake, photos), taken(fake, photos)
    with capsys.disabled():
        print(
            f"\nSIGTERM mid-burst: {at_signal} of {BURST} answered at the signal, "
            f"{sum(started)} taken, {sum(1 for n in counts if n)} answered by the stop, "
            f"{sum(n - 1 for n in counts if n)} twice"
        )
    assert at_signal < BURST
    assert all(n == 1 for s, n in zip(started, counts, strict=True) if s)  # each taken: once
    unanswered = {photo[1] for photo, n in zip(photos, counts, strict=True) if not n}
    queued = {update["message"]["message_id"] for update in fake.queued_updates()}
    assert queued == unanswered  # the others come again after a restart
    assert "stopped" in log_path.read_text()


async def test_answered_updates_are_confirmed_and_never_answered_twice(
    fake: FakeTelegram, workdir: Path
) -> None:
    async with running_bot(fake, workdir):
        fake.add_document(leaky_photo(), user_id=9401)
        await fake.wait_for(lambda calls: bool(replies(fake, 9401, "sendDocument")), timeout=30)
        await asyncio.sleep(2.5)  # several polls while nothing is in flight
    assert fake.pending_updates == 0
    async with running_bot(fake, workdir):  # a restart gets nothing again
        await asyncio.sleep(1)
    assert len(replies(fake, 9401, "sendDocument")) == 1


async def test_a_webhook_request_is_answered_once_its_photo_is(
    fake: FakeTelegram, workdir: Path
) -> None:
    port, secret = free_port(), "webhook-secret-14"
    webhook = {
        "TELEGRAM_WEBHOOK_URL": "https://bot.example.org/tg",
        "TELEGRAM_WEBHOOK_SECRET": secret,
        "TELEGRAM_WEBHOOK_PORT": str(port),
        "TELEGRAM_WEBHOOK_PATH": "tg",
    }
    async with running_bot(fake, workdir, ready="setWebhook", **webhook):
        fake.add_document(leaky_photo(), user_id=9501)  # queued at the fake, never polled
        update = fake.queued_updates()[-1]
        await listening(port)
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
        url = f"http://127.0.0.1:{port}/tg"
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=update, headers=headers) as answer:
                # by the time Telegram hears 200, the parent has the file and the summary
                assert answer.status == 200
                assert replies(fake, 9501, "sendDocument")
                assert texts(fake, 9501)
            async with session.post(url, json=update, headers=headers) as resent:
                assert resent.status == 200  # Telegram sent it again: answered already
    assert len(replies(fake, 9501, "sendDocument")) == 1
