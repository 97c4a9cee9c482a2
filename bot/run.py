"""`scrubbot run`: the composition root. Settings -> logging -> service -> adapters, until SIGTERM.

On SIGTERM or SIGINT every adapter stops taking updates, finishes the photos in flight and
closes; the process exits 0 within STOP_SECONDS.
"""

import asyncio
import logging
import os
import signal

from bot import health as health_check
from bot import logs, metrics
from bot.config import Settings
from bot.errors import ConfigError, StartError
from bot.memory import return_freed_buffers
from bot.network import Adapter, Network, Running
from bot.service import Service
from bot.store import Store

__all__ = ["STOP_SECONDS", "StartError", "run"]

log = logging.getLogger(__name__)

STOP_SECONDS = 9.0


async def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run every configured network until SIGTERM or SIGINT (or until `stop` is set)."""
    settings.require_an_adapter()
    return_freed_buffers()
    networks = settings.networks
    secrets = [secret for _, configured in networks for secret in configured.secrets()]
    quiet = [name for network in settings.known for name in network.quiet]
    level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    logs.setup(secrets, level=level, fmt=settings.log_format, quiet=quiet)
    store = await Store.open(settings.database, settings.data_dir / "store.key")
    service = Service(settings.limits)
    running = Running(service, store, settings.data_dir, settings.source_url)
    adapters = [(network, configured.adapter(running)) for network, configured in networks]
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    health: asyncio.Server | None = None
    lags: list[float] = []
    probe = _probe_lag(lags) if os.environ.get("SCRUBBOT_LAG_PROBE") == "1" else None
    try:
        await service.warm_up()
        if settings.metrics_port is not None:
            metrics.serve(settings.metrics_port, settings.metrics_listen)
        for network, adapter in adapters:
            await _start(network, adapter)
        address = next((a for _, c in networks if (a := c.health_address())), None)
        if address is not None:
            checks = [check for _, a in adapters if (check := getattr(a, "healthy", None))]
            health = await health_check.start(
                address, settings.health_port, lambda: all(check() for check in checks)
            )
        log.info("scrubbot is running")
        await stop.wait()
        log.info("stopping: finishing the photos in flight")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if health:
            health.close()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(adapter.stop() for _, adapter in adapters)), STOP_SECONDS
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


async def _start(network: Network, adapter: Adapter) -> None:
    """Start one adapter. What a chat library raises may quote a secret (PTB's InvalidToken
    quotes the token), so details go only to the redacting log; a plain message goes up."""
    try:
        await adapter.start()
    except (ConfigError, StartError):
        raise  # the adapter's own plain message (Matrix: login refused, session logged out)
    except Exception as error:
        explained = network.explain(error)
        if explained is not None:
            raise ConfigError(explained) from None
        log.exception("%s did not start", network.title)
        raise StartError(f"{network.title} did not start (see the log above).") from None
