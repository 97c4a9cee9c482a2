"""Telegram (python-telegram-bot v22): updates in as chat-core events, actions out as API calls.

Private chats and groups alike: a file (or an album's files, collected first) becomes one
`Photos` event, a command a `Command` event; `bot.chat` decides, this module only translates.
Telegram's own parts stay here: the "send as file" hint for compressed photos, the command menu,
the /settings buttons, what the bot says when added to a group, and a group becoming a
supergroup. The bot's token is in every request URL, so httpx's request log is kept quiet and
every log line goes through `bot.logs`' redaction as well.

With a local Bot API server (TELEGRAM_LOCAL_MODE=1), getFile answers with the file's path on
that server's disk; a video over SCRUBBOT_MAX_BYTES is then cleaned where it lies and its clean
copy (a `ScrubbedFile.stream`) is uploaded as it is read: PTB's `InputFile(...,
read_file_handle=False)` hands the reader (`bot.mapped_video.PartsReader`) to httpx, whose
multipart body (httpx 0.28) takes the length from `seek`/`tell` (a Content-Length, no chunked
upload), seeks it to 0 each time the body is rendered (every retry of `Delivery` builds a new
request and so sends the whole file from the start) and reads it by 64 KB. A file that changes
while it is read stops the upload (`SourceChanged`): nothing is said to be sent, the sender
gets the one-line refusal.
"""

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import IO, Any, cast

from telegram import (
    ChatMember,
    ChatMemberAdministrator,
    ChatMemberRestricted,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    InputMediaDocument,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import Forbidden, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from adapters.markup import as_html, fit, plain
from adapters.telegram_commands import register_commands
from adapters.telegram_delivery import Delivery, Unfetched, fetch
from adapters.telegram_network import TelegramSettings
from adapters.telegram_updates import Albums, Updates, Webhook
from bot import chat as core
from bot import mapped_video, texts
from bot.errors import ConfigError, ScrubError, StartError, TooLarge, Unavailable
from bot.i18n import language_for, translations
from bot.network import Running
from bot.service import ScrubbedFile
from bot.texts import Syntax

log = logging.getLogger(__name__)

# PTB's loggers that would write a traceback for an answer it cannot parse, or the whole update
# (names, ids, captions) for one it cannot read; the exceptions reach us and are logged by type.
QUIETER = ("telegram.request", "telegram.ext.ExtBot", "telegram.Bot")
START_SECONDS = 8.0  # a Bot API that is wrong or away is reported within this time
MAX_MESSAGE = 4096  # characters in one message
MAX_CAPTION = 1024
PRIVATE, GROUPS = filters.ChatType.PRIVATE, filters.ChatType.GROUPS
# New messages only: not edits (answered already), not channel posts, not business messages
# (answering those would speak for the business owner), not a linked channel's automatic
# forwards into its discussion group (replacing one would detach the post's comments).
NEW = filters.UpdateType.MESSAGE & ~filters.IS_AUTOMATIC_FORWARD
_INSIDE = (ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)
_ADMINS = (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)
Context = ContextTypes.DEFAULT_TYPE
SLASH = Syntax("/")


@dataclass(frozen=True)
class TelegramDialect:
    download_limit: int | None
    syntax: Syntax = SLASH

    def how_to_send(self, language: str) -> str:
        return translations(language).gettext(
            "In Telegram: tap the paperclip (📎), choose File, then pick your photo."
        )

    def too_large(self, language: str, limit: int) -> str:
        text = translations(language).gettext(
            "This file is too large: bots can only download files up to {mb} MB from Telegram."
        )
        return text.format(mb=limit // (1024 * 1024))

    def not_allowed(self, language: str) -> str:
        return translations(language).gettext("Only the admins of this group can change that.")

    def cannot_remove(self, language: str, rights: core.Rights) -> str:
        return translations(language).gettext("For that I need the right to delete messages.")


class TelegramAdapter:
    """Owns the PTB Application: start, stop, and the handlers that translate."""

    def __init__(self, settings: TelegramSettings, running: Running) -> None:
        self.settings = settings
        for name in QUIETER:
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        self.chat = running.chat("telegram", TelegramDialect(settings.download_limit))
        self.albums = Albums()
        self.delivery = Delivery()
        self.app: Application = (  # type: ignore[type-arg]
            ApplicationBuilder()
            .token(settings.token)
            .base_url(settings.api_url)
            .base_file_url(settings.file_url)
            .local_mode(settings.local_mode)
            .rate_limiter(self.delivery)  # retries, throttling, files sent twice removed
            .updater(None)  # adapters.telegram_updates takes updates, confirming them late
            .concurrent_updates(64)
            .connection_pool_size(16)
            .read_timeout(30)
            .write_timeout(60)
            .build()
        )
        self.app.add_handler(TypeHandler(Update, self.on_any_update), group=-1)
        chats = NEW & (PRIVATE | GROUPS)
        verbs = {"start": "help", "help": "help", "privacy": "privacy", "stats": "stats"}
        for command, verb in (*verbs.items(), ("forget", "forget")):
            self.app.add_handler(CommandHandler(command, self._command(verb), filters=chats))
        settings_command = CommandHandler("settings", self._command("mode"), NEW & GROUPS)
        self.app.add_handler(settings_command)
        self.app.add_handler(CallbackQueryHandler(self.on_mode_button, pattern=r"^mode:"))
        self.app.add_handler(MessageHandler(chats & filters.Document.ALL, self.on_document))
        photos = NEW & PRIVATE & filters.PHOTO
        self.app.add_handler(MessageHandler(photos, on_compressed_photo))
        videos = NEW & PRIVATE & filters.VIDEO
        self.app.add_handler(MessageHandler(videos, on_compressed_video))
        self.app.add_handler(MessageHandler(NEW & PRIVATE & ~filters.COMMAND, self.on_other))
        self.app.add_handler(
            ChatMemberHandler(self.on_membership, ChatMemberHandler.MY_CHAT_MEMBER)
        )
        self.app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, self.on_migrate))
        self.app.add_error_handler(on_error)
        self.updates = Updates(self.app)
        self.webhook = (
            Webhook(
                self.app,
                url=settings.webhook_url,
                secret=settings.webhook_secret or "",
                listen=settings.webhook_listen,
                port=settings.webhook_port,
                path=settings.webhook_path,
            )
            if settings.webhook_url
            else None
        )
        limits = (settings.download_limit, running.service.limits.max_bytes)
        self.download_limit = min(limit for limit in limits if limit)

    async def start(self) -> None:
        """Expected failures end within START_SECONDS in one line naming the setting (the
        details go to the debug log); a token Telegram rejects is explained by the network."""
        try:
            async with asyncio.timeout(START_SECONDS):
                await self.app.initialize()
        except TimeoutError:
            raise StartError(
                f"Telegram did not start: the Bot API at TELEGRAM_API_URL did not answer within "
                f"{START_SECONDS:.0f} s. Check the address and the network."
            ) from None
        except InvalidToken as error:
            cause = error.__cause__  # PTB's own error, before it names the token
            if "Parsing the server response" not in getattr(cause, "message", error.message):
                raise  # a real refusal: explained by the network as TELEGRAM_BOT_TOKEN
            raise _not_the_bot_api(error) from None  # a 404 page, not the Bot API's answer
        except NetworkError as error:  # refused, reset, no route, no name, 5xx
            log.debug("telegram: the Bot API could not be reached", exc_info=error)
            raise StartError(
                f"Telegram did not start: the Bot API at TELEGRAM_API_URL cannot be reached "
                f"({type(error).__name__}). Check the address and the network."
            ) from None
        except TelegramError as error:  # something answered, but not as the Bot API does
            raise _not_the_bot_api(error) from None
        await register_commands(self.app)
        await self.app.start()
        if self.webhook is not None:
            await self.webhook.start()  # answers Telegram only once an update is answered
            log.info("telegram: receiving updates by webhook")
        else:
            await self.updates.start()  # confirms an update only once it is answered
            log.info("telegram: polling for updates")

    def healthy(self) -> bool:
        """Whether updates are flowing (polling: getUpdates works; webhook: it is served)."""
        if self.webhook is not None:
            return self.webhook.running
        return self.updates.healthy()

    async def stop(self) -> None:
        """Stop taking updates, finish the photos in flight, then close."""
        await self.updates.stop()
        if self.webhook is not None:
            await self.webhook.stop()
        if self.app.running:
            await self.app.stop()  # waits for running handlers
        await self.app.shutdown()

    # -- events in --------------------------------------------------------------------------

    async def on_any_update(self, update: Update, context: Context) -> None:
        """Every message id seen: a file sent twice is looked for only among unknown ids."""
        for message in (update.effective_message, getattr(update.callback_query, "message", None)):
            if message is not None:
                self.delivery.duplicates.seen(message.chat.id, message.message_id)

    def _where(self, message: Message, context: Context) -> core.Where:
        chat_id, user = message.chat.id, message.from_user

        async def rights() -> core.Rights:
            me = await context.bot.get_chat_member(chat_id, context.bot.id)
            return core.Rights(may_remove=_may_delete(me), may_post=_may_post(me))

        group = message.chat.type != ChatType.PRIVATE
        return core.Where(str(chat_id), group, user.language_code if user else None, rights)

    def _who(self, message: Message, context: Context, user_id: int | None = None) -> core.Who:
        """The sender; in a group an admin (anonymous ones post as the group) may configure."""
        chat_id, user = message.chat.id, message.from_user
        anonymous = message.sender_chat is not None and message.sender_chat.id == chat_id
        user_id = user_id or (user.id if user else None)

        async def may_configure() -> bool:
            if anonymous:
                return True
            if user_id is None:
                return False
            member = await context.bot.get_chat_member(chat_id, user_id)
            return member.status in _ADMINS

        named = message.sender_chat is None and user is not None
        name = user.first_name if named and user else None
        return core.Who(str(user_id or chat_id), name, may_configure)

    def _command(self, verb: str) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
        async def handle(update: Update, context: Context) -> None:
            message = update.effective_message
            if message is None:
                return
            where, who = self._where(message, context), self._who(message, context)
            args = tuple(context.args or ())
            await self._do(
                await self.chat.command(core.Command(where, who, verb, args)), [message]
            )

        return handle

    async def on_mode_button(self, update: Update, context: Context) -> None:
        """A button under /settings: the same as `mode NAME`, answered on the menu itself."""
        query = update.callback_query
        if query is None or not isinstance(query.message, Message) or query.data is None:
            return
        message = query.message
        where = self._where(message, context)
        who = self._who(message, context, user_id=query.from_user.id)
        wanted = query.data.removeprefix("mode:")
        for action in await self.chat.command(core.Command(where, who, "mode", (wanted,))):
            if isinstance(action, core.Denied):
                await query.answer(action.text, show_alert=True)
            elif isinstance(action, core.Say):
                await query.answer()
                await query.edit_message_text(action.text)
            else:
                await query.answer()

    async def on_document(self, update: Update, context: Context) -> None:
        """A file: clean it (an album's files together)."""
        message = update.effective_message
        if message is None or message.document is None:
            return
        if message.media_group_id:
            answer = lambda messages: self._photos(messages, context)  # noqa: E731
            await self.albums.add(message, answer, self.app)  # done once the album is answered
        else:
            await self._photos([message], context)

    async def _photos(self, messages: list[Message], context: Context) -> None:
        first = messages[0]
        local = self.settings.local_mode
        photos = tuple(
            core.Photo(
                m.document.file_size,
                _fetcher(m, self.download_limit),
                _locator(m) if local else None,
            )
            for m in messages
            if m.document
        )
        event = core.Photos(self._where(first, context), self._who(first, context), photos)
        await self._do(await self.chat.photos(event), messages)

    async def on_other(self, update: Update, context: Context) -> None:
        """Text and anything else in a private chat: point to the way photos are sent."""
        if update.effective_message:
            text = self.chat.dialect.how_to_send(_language(update))
            await update.effective_message.reply_text(text)

    async def on_membership(self, update: Update, context: Context) -> None:
        """Added: introduce the bot and say what it lacks. Rights changed: say what it can do
        now. Removed: forget the group's settings. Restricted: keep them, say nothing (it may
        not be allowed to). Added to a channel, where it does nothing: leave, silently."""
        change = update.my_chat_member
        if change is None or change.chat.type == ChatType.PRIVATE:
            return
        new, old = change.new_chat_member, change.old_chat_member
        if change.chat.type == ChatType.CHANNEL:
            if _inside(new):
                log.info("telegram: added to a channel, where it does nothing; leaving")
                await context.bot.leave_chat(change.chat.id)
            return
        where = core.Where(str(change.chat.id), group=True)
        if not _inside(new):
            await self.chat.left(where)
            log.info("telegram: removed from a group; its settings are deleted")
            return
        if new.status == ChatMemberStatus.RESTRICTED:
            log.info("telegram: restricted in a group; its settings are kept")
            return
        text = ""
        if not _inside(old):
            user = change.from_user
            language = await self.chat.joined(where, user.language_code if user else None)
            text = texts.introduction(language) + "\n\n"
        else:
            language = await self.chat.language(where)
        text += _abilities(language, new, context.bot.can_read_all_group_messages)
        await context.bot.send_message(change.chat.id, text)

    async def on_migrate(self, update: Update, context: Context) -> None:
        """A group became a supergroup: it has a new id, and keeps its settings."""
        message = update.effective_message
        if message and message.migrate_to_chat_id is not None:
            await self.chat.moved(str(message.chat.id), str(message.migrate_to_chat_id))

    # -- actions out ------------------------------------------------------------------------

    async def _do(self, actions: Sequence[core.Action], messages: list[Message]) -> None:
        """Carries the actions out in order; one that fails (after retries) stops the rest, so
        an original is removed only after its clean copy was posted."""
        first = messages[0]
        copy: core.ScrubbedCopy | None = None
        for action in actions:
            if isinstance(action, core.Say) and action.summary:
                html = as_html(fit(action.summary, MAX_MESSAGE))
                await first.reply_text(html, parse_mode=ParseMode.HTML)
            elif isinstance(action, core.Say | core.Denied):
                await first.reply_text(action.text)
            elif isinstance(action, core.SendFiles):
                await _send_files(first, action.files)
            elif isinstance(action, core.Remove):
                kept = [messages[i] for i in action.photos if not await _delete(messages[i])]
                if kept and copy is not None:  # falls back to warn for this photo
                    await kept[0].reply_text(plain(copy.summary, action.if_kept, MAX_MESSAGE))
            elif isinstance(action, core.ScrubbedCopy):
                await _scrubbed_copy(messages[action.to], action)
                copy = action
            elif isinstance(action, core.ModeMenu):
                await first.reply_text(
                    f"{action.question}\n{action.text}", reply_markup=_buttons(action)
                )


def _not_the_bot_api(error: TelegramError) -> ConfigError:
    log.debug("telegram: TELEGRAM_API_URL answered unexpectedly", exc_info=error)
    return ConfigError(
        "TELEGRAM_API_URL does not point to a Bot API server (it answered, but not as the Bot "
        "API does); leave it unset for api.telegram.org."
    )


def _fetcher(message: Message, limit: int) -> Callable[[], Awaitable[bytes | None]]:
    async def fetched() -> bytes | None:
        """The file's bytes, in memory (never through a file on disk), retried on faults."""
        assert message.document is not None  # noqa: S101 - only documents become photos
        data = await fetch(message.document, limit)
        if data is Unfetched.TOO_BIG:
            raise TooLarge
        if data is Unfetched.LOST:
            raise Unavailable
        return data

    return fetched


def _locator(message: Message) -> Callable[[], Awaitable[str | None]]:
    async def located() -> str | None:
        """The file's path on the local Bot API server's disk, when this process can read it
        there as a video; None otherwise (it is then too large, as without a local server)."""
        assert message.document is not None  # noqa: S101 - only documents become photos
        try:
            file = await message.document.get_file()  # retried by Delivery
        except TelegramError as error:
            log.warning("telegram: could not get a local file (%s)", type(error).__name__)
            return None
        path = file.file_path
        if not path or not os.path.isabs(path):  # PTB made it a URL: not on a disk we see
            return None
        return path if await asyncio.to_thread(mapped_video.streamable, path) else None

    return located


async def _delete(message: Message) -> bool:
    """Whether the original is gone (a retry that finds it gone counts as done)."""
    try:
        await message.delete()
    except TelegramError as error:
        log.warning("telegram: could not delete an original (%s)", type(error).__name__)
        return False
    return True


async def _send_files(to: Message, files: Sequence[ScrubbedFile], caption: str = "") -> None:
    with ExitStack() as readers, _streamed():
        if len(files) == 1:
            (cleaned,) = files
            document = _input_file(cleaned, readers)
            await to.reply_document(document, caption=caption or None)
        else:
            await to.reply_media_group(_media(files, caption, readers))


def _input_file(cleaned: ScrubbedFile, readers: ExitStack, attach: bool = False) -> InputFile:
    """The file's content for PTB: its bytes, or for a stream a reader httpx reads by pieces
    (closed with `readers`)."""
    if cleaned.stream is None:
        return InputFile(cleaned.data, filename=cleaned.file_name, attach=attach)
    reader = cast(IO[bytes], readers.enter_context(cleaned.stream.open()))
    return InputFile(reader, filename=cleaned.file_name, attach=attach, read_file_handle=False)


@contextmanager
def _streamed() -> Iterator[None]:
    """A stream's `SourceChanged` is raised as itself, not as the NetworkError PTB makes of
    every error of the HTTP body (it is no fault of the network: Delivery does not retry it)."""
    try:
        yield
    except NetworkError as error:
        if isinstance(error.__cause__, ScrubError):
            raise error.__cause__ from None
        raise


async def _scrubbed_copy(original: Message, copy: core.ScrubbedCopy) -> None:
    """In answer to the original, or posted in its place (in its topic, when it was in one)."""
    caption = plain(copy.summary, copy.note, MAX_CAPTION)
    if copy.reply:
        await _send_files(original, copy.files, caption)
        return
    bot, chat_id = original.get_bot(), original.chat.id
    thread = original.message_thread_id if original.is_topic_message else None
    with ExitStack() as readers, _streamed():
        if len(copy.files) == 1:
            (cleaned,) = copy.files
            document = _input_file(cleaned, readers)
            await bot.send_document(chat_id, document, caption=caption, message_thread_id=thread)
        else:
            media = _media(copy.files, caption, readers)
            await bot.send_media_group(chat_id, media, message_thread_id=thread)


def _media(
    files: Sequence[ScrubbedFile], caption: str, readers: ExitStack
) -> list[InputMediaDocument]:
    """Documents for one album; the caption goes on the first, as Telegram shows it."""
    return [
        InputMediaDocument(
            _input_file(f, readers, attach=True), caption=(caption or None) if i == 0 else None
        )
        for i, f in enumerate(files)
    ]


def _buttons(menu: core.ModeMenu) -> InlineKeyboardMarkup:
    row = [
        InlineKeyboardButton(
            ("✓ " if mode == menu.current else "") + label, callback_data=f"mode:{mode}"
        )
        for mode, label in menu.labels
    ]
    return InlineKeyboardMarkup([row])


def _language(update: Update) -> str:
    user = update.effective_user
    return language_for(user.language_code if user else None)


async def on_compressed_photo(update: Update, context: Context) -> None:
    """A photo sent the usual way: Telegram already re-encoded it and dropped its metadata."""
    if update.effective_message:
        text = translations(_language(update)).gettext(
            "Telegram has already compressed this photo: the quality is lower and the hidden "
            "data is gone, so there is nothing for me to clean. To keep the full quality, send "
            "the original as a file: tap the paperclip (📎), choose File, then pick the photo."
        )
        await update.effective_message.reply_text(text)


async def on_compressed_video(update: Update, context: Context) -> None:
    """A video sent the usual way: Telegram re-encodes it; the original comes as a file."""
    if update.effective_message:
        text = translations(_language(update)).gettext(
            "Telegram compresses videos sent this way, so I cannot clean the original. To keep "
            "the full quality, send the video as a file: tap the paperclip (📎), choose File, "
            "then pick the video."
        )
        await update.effective_message.reply_text(text)


def _inside(member: ChatMember) -> bool:
    """A member in any role; a restricted one only while it is still in the chat."""
    if member.status == ChatMemberStatus.RESTRICTED:
        return bool(getattr(member, "is_member", False))
    return member.status in _INSIDE


def _may_post(member: ChatMember) -> bool:
    if isinstance(member, ChatMemberRestricted):
        return member.can_send_documents
    return member.status in _INSIDE


def _may_delete(member: ChatMember) -> bool:
    return member.status == ChatMemberStatus.OWNER or (
        isinstance(member, ChatMemberAdministrator) and member.can_delete_messages
    )


def _abilities(language: str, me: ChatMember, reads_all: bool) -> str:
    """What the bot can do in the group with its current rights, and what it lacks."""
    _ = translations(language).gettext
    lines = []
    if me.status not in _ADMINS and not reads_all:
        lines.append(
            _(
                "To see the photos, I need to be an admin here (or my privacy mode must be "
                "turned off in @BotFather)."
            )
        )
    if _may_delete(me):
        lines.append(_("I can replace photos that carry hidden data with clean copies."))
    else:
        lines.append(
            _(
                "To replace photos with clean copies, I need the right to delete messages. "
                "Until then, I post a clean copy and ask the sender to delete the original."
            )
        )
    lines.append(_("Admins can choose what I do with /settings."))
    return "\n".join(lines)


async def on_error(update: object, context: Context) -> None:
    """Log what failed (type only, never content), tell the user when possible, keep serving."""
    error = context.error
    if isinstance(error, Forbidden):
        log.info("telegram: a user has blocked the bot; reply dropped")
        return
    if isinstance(error, ScrubError):  # a streamed file changed while it was sent
        log.info("telegram: a streamed upload stopped (%s)", type(error).__name__)
        if isinstance(update, Update) and update.effective_message:
            message = update.effective_message
            if message.chat.type == ChatType.PRIVATE:
                await message.reply_text(texts.refusal(error, _language(update)))
        return
    if isinstance(error, TelegramError):
        log.warning("telegram: %s", type(error).__name__)
    else:
        log.error("unexpected error while handling an update", exc_info=error)
    if isinstance(update, Update) and update.effective_message:
        chat = update.effective_message.chat
        if chat.type == ChatType.PRIVATE:
            try:
                await update.effective_message.reply_text(texts.sorry(_language(update)))
            except TelegramError:
                log.warning("telegram: could not send the apology either")
