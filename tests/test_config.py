"""Settings from the environment, as operators write them in .env."""

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings
from bot.ratelimit import RateLimit

TOKEN = "123456:ABC-secret"
WEBHOOK = {"TELEGRAM_WEBHOOK_URL": "https://bot.kita.example/tg", "TELEGRAM_WEBHOOK_SECRET": "s-1"}


def test_defaults_and_telegram_contract() -> None:
    settings = Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN})
    assert settings.data_dir == Path("data")
    assert settings.database == Path("data") / "scrubbot.sqlite3"
    telegram = settings.telegram
    assert telegram is not None
    assert telegram.api_url == "https://api.telegram.org/bot"
    assert telegram.file_url == "https://api.telegram.org/file/bot"
    assert telegram.download_limit == 20 * 1024 * 1024
    assert telegram.webhook_url is None
    assert TOKEN not in repr(settings)  # secrets never reach a log through repr


def test_local_bot_api_server_and_webhook() -> None:
    settings = Settings.from_env(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": "http://127.0.0.1:8081/bot",
            "TELEGRAM_FILE_URL": "http://127.0.0.1:8081/file/bot",
            "TELEGRAM_LOCAL_MODE": "1",
            "TELEGRAM_WEBHOOK_URL": "https://bot.example.org/telegram",
            "TELEGRAM_WEBHOOK_SECRET": "s3cret-value",
            "TELEGRAM_WEBHOOK_LISTEN": "0.0.0.0",  # noqa: S104 - what an operator may write
            "TELEGRAM_WEBHOOK_PORT": "9000",
            "SCRUBBOT_DATA_DIR": "/var/lib/scrubbot",
        }
    )
    telegram = settings.telegram
    assert telegram is not None
    assert telegram.local_mode
    assert telegram.download_limit > 1000 * 1024 * 1024
    assert (telegram.webhook_listen, telegram.webhook_port) == ("0.0.0.0", 9000)  # noqa: S104
    assert "s3cret-value" not in repr(settings)
    assert settings.database == Path("/var/lib/scrubbot/scrubbot.sqlite3")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "TELEGRAM_BOT_TOKEN"),
        ({"TELEGRAM_BOT_TOKEN": "   "}, "TELEGRAM_BOT_TOKEN"),
        ({"TELEGRAM_BOT_TOKEN": "no-colon"}, "TELEGRAM_BOT_TOKEN"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_PORT": "http"}, "TELEGRAM_WEBHOOK_PORT"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "SCRUBBOT_MAX_BYTES": "-1"}, "SCRUBBOT_MAX_BYTES"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_LOCAL_MODE": "on"}, "TELEGRAM_LOCAL_MODE"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "SCRUBBOT_LOG_FORMAT": "xml"}, "SCRUBBOT_LOG_FORMAT"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "SCRUBBOT_HEALTH_PORT": "0"}, "SCRUBBOT_HEALTH_PORT"),
        (
            {"TELEGRAM_BOT_TOKEN": TOKEN, **WEBHOOK, "TELEGRAM_WEBHOOK_URL": "http://a.b/"},
            "TELEGRAM_WEBHOOK_URL must start with https://",
        ),
        (
            {"TELEGRAM_BOT_TOKEN": TOKEN, **WEBHOOK, "TELEGRAM_WEBHOOK_SECRET": ""},
            "TELEGRAM_WEBHOOK_SECRET",
        ),
        (
            {"TELEGRAM_BOT_TOKEN": TOKEN, **WEBHOOK, "TELEGRAM_WEBHOOK_SECRET": "a b"},
            "TELEGRAM_WEBHOOK_SECRET",
        ),
        (
            {"TELEGRAM_BOT_TOKEN": TOKEN, **WEBHOOK, "SCRUBBOT_HEALTH_PORT": "8443"},
            "SCRUBBOT_HEALTH_PORT",
        ),
    ],
)
def test_problems_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env).require_an_adapter()


def test_log_format_and_health_port() -> None:
    settings = Settings.from_env({"SCRUBBOT_LOG_FORMAT": "JSON", "SCRUBBOT_HEALTH_PORT": "9100"})
    assert (settings.log_format, settings.health_port) == ("json", 9100)
    assert (Settings.from_env({}).log_format, Settings.from_env({}).health_port) == ("text", 8080)


def test_rate_limit_per_sender_and_window() -> None:
    now = [0.0]
    limit = RateLimit(3, 60, clock=lambda: now[0])
    assert [limit.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limit.allow("b")  # another sender has their own allowance
    now[0] = 61.0
    assert limit.allow("a")  # the window moved on
