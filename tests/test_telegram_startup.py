"""Start-up and health of the Telegram network: webhook settings, /healthz while polling."""

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings
from bot.health import start as health_server
from tests.fake_telegram import FakeTelegram
from tests.test_health import ask
from tests.test_telegram import fake, free_port, listening, running_bot, workdir

__all__ = ["fake", "workdir"]  # the fixtures

TOKEN = "123:abc"
SECRET = "s3cret"


def telegram(**env: str) -> object:
    settings = Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN, **env})
    ((_, configured),) = settings.networks
    return configured


@pytest.mark.parametrize("url", ["https://bot.example.org", "https://bot.example.org:8443/tg"])
def test_webhook_urls_on_the_ports_telegram_sends_to(url: str) -> None:
    configured = telegram(TELEGRAM_WEBHOOK_URL=url, TELEGRAM_WEBHOOK_SECRET=SECRET)
    assert configured.webhook_path == "telegram"  # type: ignore[attr-defined]


@pytest.mark.parametrize("url", ["https://bot.example.org:8080/", "https://bot.example.org:x/"])
def test_a_webhook_port_telegram_never_sends_to_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"TELEGRAM_WEBHOOK_URL: .*443, 80, 88 and 8443"):
        telegram(TELEGRAM_WEBHOOK_URL=url, TELEGRAM_WEBHOOK_SECRET=SECRET)


def test_the_webhook_path_is_settable_and_checked() -> None:
    env = {
        "TELEGRAM_WEBHOOK_URL": "https://bot.example.org/hook/x",
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
    }
    configured = telegram(**env, TELEGRAM_WEBHOOK_PATH="/hook/x")
    assert configured.webhook_path == "hook/x"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_PATH"):
        telegram(**env, TELEGRAM_WEBHOOK_PATH="a path?")


async def test_healthz_says_whether_updates_flow() -> None:
    flowing = [True]
    server = await health_server("127.0.0.1", 0, lambda: flowing[0])
    port = server.sockets[0].getsockname()[1]
    try:
        assert (await ask(port, b"GET /healthz HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 200")
        flowing[0] = False
        answer = await ask(port, b"GET /healthz HTTP/1.1\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable")
        assert answer.endswith(b"not receiving updates\n")
    finally:
        server.close()
        await server.wait_closed()


async def test_polling_serves_healthz_too(fake: FakeTelegram, workdir: Path) -> None:
    port = free_port()
    async with running_bot(fake, workdir, SCRUBBOT_HEALTH_PORT=str(port)):
        await listening(port)
        answer = await ask(port, b"GET /healthz HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.endswith(b"ok\n")
