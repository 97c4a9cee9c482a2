"""What the bot says besides summaries, in the user's language: refusals, help, privacy.

Texts that only make sense on one network (Telegram's "send as file" hint) live in its adapter.
"""

from bot.errors import DamagedImage, NotClean, ScrubError, TooLarge, UnsupportedFormat
from bot.i18n import translations


def refusal(error: ScrubError, language: str) -> str:
    """Why a file was not cleaned, without any detail from the file itself."""
    _ = translations(language).gettext
    if isinstance(error, UnsupportedFormat):
        return _(
            "This file is not a photo I can clean. I can clean JPEG, PNG, WebP, GIF, TIFF, HEIC "
            "and AVIF files."
        )
    if isinstance(error, DamagedImage):
        return _("This file is damaged or incomplete, so I could not clean it.")
    if isinstance(error, TooLarge):
        return _("This file is too large for me to clean.")
    if isinstance(error, NotClean):
        return _("I could not remove all hidden data from this file, so I am not sending it back.")
    return _("I could not clean this file.")


def sorry(language: str) -> str:
    return translations(language).gettext(
        "Sorry, something went wrong on my side. Please try again in a minute."
    )


def slow_down(language: str) -> str:
    return translations(language).gettext(
        "You have sent me a lot of photos in a short time. Please wait a minute, then send the "
        "rest."
    )


def welcome(language: str) -> str:
    return translations(language).gettext(
        "Hello! Photos often carry hidden data: where and when they were taken, the phone's "
        "serial number, a hidden preview, even tracking codes from Facebook or Instagram.\n\n"
        "Send me a photo as a file and I send it back without any of it, with the picture "
        "unchanged, and tell you what I found."
    )


def privacy(language: str) -> str:
    return translations(language).gettext(
        "What I keep: nothing. I clean your photos in memory and forget them as soon as I have "
        "replied; I never store photos, captions, messages, names or locations."
    )
