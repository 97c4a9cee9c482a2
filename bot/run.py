"""`scrubbot run`: the composition root. Settings -> logging -> service -> adapters, until SIGTERM.

On SIGTERM or SIGINT every adapter stops taking updates, finishes the photos in flight and
closes; the process exits 0 within STOP_SECONDS.
"""

import asyncio
import logging
import os
import signal
from typing import Protocol

from bot import health as health_check
from bot import logs
from bot.config import ConfigError, Settings
from bot.memory import return_freed_buffers
from bot.service import Service
from bot.store import Store

log = logging.getLogger(__name__)

STOP_SECONDS = 9.0


class Adapter(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class StartError(Exception):
    """An adapter did not start; the message names it and is safe to print (no secrets)."""


async def run(settings: Settings) -> None:
    settings.require_an_adapter()
    return_freed_buffers()
    telegram = settings.telegram
    secrets = [telegram.token, telegram.webhook_secret or ""] if telegram else []
    if settings.matrix:
        secrets += [settings.matrix.password or "", settings.matrix.access_token or ""]
    logs.setup(secrets, fmt=settings.log_format)
    store = await Store.open(settings.database, settings.data_dir / "store.key")
    service = Service(settings.limits)
    adapters: list[Adapter] = []
    if settings.telegram:
        # PTB's newer, warning-free form of RetryAfter.retry_after (a timedelta).
        os.environ.setdefault("PTB_TIMEDELTA", "true")
        from adapters.telegram import TelegramAdapter  # chat libraries load only for `run`

        adapters.append(TelegramAdapter(settings.telegram, service, store))
    if settings.matrix:
        from adapters.matrix import MatrixAdapter

        adapters.append(MatrixAdapter(settings.matrix, service, settings.data_dir, store))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    health: asyncio.Server | None = None
    lags: list[float] = []
    probe = _probe_lag(lags) if os.environ.get("SCRUBBOT_LAG_PROBE") == "1" else None
    try:
        await service.warm_up()
        for adapter in adapters:
            await _start(adapter)
        if telegram and telegram.webhook_url:  # polling has no server to watch
            health = await health_check.start(telegram.webhook_listen, settings.health_port)
        log.info("scrubbot is running")
        await stop.wait()
        log.info("stopping: finishing the photos in flight")
    finally:
        if health:
            health.close()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(adapter.stop() for adapter in adapters)), STOP_SECONDS
            )
        except TimeoutError:
            log.warning("stopping took too long; photos still in flight were dropped")
        service.close()
        await store.close()
        if probe:
            probe.cancel()
            _log_lag(lags)
    log.info("stopped")


LAG_TICK = 0.05


def _probe_lag(lags: list[float]) -> "asyncio.Task[None]":
    """Opt-in (SCRUBBOT_LAG_PROBE=1, for bench/burst.py): how late a 50 ms sleep wakes up."""

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(LAG_TICK)
            lags.append(loop.time() - started - LAG_TICK)

    return asyncio.create_task(probe())


def _log_lag(lags: list[float]) -> None:
    ranked = sorted(lags) or [0.0]
    p50, p99 = ranked[len(ranked) // 2], ranked[min(len(ranked) - 1, len(ranked) * 99 // 100)]
    log.info(
        "event-loop lag: p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d samples",
        p50 * 1000,
        p99 * 1000,
        ranked[-1] * 1000,
        len(lags),
    )


async def _start(adapter: Adapter) -> None:
    """Start one adapter. What a chat library raises may quote a secret (PTB's InvalidToken
    quotes the token), so details go only to the redacting log; a plain message goes up."""
    try:
        await adapter.start()
    except ConfigError:
        raise  # the adapter's own plain message (Matrix: login refused, session logged out)
    except Exception as error:
        name = type(adapter).__name__.removesuffix("Adapter")
        if name == "Telegram":
            from telegram.error import InvalidToken  # loaded with the Telegram adapter

            if isinstance(error, InvalidToken):
                raise ConfigError(
                    "TELEGRAM_BOT_TOKEN was rejected by Telegram: copy the token from "
                    "@BotFather again (/mybots -> API Token)."
                ) from None
        log.exception("%s did not start", name)
        raise StartError(f"{name} did not start (see the log above).") from None
