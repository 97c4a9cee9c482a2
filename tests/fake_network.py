"""A tiny fake network for the chat core: plain values in, the core's actions recorded.

In the spirit of httpx's MockTransport: no PTB, no nio, no mocks. Events are made from plain
values (who, which chat, whether the sender is an admin there, whether the bot may remove
messages); photos are real bytes behind a `fetch` that counts its calls; the core runs with a
real `Service` and a real SQLite `Store`.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot import chat as core
from bot.texts import Syntax


@dataclass(frozen=True)
class FakeDialect:
    syntax: Syntax = field(default_factory=lambda: Syntax("/"))
    download_limit: int | None = None

    def how_to_send(self, language: str) -> str:
        return f"[{self.syntax('')}] send it as a file"

    def too_large(self, language: str, limit: int) -> str:
        return f"too large: up to {limit} bytes"

    def not_allowed(self, language: str) -> str:
        return "admins only"

    def cannot_remove(self, language: str, rights: core.Rights) -> str:
        return f"I need level {rights.remove_level} to remove messages"


@dataclass
class FakeNetwork:
    """Drives one `Chat`; `fetched` counts the downloads the core asked for."""

    chat: core.Chat
    admins: set[str] = field(default_factory=set)
    may_remove: bool = False
    may_post: bool = True
    fetched: int = 0

    def where(self, chat: str, group: bool, language: str | None = None) -> core.Where:
        async def rights() -> core.Rights:
            return core.Rights(self.may_remove, 50, self.may_post)

        return core.Where(chat, group, language, rights)

    def who(self, sender: str, name: str | None = None) -> core.Who:
        async def may_configure() -> bool:
            return sender in self.admins

        return core.Who(sender, name, may_configure)

    def photo(self, data: bytes | None, size: int | None = None) -> core.Photo:
        async def fetch() -> bytes | None:
            self.fetched += 1
            return data

        announced = size if size is not None else (len(data) if data is not None else None)
        return core.Photo(announced, fetch)

    async def send(
        self,
        photos: Sequence[bytes | None],
        sender: str = "parent",
        chat: str = "",
        group: bool = False,
        language: str | None = "en",
        name: str | None = None,
    ) -> list[core.Action]:
        event = core.Photos(
            self.where(chat or sender, group, language),
            self.who(sender, name),
            tuple(self.photo(p) for p in photos),
        )
        return await self.chat.photos(event)

    async def say(
        self,
        line: str,
        sender: str = "parent",
        chat: str = "",
        group: bool = False,
        language: str | None = "en",
    ) -> list[core.Action]:
        """A command as the user types it, in this network's syntax."""
        prefix = self.chat.dialect.syntax("")
        assert line.startswith(prefix), line
        verb, *args = line.removeprefix(prefix).split()
        where, who = self.where(chat or sender, group, language), self.who(sender)
        return await self.chat.command(core.Command(where, who, verb, tuple(args)))


def said(actions: Sequence[core.Action]) -> list[str]:
    """Every text the actions would show (summaries as plain text)."""
    out: list[str] = []
    for action in actions:
        if isinstance(action, core.Say):
            out.append(action.summary.text if action.summary else action.text)
        elif isinstance(action, core.Denied):
            out.append(action.text)
        elif isinstance(action, core.ScrubbedCopy):
            out.append(f"{action.summary.text}\n\n{action.note}")
        elif isinstance(action, core.ModeMenu):
            out.append(f"{action.question}\n{action.text}\n{action.usage}")
    return out
