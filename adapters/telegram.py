"""Telegram (python-telegram-bot v22): updates in, `bot.service` calls, replies out.

Private chats only, for now: a photo sent as a file comes back cleaned, with a summary; a
compressed photo gets an explanation of how to send the original; an album is answered once.
The bot's token is in every request URL, so httpx's request log is kept quiet and every log line
goes through `bot.logs`' redaction as well.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from telegram import (
    BotCommand,
    Document,
    InputFile,
    InputMediaDocument,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import Forbidden, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from adapters.telegram_delivery import Delivery, Unfetched, fetch
from adapters.telegram_updates import Updates
from bot.config import TelegramSettings
from bot.i18n import available, language_for, translations
from bot.ratelimit import RateLimit
from bot.service import CleanedFile, Reply, Service
from bot.store import Store
from bot.summary import Detail
from bot.texts import (
    admins_only,
    forgotten,
    privacy,
    slow_down,
    sorry,
    stats,
    stats_none,
    stats_off,
    stats_on,
    welcome,
)

log = logging.getLogger(__name__)

ALBUM_QUIET_SECONDS = 1.0  # an album's files arrive as separate updates within moments
PHOTOS_PER_MINUTE = 30  # per sender; more gets a friendly "please wait"
PRIVATE = filters.ChatType.PRIVATE
ALBUM_MAX = 10  # items Telegram puts in one album


class TelegramAdapter:
    """Owns the PTB Application: start, stop, and the state its handlers share."""

    def __init__(self, settings: TelegramSettings, service: Service, store: Store) -> None:
        self.settings = settings
        self.app: Application = (  # type: ignore[type-arg]
            ApplicationBuilder()
            .token(settings.token)
            .base_url(settings.api_url)
            .base_file_url(settings.file_url)
            .local_mode(settings.local_mode)
            .rate_limiter(Delivery())
            .concurrent_updates(64)
            .connection_pool_size(16)
            .read_timeout(30)
            .write_timeout(60)
            .build()
        )
        self.app.bot_data.update(
            service=service,
            store=store,
            settings=settings,
            limit=RateLimit(PHOTOS_PER_MINUTE, 60),
            albums=Albums(),
        )
        for command, handler in (("start", on_start), ("help", on_start), ("privacy", on_privacy)):
            self.app.add_handler(CommandHandler(command, handler, filters=PRIVATE))
        self.app.add_handler(CommandHandler("stats", on_stats))
        self.app.add_handler(CommandHandler("forget", on_forget))
        self.app.add_handler(MessageHandler(PRIVATE & filters.Document.ALL, on_document))
        self.app.add_handler(MessageHandler(PRIVATE & filters.PHOTO, on_compressed_photo))
        self.app.add_handler(MessageHandler(PRIVATE & ~filters.COMMAND, on_other))
        from adapters import telegram_groups  # imported here: it uses this module's helpers

        telegram_groups.register(self.app)
        self.app.add_error_handler(on_error)
        self.updates = Updates(self.app)

    async def start(self) -> None:
        await self.app.initialize()
        await _register_commands(self.app)
        await self.app.start()
        updater = self.app.updater
        assert updater is not None  # noqa: S101 - built with the default updater
        if self.settings.webhook_url:
            await updater.start_webhook(
                listen=self.settings.webhook_listen,
                port=self.settings.webhook_port,
                url_path="telegram",
                webhook_url=self.settings.webhook_url,
                secret_token=self.settings.webhook_secret,
            )
            log.info("telegram: receiving updates by webhook")
        else:
            await self.updates.start()  # confirms updates only once answered
            log.info("telegram: polling for updates")

    def healthy(self) -> bool:
        """Whether updates are flowing (in polling mode: getUpdates works)."""
        if self.settings.webhook_url:
            return self.app.running
        return self.updates.healthy()

    async def stop(self) -> None:
        """Stop taking updates, finish the photos in flight, then close."""
        await self.updates.stop()
        if self.app.updater and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()  # waits for running handlers
        await self.app.shutdown()


async def _register_commands(app: Application) -> None:  # type: ignore[type-arg]
    for language in available():
        _ = translations(language).gettext
        commands = [
            BotCommand("start", _("What this bot does")),
            BotCommand("help", _("How to send a photo as a file")),
            BotCommand("privacy", _("What I store")),
            BotCommand("stats", _("Usage counts for this chat: /stats on, /stats off")),
            BotCommand("forget", _("Delete everything stored about this chat")),
        ]
        code = None if language == "en" else language
        await app.bot.set_my_commands(commands, language_code=code)


def _language(update: Update) -> str:
    user = update.effective_user
    return language_for(user.language_code if user else None)


def _how_to_send(language: str) -> str:
    return translations(language).gettext(
        "In Telegram: tap the paperclip (📎), choose File, then pick your photo."
    )


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start and /help: what the bot does and how to send a photo as a file."""
    language = _language(update)
    if update.effective_message:
        await update.effective_message.reply_text(
            f"{welcome(language)}\n\n{_how_to_send(language)}"
        )


async def on_privacy(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/privacy: exactly what is stored."""
    if update.effective_message:
        await update.effective_message.reply_text(privacy(_language(update)))


async def _may_configure(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Anyone in their own private chat; in a group, its admins (anonymous ones included)."""
    chat, message, user = update.effective_chat, update.effective_message, update.effective_user
    if chat is None or chat.type == ChatType.PRIVATE:
        return True
    if message and message.sender_chat and message.sender_chat.id == chat.id:
        return True  # an anonymous admin posts as the group itself
    if user is None:
        return False
    member = await context.bot.get_chat_member(chat.id, user.id)
    return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


async def on_stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats shows this chat's counts; /stats on and /stats off switch counting."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    language = _language(update)
    store: Store = context.bot_data["store"]
    key = store.chat_key("telegram", chat.id)
    choice = (context.args or [""])[0].lower()
    if choice in ("on", "off") and not await _may_configure(update, context):
        await message.reply_text(admins_only(language))
    elif choice == "on":
        await store.opt_in(key)
        await message.reply_text(stats_on(language))
    elif choice == "off":
        await store.opt_out(key)
        await message.reply_text(stats_off(language))
    elif await store.opted_in(key):
        await message.reply_text(stats(await store.counts(key), language))
    else:
        await message.reply_text(stats_none(language))


async def on_forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/forget: delete every row about this chat (counts, opt-in, settings)."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    language = _language(update)
    if not await _may_configure(update, context):
        await message.reply_text(admins_only(language))
        return
    store: Store = context.bot_data["store"]
    await store.forget(store.chat_key("telegram", chat.id))
    await message.reply_text(forgotten(language))


async def on_other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Text and anything else: point to the way photos are sent."""
    if update.effective_message:
        await update.effective_message.reply_text(_how_to_send(_language(update)))


async def on_compressed_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo sent the usual way: Telegram already re-encoded it and dropped its metadata."""
    if update.effective_message:
        text = translations(_language(update)).gettext(
            "Telegram has already compressed this photo: the quality is lower and the hidden "
            "data is gone, so there is nothing for me to clean. To keep the full quality, send "
            "the original as a file: tap the paperclip (📎), choose File, then pick the photo."
        )
        await update.effective_message.reply_text(text)


Answer = Callable[[ContextTypes.DEFAULT_TYPE, list[Message]], Awaitable[None]]


async def answer_files(update: Update, context: ContextTypes.DEFAULT_TYPE, answer: Answer) -> None:
    """Hand a file to `answer`, after collecting the rest of its album when it is in one."""
    message = update.effective_message
    if message is None or message.document is None:
        return
    if message.media_group_id:
        albums: Albums = context.bot_data["albums"]
        # Waits until the album is answered, so that its updates are confirmed only then.
        await albums.add(message, lambda messages: answer(context, messages), context.application)
    else:
        await answer(context, [message])


async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A file in a private chat: clean it (an album's files together)."""
    await answer_files(update, context, _answer)


async def _answer(context: ContextTypes.DEFAULT_TYPE, messages: list[Message]) -> None:
    """Clean the documents of `messages` (one, or one album) and answer them once."""
    first = messages[0]
    language = language_for(first.from_user.language_code if first.from_user else None)
    service: Service = context.bot_data["service"]
    limit: RateLimit = context.bot_data["limit"]
    sender = first.from_user.id if first.from_user else first.chat.id
    if not all(limit.allow(sender) for _ in messages):
        await first.reply_text(slow_down(language))
        return
    documents = [m.document for m in messages if m.document]
    too_big = [d for d in documents if not fits(d, context)]
    if too_big:
        await first.reply_text(_too_large(language, context))
        documents = [d for d in documents if d not in too_big]
        if not documents:
            return
    async with service.slot():
        fetched = await download(documents, context)
        photos = [data for data in fetched if isinstance(data, bytes)]
        reply = await service.clean(photos, language, Detail.PRIVATE) if photos else None
        if reply is not None:
            store: Store = context.bot_data["store"]
            await store.record(store.chat_key("telegram", first.chat.id), *reply.usage())
    if reply is not None:  # sent outside the slot: a flood in this chat holds up no other
        await _send(first, reply)
    if Unfetched.TOO_BIG in fetched:
        await first.reply_text(_too_large(language, context))
    lost = fetched.count(Unfetched.LOST)
    if lost:
        await first.reply_text(not_fetched(language, lost))


def _too_large(language: str, context: ContextTypes.DEFAULT_TYPE) -> str:
    mb = _download_limit(context) // (1024 * 1024)
    text = translations(language).gettext(
        "This file is too large: bots can only download files up to {mb} MB from Telegram."
    )
    return text.format(mb=mb)


def not_fetched(language: str, count: int) -> str:
    """The line for files Telegram would not give, even after retrying."""
    return (
        translations(language)
        .ngettext(
            "Telegram did not let me download one file. Please send it again.",
            "Telegram did not let me download {n} files. Please send them again.",
            count,
        )
        .format(n=count)
    )


async def download(
    documents: list[Document], context: ContextTypes.DEFAULT_TYPE
) -> list[bytes | Unfetched]:
    """Each file's bytes, in memory (never through a file on disk), or why there are none:
    one file Telegram will not give costs only that file."""
    limit = _download_limit(context)
    return [await fetch(document, limit) for document in documents]


def _download_limit(context: ContextTypes.DEFAULT_TYPE) -> int:
    settings: TelegramSettings = context.bot_data["settings"]
    service: Service = context.bot_data["service"]
    return min(settings.download_limit, service.limits.max_bytes)


def fits(document: Document, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Checked before downloading when Telegram tells the size (it may not: then `fetch`
    checks), as the Bot API caps downloads."""
    return (document.file_size or 0) <= _download_limit(context)


async def _send(to: Message, reply: Reply) -> None:
    """The files first, then what was in them: no summary promises a file that never came."""
    if len(reply.files) == 1:
        (cleaned,) = reply.files
        await to.reply_document(InputFile(cleaned.data, filename=cleaned.file_name))
    elif reply.files:
        for part in _albums(reply.files):
            media = [InputMediaDocument(f.data, filename=f.file_name) for f in part]
            await to.reply_media_group(media)
    if reply.summary:
        await to.reply_text(reply.summary.html, parse_mode=ParseMode.HTML)
    if reply.refusals:
        await to.reply_text("\n".join(dict.fromkeys(reply.refusals)))


def _albums(files: Sequence[CleanedFile]) -> list[Sequence[CleanedFile]]:
    """Telegram's albums hold 2 to 10 items: 11 files go as 6 and 5."""
    parts = -(-len(files) // ALBUM_MAX)
    size = -(-len(files) // parts)
    return [files[i : i + size] for i in range(0, len(files), size)]


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log what failed (type only, never content), tell the user when possible, keep serving."""
    error = context.error
    if isinstance(error, Forbidden):
        log.info("telegram: a user has blocked the bot; reply dropped")
        return
    if isinstance(error, TelegramError):
        log.warning("telegram: %s", type(error).__name__)
    else:
        log.error("unexpected error while handling an update", exc_info=error)
    if isinstance(update, Update) and update.effective_message:
        chat = update.effective_message.chat
        if chat.type == ChatType.PRIVATE:
            try:
                await update.effective_message.reply_text(sorry(_language(update)))
            except TelegramError:
                log.warning("telegram: could not send the apology either")


class Albums:
    """Collects the messages of one album (same media_group_id), then answers them together
    once no new file has arrived for ALBUM_QUIET_SECONDS."""

    def __init__(self, quiet: float = ALBUM_QUIET_SECONDS) -> None:
        self.quiet = quiet
        self._pending: dict[tuple[int, str], list[Message]] = {}
        self._arrived: dict[tuple[int, str], asyncio.Event] = {}
        self._answered: dict[tuple[int, str], asyncio.Event] = {}

    def add(
        self,
        message: Message,
        answer: Callable[[list[Message]], Awaitable[None]],
        app: Application,  # type: ignore[type-arg]
    ) -> Awaitable[object]:
        """Collects `message`; the result is done once its whole album has been answered."""
        key = (message.chat.id, str(message.media_group_id))
        if key in self._pending:
            self._pending[key].append(message)
            self._arrived[key].set()
            return self._answered[key].wait()
        self._pending[key] = [message]
        self._arrived[key] = asyncio.Event()
        answered = self._answered[key] = asyncio.Event()
        app.create_task(self._answer_when_complete(key, answer))
        return answered.wait()

    async def _answer_when_complete(
        self, key: tuple[int, str], answer: Callable[[list[Message]], Awaitable[None]]
    ) -> None:
        arrived = self._arrived[key]
        while True:  # ends after `quiet` seconds without a new file
            arrived.clear()
            try:
                await asyncio.wait_for(arrived.wait(), self.quiet)
            except TimeoutError:
                break
        messages = sorted(self._pending.pop(key), key=lambda m: m.message_id)
        del self._arrived[key]
        answered = self._answered.pop(key)
        try:
            await answer(messages)
        finally:
            answered.set()
