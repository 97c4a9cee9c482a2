"""Settings from the environment: the operators' contract, listed with comments in .env.example.

Settings.from_env(os.environ) -> Settings    raises ConfigError naming what is wrong
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.scrub import Limits

TELEGRAM_API_URL = "https://api.telegram.org/bot"
TELEGRAM_FILE_URL = "https://api.telegram.org/file/bot"
# What the Bot API lets a bot download: 20 MB, or up to 2000 MB from a local Bot API server.
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
TELEGRAM_LOCAL_DOWNLOAD_LIMIT = 2000 * 1024 * 1024


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the variables and is safe to print."""


@dataclass(frozen=True)
class TelegramSettings:
    token: str = field(repr=False)
    api_url: str = TELEGRAM_API_URL
    file_url: str = TELEGRAM_FILE_URL
    local_mode: bool = False
    webhook_url: str | None = None  # polling when unset
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443

    @property
    def download_limit(self) -> int:
        return TELEGRAM_LOCAL_DOWNLOAD_LIMIT if self.local_mode else TELEGRAM_DOWNLOAD_LIMIT


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database: Path
    limits: Limits
    telegram: TelegramSettings | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Settings":
        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        data_dir = Path(get("SCRUBBOT_DATA_DIR") or "./data")
        try:
            limits = Limits.from_env(env)
        except ValueError as error:
            raise ConfigError(str(error)) from error
        return cls(
            data_dir=data_dir,
            database=Path(get("SCRUBBOT_DB") or data_dir / "scrubbot.sqlite3"),
            limits=limits,
            telegram=_telegram(get),
        )

    def require_an_adapter(self) -> None:
        if self.telegram is None:
            raise ConfigError(
                "No chat network is configured: set TELEGRAM_BOT_TOKEN (see .env.example)."
            )


def _telegram(get: Callable[[str], str | None]) -> TelegramSettings | None:
    token = get("TELEGRAM_BOT_TOKEN")
    if token is None:
        return None
    if ":" not in token:
        raise ConfigError("TELEGRAM_BOT_TOKEN does not look like a token from @BotFather.")
    port = get("TELEGRAM_WEBHOOK_PORT") or "8443"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError("TELEGRAM_WEBHOOK_PORT must be a port number.")
    return TelegramSettings(
        token=token,
        api_url=get("TELEGRAM_API_URL") or TELEGRAM_API_URL,
        file_url=get("TELEGRAM_FILE_URL") or TELEGRAM_FILE_URL,
        local_mode=get("TELEGRAM_LOCAL_MODE") in ("1", "true", "yes"),
        webhook_url=get("TELEGRAM_WEBHOOK_URL"),
        webhook_secret=get("TELEGRAM_WEBHOOK_SECRET"),
        webhook_listen=get("TELEGRAM_WEBHOOK_LISTEN") or "127.0.0.1",
        webhook_port=int(port),
    )
