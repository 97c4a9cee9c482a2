"""A fake Telegram Bot API server on 127.0.0.1 for tests that drive the real PTB over real HTTP.

What it fakes (enough for a bot that receives photos and answers with cleaned files):
- The URL layout `/bot<token>/<method>` and `/file/bot<token>/<file_path>`, GET or POST, parameters
  as query string, urlencoded form, JSON body or multipart/form-data (what PTB sends with files).
- getMe, getUpdates (long polling with `offset`, `limit`, `timeout`, `allowed_updates`),
  setWebhook/deleteWebhook/getWebhookInfo (recorded only; getUpdates answers 409 while a webhook
  is set), set/get/deleteMyCommands, getFile (400 above the 20 MB download limit), sendMessage,
  sendDocument, sendPhoto, sendMediaGroup, sendChatAction, editMessageText, editMessageCaption,
  deleteMessage, getChat, getChatMember, answerCallbackQuery, leaveChat, close and logOut.
- Edits as Telegram answers them: "message is not modified" when the new caption (or text),
  parse mode and reply markup are exactly what the message has, "message can't be edited" for
  another's message, "message to edit not found" for a missing one.
- Errors the way the Bot API words them: 401 wrong token, 404 unknown method, 400 for a chat,
  message, reply target or file it does not know, HTML it cannot parse, texts over 4096 and
  captions over 1024 characters (after parsing), albums of more than 10 items or of documents
  mixed with other media, callback_data over 64 bytes, a reply to a missing message without
  `allow_sending_without_reply`, a delete of another's message without the right, an unknown
  topic (`message_thread_id`), invalid command names and language codes; 403 for a blocked chat
  and any error injected with `fail_next` (429 with `retry_after`).
- Faults of the network, on API calls and file downloads: `fail_next` (any error answer),
  `drop_next` (a reset or a hang, before or after carrying the call out) and `faults` (a seeded
  share of all calls fails with 502, a reset, a hang or a 429 with `retry_after`).
- Commands per scope and language (`commands` holds the default scope, `scoped_commands` all).
- What users do: `add_document`, `add_photo`, `add_text`, `add_command`, `add_update`,
  `add_edit`, `add_channel_post`, `add_business_message`.
- A local Bot API server (`FakeTelegram(local_dir=...)`, the bot with TELEGRAM_LOCAL_MODE=1):
  getFile up to 2000 MB, answering with an absolute path for a file on "the server's disk"
  (`add_local_document`, a file the test made); uploads read by streaming, each file part
  hashed and written into `local_dir` as it arrives (never held in memory), so big files can
  be judged there (`Call.uploads`); a file over `upload_limit` (2000 MB) is refused with 413.

What it does not fake: webhook delivery, inline mode, payments, business and paid features,
MarkdownV2 validation, message entities computed from HTML, per-chat message ids (one counter
for all chats), "Conflict: terminated by other getUpdates request", flood limits nobody injected,
downloading files by URL, thumbnails and media other than documents and photos.
"""

import asyncio
import contextlib
import hashlib
import json
import mimetypes
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any, Self, TypedDict, Unpack

from aiohttp import BodyPartReader, web

JSON = dict[str, Any]
Files = dict[str, tuple[str | None, bytes]]


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


MESSAGE_SENDERS = frozenset(_words("sendMessage sendDocument sendPhoto sendMediaGroup"))
# What a message from an anonymous group admin carries in "from".
ANONYMOUS_ADMIN = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
# Who automatic forwards from a linked channel come from.
TELEGRAM_SERVICE = {"id": 777000, "is_bot": False, "first_name": "Telegram"}
# Boolean fields getChatMember always includes for these statuses.
_MEMBER_FLAGS = {
    "administrator": (
        "can_be_edited",
        "is_anonymous",
        "can_manage_chat",
        "can_delete_messages",
        "can_manage_video_chats",
        "can_restrict_members",
        "can_promote_members",
        "can_change_info",
        "can_invite_users",
        "can_post_stories",
        "can_edit_stories",
        "can_delete_stories",
    ),
    "creator": ("is_anonymous",),
    "restricted": (
        "is_member",
        "can_change_info",
        "can_invite_users",
        "can_pin_messages",
        "can_send_messages",
        "can_send_polls",
        "can_send_other_messages",
        "can_add_web_page_previews",
        "can_manage_topics",
        "can_send_audios",
        "can_send_documents",
        "can_send_photos",
        "can_send_videos",
        "can_send_video_notes",
        "can_send_voice_notes",
        "can_edit_tag",
        "can_react_to_messages",
    ),
}
METHODS = _words(
    "getMe getUpdates deleteWebhook setWebhook getWebhookInfo setMyCommands getMyCommands "
    "deleteMyCommands getFile sendMessage sendDocument sendPhoto sendMediaGroup sendChatAction "
    "deleteMessage getChatMember getChat answerCallbackQuery editMessageText editMessageCaption "
    "close logOut "
    "leaveChat"
)
# Parameters that are plain strings on the wire; every other value is JSON (ints, bools, objects).
TEXT_PARAMS = frozenset(
    _words(
        "text caption parse_mode action url file_id callback_query_id language_code "
        "secret_token title description short_description name emoji inline_message_id "
        "document photo"
    )
)
# What getUpdates delivers when allowed_updates was never set (or set to []).
DEFAULT_UPDATES = frozenset(
    _words(
        "message edited_message channel_post edited_channel_post business_connection "
        "business_message edited_business_message deleted_business_messages inline_query "
        "chosen_inline_result callback_query shipping_query pre_checkout_query "
        "purchased_paid_media poll poll_answer my_chat_member chat_join_request chat_boost "
        "removed_chat_boost"
    )
)
HTML_TAGS = frozenset(
    _words("b strong i em u ins s strike del span tg-spoiler a code pre blockquote tg-emoji")
)
GIFT_TYPES = _words(
    "unlimited_gifts limited_gifts unique_gifts premium_subscription gifts_from_channels"
)
MAX_DOWNLOAD = 20 * 1024 * 1024  # getFile refuses bigger files
MAX_UPLOAD = 50 * 1024 * 1024
LOCAL_MAX_DOWNLOAD = LOCAL_MAX_UPLOAD = 2000 * 1024 * 1024  # a local Bot API server's limits
UPLOAD_PIECE = 1 << 20  # bytes of an upload read at a time (local mode)
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_ALBUM = 10
MAX_CALLBACK_DATA = 64  # bytes
COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
LANGUAGE_CODE = re.compile(r"[a-z]{2}")  # two-letter ISO 639-1, or empty for all
FAULT_KINDS = ("502", "reset", "hang", "429")
DEFAULT_SCOPE = "default"


class ApiError(Exception):
    """An error answer of the Bot API."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(f"{error_code} {description}")
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def response(self) -> web.Response:
        body: JSON = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return web.json_response(body, status=self.error_code)


DROPPED = 0  # the `error_code` of a call whose connection broke before the fake carried it out


@dataclass(frozen=True)
class Upload:
    """A file part of a request to a local server, as it arrived: streamed into `path`."""

    file_name: str | None
    size: int
    sha256: str
    path: Path
    content_length: int | None  # the request's Content-Length header (None: chunked)


@dataclass(frozen=True)
class Call:
    """One request to the Bot API, as the bot made it; `error_code` is set when it was refused
    (DROPPED when its connection broke first); `fault` names a fault injected into it. In local
    mode the file parts are in `uploads` (and `files` holds empty bytes for them)."""

    method: str
    params: dict[str, object]
    files: Files
    error_code: int | None = None
    fault: str | None = None
    uploads: dict[str, Upload] = field(default_factory=dict)


@dataclass(frozen=True)
class Drop:
    """A connection the fake breaks instead of answering: "reset" at once, or "hang" for
    `FakeTelegram.hang_seconds` first; with `after`, the call is carried out first (so a retry
    repeats what already happened)."""

    kind: str
    after: bool = False
    chat_id: int | None = None  # only a call to this chat


@dataclass
class Faults:
    """A seeded share of calls that fail; `injected` lists (method, kind) as they happened."""

    rate: float
    rng: random.Random
    kinds: tuple[str, ...]
    methods: frozenset[str] | None  # None: every method but getUpdates, and downloads
    retry_after: int
    injected: list[tuple[str, str]] = field(default_factory=list)

    def draw(self, method: str) -> ApiError | Drop | None:
        wanted = method != "getUpdates" if self.methods is None else method in self.methods
        if not wanted or self.rng.random() >= self.rate:
            return None
        kind = self.rng.choice(self.kinds)
        self.injected.append((method, kind))
        if kind == "429":
            after = self.retry_after
            return ApiError(429, f"Too Many Requests: retry after {after}", after)
        if kind == "502":
            return ApiError(502, "Bad Gateway")
        return Drop(kind, after=self.rng.random() < 0.5)


@dataclass(frozen=True)
class StoredFile:
    """A file the fake holds: what a user sent or what the bot uploaded."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    file_size: int
    local_path: Path | None = None  # on the local server's disk (data is then empty)


class Sender(TypedDict, total=False):
    """Who sends an injected message and where; defaults: user 1001 in a private chat, "en"."""

    user_id: int
    chat_id: int | None  # None: the user's private chat (required for groups)
    chat_type: str  # "private", "group" or "supergroup"
    language_code: str
    forward_from_name: str | None  # forwarded from a user who hides their account
    message_thread_id: int | None
    first_name: str
    anonymous_admin: bool  # posted by an anonymous group admin: sender_chat is the group
    automatic_forward: bool  # a linked channel's post, forwarded into its discussion group


@dataclass
class _Counters:
    update_id: int = 0
    message_id: int = 0
    file: int = 0

    def next_update(self) -> int:
        self.update_id += 1
        return self.update_id

    def next_message(self) -> int:
        self.message_id += 1
        return self.message_id

    def next_file(self) -> int:
        self.file += 1
        return self.file


@dataclass
class _State:
    """Everything the fake remembers between requests."""

    updates: list[JSON] = field(default_factory=list)
    allowed_updates: frozenset[str] = DEFAULT_UPDATES
    chats: dict[int, JSON] = field(default_factory=dict)
    messages: dict[tuple[int, int], JSON] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    members: dict[tuple[int, int], JSON] = field(default_factory=dict)
    failures: dict[str, list[ApiError]] = field(default_factory=dict)
    drops: dict[str, list[Drop]] = field(default_factory=dict)
    faults: Faults | None = None
    floods: dict[int, float] = field(default_factory=dict)  # chat id -> monotonic end
    topics: set[tuple[int, int]] = field(default_factory=set)
    scoped_commands: dict[tuple[str, str], list[JSON]] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)
    counters: _Counters = field(default_factory=_Counters)
    # (chat id, message id) -> what an edit must repeat to be "not modified" (_content_key)
    content: dict[tuple[int, int], tuple[str, str, str, str]] = field(default_factory=dict)


class FakeTelegram:
    """A Bot API server for one bot token; `async with FakeTelegram() as fake: ...`."""

    def __init__(
        self,
        token: str = "123456:TEST-token",  # noqa: S107 (a fake token)
        local_dir: Path | None = None,
    ) -> None:
        self.token = token
        self.local_dir = local_dir  # set: a local Bot API server keeping its files there
        self.upload_limit = LOCAL_MAX_UPLOAD
        self.while_uploading: Callable[[int], None] | None = None  # bytes of a file part so far
        self._uploads: dict[str, Upload] = {}  # of the request being answered
        self.bot_id = int(token.split(":", 1)[0])
        self.calls: list[Call] = []
        self.downloads: list[str] = []  # file paths the bot fetched, in order
        self.commands: dict[str, list[JSON]] = {}  # language_code ("" = default) -> commands
        self.webhook_url = ""
        self.hang_seconds = 12.0  # how long a "hang" fault holds a request before dropping it
        self._state = _State()
        self._update_added = asyncio.Event()
        self._call_added = asyncio.Event()
        self._closing = False
        self._busy = 0  # API requests (but getUpdates) being read or answered
        self._idle = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._methods: dict[str, Callable[[dict[str, object], Files], object]] = {
            name: getattr(self, "_" + name) for name in METHODS
        }

    # --- server lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=MAX_UPLOAD + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stops the server; pending long polls answer at once. Safe to call twice."""
        self._closing = True
        self._update_added.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    @property
    def api_url(self) -> str:
        """PTB's `base_url`: PTB appends the token and "/<method>"."""
        return f"http://127.0.0.1:{self._port}/bot"

    @property
    def file_url(self) -> str:
        """PTB's `base_file_url`."""
        return f"http://127.0.0.1:{self._port}/file/bot"

    @property
    def bot_user(self) -> JSON:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "ScrubBot",
            "username": "scrubbot_test_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    # --- what users do ----------------------------------------------------------------------

    def add_document(
        self,
        data: bytes,
        *,
        file_name: str = "IMG_1234.jpg",
        mime_type: str = "image/jpeg",
        caption: str | None = None,
        media_group_id: str | None = None,
        file_size: int | None = None,
        size_known: bool = True,
        **sender: Unpack[Sender],
    ) -> int:
        """A user sends `data` as a file; `file_size` overrides the advertised size, and without
        `size_known` the document has no file_size at all (the Bot API omits it when unknown).

        Returns the message id."""
        stored = self._store(data, "documents", PurePosixPath(file_name).suffix, file_size)
        document = _document(stored, file_name, mime_type)
        if not size_known:
            del document["file_size"]
        content = {"document": document, "caption": caption, "media_group_id": media_group_id}
        return self._add_message(content, sender)

    def add_local_document(
        self,
        path: Path,
        *,
        file_name: str = "VID_1234.mp4",
        mime_type: str = "video/mp4",
        media_group_id: str | None = None,
        **sender: Unpack[Sender],
    ) -> int:
        """A user sends a file that the local server holds at `path` (on its disk, which the
        bot can read). Returns the message id."""
        if self.local_dir is None:
            raise ValueError("add_local_document needs a FakeTelegram with a local_dir")
        stored = self._store(b"", "documents", path.suffix, path.stat().st_size, path)
        document = _document(stored, file_name, mime_type)
        content = {"document": document, "media_group_id": media_group_id}
        return self._add_message(content, sender)

    def add_photo(
        self,
        data: bytes,
        *,
        caption: str | None = None,
        media_group_id: str | None = None,
        **sender: Unpack[Sender],
    ) -> int:
        """A user sends `data` as a compressed photo: a small thumbnail first, `data` last."""
        thumbnail = self._store(b"fake thumbnail, not a picture", "photos", ".jpg")
        full = self._store(data, "photos", ".jpg")
        photo = [_photo_size(thumbnail, 90, 68), _photo_size(full, 1280, 960)]
        content = {"photo": photo, "caption": caption, "media_group_id": media_group_id}
        return self._add_message(content, sender)

    def add_text(self, text: str, **sender: Unpack[Sender]) -> int:
        """A user sends a text message; returns its message id."""
        return self._add_message({"text": text}, sender)

    def add_command(self, command: str, **sender: Unpack[Sender]) -> int:
        """A user sends a command such as "/start" or "/help@scrubbot_test_bot"."""
        entity = {"type": "bot_command", "offset": 0, "length": len(command.split()[0])}
        return self._add_message({"text": command, "entities": [entity]}, sender)

    def add_edit(
        self, chat_id: int, message_id: int, *, caption: str | None = None, text: str | None = None
    ) -> int:
        """The author edits an earlier message (an edited_message update); returns its id."""
        message = self._state.messages[(chat_id, message_id)]
        changes = {"caption": caption, "text": text, "edit_date": int(time.time())}
        edited = message | {key: value for key, value in changes.items() if value is not None}
        self._state.messages[(chat_id, message_id)] = edited
        return self.add_update({"edited_message": edited})

    def add_channel_post(
        self, data: bytes, channel_id: int, *, file_name: str = "post.jpg"
    ) -> int:
        """A file posted in a channel the bot belongs to (a channel_post update, no "from")."""
        stored = self._store(data, "documents", PurePosixPath(file_name).suffix)
        chat = self._state.chats.setdefault(channel_id, _chat(channel_id, "channel", "Channel"))
        post: JSON = {
            "message_id": self._state.counters.next_message(),
            "date": int(time.time()),
            "chat": chat,
            "sender_chat": chat,
            "document": _document(stored, file_name, "image/jpeg"),
        }
        self._state.messages[(channel_id, post["message_id"])] = post
        return self.add_update({"channel_post": post})

    def add_business_message(
        self, data: bytes, *, user_id: int = 1001, connection_id: str = "business-1"
    ) -> int:
        """A customer sends a file to the business account the bot is connected to (a
        business_message update): the bot must not answer on the owner's behalf."""
        stored = self._store(data, "documents", ".jpg")
        chat = _chat(user_id, "private", "")
        message: JSON = {
            "message_id": self._state.counters.next_message(),
            "date": int(time.time()),
            "chat": chat,
            "from": _user(user_id, "en"),
            "business_connection_id": connection_id,
            "document": _document(stored, "IMG_1.jpg", "image/jpeg"),
        }
        return self.add_update({"business_message": message})

    def add_update(self, update: JSON) -> int:
        """Queues any update (an `update_id` is added when missing); returns the update id."""
        update = {"update_id": self._state.counters.next_update(), **update}
        for payload in update.values():
            if isinstance(payload, dict) and isinstance(payload.get("chat"), dict):
                self._state.chats.setdefault(payload["chat"]["id"], payload["chat"])
        self._state.updates.append(update)
        self._update_added.set()
        return int(update["update_id"])

    def add_bot_status(
        self,
        chat_id: int,
        status: str,
        *,
        by_user: int = 1001,
        language_code: str = "en",
        old_status: str = "left",
        **rights: object,
    ) -> int:
        """The bot is added to, promoted in or removed from a group (a my_chat_member update);
        getChatMember for the bot answers the new status from then on."""
        self.set_chat_member(chat_id, self.bot_id, status, **rights)
        chat = self._state.chats.setdefault(chat_id, _chat(chat_id, "supergroup", "Test group"))
        change = {
            "chat": chat,
            "from": _user(by_user, language_code),
            "date": int(time.time()),
            "old_chat_member": _member(old_status, self.bot_user),
            "new_chat_member": self._state.members[(chat_id, self.bot_id)],
        }
        return self.add_update({"my_chat_member": change})

    def add_button_press(
        self, message_id: int, chat_id: int, data: str, *, user_id: int = 1001
    ) -> int:
        """A user presses an inline button under one of the bot's messages."""
        message = self._state.messages.get((chat_id, message_id)) or {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self._state.chats[chat_id],
        }
        query = {
            "id": str(self._state.counters.next_update()),
            "from": _user(user_id, "en"),
            "chat_instance": str(chat_id),
            "data": data,
            "message": message,
        }
        return self.add_update({"callback_query": query})

    def add_chat(
        self, chat_id: int, chat_type: str = "private", title: str = "Test group"
    ) -> None:
        """Makes a chat known without a message in it (sends to unknown chats answer 400)."""
        self._state.chats[chat_id] = _chat(chat_id, chat_type, title)

    # --- what tests arrange -----------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        error_code: int = 429,
        description: str = "Too Many Requests: retry after 1",
        retry_after: int | None = 1,
    ) -> None:
        """The next call of `method` fails; `retry_after` is sent only with error code 429."""
        retry = retry_after if error_code == 429 else None
        error = ApiError(error_code, description, retry)
        self._state.failures.setdefault(_canonical(method), []).append(error)

    def drop_next(
        self, method: str, kind: str = "reset", *, after: bool = False, chat_id: int | None = None
    ) -> None:
        """The next call of `method` ("download" for a file download; with `chat_id`, the next
        one to that chat) gets no answer: its connection is reset ("reset") or held for
        `hang_seconds` first ("hang"); with `after` the call is carried out before that, as when
        an answer is lost on the way back."""
        if kind not in ("reset", "hang"):
            raise ValueError(f"unknown drop {kind!r}")
        drop = Drop(kind, after, chat_id)
        self._state.drops.setdefault(_canonical(method), []).append(drop)

    def faults(
        self,
        rate: float,
        *,
        seed: int = 0,
        kinds: tuple[str, ...] = FAULT_KINDS,
        methods: tuple[str, ...] | None = None,
        retry_after: int = 1,
    ) -> Faults:
        """From now on a share `rate` of calls (every method but getUpdates, and every
        download, unless `methods` names them; "download" for downloads) fails with one of
        `kinds`: "502", "reset", "hang" (each dropped before or after carrying the call out, at
        random) or "429" (with `retry_after`). `faults(0)` ends it. Seeded: the same draws in
        the same order of calls."""
        chosen = None if methods is None else frozenset(_canonical(m) for m in methods)
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")
        faults = Faults(rate, random.Random(seed), kinds, chosen, retry_after)
        self._state.faults = faults if rate > 0 else None
        return faults

    def flood(self, chat_id: int, seconds: float) -> None:
        """For `seconds`, every send to `chat_id` answers 429 with the time that is left (the
        real server limits each chat on its own)."""
        self._state.floods[chat_id] = time.monotonic() + seconds

    def add_topic(self, chat_id: int, thread_id: int) -> None:
        """A forum topic exists in the chat (sends to an unknown `message_thread_id` fail)."""
        self._state.topics.add((chat_id, thread_id))

    def block_chat(self, chat_id: int) -> None:
        """The user blocked the bot (or removed it from the group): every send answers 403."""
        self._state.blocked.add(chat_id)

    def set_chat_member(self, chat_id: int, user_id: int, status: str, **fields: object) -> None:
        """What getChatMember answers for this user; the default is a plain "member".
        Fields the real API always sends for admins and owners default to False."""
        self._state.members[(chat_id, user_id)] = _member(
            status, self._user_or_bot(user_id), **fields
        )

    # --- what tests check -------------------------------------------------------------------

    def file_bytes(self, file_id: str) -> bytes:
        """The bytes of a file a user sent or the bot uploaded (read from the local server's
        disk for the files it keeps there)."""
        stored = self._state.files[file_id]
        return stored.local_path.read_bytes() if stored.local_path else stored.data

    def queued_updates(self) -> list[JSON]:
        """The updates not yet confirmed, as Telegram would deliver them (say, by webhook)."""
        return list(self._state.updates)

    @property
    def pending_updates(self) -> int:
        """Updates the bot has not confirmed yet (Telegram would send them again)."""
        return len(self._state.updates)

    def last_message(self, chat_id: int) -> JSON:
        """The newest message in the chat that still exists (the bot's or a user's)."""
        numbers = [number for chat, number in self._state.messages if chat == chat_id]
        return self._state.messages[(chat_id, max(numbers))]

    def sent_to(self, chat_id: int) -> list[Call]:
        """Successful message sends (not chat actions, not edits) to `chat_id`, in order."""
        return [
            call
            for call in self.calls
            if call.method in MESSAGE_SENDERS
            and call.error_code is None
            and call.params.get("chat_id") == chat_id
        ]

    async def wait_for(
        self,
        predicate: Callable[[list[Call]], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 (a bounded wait is this helper's job)
    ) -> list[Call]:
        """Waits until `predicate(calls)` holds; TimeoutError lists the calls seen so far."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    self._call_added.clear()
                    if predicate(self.calls):
                        return self.calls
                    await self._call_added.wait()
        except TimeoutError:
            raise TimeoutError(f"condition not met after {timeout} s; {self.summary()}") from None

    async def settled(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 (bounded)
        """Waits until no API request (but a long poll) is being read or answered: after a
        client was killed, every call it had made is then recorded or gone for good."""
        async with asyncio.timeout(timeout):
            while self._busy:
                self._idle.clear()
                await self._idle.wait()

    def summary(self) -> str:
        """The recorded calls, one short line each, for assertion messages."""
        lines = [_call_line(call) for call in self.calls]
        return f"{len(lines)} calls:\n" + "\n".join(lines)

    # --- HTTP -------------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return ApiError(401, "Unauthorized").response()
        method = _canonical(request.match_info["method"])
        if method == "getUpdates":  # a long poll may stay open: not counted as busy
            return await self._answer_api(request, method)
        self._busy += 1
        try:
            return await self._answer_api(request, method)
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    async def _answer_api(self, request: web.Request, method: str) -> web.StreamResponse:
        uploads: dict[str, Upload] = {}
        if self.local_dir is not None and request.content_type == "multipart/form-data":
            try:
                params, files, uploads = await self._read_streamed(request, self.local_dir)
            except ApiError as error:
                self._record(Call(method, {}, {}, error.error_code))
                return error.response()
            except (Exception, asyncio.CancelledError) as error:  # the body broke off
                self._record(Call(method, {}, {}, DROPPED, f"aborted ({type(error).__name__})"))
                if isinstance(error, asyncio.CancelledError):
                    raise  # aiohttp cancels the handler of a client that has gone
                return web.Response(status=400)  # never reaches the client
        else:
            params, files = await _read_params(request)
        self._uploads = uploads
        try:
            return await self._answer_read(request, method, params, files, uploads)
        finally:
            self._uploads = {}

    async def _answer_read(
        self,
        request: web.Request,
        method: str,
        params: dict[str, object],
        files: Files,
        uploads: dict[str, Upload],
    ) -> web.StreamResponse:
        fault = self._fault(method, _int(params.get("chat_id"), 0))
        if isinstance(fault, Drop) and not fault.after:
            self._record(Call(method, params, files, DROPPED, fault.kind, uploads))
            return await self._break(request, fault)
        try:
            if isinstance(fault, ApiError):
                raise fault
            self._check_flood(method, params)
            result = self._dispatch(method, params, files)
        except ApiError as error:
            self._record(Call(method, params, files, error.error_code, uploads=uploads))
            return error.response()
        if isinstance(fault, Drop):
            self._record(Call(method, params, files, None, fault.kind + " after", uploads))
            return await self._break(request, fault)
        self._record(Call(method, params, files, uploads=uploads))
        if method == "getUpdates":
            result = await self._long_poll(params)
        return web.json_response({"ok": True, "result": result})

    async def _read_streamed(
        self, request: web.Request, folder: Path
    ) -> tuple[dict[str, object], Files, dict[str, Upload]]:
        """A multipart body read part by part, each file hashed and written into `folder` by
        pieces as it arrives; 413 past `upload_limit`. The loops end with the body."""
        params: dict[str, object] = dict(request.query)
        files: Files = {}
        uploads: dict[str, Upload] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is None:
                params[part.name] = _decode(part.name, await part.text())
                continue
            path = folder / f"upload_{self._state.counters.next_file()}"
            digest, size = hashlib.sha256(), 0
            with path.open("wb") as out:
                while piece := await part.read_chunk(UPLOAD_PIECE):
                    size += len(piece)
                    if size > self.upload_limit:
                        raise ApiError(413, "Request Entity Too Large")
                    digest.update(piece)
                    out.write(piece)
                    if self.while_uploading is not None:
                        self.while_uploading(size)
            length = request.content_length
            uploads[part.name] = Upload(part.filename, size, digest.hexdigest(), path, length)
            files[part.name] = (part.filename, b"")
        return params, files, uploads

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return ApiError(401, "Unauthorized").response()
        path = request.match_info["path"]
        stored = next((f for f in self._state.files.values() if f.file_path == path), None)
        if stored is None:
            return ApiError(404, "Not Found").response()
        fault = self._fault("download")
        if isinstance(fault, ApiError):
            return fault.response()
        if isinstance(fault, Drop):
            return await self._break(request, fault)
        self.downloads.append(path)
        return web.Response(body=stored.data, content_type="application/octet-stream")

    def _fault(self, method: str, chat_id: int = 0) -> ApiError | Drop | None:
        """What goes wrong with this call: an arranged failure or drop first, then chance."""
        failures = self._state.failures.get(method)
        if failures:
            return failures.pop(0)
        drops = self._state.drops.get(method, [])
        for drop in drops:
            if drop.chat_id in (None, chat_id):
                drops.remove(drop)
                return drop
        if self._state.faults is not None:
            return self._state.faults.draw(method)
        return None

    async def _break(self, request: web.Request, drop: Drop) -> web.StreamResponse:
        """No answer: the connection is closed (after `hang_seconds` for a hang)."""
        if drop.kind == "hang":
            await asyncio.sleep(self.hang_seconds)  # ends earlier when the client gives up
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)  # never reaches the client

    def _check_flood(self, method: str, params: dict[str, object]) -> None:
        if method not in MESSAGE_SENDERS:
            return
        chat_id = _int(params.get("chat_id"), 0)
        left = self._state.floods.get(chat_id, 0.0) - time.monotonic()
        if left > 0:
            seconds = max(1, round(left))
            raise ApiError(429, f"Too Many Requests: retry after {seconds}", seconds)

    def _dispatch(self, method: str, params: dict[str, object], files: Files) -> object:
        handler = self._methods.get(method)
        if handler is None:
            raise ApiError(404, "Not Found: method not found")
        return handler(params, files)

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._call_added.set()

    # --- updates ----------------------------------------------------------------------------

    def _getUpdates(self, params: dict[str, object], files: Files) -> None:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._state.allowed_updates = frozenset(allowed) or DEFAULT_UPDATES
        self._confirm(_int(params.get("offset"), 0))

    def _confirm(self, offset: int) -> None:
        updates = self._state.updates
        if offset > 0:
            self._state.updates = [u for u in updates if u["update_id"] >= offset]
        elif offset < 0:
            self._state.updates = updates[offset:]

    async def _long_poll(self, params: dict[str, object]) -> list[JSON]:
        timeout = _float(params.get("timeout"), 0.0)
        limit = min(max(_int(params.get("limit"), 100), 1), 100)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not self._closing:
                    self._update_added.clear()
                    if self._pending(limit):
                        break
                    await self._update_added.wait()
        return self._pending(limit)

    def _pending(self, limit: int) -> list[JSON]:
        allowed = self._state.allowed_updates
        self._state.updates = [u for u in self._state.updates if _kind(u) in allowed]
        return self._state.updates[:limit]

    def _deleteWebhook(self, params: dict[str, object], files: Files) -> bool:
        self.webhook_url = ""
        if params.get("drop_pending_updates"):
            self._state.updates.clear()
        return True

    def _setWebhook(self, params: dict[str, object], files: Files) -> bool:
        self.webhook_url = str(params.get("url", ""))
        return True

    def _getWebhookInfo(self, params: dict[str, object], files: Files) -> JSON:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._state.updates),
        }

    # --- bot settings -----------------------------------------------------------------------

    def _getMe(self, params: dict[str, object], files: Files) -> JSON:
        return self.bot_user

    @property
    def scoped_commands(self) -> dict[tuple[str, str], list[JSON]]:
        """Commands by (scope type, language_code); "" is the default language."""
        return self._state.scoped_commands

    def _setMyCommands(self, params: dict[str, object], files: Files) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, 'Bad Request: parameter "commands" is required')
        for command in commands:
            name = command.get("command") if isinstance(command, dict) else None
            if not isinstance(name, str) or not COMMAND_NAME.fullmatch(name):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        scope, language = _command_key(params)
        self._state.scoped_commands[(scope, language)] = commands
        if scope == DEFAULT_SCOPE:
            self.commands[language] = commands
        return True

    def _getMyCommands(self, params: dict[str, object], files: Files) -> list[JSON]:
        return self._state.scoped_commands.get(_command_key(params), [])

    def _deleteMyCommands(self, params: dict[str, object], files: Files) -> bool:
        scope, language = _command_key(params)
        self._state.scoped_commands.pop((scope, language), None)
        if scope == DEFAULT_SCOPE:
            self.commands.pop(language, None)
        return True

    def _close(self, params: dict[str, object], files: Files) -> bool:
        return True

    def _logOut(self, params: dict[str, object], files: Files) -> bool:
        return True

    def _answerCallbackQuery(self, params: dict[str, object], files: Files) -> bool:
        return True

    # --- chats ------------------------------------------------------------------------------

    def _leaveChat(self, params: dict[str, object], files: Files) -> bool:
        chat = self._known_chat(params)
        self.set_chat_member(chat["id"], self.bot_id, "left")
        return True

    def _getChat(self, params: dict[str, object], files: Files) -> JSON:
        chat = self._known_chat(params)
        gifts = dict.fromkeys(GIFT_TYPES, True)
        extra = {"accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": gifts}
        return {**chat, **extra}

    def _getChatMember(self, params: dict[str, object], files: Files) -> JSON:
        chat = self._known_chat(params)
        user_id = _int(params.get("user_id"), 0)
        default = {"status": "member", "user": self._user_or_bot(user_id)}
        return self._state.members.get((chat["id"], user_id), default)

    def _known_chat(self, params: dict[str, object]) -> JSON:
        chat = self._state.chats.get(_int(params.get("chat_id"), 0))
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        return chat

    def _target_chat(self, params: dict[str, object]) -> JSON:
        """The chat a send goes to: 400 when unknown, 403 when the bot was blocked there."""
        chat = self._known_chat(params)
        if chat["id"] in self._state.blocked:
            raise ApiError(403, _blocked_description(chat["type"]))
        return chat

    def _user_or_bot(self, user_id: int) -> JSON:
        return self.bot_user if user_id == self.bot_id else _user(user_id, "en")

    # --- sending ----------------------------------------------------------------------------

    def _sendChatAction(self, params: dict[str, object], files: Files) -> bool:
        self._target_chat(params)
        return True

    def _sendMessage(self, params: dict[str, object], files: Files) -> JSON:
        chat = self._target_chat(params)
        text = _rendered(params, "text", MAX_TEXT, "message is too long")
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        return self._bot_message(chat, params, {"text": text})

    def _sendDocument(self, params: dict[str, object], files: Files) -> JSON:
        chat = self._target_chat(params)
        content = {"document": self._upload_document(params.get("document"), "document", files)}
        return self._bot_message(chat, params, content | _caption(params))

    def _sendPhoto(self, params: dict[str, object], files: Files) -> JSON:
        chat = self._target_chat(params)
        stored, _ = self._uploaded(params.get("photo"), "photo", files, "photos")
        content = {"photo": [_photo_size(stored, 1280, 960)]}
        return self._bot_message(chat, params, content | _caption(params))

    def _sendMediaGroup(self, params: dict[str, object], files: Files) -> list[JSON]:
        chat = self._target_chat(params)
        media = params.get("media")
        if isinstance(media, list) and len(media) > MAX_ALBUM:
            raise ApiError(400, "Bad Request: too many messages to send as an album")
        if not isinstance(media, list) or len(media) < 2:
            raise ApiError(400, "Bad Request: wrong number of media in the album: must be 2-10")
        types = {item.get("type") for item in media if isinstance(item, dict)}
        if "document" in types and len(types) > 1:
            raise ApiError(400, "Bad Request: document can't be mixed with other media types")
        group_id = f"album-{self._state.counters.next_file()}"
        return [self._album_item(chat, params, item, files, group_id) for item in media]

    def _album_item(
        self, chat: JSON, params: dict[str, object], item: JSON, files: Files, group_id: str
    ) -> JSON:
        if item.get("type") == "photo":
            stored, _ = self._uploaded(item.get("media"), "media", files, "photos")
            content: JSON = {"photo": [_photo_size(stored, 1280, 960)]}
        elif item.get("type") == "document":
            content = {"document": self._upload_document(item.get("media"), "media", files)}
        else:
            raise ApiError(400, f"Bad Request: the fake has no media type {item.get('type')!r}")
        content |= _caption(item) | {"media_group_id": group_id}
        return self._bot_message(chat, params, content, source=item)

    def _upload_document(self, value: object, field_name: str, files: Files) -> JSON:
        stored, file_name = self._uploaded(value, field_name, files, "documents")
        mime_type = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        return _document(stored, file_name, mime_type)

    def _uploaded(
        self, value: object, field_name: str, files: Files, folder: str
    ) -> tuple[StoredFile, str]:
        """The file a send refers to: a multipart part, "attach://<part>" or a known file_id."""
        part = field_name
        if isinstance(value, str) and value.startswith("attach://"):
            part = value.removeprefix("attach://")
        if part in self._uploads:
            upload = self._uploads[part]
            file_name = upload.file_name or "document"
            suffix = PurePosixPath(file_name).suffix
            return self._store(b"", folder, suffix, upload.size, upload.path), file_name
        if part in files:
            file_name, data = files[part]
            file_name = file_name or "document"
            return self._store(data, folder, PurePosixPath(file_name).suffix), file_name
        stored = self._state.files.get(str(value))
        if stored is None:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        return stored, PurePosixPath(stored.file_path).name

    def _bot_message(
        self, chat: JSON, params: dict[str, object], content: JSON, source: JSON | None = None
    ) -> JSON:
        """A message of the bot; `source`: the album item it comes from."""
        _check_buttons(params)
        thread = params.get("message_thread_id")
        if thread is not None and (chat["id"], _int(thread, 0)) not in self._state.topics:
            raise ApiError(400, "Bad Request: message thread not found")
        message: JSON = {
            "message_id": self._state.counters.next_message(),
            "date": int(time.time()),
            "chat": chat,
            "from": self.bot_user,
            **content,
        }
        if "message_thread_id" in params:
            message["message_thread_id"] = params["message_thread_id"]
        if params.get("reply_markup") is not None:
            message["reply_markup"] = params["reply_markup"]
        self._state.content[(chat["id"], message["message_id"])] = _content_key(source or params)
        reply_to = self._reply_target(chat, params)
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        self._state.messages[(chat["id"], message["message_id"])] = message
        return message

    def _reply_target(self, chat: JSON, params: dict[str, object]) -> JSON | None:
        reply = params.get("reply_parameters")
        if not isinstance(reply, dict):
            return None
        target = self._state.messages.get((chat["id"], _int(reply.get("message_id"), 0)))
        if target is None and not reply.get("allow_sending_without_reply"):
            raise ApiError(400, "Bad Request: message to be replied not found")
        return target

    # --- changing messages ------------------------------------------------------------------

    def _editMessageText(self, params: dict[str, object], files: Files) -> JSON:
        key = (_int(params.get("chat_id"), 0), _int(params.get("message_id"), 0))
        message = self._state.messages.get(key)
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        text = _rendered(params, "text", MAX_TEXT, "message is too long")
        _check_buttons(params)
        if message.get("text") == text:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        edited = {**message, "text": text, "edit_date": int(time.time())}
        self._state.messages[key] = edited
        return edited

    def _editMessageCaption(self, params: dict[str, object], files: Files) -> JSON:
        key = (_int(params.get("chat_id"), 0), _int(params.get("message_id"), 0))
        message = self._state.messages.get(key)
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if message.get("from", {}).get("id") != self.bot_id:
            raise ApiError(400, "Bad Request: message can't be edited")
        if "text" in message:
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        caption = _caption(params).get("caption")
        _check_buttons(params)
        if _content_key(params) == self._state.content.get(key):
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup of the message are exactly the same as a current content and reply "
                "markup of the message",
            )
        edited = {name: value for name, value in message.items() if name != "caption"}
        edited |= {"edit_date": int(time.time())} | ({"caption": caption} if caption else {})
        self._state.messages[key] = edited
        self._state.content[key] = _content_key(params)
        return edited

    def _deleteMessage(self, params: dict[str, object], files: Files) -> bool:
        key = (_int(params.get("chat_id"), 0), _int(params.get("message_id"), 0))
        message = self._state.messages.get(key)
        if message is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        if not self._may_delete(message):
            raise ApiError(400, "Bad Request: message can't be deleted")
        del self._state.messages[key]
        return True

    def _may_delete(self, message: JSON) -> bool:
        """Bots delete their own messages and, in private chats, incoming ones; others' messages
        in a group only as its owner or as an admin with can_delete_messages."""
        chat = message["chat"]
        if chat["type"] == "private" or message.get("from", {}).get("id") == self.bot_id:
            return True
        me = self._state.members.get((chat["id"], self.bot_id), {})
        return me.get("status") == "creator" or (
            me.get("status") == "administrator" and bool(me.get("can_delete_messages"))
        )

    # --- storage ----------------------------------------------------------------------------

    def _store(
        self,
        data: bytes,
        folder: str,
        suffix: str,
        file_size: int | None = None,
        local_path: Path | None = None,
    ) -> StoredFile:
        n = self._state.counters.next_file()
        stored = StoredFile(
            file_id=f"file-{n}-{folder}",
            file_unique_id=f"unique-{n}",
            file_path=f"{folder}/file_{n}{suffix.lower()}",
            data=data,
            file_size=len(data) if file_size is None else file_size,
            local_path=local_path,
        )
        self._state.files[stored.file_id] = stored
        return stored

    def _getFile(self, params: dict[str, object], files: Files) -> JSON:
        stored = self._state.files.get(str(params.get("file_id")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        local = self.local_dir is not None
        if stored.file_size > (LOCAL_MAX_DOWNLOAD if local else MAX_DOWNLOAD):
            raise ApiError(400, "Bad Request: file is too big")
        path = stored.file_path
        if local and stored.local_path is not None:
            path = str(stored.local_path.resolve())  # where it lies on the server's disk
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "file_path": path,
        }

    def _add_message(self, content: JSON, sender: Sender) -> int:
        user_id = sender.get("user_id", 1001)
        chat_type = sender.get("chat_type", "private")
        chat_id = sender.get("chat_id")
        if chat_id is None and chat_type != "private":
            raise ValueError("chat_id is required for group chats")
        chat = _chat(user_id if chat_id is None else chat_id, chat_type, "Test group")
        author = _user(user_id, sender.get("language_code", "en"))
        author["first_name"] = sender.get("first_name", author["first_name"])
        message: JSON = {
            "message_id": self._state.counters.next_message(),
            "date": int(time.time()),
            "chat": chat,
            "from": author,
            **{key: value for key, value in content.items() if value is not None},
        }
        if sender.get("anonymous_admin"):
            message["from"] = ANONYMOUS_ADMIN
            message["sender_chat"] = chat
        if sender.get("automatic_forward"):
            channel = _chat(-1009999999999, "channel", "Linked channel")
            origin = {"type": "channel", "chat": channel, "message_id": 1, "date": message["date"]}
            message |= {"from": TELEGRAM_SERVICE, "sender_chat": channel}
            message |= {"is_automatic_forward": True, "forward_origin": origin}
        message |= _origin_fields(sender, message["date"])
        if "message_thread_id" in message:
            self._state.topics.add((chat["id"], int(message["message_thread_id"])))
        self._state.chats.setdefault(chat["id"], chat)
        self._state.messages[(chat["id"], message["message_id"])] = message
        self.add_update({"message": message})
        return int(message["message_id"])


# --- pure helpers ---------------------------------------------------------------------------


def _command_key(params: dict[str, object]) -> tuple[str, str]:
    """(scope type, language code) of a commands call; 400 for a language code Telegram
    refuses (it takes two-letter ISO 639-1 codes only)."""
    language = str(params.get("language_code", "") or "")
    if language and not LANGUAGE_CODE.fullmatch(language):
        raise ApiError(400, "Bad Request: invalid language code specified")
    scope = params.get("scope")
    kind = scope.get("type") if isinstance(scope, dict) else None
    return str(kind or DEFAULT_SCOPE), language


def _check_buttons(params: dict[str, object]) -> None:
    """Inline buttons carry at most 64 bytes of callback_data."""
    markup = params.get("reply_markup")
    rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
    for row in rows if isinstance(rows, list) else []:
        for button in row if isinstance(row, list) else []:
            data = button.get("callback_data") if isinstance(button, dict) else None
            if isinstance(data, str) and len(data.encode()) > MAX_CALLBACK_DATA:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


def _canonical(method: str) -> str:
    """Bot API method names are case-insensitive."""
    return next((name for name in METHODS if name.lower() == method.lower()), method)


async def _read_params(request: web.Request) -> tuple[dict[str, object], Files]:
    params: dict[str, object] = {k: _decode(k, v) for k, v in request.query.items()}
    files: Files = {}
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
        return params, files
    if request.content_type == "multipart/form-data":
        # Part by part, in memory: aiohttp's post() spools files into temporary files that it
        # leaves open when a client goes in the middle of its body (a bot killed mid-upload).
        reader = await request.multipart()
        while (part := await reader.next()) is not None:  # ends with the body
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is None:
                params[part.name] = _decode(part.name, await part.text())
            else:
                files[part.name] = (part.filename, bytes(await part.read()))
        return params, files
    for name, value in (await request.post()).items():  # urlencoded: text only
        if isinstance(value, str):
            params[name] = _decode(name, value)
    return params, files


def _decode(name: str, value: str) -> object:
    """A form value as the Bot API reads it: JSON unless the parameter is plain text."""
    if name in TEXT_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _int(value: object, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return default
    try:
        return int(value)
    except ValueError:
        return default


def _float(value: object, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return default
    try:
        return float(value)
    except ValueError:
        return default


def _kind(update: JSON) -> str:
    return next((key for key in update if key != "update_id"), "")


def _member(status: str, user: JSON, **fields: object) -> JSON:
    """A ChatMember as getChatMember sends it: the flags of its status default to False."""
    return {
        "status": status,
        "user": user,
        **dict.fromkeys(_MEMBER_FLAGS.get(status, ()), False),
        **({"until_date": 0} if status == "restricted" else {}),
        **fields,
    }


def _user(user_id: int, language_code: str) -> JSON:
    return {"id": user_id, "is_bot": False, "first_name": "Ada", "language_code": language_code}


def _chat(chat_id: int, chat_type: str, title: str) -> JSON:
    if chat_type == "private":
        return {"id": chat_id, "type": "private", "first_name": "Ada"}
    return {"id": chat_id, "type": chat_type, "title": title}


def _origin_fields(sender: Sender, date: int) -> JSON:
    fields: JSON = {}
    name = sender.get("forward_from_name")
    if name is not None:
        fields["forward_origin"] = {"type": "hidden_user", "sender_user_name": name, "date": date}
    thread = sender.get("message_thread_id")
    if thread is not None:
        fields |= {"message_thread_id": thread, "is_topic_message": True}
    return fields


def _document(stored: StoredFile, file_name: str, mime_type: str) -> JSON:
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_name": file_name,
        "mime_type": mime_type,
        "file_size": stored.file_size,
    }


def _photo_size(stored: StoredFile, width: int, height: int) -> JSON:
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "width": width,
        "height": height,
        "file_size": stored.file_size,
    }


def _caption(params: JSON) -> JSON:
    if params.get("caption") is None:
        return {}
    return {"caption": _rendered(params, "caption", MAX_CAPTION, "message caption is too long")}


def _content_key(params: JSON) -> tuple[str, str, str, str]:
    """A message's caption as it was written (its source, parse mode and entities: its
    formatting comes from them) and its reply markup; an edit repeating all is "not modified"."""
    caption = params.get("caption")
    parse_mode = str(params.get("parse_mode") or "").upper() if caption else ""
    entities, markup = params.get("caption_entities"), params.get("reply_markup")
    return (
        str(caption or ""),
        parse_mode,
        json.dumps(entities) if caption and entities else "",
        "" if markup is None else json.dumps(markup, sort_keys=True),
    )


def _rendered(params: JSON, name: str, limit: int, too_long: str) -> str:
    """The text the chat shows: HTML checked and stripped as Telegram does, then length-checked."""
    text = str(params.get(name, ""))
    if str(params.get("parse_mode", "")).upper() == "HTML":
        text = _HtmlText.strip(text)
    if len(text.encode("utf-16-le")) // 2 > limit:
        raise ApiError(400, f"Bad Request: {too_long}")
    return text


def _blocked_description(chat_type: str) -> str:
    if chat_type == "private":
        return "Forbidden: bot was blocked by the user"
    return f"Forbidden: bot was kicked from the {chat_type} chat"


def _call_line(call: Call) -> str:
    params = ", ".join(f"{k}={_short(v)}" for k, v in call.params.items())
    files = "".join(f" +{k}({len(data)} bytes)" for k, (_, data) in call.files.items())
    status = "" if call.error_code is None else f" -> {call.error_code}"
    return f"  {call.method}({params}){files}{status}"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _HtmlText(HTMLParser):
    """Telegram's HTML parse mode: known tags only, balanced, "<" and "&" escaped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.parts: list[str] = []
        self.open: list[str] = []

    @classmethod
    def strip(cls, html: str) -> str:
        parser = cls()
        parser.feed(html)
        parser.close()
        if parser.open:
            parser.fail(f'can\'t find end tag corresponding to start tag "{parser.open[-1]}"')
        return "".join(parser.parts)

    def fail(self, reason: str) -> None:
        raise ApiError(400, f"Bad Request: can't parse entities: {reason}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in HTML_TAGS:
            self.fail(f'unsupported start tag "{tag}"')
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.fail(f'unexpected end tag "{tag}"')
        self.open.pop()

    def handle_data(self, data: str) -> None:
        if "<" in data:
            self.fail('unescaped "<" in the text')
        self.parts.append(data)

    def handle_entityref(self, name: str) -> None:
        entities = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
        if name not in entities:
            self.fail(f'unsupported HTML entity "&{name};"')
        self.parts.append(entities[name])

    def handle_charref(self, name: str) -> None:
        code = int(name[1:], 16) if name[:1] in "xX" else int(name)
        self.parts.append(chr(code))
