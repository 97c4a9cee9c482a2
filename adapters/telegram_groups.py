"""Telegram groups: admins add the bot to a parents' group, and photos posted there as files
with hidden data are replaced by (or answered with) clean copies.

Modes per group, set by its admins with /settings: `off`, `warn` (reply with a clean copy and ask
the sender to delete the original) and `replace` (delete the original, post the clean copy).
The default is `replace` where the bot may delete messages, else `warn`. In a group the bot only
ever names the kinds of data it removed: never a place, a name, a code or a serial number.
"""

import logging

from telegram import (
    ChatMember,
    ChatMemberAdministrator,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    InputMediaDocument,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from adapters.telegram_delivery import Unfetched
from bot.i18n import DEFAULT, language_for, translations
from bot.service import CleanedFile, Reply, Service
from bot.store import Store
from bot.summary import Detail
from bot.texts import MODES, OFF, REPLACE, WARN, admins_only, mode_text

log = logging.getLogger(__name__)

GROUPS = filters.ChatType.GROUPS
LOST = Unfetched.LOST
CAPTION_LIMIT = 1024
_INSIDE = (ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)
_ADMINS = (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(ChatMemberHandler(on_membership, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, on_migrate))
    app.add_handler(CommandHandler("settings", on_settings, filters=GROUPS))
    app.add_handler(CallbackQueryHandler(on_mode_button, pattern=r"^mode:"))
    app.add_handler(MessageHandler(GROUPS & filters.Document.ALL, on_group_document))


def _key(context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> tuple[Store, str]:
    store: Store = context.bot_data["store"]
    return store, store.chat_key("telegram", chat_id)


async def _language(context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> str:
    """A group speaks the language of the admin who added the bot."""
    store, key = _key(context, chat_id)
    return await store.setting(key, "language") or DEFAULT


async def _is_admin(context: ContextTypes.DEFAULT_TYPE, chat_id: int, user_id: int) -> bool:
    member = await context.bot.get_chat_member(chat_id, user_id)
    return member.status in _ADMINS


def _may_delete(member: ChatMember) -> bool:
    return member.status == ChatMemberStatus.OWNER or (
        isinstance(member, ChatMemberAdministrator) and member.can_delete_messages
    )


async def _mode(context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> tuple[str, bool]:
    """The group's mode, and whether the bot may delete messages there now."""
    store, key = _key(context, chat_id)
    me = await context.bot.get_chat_member(chat_id, context.bot.id)
    may_delete = _may_delete(me)
    return await store.setting(key, "mode") or (REPLACE if may_delete else WARN), may_delete


async def on_membership(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Added: introduce the bot and say what it lacks. Rights changed: say what it can do now.
    Removed: forget the group's settings."""
    change = update.my_chat_member
    if change is None or change.chat.type == ChatType.PRIVATE:
        return
    store, key = _key(context, change.chat.id)
    new, old = change.new_chat_member, change.old_chat_member
    if new.status not in _INSIDE:
        await store.forget(key)
        log.info("telegram: removed from a group; its settings are deleted")
        return
    language = await _language(context, change.chat.id)
    text = ""
    if old.status not in _INSIDE:
        language = language_for(change.from_user.language_code if change.from_user else None)
        await store.set_setting(key, "language", language)
        text = _introduction(language) + "\n\n"
    text += _abilities(language, new, context.bot.can_read_all_group_messages)
    await context.bot.send_message(change.chat.id, text)


def _introduction(language: str) -> str:
    return translations(language).gettext(
        "Hello! I am scrubbot. Photos often carry hidden data: where they were taken, the "
        "phone's serial number, tracking codes. When someone posts a photo here as a file, I "
        "remove that data, without ever showing any of it in this group."
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


async def on_migrate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A group became a supergroup: it has a new id, and keeps its settings."""
    message = update.effective_message
    if message is None or message.migrate_to_chat_id is None:
        return
    store, old = _key(context, message.chat.id)
    await store.move(old, store.chat_key("telegram", message.migrate_to_chat_id))


async def on_settings(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/settings: the group's mode, with buttons to change it (admins only)."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    language = await _language(context, chat.id)
    _ = translations(language).gettext
    mode, _may = await _mode(context, chat.id)
    buttons = [
        InlineKeyboardButton(("✓ " if name == mode else "") + label, callback_data=f"mode:{name}")
        for name, label in ((OFF, _("Off")), (WARN, _("Warn")), (REPLACE, _("Replace")))
    ]
    text = (
        _("What should I do with photos that carry hidden data?")
        + "\n"
        + mode_text(mode, language)
    )
    await message.reply_text(text, reply_markup=InlineKeyboardMarkup([buttons]))


async def on_mode_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button under /settings: only the group's admins may change the mode."""
    query = update.callback_query
    if query is None or query.message is None or query.data is None:
        return
    chat_id = query.message.chat.id
    language = await _language(context, chat_id)
    wanted = query.data.removeprefix("mode:")
    if wanted not in MODES:
        await query.answer()
        return
    if not await _is_admin(context, chat_id, query.from_user.id):
        await query.answer(admins_only(language), show_alert=True)
        return
    _current, may_delete = await _mode(context, chat_id)
    if wanted == REPLACE and not may_delete:
        text = translations(language).gettext("For that I need the right to delete messages.")
        await query.answer(text, show_alert=True)
        return
    store, key = _key(context, chat_id)
    await store.set_setting(key, "mode", wanted)
    await query.answer()
    await query.edit_message_text(mode_text(wanted, language))


async def on_group_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A file posted in a group: clean it (an album's files together)."""
    from adapters.telegram import answer_files  # shared with private chats

    await answer_files(update, context, _clean_in_group)


async def _clean_in_group(context: ContextTypes.DEFAULT_TYPE, messages: list[Message]) -> None:
    from adapters.telegram import download, fits, not_fetched  # shared with private chats

    chat_id = messages[0].chat.id
    mode, may_delete = await _mode(context, chat_id)
    if mode == OFF:
        return
    service: Service = context.bot_data["service"]
    candidates = [m for m in messages if m.document and fits(m.document, context)]
    if not candidates:
        return
    language = await _language(context, chat_id)
    async with service.slot():
        fetched = await download([m.document for m in candidates if m.document], context)
        got = [(m, data) for m, data in zip(candidates, fetched, strict=True) if data != LOST]
        photos = [data for _, data in got if isinstance(data, bytes)]
        reply = await service.clean(photos, language, Detail.GROUP) if photos else None
    if LOST in fetched:  # the leaky original stays: say so (what it carries is unknown)
        lost = [m for m, data in zip(candidates, fetched, strict=True) if data == LOST]
        await lost[0].reply_text(not_fetched(language, len(lost)))
    if reply is None:
        return
    candidates = [m for m, data in got if isinstance(data, bytes)]
    store, key = _key(context, chat_id)
    await store.record(key, *reply.usage())
    leaky = [f for f in reply.files if f.kinds]
    if not leaky:
        return  # nothing hidden, or not a photo: no need to speak up in a group
    originals = [candidates[f.source] for f in leaky]
    if mode == REPLACE and may_delete:
        await _replace(context, originals, leaky, reply, language)
    else:
        await _warn(originals[0], leaky, reply, language)


def _caption(reply: Reply, extra: str) -> str:
    summary = reply.summary.text if reply.summary else ""
    return f"{summary}\n\n{extra}".strip()[:CAPTION_LIMIT]


async def _warn(original: Message, files: list[CleanedFile], reply: Reply, language: str) -> None:
    note = translations(language).ngettext(
        "Here is a clean copy. Please delete your original: it still carries this data.",
        "Here are clean copies. Please delete your originals: they still carry this data.",
        len(files),
    )
    caption = _caption(reply, note)
    if len(files) == 1:
        await original.reply_document(
            InputFile(files[0].data, filename=files[0].file_name), caption=caption
        )
    else:
        await original.reply_media_group(_media(files, caption))


async def _replace(
    context: ContextTypes.DEFAULT_TYPE,
    originals: list[Message],
    files: list[CleanedFile],
    reply: Reply,
    language: str,
) -> None:
    first = originals[0]
    credit = (
        translations(language)
        .gettext("Clean copy of a photo from {name}.")
        .format(name=_sender_name(first, language))
    )
    caption = _caption(reply, credit)
    thread = first.message_thread_id if first.is_topic_message else None
    if len(files) == 1:
        document = InputFile(files[0].data, filename=files[0].file_name)
        await context.bot.send_document(
            first.chat.id, document, caption=caption, message_thread_id=thread
        )
    else:
        await context.bot.send_media_group(
            first.chat.id, _media(files, caption), message_thread_id=thread
        )
    # Only now that the clean copy is posted may the original go (a failed post raised above).
    kept = [message for message in originals if not await _delete(message)]
    if kept:  # this photo falls back to warn: the clean copy is there, the original stays
        note = translations(language).ngettext(
            "Here is a clean copy. Please delete your original: it still carries this data.",
            "Here are clean copies. Please delete your originals: they still carry this data.",
            len(kept),
        )
        await kept[0].reply_text(_caption(reply, note))


async def _delete(message: Message) -> bool:
    """Whether the original is gone (a retry that finds it gone counts as done)."""
    try:
        await message.delete()
    except TelegramError as error:
        log.warning("telegram: could not delete an original (%s)", type(error).__name__)
        return False
    return True


def _media(files: list[CleanedFile], caption: str) -> list[InputMediaDocument]:
    """Documents for one album; the caption goes on the first, as Telegram shows it."""
    return [
        InputMediaDocument(f.data, filename=f.file_name, caption=caption if i == 0 else None)
        for i, f in enumerate(files)
    ]


def _sender_name(message: Message, language: str) -> str:
    if message.sender_chat is not None or message.from_user is None:
        return translations(language).gettext("an admin")
    return message.from_user.first_name
