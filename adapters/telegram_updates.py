"""Telegram is the journal: an update is confirmed only once it has been answered.

PTB's own updater confirms what it fetched with its next `getUpdates` (the `offset` moves past
it) while the handlers are still running, so after a SIGKILL Telegram never sends those photos
again. This update source polls the same way but moves the offset only past updates whose
handling has finished: the lowest update still in flight holds it back. After a crash the
restarted bot gets the unanswered ones again from Telegram; nothing is written anywhere for it.

While updates are in flight, `getUpdates` returns them again at once (they are not confirmed),
so the loop pauses until one finishes or POLL_PAUSE has passed, and skips the ones it has seen:
an update is handled at most once per process. On stop it takes no new updates, waits for
those in flight and confirms them with a last `getUpdates`.

    source = Updates(app)
    await source.start()      # after app.start()
    source.healthy()          # whether polling works (for /healthz)
    await source.stop()       # before app.stop()

By webhook (`Webhook`) the same holds: Telegram's request is answered once its update is.
"""

import asyncio
import contextlib
import hmac
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from aiohttp import web
from telegram import Message, Update
from telegram.error import InvalidToken, RetryAfter, TelegramError
from telegram.ext import Application

from bot.errors import ConfigError

log = logging.getLogger(__name__)

ALBUM_QUIET_SECONDS = 1.0  # an album's files arrive as separate updates within moments

LONG_POLL_SECONDS = 10  # how long Telegram may hold one getUpdates open
POLL_PAUSE = 1.0  # seconds between polls while updates are in flight
MAX_BACKOFF = 30.0  # seconds between polls after errors, at most
HEALTHY_SECONDS = 3 * LONG_POLL_SECONDS + 30  # without a successful poll for longer: unhealthy
FETCH_LIMIT = 100  # updates per getUpdates, Telegram's maximum


class Updates:
    """Polls getUpdates and hands each update to the application, confirming it when done."""

    def __init__(self, app: Application) -> None:  # type: ignore[type-arg]
        self.app = app
        self.offset = 0  # the next getUpdates' offset: every update below it is answered
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._seen: set[int] = set()  # fetched in this process and not yet confirmed
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._last_poll = 0.0

    async def start(self) -> None:
        """Polling replaces a webhook that may still be set (as PTB's updater does)."""
        await self.app.bot.delete_webhook(drop_pending_updates=False)
        self._last_poll = time.monotonic()
        self._task = asyncio.create_task(self._poll_loop(), name="telegram-updates")

    def healthy(self) -> bool:
        """Whether getUpdates has worked lately."""
        running = self._task is not None and not self._task.done()
        return running and time.monotonic() - self._last_poll < HEALTHY_SECONDS

    async def stop(self) -> None:
        """Take no new updates, answer those in flight, then confirm them to Telegram."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._in_flight:
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
        self._advance()
        if self.offset:
            try:
                await self.app.bot.get_updates(offset=self.offset, limit=1, timeout=0)
            except TelegramError as error:  # they come again after the restart
                log.warning("telegram: could not confirm the last updates (%s)", _name(error))

    async def _poll_loop(self) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            try:
                updates = await self.app.bot.get_updates(
                    offset=self.offset,
                    limit=FETCH_LIMIT,
                    timeout=0 if self._in_flight else LONG_POLL_SECONDS,
                    read_timeout=LONG_POLL_SECONDS + 10,
                    allowed_updates=Update.ALL_TYPES,
                )
            except InvalidToken:
                log.error("telegram: the token was revoked; no more updates")
                return
            except Exception as error:  # 429, 409 (another instance), network, bad JSON
                backoff = min(MAX_BACKOFF, max(1.0, backoff * 2))
                log.warning(
                    "telegram: getUpdates failed (%s); again in %.0f s", _name(error), backoff
                )
                await self._pause(backoff)
                continue
            backoff = 0.0
            self._last_poll = time.monotonic()
            for update in updates:
                self._take(update)
            self._advance()
            if self._in_flight:
                await self._wait_for_one()

    def _take(self, update: Update) -> None:
        number = update.update_id
        if number < self.offset or number in self._seen:
            return  # in flight or already answered: never twice
        self._seen.add(number)
        self._in_flight[number] = asyncio.create_task(self._handle(update))

    async def _handle(self, update: Update) -> None:
        try:
            processor = self.app.update_processor  # the application's concurrency limit
            await processor.process_update(update, self.app.process_update(update))
        except Exception:  # the handlers' errors go to the error handler; this is a last guard
            log.exception("telegram: an update could not be handled")
        finally:
            self._in_flight.pop(update.update_id, None)

    def _advance(self) -> None:
        """Move the offset past every answered update below the lowest one in flight."""
        if self._in_flight:
            target = min(self._in_flight)
        elif self._seen:
            target = max(self._seen) + 1
        else:
            return
        self.offset = max(self.offset, target)
        self._seen = {number for number in self._seen if number >= self.offset}

    async def _wait_for_one(self) -> None:
        tasks = set(self._in_flight.values())
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait(
                {*tasks, stopping}, timeout=POLL_PAUSE, return_when="FIRST_COMPLETED"
            )
        finally:
            stopping.cancel()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def _name(error: Exception) -> str:
    return "429" if isinstance(error, RetryAfter) else type(error).__name__


ANSWERED_KEPT = 4096  # update ids remembered after answering, for Telegram's resends


class Webhook:
    """Takes updates by webhook and answers each request only once its update is answered.

    PTB's webhook server answers Telegram at once and handles the update afterwards, so a crash
    loses it. Here the HTTP answer waits for the handlers: an update whose request got no answer
    is sent again by Telegram. A resend of an update in hand waits for the same answer, one
    answered lately gets 200 at once: never answered twice in one process. Only requests with
    the secret Telegram was given are taken (403 otherwise); on stop the server takes no new
    requests and answers those in hand.
    """

    def __init__(
        self,
        app: Application,  # type: ignore[type-arg]
        *,
        url: str,
        secret: str,
        listen: str,
        port: int,
        path: str,
    ) -> None:
        self.app = app
        self.url, self.secret, self.listen, self.port = url, secret, listen, port
        self.path = "/" + path.strip("/")
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._answered: set[int] = set()
        self._order: deque[int] = deque()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def running(self) -> bool:
        return self._site is not None

    async def start(self) -> None:
        server = web.Application()
        server.router.add_post(self.path, self._receive)
        self._runner = web.AppRunner(server, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.listen, self.port)
        try:
            await self._site.start()
        except OSError as error:
            await self._runner.cleanup()
            self._site = self._runner = None
            raise ConfigError(
                f"TELEGRAM_WEBHOOK_PORT: cannot listen on {self.listen}:{self.port} "
                f"({error.strerror or error})."
            ) from None
        await self.app.bot.set_webhook(
            url=self.url, secret_token=self.secret, allowed_updates=Update.ALL_TYPES
        )

    async def stop(self) -> None:
        if self._site is not None:
            await self._site.stop()  # no new requests; those in hand go on
        if self._in_flight:
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        self._site = self._runner = None

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return web.Response(status=403)
        try:
            update = Update.de_json(await request.json(), self.app.bot)
        except (ValueError, TypeError, KeyError, AttributeError):
            return web.Response(status=400)
        number = update.update_id
        if number not in self._answered:
            task = self._in_flight.get(number)
            if task is None:
                task = self._in_flight[number] = asyncio.create_task(self._handle(update))
            await asyncio.shield(task)  # Telegram giving up does not cancel the answer
        return web.Response(status=200)

    async def _handle(self, update: Update) -> None:
        try:
            processor = self.app.update_processor
            await processor.process_update(update, self.app.process_update(update))
        except Exception:  # the handlers' errors go to the error handler; this is a last guard
            log.exception("telegram: an update could not be handled")
        finally:
            self._in_flight.pop(update.update_id, None)
            self._answered.add(update.update_id)
            self._order.append(update.update_id)
            while len(self._order) > ANSWERED_KEPT:
                self._answered.discard(self._order.popleft())


class Albums:
    """Collects the messages of one album (same media_group_id), then answers them together
    once no new file has arrived for ALBUM_QUIET_SECONDS."""

    def __init__(self, quiet: float = ALBUM_QUIET_SECONDS) -> None:
        self.quiet = quiet
        self._pending: dict[tuple[int, str], list[Message]] = {}
        self._arrived: dict[tuple[int, str], asyncio.Event] = {}
        self._answered: dict[tuple[int, str], asyncio.Event] = {}

    def add(
        self,
        message: Message,
        answer: Callable[[list[Message]], Awaitable[None]],
        app: Application,  # type: ignore[type-arg]
    ) -> Awaitable[object]:
        """Collects `message`; the result is done once its whole album has been answered."""
        key = (message.chat.id, str(message.media_group_id))
        if key in self._pending:
            self._pending[key].append(message)
            self._arrived[key].set()
            return self._answered[key].wait()
        self._pending[key] = [message]
        self._arrived[key] = asyncio.Event()
        answered = self._answered[key] = asyncio.Event()
        app.create_task(self._answer_when_complete(key, answer))
        return answered.wait()

    async def _answer_when_complete(
        self, key: tuple[int, str], answer: Callable[[list[Message]], Awaitable[None]]
    ) -> None:
        arrived = self._arrived[key]
        while True:  # ends after `quiet` seconds without a new file
            arrived.clear()
            try:
                await asyncio.wait_for(arrived.wait(), self.quiet)
            except TimeoutError:
                break
        messages = sorted(self._pending.pop(key), key=lambda m: m.message_id)
        del self._arrived[key]
        answered = self._answered.pop(key)
        try:
            await answer(messages)
        finally:
            answered.set()
