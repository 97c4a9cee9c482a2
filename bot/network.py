"""What a chat network module exports, so the bot can run on it: one `NETWORK`, like FORMATS.

    adapters/__init__.py   NETWORKS = (telegram_network.NETWORK, matrix_network.NETWORK)

`config`, `run`, `logs` and `firstrun` loop over the registry and name no network. A network
describes its settings (read from the environment by `from_env`, which returns None when the
network is not configured and raises ConfigError naming the variable when it is set wrongly),
the loggers to quiet, its first-run steps, and how to explain its start-up errors in one line.
Its settings object then says which secrets to redact, which ports it listens on, and builds the
adapter (importing the chat library only then, so `scrubbot clean` and `stats` start quickly).
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bot.chat import Chat, Dialect
from bot.service import Service
from bot.store import Store
from bot.texts import SOURCE_URL

Getter = Callable[[str], str | None]  # a variable's value, stripped; None when empty or unset


class Adapter(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None:
        """Stop taking updates, finish the photos in flight, then close."""


@dataclass(frozen=True)
class Running:
    """What an adapter gets from the composition root."""

    service: Service
    store: Store
    data_dir: Path  # SCRUBBOT_DATA_DIR, for a network's own state (Matrix keeps keys there)
    source_url: str = SOURCE_URL  # SCRUBBOT_SOURCE_URL, named by /privacy

    def chat(self, network: str, dialect: Dialect) -> Chat:
        return Chat(network, dialect, self.service, self.store, source_url=self.source_url)


class NetworkSettings(Protocol):
    def secrets(self) -> Iterable[str]:
        """Every secret in these settings, to redact from each log line."""

    def ports(self) -> dict[str, int]:
        """The ports it listens on, by variable name (the health port must differ)."""

    def health_address(self) -> str | None:
        """Where GET /healthz should listen, when this network has one (an adapter with a
        `healthy()` method tells whether its updates are flowing)."""

    def adapter(self, running: Running) -> Adapter: ...


def _no_explanation(error: Exception) -> str | None:
    return None


@dataclass(frozen=True)
class Network:
    name: str  # "telegram": in the store's chat keys and in logs
    title: str  # "Telegram": in messages to the operator
    prefix: str  # "TELEGRAM_": every variable of its settings starts with it
    switch: str  # "TELEGRAM_BOT_TOKEN": the variable that turns it on, named when none is set
    setup: str  # first-run steps, for the operator
    from_env: Callable[[Getter], NetworkSettings | None]
    placeholders: Mapping[str, str] = field(default_factory=dict)  # .env.example's examples
    quiet: tuple[str, ...] = ()  # loggers that would write secrets or contents at INFO
    explain: Callable[[Exception], str | None] = _no_explanation  # a start-up error, one line
