"""The Matrix bot's session: its login (kept, so a restart is the same device), the random
secrets it keeps, and cross-signing its own device. Files live in SCRUBBOT_DATA_DIR/matrix
(folder 0700, files 0600): `session.json`, `pickle.key`, `cross_signing.json`."""

import json
import logging
import secrets
from pathlib import Path

import aiohttp
from nio import AsyncClient, LoginResponse

from adapters.matrix_crosssign import (
    CrossSigningError,
    CrossSigningKeys,
    bootstrap,
    write_private,
)
from adapters.matrix_network import MatrixSettings
from bot import logs
from bot.errors import ConfigError

log = logging.getLogger("adapters.matrix")

DEVICE_NAME = "scrubbot"


class MatrixStartError(ConfigError):
    """The bot could not log in or sync at start; the message says what to do, without secrets
    (a ConfigError, so `scrubbot run` prints it and exits 2 instead of a traceback)."""


def secret_file(folder: Path, name: str) -> str:
    """A random secret kept in `folder`/`name`, made on first use."""
    path = folder / name
    if not path.exists():
        write_private(path, secrets.token_urlsafe(32))
    return path.read_text().strip()


async def log_in(client: AsyncClient, settings: MatrixSettings, folder: Path) -> None:
    """Reuse the configured token or the saved session (same device); else log in once."""
    session_path = folder / "session.json"
    session = json.loads(session_path.read_text()) if session_path.exists() else {}
    if settings.access_token and settings.device_id:
        client.restore_login(settings.user_id, settings.device_id, settings.access_token)
        log.info("matrix: using the configured access token")
    elif session.get("user_id") == settings.user_id and session.get("access_token"):
        client.restore_login(settings.user_id, session["device_id"], session["access_token"])
        log.info("matrix: restored the saved session")
    else:
        response = await client.login(settings.password, device_name=DEVICE_NAME)
        if not isinstance(response, LoginResponse):
            raise MatrixStartError(
                f"Matrix login failed ({response.status_code}): check MATRIX_USER_ID and "
                "MATRIX_PASSWORD."
            )
        session = {
            "user_id": response.user_id,
            "device_id": response.device_id,
            "access_token": response.access_token,
        }
        write_private(session_path, json.dumps(session))
        log.info("matrix: logged in as a new device")
    logs.add_secret(client.access_token)


async def cross_sign(client: AsyncClient, settings: MatrixSettings, folder: Path) -> None:
    """Sign the bot's device with its own cross-signing keys (see adapters.matrix_crosssign)."""
    keys = CrossSigningKeys.load_or_create(folder / "cross_signing.json")
    headers = {"Authorization": f"Bearer {client.access_token}"}
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            await bootstrap(
                http,
                settings.homeserver,
                client.user_id,
                client.device_id,
                keys,
                settings.password,
                client.olm.sign_json,
            )
    except (CrossSigningError, aiohttp.ClientError) as error:
        log.warning("matrix: cross-signing not set up (%s); Element may not share keys", error)
