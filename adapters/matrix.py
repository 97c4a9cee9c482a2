"""Matrix (matrix-nio with vodozemac end-to-end encryption): room events in as chat-core events,
actions out as Matrix calls. `bot.chat` decides; this module logs in, syncs and translates.

The bot joins rooms it is invited to (by anyone, or only by the users and servers in
MATRIX_ALLOWED_INVITERS) and leaves a room once it is alone there. A photo sent as `m.image` or
`m.file`, in a plain or an encrypted room, is downloaded through the authenticated media API and
decrypted when it is an encrypted attachment; answers are replies to the photo (in its thread,
when it was in one): an `m.notice` with the summary (`body` and `formatted_body`), then the
cleaned file, uploaded encrypted in encrypted rooms. A room of two (the parent and the bot) is a
private chat; a bigger room a group, whose moderators (power level 50) may change settings, and
where mode `replace` needs the power to redact others' messages. Commands are `!scrubbot VERB`.

Only new photos are answered: the first sync after a start is the backlog and only read, events
before the bot's own join are history, the bot's own events are skipped, and event ids already
seen are remembered. The sync token lives in the store, so a restart continues where it stopped.

State lives in SCRUBBOT_DATA_DIR/matrix (folder 0700, files 0600): `session.json` (user, device,
access token; so a restart keeps the same device), `pickle.key` (a random key encrypting the
crypto store, never nio's default), nio's crypto store, and `cross_signing.json` (see
`adapters.matrix_crosssign`).

Trust: the bot shares room keys with every device in the room (`ignore_unverified_devices`). It
only ever sends a cleaned copy of a photo back into the room the photo came from, whose members
can already see the photo, so this reveals nothing they could not read before.
"""

import asyncio
import json
import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    InviteMemberEvent,
    LoginResponse,
    MatrixRoom,
    MegolmEvent,
    MemoryDownloadResponse,
    RoomEncryptedFile,
    RoomEncryptedImage,
    RoomEncryptedMedia,
    RoomMemberEvent,
    RoomMessageFile,
    RoomMessageImage,
    RoomMessageText,
    RoomRedactResponse,
    RoomSendResponse,
    SyncResponse,
    UploadResponse,
)
from nio.crypto.attachments import decrypt_attachment, encrypt_attachment
from nio.exceptions import EncryptionError

from adapters.markup import as_html, plain
from adapters.matrix_crosssign import (
    CrossSigningError,
    CrossSigningKeys,
    bootstrap,
    write_private,
)
from adapters.matrix_network import MatrixSettings
from bot import chat as core
from bot import logs, texts
from bot.errors import ConfigError
from bot.i18n import translations
from bot.network import Running
from bot.service import ScrubbedFile
from bot.summary import Summary
from bot.texts import Syntax, sorry

log = logging.getLogger(__name__)

COMMAND = "!scrubbot"
BANG = Syntax(f"{COMMAND} ")
MODERATOR = 50  # the power level Element calls "Moderator"
CREATOR = 2**53  # from room version 12 on, a room's creators outrank every power level
ROOM_VERSION_WITH_CREATORS = 12
SYNC_TIMEOUT_MS = 30_000
RETRY_SECONDS = (1, 2, 5, 10, 30)  # after failed syncs, then every 30 s
SEEN_EVENTS = 10_000  # event ids remembered against answering one twice
DEVICE_NAME = "scrubbot"
PHOTOS = (RoomMessageImage, RoomMessageFile, RoomEncryptedImage, RoomEncryptedFile)

Content = dict[str, Any]


class MatrixStartError(ConfigError):
    """The bot could not log in or sync at start; the message says what to do, without secrets
    (a ConfigError, so `scrubbot run` prints it and exits 2 instead of a traceback)."""


class MatrixAdapter:
    """Owns the nio client: login and store, the sync loop, and the photos in flight."""

    def __init__(self, settings: MatrixSettings, running: Running) -> None:
        self.settings = settings
        self.chat = running.chat("matrix", MatrixDialect())
        self.folder = running.data_dir / "matrix"
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sync: asyncio.Task[None] | None = None
        self.client: AsyncClient | None = None

    async def start(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        config = AsyncClientConfig(
            store_sync_tokens=True,
            encryption_enabled=True,
            pickle_key=self._secret_file("pickle.key"),
        )
        client = AsyncClient(
            self.settings.homeserver,
            self.settings.user_id,
            store_path=str(self.folder),
            config=config,
        )
        self.client = client
        await self._log_in(client)
        for path in self.folder.iterdir():
            path.chmod(0o600)
        if client.should_upload_keys:
            await client.keys_upload()
        await self._cross_sign(client)
        await self._first_sync(client)
        self._sync = asyncio.create_task(self._sync_forever(client))
        log.info("matrix: listening for photos")

    async def stop(self) -> None:
        """Stop syncing, finish the photos in flight, then close."""
        if self._sync:
            self._sync.cancel()
            await asyncio.gather(self._sync, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.client:
            await self.client.close()

    # -- login, store and cross-signing ------------------------------------------------------

    def _secret_file(self, name: str) -> str:
        path = self.folder / name
        if not path.exists():
            write_private(path, secrets.token_urlsafe(32))
        return path.read_text().strip()

    async def _log_in(self, client: AsyncClient) -> None:
        """Reuse the configured token or the saved session (same device); else log in once."""
        settings = self.settings
        session_path = self.folder / "session.json"
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

    async def _cross_sign(self, client: AsyncClient) -> None:
        keys = CrossSigningKeys.load_or_create(self.folder / "cross_signing.json")
        headers = {"Authorization": f"Bearer {client.access_token}"}
        try:
            async with aiohttp.ClientSession(headers=headers) as http:
                await bootstrap(
                    http,
                    self.settings.homeserver,
                    client.user_id,
                    client.device_id,
                    keys,
                    self.settings.password,
                    client.olm.sign_json,
                )
        except (CrossSigningError, aiohttp.ClientError) as error:
            log.warning("matrix: cross-signing not set up (%s); Element may not share keys", error)

    # -- sync -------------------------------------------------------------------------------

    async def _first_sync(self, client: AsyncClient) -> None:
        """Catch up: join pending invites and leave empty rooms, but answer nothing old."""
        response = await client.sync(timeout=0, full_state=True)
        if getattr(response, "status_code", None) == "M_UNKNOWN_TOKEN":
            raise MatrixStartError(
                "The Matrix session is no longer valid (was the bot's device logged out?). "
                "Delete matrix/session.json in SCRUBBOT_DATA_DIR to log in again as a new "
                "device with MATRIX_PASSWORD, or set a new MATRIX_ACCESS_TOKEN."
            )
        if not isinstance(response, SyncResponse):
            raise MatrixStartError(f"Matrix sync failed: {response.status_code}")
        await self._maintain_keys(client)
        await self._handle(client, response, backlog=True)

    async def _sync_forever(self, client: AsyncClient) -> None:
        failures = 0
        while True:
            try:
                response = await client.sync(timeout=SYNC_TIMEOUT_MS)
                if not isinstance(response, SyncResponse):
                    raise MatrixSyncError(str(response.status_code))
                await self._maintain_keys(client)
                await self._handle(client, response, backlog=False)
                failures = 0
            except (MatrixSyncError, aiohttp.ClientError, TimeoutError) as error:
                pause = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.warning("matrix: sync failed (%s); retrying in %d s", error, pause)
                await asyncio.sleep(pause)
            except Exception:
                failures += 1
                log.exception("matrix: unexpected error in the sync loop; continuing")
                await asyncio.sleep(RETRY_SECONDS[0])

    async def _maintain_keys(self, client: AsyncClient) -> None:
        """What nio's sync_forever does between syncs: one-time keys, device lists, sessions."""
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()
        if client.should_claim_keys:
            await client.keys_claim(client.get_users_for_key_claiming())
        await client.send_to_device_messages()

    async def _handle(self, client: AsyncClient, response: SyncResponse, backlog: bool) -> None:
        for room_id, invite in response.rooms.invite.items():
            await self._on_invite(client, room_id, invite.invite_state)
        for room_id, info in response.rooms.join.items():
            room = client.rooms.get(room_id)
            if room is None:
                continue
            for event in self._new_events(client, info.timeline.events, backlog):
                self._dispatch(client, room, event)
            if room.joined_count <= 1:
                await client.room_leave(room_id)
                await client.room_forget(room_id)
                log.info("matrix: left a room where nobody else was")

    def _new_events(self, client: AsyncClient, events: list[Any], backlog: bool) -> list[Any]:
        """The events to answer: none from the backlog, none from before our own join, none
        of ours, none seen before."""
        joins = [
            index
            for index, event in enumerate(events)
            if isinstance(event, RoomMemberEvent)
            and event.state_key == client.user_id
            and event.membership == "join"
            and event.prev_membership != "join"
        ]
        if joins:
            events = events[joins[-1] + 1 :]  # earlier ones are history we were shown
        fresh = []
        for event in events:
            event_id = getattr(event, "event_id", None)
            if event_id is None or event_id in self._seen:
                continue
            self._seen[event_id] = None
            if len(self._seen) > SEEN_EVENTS:
                self._seen.popitem(last=False)
            if not backlog and event.sender != client.user_id:
                fresh.append(event)
        return fresh

    def _dispatch(self, client: AsyncClient, room: MatrixRoom, event: Any) -> None:
        if isinstance(event, PHOTOS):
            self._spawn(self._on_photo(client, room, event))
        elif isinstance(event, RoomMessageText) and event.body.strip().startswith(COMMAND):
            self._spawn(self._on_command(client, room, event))
        elif isinstance(event, MegolmEvent):
            log.info("matrix: could not decrypt a message (no room key); asking for it")
            self._spawn(self._request_key(client, event))

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(self._guarded(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, work: Any) -> None:
        try:
            await work
        except Exception:
            log.exception("matrix: unexpected error while handling an event")

    async def _request_key(self, client: AsyncClient, event: Any) -> None:
        await client.request_room_key(event)

    async def _on_invite(self, client: AsyncClient, room_id: str, state: list[Any]) -> None:
        inviter = next(
            (
                e.sender
                for e in state
                if isinstance(e, InviteMemberEvent)
                and e.state_key == client.user_id
                and e.membership == "invite"
            ),
            None,
        )
        if inviter is None or not self._may_invite(inviter):
            await client.room_leave(room_id)
            log.info("matrix: declined an invite from someone not on the allow-list")
            return
        await client.join(room_id)
        log.info("matrix: joined a room")

    def _may_invite(self, user_id: str) -> bool:
        allowed = self.settings.allowed_inviters
        server = user_id.split(":", 1)[-1]
        return not allowed or user_id in allowed or server in allowed

    # -- events in, actions out ----------------------------------------------------------------

    def _where(self, client: AsyncClient, room: MatrixRoom) -> core.Where:
        """A room of two (a parent and the bot) is a private chat; a bigger one a group."""

        async def rights() -> core.Rights:
            levels = await _power_levels(client, room)
            mine = levels.user(client.user_id)
            return core.Rights(mine >= levels.redact, levels.redact, mine >= levels.post)

        return core.Where(room.room_id, room.joined_count > 2, None, rights)

    def _who(self, client: AsyncClient, room: MatrixRoom, event: Any) -> core.Who:
        async def may_configure() -> bool:
            return (await _power_levels(client, room)).user(event.sender) >= MODERATOR

        return core.Who(event.sender, room.user_name(event.sender), may_configure)

    async def _on_photo(self, client: AsyncClient, room: MatrixRoom, event: Any) -> None:
        """An image or file, in a plain or an encrypted room."""
        info = event.source.get("content", {}).get("info") or {}
        size = info.get("size") if isinstance(info, dict) else None
        photo = core.Photo(
            size if isinstance(size, int) else None, lambda: self._download(client, event)
        )
        where, who = self._where(client, room), self._who(client, room, event)
        actions = await self.chat.photos(core.Photos(where, who, (photo,)))
        await self._do(client, room, event, where, actions)

    async def _on_command(self, client: AsyncClient, room: MatrixRoom, event: Any) -> None:
        """`!scrubbot VERB ARGS`: help for anything the core does not know."""
        words = event.body.strip().split()[1:]
        verb, args = (words[0], tuple(words[1:])) if words else ("", ())
        where, who = self._where(client, room), self._who(client, room, event)
        actions = await self.chat.command(core.Command(where, who, verb, args))
        await self._do(client, room, event, where, actions)

    async def _do(
        self,
        client: AsyncClient,
        room: MatrixRoom,
        event: Any,
        where: core.Where,
        actions: list[core.Action],
    ) -> None:
        for action in actions:
            if isinstance(action, core.Say) and action.summary:
                await self._notice(client, room, event, action.summary.text, _html(action.summary))
            elif isinstance(action, core.Say | core.Denied):
                await self._notice(client, room, event, action.text)
            elif isinstance(action, core.ModeMenu):
                await self._notice(client, room, event, f"{action.text}\n{action.usage}")
            elif isinstance(action, core.Remove):
                redacted = await client.room_redact(
                    room.room_id, event.event_id, reason="scrubbot: replaced by a clean copy"
                )
                if not isinstance(redacted, RoomRedactResponse):
                    log.warning("matrix: could not redact an original (its clean copy is posted)")
            elif isinstance(action, core.ScrubbedCopy):  # a failed copy: the original stays
                text, html = plain(action.summary, action.note), _html(action.summary, action.note)
                to, thread_of = (event, None) if action.reply else (None, event)
                if not (
                    await self._notice(client, room, to, text, html, thread_of)
                    and await self._send_files(client, room, to, where, action.files, thread_of)
                ):
                    return
            elif isinstance(action, core.SendFiles):
                await self._send_files(client, room, event, where, action.files)

    async def _download(self, client: AsyncClient, event: Any) -> bytes | None:
        """The file's bytes (decrypted), or None when it cannot be fetched or decrypted."""
        response = await client.download(mxc=event.url)
        if not isinstance(response, MemoryDownloadResponse):
            log.warning("matrix: download failed: %s", getattr(response, "status_code", None))
            return None
        data: bytes = response.body
        if not isinstance(event, RoomEncryptedMedia):
            return data
        try:
            decrypted: bytes = await asyncio.to_thread(
                decrypt_attachment, data, event.key["k"], event.hashes["sha256"], event.iv
            )
        except (EncryptionError, KeyError, ValueError):
            log.info("matrix: an encrypted attachment did not decrypt (%d bytes)", len(data))
            return None
        return decrypted

    async def _send_files(
        self,
        client: AsyncClient,
        room: MatrixRoom,
        to: Any,
        where: core.Where,
        files: tuple[ScrubbedFile, ...],
        thread_of: Any = None,
    ) -> bool:
        """The cleaned files as replies to `to`; with `to` None (in place of the original) in
        the thread of `thread_of`. A failed upload ends it with an apology (and False)."""
        for cleaned in files:
            if not await self._send_file(client, room, to, cleaned, thread_of):
                language = await self.chat.language(where)
                await self._notice(client, room, to, sorry(language), None, thread_of)
                return False
        return True

    async def _send_file(
        self,
        client: AsyncClient,
        room: MatrixRoom,
        to: Any,
        cleaned: ScrubbedFile,
        thread_of: Any = None,
    ) -> bool:
        """Upload `cleaned` (encrypted in an encrypted room) and send it as a reply."""
        content: Content = {
            "msgtype": "m.file",
            "body": cleaned.file_name,
            "filename": cleaned.file_name,
            "info": {"mimetype": cleaned.mime, "size": len(cleaned.data)},
        }
        if room.encrypted:
            ciphertext, keys = await asyncio.to_thread(encrypt_attachment, cleaned.data)
            url = await self._upload(client, ciphertext, "application/octet-stream", None)
            content["file"] = {**keys, "url": url}
        else:
            url = await self._upload(client, cleaned.data, cleaned.mime, cleaned.file_name)
            content["url"] = url
        return url is not None and await self._room_send(
            client, room, {**content, **_relation(to, thread_of)}
        )

    async def _upload(
        self, client: AsyncClient, data: bytes, mime: str, name: str | None
    ) -> str | None:
        response, _ = await client.upload(
            lambda *_: data, content_type=mime, filename=name, filesize=len(data)
        )
        if not isinstance(response, UploadResponse):
            log.warning("matrix: upload failed: %s", getattr(response, "status_code", None))
            return None
        url: str = response.content_uri
        return url

    async def _notice(
        self,
        client: AsyncClient,
        room: MatrixRoom,
        to: Any,
        text: str,
        html: str | None = None,
        thread_of: Any = None,
    ) -> bool:
        content: Content = {"msgtype": "m.notice", "body": text}
        if html is not None:
            content.update(format="org.matrix.custom.html", formatted_body=html)
        return await self._room_send(client, room, {**content, **_relation(to, thread_of)})

    async def _room_send(self, client: AsyncClient, room: MatrixRoom, content: Content) -> bool:
        response = await client.room_send(
            room.room_id, "m.room.message", content, ignore_unverified_devices=True
        )
        if not isinstance(response, RoomSendResponse):
            log.warning("matrix: sending failed: %s", getattr(response, "status_code", None))
            return False
        return True


@dataclass(frozen=True)
class PowerLevels:
    """The parts of a room's m.room.power_levels the bot needs, as the server has them now."""

    users: dict[str, int]
    users_default: int = 0
    redact: int = MODERATOR
    creators: frozenset[str] = frozenset()  # room version 12: above every level
    post: int = 0  # to send the bot's messages (m.room.encrypted in an encrypted room)

    def user(self, user_id: str) -> int:
        if user_id in self.creators:
            return CREATOR
        return self.users.get(user_id, self.users_default)


async def _power_levels(client: AsyncClient, room: MatrixRoom) -> PowerLevels:
    """Asked from the server each time, so a moderator's change counts at once."""
    response = await client.room_get_state(room.room_id)
    events = getattr(response, "events", None)
    if not isinstance(events, list):
        return PowerLevels({})
    state = {e.get("type"): e for e in events if isinstance(e, dict) and e.get("state_key") == ""}
    content = (state.get("m.room.power_levels") or {}).get("content") or {}
    create = state.get("m.room.create") or {}
    creators: frozenset[str] = frozenset()
    version = str((create.get("content") or {}).get("room_version", "1"))
    if version.isdigit() and int(version) >= ROOM_VERSION_WITH_CREATORS:
        extra = (create.get("content") or {}).get("additional_creators") or []
        creators = frozenset({str(create.get("sender")), *map(str, extra)})
    users = content.get("users") or {}
    sends = "m.room.encrypted" if room.encrypted else "m.room.message"
    post = (content.get("events") or {}).get(sends, content.get("events_default", 0))
    return PowerLevels(
        {str(u): int(level) for u, level in users.items() if isinstance(level, int)},
        int(content.get("users_default", 0)),
        int(content.get("redact", MODERATOR)),
        creators,
        post if isinstance(post, int) else 0,
    )


class MatrixSyncError(Exception):
    """A sync answered with an error status (retried)."""


def _relation(to: Any, thread_of: Any = None) -> Content:
    """Reply to event `to`, inside its thread when it is in one; with `to` None, only stay in
    the thread of `thread_of` (an original that was redacted)."""
    source = to if to is not None else thread_of
    if source is None:
        return {}
    relates = source.source.get("content", {}).get("m.relates_to") or {}
    reply: Content = {"m.in_reply_to": {"event_id": to.event_id}} if to is not None else {}
    if isinstance(relates, dict) and relates.get("rel_type") == "m.thread":
        reply.update(rel_type="m.thread", event_id=relates["event_id"], is_falling_back=False)
    return {"m.relates_to": reply} if reply else {}


def _html(summary: Summary, note: str = "") -> str:
    return as_html(summary, note).replace("\n", "<br>")


@dataclass(frozen=True)
class MatrixDialect:
    syntax: Syntax = BANG
    download_limit: int | None = None

    def how_to_send(self, language: str) -> str:
        return translations(language).gettext(
            "Send a photo into this room and I reply with a cleaned copy. To change my language "
            "in this room, send: !scrubbot language de (or en)."
        )

    def too_large(self, language: str, limit: int) -> str:
        return texts.too_large(language, limit // (1024 * 1024))

    def not_allowed(self, language: str) -> str:
        text = translations(language).gettext(
            "Only moderators of this room (power level {level} or more) can change that."
        )
        return text.format(level=MODERATOR)

    def cannot_remove(self, language: str, rights: core.Rights) -> str:
        text = translations(language).gettext(
            "To replace photos I need power level {level} in this room: the level it "
            "takes to remove other people's messages. Until then I warn."
        )
        return text.format(level=rights.remove_level or MODERATOR)
