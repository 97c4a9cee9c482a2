"""The /healthz server (real HTTP on 127.0.0.1), and `scrubbot run` in webhook mode serving it
with JSON logs."""

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import health
from bot.config import ConfigError
from tests.fake_telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "515151:SECRET-health-token"


async def ask(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    return answer


@pytest.fixture
async def port() -> AsyncIterator[int]:
    server = await health.start("127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


async def test_healthz_answers_ok(port: int) -> None:
    answer = await ask(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\nok\n")
    head = await ask(port, b"HEAD /healthz?probe=1 HTTP/1.1\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert head.endswith(b"\r\n\r\n")  # no body for HEAD


@pytest.mark.parametrize(
    "request_",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"POST /healthz HTTP/1.1\r\n\r\n",
        b"GET /healthz/x HTTP/1.0\r\n\r\n",
    ],
)
async def test_everything_else_is_404(port: int, request_: bytes) -> None:
    assert (await ask(port, request_)).startswith(b"HTTP/1.1 404 Not Found\r\n")


async def ask_closing(port: int, request: bytes) -> bytes:
    """Send `request` and end our side, so an unfinished request ends there."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        writer.write_eof()
        return await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:  # the server hung up on data it did not read
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionResetError):
            await writer.wait_closed()


async def test_a_broken_or_huge_request_gets_no_answer_and_the_server_goes_on(port: int) -> None:
    assert await ask_closing(port, b"GET /healthz HTTP/1.1\r\n") == b""  # headers never end
    assert await ask_closing(port, b"GET /" + b"x" * 20_000 + b"\r\n\r\n") == b""
    assert (await ask(port, b"GET /healthz HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 200")


async def test_a_port_in_use_is_a_clear_start_up_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConfigError, match="SCRUBBOT_HEALTH_PORT"):
            await health.start("127.0.0.1", taken.getsockname()[1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_webhook_mode_serves_healthz_and_logs_json(tmp_path: Path) -> None:
    health_port = free_port()
    log_path = tmp_path / "bot.log"
    async with FakeTelegram(TOKEN) as fake:
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": fake.api_url,
            "TELEGRAM_FILE_URL": fake.file_url,
            "TELEGRAM_WEBHOOK_URL": "https://bot.kita.example/telegram",
            "TELEGRAM_WEBHOOK_SECRET": "health-secret-1",
            "TELEGRAM_WEBHOOK_LISTEN": "127.0.0.1",
            "TELEGRAM_WEBHOOK_PORT": str(free_port()),
            "SCRUBBOT_HEALTH_PORT": str(health_port),
            "SCRUBBOT_LOG_FORMAT": "json",
            "SCRUBBOT_DATA_DIR": str(tmp_path / "data"),
        }
        with log_path.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", cwd=tmp_path, env=environment, stderr=log_file
            )
            try:
                answer = b""
                for _ in range(100):  # the health server starts once the adapters are up
                    try:
                        answer = await ask(health_port, b"GET /healthz HTTP/1.1\r\n\r\n")
                        break
                    except OSError:
                        await asyncio.sleep(0.1)
                assert answer.startswith(b"HTTP/1.1 200 OK"), log_path.read_text()
            finally:
                process.send_signal(signal.SIGTERM)
                code = await asyncio.wait_for(process.wait(), timeout=10)
    text = log_path.read_text()
    assert code == 0, text
    entries = [json.loads(line) for line in text.splitlines()]  # every line is one object
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    messages = [entry["message"] for entry in entries]
    assert "scrubbot is running" in messages
    assert "stopped" in messages
    assert any("/healthz" in message for message in messages)
    assert TOKEN not in text
    assert "health-secret-1" not in text
