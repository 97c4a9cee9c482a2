"""Cross-signing for the bot's own Matrix account, which matrix-nio does not do (nio issue #229).

Element stops sharing room keys with devices their owner has not verified (MSC4153), so the bot
signs its own device the way a person does after verifying a new login:

    keys = CrossSigningKeys.load_or_create(path)     # master + self-signing, ed25519, file 0600
    await bootstrap(session, homeserver, user_id, device_id, keys, password, sign_with_device)

`bootstrap` asks the server (`/keys/query`) what it already has: it uploads the public master
and self-signing keys when they are missing (`/keys/device_signing/upload`, answering the
interactive auth with the account password when the server asks), and signs the device's key with
the self-signing key (`/keys/signatures/upload`) when that signature is missing. The private keys
stay in the store, so a restart finds everything in place and sends nothing.

Signatures follow the spec's "Signing JSON": canonical JSON (sorted keys, no spaces, UTF-8)
of the object without its `signatures` and `unsigned`, signed with ed25519, in unpadded base64.
"""

import base64
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

log = logging.getLogger(__name__)

JSON = dict[str, Any]


class CrossSigningError(Exception):
    """The server refused a cross-signing upload; the message holds no secret."""


def canonical_json(value: JSON) -> bytes:
    unsigned = {k: v for k, v in value.items() if k not in ("signatures", "unsigned")}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def unpadded_b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


@dataclass(frozen=True)
class SigningKey:
    seed: bytes

    @classmethod
    def generate(cls) -> "SigningKey":
        key = ECC.generate(curve="ed25519")
        return cls(bytes(key.seed))

    @property
    def public(self) -> str:
        key = eddsa.import_private_key(self.seed)
        return unpadded_b64(key.public_key().export_key(format="raw"))

    def sign(self, value: JSON) -> str:
        signer = eddsa.new(eddsa.import_private_key(self.seed), "rfc8032")
        return unpadded_b64(signer.sign(canonical_json(value)))


@dataclass(frozen=True)
class CrossSigningKeys:
    master: SigningKey
    self_signing: SigningKey

    @classmethod
    def load_or_create(cls, path: Path) -> "CrossSigningKeys":
        """The bot's keys from `path`; new ones (written 0600) the first time."""
        if path.exists():
            stored = json.loads(path.read_text())
            return cls(
                SigningKey(base64.b64decode(stored["master"])),
                SigningKey(base64.b64decode(stored["self_signing"])),
            )
        keys = cls(SigningKey.generate(), SigningKey.generate())
        text = json.dumps(
            {
                "master": base64.b64encode(keys.master.seed).decode(),
                "self_signing": base64.b64encode(keys.self_signing.seed).decode(),
            }
        )
        write_private(path, text)
        return keys

    def master_key(self, user_id: str) -> JSON:
        return {
            "user_id": user_id,
            "usage": ["master"],
            "keys": {f"ed25519:{self.master.public}": self.master.public},
        }

    def self_signing_key(self, user_id: str) -> JSON:
        key: JSON = {
            "user_id": user_id,
            "usage": ["self_signing"],
            "keys": {f"ed25519:{self.self_signing.public}": self.self_signing.public},
        }
        key["signatures"] = {user_id: {f"ed25519:{self.master.public}": self.master.sign(key)}}
        return key


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable and writable by this user only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


async def bootstrap(
    http: aiohttp.ClientSession,
    homeserver: str,
    user_id: str,
    device_id: str,
    keys: CrossSigningKeys,
    password: str | None,
    sign_with_device: Callable[[JSON], str],
) -> bool:
    """Make the server hold our cross-signing keys and a self-signing signature over our device.

    `http` sends the access token; `sign_with_device` signs JSON with the device's ed25519 key
    (to vouch for the master key). Returns True when anything was uploaded.
    """
    client = f"{homeserver}/_matrix/client/v3"
    found = await _query(http, client, user_id)
    changed = False
    master = keys.master_key(user_id)
    if found.get("master_keys", {}).get(user_id, {}).get("keys") != master["keys"]:
        body = {"master_key": master, "self_signing_key": keys.self_signing_key(user_id)}
        await _upload_with_auth(
            http, f"{client}/keys/device_signing/upload", body, user_id, password
        )
        log.info("matrix: uploaded the cross-signing keys")
        changed = True
        found = await _query(http, client, user_id)
    device = found.get("device_keys", {}).get(user_id, {}).get(device_id)
    if device is None:
        raise CrossSigningError("the server does not know this device's keys yet")
    ss_id = f"ed25519:{keys.self_signing.public}"
    if ss_id not in device.get("signatures", {}).get(user_id, {}):
        device = {k: v for k, v in device.items() if k != "unsigned"}
        signed_device = {
            **device,
            "signatures": {user_id: {ss_id: keys.self_signing.sign(device)}},
        }
        signed_master = {
            **master,
            "signatures": {user_id: {f"ed25519:{device_id}": sign_with_device(master)}},
        }
        body = {user_id: {device_id: signed_device, keys.master.public: signed_master}}
        result = await _post(http, f"{client}/keys/signatures/upload", body)
        if result.get("failures"):
            raise CrossSigningError(f"signatures refused: {sorted(result['failures'])}")
        log.info("matrix: signed this device with the self-signing key")
        changed = True
    return changed


async def _query(http: aiohttp.ClientSession, client: str, user_id: str) -> JSON:
    return await _post(http, f"{client}/keys/query", {"device_keys": {user_id: []}})


async def _upload_with_auth(
    http: aiohttp.ClientSession, url: str, body: JSON, user_id: str, password: str | None
) -> None:
    """POST with user-interactive auth: servers may ask for the password (once, a session)."""
    async with http.post(url, json=body) as response:
        if response.status == 200:
            return
        answer = await response.json()
        if response.status != 401 or "session" not in answer:
            raise CrossSigningError(
                f"device_signing/upload: {response.status} {answer.get('errcode')}"
            )
    if password is None:
        raise CrossSigningError("the server wants the account password (set MATRIX_PASSWORD)")
    auth = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user_id},
        "password": password,
        "session": answer["session"],
    }
    await _post(http, url, {**body, "auth": auth})


async def _post(http: aiohttp.ClientSession, url: str, body: JSON) -> JSON:
    async with http.post(url, json=body) as response:
        answer: JSON = await response.json()
        if response.status != 200:
            path = url.rsplit("/v3/", 1)[-1]
            raise CrossSigningError(f"{path}: {response.status} {answer.get('errcode')}")
        return answer
