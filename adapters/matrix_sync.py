"""The sync mechanics of the Matrix adapter, apart from what the events mean.

- `Checkpoints`: nio's sync token is saved only once every event of the batches it covers has
  been answered, so a crash (even SIGKILL) makes the homeserver send those events again.
- `after_invitation`: in a timeline, the events the bot is meant to answer: those after its
  invitation (or, uninvited, its join). Everything before is history it is only shown.
- `replied_to`: the events the bot has already answered, read from its own replies in the same
  timeline; with `Checkpoints`, events sent again after a crash are not answered twice. The
  homeserver keeps that record; the bot keeps no copy of any photo or message. `files_only`:
  those it stopped answering between the file and its summary.
- `MissingKeys`: undecryptable events wait, a bounded time, for their room key; one key request
  per session.
- `PowerLevelCache`: a room's power levels, fetched at most once a minute and forgotten when an
  `m.room.power_levels` event arrives.
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

from nio import (
    AsyncClient,
    ForwardedRoomKeyEvent,
    InviteMemberEvent,
    MegolmEvent,
    RoomEncryptedFile,
    RoomEncryptedImage,
    RoomEncryptedVideo,
    RoomKeyEvent,
    RoomMemberEvent,
    RoomMessageFile,
    RoomMessageImage,
    RoomMessagesResponse,
    RoomMessageVideo,
    SyncResponse,
)
from nio.exceptions import EncryptionError, LocalProtocolError

log = logging.getLogger(__name__)

TIMELINE_LIMIT = 100  # events per room and sync: a burst while the bot was away fits in one
GAP_PAGES = 5  # of TIMELINE_LIMIT events, read back when a sync's timeline was cut short
SYNC_FILTER: dict[str, Any] = {"room": {"timeline": {"limit": TIMELINE_LIMIT}}}
KEY_WAIT_SECONDS = 20.0  # how long an undecryptable event waits for its room key
POWER_LEVELS_SECONDS = 60.0
FILE_REPLIES = (RoomMessageFile, RoomMessageImage, RoomEncryptedFile, RoomEncryptedImage)
VIDEO_REPLIES = (RoomMessageVideo, RoomEncryptedVideo)
FILE_TYPES = ("m.file", "m.image", "m.video")
REPLACES = "org.scrubbot.replaces"  # on a clean copy posted in place of a redacted original


class Checkpoints:
    """Save a batch's sync token once its events, and those of every batch before, are done.

    A task that was cancelled (the bot stopped while it waited) never counts as done: its
    batch is delivered again after a restart."""

    def __init__(self, save: Callable[[str], None]) -> None:
        self._save = save
        self._batches: deque[tuple[str, tuple[asyncio.Task[None], ...]]] = deque()

    def add(self, token: str, tasks: Iterable[asyncio.Task[None]]) -> None:
        batch = tuple(tasks)
        self._batches.append((token, batch))
        for task in batch:
            task.add_done_callback(self._advance)
        self._advance()

    @property
    def pending(self) -> int:
        return len(self._batches)

    def _advance(self, _: object = None) -> None:
        latest = None
        while self._batches and all(t.done() and not t.cancelled() for t in self._batches[0][1]):
            latest = self._batches.popleft()[0]
        if latest is not None:
            self._save(latest)


def _own_membership(event: Any, user_id: str) -> str | None:
    if isinstance(event, RoomMemberEvent) and event.state_key == user_id:
        return str(event.membership)
    return None


def after_invitation(events: list[Any], user_id: str, invited_at: int | None) -> list[Any]:
    """The events after the bot's last invitation into the room (or its last join without
    one). A timeline too long to show the invitation is cut at `invited_at` (the invite's
    server time, when the bot saw it) or else at the join."""
    cut = None
    join = None
    for index, event in enumerate(events):
        membership = _own_membership(event, user_id)
        if membership == "invite" or (
            membership == "join" and event.prev_membership not in ("invite", "join")
        ):
            cut = index
        elif membership == "join" and event.prev_membership == "invite":
            join = index
        elif membership in ("leave", "ban"):
            cut = index  # what follows, until a new invitation, is not for the bot
    if cut is not None:
        return events[cut + 1 :]
    if invited_at is not None:
        return [e for e in events if getattr(e, "server_timestamp", 0) >= invited_at]
    if join is not None:
        return events[join + 1 :]
    return events


def replied_to(events: Iterable[Any], user_id: str) -> set[str]:
    """The event ids the bot's own events in `events` answer (replies, or clean copies posted
    in place of a redacted original)."""
    answered = set()
    for event in events:
        if getattr(event, "sender", None) != user_id:
            continue
        content = event.source.get("content") or {}
        target = _reply_target(content)
        if target is not None:
            answered.add(target)
        if isinstance(content.get(REPLACES), str):
            answered.add(content[REPLACES])
    return answered


def _reply_target(content: dict[str, Any]) -> str | None:
    """The event id a message's content replies to, if it is a reply."""
    relates = content.get("m.relates_to") or {}
    reply = relates.get("m.in_reply_to") if isinstance(relates, dict) else None
    if isinstance(reply, dict) and isinstance(reply.get("event_id"), str):
        return str(reply["event_id"])
    return None


def files_only(events: Iterable[Any], user_id: str) -> set[str]:
    """The event ids the bot answered with a file but not yet with the summary that follows
    it (it stopped in between): they get the summary alone."""
    files: set[str] = set()
    others: set[str] = set()
    for event in events:
        if getattr(event, "sender", None) != user_id:
            continue
        content = event.source.get("content") or {}
        target = _reply_target(content)
        if target is None:
            continue
        replies = FILE_REPLIES + VIDEO_REPLIES
        is_file = isinstance(event, replies) or content.get("msgtype") in FILE_TYPES
        (files if is_file else others).add(target)  # undecryptable: not a file
    return files - others


def arrived_keys(response: SyncResponse) -> set[str]:
    """The megolm session ids whose keys came in this sync (nio has already stored them)."""
    return {
        e.session_id
        for e in response.to_device_events
        if isinstance(e, RoomKeyEvent | ForwardedRoomKeyEvent)
    }


class MissingKeys:
    """Events that did not decrypt, each waiting a bounded time for its session's key."""

    def __init__(self, seconds: float = KEY_WAIT_SECONDS) -> None:
        self.seconds = seconds
        self._requested: set[str] = set()
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def arrived(self, session_ids: Iterable[str]) -> None:
        for session_id in session_ids:
            for waiter in self._waiters.get(session_id, ()):
                waiter.set()

    async def wait(self, client: AsyncClient, event: MegolmEvent) -> Any | None:
        """The decrypted event, or None when its key did not come in time."""
        await self._request(client, event)
        deadline = time.monotonic() + self.seconds
        waiter = asyncio.Event()
        self._waiters.setdefault(event.session_id, set()).add(waiter)
        try:
            while True:
                decrypted = _decrypt(client, event)
                left = deadline - time.monotonic()
                if decrypted is not None or left <= 0:
                    return decrypted
                waiter.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.wait(), timeout=left)
        finally:
            waiters = self._waiters.get(event.session_id, set())
            waiters.discard(waiter)
            if not waiters:
                self._waiters.pop(event.session_id, None)

    async def _request(self, client: AsyncClient, event: MegolmEvent) -> None:
        """Ask the sender's and our own devices for the key, once per session."""
        session = event.session_id
        if session in self._requested or session in client.outgoing_key_requests:
            return
        self._requested.add(session)
        # LocalProtocolError: nio already asked (a request kept in its store from a past run)
        with contextlib.suppress(LocalProtocolError):
            await client.request_room_key(event)
        log.info("matrix: asked for a missing room key")


def _decrypt(client: AsyncClient, event: MegolmEvent) -> Any | None:
    try:
        decrypted = client.decrypt_event(event)
    except EncryptionError:
        return None
    return None if isinstance(decrypted, MegolmEvent) else decrypted


_T = TypeVar("_T")


class PowerLevelCache(Generic[_T]):
    """What `fetch(room_id)` returned for a room, for up to `seconds`, until `forget`. Photos
    arriving together share one fetch."""

    def __init__(
        self, fetch: Callable[[str], Awaitable[_T]], seconds: float = POWER_LEVELS_SECONDS
    ) -> None:
        self._fetch = fetch
        self.seconds = seconds
        self._cached: dict[str, tuple[float, asyncio.Task[_T]]] = {}

    async def get(self, room_id: str) -> _T:
        cached = self._cached.get(room_id)
        if cached is None or time.monotonic() - cached[0] >= self.seconds:
            cached = (time.monotonic(), asyncio.ensure_future(self._fetch(room_id)))
            self._cached[room_id] = cached
        try:
            return await asyncio.shield(cached[1])
        except Exception:
            if self._cached.get(room_id) is cached:
                del self._cached[room_id]  # the next photo asks again
            raise

    def forget(self, room_id: str) -> None:
        self._cached.pop(room_id, None)


def changes_power(events: Iterable[Any]) -> bool:
    """Whether a room's timeline or state holds a new m.room.power_levels (or create) event."""
    return any(
        getattr(e, "source", {}).get("type") in ("m.room.power_levels", "m.room.create")
        for e in events
    )


def invite_time(state: list[Any], user_id: str) -> int:
    """The server time of the bot's invitation (Synapse sends the invite event itself in the
    invite state), or now, which errs on the side of ignoring history."""
    for event in state:
        if (
            isinstance(event, InviteMemberEvent)
            and event.state_key == user_id
            and event.membership == "invite"
        ):
            stamp = event.source.get("origin_server_ts")
            if isinstance(stamp, int):
                return stamp
    return int(time.time() * 1000)


async def read_gap(
    client: AsyncClient, since: str | None, room_id: str, prev_batch: str | None
) -> list[Any]:
    """The events a limited timeline left out since the last sync, oldest first (a
    bounded number of pages: after a long outage in a busy room the oldest may stay out)."""
    older: list[Any] = []
    start = prev_batch
    for _ in range(GAP_PAGES):
        if start is None:
            break
        page = await client.room_messages(room_id, start=start, end=since, limit=TIMELINE_LIMIT)
        if not isinstance(page, RoomMessagesResponse) or not page.chunk:
            break
        older.extend(page.chunk)  # newest first
        if not page.end or page.end == start:
            break
        start = page.end
    if older:
        log.info("matrix: read %d events a sync left out", len(older))
    return older[::-1]
