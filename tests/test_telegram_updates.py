"""Telegram is the journal: after a SIGKILL the restarted bot answers the photos in flight."""

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.fake_telegram import FakeTelegram
from tests.test_telegram import (
    ROOT,
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

PARENTS = range(9300, 9306)


async def killed_mid_burst(fake: FakeTelegram, workdir: Path) -> int:
    """Starts `scrubbot run`, sends a burst, SIGKILLs it as soon as it is busy; returns how many
    photos it had answered by then."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_URL": fake.api_url,
        "TELEGRAM_FILE_URL": fake.file_url,
        "SCRUBBOT_DATA_DIR": str(workdir / "data"),
        "SCRUBBOT_HEALTH_PORT": str(free_port()),
    }
    log_path = workdir.parent / "killed.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=workdir, env=environment, stderr=log_file
        )
        try:
            await fake.wait_for(lambda calls: any(c.method == "getUpdates" for c in calls), 30)
            for parent in PARENTS:
                fake.add_document(leaky_photo(parent, (1600, 1200)), user_id=parent)
            # busy with the burst: the first photo answered, the others in flight
            await fake.wait_for(lambda calls: any(c.method == "sendDocument" for c in calls), 30)
        finally:
            process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(process.wait(), timeout=10)
    return sum(len(replies(fake, parent, "sendDocument")) for parent in PARENTS)


async def test_after_sigkill_the_restarted_bot_answers_every_photo(
    fake: FakeTelegram, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await killed_mid_burst(fake, workdir)
    async with running_bot(fake, workdir):
        await fake.wait_for(
            lambda calls: all(replies(fake, parent, "sendDocument") for parent in PARENTS),
            timeout=60,
        )
    answers = [len(replies(fake, parent, "sendDocument")) for parent in PARENTS]
    with capsys.disabled():
        print(
            f"\nSIGKILL mid-burst: {before} of 6 answered before the kill; after the restart "
            f"{sum(1 for n in answers if n)} of 6 answered, {sum(n - 1 for n in answers)} twice"
        )
    assert all(answers)
    assert sum(n - 1 for n in answers) <= before  # only those answered just before the kill
    assert fake.pending_updates == 0  # SIGTERM confirmed what it answered


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
