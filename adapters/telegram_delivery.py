"""Bot API calls that survive a flaky network, and a rate limit that counts what Telegram counts.

PTB hands every API request to the application's rate limiter (`BaseRateLimiter`), so this one
seam gives every call of the handlers two things, with no change to the handlers themselves:

- Retries. A 5xx answer, a time-out or a dropped connection (PTB's `NetworkError`, but not its
  `BadRequest` subclass) is tried again after an exponential backoff; a 429 after the
  `retry_after` the server names. Both for as long as a parent would still wait for the answer
  (RETRY_SECONDS), at most MAX_ATTEMPTS times. Only the task that made the call waits, so a flood
  in one chat delays only that chat (PTB's AIORateLimiter pauses every chat instead).
  Start-up and polling calls (getMe, setMyCommands, webhooks, getUpdates) are not retried here:
  a wrong setting must stop the bot quickly, and the update source has its own loop.
- Throttling by messages, as Telegram counts them: every album item is a message, at most
  GROUP_MESSAGES a minute in one group and OVERALL_MESSAGES a second overall; a delete, a lookup
  or a button answer is no message and is never held back.

A retry after a lost answer may repeat what the server already did. Where the API shows it, the
repeat is taken as done: a delete that finds the message gone had been carried out. A repeated
send cannot be told from a new one (the Bot API has no idempotency key), but a file sent twice
can be found afterwards and removed: `adapters.telegram_duplicates` says how, and why that never
removes the only copy of a photo. A repeated text message may arrive twice.

Downloads do not pass PTB's rate limiter; `fetch` gives them the same retries.

    app = ApplicationBuilder().rate_limiter(Delivery())...   # every API call
    data = await fetch(document, limit)       # a file's bytes in memory, or why there are none
"""

import asyncio
import datetime as dt
import enum
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from telegram import Document, File
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter

from adapters.telegram_duplicates import TRACKED, Duplicates, JSONDict
from bot.errors import ScrubError

log = logging.getLogger(__name__)

RETRY_SECONDS = 90.0  # how long a parent would still wait for the answer to a photo
MAX_ATTEMPTS = 12
FIRST_BACKOFF = 0.5  # seconds; doubles with every failed attempt ...
MAX_BACKOFF = 8.0  # ... up to this
DOWNLOAD_TIMEOUT = 60.0  # seconds of silence before a download counts as failed

OVERALL_MESSAGES = 30  # a second, over all chats
GROUP_MESSAGES = 20  # a minute, in one group
KNOWN_GROUPS = 1024  # group limiters kept (least recently used go first)

# What the handlers call once the bot is serving; everything else goes through untouched.
RETRIED = frozenset(
    [
        "sendMessage",
        "sendDocument",
        "sendPhoto",
        "sendMediaGroup",
        "sendChatAction",
        "deleteMessage",
        "deleteMessages",
        "getFile",
        "getChat",
        "getChatMember",
        "editMessageText",
        "answerCallbackQuery",
        "leaveChat",
    ]
)
MESSAGES = frozenset(["sendMessage", "sendDocument", "sendPhoto", "sendMediaGroup"])
_GONE = "message to delete not found"
CAPTION_FIELDS = ("caption", "parse_mode", "caption_entities")

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


def _seconds(retry_after: int | dt.timedelta) -> float:
    if isinstance(retry_after, dt.timedelta):
        return retry_after.total_seconds()
    return float(retry_after)


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    what: str,
    *,
    seconds: float = RETRY_SECONDS,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """`attempt()`, tried again on faults of the network for up to `seconds`; the last error
    is raised when it keeps failing. `what` (a method name) is all that is logged."""
    deadline = time.monotonic() + seconds
    lost_answer = False  # an earlier attempt may have been carried out
    for number in range(1, MAX_ATTEMPTS + 1):
        try:
            return await attempt()
        except RetryAfter as error:
            failure: Exception = error
            wait = _seconds(error.retry_after) + 0.1
        except BadRequest as error:
            deleting = what in ("deleteMessage", "deleteMessages")
            if lost_answer and deleting and _GONE in error.message.lower():
                return True  # type: ignore[return-value]  # the lost attempt deleted it
            raise
        except NetworkError as error:  # 5xx, time-outs, resets
            if isinstance(error.__cause__, ScrubError):
                raise  # our own upload's body stopped it (a streamed file changed): no fault
            failure, lost_answer = error, True
            wait = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (number - 1))
        if number == MAX_ATTEMPTS or time.monotonic() + wait > deadline:
            log.warning(
                "telegram: %s failed %d times (%s); giving up", what, number, _name(failure)
            )
            raise failure
        log.info("telegram: %s failed (%s); retrying in %.1f s", what, _name(failure), wait)
        await sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def _name(error: Exception) -> str:
    if isinstance(error, RetryAfter):
        return "429"
    return type(error).__name__


class Unfetched(enum.Enum):
    """Why a file's bytes could not be had."""

    TOO_BIG = "too big"  # over the limit, though Telegram did not say its size beforehand
    LOST = "lost"  # Telegram would not give it, even after retrying


async def fetch(document: Document, limit: int) -> bytes | Unfetched:
    """The file's bytes, in memory (never through a file on disk), with getFile and the
    download itself retried on faults of the network; never more than `limit` bytes kept."""
    try:
        file = await document.get_file()  # retried by Delivery
    except BadRequest as error:
        if "file is too big" in error.message.lower():
            return Unfetched.TOO_BIG  # the document did not tell its size
        log.warning("telegram: getFile refused a file (%s)", type(error).__name__)
        return Unfetched.LOST
    except TelegramError as error:
        log.warning("telegram: could not get a file (%s)", type(error).__name__)
        return Unfetched.LOST
    if (file.file_size or 0) > limit:
        return Unfetched.TOO_BIG
    try:
        data = await retrying(lambda: _read(file), "download")
    except TelegramError as error:
        log.warning("telegram: could not download a file (%s)", type(error).__name__)
        return Unfetched.LOST
    return Unfetched.TOO_BIG if len(data) > limit else data


async def _read(file: File) -> bytes:
    timeout = DOWNLOAD_TIMEOUT
    return bytes(await file.download_as_bytearray(read_timeout=timeout, connect_timeout=timeout))


class Window:
    """At most `count` messages in any `seconds`; `acquire` waits for room, first come first
    served (an album takes as many places as it has items)."""

    def __init__(self, count: int, seconds: float) -> None:
        self.count = count
        self.seconds = seconds
        self._sent: deque[float] = deque()
        self._turn = asyncio.Lock()

    async def acquire(self, amount: int = 1) -> None:
        amount = min(amount, self.count)
        async with self._turn:
            while True:  # each pass frees at least the oldest place
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= self.seconds:
                    self._sent.popleft()
                if len(self._sent) + amount <= self.count:
                    self._sent.extend([now] * amount)
                    return
                await asyncio.sleep(self._sent[0] + self.seconds - now)


class Delivery(BaseRateLimiter[int]):
    """PTB's rate-limiter seam: message throttling as Telegram counts, and retries."""

    def __init__(self, *, retry_seconds: float = RETRY_SECONDS) -> None:
        self.retry_seconds = retry_seconds
        self.duplicates = Duplicates()  # message ids: the adapter adds those of updates
        self._overall = Window(OVERALL_MESSAGES, 1)
        self._groups: OrderedDict[int | str, Window] = OrderedDict()

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        count, chat_id = _messages(endpoint, data), data.get("chat_id")
        if not isinstance(chat_id, int | str):
            chat_id = None
        send = None
        if endpoint in TRACKED and chat_id is not None:
            target = _reply_target(data)
            if target is not None:
                self.duplicates.seen(chat_id, target)  # known before the first attempt
            send = self.duplicates.send(chat_id)

        async def attempt() -> bool | dict[str, Any] | list[dict[str, Any]]:
            if count:
                await self._throttle(chat_id, count)
            if send is None:
                return await callback(*args, **kwargs)
            started = send.started()
            try:
                answer = await callback(*args, **kwargs)
            except BaseException as error:
                send.failed(started, error)
                raise
            send.succeeded(started, _message_ids(answer))
            return answer

        if endpoint not in RETRIED:
            return await attempt()
        try:
            result = await retrying(attempt, endpoint, seconds=self.retry_seconds)
        except BaseException:
            if send is not None:
                send.gave_up()
            raise
        if endpoint in MESSAGES and chat_id is not None:
            self.duplicates.sent(chat_id, _message_ids(result))
        if send is not None:

            async def probe(method: str, params: JSONDict) -> object:
                async def once() -> object:
                    return await callback(method, params, **kwargs)

                # Both are safe to try again: a probe edits to the caption the message already
                # has or finds another send's repeat (a lost answer, then "not modified": the
                # same delete follows), and a delete that finds the message gone had been done.
                return await retrying(once, method, seconds=self.retry_seconds)

            ids = _message_ids(result)
            try:
                await send.settle(min(ids), _captions(endpoint, data), probe)
            except Exception as error:  # the file is delivered: looking for a repeat is extra
                log.warning("telegram: could not look for a repeated send (%s)", _name(error))
        return result

    async def _throttle(self, chat_id: object, count: int) -> None:
        if _is_group(chat_id):
            assert isinstance(chat_id, int | str)  # noqa: S101 - checked by _is_group
            await self._group(chat_id).acquire(count)
        await self._overall.acquire(count)

    def _group(self, chat_id: int | str) -> Window:
        limiter = self._groups.pop(chat_id, None) or Window(GROUP_MESSAGES, 60)
        self._groups[chat_id] = limiter
        while len(self._groups) > KNOWN_GROUPS:
            self._groups.popitem(last=False)
        return limiter


def _messages(endpoint: str, data: dict[str, Any]) -> int:
    """How many messages Telegram counts for this call: one per album item."""
    if endpoint not in MESSAGES:
        return 0
    media = data.get("media")
    return len(media) if endpoint == "sendMediaGroup" and isinstance(media, list) else 1


def _message_ids(answer: object) -> list[int]:
    """The ids of the messages a send created (an album: one per item)."""
    answers = answer if isinstance(answer, list) else [answer]
    return [
        item["message_id"]
        for item in answers
        if isinstance(item, dict) and isinstance(item.get("message_id"), int)
    ]


def _reply_target(data: dict[str, Any]) -> int | None:
    reply = data.get("reply_parameters")
    message_id = getattr(reply, "message_id", None)
    return message_id if isinstance(message_id, int) else None


def _captions(endpoint: str, data: dict[str, Any]) -> list[JSONDict]:
    """For each message the send creates, the edit that leaves it exactly as it is: its caption,
    parse mode, entities and reply markup (an album's items have no markup)."""
    if endpoint != "sendMediaGroup":
        return [_present(data, (*CAPTION_FIELDS, "reply_markup"))]
    items: list[Any] = data.get("media") or []
    return [_present({n: getattr(item, n, None) for n in CAPTION_FIELDS}) for item in items]


def _present(fields: dict[str, Any], names: tuple[str, ...] = CAPTION_FIELDS) -> JSONDict:
    """The fields that are set (PTB's "not given" default counts as unset)."""
    values = {name: DefaultValue.get_value(fields.get(name)) for name in names}
    return {name: value for name, value in values.items() if value is not None}


def _is_group(chat_id: object) -> bool:
    """Groups have negative ids (or an @username, for public supergroups and channels)."""
    if isinstance(chat_id, str):
        return chat_id.startswith(("@", "-"))
    return isinstance(chat_id, int) and chat_id < 0
