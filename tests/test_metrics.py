"""Operators' metrics (SCRUBBOT_METRICS_PORT): real Prometheus text over HTTP from the real
composition root, driven by the test-only pigeon network; aggregates only, never a chat, a
user or a value."""

import asyncio
import socket
import urllib.request
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings
from bot.run import run
from tests.pigeon_network import LOFTS
from tests.test_network import WITH_PIGEONS, until
from tests.test_telegram import SERIAL, leaky_photo


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return bytes(response.read())


def scrape(port: int) -> dict[str, float]:
    samples = {}
    for line in fetch(port).decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


@pytest.mark.usefixtures("root_logging")
async def test_metrics_count_files_kinds_refusals_and_latency_per_network(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PIGEON_LOFT": "metrics",
        "SCRUBBOT_DATA_DIR": str(tmp_path / "data"),
        "SCRUBBOT_METRICS_PORT": str(port),
    }
    settings = Settings.from_env(env, WITH_PIGEONS)
    stop = asyncio.Event()
    running = asyncio.create_task(run(settings, stop))
    try:
        await until(lambda: "metrics" in LOFTS)
        pigeon = LOFTS["metrics"]
        await asyncio.wait_for(pigeon.started.wait(), 30)
        before = await asyncio.to_thread(scrape, port)
        pigeon.inbox.put_nowait(leaky_photo())
        pigeon.inbox.put_nowait(b"%PDF-1.7 not a photo")
        await until(lambda: len(pigeon.outbox) == 3)
        after = await asyncio.to_thread(scrape, port)
        raw = await asyncio.to_thread(fetch, port)
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)

    def grew(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert grew('scrubbot_files_total{format="jpeg",network="pigeon",outcome="cleaned"}') == 1
    assert grew('scrubbot_files_total{format="unknown",network="pigeon",outcome="refused"}') == 1
    assert grew('scrubbot_refusals_total{network="pigeon",reason="unsupported"}') == 1
    assert grew('scrubbot_findings_total{kind="location",network="pigeon"}') == 1
    assert grew('scrubbot_findings_total{kind="device",network="pigeon"}') == 1
    assert grew('scrubbot_reply_seconds_count{network="pigeon"}') == 2
    assert after["scrubbot_photos_in_flight"] == 0
    assert after["scrubbot_photos_waiting"] == 0
    # aggregates only: nothing of the chat, the keeper or the photo's values
    for secret in (SERIAL.encode(), b"loft", b"keeper", b"52.5", b"FBMD"):
        assert secret not in raw


def test_metrics_are_off_unless_asked_for_and_their_port_is_checked() -> None:
    settings = Settings.from_env({"PIGEON_LOFT": "x"}, WITH_PIGEONS)
    assert settings.metrics_port is None
    assert settings.metrics_listen == "127.0.0.1"
    with pytest.raises(ConfigError, match="SCRUBBOT_METRICS_PORT must be a port number"):
        Settings.from_env({"PIGEON_LOFT": "x", "SCRUBBOT_METRICS_PORT": "http"}, WITH_PIGEONS)
    with pytest.raises(ConfigError, match="SCRUBBOT_HEALTH_PORT and SCRUBBOT_METRICS_PORT"):
        Settings.from_env(
            {"PIGEON_LOFT": "x", "SCRUBBOT_METRICS_PORT": "9000", "SCRUBBOT_HEALTH_PORT": "9000"},
            WITH_PIGEONS,
        )


@pytest.mark.parametrize(
    ("value", "level"), [(None, "info"), ("DEBUG", "debug"), ("error", "error")]
)
def test_log_level_setting(value: str | None, level: str) -> None:
    env = {"PIGEON_LOFT": "x"} | ({"SCRUBBOT_LOG_LEVEL": value} if value else {})
    assert Settings.from_env(env, WITH_PIGEONS).log_level == level


def test_a_wrong_log_level_or_source_url_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="SCRUBBOT_LOG_LEVEL must be debug, info"):
        Settings.from_env({"SCRUBBOT_LOG_LEVEL": "loud"}, WITH_PIGEONS)
    with pytest.raises(ConfigError, match="SCRUBBOT_SOURCE_URL must be a web address"):
        Settings.from_env({"SCRUBBOT_SOURCE_URL": "ftp://x"}, WITH_PIGEONS)


@pytest.mark.usefixtures("root_logging")
async def test_privacy_names_where_the_source_is(tmp_path: Path) -> None:
    env = {
        "PIGEON_LOFT": "privacy",
        "SCRUBBOT_DATA_DIR": str(tmp_path / "data"),
        "SCRUBBOT_SOURCE_URL": "https://example.org/our-fork",
    }
    stop = asyncio.Event()
    running = asyncio.create_task(run(Settings.from_env(env, WITH_PIGEONS), stop))
    try:
        await until(lambda: "privacy" in LOFTS)
        pigeon = LOFTS["privacy"]
        await asyncio.wait_for(pigeon.started.wait(), 30)
        pigeon.inbox.put_nowait("coo privacy")
        await until(lambda: len(pigeon.outbox) == 1)
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)
    assert pigeon.outbox[0].text.endswith(
        "My source code is public, so anyone can check what I do with photos: "
        "https://example.org/our-fork"
    )
