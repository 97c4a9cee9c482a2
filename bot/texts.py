"""What the bot says besides summaries, in the user's language: refusals, help, privacy.

Texts that name a command take the network's `Syntax`, so each network shows its own
(`/stats on` on Telegram, `!scrubbot stats on` on Matrix). Texts that only make sense on one
network (Telegram's "send as file" hint) live in its adapter.
"""

from dataclasses import dataclass

from bot.errors import DamagedImage, NotClean, ScrubError, TooLarge, UnsupportedFormat
from bot.findings import Kind
from bot.i18n import babel_locale, translations
from bot.scrub import FORMATS, supported
from bot.store import CLEANED, REFUSED, Counts

# Where /privacy says the bot's source is: whoever runs a modified bot for others must offer
# them its source (AGPL), so the operator of a changed copy points SCRUBBOT_SOURCE_URL at theirs.
SOURCE_URL = "https://github.com/scrubbot/scrubbot"


@dataclass(frozen=True)
class Syntax:
    """How a user types a command on a network: `Syntax("/")("stats on")` is "/stats on"."""

    prefix: str

    def __call__(self, words: str) -> str:
        return f"{self.prefix}{words}"


def refusal(error: ScrubError, language: str) -> str:
    """Why a file was not cleaned, without any detail from the file itself."""
    _ = translations(language).gettext
    if isinstance(error, UnsupportedFormat):
        from babel.lists import format_list

        formats = format_list(list(supported()), locale=babel_locale(language))  # the registry
        return _(
            "This file is not a photo or video I can clean. I can clean {formats} files."
        ).format(formats=formats)
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


def privacy(language: str, syntax: Syntax, source_url: str) -> str:
    gettext = translations(language).gettext
    source = gettext(
        "My source code is public, so anyone can check what I do with photos: {url}"
    ).format(url=source_url)
    return (
        gettext(
            "What I keep: nothing of your photos. I clean them in memory and forget them as soon "
            "as I have replied; I never store photos, captions, messages, names or locations."
            "\n\nOnly if a chat switches on usage counts with {stats_on} do I count, per day, how "
            "many photos I cleaned or refused, of which file type, and which kinds of hidden data "
            "they held. The chat is stored only as a scrambled code, never its name or number. "
            "{stats_off} stops counting and deletes the counts; {forget} deletes everything about "
            "the chat."
        ).format(
            stats_on=syntax("stats on"), stats_off=syntax("stats off"), forget=syntax("forget")
        )
        + f"\n\n{source}"
    )


def stats_on(language: str, syntax: Syntax) -> str:
    return (
        translations(language)
        .gettext(
            "Usage counts are on for this chat: per day, how many photos I cleaned or refused and "
            "which kinds of hidden data they held; never who sent them or what they showed. "
            "{stats_off} stops it."
        )
        .format(stats_off=syntax("stats off"))
    )


def stats_off(language: str) -> str:
    return translations(language).gettext(
        "Usage counts are off for this chat, and I deleted what I had counted."
    )


def stats_none(language: str, syntax: Syntax) -> str:
    return (
        translations(language)
        .gettext("Usage counts are off for this chat. {stats_on} switches them on.")
        .format(stats_on=syntax("stats on"))
    )


def stats(counts: Counts, language: str) -> str:
    tr = translations(language)
    cleaned, refused = counts.total(CLEANED), counts.total(REFUSED)
    videos = sum(
        n
        for name, metric, n in counts.rows
        if metric == CLEANED and name in FORMATS and FORMATS[name].mime.startswith("video/")
    )
    head = tr.ngettext(
        "This chat: {n} photo cleaned, {refused} refused.",
        "This chat: {n} photos cleaned, {refused} refused.",
        cleaned,
    ).format(n=cleaned, refused=refused)
    if videos:  # counted apart, so a clip is not called a photo
        photos = tr.ngettext("{n} photo", "{n} photos", cleaned - videos).format(
            n=cleaned - videos
        )
        clips = tr.ngettext("{n} video", "{n} videos", videos).format(n=videos)
        both = tr.gettext("This chat: {photos} and {videos} cleaned, {refused} refused.")
        only = tr.gettext("This chat: {videos} cleaned, {refused} refused.")
        head = (both if cleaned > videos else only).format(
            photos=photos, videos=clips, refused=refused
        )
    kinds = tr.gettext(
        "With a location: {location}. With a tracking code: {tracking}. With names: {people}. "
        "With hidden pictures: {pictures}. With a hidden video: {media}. With the camera or "
        "phone: {device}. With the time: {time}."
    ).format(
        location=counts.total(Kind.LOCATION.value),
        tracking=counts.total(Kind.TRACKING.value),
        people=counts.total(Kind.PEOPLE.value),
        pictures=counts.total(Kind.HIDDEN_PICTURE.value),
        media=counts.total(Kind.HIDDEN_MEDIA.value),
        device=counts.total(Kind.DEVICE.value),
        time=counts.total(Kind.TIME.value),
    )
    return f"{head}\n{kinds}"


def forgotten(language: str) -> str:
    return translations(language).gettext("I deleted everything I had stored about this chat.")


def too_large(language: str, mb: int) -> str:
    return (
        translations(language)
        .gettext("This file is too large: I can clean files up to {mb} MB.")
        .format(mb=mb)
    )


def introduction(language: str) -> str:
    """What the bot says when it is added to a group."""
    return translations(language).gettext(
        "Hello! I am scrubbot. Photos often carry hidden data: where they were taken, the "
        "phone's serial number, tracking codes. When someone posts a photo here as a file, I "
        "remove that data, without ever showing any of it in this group."
    )


def not_fetched(language: str, files: int) -> str:
    """Files the network would not give the bot, even after retrying."""
    return (
        translations(language)
        .ngettext(
            "I could not download one file. Please send it again.",
            "I could not download {n} files. Please send them again.",
            files,
        )
        .format(n=files)
    )


def please_delete(language: str, files: int) -> str:
    """Under a clean copy that answers a leaky photo in a group (mode `warn`)."""
    return translations(language).ngettext(
        "Here is a clean copy. Please delete your original: it still carries this data.",
        "Here are clean copies. Please delete your originals: they still carry this data.",
        files,
    )


def credit(language: str, name: str | None, videos: int = 0, files: int = 1) -> str:
    """Under a clean copy posted in place of a removed original (mode `replace`); `videos`
    of the `files` are videos."""
    _ = translations(language).gettext
    who = name or _("an admin")
    if videos and videos == files:
        return _("Clean copy of a video from {name}.").format(name=who)
    if videos:
        return _("Clean copies of photos and videos from {name}.").format(name=who)
    return _("Clean copy of a photo from {name}.").format(name=who)


def languages(language: str, syntax: Syntax, choices: tuple[str, ...]) -> str:
    return (
        translations(language)
        .gettext("I can answer in these languages: {languages}. For example: {example}")
        .format(languages=", ".join(choices), example=syntax("language de"))
    )


def language_set(language: str) -> str:
    """Said in the new language (each catalogue names its own)."""
    return translations(language).gettext("From now on I answer in English in this room.")


def mode_text(mode: str, language: str) -> str:
    _ = translations(language).gettext
    return {
        "off": _("Off: I leave photos alone."),
        "warn": _("Warn: I post a clean copy and ask the sender to delete the original."),
        "replace": _("Replace: I delete the original and post a clean copy."),
    }[mode]


def mode_labels(language: str) -> tuple[str, str, str]:
    """Short names of the modes off, warn and replace (for buttons)."""
    _ = translations(language).gettext
    return _("Off"), _("Warn"), _("Replace")


def mode_question(language: str) -> str:
    return translations(language).gettext("What should I do with photos that carry hidden data?")


def mode_usage(language: str, syntax: Syntax) -> str:
    return (
        translations(language)
        .gettext("Moderators can choose: {off}, {warn} or {replace}.")
        .format(off=syntax("mode off"), warn=syntax("mode warn"), replace=syntax("mode replace"))
    )
