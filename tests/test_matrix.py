"""`scrubbot run` against a real Synapse on 127.0.0.1, a matrix-nio "parent" on the other side.

Synapse starts once for the module (tests/synapse.py); every test registers its own bot and
parent through the shared-secret admin API, starts the real process through the environment
contract (MATRIX_HOMESERVER, MATRIX_USER_ID, MATRIX_PASSWORD or MATRIX_ACCESS_TOKEN and
MATRIX_DEVICE_ID) in an empty working directory, and stops it with SIGTERM, which must end it with
exit status 0 within 10 seconds. The parent creates plain and encrypted rooms, invites the bot,
sends photos (encrypted attachments in encrypted rooms) and decrypts what comes back.
"""

import asyncio
import io
import json
import os
import signal
import stat
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from nio import (
    AsyncClient,
    AsyncClientConfig,
    LoginResponse,
    MatrixRoom,
    MemoryDownloadResponse,
    RoomCreateResponse,
    RoomEncryptedFile,
    RoomEncryptedImage,
    RoomEncryptedMedia,
    RoomMessageFile,
    RoomMessageImage,
    RoomMessageNotice,
    RoomSendResponse,
    SyncResponse,
    UploadResponse,
)
from nio.crypto import OutboundGroupSession
from nio.crypto.attachments import decrypt_attachment, encrypt_attachment
from PIL import Image
from signedjson.key import decode_verify_key_base64
from signedjson.sign import verify_signed_json

from bot.config import ConfigError, Settings
from bot.scrub import inspect
from tests.fake_telegram import FakeTelegram
from tests.synapse import Synapse
from tests.test_telegram import FBMD, FILE_NAME, NAME, SERIAL, TOKEN, leaky_photo, replies

ROOT = Path(__file__).resolve().parents[1]
ENCRYPTION = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
}
FILES = (RoomMessageFile, RoomEncryptedFile, RoomMessageImage, RoomEncryptedImage)


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    with Synapse.start(tmp_path_factory.mktemp("synapse")) as server:
        yield server


class Bot:
    """A bot account and the folder its process runs in (data dir kept between runs)."""

    def __init__(self, synapse: Synapse, folder: Path, name: str = "scrubbot") -> None:
        self.synapse = synapse
        self.user_id, self.password = synapse.register(f"{name}{time.monotonic_ns()}")
        self.workdir = folder / "work"
        self.workdir.mkdir(parents=True)
        self.data_dir = folder / "data"
        self.runs = 0
        self.process: asyncio.subprocess.Process | None = None
        self.killed = False

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),  # the code under test, not an installed copy
            "MATRIX_HOMESERVER": self.synapse.url,
            "MATRIX_USER_ID": self.user_id,
            "MATRIX_PASSWORD": self.password,
            "SCRUBBOT_DATA_DIR": str(self.data_dir),
            **extra,
        }

    @asynccontextmanager
    async def running(self, **env: str) -> AsyncIterator[Path]:
        """The bot process until the block ends; yields its log file, checks a clean stop."""
        self.runs += 1
        log_path = self.workdir.parent / f"bot-{self.runs}.log"
        environment = {k: v for k, v in self.env(**env).items() if v}
        with log_path.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                cwd=self.workdir,
                env=environment,
                stderr=log_file,
            )
            self.process, self.killed = process, False
            try:
                await until(lambda: "listening for photos" in log_path.read_text(), 60, process)
                yield log_path
            finally:
                if process.returncode is None:
                    process.send_signal(signal.SIGCONT)  # in case it was held back
                    process.send_signal(signal.SIGTERM)
                started = time.monotonic()
                code = await asyncio.wait_for(process.wait(), timeout=10)
                stop_seconds = time.monotonic() - started
        assert code == (-signal.SIGKILL if self.killed else 0), log_path.read_text()
        assert stop_seconds < 10

    def signal(self, number: signal.Signals) -> None:
        """Hold the running bot back (SIGSTOP), let it go on (SIGCONT) or kill it (SIGKILL)."""
        assert self.process is not None
        self.process.send_signal(number)
        self.killed = self.killed or number == signal.SIGKILL

    async def run_until_exit(self, **env: str) -> tuple[int, str]:
        """Start the bot and wait for it to give up: exit status and log."""
        environment = {k: v for k, v in self.env(**env).items() if v}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=self.workdir,
            env=environment,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode is not None
        return process.returncode, stderr.decode()

    @property
    def session(self) -> dict[str, str]:
        session: dict[str, str] = json.loads(
            (self.data_dir / "matrix" / "session.json").read_text()
        )
        return session


async def until(
    condition: Callable[[], bool],
    seconds: float,
    process: asyncio.subprocess.Process | None = None,
) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process is not None and process.returncode is not None:
            raise AssertionError(f"the bot exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.1)


class Parent:
    """A Matrix user with Element's essentials: encrypted rooms, photos, reading replies."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.events: dict[str, list[Any]] = {}

    @classmethod
    @asynccontextmanager
    async def login(cls, synapse: Synapse, folder: Path) -> AsyncIterator["Parent"]:
        user_id, password = synapse.register(f"parent{time.monotonic_ns()}")
        store = folder / "parent-store"
        store.mkdir(parents=True)
        config = AsyncClientConfig(encryption_enabled=True, pickle_key="parent-test-key")
        client = AsyncClient(synapse.url, user_id, store_path=str(store), config=config)
        try:
            assert isinstance(await client.login(password, device_name="phone"), LoginResponse)
            parent = cls(client)
            await parent.sync()
            yield parent
        finally:
            await client.close()

    async def sync(self) -> None:
        response = await self.client.sync(
            timeout=200, full_state=True, sync_filter={"room": {"timeline": {"limit": 100}}}
        )
        assert isinstance(response, SyncResponse), response
        for room_id, info in response.rooms.join.items():
            self.events.setdefault(room_id, []).extend(info.timeline.events)
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        if self.client.should_query_keys:
            await self.client.keys_query()
        if self.client.should_claim_keys:
            await self.client.keys_claim(self.client.get_users_for_key_claiming())
        await self.client.send_to_device_messages()

    async def sync_until(self, condition: Callable[[], bool], seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met in time")
            await self.sync()

    async def room_with(self, bot: Bot, encrypted: bool) -> str:
        """A new room with the bot in it (it joins by itself)."""
        response = await self.client.room_create(
            invite=[bot.user_id], initial_state=[ENCRYPTION] if encrypted else []
        )
        assert isinstance(response, RoomCreateResponse), response
        room_id: str = response.room_id
        await self.sync_until(lambda: self.joined(room_id, bot.user_id))
        return room_id

    def joined(self, room_id: str, user_id: str) -> bool:
        """Joined, not only invited (nio's `users` holds both)."""
        room = self.room(room_id)
        return user_id in room.users and user_id not in room.invited_users

    def room(self, room_id: str) -> MatrixRoom:
        return self.client.rooms.get(room_id) or MatrixRoom(room_id, self.client.user_id)

    async def send(self, room_id: str, content: dict[str, Any]) -> str:
        response = await self.client.room_send(
            room_id, "m.room.message", content, ignore_unverified_devices=True
        )
        assert isinstance(response, RoomSendResponse), response
        event_id: str = response.event_id
        return event_id

    async def send_photo(
        self,
        room_id: str,
        data: bytes,
        msgtype: str = "m.image",
        size: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Upload and send `data` as Element does: an encrypted attachment in encrypted rooms."""
        content: dict[str, Any] = {
            "msgtype": msgtype,
            "body": FILE_NAME,
            "info": {"mimetype": "image/jpeg", "size": size or len(data)},
            **(extra or {}),
        }
        if self.room(room_id).encrypted:
            ciphertext, keys = encrypt_attachment(data)
            content["file"] = {**keys, "url": await self.upload(ciphertext)}
        else:
            content["url"] = await self.upload(data)
        return await self.send(room_id, content)

    async def upload(self, data: bytes) -> str:
        response, _ = await self.client.upload(
            lambda *_: data, content_type="application/octet-stream", filesize=len(data)
        )
        assert isinstance(response, UploadResponse), response
        url: str = response.content_uri
        return url

    def replies(self, room_id: str, to: str) -> list[Any]:
        """The bot's events in `room_id` that reply to event `to`."""
        return [
            e
            for e in self.events.get(room_id, [])
            if e.sender != self.client.user_id
            and e.source.get("content", {}).get("m.relates_to", {}).get("m.in_reply_to")
            == {"event_id": to}
        ]

    def notices(self, room_id: str, to: str) -> list[str]:
        return [e.body for e in self.replies(room_id, to) if isinstance(e, RoomMessageNotice)]

    def answered(self, room_id: str, to: str) -> bool:
        """The bot has sent its file and then its summary in reply to event `to`."""
        return bool(self.files(room_id, to) and self.notices(room_id, to))

    def files(self, room_id: str, to: str) -> list[Any]:
        """The bot's file or image replies to event `to`."""
        return [e for e in self.replies(room_id, to) if isinstance(e, FILES)]

    async def send_withheld(self, room_id: str, session: OutboundGroupSession, data: bytes) -> str:
        """An encrypted photo whose room key (`session`) is shared with nobody, as a device
        that withholds its keys sends it."""
        ciphertext, keys = encrypt_attachment(data)
        content = {
            "msgtype": "m.image",
            "body": FILE_NAME,
            "info": {"mimetype": "image/jpeg", "size": len(data)},
            "file": {**keys, "url": await self.upload(ciphertext)},
        }
        plaintext = {"type": "m.room.message", "content": content, "room_id": room_id}
        encrypted = {
            "algorithm": "m.megolm.v1.aes-sha2",
            "sender_key": self.client.olm.account.identity_keys["curve25519"],
            "ciphertext": session.encrypt(json.dumps(plaintext)),
            "session_id": session.id,
            "device_id": self.client.device_id,
        }
        path = f"/rooms/{room_id}/send/m.room.encrypted/{time.monotonic_ns()}"
        sent = await client_api(self.client, "PUT", path, encrypted)
        event_id: str = sent["event_id"]
        return event_id

    async def download(self, event: Any) -> bytes:
        response = await self.client.download(mxc=event.url)
        assert isinstance(response, MemoryDownloadResponse), response
        data: bytes = response.body
        if isinstance(event, RoomEncryptedMedia):
            data = decrypt_attachment(data, event.key["k"], event.hashes["sha256"], event.iv)
        return data


def same_pixels(a: bytes, b: bytes) -> bool:
    with Image.open(io.BytesIO(a)) as before, Image.open(io.BytesIO(b)) as after:
        return before.tobytes() == after.tobytes()


async def test_photos_in_plain_and_encrypted_rooms(synapse: Synapse, tmp_path: Path) -> None:
    bot = Bot(synapse, tmp_path / "bot")
    original = leaky_photo()
    async with Parent.login(synapse, tmp_path) as parent, bot.running() as log_path:
        plain = await parent.room_with(bot, encrypted=False)
        secret_room = await parent.room_with(bot, encrypted=True)
        # Each is answered as it was sent: an m.image with an m.image Element shows as a
        # picture (mimetype, size, width, height), an m.file with an m.file.
        answers = {
            (plain, "m.image"): RoomMessageImage,
            (secret_room, "m.file"): RoomEncryptedFile,
            (secret_room, "m.image"): RoomEncryptedImage,
        }
        photos = {
            await parent.send_photo(room, original, msgtype): (room, answer)
            for (room, msgtype), answer in answers.items()
        }
        await parent.sync_until(lambda: all(parent.answered(r, e) for e, (r, _) in photos.items()))
        width, height = Image.open(io.BytesIO(original)).size
        for event_id, (room, answer) in photos.items():
            (summary,) = parent.notices(room, event_id)
            assert summary.startswith("This photo contained the place where it was taken")
            assert "near Kreuzberg, Berlin, Germany" in summary  # two in the room: private
            (notice,) = [e for e in parent.replies(room, event_id) if e.body == summary]
            assert notice.source["content"]["msgtype"] == "m.notice"
            assert "<b>" in notice.source["content"]["formatted_body"]
            (file_event,) = parent.files(room, event_id)
            assert type(file_event) is answer
            assert file_event.body == "photo.jpg"
            info = file_event.source["content"]["info"]
            assert info["mimetype"] == "image/jpeg"
            if answer is not RoomEncryptedFile:
                assert (info["w"], info["h"]) == (width, height)
            # The file goes before the summary that announces it.
            assert parent.replies(room, event_id)[0] is file_event
            cleaned = await parent.download(file_event)
            assert inspect(cleaned).findings == ()
            assert same_pixels(original, cleaned)
        secret_photo = next(e for e, (room, _) in photos.items() if room == secret_room)
        raw = await fetch_event(parent, secret_room, secret_photo)
        assert raw["type"] == "m.room.encrypted"  # the parent's photo really was encrypted
        for reply in parent.replies(secret_room, secret_photo):
            assert (await fetch_event(parent, secret_room, reply.event_id))["type"] == (
                "m.room.encrypted"
            )
    log = log_path.read_text()
    for secret in (bot.password, bot.session["access_token"], SERIAL, NAME, FBMD, FILE_NAME):
        assert secret not in log
    for identifier in (plain, secret_room, bot.user_id, parent.client.user_id, "Kreuzberg"):
        assert identifier not in log
    assert "cleaned jpeg" in log
    assert list(bot.workdir.iterdir()) == []  # nothing written to the working directory
    folder = bot.data_dir / "matrix"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    assert "DEFAULT_KEY" not in (folder / "pickle.key").read_text()


async def fetch_event(parent: Parent, room_id: str, event_id: str) -> dict[str, Any]:
    """The event as the server stores it (encrypted or not)."""
    return await client_api(parent.client, "GET", f"/rooms/{room_id}/event/{event_id}")


async def client_api(
    client: AsyncClient, method: str, path: str, body: object = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {client.access_token}"}
    url = f"{client.homeserver}/_matrix/client/v3{path}"
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.request(method, url, json=body) as response,
    ):
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result


async def test_bad_files_get_a_notice_and_no_file(synapse: Synapse, tmp_path: Path) -> None:
    bot = Bot(synapse, tmp_path / "bot")
    async with (
        Parent.login(synapse, tmp_path) as parent,
        bot.running(SCRUBBOT_MAX_BYTES="2097152") as log_path,
    ):
        plain = await parent.room_with(bot, encrypted=False)
        secret_room = await parent.room_with(bot, encrypted=True)
        # An encrypted attachment whose hash does not match what arrives: tampered with.
        ciphertext, keys = encrypt_attachment(leaky_photo())
        keys["hashes"]["sha256"] = keys["hashes"]["sha256"][::-1]
        tampered = {
            "msgtype": "m.image",
            "body": "x.jpg",
            "file": {**keys, "url": await parent.upload(ciphertext)},
        }
        bad = {  # event id -> (room, what the notice says)
            await parent.send_photo(plain, leaky_photo()[:300]): (plain, "damaged or incomplete"),
            await parent.send_photo(plain, b"%PDF-1.7 no photo", "m.file"): (plain, "not a photo"),
            await parent.send_photo(secret_room, leaky_photo()[:300]): (
                secret_room,
                "damaged or incomplete",
            ),
            await parent.send_photo(plain, leaky_photo(), size=5_000_000): (plain, "up to 2 MB"),
            # info.size says 1000 bytes, 3 MB arrive: the download stops at the limit.
            await parent.send_photo(plain, leaky_photo() + bytes(3_000_000), size=1000): (
                plain,
                "up to 2 MB",
            ),
            await parent.send(secret_room, tampered): (secret_room, "damaged or incomplete"),
        }
        rooms = {event_id: room for event_id, (room, _) in bad.items()}

        def answered() -> bool:
            return all(parent.notices(rooms[e], e) for e in bad)

        await parent.sync_until(answered)
        await parent.sync()  # a file would have followed the notice at once
        for event_id, (room, reason) in bad.items():
            (notice,) = parent.notices(room, event_id)
            assert reason in notice
            assert not parent.files(room, event_id)
    assert "stopped a download at the size limit" in log_path.read_text()


async def test_restarts_lose_nothing_and_answer_nothing_twice(
    synapse: Synapse, tmp_path: Path
) -> None:
    """Photos sent while the bot is down are answered when it is back (this test asserted the
    opposite before issue 15); SIGTERM or SIGKILL in the middle of a burst loses none and
    answers none twice; every start keeps the same device."""
    bot = Bot(synapse, tmp_path / "bot")
    async with Parent.login(synapse, tmp_path) as parent:
        async with bot.running():
            room = await parent.room_with(bot, encrypted=True)
            first = await parent.send_photo(room, leaky_photo(1))
            await parent.sync_until(lambda: parent.answered(room, first))
        device = bot.session["device_id"]
        # More while it is down than one sync shows: the bot reads back what the sync left out.
        while_stopped = [await parent.send_photo(room, leaky_photo(2))]
        for n in range(120):
            await parent.send(room, {"msgtype": "m.text", "body": f"chatter {n}"})
        while_stopped.append(await parent.send_photo(room, leaky_photo(3)))
        async with bot.running() as log_path:
            await parent.sync_until(lambda: all(parent.answered(room, p) for p in while_stopped))
            terminated = [await parent.send_photo(room, leaky_photo(n)) for n in range(4, 10)]
            await parent.sync_until(lambda: any(parent.files(room, p) for p in terminated))
        async with bot.running():  # SIGKILL as soon as the first of a burst is answered
            killed = [await parent.send_photo(room, leaky_photo(n)) for n in range(10, 16)]
            await parent.sync_until(lambda: any(parent.files(room, p) for p in killed))
            bot.signal(signal.SIGKILL)
        while_killed = await parent.send_photo(room, leaky_photo(16))
        everything = [first, *while_stopped, *terminated, *killed, while_killed]
        async with bot.running() as last_log:

            def all_answered() -> bool:
                return all(parent.answered(room, p) for p in everything)

            try:
                await parent.sync_until(all_answered, 90)
            except TimeoutError:
                raise AssertionError(
                    [
                        (len(parent.files(room, p)), len(parent.notices(room, p)))
                        for p in everything
                    ]
                ) from None
            await parent.sync()  # a duplicate would follow at once
        assert bot.session["device_id"] == device
        devices = await client_api(parent.client, "POST", "/keys/query", keys_query(bot))
        assert list(devices["device_keys"][bot.user_id]) == [device]  # no new device per start
        # Each answered once: one file, then one summary.
        counts = [(len(parent.files(room, p)), len(parent.notices(room, p))) for p in everything]
        assert counts == [(1, 1)] * len(everything)
        assert "logged in" not in log_path.read_text()  # the saved session was used
        assert "events a sync left out" in log_path.read_text()
        assert "Traceback" not in last_log.read_text()


def keys_query(bot: Bot) -> dict[str, Any]:
    return {"device_keys": {bot.user_id: []}}


async def test_cross_signing_keys_are_valid(synapse: Synapse, tmp_path: Path) -> None:
    bot = Bot(synapse, tmp_path / "bot")
    async with Parent.login(synapse, tmp_path) as parent:
        async with bot.running():
            pass
        async with bot.running() as second_run:  # a restart finds the keys in place
            pass
        first_master = await check_cross_signing(parent, bot)
        log = second_run.read_text()
        assert "uploaded the cross-signing keys" not in log
        assert "signed this device" not in log
        stored = (bot.data_dir / "matrix" / "cross_signing.json").read_text()
        assert first_master not in stored  # private seeds only, checked by their public keys
        # Keys lost: new ones replace the old, which Synapse allows only after the password.
        (bot.data_dir / "matrix" / "cross_signing.json").unlink()
        async with bot.running() as third_run:
            pass
        assert "uploaded the cross-signing keys" in third_run.read_text()
        assert await check_cross_signing(parent, bot) != first_master


async def check_cross_signing(parent: Parent, bot: Bot) -> str:
    """What Synapse's /keys/query says: a master key, a self-signing key it signed, and the
    bot's device signed by that (and by itself), verified with Synapse's own signedjson.
    Returns the master public key."""
    found = await client_api(parent.client, "POST", "/keys/query", keys_query(bot))
    user, device_id = bot.user_id, bot.session["device_id"]
    master = found["master_keys"][user]
    assert master["usage"] == ["master"]
    ((master_id, master_public),) = master["keys"].items()
    self_signing = found["self_signing_keys"][user]
    assert self_signing["usage"] == ["self_signing"]
    verify(self_signing, user, master_id, master_public)
    ((ss_id, ss_public),) = self_signing["keys"].items()
    device = found["device_keys"][user][device_id]
    verify(device, user, ss_id, ss_public)  # the device is cross-signed
    device_key = device["keys"][f"ed25519:{device_id}"]
    verify(device, user, f"ed25519:{device_id}", device_key)
    # The device vouches for the master key; the server shows that signature to its owner.
    as_bot = AsyncClient(bot.synapse.url, user)
    as_bot.access_token = bot.session["access_token"]
    own = await client_api(as_bot, "POST", "/keys/query", keys_query(bot))
    await as_bot.close()
    verify(own["master_keys"][user], user, f"ed25519:{device_id}", device_key)
    return str(master_public)


def verify(signed: dict[str, Any], user: str, key_id: str, public: str) -> None:
    """Check one ed25519 signature with signedjson (Synapse's), not the bot's signing code."""
    algorithm, version = key_id.split(":", 1)
    key = decode_verify_key_base64(algorithm, version, public)
    verify_signed_json(signed, user, key)  # raises SignatureVerifyException


async def test_commands_threads_and_leaving(synapse: Synapse, tmp_path: Path) -> None:
    bot = Bot(synapse, tmp_path / "bot")
    async with Parent.login(synapse, tmp_path) as parent, bot.running() as log_path:
        room = await parent.room_with(bot, encrypted=True)
        command = await parent.send(room, {"msgtype": "m.text", "body": "!scrubbot language de"})
        await parent.sync_until(lambda: bool(parent.notices(room, command)))
        (switched,) = parent.notices(room, command)
        assert "Deutsch" in switched
        root = await parent.send(room, {"msgtype": "m.text", "body": "Fotos vom Ausflug"})
        thread = {"m.relates_to": {"rel_type": "m.thread", "event_id": root}}
        photo = await parent.send_photo(room, leaky_photo(), extra=thread)
        await parent.sync_until(lambda: parent.answered(room, photo))
        (summary,) = parent.notices(room, photo)
        assert summary.startswith("Dieses Foto enthielt den Aufnahmeort")
        for reply in parent.replies(room, photo):
            relates = reply.source["content"]["m.relates_to"]
            assert relates["rel_type"] == "m.thread"
            assert relates["event_id"] == root
        help_event = await parent.send(room, {"msgtype": "m.text", "body": "!scrubbot help"})
        await parent.sync_until(lambda: bool(parent.notices(room, help_event)))
        assert "!scrubbot language" in parent.notices(room, help_event)[0]
        await parent.send(room, {"msgtype": "m.text", "body": "hello"})  # no answer to chatter
        await parent.client.room_leave(room)
        await until(lambda: "left a room where nobody else was" in log_path.read_text(), 20)


async def test_token_login_and_invite_allow_list(synapse: Synapse, tmp_path: Path) -> None:
    bot = Bot(synapse, tmp_path / "bot")
    login = AsyncClient(synapse.url, bot.user_id)
    response = await login.login(bot.password, device_name="made by hand")
    await login.close()
    assert isinstance(response, LoginResponse)
    async with (
        Parent.login(synapse, tmp_path / "a") as parent,
        Parent.login(synapse, tmp_path / "b") as stranger,
        bot.running(
            MATRIX_PASSWORD="",
            MATRIX_ACCESS_TOKEN=response.access_token,
            MATRIX_DEVICE_ID=response.device_id,
            MATRIX_ALLOWED_INVITERS=parent.client.user_id,
        ) as log_path,
    ):
        created = await stranger.client.room_create(invite=[bot.user_id])
        assert isinstance(created, RoomCreateResponse)
        await until(lambda: "declined an invite" in log_path.read_text(), 20)
        room = await parent.room_with(bot, encrypted=True)
        photo = await parent.send_photo(room, leaky_photo())
        await parent.sync_until(lambda: parent.answered(room, photo))
        await stranger.sync()
        assert bot.user_id not in stranger.room(created.room_id).users
    assert response.access_token not in log_path.read_text()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MATRIX_HOMESERVER": "matrix.org"}, "MATRIX_HOMESERVER"),
        ({"MATRIX_HOMESERVER": "https://m.org", "MATRIX_PASSWORD": "x"}, "MATRIX_USER_ID"),
        ({"MATRIX_HOMESERVER": "https://m.org", "MATRIX_USER_ID": "@b:m.org"}, "MATRIX_PASSWORD"),
        (
            {
                "MATRIX_HOMESERVER": "https://m.org",
                "MATRIX_USER_ID": "@b:m.org",
                "MATRIX_ACCESS_TOKEN": "t",
            },
            "MATRIX_DEVICE_ID",
        ),
        ({}, "MATRIX_HOMESERVER"),
    ],
)
def test_matrix_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env).require_an_adapter()


def test_matrix_settings_hide_secrets() -> None:
    env = {
        "MATRIX_HOMESERVER": "https://matrix.example.org/",
        "MATRIX_USER_ID": "@scrubbot:example.org",
        "MATRIX_PASSWORD": "hunter2-secret",
        "MATRIX_ALLOWED_INVITERS": "@mum:example.org, family.example",
    }
    matrix = Settings.from_env(env).matrix
    assert matrix is not None
    assert matrix.homeserver == "https://matrix.example.org"
    assert matrix.allowed_inviters == ("@mum:example.org", "family.example")
    assert "hunter2" not in repr(matrix)


async def test_a_rejoin_answers_nothing_from_before(synapse: Synapse, tmp_path: Path) -> None:
    bot = Bot(synapse, tmp_path / "bot")
    async with Parent.login(synapse, tmp_path) as parent, bot.running():
        room = await parent.room_with(bot, encrypted=False)
        before = await parent.send_photo(room, leaky_photo(1))
        await parent.sync_until(lambda: parent.answered(room, before))
        await parent.client.room_kick(room, bot.user_id)
        await parent.sync_until(lambda: not parent.joined(room, bot.user_id))
        while_away = await parent.send_photo(room, leaky_photo(2))
        await parent.client.room_invite(room, bot.user_id)
        await parent.sync_until(lambda: parent.joined(room, bot.user_id))
        after = await parent.send_photo(room, leaky_photo(3))
        await parent.sync_until(lambda: parent.answered(room, after))
        await parent.sync()
    assert parent.replies(room, while_away) == []
    assert len(parent.replies(room, before)) == 2  # summary and file, once


async def test_telegram_and_matrix_side_by_side(synapse: Synapse, tmp_path: Path) -> None:
    bot = Bot(synapse, tmp_path / "bot")
    async with (
        FakeTelegram(TOKEN) as telegram,
        Parent.login(synapse, tmp_path) as parent,
        bot.running(
            TELEGRAM_BOT_TOKEN=telegram.token,
            TELEGRAM_API_URL=telegram.api_url,
            TELEGRAM_FILE_URL=telegram.file_url,
        ) as log_path,
    ):
        room = await parent.room_with(bot, encrypted=True)
        photo = await parent.send_photo(room, leaky_photo())
        telegram.add_document(leaky_photo(), user_id=7007, file_name=FILE_NAME)
        await parent.sync_until(lambda: parent.answered(room, photo))
        await telegram.wait_for(lambda calls: bool(replies(telegram, 7007, "sendDocument")))
    log = log_path.read_text()
    assert "telegram: polling for updates" in log
    assert TOKEN.split(":")[1] not in log
    assert log.count("cleaned jpeg") == 2


async def test_a_wrong_password_or_a_lost_session_is_explained(
    synapse: Synapse, tmp_path: Path
) -> None:
    bot = Bot(synapse, tmp_path / "bot")
    code, log = await bot.run_until_exit(MATRIX_PASSWORD="not-the-password")
    assert code == 2
    assert "Matrix login failed (M_FORBIDDEN): check MATRIX_USER_ID and MATRIX_PASSWORD" in log
    assert "Traceback" not in log
    async with bot.running():
        pass
    login = AsyncClient(synapse.url, bot.user_id)
    login.restore_login(bot.user_id, bot.session["device_id"], bot.session["access_token"])
    await login.logout()  # the device is logged out elsewhere, e.g. in Element
    await login.close()
    code, log = await bot.run_until_exit()
    assert code == 2
    assert "Delete matrix/session.json in SCRUBBOT_DATA_DIR" in log
    assert bot.password not in log


async def family_room(parent: Parent, grandma: Parent, bot: Bot) -> str:
    """An encrypted room of three: the parent (its creator), grandma and the bot."""
    room = await parent.room_with(bot, encrypted=True)
    await parent.client.room_invite(room, grandma.client.user_id)
    await grandma.sync_until(lambda: room in grandma.client.invited_rooms)
    await grandma.client.join(room)
    await grandma.sync_until(lambda: grandma.room(room).joined_count == 3)
    await parent.sync_until(lambda: parent.room(room).joined_count == 3)
    return room


async def test_a_family_room_gets_kinds_only(synapse: Synapse, tmp_path: Path) -> None:
    """More than the parent and the bot in the room: never a place, serial or name in it."""
    bot = Bot(synapse, tmp_path / "bot")
    async with (
        Parent.login(synapse, tmp_path / "a") as parent,
        Parent.login(synapse, tmp_path / "b") as grandma,
        bot.running(),
    ):
        room = await family_room(parent, grandma, bot)
        photos = [await parent.send_photo(room, leaky_photo(n)) for n in range(3)]
        await parent.sync_until(lambda: all(parent.answered(room, p) for p in photos))
    for photo in photos:
        (summary,) = parent.notices(room, photo)
        assert summary.startswith("This photo contained the place where it was taken")
        for value in ("Kreuzberg", SERIAL, NAME, FBMD):
            assert value not in summary
    # The power levels were asked for once, not for every photo.
    assert synapse.requests(bot.user_id, r"GET /_matrix/client/[^/]+/rooms/[^/ ]+/state[? ]") == 1


def bot_events(parent: Parent, room_id: str, bot: Bot) -> list[Any]:
    return [e for e in parent.events.get(room_id, []) if e.sender == bot.user_id]


async def command(parent: Parent, room_id: str, text: str) -> str:
    """Send a `!scrubbot` command and return the bot's answer to it."""
    event_id = await parent.send(room_id, {"msgtype": "m.text", "body": text})
    await parent.sync_until(lambda: bool(parent.notices(room_id, event_id)))
    (answer,) = parent.notices(room_id, event_id)
    return answer


async def test_room_modes_follow_power_levels(synapse: Synapse, tmp_path: Path) -> None:
    """A family room: moderators choose the mode; replace needs the power to redact."""
    bot = Bot(synapse, tmp_path / "bot")
    async with (
        Parent.login(synapse, tmp_path / "a") as parent,
        Parent.login(synapse, tmp_path / "b") as grandma,
        bot.running(),
    ):
        room = await family_room(parent, grandma, bot)

        refused = await command(grandma, room, "!scrubbot mode replace")
        assert refused == "Only moderators of this room (power level 50 or more) can change that."
        lacking = await command(parent, room, "!scrubbot mode replace")
        assert lacking.startswith("To replace photos I need power level 50 in this room")
        assert (await command(parent, room, "!scrubbot stats on")).startswith("Usage counts")

        warned = await grandma.send_photo(room, leaky_photo())
        await grandma.sync_until(lambda: grandma.answered(room, warned))
        (note,) = grandma.notices(room, warned)
        assert "Please delete your original" in note
        assert (await fetch_event(parent, room, warned))["content"]  # still there

        levels = await client_api(parent.client, "GET", f"/rooms/{room}/state/m.room.power_levels")
        levels["users"][bot.user_id] = 50
        await client_api(parent.client, "PUT", f"/rooms/{room}/state/m.room.power_levels", levels)
        answer = await command(parent, room, "!scrubbot mode replace")
        assert answer == "Replace: I delete the original and post a clean copy."

        replaced = await grandma.send_photo(room, leaky_photo(2))

        def reposted() -> bool:
            bodies = [getattr(e, "body", "") for e in bot_events(parent, room, bot)]
            return any("Clean copy of a photo from" in body for body in bodies)

        await parent.sync_until(reposted)
        for _ in range(100):  # the original goes once the clean copy is there
            original = await fetch_event(parent, room, replaced)
            if original["content"] == {}:
                break
            await asyncio.sleep(0.1)
        assert original["content"] == {}  # redacted by the bot
        assert original["unsigned"]["redacted_because"]["sender"] == bot.user_id
        repost = [e for e in bot_events(parent, room, bot) if isinstance(e, FILES)]
        assert inspect(await parent.download(repost[-1])).findings == ()

        counts = await command(parent, room, "!scrubbot stats")
        assert counts.startswith("This chat: 2 photos cleaned, 0 refused.")
        assert (await command(grandma, room, "!scrubbot forget")).startswith("Only moderators")
        forgotten = await command(parent, room, "!scrubbot forget")
        assert forgotten == "I deleted everything I had stored about this chat."
    said = " ".join(getattr(e, "body", "") for e in bot_events(parent, room, bot))
    for value in ("Kreuzberg", SERIAL, NAME, FBMD):
        assert value not in said


async def test_the_first_photo_before_the_bot_joins_is_answered(
    synapse: Synapse, tmp_path: Path
) -> None:
    """Element sends the first photo as soon as the invite is out; the bot, held back with
    SIGSTOP, joins only after it. What was sent before the invitation stays history."""
    bot = Bot(synapse, tmp_path / "bot")
    async with Parent.login(synapse, tmp_path) as parent, bot.running():
        photos = {}  # room -> (history, first photo)
        for encrypted in (False, True):
            created = await parent.client.room_create(
                initial_state=[ENCRYPTION] if encrypted else []
            )
            assert isinstance(created, RoomCreateResponse), created
            room = created.room_id
            await parent.sync_until(lambda: room in parent.client.rooms)  # noqa: B023
            history = await parent.send_photo(room, leaky_photo(1))
            bot.signal(signal.SIGSTOP)
            await parent.client.room_invite(room, bot.user_id)
            await parent.sync_until(lambda: bot.user_id in parent.room(room).invited_users)  # noqa: B023
            first = await parent.send_photo(room, leaky_photo(2))
            bot.signal(signal.SIGCONT)
            photos[room] = (history, first)
        await parent.sync_until(lambda: all(parent.answered(r, f) for r, (_, f) in photos.items()))
        await parent.sync()
    for room, (history, first) in photos.items():
        assert parent.replies(room, history) == []
        assert len(parent.files(room, first)) == 1
        assert len(parent.notices(room, first)) == 1


async def test_a_missing_room_key_is_waited_for_then_explained(
    synapse: Synapse, tmp_path: Path
) -> None:
    """Photos whose room key comes late are answered when it comes (one key request for the
    session, no error); one whose key never comes gets a notice in the room's language."""
    bot = Bot(synapse, tmp_path / "bot")
    async with Parent.login(synapse, tmp_path) as parent, bot.running() as log_path:
        room = await parent.room_with(bot, encrypted=True)
        assert (await command(parent, room, "!scrubbot language de")).startswith("Ab jetzt")
        withheld = OutboundGroupSession()
        at_first_message = OutboundGroupSession.from_pickle(withheld.pickle())
        withheld.mark_as_shared()  # so nio lets us encrypt with it; it is shared with nobody
        late = [await parent.send_withheld(room, withheld, leaky_photo(n)) for n in (1, 2)]
        await until(lambda: log_path.read_text().count("no room key yet") == 2, 30)
        # Now the parent shares that session after all (from its first message on).
        parent.client.olm.outbound_group_sessions[room] = at_first_message
        await parent.client.share_group_session(room, ignore_unverified_devices=True)
        await parent.sync_until(lambda: all(parent.answered(room, e) for e in late))
        for photo in late:
            assert inspect(await parent.download(parent.files(room, photo)[0])).findings == ()
        never_shared = OutboundGroupSession()
        never_shared.mark_as_shared()
        never = await parent.send_withheld(room, never_shared, leaky_photo(3))
        await parent.sync_until(lambda: bool(parent.notices(room, never)), 60)
    for photo in late:
        (summary,) = parent.notices(room, photo)
        assert summary.startswith("Dieses Foto enthielt den Aufnahmeort")
    (notice,) = parent.notices(room, never)
    assert notice.startswith("Ich konnte diese Nachricht nicht lesen")
    assert "Falls es ein Foto oder Video war" in notice  # it may have been either
    assert parent.files(room, never) == []
    # One key request per session (two sessions, three events), sent by nio or the bot.
    request = r"PUT /_matrix/client/[^/]+/sendToDevice/m.room_key_request/"
    assert synapse.requests(bot.user_id, request) == 2
    log = log_path.read_text()
    assert "Traceback" not in log
    assert "already sent out" not in log
    for identifier in (room, bot.user_id, parent.client.user_id, parent.client.device_id):
        assert identifier not in log
    assert withheld.id not in log  # nor the session


async def test_the_homeserver_stops_and_comes_back(synapse: Synapse, tmp_path: Path) -> None:
    """Synapse down for a while: the bot retries with backoff, then answers what was sent."""
    bot = Bot(synapse, tmp_path / "bot")
    async with Parent.login(synapse, tmp_path) as parent, bot.running() as log_path:
        room = await parent.room_with(bot, encrypted=True)
        before = await parent.send_photo(room, leaky_photo(1))
        await parent.sync_until(lambda: parent.answered(room, before))
        await asyncio.to_thread(synapse.stop)
        await asyncio.sleep(5)  # nio retries with backoff meanwhile
        await asyncio.to_thread(synapse.restart)
        after = [await parent.send_photo(room, leaky_photo(n)) for n in range(2, 6)]
        await parent.sync_until(lambda: all(parent.answered(room, p) for p in after), 90)
    log = log_path.read_text()
    assert "Traceback" not in log
    for photo in [before, *after]:
        assert len(parent.files(room, photo)) == 1


async def test_a_summary_cut_off_after_its_file_follows_alone(
    synapse: Synapse, tmp_path: Path
) -> None:
    """The bot stopped between the file and the summary (as SIGKILL can do): when it is back,
    it sends the summary, not the file again."""
    bot = Bot(synapse, tmp_path / "bot")
    async with Parent.login(synapse, tmp_path) as parent:
        async with bot.running():
            room = await parent.room_with(bot, encrypted=False)
        photo = await parent.send_photo(room, leaky_photo(1))
        as_bot = AsyncClient(synapse.url, bot.user_id)
        as_bot.access_token = bot.session["access_token"]
        reply = {
            "msgtype": "m.image",
            "body": "photo.jpg",
            "url": await parent.upload(leaky_photo(1)),
            "m.relates_to": {"m.in_reply_to": {"event_id": photo}},
        }
        path = f"/rooms/{room}/send/m.room.message/{time.monotonic_ns()}"
        await client_api(as_bot, "PUT", path, reply)  # the file the bot sent before it stopped
        await as_bot.close()
        async with bot.running():
            await parent.sync_until(lambda: parent.answered(room, photo))
            await parent.sync()  # a second file would follow at once
        assert len(parent.files(room, photo)) == 1
        (summary,) = parent.notices(room, photo)
        assert summary.startswith("This photo contained the place where it was taken")
