"""`scrubbot run` as operators start it, talking real HTTP to a fake Bot API on 127.0.0.1.

Each test starts the real process through the environment contract (TELEGRAM_BOT_TOKEN,
TELEGRAM_API_URL, TELEGRAM_FILE_URL) in an empty working directory, plays a parent, and stops
it with SIGTERM, which must end it with exit status 0 within 10 seconds.
"""

import asyncio
import hashlib
import hmac
import io
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import piexif
import pytest
from PIL import Image

from bot.scrub import inspect
from tests.fake_telegram import Call, FakeTelegram
from tests.judge import leftovers

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "424242:SECRET-test-token-do-not-log"
SERIAL = "SN-7731-0042"
NAME = "Mia Tochter"
FBMD = "FBMD01000a7d0300002f1e0000c5330000"
FILE_NAME = "IMG_20250502_081300.jpg"


def leaky_photo(seed: int = 0, size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG with GPS (Berlin), a serial, a name and a Facebook code, all of it to strip."""
    exif = piexif.dump(
        {
            "0th": {piexif.ImageIFD.Make: b"Apple", piexif.ImageIFD.Artist: NAME.encode()},
            "Exif": {piexif.ExifIFD.BodySerialNumber: SERIAL.encode()},
            "GPS": {
                piexif.GPSIFD.GPSLatitudeRef: b"N",
                piexif.GPSIFD.GPSLatitude: ((52, 1), (29, 1), (55, 1)),
                piexif.GPSIFD.GPSLongitudeRef: b"E",
                piexif.GPSIFD.GPSLongitude: ((13, 1), (24, 1), (12, 1)),
            },
        }
    )
    image = Image.new("RGB", size, (seed * 40 % 256, 120, 200))
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=FBMD.encode())
    return out.getvalue()


def bot_environment(fake: FakeTelegram, workdir: Path, **env: str) -> dict[str, str]:
    """What `scrubbot run` gets to talk to the fake: its own data folder and health port."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),  # the code under test, not an installed copy
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_URL": fake.api_url,
        "TELEGRAM_FILE_URL": fake.file_url,
        "SCRUBBOT_DATA_DIR": str(workdir / "data"),
        "SCRUBBOT_HEALTH_PORT": str(free_port()),  # /healthz, polling too: never a shared port
        **env,
    }


@asynccontextmanager
async def running_bot(
    fake: FakeTelegram, workdir: Path, ready: str = "getUpdates", **env: str
) -> AsyncIterator[Path]:
    """The bot process, ready once it calls `ready` (it polls by default); yields its log file
    and checks a clean stop."""
    log_path = workdir.parent / f"{workdir.name}.log"
    environment = bot_environment(fake, workdir, **env)
    earlier = len(fake.calls)  # a bot run before (a restart) does not make this one ready
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=workdir, env=environment, stderr=log_file
        )
        try:
            await fake.wait_for(lambda calls: ready in methods(calls[earlier:]), timeout=30)
            yield log_path
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), timeout=10)
    assert code == 0, log_path.read_text()


def files_in(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def methods(calls: list[Call]) -> list[str]:
    return [call.method for call in calls]


def replies(fake: FakeTelegram, chat: int, method: str) -> list[Call]:
    return [c for c in fake.sent_to(chat) if c.method == method]


def texts(fake: FakeTelegram, chat: int) -> list[str]:
    return [str(c.params["text"]) for c in replies(fake, chat, "sendMessage")]


def sent_file(fake: FakeTelegram, call: Call) -> tuple[str | None, bytes]:
    (upload,) = call.files.values()
    return upload


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


async def test_a_parent_gets_a_summary_and_a_clean_file(
    fake: FakeTelegram, workdir: Path, tmp_path: Path, exiftool: str
) -> None:
    original = leaky_photo()
    async with running_bot(fake, workdir) as log_path:
        fake.add_document(original, user_id=1001, file_name=FILE_NAME, language_code="en")
        await fake.wait_for(lambda calls: bool(replies(fake, 1001, "sendDocument")), timeout=20)
    (summary,) = texts(fake, 1001)
    assert summary.startswith("This photo contained the place where it was taken")
    assert "near Kreuzberg, Berlin, Germany" in summary
    assert SERIAL in summary
    assert "Facebook" in summary
    (document,) = replies(fake, 1001, "sendDocument")
    name, cleaned = sent_file(fake, document)
    assert name == "photo.jpg"  # neutral: no camera or date stamp
    out = tmp_path / "cleaned.jpg"
    out.write_bytes(cleaned)
    assert leftovers(out) == {}
    assert inspect(cleaned).findings == ()
    with Image.open(io.BytesIO(original)) as before, Image.open(out) as after:
        assert before.tobytes() == after.tobytes()
    log = log_path.read_text()
    for secret in (TOKEN, TOKEN.split(":")[1], SERIAL, NAME, FBMD, FILE_NAME, "Kreuzberg", "1001"):
        assert secret not in log
    assert "cleaned jpeg" in log  # it does log what it did, without the values
    # only the store's files exist, and no photo bytes are in them
    stored = files_in(workdir)
    assert {p.name for p in stored} <= {
        "scrubbot.sqlite3",
        "scrubbot.sqlite3-wal",
        "scrubbot.sqlite3-shm",
        "store.key",
    }
    for path in stored:
        assert b"\xff\xd8\xff" not in path.read_bytes()


async def test_german_parent_forwarding_a_file(fake: FakeTelegram, workdir: Path) -> None:
    async with running_bot(fake, workdir):
        fake.add_document(
            leaky_photo(), user_id=2002, language_code="de-AT", forward_from_name="Oma"
        )
        await fake.wait_for(lambda calls: bool(replies(fake, 2002, "sendDocument")), timeout=20)
    (summary,) = texts(fake, 2002)
    assert summary.startswith("Dieses Foto enthielt den Aufnahmeort")
    assert "in der Nähe von Kreuzberg, Berlin, Deutschland" in summary


async def test_compressed_photo_gets_the_send_as_file_hint(
    fake: FakeTelegram, workdir: Path
) -> None:
    async with running_bot(fake, workdir):
        fake.add_photo(leaky_photo(), user_id=3003, language_code="de")
        fake.add_photo(leaky_photo(), user_id=3004, language_code="en")
        await fake.wait_for(lambda calls: len(texts(fake, 3003) + texts(fake, 3004)) == 2)
    (german,) = texts(fake, 3003)
    (english,) = texts(fake, 3004)
    assert "als Datei" in german
    assert "📎" in german
    assert "send the original as a file" in english
    assert not replies(fake, 3003, "sendDocument")
    assert "getFile" not in methods(fake.calls)  # nothing downloaded


async def test_bad_files_get_a_clear_answer_and_nothing_back(
    fake: FakeTelegram, workdir: Path
) -> None:
    bad = {
        4001: (b"%PDF-1.7 not a photo", "report.pdf", "not a photo or video I can clean"),
        4002: (leaky_photo()[:300], "cut.jpg", "damaged or incomplete"),
        4003: (b"\x00" * 64, "zeros.jpg", "not a photo or video I can clean"),
    }
    async with running_bot(fake, workdir):
        for user, (data, name, _) in bad.items():
            fake.add_document(data, user_id=user, file_name=name)
        fake.add_document(leaky_photo(), user_id=4004, file_size=25 * 1024 * 1024)
        await fake.wait_for(lambda calls: all(texts(fake, u) for u in (*bad, 4004)))
    for user, (_, _, reason) in bad.items():
        (answer,) = texts(fake, user)
        assert reason in answer
        assert not replies(fake, user, "sendDocument")
    (too_big,) = texts(fake, 4004)
    assert "up to 20 MB" in too_big
    downloaded = [c for c in fake.calls if c.method == "getFile"]
    assert len(downloaded) == len(bad)  # the 25 MB file was refused before downloading


async def test_an_album_is_answered_once(fake: FakeTelegram, workdir: Path) -> None:
    async with running_bot(fake, workdir):
        for seed in range(3):
            fake.add_document(leaky_photo(seed), user_id=5005, media_group_id="album-1")
        await fake.wait_for(lambda calls: bool(replies(fake, 5005, "sendMediaGroup")), timeout=20)
        await asyncio.sleep(1.5)  # nothing more may follow
    (summary,) = texts(fake, 5005)
    assert summary.startswith("These 3 photos contained")
    (group,) = replies(fake, 5005, "sendMediaGroup")
    media = group.params["media"]
    assert isinstance(media, list)
    assert [m["type"] for m in media] == ["document"] * 3
    assert sorted(name for name, _ in group.files.values()) == [
        "photo-1.jpg",
        "photo-2.jpg",
        "photo-3.jpg",
    ]
    for _, data in group.files.values():
        assert inspect(data).findings == ()
    assert not replies(fake, 5005, "sendDocument")


async def test_commands_in_both_languages(fake: FakeTelegram, workdir: Path) -> None:
    async with running_bot(fake, workdir):
        fake.add_command("/start", user_id=6006, language_code="de")
        fake.add_command("/privacy", user_id=6007, language_code="en")
        fake.add_command("/help", user_id=6008, language_code="en-GB")
        fake.add_text("hello?", user_id=6009)
        await fake.wait_for(lambda calls: all(texts(fake, u) for u in (6006, 6007, 6008, 6009)))
    assert texts(fake, 6006)[0].startswith("Hallo!")
    assert "I never store photos" in texts(fake, 6007)[0]
    assert "as a file" in texts(fake, 6008)[0]
    assert "📎" in texts(fake, 6009)[0]
    assert set(fake.commands) == {"", "de"}
    assert [c["command"] for c in fake.commands["de"]] == [
        "start",
        "help",
        "privacy",
        "stats",
        "forget",
    ]
    assert fake.commands["de"][2]["description"] == "Was ich speichere"


async def test_forty_photos_from_twenty_parents_at_once(fake: FakeTelegram, workdir: Path) -> None:
    users = range(7000, 7020)
    async with running_bot(fake, workdir) as log_path:
        for round_ in range(2):
            for user in users:
                fake.add_document(leaky_photo(user + round_, (400, 300)), user_id=user)
        await fake.wait_for(
            lambda calls: all(len(replies(fake, u, "sendDocument")) == 2 for u in users),
            timeout=60,
        )
    for user in users:
        documents = replies(fake, user, "sendDocument")
        assert len(documents) == 2
        assert len(texts(fake, user)) == 2
        for call in documents:
            assert inspect(sent_file(fake, call)[1]).findings == ()
    assert log_path.read_text().count("cleaned jpeg") == 40


async def test_telegram_errors_do_not_lose_other_work(fake: FakeTelegram, workdir: Path) -> None:
    async with running_bot(fake, workdir) as log_path:
        fake.block_chat(8001)
        fake.fail_next("sendDocument", error_code=429, retry_after=1)
        fake.add_document(leaky_photo(), user_id=8001)  # has blocked the bot
        fake.add_document(leaky_photo(), user_id=8002)  # its file upload is throttled once
        fake.add_document(leaky_photo(), user_id=8003)
        await fake.wait_for(
            lambda calls: all(replies(fake, u, "sendDocument") for u in (8002, 8003)), timeout=30
        )
    assert not fake.sent_to(8001)
    assert "blocked" in log_path.read_text()
    assert "Traceback" not in log_path.read_text()


async def test_one_sender_is_asked_to_slow_down(fake: FakeTelegram, workdir: Path) -> None:
    async with running_bot(fake, workdir):
        for seed in range(33):
            fake.add_document(leaky_photo(seed), user_id=9009)
        await fake.wait_for(
            lambda calls: any("wait a minute" in t for t in texts(fake, 9009)), timeout=60
        )
        await fake.wait_for(lambda calls: len(replies(fake, 9009, "sendDocument")) == 30, 60)
    assert len(replies(fake, 9009, "sendDocument")) == 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def listening(port: int, seconds: float = 10.0) -> None:
    """Wait (bounded) until something accepts connections on 127.0.0.1:`port`."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)
        else:
            writer.close()
            await writer.wait_closed()
            return


async def test_webhook_mode_takes_updates_with_the_secret_only(
    fake: FakeTelegram, workdir: Path
) -> None:
    port = free_port()
    secret = "webhook-secret-123"
    webhook = {
        "TELEGRAM_WEBHOOK_URL": "https://bot.example.org/telegram",
        "TELEGRAM_WEBHOOK_SECRET": secret,
        "TELEGRAM_WEBHOOK_LISTEN": "127.0.0.1",
        "TELEGRAM_WEBHOOK_PORT": str(port),
    }
    async with running_bot(fake, workdir, ready="setWebhook", **webhook) as log_path:
        (registered,) = [c for c in fake.calls if c.method == "setWebhook"]
        assert registered.params["url"] == "https://bot.example.org/telegram"
        assert registered.params["secret_token"] == secret
        fake.add_chat(9300)
        update = {
            "update_id": 77,
            "message": {
                "message_id": 5,
                "date": 1_700_000_000,
                "chat": {"id": 9300, "type": "private"},
                "from": {"id": 9300, "is_bot": False, "first_name": "P", "language_code": "de"},
                "text": "/privacy",
                "entities": [{"type": "bot_command", "offset": 0, "length": 8}],
            },
        }
        url = f"http://127.0.0.1:{port}/telegram"
        await listening(port)
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=update) as refused:
                assert refused.status == 403  # no secret: someone else posting fake updates
            headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
            async with session.post(url, json=update, headers=headers) as taken:
                assert taken.status == 200
        await fake.wait_for(lambda calls: bool(texts(fake, 9300)))
    assert texts(fake, 9300)[0].startswith("Was ich speichere")
    assert "getUpdates" not in methods(fake.calls)
    assert secret not in log_path.read_text()


def chat_key(workdir: Path, chat_id: int) -> bytes:
    """How the store writes a chat: HMAC-SHA256 with the key kept in the data dir."""
    secret = (workdir / "data" / "store.key").read_bytes()
    return hmac.new(secret, f"telegram:{chat_id}".encode(), hashlib.sha256).hexdigest().encode()


def operator_stats(workdir: Path, *args: str) -> str:
    """What `scrubbot stats` prints for the bot that ran in `workdir`."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "stats", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "SCRUBBOT_DATA_DIR": "data"},
        cwd=workdir,
        check=True,
    )
    return result.stdout


def database_bytes(workdir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((workdir / "data").glob("scrubbot.sqlite3*")))


async def test_opt_in_counts_and_forget(fake: FakeTelegram, workdir: Path) -> None:
    async with running_bot(fake, workdir):
        fake.add_document(leaky_photo(), user_id=9401)  # never opts in
        fake.add_command("/stats", user_id=9402)
        await fake.wait_for(lambda calls: bool(texts(fake, 9402)) and bool(texts(fake, 9401)))
        fake.add_command("/stats on", user_id=9402)
        await fake.wait_for(lambda calls: len(texts(fake, 9402)) == 2)
        fake.add_document(leaky_photo(1), user_id=9402)
        fake.add_document(b"%PDF-1.4", user_id=9402, file_name="x.pdf")
        await fake.wait_for(lambda calls: len(texts(fake, 9402)) == 4)
        await fake.wait_for(lambda calls: bool(replies(fake, 9402, "sendDocument")))
        fake.add_command("/stats", user_id=9402)
        await fake.wait_for(lambda calls: len(texts(fake, 9402)) == 5)
        assert chat_key(workdir, 9402) in await asyncio.to_thread(database_bytes, workdir)
        assert chat_key(workdir, 9401) not in await asyncio.to_thread(database_bytes, workdir)
        fake.add_command("/forget", user_id=9402, language_code="de")
        await fake.wait_for(lambda calls: len(texts(fake, 9402)) == 6)
        assert chat_key(workdir, 9402) not in await asyncio.to_thread(database_bytes, workdir)
    answers = texts(fake, 9402)
    assert "Usage counts are off" in answers[0]
    assert "Usage counts are on" in answers[1]
    assert answers[4].startswith("This chat: 1 photo cleaned, 1 refused.")
    assert "With a location: 1." in answers[4]
    assert answers[5] == "Ich habe alles gelöscht, was ich über diesen Chat gespeichert hatte."
    result = await asyncio.to_thread(operator_stats, workdir, "--json")
    assert json.loads(result)["chats"] == 0  # forgotten, and 9401 never opted in


async def test_only_group_admins_switch_counting(fake: FakeTelegram, workdir: Path) -> None:
    group = -100777
    fake.add_chat(group, chat_type="supergroup", title="Class 2b parents")
    fake.set_chat_member(group, 9501, "member")
    fake.set_chat_member(group, 9502, "administrator")
    async with running_bot(fake, workdir):
        fake.add_command("/stats on", user_id=9501, chat_id=group, chat_type="supergroup")
        await fake.wait_for(lambda calls: len(texts(fake, group)) == 1)
        fake.add_command("/stats on", user_id=9502, chat_id=group, chat_type="supergroup")
        await fake.wait_for(lambda calls: len(texts(fake, group)) == 2)
    refused, accepted = texts(fake, group)
    assert refused == "Only the admins of this group can change that."
    assert accepted.startswith("Usage counts are on")
    assert "opted-in chats: 1" in await asyncio.to_thread(operator_stats, workdir)


def test_run_without_settings_names_the_missing_variable(tmp_path: Path) -> None:
    """Configured (a data folder) but no chat network: exit 2. With nothing configured at all,
    `scrubbot run` shows the setup steps instead (tests/test_firstrun.py)."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "SCRUBBOT_DATA_DIR": "data"},
        check=False,
        timeout=30,
    )
    assert result.returncode == 2
    assert "TELEGRAM_BOT_TOKEN" in result.stderr
    assert result.stdout == ""


def test_a_damaged_database_stops_the_start_with_a_clear_message(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "scrubbot.sqlite3").write_bytes(b"not a database " * 300)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": "http://127.0.0.1:9/bot",  # never reached: it stops first
            "SCRUBBOT_DATA_DIR": str(data),
        },
        check=False,
        timeout=30,
    )
    assert result.returncode == 1
    assert "is damaged" in result.stderr
    assert "Traceback" not in result.stderr
    assert TOKEN not in result.stderr
