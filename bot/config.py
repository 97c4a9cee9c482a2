"""Settings from the environment: the operators' contract, listed with comments in .env.example.

Settings.from_env(os.environ) -> Settings    raises ConfigError naming what is wrong

The common settings are read here; each chat network reads its own (see `bot.network` and the
registry in `adapters`), and `settings.<network name>` is that network's settings, or None
when it is not configured.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import ConfigError
from bot.network import Network, NetworkSettings
from bot.scrub import Limits
from bot.texts import SOURCE_URL

__all__ = [
    "HEALTH_PORT",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "SOURCE_URL",
    "ConfigError",
    "Settings",
    "flag",
    "port",
]

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
HEALTH_PORT = 8080


def registry() -> tuple[Network, ...]:
    """The chat networks the bot knows (adapters.NETWORKS), loaded when first needed."""
    from adapters import NETWORKS  # the registry, not an adapter: no chat library loads here

    return NETWORKS


def __getattr__(name: str) -> Any:
    """`PLACEHOLDERS`: the values of the uncommented lines of .env.example, by variable, from
    every network. They must be replaced, so a copy left unedited is refused, naming the
    variable (tests/test_deploy.py keeps the two in step)."""
    if name == "PLACEHOLDERS":
        return placeholders(registry())
    raise AttributeError(name)


def placeholders(networks: Sequence[Network]) -> dict[str, str]:
    return {name: value for n in networks for name, value in n.placeholders.items()}


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database: Path
    limits: Limits
    log_format: str = "text"  # or "json": one object per line
    log_level: str = "info"
    health_port: int = HEALTH_PORT  # GET /healthz, where a network serves requests
    metrics_port: int | None = None  # GET /metrics (Prometheus) when set
    metrics_listen: str = "127.0.0.1"
    source_url: str = SOURCE_URL
    # The configured networks and their settings, in registry order.
    networks: tuple[tuple[Network, NetworkSettings], ...] = ()
    known: tuple[Network, ...] = field(default=(), repr=False)

    def __getattr__(self, name: str) -> Any:
        """`settings.telegram`: that network's settings, or None when it is not configured."""
        if name.startswith("_"):
            raise AttributeError(name)
        for network, settings in self.__dict__.get("networks", ()):
            if network.name == name:
                return settings
        if any(network.name == name for network in self.__dict__.get("known", ())):
            return None
        raise AttributeError(name)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], networks: Sequence[Network] | None = None
    ) -> "Settings":
        known = tuple(registry() if networks is None else networks)

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        for name, placeholder in placeholders(known).items():
            if get(name) == placeholder:
                raise ConfigError(
                    f"{name} still has the example value from .env.example: put in your own "
                    "(or comment the line out)."
                )
        log_format = (get("SCRUBBOT_LOG_FORMAT") or "text").lower()
        if log_format not in LOG_FORMATS:
            raise ConfigError("SCRUBBOT_LOG_FORMAT must be text or json.")
        log_level = (get("SCRUBBOT_LOG_LEVEL") or "info").lower()
        if log_level not in LOG_LEVELS:
            raise ConfigError("SCRUBBOT_LOG_LEVEL must be debug, info, warning or error.")
        source_url = get("SCRUBBOT_SOURCE_URL") or SOURCE_URL
        if not source_url.startswith(("https://", "http://")) or any(
            c.isspace() for c in source_url
        ):
            raise ConfigError("SCRUBBOT_SOURCE_URL must be a web address (https://...).")
        metrics_port = (
            port(get, "SCRUBBOT_METRICS_PORT", 0) if get("SCRUBBOT_METRICS_PORT") else None
        )
        data_dir = Path(get("SCRUBBOT_DATA_DIR") or "./data")
        try:
            limits = Limits.from_env(env)
        except ValueError as error:
            raise ConfigError(str(error)) from error
        configured = []
        for network in known:
            settings = network.from_env(get)
            if settings is not None:
                configured.append((network, settings))
        health_port = port(get, "SCRUBBOT_HEALTH_PORT", HEALTH_PORT)
        if metrics_port == health_port:
            raise ConfigError("SCRUBBOT_HEALTH_PORT and SCRUBBOT_METRICS_PORT must differ.")
        for _network, settings in configured:
            for name, used in settings.ports().items():
                if used == health_port:
                    raise ConfigError(f"SCRUBBOT_HEALTH_PORT and {name} must differ.")
                if used == metrics_port:
                    raise ConfigError(f"SCRUBBOT_METRICS_PORT and {name} must differ.")
        return cls(
            data_dir=data_dir,
            database=Path(get("SCRUBBOT_DB") or data_dir / "scrubbot.sqlite3"),
            limits=limits,
            log_format=log_format,
            log_level=log_level,
            health_port=health_port,
            metrics_port=metrics_port,
            metrics_listen=get("SCRUBBOT_METRICS_LISTEN") or "127.0.0.1",
            source_url=source_url,
            networks=tuple(configured),
            known=known,
        )

    def require_an_adapter(self) -> None:
        if not self.networks:
            switches = " or ".join(network.switch for network in self.known)
            raise ConfigError(f"No chat network is configured: set {switches} (see .env.example).")


def port(get: Callable[[str], str | None], name: str, default: int) -> int:
    value = get(name) or str(default)
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"{name} must be a port number (1 to 65535).")
    return int(value)


def flag(get: Callable[[str], str | None], name: str) -> bool:
    value = (get(name) or "0").lower()
    if value not in ("0", "1", "true", "false", "yes", "no"):
        raise ConfigError(f"{name} must be 1 or 0.")
    return value in ("1", "true", "yes")
