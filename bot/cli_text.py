"""What the command line says, in the terminal's language (en, de), one line per file.

English lines keep the scrubber's own, more specific reason (`ScrubError.message`); a translated
language names the kind of refusal, since those messages are written in English.
"""

from gettext import NullTranslations

from bot.errors import DamagedImage, NotClean, ScrubError, TooLarge, UnsupportedFormat

ENGLISH = "en"  # the language of the source strings: no catalog to load


class Messages:
    """The CLI's sentences for one language; `file` and `target` are paths as the user typed."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.tr = NullTranslations()
        if language != ENGLISH:
            from bot.i18n import translations

            self.tr = translations(language)

    def refused(self, file: str, reason: str) -> str:
        return self.tr.gettext("{file}: not cleaned: {reason}").format(file=file, reason=reason)

    def unread(self, file: str, reason: str) -> str:
        return self.tr.gettext("{file}: not read: {reason}").format(file=file, reason=reason)

    def reason(self, error: ScrubError) -> str:
        """Why the scrubber refused a file, without any detail from the file itself."""
        _ = self.tr.gettext
        if isinstance(error, UnsupportedFormat):
            generic = "it is not a photo or video format I can clean."
            text = _("it is not a photo or video format I can clean.")
        elif isinstance(error, DamagedImage):
            generic = "it is damaged or incomplete."
            text = _("it is damaged or incomplete.")
        elif isinstance(error, TooLarge):
            generic = "it is too large to clean safely."
            text = _("it is too large to clean safely.")
        elif isinstance(error, NotClean):
            generic = "hidden data could not be removed completely, so nothing was written."
            text = _("hidden data could not be removed completely, so nothing was written.")
        else:
            generic = "it could not be cleaned."
            text = _("it could not be cleaned.")
        return error.message if text == generic else text

    def would_remove(self, verdict: str, video: bool = False) -> str:
        """The chat summary's verdict ("... I removed all of it.") as `inspect` must say it,
        having written nothing: "... Cleaning it would remove all of it." Any other verdict
        ("found no hidden data") is already true as it is."""
        ngettext = self.tr.ngettext
        if video:
            done = ngettext(
                "This video contained {items}. I removed all of it.",
                "These {n} videos contained {items}. I removed all of it.",
                1,
            )
            would = ngettext(
                "This video contains {items}. Cleaning it would remove all of it.",
                "These {n} videos contain {items}. Cleaning them would remove all of it.",
                1,
            )
        else:
            done = ngettext(
                "This photo contained {items}. I removed all of it.",
                "These {n} photos contained {items}. I removed all of it.",
                1,
            )
            would = ngettext(
                "This photo contains {items}. Cleaning it would remove all of it.",
                "These {n} photos contain {items}. Cleaning them would remove all of it.",
                1,
            )
        before, marker, after = done.format(items="\0", n=1).partition("\0")
        if not marker or not verdict.startswith(before) or not verdict.endswith(after):
            return verdict
        return would.format(items=verdict[len(before) : len(verdict) - len(after)], n=1)

    def cannot_read(self, why: str) -> str:
        return self.tr.gettext("cannot read it ({why}).").format(why=why)

    def cannot_write(self, target: str, why: str) -> str:
        return self.tr.gettext("cannot write {target} ({why}).").format(target=target, why=why)

    def exists(self, target: str) -> str:
        return self.tr.gettext("{target} already exists (--overwrite replaces it).").format(
            target=target
        )

    def is_input(self, target: str) -> str:
        return self.tr.gettext(
            "{target} is one of the photos being cleaned (--in-place replaces them)."
        ).format(target=target)

    def other_links(self, file: str) -> str:
        return self.tr.gettext(
            "{file}: cleaned, but another name (a hard link) of this file still shows the original"
        ).format(file=file)

    def folder(self) -> str:
        return self.tr.gettext("it is a folder (-r cleans folders).")

    def renamed(self, file: str, target: str) -> str:
        return self.tr.gettext("{file}: written as {target}, another photo has its name").format(
            file=file, target=target
        )

    def unexpected(self, what: str) -> str:
        return self.tr.gettext("an unexpected error ({what}); please report it.").format(what=what)

    def summary(self, cleaned: int, refused: int) -> str:
        return self.tr.ngettext(
            "{n} cleaned, {refused} refused",
            "{n} cleaned, {refused} refused",
            cleaned,
        ).format(n=cleaned, refused=refused)

    def progress(self, done: int, total: int, cleaned: int, refused: int) -> str:
        return f"{done}/{total}: {self.summary(cleaned, refused)}"

    def interrupted(self) -> str:
        return self.tr.gettext("Interrupted: no partial or temporary file was left behind.")
