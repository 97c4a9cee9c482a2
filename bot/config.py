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
            matrix=_matrix(get),
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
