"""Languages: gettext catalogs compiled from the `.po` files shipped in `bot/locale/`.

Adding a language is adding `bot/locale/<code>/LC_MESSAGES/scrubbot.po` (copy the German one and
translate each `msgstr`); it is picked up by its folder name. The catalogs are compiled in memory
the first time a language is used, so the `.po` files are the only source of truth.
"""

import gettext
import io
from functools import cache
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "scrubbot"
DEFAULT = "en"  # the language of the source strings
# Babel locale for dates and lists: British English writes "Friday, 2 May 2025, 08:13".
_BABEL_LOCALES = {"en": "en_GB"}


def available() -> tuple[str, ...]:
    """Every language we have text for, the source language first."""
    found = sorted(p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    return (DEFAULT, *found)


def language_for(tag: str | None) -> str:
    """Our language for a user's language tag: `de`, `de-AT` and `de_DE.UTF-8` all give `de`."""
    primary = (tag or "").replace("_", "-").split("-")[0].split(".")[0].strip().lower()
    return primary if primary in available() else DEFAULT


def babel_locale(language: str) -> str:
    return _BABEL_LOCALES.get(language, language)


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalog for `language` (compiled from its `.po`), or the source strings."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == DEFAULT or not path.is_file():
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo  # only when a catalog is loaded
    from babel.messages.pofile import read_po

    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)
