"""`scrubbot run` when a chat network does not let it start: a clear line, no secret anywhere."""

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.fake_telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[1]
WRONG_TOKEN = "999999:WRONG-token-that-must-not-be-printed"


async def start(tmp_path: Path, api_url: str, file_url: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "run"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "TELEGRAM_BOT_TOKEN": WRONG_TOKEN,
            "TELEGRAM_API_URL": api_url,
            "TELEGRAM_FILE_URL": file_url,
            "SCRUBBOT_DATA_DIR": str(tmp_path / "data"),
            "SCRUBBOT_HEALTH_PORT": str(free_port()),
        },
        check=False,
        timeout=60,
    )


async def test_a_token_telegram_rejects_is_named_and_never_printed(tmp_path: Path) -> None:
    async with FakeTelegram() as fake:  # it knows another token: 401 Unauthorized
        result = await start(tmp_path, fake.api_url, fake.file_url)
    assert result.returncode == 2
    assert "scrubbot: TELEGRAM_BOT_TOKEN was rejected by Telegram" in result.stderr
    assert WRONG_TOKEN.split(":")[1] not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def free_port() -> int:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_unreachable_bot_api_is_one_line_and_a_redacted_log(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = await start(tmp_path, f"{base}/bot", f"{base}/file/bot")
    assert time.monotonic() - started < 10
    assert result.returncode == 1
    assert result.stderr.rstrip().endswith(
        "scrubbot: Telegram did not start: the Bot API at TELEGRAM_API_URL cannot be reached "
        "(NetworkError). Check the address and the network."
    )
    assert "Traceback" not in result.stderr  # issue 14: one line, details at debug level
    assert WRONG_TOKEN.split(":")[1] not in result.stderr + result.stdout


async def test_a_bot_api_that_never_answers_ends_within_ten_seconds(tmp_path: Path) -> None:
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepts, then says nothing

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    started = time.monotonic()
    async with silent:
        base = f"http://127.0.0.1:{port}"
        result = await start(tmp_path, f"{base}/bot", f"{base}/file/bot")
        for writer in held:
            writer.close()
            await writer.wait_closed()
    assert time.monotonic() - started < 10 + 3  # the interpreter's start-up on a busy machine
    assert result.returncode == 1
    assert "did not answer within 8 s" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_wrong_api_url_is_named(tmp_path: Path) -> None:
    async with FakeTelegram() as fake:  # a web server, but not at this path
        wrong = fake.api_url.removesuffix("/bot") + "/nothing-here/"
        result = await start(tmp_path, wrong, fake.file_url)
    assert result.returncode == 2, result.stderr
    assert "scrubbot: TELEGRAM_API_URL does not point to a Bot API server" in result.stderr
    assert "Traceback" not in result.stderr
