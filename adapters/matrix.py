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

What was sent to the bot is answered, what happened before it was there is not (events after its
invitation count), nothing twice and nothing lost across restarts: the sync position is saved
only after its events are answered. An event that does not decrypt waits a bounded time for its
room key. See `adapters.matrix_sync` for these mechanics. Photos are downloaded with the size
enforced while they stream and answered as they were sent (`m.image` with `m.image`, `m.video`
with `m.video`, `m.file` with `m.file`); files go out before the summary, and an original is
redacted only once its clean copy is in the room. Power levels are cached until they change.

State lives in SCRUBBOT_DATA_DIR/matrix (folder 0700, files 0600): `session.json` (user, device,
access token; so a restart keeps the same device), `pickle.key` (a random key encrypting the
crypto store, never nio's default), nio's crypto store, and `cross_signing.json` (see
`adapters.matrix_crosssign`).

Trust: the bot shares room keys with every device in the room (`ignore_unverified_devices`). It
only ever sends a cleaned copy of a photo back into the room the photo came from, whose members
can already see the photo, so this reveals nothing they could not read before.
"""

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    InviteMemberEvent,
    MatrixRoom,
    MegolmEvent,
    RoomEncryptedFile,
    RoomEncryptedImage,
    RoomEncryptedVideo,
    RoomMessageFile,
    RoomMessageImage,
    RoomMessageText,
    RoomMessageVideo,
    RoomRedactResponse,
    RoomSendResponse,
    SyncResponse,
)
from nio.crypto.attachments import encrypt_attachment

from adapters.markup import as_html, plain
from adapters.matrix_media import (
    Media,
    TooLargeDownload,
    decrypted,
    file_content,
    relation,
    upload,
)
from adapters.matrix_network import MatrixSettings
from adapters.matrix_power import MODERATOR, PowerLevels, power_levels
from adapters.matrix_session import MatrixStartError, cross_sign, log_in, secret_file
from adapters.matrix_sync import (
    REPLACES,
    SYNC_FILTER,
    Checkpoints,
    MissingKeys,
    PowerLevelCache,
    after_invitation,
    arrived_keys,
    changes_power,
    files_only,
    invite_time,
    read_gap,
    replied_to,
)
from bot import chat as core
from bot import texts
from bot.errors import DamagedImage
from bot.i18n import translations
from bot.network import Running
from bot.service import ScrubbedFile
from bot.summary import Summary
from bot.texts import Syntax, sorry

log = logging.getLogger(__name__)

COMMAND = "!scrubbot"
BANG = Syntax(f"{COMMAND} ")
SYNC_TIMEOUT_MS = 30_000
RETRY_SECONDS = (1, 2, 5, 10, 30)  # after failed syncs, then every 30 s
SEEN_EVENTS = 10_000  # event ids remembered against answering one twice
# nio's crypto warnings name rooms, devices and sessions ("no session found ... for room !..."):
# only its errors are logged.
NIO_CRYPTO_LOG = "nio.crypto.log"
PHOTOS = (RoomMessageImage, RoomMessageFile, RoomEncryptedImage, RoomEncryptedFile)
VIDEOS = (RoomMessageVideo, RoomEncryptedVideo)  # cleaned as photos are, answered as m.video
IMAGES = (RoomMessageImage, RoomEncryptedImage, RoomMessageVideo, RoomEncryptedVideo)

Content = dict[str, Any]


class MatrixAdapter:
    """Owns the nio client: login and store, the sync loop, and the photos in flight."""

    def __init__(self, settings: MatrixSettings, running: Running) -> None:
        self.settings = settings
        self.chat = running.chat("matrix", MatrixDialect())
        self.folder = running.data_dir / "matrix"
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: set[asyncio.Task[Any]] = set()  # events waiting for a room key
        self._sync: asyncio.Task[None] | None = None
        self._invited_at: dict[str, int] = {}  # room id -> server time of the bot's invite
        self._told_sessions: set[str] = set()  # undecryptable sessions a family room heard of
        self.keys = MissingKeys()
        self.power_levels: PowerLevelCache[PowerLevels] = PowerLevelCache(self._fetch_levels)
        self.checkpoints: Checkpoints | None = None
        self._since: str | None = None  # the token the sync being handled started from
        self.http: aiohttp.ClientSession | None = None
        self.client: AsyncClient | None = None

    async def start(self) -> None:
        logging.getLogger(NIO_CRYPTO_LOG).setLevel(logging.ERROR)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        config = AsyncClientConfig(
            store_sync_tokens=False,  # saved by Checkpoints, after the events are answered
            encryption_enabled=True,
            pickle_key=secret_file(self.folder, "pickle.key"),
        )
        client = AsyncClient(
            self.settings.homeserver,
            self.settings.user_id,
            store_path=str(self.folder),
            config=config,
        )
        self.client = client
        await log_in(client, self.settings, self.folder)
        for path in self.folder.iterdir():
            path.chmod(0o600)
        if client.should_upload_keys:
            await client.keys_upload()
        await cross_sign(client, self.settings, self.folder)
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

    # -- sync -------------------------------------------------------------------------------

    async def _first_sync(self, client: AsyncClient) -> None:
        """Catch up from the saved sync position: what came while the bot was away is answered.
        Without one (the very first start) the first sync is backlog: read, not answered."""
        store = client.store
        token = store.load_sync_token() if store else None
        client.loaded_sync_token = token or ""
        self.checkpoints = Checkpoints(lambda t: store.save_sync_token(t) if store else None)
        response = await client.sync(timeout=0, full_state=True, sync_filter=SYNC_FILTER)
        self._since = token
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
                since = client.next_batch
                response = await client.sync(timeout=SYNC_TIMEOUT_MS, sync_filter=SYNC_FILTER)
                if not isinstance(response, SyncResponse):
                    raise MatrixSyncError(str(response.status_code))
                self._since = since
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
        try:
            for room_id, invite in response.rooms.invite.items():
                await self._on_invite(client, room_id, invite.invite_state)
            for room_id, info in response.rooms.join.items():
                room = client.rooms.get(room_id)
                if room is None:
                    continue
                if changes_power([*info.state, *info.timeline.events]):
                    self.power_levels.forget(room_id)
                events = info.timeline.events
                if info.timeline.limited and self._since and not backlog:
                    events = (
                        await read_gap(client, self._since, room_id, info.timeline.prev_batch)
                        + events
                    )
                for event, files_sent in self._new_events(client, room_id, events, backlog):
                    task = self._dispatch(client, room, event, files_sent)
                    if task is not None:
                        tasks.append(task)
                if room.joined_count <= 1:
                    await client.room_leave(room_id)
                    await client.room_forget(room_id)
                    log.info("matrix: left a room where nobody else was")
        finally:  # a later batch's token is saved only once these tasks are done, too
            if self.checkpoints is not None:
                self.checkpoints.add(response.next_batch, tasks)

    def _new_events(
        self, client: AsyncClient, room_id: str, events: list[Any], backlog: bool
    ) -> list[tuple[Any, bool]]:
        """The events to answer: none from the backlog, none from before the bot was invited,
        none of its own, none it has answered (its replies are in the timeline) or seen. With
        each, whether its files went out already (the bot stopped before the summary)."""
        answered = replied_to(events, client.user_id)
        files_sent = files_only(events, client.user_id)
        fresh = []
        for event in after_invitation(events, client.user_id, self._invited_at.get(room_id)):
            event_id = getattr(event, "event_id", None)
            if event_id is None or event_id in self._seen:
                continue
            self._seen[event_id] = None
            if len(self._seen) > SEEN_EVENTS:
                self._seen.popitem(last=False)
            if backlog or event.sender == client.user_id:
                continue
            if event_id not in answered or event_id in files_sent:
                fresh.append((event, event_id in files_sent))
        return fresh

    def _dispatch(
        self, client: AsyncClient, room: MatrixRoom, event: Any, files_sent: bool = False
    ) -> Any:
        """Start answering `event`; the task, or None when there is nothing to answer."""
        if isinstance(event, PHOTOS + VIDEOS):
            return self._spawn(self._on_photo(client, room, event, files_sent))
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
            if isinstance(decrypted, PHOTOS + VIDEOS):
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
        language = await self.chat.language(self._where(client, room))
        text = translations(language).gettext(
            "I could not read this message: it reached me encrypted, without the key to open "
            "it. If it was a photo or video, please send it again. If this keeps happening, "
            "check in your app's settings that your session is verified."
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
        self._invited_at[room_id] = invite_time(state, client.user_id)
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
            levels = await self.power_levels.get(room.room_id)
            mine = levels.user(client.user_id)
            return core.Rights(mine >= levels.redact, levels.redact, mine >= levels.post)

        return core.Where(room.room_id, room.joined_count > 2, None, rights)

    def _who(self, client: AsyncClient, room: MatrixRoom, event: Any) -> core.Who:
        async def may_configure() -> bool:
            return (await self.power_levels.get(room.room_id)).user(event.sender) >= MODERATOR

        return core.Who(event.sender, room.user_name(event.sender), may_configure)

    async def _fetch_levels(self, room_id: str) -> "PowerLevels":
        room = self.client.rooms.get(room_id) if self.client else None
        if self.client is None or room is None:
            return PowerLevels({})
        return await power_levels(self.client, room)

    async def _on_photo(
        self, client: AsyncClient, room: MatrixRoom, event: Any, files_sent: bool = False
    ) -> None:
        """An image or file, in a plain or an encrypted room. A file that proves larger than
        the limit while it downloads gets the same answer as one announced too large. With
        `files_sent`, the clean files are in the room already: only the summary is sent."""
        info = event.source.get("content", {}).get("info") or {}
        size = info.get("size") if isinstance(info, dict) else None
        too_large = False

        async def fetch() -> bytes | None:
            nonlocal too_large
            try:
                return await self._download(client, event)
            except TooLargeDownload:
                log.info("matrix: stopped a download at the size limit")
                too_large = True
                return None

        photo = core.Photo(size if isinstance(size, int) else None, fetch)
        where, who = self._where(client, room), self._who(client, room, event)
        actions = await self.chat.photos(core.Photos(where, who, (photo,)))
        if too_large:
            language = await self.chat.language(where)
            damaged = texts.refusal(DamagedImage(), language)
            limit = self.chat.service.limits.max_bytes
            actions = [
                core.Say(MatrixDialect().too_large(language, limit))
                if isinstance(action, core.Say) and action.text == damaged
                else action
                for action in actions
            ]
        await self._do(client, room, event, where, actions, files_sent)

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
        files_sent: bool = False,
    ) -> None:
        """Carry out the core's actions, files first: a summary never promises a file that
        did not come, and an original is redacted only once its clean copy is there. With
        `files_sent` the files are not sent again."""
        as_image = isinstance(event, IMAGES)
        for action in actions:
            if (
                isinstance(action, core.SendFiles)
                and not files_sent
                and not await self._send_files(
                    client, room, event, where, action.files, as_image=as_image
                )
            ):
                return
            if isinstance(action, core.ScrubbedCopy):
                text, html = plain(action.summary, action.note), _html(action.summary, action.note)
                to, thread_of = (event, None) if action.reply else (None, event)
                replaces = None if action.reply else event.event_id
                if not (
                    (
                        files_sent
                        or await self._send_files(
                            client, room, to, where, action.files, thread_of, as_image, replaces
                        )
                    )
                    and await self._notice(client, room, to, text, html, thread_of)
                ):
                    return
        for action in actions:
            if isinstance(action, core.Say) and action.summary:
                await self._notice(client, room, event, action.summary.text, _html(action.summary))
            elif isinstance(action, core.Say | core.Denied):
                await self._notice(client, room, event, action.text)
            elif isinstance(action, core.ModeMenu):
                await self._notice(client, room, event, f"{action.text}\n{action.usage}")
        if any(isinstance(action, core.Remove) for action in actions):
            redacted = await client.room_redact(
                room.room_id, event.event_id, reason="scrubbot: replaced by a clean copy"
            )
            if not isinstance(redacted, RoomRedactResponse):
                log.warning("matrix: could not redact an original (its clean copy is posted)")

    async def _download(self, client: AsyncClient, event: Any) -> bytes | None:
        """The file's bytes (decrypted), or None when it cannot be fetched or decrypted;
        TooLargeDownload as soon as more bytes arrive than the bot may clean."""
        media = Media(self.settings.homeserver, client.access_token)
        try:
            if self.http is None:
                raise aiohttp.ClientConnectionError("not started")
            limit = self.chat.service.limits.max_bytes
            data = await media.download(self.http, event.url, limit)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            log.warning("matrix: download failed: %s", type(error).__name__)
            return None
        return await decrypted(event, data)

    async def _send_files(
        self,
        client: AsyncClient,
        room: MatrixRoom,
        to: Any,
        where: core.Where,
        files: tuple[ScrubbedFile, ...],
        thread_of: Any = None,
        as_image: bool = False,
        replaces: str | None = None,
    ) -> bool:
        """The cleaned files as replies to `to`; with `to` None (in place of original
        `replaces`) in the thread of `thread_of`. A failed upload ends it with an apology (and
        False)."""
        for cleaned in files:
            if not await self._send_file(client, room, to, cleaned, thread_of, as_image, replaces):
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
            url = await upload(client, ciphertext, "application/octet-stream", None)
            content["file"] = {**keys, "url": url}
        else:
            url = await upload(client, cleaned.data, cleaned.mime, cleaned.file_name)
            content["url"] = url
        return url is not None and await self._room_send(
            client, room, {**content, **relation(to, thread_of)}
        )

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
        return await self._room_send(client, room, {**content, **relation(to, thread_of)})

    async def _room_send(self, client: AsyncClient, room: MatrixRoom, content: Content) -> bool:
        response = await client.room_send(
            room.room_id, "m.room.message", content, ignore_unverified_devices=True
        )
        if not isinstance(response, RoomSendResponse):
            log.warning("matrix: sending failed: %s", getattr(response, "status_code", None))
            return False
        return True


class MatrixSyncError(Exception):
    """A sync answered with an error status (retried)."""


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
