"""A real Synapse homeserver on 127.0.0.1 for the Matrix tests: SQLite, no federation.

    with Synapse.start(tmp_dir) as server:
        user_id, password = server.register("parent")
        server.stop(); server.restart()   # a homeserver outage, same port and database
        ...

It runs from the `matrix-synapse` dev dependency (installed by `make test`), in a temporary
folder with its own config, signing key, database and media store. Registration is closed; users
are made through the shared-secret admin API. Rate limits are lifted so tests never wait, and
`bcrypt_rounds: 4` keeps password hashing fast. Its own log goes to `synapse.log` in the folder.
"""

import hashlib
import hmac
import json
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVER_NAME = "localhost"
START_SECONDS = 60.0

_UNLIMITED = {"per_second": 1000, "burst_count": 1000}
_RATE_LIMITS = {
    "rc_message": _UNLIMITED,
    "rc_registration": _UNLIMITED,
    "rc_login": {"address": _UNLIMITED, "account": _UNLIMITED, "failed_attempts": _UNLIMITED},
    "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
    "rc_joins_per_room": _UNLIMITED,
    "rc_invites": {"per_room": _UNLIMITED, "per_user": _UNLIMITED, "per_issuer": _UNLIMITED},
    "rc_room_creation": _UNLIMITED,
    "rc_media_create": _UNLIMITED,
    "rc_key_requests": _UNLIMITED,
    "rc_admin_redaction": _UNLIMITED,
    "rc_3pid_validation": _UNLIMITED,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(folder: Path, port: int, shared_secret: str) -> dict[str, Any]:
    return {
        "server_name": SERVER_NAME,
        "pid_file": str(folder / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(folder / "homeserver.db")}},
        "media_store_path": str(folder / "media"),
        "signing_key_path": str(folder / "signing.key"),
        "registration_shared_secret": shared_secret,
        "macaroon_secret_key": secrets.token_urlsafe(32),
        "form_secret": secrets.token_urlsafe(32),
        "report_stats": False,
        "enable_registration": False,
        "enable_authenticated_media": True,
        "bcrypt_rounds": 4,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "url_preview_enabled": False,
        "presence": {"enabled": False},
        **_RATE_LIMITS,
    }


def _command(config: Path) -> list[str]:
    return [sys.executable, "-m", "synapse.app.homeserver", "-c", str(config)]


def _launch(folder: Path) -> subprocess.Popen[bytes]:
    with (folder / "synapse.log").open("ab") as log:
        return subprocess.Popen(
            _command(folder / "homeserver.yaml"), cwd=folder, stdout=log, stderr=log
        )


@dataclass
class Synapse:
    folder: Path
    port: int
    shared_secret: str
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "synapse.log"

    @classmethod
    @contextmanager
    def start(cls, folder: Path) -> Iterator["Synapse"]:
        """Configure and start a homeserver in `folder`; stop it on exit."""
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        shared_secret = secrets.token_urlsafe(24)
        config = folder / "homeserver.yaml"
        # JSON is YAML, and needs no YAML writer here.
        config.write_text(json.dumps(_config(folder, port, shared_secret), indent=1))
        subprocess.run([*_command(config), "--generate-keys"], check=True, capture_output=True)
        server = cls(folder, port, shared_secret, _launch(folder))
        try:
            server._wait_until_healthy()
            yield server
        finally:
            server.stop()

    def stop(self) -> None:
        """Stop the homeserver (SIGTERM, then SIGKILL after 15 s)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        """Start the stopped homeserver again on the same port, database and media."""
        self.process = _launch(self.folder)
        self._wait_until_healthy()

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Synapse exited early:\n{self.log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"Synapse did not start:\n{self.log.read_text()[-4000:]}")

    def requests(self, user_id: str, pattern: str) -> int:
        """How many client API requests of `user_id` matched `pattern` (a regular expression
        over the request line, like `GET /_matrix/client/[^/]+/rooms/[^/ ]+/state[? ]`), from
        Synapse's access log."""
        line = re.compile(r"\{" + re.escape(user_id) + r"\} Processed request: .*\"" + pattern)
        return sum(1 for entry in self.log.read_text().splitlines() if line.search(entry))

    def register(self, name: str, password: str | None = None) -> tuple[str, str]:
        """Create user `name` through the shared-secret admin API; returns (user id, password)."""
        password = password or secrets.token_urlsafe(16)
        endpoint = f"{self.url}/_synapse/admin/v1/register"
        nonce = self._request("GET", endpoint)["nonce"]
        mac = hmac.new(self.shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), name.encode(), password.encode(), b"notadmin"]))
        body = {
            "nonce": nonce,
            "username": name,
            "password": password,
            "admin": False,
            "mac": mac.hexdigest(),
        }
        user_id: str = self._request("POST", endpoint, body)["user_id"]
        return user_id, password

    def _request(self, method: str, url: str, body: object = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - our own server on 127.0.0.1
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                result: dict[str, Any] = json.loads(response.read())
                return result
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {url}: {error.code} {error.read()!r}") from error
