"""Telegram's command menus: per scope (private chats, group members, group admins) and per
language of bot/locale, registered with setMyCommands at start; a refused menu is logged, never
fatal."""

import logging

from telegram import (
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
)
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application

from bot.i18n import available, translations

log = logging.getLogger("adapters.telegram")


# Which commands each menu shows: private chats get all but /settings; group members the ones
# they may use; group admins those and the ones that change the group's settings.
MENUS: tuple[tuple[BotCommandScope | None, tuple[str, ...]], ...] = (
    (None, ("start", "help", "privacy", "stats", "forget")),
    (BotCommandScopeAllPrivateChats(), ("start", "help", "privacy", "stats", "forget")),
    (BotCommandScopeAllGroupChats(), ("help", "privacy", "stats")),
    (BotCommandScopeAllChatAdministrators(), ("help", "privacy", "stats", "forget", "settings")),
)


def _descriptions(language: str) -> dict[str, str]:
    _ = translations(language).gettext
    return {
        "start": _("What this bot does"),
        "help": _("How to send a photo as a file"),
        "privacy": _("What I store"),
        "stats": _("Usage counts for this chat: /stats on, /stats off"),
        "forget": _("Delete everything stored about this chat"),
        "settings": _("What I do with photos in this group"),
    }


def command_language(folder: str) -> str | None:
    """The language_code setMyCommands takes for a language folder: two-letter ISO 639-1
    (`pt_BR` -> `pt`); None for English, the default menu."""
    code = folder.replace("-", "_").split("_")[0].lower()
    return None if code == "en" else code


async def register_commands(app: Application) -> None:  # type: ignore[type-arg]
    """The command menus, per scope and language; a refusal is logged, never fatal."""
    done: set[str | None] = set()
    for language in available():
        code = command_language(language)
        if code in done:
            continue  # pt and pt_BR share one menu
        done.add(code)
        described = _descriptions(language)
        for scope, names in MENUS:
            commands = [BotCommand(name, described[name]) for name in names]
            try:
                await app.bot.set_my_commands(commands, scope=scope, language_code=code)
            except InvalidToken:
                raise
            except TelegramError as error:
                log.warning(
                    "telegram: the command menu for %s was refused (%s)", code or "en", error
                )
