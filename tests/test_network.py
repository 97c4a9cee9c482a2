"""The network registry: a new network is one module plus one line in a registry.

The test-only network in tests/pigeon_network.py proves it: read from the environment, started
by the real composition root (`bot.run.run`), it cleans a photo and answers help and stats in
its own syntax, and no file in bot/ names it.
"""

import asyncio
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters import NETWORKS
from bot import firstrun
from bot.config import ConfigError, Settings
from bot.run import run
from bot.scrub import inspect
from tests import pigeon_network
from tests.pigeon_network import LOFTS, PigeonSettings
from tests.test_telegram import SERIAL, leaky_photo

ROOT = Path(__file__).resolve().parents[1]
WITH_PIGEONS = (*NETWORKS, pigeon_network.NETWORK)  # the one line


def test_settings_come_from_the_registry() -> None:
    settings = Settings.from_env({"PIGEON_LOFT": "north"}, WITH_PIGEONS)
    assert settings.pigeon == PigeonSettings("north")
    assert settings.telegram is None
    assert settings.matrix is None
    with pytest.raises(AttributeError):
        _ = settings.carrier_owl
    with pytest.raises(
        ConfigError, match="TELEGRAM_BOT_TOKEN or MATRIX_HOMESERVER or PIGEON_LOFT"
    ):
        Settings.from_env({}, WITH_PIGEONS).require_an_adapter()


def test_first_run_lists_every_networks_setup(tmp_path: Path) -> None:
    assert not firstrun.nothing_configured({"PIGEON_LOFT": "x"}, tmp_path / ".env", WITH_PIGEONS)
    assert firstrun.nothing_configured({"PIGEON_LOFT": "x"}, tmp_path / ".env", NETWORKS)
    out = io.StringIO()
    firstrun.introduce(out, "en", networks=WITH_PIGEONS)
    assert "To run it by pigeon: set PIGEON_LOFT." in out.getvalue()
    assert "@BotFather" in out.getvalue()


async def until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    for _ in range(int(seconds * 20)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError


@pytest.mark.usefixtures("root_logging")
async def test_a_new_network_starts_cleans_and_answers_in_its_own_syntax(tmp_path: Path) -> None:
    env = {"PIGEON_LOFT": "south", "SCRUBBOT_DATA_DIR": str(tmp_path / "data")}
    settings = Settings.from_env(env, WITH_PIGEONS)
    stop = asyncio.Event()
    running = asyncio.create_task(run(settings, stop))
    try:
        await until(lambda: "south" in LOFTS)
        pigeon = LOFTS["south"]
        await asyncio.wait_for(pigeon.started.wait(), 30)
        pigeon.inbox.put_nowait(leaky_photo())
        pigeon.inbox.put_nowait("coo help")
        pigeon.inbox.put_nowait("coo stats")
        await until(lambda: len(pigeon.outbox) == 4)
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)
    cleaned, summary, help_text, stats = pigeon.outbox  # the file first, then the words
    assert summary.text.startswith("This photo contained the place where it was taken")
    assert SERIAL in summary.text  # a private chat: with values
    ((name, data),) = cleaned.files
    assert name == "photo.jpg"
    assert inspect(data).findings == ()
    assert help_text.text.endswith("Tie the photo to my leg.")
    assert stats.text == "Usage counts are off for this chat. coo stats on switches them on."


def test_bot_names_no_network_and_the_registry_loads_no_chat_library() -> None:
    for path in (ROOT / "bot").rglob("*.py"):
        source = path.read_text()
        for word in ("telegram", "matrix", "Telegram", "Matrix"):
            code = [line for line in source.splitlines() if word in line and "import" in line]
            assert not code, (path, code)
        if path.name != "config.py":
            assert "from adapters" not in source, path
            assert "import adapters" not in source, path
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, adapters; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    assert "'telegram'" not in loaded
    assert "'nio'" not in loaded
