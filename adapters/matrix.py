"""Matrix (matrix-nio with vodozemac end-to-end encryption): room events in, `bot.service` calls,
replies out.

The bot joins rooms it is invited to (by anyone, or only by the users and servers in
MATRIX_ALLOWED_INVITERS) and leaves a room once it is alone there. A photo sent as `m.image` or
`m.file`, in a plain or an encrypted room, is downloaded through the authenticated media API,
decrypted when it is an encrypted attachment, cleaned, and answered in reply to the photo (in its
thread, when it was in one): an `m.notice` with the summary, then the cleaned file, uploaded
encrypted in encrypted rooms. A room of two (the parent and the bot) gets the private summary
with values; a bigger room only the kinds of data, as Telegram groups do.

What was sent to the bot is answered, what happened before it was there is not: in a room the
bot was invited to, events after the invitation (not only after its join) are answered, events
before it are history. The sync token is saved (in nio's store) only after the events it covers
have been answered, so after a restart, even after SIGKILL, the homeserver sends what was not
answered yet, and the bot's own replies in the same timeline tell it what was (it keeps no copy
of anything). Only on the very first start, with no saved token, is the first sync backlog that
is read and not answered. See `adapters.matrix_sync`.

An event that does not decrypt asks for its room key (once per session) and waits for it a
bounded time; when the key comes it is answered like any other, else the sender hears that it
could not be read. Photos are downloaded with the size enforced while they stream, and answered
as they were sent: an `m.image` with an `m.image` (with its dimensions), an `m.file` with an
`m.file`; the file goes out before the summary, so no summary promises a file that never comes.

State lives in SCRUBBOT_DATA_DIR/matrix (folder 0700, files 0600): `session.json` (user, device,
access token; so a restart keeps the same device), `pickle.key` (a random key encrypting the
crypto store, never nio's default), nio's crypto store, and `cross_signing.json` (see
`adapters.matrix_crosssign`).

Trust: the bot shares room keys with every device in the room (`ignore_unverified_devices`). It
only ever sends a cleaned copy of a photo back into the room the photo came from, whose members
can already see the photo, so this reveals nothing they could not read before.

The user's language is not known on Matrix: English, until someone in the room sends
`!scrubbot language de` (kept in the store's settings). `!scrubbot help` and `!scrubbot privacy`
answer as /start and /privacy do on Telegram; `!scrubbot stats [on|off]` and `!scrubbot forget`
as /stats and /forget do.

Rooms of more than two are treated like Telegram groups: kinds only, silent when nothing is
found, and a mode chosen by moderators (power level 50) with `!scrubbot mode off|warn|replace`:
`replace` redacts the original (the bot needs the power to redact others' messages, and says
which level it lacks) and posts the clean copy crediting the sender; `warn` replies.
"""

import asyncio
import json
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from html import escape as html_escape
from pathlib import Path
from typing import Any

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    InviteMemberEvent,
    LoginResponse,
    MatrixRoom,
    MegolmEvent,
    RoomEncryptedFile,
    RoomEncryptedImage,
    RoomEncryptedMedia,
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

from adapters.matrix_crosssign import (
    CrossSigningError,
    CrossSigningKeys,
    bootstrap,
    write_private,
)
from adapters.matrix_media import Media, TooLargeDownload, file_content
from adapters.matrix_sync import (
    REPLACES,
    SYNC_FILTER,
    Checkpoints,
    MissingKeys,
    PowerLevelCache,
    after_invitation,
    arrived_keys,
    changes_power,
    replied_to,
)
from bot import logs
from bot.config import ConfigError, MatrixSettings
from bot.errors import DamagedImage
from bot.i18n import DEFAULT, available, translations
from bot.ratelimit import RateLimit
from bot.service import CleanedFile, Reply, Service
from bot.store import Store
from bot.summary import Detail
from bot.texts import (
    MODES,
    OFF,
    REPLACE,
    WARN,
    forgotten,
    mode_text,
    privacy,
    refusal,
    slow_down,
    sorry,
    stats,
    stats_none,
    stats_off,
    stats_on,
    welcome,
)

log = logging.getLogger(__name__)

COMMAND = "!scrubbot"
LANGUAGE_WORDS = ("language", "sprache", "lang")
MODERATOR = 50  # the power level Element calls "Moderator"
CREATOR = 2**53  # from room version 12 on, a room's creators outrank every power level
ROOM_VERSION_WITH_CREATORS = 12
SYNC_TIMEOUT_MS = 30_000
RETRY_SECONDS = (1, 2, 5, 10, 30)  # after failed syncs, then every 30 s
PHOTOS_PER_MINUTE = 30  # per sender, as on Telegram
SEEN_EVENTS = 10_000  # event ids remembered against answering one twice
DEVICE_NAME = "scrubbot"
PHOTOS = (RoomMessageImage, RoomMessageFile, RoomEncryptedImage, RoomEncryptedFile)
IMAGES = (RoomMessageImage, RoomEncryptedImage)

Content = dict[str, Any]


class MatrixStartError(ConfigError):
    """The bot could not log in or sync at start; the message says what to do, without secrets
    (a ConfigError, so `scrubbot run` prints it and exits 2 instead of a traceback)."""


class MatrixAdapter:
    """Owns the nio client: login and store, the sync loop, and the photos in flight."""

    def __init__(
        self, settings: MatrixSettings, service: Service, data_dir: Path, store: Store
    ) -> None:
        self.settings = settings
        self.service = service
        self.store = store
        self.folder = data_dir / "matrix"
        self.limit = RateLimit(PHOTOS_PER_MINUTE, 60)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: set[asyncio.Task[Any]] = set()  # events waiting for a room key
        self._sync: asyncio.Task[None] | None = None
        self._invited_at: dict[str, int] = {}  # room id -> server time of the bot's invite
        self._told_sessions: set[str] = set()  # undecryptable sessions a family room heard of
        self.keys = MissingKeys()
        self.power_levels: PowerLevelCache[PowerLevels] = PowerLevelCache(self._fetch_levels)
        self.checkpoints: Checkpoints | None = None
        self.http: aiohttp.ClientSession | None = None
        self.client: AsyncClient | None = None

    async def start(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        config = AsyncClientConfig(
            store_sync_tokens=False,  # saved by Checkpoints, after the events are answered
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
        self.http = aiohttp.ClientSession()
        await self._first_sync(client)
        self._sync = asyncio.create_task(self._sync_forever(client))
        log.info("matrix: listening for photos")

    async def stop(self) -> None:
        """Stop syncing, finish the photos in flight, then close. Events still waiting for a
        room key are left unanswered: their sync position is not saved, so they come again."""
        if self._sync:
            self._sync.cancel()
            await asyncio.gather(self._sync, return_exceptions=True)
        for waiting in list(self._waiting):
            waiting.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.http:
            await self.http.close()
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
        """Catch up from the saved sync position: what came while the bot was away is answered.
        Without one (the very first start) the first sync is backlog: read, not answered."""
        token = client.store.load_sync_token() if client.store else None
        client.loaded_sync_token = token or ""
        store = client.store
        self.checkpoints = Checkpoints(lambda t: store.save_sync_token(t) if store else None)
        response = await client.sync(timeout=0, full_state=True, sync_filter=SYNC_FILTER)
        if getattr(response, "status_code", None) == "M_UNKNOWN_TOKEN":
            raise MatrixStartError(
                "The Matrix session is no longer valid (was the bot's device logged out?). "
                "Delete matrix/session.json in SCRUBBOT_DATA_DIR to log in again as a new "
                "device with MATRIX_PASSWORD, or set a new MATRIX_ACCESS_TOKEN."
            )
        if not isinstance(response, SyncResponse):
            raise MatrixStartError(f"Matrix sync failed: {response.status_code}")
        await self._maintain_keys(client)
        await self._handle(client, response, backlog=not token)
        if not token:
            log.info("matrix: first start; earlier messages are not answered")

    async def _sync_forever(self, client: AsyncClient) -> None:
        failures = 0
        while True:
            try:
                response = await client.sync(timeout=SYNC_TIMEOUT_MS, sync_filter=SYNC_FILTER)
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
        """Answer a sync's new events; its token is saved once they all have been answered."""
        self.keys.arrived(arrived_keys(response))
        tasks: list[asyncio.Task[None]] = []
        for room_id, invite in response.rooms.invite.items():
            await self._on_invite(client, room_id, invite.invite_state)
        for room_id, info in response.rooms.join.items():
            room = client.rooms.get(room_id)
            if room is None:
                continue
            if changes_power([*info.state, *info.timeline.events]):
                self.power_levels.forget(room_id)
            for event in self._new_events(client, room_id, info.timeline.events, backlog):
                task = self._dispatch(client, room, event)
                if task is not None:
                    tasks.append(task)
            if room.joined_count <= 1:
                await client.room_leave(room_id)
                await client.room_forget(room_id)
                log.info("matrix: left a room where nobody else was")
        if self.checkpoints is not None:
            self.checkpoints.add(response.next_batch, tasks)

    def _new_events(
        self, client: AsyncClient, room_id: str, events: list[Any], backlog: bool
    ) -> list[Any]:
        """The events to answer: none from the backlog, none from before the bot was invited,
        none of its own, none it has answered (its replies are in the timeline) or seen."""
        answered = replied_to(events, client.user_id)
        fresh = []
        for event in after_invitation(events, client.user_id, self._invited_at.get(room_id)):
            event_id = getattr(event, "event_id", None)
            if event_id is None or event_id in self._seen:
                continue
            self._seen[event_id] = None
            if len(self._seen) > SEEN_EVENTS:
                self._seen.popitem(last=False)
            if not backlog and event.sender != client.user_id and event_id not in answered:
                fresh.append(event)
        return fresh

    def _dispatch(self, client: AsyncClient, room: MatrixRoom, event: Any) -> Any:
        """Start answering `event`; the task, or None when there is nothing to answer."""
        if isinstance(event, PHOTOS):
            return self._spawn(self._on_photo(client, room, event))
        if isinstance(event, RoomMessageText) and event.body.strip().startswith(COMMAND):
            return self._spawn(self._on_command(client, room, event))
        if isinstance(event, MegolmEvent):
            log.info("matrix: could not decrypt a message (no room key yet)")
            return self._spawn(self._on_undecryptable(client, room, event))
        return None

    def _spawn(self, work: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(self._guarded(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guarded(self, work: Any) -> None:
        try:
            await work
        except Exception:
            log.exception("matrix: unexpected error while handling an event")

    async def _on_undecryptable(
        self, client: AsyncClient, room: MatrixRoom, event: MegolmEvent
    ) -> None:
        """Wait for the room key; then answer the event as usual, or tell the sender."""
        waiting = asyncio.current_task()
        if waiting is not None:
            self._waiting.add(waiting)
        try:
            decrypted = await self.keys.wait(client, event)
        finally:
            if waiting is not None:
                self._waiting.discard(waiting)
        if decrypted is not None:
            log.info("matrix: a room key came; answering the message")
            if isinstance(decrypted, PHOTOS):
                await self._on_photo(client, room, decrypted)
            elif isinstance(decrypted, RoomMessageText) and decrypted.body.strip().startswith(
                COMMAND
            ):
                await self._on_command(client, room, decrypted)
            return
        if room.joined_count > 2:
            if event.session_id in self._told_sessions:
                return
            self._told_sessions.add(event.session_id)
        log.info("matrix: no room key came in time; telling the sender")
        language = await self._language(room)
        text = translations(language).gettext(
            "I could not read this message: it reached me encrypted, without the key to open "
            "it. If it was a photo, please send it again. If this keeps happening, check in "
            "your app's settings that your session is verified."
        )
        await self._notice(client, room, event, text)

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
        self._invited_at[room_id] = _invite_time(state, client.user_id)
        await client.join(room_id)
        log.info("matrix: joined a room")

    def _may_invite(self, user_id: str) -> bool:
        allowed = self.settings.allowed_inviters
        server = user_id.split(":", 1)[-1]
        return not allowed or user_id in allowed or server in allowed

    # -- photos and commands ----------------------------------------------------------------

    def _key(self, room: MatrixRoom) -> str:
        return self.store.chat_key("matrix", room.room_id)

    async def _language(self, room: MatrixRoom) -> str:
        return await self.store.setting(self._key(room), "language") or DEFAULT

    async def _fetch_levels(self, room_id: str) -> "PowerLevels":
        if self.client is None:
            return PowerLevels({})
        return await _power_levels(self.client, room_id)

    async def _mode(self, client: AsyncClient, room: MatrixRoom) -> tuple[str, bool]:
        """The room's mode, and whether the bot may redact others' messages there now."""
        levels = await self.power_levels.get(room.room_id)
        may_redact = levels.user(client.user_id) >= levels.redact
        mode = await self.store.setting(self._key(room), "mode")
        return mode or (REPLACE if may_redact else WARN), may_redact

    async def _on_photo(self, client: AsyncClient, room: MatrixRoom, event: Any) -> None:
        """An image or file: check its size, download, decrypt, clean, reply.

        In a room of two (the parent and the bot) every file is answered, with values. In a
        bigger room only photos with hidden data are, with kinds only, as the room's mode says."""
        language = await self._language(room)
        group = room.joined_count > 2
        mode, may_redact = await self._mode(client, room) if group else (WARN, False)
        if mode == OFF:
            return
        if not self.limit.allow(event.sender):
            await self._notice(client, room, event, slow_down(language))
            return
        info = event.source.get("content", {}).get("info") or {}
        size = info.get("size") if isinstance(info, dict) else None
        mb = self.service.limits.max_bytes // (1024 * 1024)
        text = translations(language).gettext(
            "This file is too large: I can clean files up to {mb} MB."
        )
        if isinstance(size, int) and size > self.service.limits.max_bytes:
            log.info("matrix: refused a file of %d bytes before downloading", size)
            if not group:
                await self._notice(client, room, event, text.format(mb=mb))
            return
        async with self.service.slot():
            try:
                data = await self._download(client, event)
            except TooLargeDownload:
                log.info("matrix: stopped a download at the size limit")
                if not group:
                    await self._notice(client, room, event, text.format(mb=mb))
                return
            if data is None:
                if not group:
                    await self._notice(client, room, event, refusal(DamagedImage(), language))
                return
            detail = Detail.GROUP if group else Detail.PRIVATE
            reply = await self.service.clean([data], language, detail)
            await self.store.record(self._key(room), *reply.usage())
            if not group:
                await self._send(client, room, event, reply, language)
            elif reply.found_anything and mode == REPLACE and may_redact:
                await self._replace(client, room, event, reply, language)
            elif reply.found_anything:
                note = translations(language).gettext(
                    "Here is a clean copy. Please delete your original: it still carries this "
                    "data."
                )
                await self._send(client, room, event, reply, language, note)

    async def _replace(
        self, client: AsyncClient, room: MatrixRoom, event: Any, reply: Reply, language: str
    ) -> None:
        """Post the clean copy crediting the sender, then redact the original (only once the
        copy is there: a photo is never lost)."""
        name = room.user_name(event.sender) or translations(language).gettext("an admin")
        credit = translations(language).gettext("Clean copy of a photo from {name}.")
        credited = credit.format(name=name)
        if not await self._send(client, room, None, reply, language, credited, event):
            return
        redacted = await client.room_redact(
            room.room_id, event.event_id, reason="scrubbot: replaced by a clean copy"
        )
        if not isinstance(redacted, RoomRedactResponse):
            log.warning("matrix: could not redact an original")

    async def _download(self, client: AsyncClient, event: Any) -> bytes | None:
        """The file's bytes (decrypted), or None when it cannot be fetched or decrypted;
        TooLargeDownload as soon as more bytes arrive than the bot may clean."""
        media = Media(self.settings.homeserver, client.access_token)
        try:
            if self.http is None:
                raise aiohttp.ClientConnectionError("not started")
            data = await media.download(self.http, event.url, self.service.limits.max_bytes)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            log.warning("matrix: download failed: %s", type(error).__name__)
            return None
        if not isinstance(event, RoomEncryptedMedia):
            return data
        try:
            plain: bytes = await asyncio.to_thread(
                decrypt_attachment, data, event.key["k"], event.hashes["sha256"], event.iv
            )
        except (EncryptionError, KeyError, ValueError):
            log.info("matrix: an encrypted attachment did not decrypt (%d bytes)", len(data))
            return None
        return plain

    async def _send(
        self,
        client: AsyncClient,
        room: MatrixRoom,
        to: Any,
        reply: Reply,
        language: str,
        note: str = "",
        thread_of: Any = None,
    ) -> bool:
        """The cleaned files, then the summary (with `note` below it) and refusals, as replies
        to `to`; with `to` None (the original was redacted) in the thread of `thread_of`. The
        files go first, so no summary promises a file that never comes. False when a file
        could not be sent (the sender is told)."""
        original = to if to is not None else thread_of
        as_image = isinstance(original, IMAGES)
        for cleaned in reply.files:
            replaces = original.event_id if to is None and original is not None else None
            if not await self._send_file(client, room, to, cleaned, thread_of, as_image, replaces):
                await self._notice(client, room, to, sorry(language), None, thread_of)
                return False
        if reply.summary:
            text = f"{reply.summary.text}\n\n{note}".strip()
            html = f"{reply.summary.html}\n\n{html_escape(note)}".strip().replace("\n", "<br>")
            await self._notice(client, room, to, text, html, thread_of)
        if reply.refusals:
            await self._notice(client, room, to, "\n".join(dict.fromkeys(reply.refusals)))
        return True

    async def _send_file(
        self,
        client: AsyncClient,
        room: MatrixRoom,
        to: Any,
        cleaned: CleanedFile,
        thread_of: Any = None,
        as_image: bool = False,
        replaces: str | None = None,
    ) -> bool:
        """Upload `cleaned` (encrypted in an encrypted room) and send it as a reply: as an
        `m.image` with its dimensions when the original was one, else as an `m.file`."""
        content: Content = file_content(cleaned, as_image)
        if replaces is not None:
            content[REPLACES] = replaces
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

    async def _may_configure(self, client: AsyncClient, room: MatrixRoom, user_id: str) -> bool:
        """Anyone in a room of two; in a bigger room, moderators (power level 50 or more)."""
        if room.joined_count <= 2:
            return True
        levels = await self.power_levels.get(room.room_id)
        return levels.user(user_id) >= MODERATOR

    async def _on_command(self, client: AsyncClient, room: MatrixRoom, event: Any) -> None:
        """`!scrubbot language de|en`, `mode off|warn|replace`, `stats [on|off]`, `forget`,
        `privacy`, and help for anything else. What changes the room's settings takes a
        moderator in rooms of more than two."""
        words = [word.lower() for word in event.body.strip().split()[1:]]
        verb, rest = (words[0], words[1:]) if words else ("", [])
        language = await self._language(room)
        key = self._key(room)
        changes = verb in ("mode", "forget") or (verb in (*LANGUAGE_WORDS, "stats") and rest)
        if changes and not await self._may_configure(client, room, event.sender):
            text = (
                translations(language)
                .gettext(
                    "Only moderators of this room (power level {level} or more) can change that."
                )
                .format(level=MODERATOR)
            )
        elif verb in LANGUAGE_WORDS and len(rest) == 1:
            text = await self._set_language(key, rest[0], language)
        elif verb == "mode":
            text = await self._set_mode(client, room, rest, language)
        elif verb == "stats" and rest == ["on"]:
            await self.store.opt_in(key)
            text = stats_on(language)
        elif verb == "stats" and rest == ["off"]:
            await self.store.opt_out(key)
            text = stats_off(language)
        elif verb == "stats":
            opted = await self.store.opted_in(key)
            text = stats(await self.store.counts(key), language) if opted else stats_none(language)
        elif verb == "forget":
            await self.store.forget(key)
            text = forgotten(language)
        elif verb == "privacy":
            text = privacy(language)
        else:
            text = f"{welcome(language)}\n\n{_how_to_use(language)}"
        await self._notice(client, room, event, text)

    async def _set_language(self, key: str, wanted: str, language: str) -> str:
        if wanted not in available():
            return (
                translations(language)
                .gettext(
                    "I can answer in these languages: {languages}. For example: "
                    "!scrubbot language de"
                )
                .format(languages=", ".join(available()))
            )
        await self.store.set_setting(key, "language", wanted)
        return translations(wanted).gettext("From now on I answer in English in this room.")

    async def _set_mode(
        self, client: AsyncClient, room: MatrixRoom, rest: list[str], language: str
    ) -> str:
        """`mode replace` needs the power to redact others' messages: say which level."""
        current, may_redact = await self._mode(client, room)
        if len(rest) != 1 or rest[0] not in MODES:
            return mode_text(current, language) + "\n" + _mode_usage(language)
        if rest[0] == REPLACE and not may_redact:
            text = translations(language).gettext(
                "To replace photos I need power level {level} in this room: the level it "
                "takes to remove other people's messages. Until then I warn."
            )
            return text.format(level=(await self.power_levels.get(room.room_id)).redact)
        await self.store.set_setting(self._key(room), "mode", rest[0])
        return mode_text(rest[0], language)

    async def _notice(
        self,
        client: AsyncClient,
        room: MatrixRoom,
        to: Any,
        text: str,
        html: str | None = None,
        thread_of: Any = None,
    ) -> None:
        content: Content = {"msgtype": "m.notice", "body": text}
        if html is not None:
            content.update(format="org.matrix.custom.html", formatted_body=html)
        await self._room_send(client, room, {**content, **_relation(to, thread_of)})

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

    def user(self, user_id: str) -> int:
        if user_id in self.creators:
            return CREATOR
        return self.users.get(user_id, self.users_default)


async def _power_levels(client: AsyncClient, room_id: str) -> PowerLevels:
    """Asked from the server (cached in `MatrixAdapter.power_levels` until the next change)."""
    response = await client.room_get_state(room_id)
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
    return PowerLevels(
        {str(u): int(level) for u, level in users.items() if isinstance(level, int)},
        int(content.get("users_default", 0)),
        int(content.get("redact", MODERATOR)),
        creators,
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


def _mode_usage(language: str) -> str:
    return translations(language).gettext(
        "Moderators can choose: !scrubbot mode off, !scrubbot mode warn or !scrubbot mode replace."
    )


def _how_to_use(language: str) -> str:
    return translations(language).gettext(
        "Send a photo into this room and I reply with a cleaned copy. To change my language "
        "in this room, send: !scrubbot language de (or en)."
    )


def _invite_time(state: list[Any], user_id: str) -> int:
    """The server time of the bot's invitation (Synapse sends the invite event itself in the
    invite state), or now, which errs on the side of ignoring history."""
    for event in state:
        if (
            isinstance(event, InviteMemberEvent)
            and event.state_key == user_id
            and event.membership == "invite"
        ):
            stamp = event.source.get("origin_server_ts")
            if isinstance(stamp, int):
                return stamp
    return int(time.time() * 1000)
