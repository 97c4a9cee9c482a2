"""Telegram as a network the bot runs on: its settings and start-up; no PTB is loaded here."""

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bot.config import flag, port
from bot.errors import ConfigError
from bot.network import Adapter, Getter, Network, Running

API_URL = "https://api.telegram.org/bot"
FILE_URL = "https://api.telegram.org/file/bot"
# What the Bot API lets a bot download: 20 MB, or up to 2000 MB from a local Bot API server.
DOWNLOAD_LIMIT = 20 * 1024 * 1024
LOCAL_DOWNLOAD_LIMIT = 2000 * 1024 * 1024
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_WEBHOOK_PATH = re.compile(r"[A-Za-z0-9_.~/-]{1,200}")
WEBHOOK_PORTS = (443, 80, 88, 8443)  # the only ports Telegram sends webhooks to


@dataclass(frozen=True)
class TelegramSettings:
    token: str = field(repr=False)
    api_url: str = API_URL
    file_url: str = FILE_URL
    local_mode: bool = False
    webhook_url: str | None = None  # polling when unset
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_path: str = "telegram"  # where the local webhook server takes Telegram's requests

    @property
    def download_limit(self) -> int:
        return LOCAL_DOWNLOAD_LIMIT if self.local_mode else DOWNLOAD_LIMIT

    def secrets(self) -> Iterable[str]:
        return (self.token, self.webhook_secret or "")

    def ports(self) -> dict[str, int]:
        return {"TELEGRAM_WEBHOOK_PORT": self.webhook_port} if self.webhook_url else {}

    def health_address(self) -> str | None:
        return self.webhook_listen  # polling too: /healthz says whether updates flow

    def adapter(self, running: Running) -> Adapter:
        # PTB's newer, warning-free form of RetryAfter.retry_after (a timedelta).
        os.environ.setdefault("PTB_TIMEDELTA", "true")
        from adapters.telegram import TelegramAdapter  # PTB loads only for `run`

        return TelegramAdapter(self, running)


def from_env(get: Getter) -> TelegramSettings | None:
    token = get("TELEGRAM_BOT_TOKEN")
    if token is None:
        return None
    if ":" not in token:
        raise ConfigError("TELEGRAM_BOT_TOKEN does not look like a token from @BotFather.")
    webhook_url, secret = get("TELEGRAM_WEBHOOK_URL"), get("TELEGRAM_WEBHOOK_SECRET")
    if webhook_url is not None and not webhook_url.startswith("https://"):
        raise ConfigError("TELEGRAM_WEBHOOK_URL must start with https:// (Telegram requires it).")
    if webhook_url is not None and secret is None:
        raise ConfigError(
            "TELEGRAM_WEBHOOK_URL needs a TELEGRAM_WEBHOOK_SECRET, so no one else can send "
            "updates to the webhook."
        )
    if webhook_url is not None and _url_port(webhook_url) not in WEBHOOK_PORTS:
        raise ConfigError(
            "TELEGRAM_WEBHOOK_URL: Telegram sends webhooks only to the ports 443, 80, 88 and "
            "8443 (the port the proxy listens on; TELEGRAM_WEBHOOK_PORT may be any)."
        )
    path = (get("TELEGRAM_WEBHOOK_PATH") or "telegram").strip("/")
    if not _WEBHOOK_PATH.fullmatch(path):
        raise ConfigError(
            "TELEGRAM_WEBHOOK_PATH may have the characters A-Z, a-z, 0-9, _ . ~ - and /."
        )
    if secret is not None and not _WEBHOOK_SECRET.fullmatch(secret):
        raise ConfigError(
            "TELEGRAM_WEBHOOK_SECRET may have 1 to 256 of the characters A-Z, a-z, 0-9, _ and -."
        )
    return TelegramSettings(
        token=token,
        api_url=get("TELEGRAM_API_URL") or API_URL,
        file_url=get("TELEGRAM_FILE_URL") or FILE_URL,
        local_mode=flag(get, "TELEGRAM_LOCAL_MODE"),
        webhook_url=webhook_url,
        webhook_secret=secret,
        webhook_listen=get("TELEGRAM_WEBHOOK_LISTEN") or "127.0.0.1",
        webhook_port=port(get, "TELEGRAM_WEBHOOK_PORT", 8443),
        webhook_path=path,
    )


def _url_port(url: str) -> int | None:
    try:
        return urlsplit(url).port or 443
    except ValueError:  # not a number, or out of range
        return None


def explain(error: Exception) -> str | None:
    """PTB's InvalidToken quotes the token: say what to do instead."""
    from telegram.error import InvalidToken  # loaded with the adapter

    if isinstance(error, InvalidToken):
        return (
            "TELEGRAM_BOT_TOKEN was rejected by Telegram: copy the token from @BotFather again "
            "(/mybots -> API Token)."
        )
    return None


SETUP = """\
To run it as a Telegram bot:
  1. In Telegram, talk to @BotFather (https://t.me/BotFather), send /newbot and follow the
     steps; it gives you a token like 123456789:AA...
  2. cp .env.example .env   and put the token into TELEGRAM_BOT_TOKEN
  3. make run
"""

NETWORK = Network(
    name="telegram",
    title="Telegram",
    prefix="TELEGRAM_",
    switch="TELEGRAM_BOT_TOKEN",
    setup=SETUP,
    from_env=from_env,
    placeholders={"TELEGRAM_BOT_TOKEN": "123456789:replace-with-the-token-from-botfather"},
    # PTB puts the token into each request URL, and httpx logs every request URL at INFO.
    quiet=("httpx", "httpcore", "telegram.Bot", "telegram.request", "hpack"),
    explain=explain,
)
