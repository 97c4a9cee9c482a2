"""A send that arrived twice: its first answer was lost, the retry posted it again; found, removed.

The Bot API has no idempotency key, so when the answer to `sendDocument` (or `sendMediaGroup`)
is lost after Telegram carried the call out, the retry posts the same file again. The duplicate
can be found: editing a message to exactly the caption and reply markup it has is refused with
"message is not modified", while a message the bot did not send answers "message can't be
edited" and a missing one "message to edit not found". So after such a send, each id it may have
used is probed with `editMessageCaption`, with exactly the caption, parse mode, entities and
markup of the retried send; only a "not modified" answer leads to `deleteMessage`.

When it probes (all must hold):
- An earlier attempt of this send failed *ambiguously*: a time-out or a dropped connection after
  the request was written. A 5xx or 429 answer means the call was not carried out, a refused
  connection that it never arrived: nothing to look for.
- Its retry then succeeded with message id M (an album: M is its first item).
- This process had created a message in the chat before the send's first attempt started.

Which ids it probes: those in (L, M), where L is the highest id this process knew in the chat
before the first ambiguous attempt started (the original's id, ids from updates, its own sends);
never an id it knows (its confirmed sends, other users' messages, in any chat); never one that
another unfinished send in the chat may have used (below); at most MAX_PROBES, lowest first;
each once, with the retries of any call (a probe that still fails leaves a possible duplicate
and removes nothing).

Why it cannot delete the only copy of any photo. It deletes only a message whose probe showed it
to be this bot's ("not modified", or an edit carried out) at an id it does not know. Other
users' messages answer "can't be edited" and are never touched. Messages of an earlier process
of this bot (killed with sends in flight) all have ids below L: this process's own message in
the chat came after them (ids only grow), and L is at least that message's id. So the message
was created by this process, which knows the id of each of its sends that succeeded: it is a
lost attempt of one of its sends, and (below) of a send that has succeeded since, whose photo
is at the id that send got. "Not modified" means our own caption: a repeat of this send.

Which other messages it may edit, and why those are duplicates too. The only messages of this
bot in (L, M) that it does not know are lost attempts of sends of this process in that chat (this
one's, or those of other sends under way at the same time: attempts that were in flight or
lost at some moment between the start of our first lost attempt and our confirmed retry;
earlier ones ended below L, later ones above M). Of another send's, one with a different caption
would be changed by the probe, and one might be the only copy of its photo while that send is
unfinished. So the ids another send's attempt may have used while that send has not succeeded
(above the highest id known when the attempt started, without end) are never probed: before
probing we wait (up to PROBE_WAIT) for such attempts to resolve, and skip what is still open.
Once a send has succeeded, its photo is at its own confirmed id, and a lost attempt of it is a
duplicate as much as ours: a probe that is carried out (the caption differed) has found one, and
it is deleted at once, so no changed caption stays (should that delete fail, the other's repeat
stays with our caption). A send that gives up leaves its lost
attempts open: nothing above the highest id known when they started is probed in that chat
again while this process runs. Of two sends lost at the same moment, the one whose lost
attempt began lower probes first, then the other (a probe changes nothing a later one needs).

An album's items get consecutive ids in item order, and only its first item has a caption, so a
lost album is probed item by item: an id with the first item's caption only where the id before
it is settled (known, below L, or answered "nothing there"), each next id with the next item's.

This rests on one property of Telegram: ids in a chat grow in the order the messages were
created, and a lost attempt was carried out before its own retry (the retry is sent only after
the first attempt's answer was lost). Where it fails, a duplicate lies above M and is missed,
never a photo lost. Ids are per bot account in private chats and basic groups (an id known in
another chat is not this chat's) and per chat in supergroups (skipping it there may only miss
one).

Only sends that carry files are looked after; a repeated text message is left as it is.
"""

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from telegram.error import BadRequest, NetworkError, TelegramError

log = logging.getLogger(__name__)

TRACKED = frozenset(["sendDocument", "sendPhoto", "sendMediaGroup"])
MAX_PROBES = 10  # per send
PROBE_WAIT = 5.0  # seconds a probe waits for another send's attempt in the chat to resolve
KNOWN_IDS = 4096  # ids remembered per chat and over all chats (the oldest go first)
CHATS = 1024  # chats remembered (least recently used go first, unless a send is under way)
NOT_MODIFIED = "message is not modified"
# Answers that say the id holds no message of this bot we could change: nothing to probe again.
NOTHING_THERE = (
    "message can't be edited",
    "message to edit not found",
    "there is no caption in the message to edit",
)
# httpx's errors (PTB's transport, not imported here) that mean the request never left.
_NOT_SENT = frozenset(["ConnectError", "ConnectTimeout", "PoolTimeout"])

JSONDict = dict[str, Any]
# How a probe reaches Telegram: (method, parameters) -> the answer; raises TelegramError.
Call = Callable[[str, JSONDict], Awaitable[object]]


def ambiguous(error: BaseException) -> bool:
    """Whether a failed call may have been carried out: a time-out or a dropped connection once
    the request was written (PTB raises those from httpx's error), not an answer of the server."""
    if not isinstance(error, NetworkError) or isinstance(error, BadRequest):
        return False
    cause = error.__cause__
    from_httpx = type(cause).__module__.split(".")[0] == "httpx"
    return from_httpx and type(cause).__name__ not in _NOT_SENT


@dataclass(eq=False)
class _Attempt:
    """One attempt whose message, if it made one, this process does not know: in flight or lost."""

    send: "Send"
    low: int  # the highest id known in the chat when it started: its message is above
    high: int | None = None  # ... and below the id its send's retry got, once it succeeded

    def covers(self, message_id: int) -> bool:
        return message_id > self.low and (self.high is None or message_id < self.high)


@dataclass(eq=False)
class _Chat:
    highest: int = 0
    own: bool = False  # this process has created a message here
    known: OrderedDict[int, None] = field(default_factory=OrderedDict)
    attempts: list[_Attempt] = field(default_factory=list)
    sends: int = 0  # sends under way
    blocked_above: int | None = None  # a send gave up with a lost attempt: nothing above probed
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    probing: asyncio.Lock = field(default_factory=asyncio.Lock)


class Duplicates:
    """What this process knows of message ids, per chat; `send` follows one send's attempts."""

    def __init__(self) -> None:
        self._chats: OrderedDict[int | str, _Chat] = OrderedDict()
        self._known: OrderedDict[int, None] = OrderedDict()  # over all chats

    def seen(self, chat_id: int | str, message_id: int) -> None:
        """A message id from an update (or a send's reply target)."""
        self._learn(self._chat(chat_id), message_id)

    def sent(self, chat_id: int | str, message_ids: Iterable[int]) -> None:
        """Messages this process created (any send, tracked or not)."""
        chat = self._chat(chat_id)
        for message_id in message_ids:
            self._learn(chat, message_id)
            chat.own = True

    def send(self, chat_id: int | str) -> "Send":
        """Call before a tracked send's first attempt."""
        return Send(self, chat_id, self._chat(chat_id))

    def knows(self, chat_id: int | str, message_id: int) -> bool:
        """Known in this chat, or in another (ids are per bot account in private chats and
        basic groups; in a supergroup skipping such an id may only miss a duplicate)."""
        return message_id in self._known or self.knows_here(chat_id, message_id)

    def knows_here(self, chat_id: int | str, message_id: int) -> bool:
        chat = self._chats.get(chat_id)
        return chat is not None and message_id in chat.known

    def _chat(self, chat_id: int | str) -> _Chat:
        chat = self._chats.pop(chat_id, None) or _Chat()
        self._chats[chat_id] = chat
        if len(self._chats) > CHATS:
            idle = [key for key, c in self._chats.items() if not c.sends and not c.attempts]
            for key in idle[: len(self._chats) - CHATS]:
                del self._chats[key]  # forgetting only stops probes there (`own` is gone)
        return chat

    def _learn(self, chat: _Chat, message_id: int) -> None:
        chat.highest = max(chat.highest, message_id)
        for known in (chat.known, self._known):
            known[message_id] = None
            known.move_to_end(message_id)
            while len(known) > KNOWN_IDS:
                known.popitem(last=False)


class Send:
    """One tracked send: `started` before each attempt, then `failed` or `succeeded`, and
    finally `settle` once it succeeded (or `gave_up`)."""

    def __init__(self, duplicates: Duplicates, chat_id: int | str, chat: _Chat) -> None:
        self._duplicates, self._chat_id, self._chat = duplicates, chat_id, chat
        self.may_probe = chat.own  # decided once, before the first attempt
        self.lost: list[_Attempt] = []
        self._ours: set[int] = set()  # duplicates found
        chat.sends += 1

    def started(self) -> _Attempt:
        attempt = _Attempt(self, self._chat.highest)
        self._chat.attempts.append(attempt)
        self._chat.changed.set()
        return attempt

    def failed(self, attempt: _Attempt, error: BaseException) -> None:
        if ambiguous(error) or isinstance(error, asyncio.CancelledError):
            self.lost.append(attempt)
        else:
            self._chat.attempts.remove(attempt)  # answered: the call was not carried out
        self._chat.changed.set()

    def succeeded(self, attempt: _Attempt, message_ids: Iterable[int]) -> list[int]:
        """Records the ids of the confirmed messages; the lost attempts lie below them."""
        ids = sorted(message_ids)
        self._chat.attempts.remove(attempt)
        for message_id in ids:
            self._duplicates._learn(self._chat, message_id)
        self._chat.own = self._chat.own or bool(ids)
        for lost in self.lost:
            lost.high = ids[0] if ids else lost.high
        self._chat.changed.set()
        return ids

    def gave_up(self) -> None:
        """No attempt succeeded: a lost one may hold a message anywhere above where it began."""
        for lost in self.lost:
            self._chat.attempts.remove(lost)
            low = self._chat.blocked_above
            self._chat.blocked_above = lost.low if low is None else min(low, lost.low)
        self._done()

    async def settle(self, first_id: int, fields: list[JSONDict], call: Call) -> int:
        """After success at `first_id`: probes the ids the lost attempts may have used, with the
        caption fields of each message sent (one, or an album's items); deletes those that answer
        "not modified". Returns how many duplicates it deleted."""
        try:
            if not self.lost:
                return 0
            if not self.may_probe:
                log.info(
                    "telegram: a file may have been sent twice in a %s; not looked for there "
                    "(no earlier message of this process in it)",
                    self._where(),
                )
                return 0
            await self._wait_for_others(first_id)
            async with self._chat.probing:
                return await self._probe(first_id, fields, call)
        finally:
            for lost in self.lost:  # delivered now: its repeats are others' to find as well
                self._chat.attempts.remove(lost)
            self.lost = []
            self._done()

    def candidates(self, first_id: int) -> list[int]:
        """The ids to probe, lowest first (at most MAX_PROBES)."""
        chat = self._chat
        low = min(lost.low for lost in self.lost)
        top = first_id if chat.blocked_above is None else min(first_id, chat.blocked_above + 1)
        unresolved = [a for a in chat.attempts if a.send is not self and a.high is None]
        found = []
        for message_id in range(low + 1, top):
            if self._duplicates.knows(self._chat_id, message_id):
                continue
            if any(other.covers(message_id) for other in unresolved):
                continue  # perhaps the only copy of a photo still being sent
            found.append(message_id)
            if len(found) == MAX_PROBES:
                break
        return found

    async def _wait_for_others(self, first_id: int) -> None:
        """Until no other attempt in the chat that may lie below `first_id` is in flight, and
        other sends whose lost attempts began lower have looked for theirs (one at a time)."""
        order = (min(lost.low for lost in self.lost), id(self))

        def unresolved() -> bool:
            for other in self._chat.attempts:
                if other.send is self or other.low >= first_id - 1:
                    continue
                if other.high is None:
                    return True
                if (other.low, id(other.send)) < order:
                    return True  # a send still under way whose lost attempts began lower
            return False

        try:
            async with asyncio.timeout(PROBE_WAIT):
                while unresolved():
                    self._chat.changed.clear()
                    await self._chat.changed.wait()
        except TimeoutError:
            pass  # what is still unresolved is skipped

    async def _probe(self, first_id: int, fields: list[JSONDict], call: Call) -> int:
        """Lowest id first. An album's items have consecutive ids in item order, so a lost album
        is probed item by item: its first item with the first item's caption, but only at an id
        whose predecessor is settled (an item further in would otherwise get the wrong caption),
        then each following id with the next item's."""
        candidates = self.candidates(first_id)
        low = min(lost.low for lost in self.lost)
        deleted, others, probed = 0, 0, 0
        item = 0  # which of the album's items the next id would be
        settled = {low}  # ids known to hold no lost message of this send
        wanted = len(fields) * len(self.lost)  # at most this many duplicates exist
        for message_id in candidates:
            if deleted >= wanted:
                break
            before = message_id - 1
            if item and before not in settled | self._ours:
                item = 0  # the album's run broke off: look for a first item again
            first_of_run = before in settled or self._duplicates.knows_here(self._chat_id, before)
            if not item and len(fields) > 1 and not first_of_run:
                continue
            answer = await self._probe_one(message_id, fields[item], call)
            probed += 1
            if answer == "ours":
                deleted += await self._delete(message_id, call)
                self._ours.add(message_id)
                item = (item + 1) % len(fields)
            elif answer == "changed":  # a lost attempt of another send, delivered since
                others += await self._delete(message_id, call)
                item = 0
            else:
                item = 0
                if answer == "nothing":
                    settled.add(message_id)
                    self._chat.known[message_id] = None  # never probed here again
        if candidates:
            log.info(
                "telegram: looked for a file sent twice in a %s: %d probed, %d duplicate(s) "
                "deleted (%d of another send)",
                self._where(),
                probed,
                deleted + others,
                others,
            )
        return deleted

    def _where(self) -> str:
        chat_id = self._chat_id
        group = chat_id.startswith(("@", "-")) if isinstance(chat_id, str) else chat_id < 0
        return "group" if group else "private chat"

    async def _probe_one(self, message_id: int, caption: JSONDict, call: Call) -> str:
        """What the probe found: "ours" (not modified), "changed" (carried out: a message of
        this bot with another caption), "nothing" (no message of this bot there), "unknown"."""
        params = {"chat_id": self._chat_id, "message_id": message_id, **caption}
        try:
            await call("editMessageCaption", params)
        except BadRequest as error:
            text = error.message.lower()
            if NOT_MODIFIED in text:
                return "ours"
            if any(answer in text for answer in NOTHING_THERE):
                return "nothing"
            return "unknown"
        except TelegramError as error:  # after its retries: the duplicate may stay
            log.info("telegram: a probe failed (%s)", type(error).__name__)
            return "unknown"
        return "changed"

    async def _delete(self, message_id: int, call: Call) -> int:
        try:
            await call("deleteMessage", {"chat_id": self._chat_id, "message_id": message_id})
        except TelegramError as error:
            log.warning("telegram: could not delete a duplicate (%s)", type(error).__name__)
            return 0
        self._chat.known[message_id] = None
        return 1

    def _done(self) -> None:
        self._chat.sends -= 1
        self._chat.changed.set()
