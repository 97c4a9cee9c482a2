"""The chat policy every network shares: adapters hand in neutral events, get actions back.

    chat = Chat("telegram", dialect, service, store)
    actions = await chat.photos(Photos(where, who, (Photo(size, fetch), ...)))
    actions = await chat.command(Command(where, who, "stats", ("on",)))

An event says where (a chat, private or a group, with the sender's language when the network
knows it and a callback for the bot's rights there), who (an opaque key for the rate limit, a
display name for credits, a callback for whether they may change settings) and what (photos,
each with its announced size and a `fetch` callback, and a `local` one where the network can
show a file where it lies; or a command with its arguments). The core owns the size pre-check
(a file over the in-memory limit is cleaned where it lies when `local` gives its path), the
per-sender rate limit (every flow, groups included), the memory slot, scrubbing through
`Service`, the group modes and their default, who may change settings, usage counts and every
command. It returns actions (say a text or a summary, send files, post a
clean copy, remove originals) and never calls a network: no PTB, no nio here. A clean copy
comes before the removal of its original.

Private chats get every file answered with values; groups only the photos that carried hidden
data, with kinds only, as the group's mode says: `off` leaves photos alone, `warn` answers with
a clean copy, `replace` posts a clean copy crediting its sender and then removes the original (the
default where the bot may remove others' messages, else `warn`). Adapters carry the actions out
in order.
"""

import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from bot import metrics, texts
from bot.errors import DamagedImage, TooLarge, Unavailable
from bot.i18n import DEFAULT, available, language_for
from bot.ratelimit import RateLimit
from bot.service import LocalFile, Reply, ScrubbedFile, Service
from bot.store import Store
from bot.summary import Detail, Summary
from bot.texts import Syntax

log = logging.getLogger(__name__)

PHOTOS_PER_MINUTE = 30  # per sender, in every chat; more gets a friendly "please wait"
LANGUAGE_WORDS = ("language", "sprache", "lang")


class Mode(StrEnum):
    """What the bot does with leaky photos in a group; its admins or moderators choose."""

    OFF = "off"
    WARN = "warn"
    REPLACE = "replace"


MODES = tuple(Mode)


@dataclass(frozen=True)
class Rights:
    """What the bot may do in a chat, as the adapter reads its network's permissions."""

    may_remove: bool = False  # remove others' messages (Telegram: delete, Matrix: redact)
    remove_level: int | None = None  # what removing takes, where the network has levels
    may_post: bool = True  # send messages and files there


async def _no_rights() -> Rights:
    return Rights()


async def _nobody() -> bool:
    return False


@dataclass(frozen=True)
class Where:
    chat: str  # the network's id of the chat (stored only as a keyed hash)
    group: bool = False
    language: str | None = None  # the sender's language tag, where the network tells it
    rights: Callable[[], Awaitable[Rights]] = _no_rights  # asked only when it matters


@dataclass(frozen=True)
class Who:
    key: str  # opaque: the network's id of the sender, for the rate limit only
    name: str | None = None  # shown in a credit; None: an anonymous admin
    may_configure: Callable[[], Awaitable[bool]] = _nobody  # in a group; asked when it matters


@dataclass(frozen=True)
class Photo:
    size: int | None  # as the network announces it; None when it does not
    # None: not fetchable or not readable (answered as damaged); raises Unavailable when the
    # network would not give it even after retrying, TooLarge past the limit when `size` was
    # not announced (it stops reading there)
    fetch: Callable[[], Awaitable[bytes | None]] = field(repr=False)
    # Where the network lets the bot read a file where it lies (Telegram with a local Bot API
    # server): the file's path, when it is a video this process can read; None otherwise. A
    # file over the in-memory limit but within the network's is then cleaned from there.
    local: Callable[[], Awaitable[str | None]] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Photos:
    where: Where
    who: Who
    photos: tuple[Photo, ...]  # one, or the files of one album


@dataclass(frozen=True)
class Command:
    where: Where
    who: Who
    verb: str  # help, privacy, stats, forget, language, mode (any other: help)
    args: tuple[str, ...] = ()


# -- actions: what the adapter does, in order --------------------------------------------------


@dataclass(frozen=True)
class Say:
    """Answer the event with a text (or a summary, rendered by the adapter)."""

    text: str = ""
    summary: Summary | None = None


@dataclass(frozen=True)
class Denied:
    """Answer that the sender may not do that, or that the bot lacks a right for it."""

    text: str


@dataclass(frozen=True)
class SendFiles:
    """Answer the event with the scrubbed files (one message, or one album)."""

    files: tuple[ScrubbedFile, ...]


@dataclass(frozen=True)
class Remove:
    """Remove the originals: the event's photos at these positions. It always follows the
    ScrubbedCopy it makes room for, and is skipped when that copy could not be posted; when the
    removal fails, the adapter answers the original with the copy's summary and `if_kept`
    (mode `warn` for that photo)."""

    photos: tuple[int, ...]
    if_kept: str = field(default="", compare=False)  # "please delete your original"


@dataclass(frozen=True)
class ScrubbedCopy:
    """A clean copy with its caption (the summary, then `note`). With `reply`, in answer to
    photo `to`; else posted to the chat in its place (same thread), the original removed."""

    files: tuple[ScrubbedFile, ...]
    summary: Summary
    note: str
    to: int
    reply: bool


@dataclass(frozen=True)
class ModeMenu:
    """The group's mode and how to change it (Telegram shows buttons, Matrix the commands)."""

    current: Mode
    question: str
    text: str  # what the current mode does
    usage: str  # how to change it, in the network's syntax
    labels: tuple[tuple[Mode, str], ...]  # each mode's short name, for buttons


Action = Say | Denied | SendFiles | Remove | ScrubbedCopy | ModeMenu


class Dialect(Protocol):
    """What differs between networks in what the bot says; each adapter has one."""

    @property
    def syntax(self) -> Syntax: ...

    @property
    def download_limit(self) -> int | None:
        """What the network lets a bot fetch, when it caps that."""

    def how_to_send(self, language: str) -> str:
        """Under the welcome: how to send a photo on this network."""

    def too_large(self, language: str, limit: int) -> str: ...

    def not_allowed(self, language: str) -> str:
        """Only the group's admins (moderators) can change that."""

    def cannot_remove(self, language: str, rights: Rights) -> str:
        """Mode `replace` was asked for, and the bot may not remove others' messages."""


class Chat:
    """The bot's policy on one network; every network's Chat shares the service and store."""

    def __init__(
        self,
        network: str,
        dialect: Dialect,
        service: Service,
        store: Store,
        limit: RateLimit | None = None,
        source_url: str = texts.SOURCE_URL,
    ) -> None:
        self.network = network
        self.source_url = source_url
        self.dialect = dialect
        self.service = service
        self.store = store
        self.limit = limit or RateLimit(PHOTOS_PER_MINUTE, 60)

    # -- what adapters ask besides events -------------------------------------------------------

    def key(self, where: Where | str) -> str:
        chat = where.chat if isinstance(where, Where) else where
        return self.store.chat_key(self.network, chat)

    async def language(self, where: Where) -> str:
        """A private chat speaks its sender's language; a group the one stored for it."""
        hint = None if where.group else where.language
        if hint:
            return language_for(hint)
        return await self.store.setting(self.key(where), "language") or DEFAULT

    async def mode(self, where: Where) -> tuple[Mode, Rights]:
        """The group's mode (or its default), and the bot's rights there now."""
        rights = await where.rights()
        stored = await self.store.setting(self.key(where), "mode")
        if stored in MODES:
            return Mode(stored), rights
        return (Mode.REPLACE if rights.may_remove else Mode.WARN), rights

    async def joined(self, where: Where, language: str | None) -> str:
        """Added to a group by someone speaking `language`: the group speaks it from now on."""
        chosen = language_for(language)
        await self.store.set_setting(self.key(where), "language", chosen)
        return chosen

    async def left(self, where: Where) -> None:
        """Removed from a group: forget its settings and counts."""
        await self.store.forget(self.key(where))

    async def moved(self, old: str, new: str) -> None:
        """The chat has a new id (a Telegram group became a supergroup) and keeps its data."""
        await self.store.move(self.key(old), self.key(new))

    # -- photos ---------------------------------------------------------------------------------

    async def photos(self, event: Photos) -> list[Action]:
        """One photo or one album: checked, fetched, scrubbed, counted and answered."""
        started = time.perf_counter()
        where = event.where
        mode, rights = await self.mode(where) if where.group else (Mode.WARN, Rights())
        if mode is Mode.OFF:
            return []
        if not rights.may_post:
            log.info("%s: may not post in a group; a photo is left alone", self.network)
            return []
        language = await self.language(where)
        if not all(self.limit.allow(event.who.key) for _ in event.photos):
            return [Say(texts.slow_down(language))]
        actions: list[Action] = []
        limit = min(self.dialect.download_limit or math.inf, self.service.limits.max_bytes)
        wanted = [i for i, p in enumerate(event.photos) if p.size is None or p.size <= limit]
        local = await self._local(event.photos, limit)
        wanted = sorted([*wanted, *local])
        if len(wanted) < len(event.photos):
            log.info(
                "%s: %d files over the size limit, not fetched",
                self.network,
                len(event.photos) - len(wanted),
            )
            if not where.group:
                actions.append(Say(self.dialect.too_large(language, int(limit))))
        detail = Detail.GROUP if where.group else Detail.PRIVATE
        async with self.service.slot():
            with metrics.in_flight(self.network, started):
                fetched: list[tuple[int, bytes | LocalFile]] = []
                unfetched, lost, too_large = 0, 0, 0
                for index in wanted:
                    if index in local:
                        fetched.append((index, local[index]))
                        continue
                    try:
                        data = await event.photos[index].fetch()
                    except TooLarge:  # its size was not announced, and it is over the limit
                        too_large += 1
                        continue
                    except Unavailable:  # the network would not give it, even after retrying
                        lost += 1
                        continue
                    if data is None:
                        unfetched += 1
                    else:
                        fetched.append((index, data))
                if not fetched:
                    reply = Reply(None, (), ())
                else:
                    reply = await self.service.scrub([d for _, d in fetched], language, detail)
                    await self.store.record(self.key(where), *reply.usage())
                    metrics.count(self.network, reply)
        # each file's `source` is its place among the event's photos, not among those fetched
        files = tuple(replace(f, source=fetched[f.source][0]) for f in reply.files)
        missing = [Say(texts.not_fetched(language, lost))] if lost else []
        if where.group:
            answer = self._in_group(event, mode, rights, reply.summary, files, language)
            return actions + missing + answer
        refusals = [*reply.refusals, *[texts.refusal(DamagedImage(), language)] * unfetched]
        if too_large and len(wanted) == len(event.photos):  # else the pre-check said it
            refusals.append(self.dialect.too_large(language, int(limit)))
        # The files before the words about them: no summary promises a file that never came.
        if files:
            actions.append(SendFiles(files))
        if reply.summary:
            actions.append(Say(summary=reply.summary))
        if refusals:
            actions.append(Say("\n".join(dict.fromkeys(refusals))))
        return actions + missing

    async def _local(self, photos: Sequence[Photo], limit: float) -> dict[int, LocalFile]:
        """The files over `limit` that the network lets the bot read where they lie (within
        its own download limit), by their place among `photos`."""
        most = self.dialect.download_limit
        found: dict[int, LocalFile] = {}
        for index, photo in enumerate(photos):
            big = photo.size is not None and limit < photo.size <= (most or math.inf)
            if big and most is not None and photo.local is not None:
                path = await photo.local()
                if path is not None:
                    found[index] = LocalFile(path, most)
        return found

    def _in_group(
        self,
        event: Photos,
        mode: Mode,
        rights: Rights,
        summary: Summary | None,
        files: tuple[ScrubbedFile, ...],
        language: str,
    ) -> list[Action]:
        """Only photos that carried hidden data are answered in a group, as its mode says."""
        leaky = tuple(f for f in files if f.kinds)
        if not leaky or summary is None:
            return []  # nothing hidden, or not a photo: no need to speak up in a group
        first = leaky[0].source
        if mode is Mode.REPLACE and rights.may_remove:
            # Post, then remove: the adapter stops at a copy that failed, the original stays.
            videos = sum(f.mime.startswith("video/") for f in leaky)
            note = texts.credit(language, event.who.name, videos, len(leaky))
            removed = tuple(f.source for f in leaky)
            copy = ScrubbedCopy(leaky, summary, note, first, False)
            if_kept = texts.please_delete(language, len(leaky))
            return [copy, Remove(removed, if_kept)]
        note = texts.please_delete(language, len(leaky))
        return [ScrubbedCopy(leaky, summary, note, first, True)]

    # -- commands -------------------------------------------------------------------------------

    async def command(self, event: Command) -> list[Action]:
        where, verb, args = event.where, event.verb.lower(), tuple(a.lower() for a in event.args)
        language = await self.language(where)
        syntax = self.dialect.syntax
        if verb in LANGUAGE_WORDS:
            verb = "language"
        changes = (verb == "mode" and args) or verb == "forget"
        changes = changes or (verb == "language" and args) or (verb == "stats" and args)
        if changes and where.group and not await event.who.may_configure():
            return [Denied(self.dialect.not_allowed(language))]
        key = self.key(where)
        if verb == "language":
            if len(args) != 1 or args[0] not in available():
                return [Say(texts.languages(language, syntax, available()))]
            await self.store.set_setting(key, "language", args[0])
            return [Say(texts.language_set(args[0]))]
        if verb == "mode":
            return [await self._mode_command(where, args, language)]
        if verb == "stats" and args == ("on",):
            await self.store.opt_in(key)
            return [Say(texts.stats_on(language, syntax))]
        if verb == "stats" and args == ("off",):
            await self.store.opt_out(key)
            return [Say(texts.stats_off(language))]
        if verb == "stats":
            if await self.store.opted_in(key):
                return [Say(texts.stats(await self.store.counts(key), language))]
            return [Say(texts.stats_none(language, syntax))]
        if verb == "forget":
            await self.store.forget(key)
            return [Say(texts.forgotten(language))]
        if verb == "privacy":
            return [Say(texts.privacy(language, syntax, self.source_url))]
        return [Say(f"{texts.welcome(language)}\n\n{self.dialect.how_to_send(language)}")]

    async def _mode_command(self, where: Where, args: Sequence[str], language: str) -> Action:
        current, rights = await self.mode(where)
        if len(args) != 1 or args[0] not in MODES:
            return ModeMenu(
                current,
                texts.mode_question(language),
                texts.mode_text(current, language),
                texts.mode_usage(language, self.dialect.syntax),
                tuple(zip(MODES, texts.mode_labels(language), strict=True)),
            )
        wanted = Mode(args[0])
        if wanted is Mode.REPLACE and not rights.may_remove:
            return Denied(self.dialect.cannot_remove(language, rights))
        await self.store.set_setting(self.key(where), "mode", wanted)
        return Say(texts.mode_text(wanted, language))
