"""A test-only chat network, "pigeon": proof that a new network is one module plus one line in a
registry, with no file in bot/ touched.

Its settings come from PIGEON_LOFT (a name); its transport is in memory: the test puts letters
into the adapter's `inbox` (bytes are photos, text starting with "coo " a command) and reads
what the bot sent from `outbox`. Commands look like `coo stats on`.
"""

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from adapters.markup import plain
from bot import chat as core
from bot.network import Adapter, Getter, Network, Running
from bot.texts import Syntax

COO = Syntax("coo ")
LOFTS: dict[str, "PigeonAdapter"] = {}  # running adapters, by loft, for the test to talk to


@dataclass(frozen=True)
class PigeonDialect:
    syntax: Syntax = COO
    download_limit: int | None = 1024 * 1024  # a pigeon carries one megabyte

    def how_to_send(self, language: str) -> str:
        return "Tie the photo to my leg."

    def too_large(self, language: str, limit: int) -> str:
        return "Too heavy for a pigeon."

    def not_allowed(self, language: str) -> str:
        return "Only the loft's keeper can change that."

    def cannot_remove(self, language: str, rights: core.Rights) -> str:
        return "I cannot eat other pigeons' letters."


@dataclass(frozen=True)
class PigeonSettings:
    loft: str

    def secrets(self) -> Iterable[str]:
        return ()

    def ports(self) -> dict[str, int]:
        return {}

    def health_address(self) -> str | None:
        return None

    def adapter(self, running: Running) -> Adapter:
        return PigeonAdapter(self, running)


@dataclass
class Letter:
    text: str = ""
    files: list[tuple[str, bytes]] = field(default_factory=list)


class PigeonAdapter:
    def __init__(self, settings: PigeonSettings, running: Running) -> None:
        self.chat = running.chat("pigeon", PigeonDialect())
        self.inbox: asyncio.Queue[bytes | str] = asyncio.Queue()
        self.outbox: list[Letter] = []
        self.started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        LOFTS[settings.loft] = self

    async def start(self) -> None:
        self._task = asyncio.create_task(self._fly())
        self.started.set()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _fly(self) -> None:
        where, who = core.Where("loft"), core.Who("keeper")
        while True:
            letter = await self.inbox.get()
            if isinstance(letter, bytes):
                photo = core.Photo(len(letter), lambda data=letter: _carried(data))
                actions = await self.chat.photos(core.Photos(where, who, (photo,)))
            else:
                verb, *args = letter.removeprefix(COO("")).split()
                actions = await self.chat.command(core.Command(where, who, verb, tuple(args)))
            for action in actions:
                if isinstance(action, core.Say):
                    text = plain(action.summary) if action.summary else action.text
                    self.outbox.append(Letter(text))
                elif isinstance(action, core.SendFiles):
                    self.outbox.append(Letter(files=[(f.file_name, f.data) for f in action.files]))


async def _carried(data: bytes) -> bytes:
    return data


def from_env(get: Getter) -> PigeonSettings | None:
    loft = get("PIGEON_LOFT")
    return PigeonSettings(loft) if loft else None


NETWORK = Network(
    name="pigeon",
    title="Pigeon post",
    prefix="PIGEON_",
    switch="PIGEON_LOFT",
    setup="To run it by pigeon: set PIGEON_LOFT.\n",
    from_env=from_env,
)
