"""Settings from the environment: the operators' contract, listed with comments in .env.example.

Settings.from_env(os.environ) -> Settings    raises ConfigError naming what is wrong
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.scrub import Limits

TELEGRAM_API_URL = "https://api.telegram.org/bot"
TELEGRAM_FILE_URL = "https://api.telegram.org/file/bot"
# What the Bot API lets a bot download: 20 MB, or up to 2000 MB from a local Bot API server.
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
TELEGRAM_LOCAL_DOWNLOAD_LIMIT = 2000 * 1024 * 1024
# The values of the uncommented lines of .env.example: they must be replaced, so a copy left
# unedited is refused, naming the variable (tests/test_deploy.py keeps the two in step).
PLACEHOLDERS = {"TELEGRAM_BOT_TOKEN": "123456789:replace-with-the-token-from-botfather"}
LOG_FORMATS = ("text", "json")
HEALTH_PORT = 8080


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
class MatrixSettings:
    homeserver: str
    user_id: str
    password: str | None = field(default=None, repr=False)  # first login, cross-signing
    access_token: str | None = field(default=None, repr=False)  # with device_id, instead
    device_id: str | None = None
    # Who may invite the bot: user ids (@mum:example.org) or servers (example.org); empty: anyone.
    allowed_inviters: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database: Path
    limits: Limits
    telegram: TelegramSettings | None = None
    matrix: MatrixSettings | None = None
    log_format: str = "text"  # or "json": one object per line
    health_port: int = HEALTH_PORT  # GET /healthz, in webhook mode

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Settings":
        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        for name, placeholder in PLACEHOLDERS.items():
            if get(name) == placeholder:
                raise ConfigError(
                    f"{name} still has the example value from .env.example: put in your own "
                    "(or comment the line out)."
                )
        log_format = (get("SCRUBBOT_LOG_FORMAT") or "text").lower()
        if log_format not in LOG_FORMATS:
            raise ConfigError("SCRUBBOT_LOG_FORMAT must be text or json.")
        data_dir = Path(get("SCRUBBOT_DATA_DIR") or "./data")
        try:
            limits = Limits.from_env(env)
        except ValueError as error:
            raise ConfigError(str(error)) from error
        telegram = _telegram(get)
        health_port = _port(get, "SCRUBBOT_HEALTH_PORT", HEALTH_PORT)
        if telegram and telegram.webhook_url and telegram.webhook_port == health_port:
            raise ConfigError("SCRUBBOT_HEALTH_PORT and TELEGRAM_WEBHOOK_PORT must differ.")
        return cls(
            data_dir=data_dir,
            database=Path(get("SCRUBBOT_DB") or data_dir / "scrubbot.sqlite3"),
            limits=limits,
            telegram=telegram,
            matrix=_matrix(get),
            log_format=log_format,
            health_port=health_port,
        )

    def require_an_adapter(self) -> None:
        if self.telegram is None and self.matrix is None:
            raise ConfigError(
                "No chat network is configured: set TELEGRAM_BOT_TOKEN or MATRIX_HOMESERVER "
                "(see .env.example)."
            )


def _telegram(get: Callable[[str], str | None]) -> TelegramSettings | None:
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
    if secret is not None and not _WEBHOOK_SECRET.fullmatch(secret):
        raise ConfigError(
            "TELEGRAM_WEBHOOK_SECRET may have 1 to 256 of the characters A-Z, a-z, 0-9, _ and -."
        )
    return TelegramSettings(
        token=token,
        api_url=get("TELEGRAM_API_URL") or TELEGRAM_API_URL,
        file_url=get("TELEGRAM_FILE_URL") or TELEGRAM_FILE_URL,
        local_mode=_flag(get, "TELEGRAM_LOCAL_MODE"),
        webhook_url=webhook_url,
        webhook_secret=secret,
        webhook_listen=get("TELEGRAM_WEBHOOK_LISTEN") or "127.0.0.1",
        webhook_port=_port(get, "TELEGRAM_WEBHOOK_PORT", 8443),
    )


_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def _port(get: Callable[[str], str | None], name: str, default: int) -> int:
    port = get(name) or str(default)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name} must be a port number (1 to 65535).")
    return int(port)


def _flag(get: Callable[[str], str | None], name: str) -> bool:
    value = (get(name) or "0").lower()
    if value not in ("0", "1", "true", "false", "yes", "no"):
        raise ConfigError(f"{name} must be 1 or 0.")
    return value in ("1", "true", "yes")


def _matrix(get: Callable[[str], str | None]) -> MatrixSettings | None:
    homeserver, user_id = get("MATRIX_HOMESERVER"), get("MATRIX_USER_ID")
    if homeserver is None and user_id is None:
        return None
    if homeserver is None or not homeserver.startswith(("https://", "http://")):
        raise ConfigError(
            "MATRIX_HOMESERVER must be the homeserver's URL, like https://matrix.org."
        )
    if user_id is None or not user_id.startswith("@") or ":" not in user_id:
        raise ConfigError(
            "MATRIX_USER_ID must be the bot's full user id, like @scrubbot:matrix.org."
        )
    password, token, device = (
        get("MATRIX_PASSWORD"),
        get("MATRIX_ACCESS_TOKEN"),
        get("MATRIX_DEVICE_ID"),
    )
    if password is None and (token is None or device is None):
        raise ConfigError(
            "Set MATRIX_PASSWORD, or both MATRIX_ACCESS_TOKEN and MATRIX_DEVICE_ID, for Matrix."
        )
    inviters = (get("MATRIX_ALLOWED_INVITERS") or "").replace(",", " ").split()
    return MatrixSettings(
        homeserver=homeserver.rstrip("/"),
        user_id=user_id,
        password=password,
        access_token=token,
        device_id=device,
        allowed_inviters=tuple(inviters),
    )
