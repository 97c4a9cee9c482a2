"""Findings as a short message a parent understands, in their language.

    render(findings, language, detail) -> Summary(verdict, lines)     summary.text: plain text

A one-sentence verdict comes first, then (in a private chat) one line per kind of finding, most
serious first, with the values: an approximate place name, the capture date, the phone, what a
tracking code is for. In a group only the kinds are named: never a place, a name, a code or a
serial number, so a child's location is never echoed into a group.

The summary is structured (a verdict and `Line`s of kind, label, text and values) and holds no
markup and no network's length limit: each adapter renders it (Telegram HTML within its message
and caption limits, Matrix `body` and `formatted_body`); `text` is the plain rendering the
command line prints.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from gettext import NullTranslations

from bot.findings import Finding, Kind, by_kind
from bot.i18n import babel_locale, translations
from bot.places import nearby

MAX_VALUES = 5  # values listed per line before "and N more"
MAX_VALUE_LENGTH = 80
# Bidirectional controls could make a value reorder the text around it.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_EXIF_TIME = re.compile(r"(\d{4})[:-](\d\d)[:-](\d\d)(?:[ T](\d\d):(\d\d))?")


class Detail(StrEnum):
    PRIVATE = "private"  # the sender's own chat: values shown
    GROUP = "group"  # a group or room: kinds only, never values


@dataclass(frozen=True)
class Line:
    """One kind of finding: its label ("Place"), what it says ("near Kreuzberg, …") and the
    values quoted in that text, each already made `safe`."""

    kind: Kind
    label: str
    text: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Summary:
    verdict: str
    lines: tuple[Line, ...] = ()  # most serious first; none in a group

    @property
    def text(self) -> str:
        """Plain text: the verdict, then a blank line and one "Label: text" line per kind."""
        if not self.lines:
            return self.verdict
        return "\n".join(
            [self.verdict, "", *(f"{line.label}: {line.text}" for line in self.lines)]
        )


def render(
    findings: Iterable[Finding],
    language: str = "en",
    detail: Detail = Detail.PRIVATE,
    photos: int = 1,
    videos: bool = False,
    mixed: bool = False,
) -> Summary:
    """The message for `photos` cleaned files (an album has several) and all their findings;
    `videos` when every one of them is a video, `mixed` when some are photos and some videos."""
    tr = translations(language)
    groups = by_kind(findings)
    if not groups:
        nothing = tr.ngettext(
            "I checked this file and found no hidden data in it.",
            "I checked these {n} files and found no hidden data in them.",
            photos,
        ).format(n=photos)
        return Summary(nothing)
    verdict = _verdict(groups, tr, language, photos, videos, mixed)
    if detail is Detail.GROUP:
        return Summary(verdict)
    lines = [
        Line(
            kind,
            _label(kind, tr),
            _DESCRIBE[kind](items, tr, language),
            tuple(dict.fromkeys(v for f in items if (v := safe(f.value)))),
        )
        for kind, items in groups.items()
    ]
    return Summary(verdict, tuple(lines))


def _verdict(
    groups: dict[Kind, list[Finding]],
    tr: NullTranslations,
    language: str,
    photos: int,
    videos: bool = False,
    mixed: bool = False,
) -> str:
    from babel.lists import format_list  # Babel is loaded when first needed

    phrases = [_phrase(kind, items, tr) for kind, items in groups.items()]
    listed = format_list(phrases, locale=babel_locale(language))
    if videos:
        return tr.ngettext(
            "This video contained {items}. I removed all of it.",
            "These {n} videos contained {items}. I removed all of it.",
            photos,
        ).format(items=listed, n=photos)
    if mixed and photos > 1:
        return tr.ngettext(
            "This photo or video contained {items}. I removed all of it.",
            "These {n} photos and videos contained {items}. I removed all of it.",
            photos,
        ).format(items=listed, n=photos)
    return tr.ngettext(
        "This photo contained {items}. I removed all of it.",
        "These {n} photos contained {items}. I removed all of it.",
        photos,
    ).format(items=listed, n=photos)


def _phrase(kind: Kind, items: list[Finding], tr: NullTranslations) -> str:
    """What a kind of finding is, as the object of "This photo contained …"."""
    _ = tr.gettext
    keys = {f.key for f in items}
    if kind is Kind.TRACKING and "facebook_code" in keys:
        return _("a Facebook tracking code")
    if kind is Kind.HIDDEN_MEDIA and keys & {"video", "motion_photo"}:
        return _("a hidden video")
    if kind is Kind.HIDDEN_PICTURE and len(items) > 1:
        return _("hidden pictures")
    if kind is Kind.LOCATION and "route" in keys:
        return _("the route it was recorded along")
    if kind is Kind.LOCATION and not keys & _PLACE_KEYS:
        return _("location details")
    if kind is Kind.DEVICE and not keys & {"make", "model", "serial", "lens", "lens_serial"}:
        return _("the software it was made with")
    return {
        Kind.LOCATION: _("the place where it was taken"),
        Kind.TRACKING: _("a tracking code"),
        Kind.PEOPLE: _("names of people"),
        Kind.HIDDEN_PICTURE: _("a hidden picture"),
        Kind.HIDDEN_MEDIA: _("hidden extra data"),
        Kind.DEVICE: _("the camera or phone model"),
        Kind.TIME: _("the time it was taken"),
        Kind.CREDENTIALS: _("content credentials (C2PA)"),
        Kind.HISTORY: _("its editing history"),
        Kind.DESCRIPTION: _("comments or captions"),
        Kind.OTHER: _("other technical data"),
    }[kind]


def _label(kind: Kind, tr: NullTranslations) -> str:
    _ = tr.gettext
    return {
        Kind.LOCATION: _("Place"),
        Kind.TRACKING: _("Tracking code"),
        Kind.PEOPLE: _("People"),
        Kind.HIDDEN_PICTURE: _("Hidden pictures"),
        Kind.HIDDEN_MEDIA: _("Hidden media"),
        Kind.DEVICE: _("Camera"),
        Kind.TIME: _("Time"),
        Kind.CREDENTIALS: _("Content credentials"),
        Kind.HISTORY: _("Editing"),
        Kind.DESCRIPTION: _("Comments"),
        Kind.OTHER: _("Other data"),
    }[kind]


def safe(value: str) -> str:
    """A found value fit to quote: no direction overrides, no line breaks, not too long."""
    text = " ".join(_BIDI.sub("", value).split())
    return text if len(text) <= MAX_VALUE_LENGTH else text[: MAX_VALUE_LENGTH - 1] + "…"


def _values(items: Iterable[Finding], *keys: str) -> list[str]:
    """Distinct, non-empty values of findings with these keys, in order found."""
    seen: list[str] = []
    for finding in items:
        value = safe(finding.value)
        if finding.key in keys and value and value not in seen:
            seen.append(value)
    return seen


def _listed(values: list[str], tr: NullTranslations) -> str:
    shown = ", ".join(values[:MAX_VALUES])
    rest = len(values) - MAX_VALUES
    if rest <= 0:
        return shown
    more = tr.ngettext("and {n} more", "and {n} more", rest).format(n=rest)
    return f"{shown} {more}"


_PLACE_KEYS = frozenset({"coordinates", "city", "sublocation", "state", "country", "place"})


def _location(items: list[Finding], tr: NullTranslations, language: str) -> str:
    _ = tr.gettext
    parts = []
    route = next((f for f in items if f.key == "route" and f.position), None)
    if route is not None:
        parts.append(_route(route, items, tr, language))
        items = [f for f in items if f.key not in ("route", "route_end")]
    position = next((f.position for f in items if f.position), None)
    place = ""
    if position:
        lat, lon = position
        place = nearby(lat, lon, language) or ""
        coordinates = f"{lat:.2f}, {lon:.2f}"
        if place:
            parts.append(
                _("near {place} ({coordinates})").format(place=place, coordinates=coordinates)
            )
        else:
            parts.append(_("GPS position {coordinates}").format(coordinates=coordinates))
    # The names a camera or an editor wrote; the country and region are already in `place`.
    keys = {"city", "sublocation", "place"} if place else _PLACE_KEYS - {"coordinates"}
    named = [v for v in _values(items, *keys) if v not in place]
    if named:
        parts.append(_listed(named, tr))
    altitude = _values(items, "altitude")
    if altitude:
        parts.append(_("altitude {metres}").format(metres=altitude[0]))
    direction = _values(items, "direction")
    if direction:
        parts.append(_("camera facing {degrees}°").format(degrees=direction[0].split(".")[0]))
    return "; ".join(parts) or _("GPS data without a readable position")


def _route(route: Finding, items: list[Finding], tr: NullTranslations, language: str) -> str:
    """A timed location track: "a route of N positions over M minutes, from near A to near B"."""
    _ = tr.gettext
    count, _sep, length = route.value.partition(" ")
    n, seconds = int(count or 0), int(length or 0)
    minutes = round(seconds / 60)
    if seconds < 90:  # a short clip's route: "over 12 seconds", not "over 1 minute"
        duration = tr.ngettext("{n} second", "{n} seconds", seconds).format(n=seconds)
    else:
        duration = tr.ngettext("{n} minute", "{n} minutes", minutes).format(n=minutes)
    text = _("a route of {positions} over {duration}").format(
        positions=tr.ngettext("{n} position", "{n} positions", n).format(n=n), duration=duration
    )
    end = next((f.position for f in items if f.key == "route_end" and f.position), None)
    start_name = nearby(*route.position, language) if route.position else None
    end_name = nearby(*end, language) if end else None
    if start_name and start_name == end_name:
        text += _(", all near {place}").format(place=start_name)
    elif start_name and end_name:
        text += _(", from near {start} to near {end}").format(start=start_name, end=end_name)
    elif route.position and end:  # far from any place we know: where it went, in numbers
        start, stop = (f"{lat:.2f}, {lon:.2f}" for lat, lon in (route.position, end))
        text += _(", from {start} to {end}").format(start=start, end=stop)
    return text


def _tracking(items: list[Finding], tr: NullTranslations, language: str) -> str:
    _ = tr.gettext
    parts = []
    codes = _values(items, "facebook_code")
    if codes:
        parts.append(
            _(
                "a Facebook download code ({code}) that can link this file back to the account"
                " it came from"
            ).format(code=_short(codes[0]))
        )
    apple = _values(items, "apple_id")
    if apple:
        parts.append(
            _("Apple IDs that link this file to its Live Photo or burst ({ids})").format(
                ids=_listed([_short(v) for v in apple], tr)
            )
        )
    other = _values(items, "document_id", "image_id", "transmission_reference")
    other = [v for v in other if not v.upper().startswith("FBMD")]
    if other:
        parts.append(
            _("unique IDs that let copies of this file be recognised ({ids})").format(
                ids=_listed([_short(v) for v in other], tr)
            )
        )
    return "; ".join(parts) or _("an ID that can identify this file")


def _short(code: str) -> str:
    return code if len(code) <= 16 else code[:14] + "…"


def _people(items: list[Finding], tr: NullTranslations, language: str) -> str:
    _ = tr.gettext
    parts = []
    tagged = _values(items, "person")
    if tagged:
        parts.append(_("tagged in the picture: {names}").format(names=_listed(tagged, tr)))
    named = [v for v in _values(items, *{f.key for f in items}) if v not in tagged]
    if named:
        parts.append(_("author, owner or contact: {names}").format(names=_listed(named, tr)))
    return "; ".join(parts)


def _pictures(items: list[Finding], tr: NullTranslations, language: str) -> str:
    _ = tr.gettext
    keys = [f.key for f in items]
    parts = []
    if "thumbnail" in keys:
        if "thumbnail_shows_more" in keys:
            parts.append(_("a small preview that shows more than the visible photo"))
        else:
            parts.append(_("a small preview of the photo"))
    others = [f for f in items if f.key == "image"]
    if others:
        names = sorted({name for f in others if (name := _picture_name(f.value, tr))})
        count = len(others)
        if names:
            text = tr.ngettext("{n} extra picture ({what})", "{n} extra pictures ({what})", count)
        else:
            text = tr.ngettext("{n} extra picture", "{n} extra pictures", count)
        parts.append(text.format(n=count, what=", ".join(names)))
    return "; ".join(parts) or _("a hidden picture")


def _picture_name(value: str, tr: NullTranslations) -> str | None:
    _ = tr.gettext
    lowered = value.lower()
    for word, name in (
        ("depth", _("depth map")),
        ("gain", _("HDR brightness map")),
        ("3d", _("second view for 3D")),
        ("thumbnail", _("large preview")),
        ("cover", _("cover picture")),
    ):
        if word in lowered:
            return name
    return None


def _media(items: list[Finding], tr: NullTranslations, language: str) -> str:
    _ = tr.gettext
    seconds = _values(items, "video")
    if seconds:
        length = max(1, round(float(seconds[0])))
        return tr.ngettext(
            "contains a {n}-second video (motion photo)",
            "contains a {n}-second video (motion photo)",
            length,
        ).format(n=length)
    if any(f.key == "motion_photo" for f in items):
        return _("marked as a motion photo (a short video recorded with it)")
    tracks = [f for f in items if f.key == "track"]
    if tracks:
        return tr.ngettext(
            "{n} hidden data track (such as GPS or sensor readings)",
            "{n} hidden data tracks (such as GPS or sensor readings)",
            len(tracks),
        ).format(n=len(tracks))
    return _("extra data appended after the picture")


def _device(items: list[Finding], tr: NullTranslations, language: str) -> str:
    _ = tr.gettext
    make, model = _values(items, "make")[:1], _values(items, "model")[:1]
    name = " ".join(make + [m for m in model if not make or not m.startswith(make[0])])
    parts = [name] if name else []
    for key, text in (
        ("serial", _("serial number {value}")),
        ("lens", _("lens {value}")),
        ("lens_serial", _("lens serial number {value}")),
        ("software", _("software {value}")),
        ("computer", _("computer {value}")),
    ):
        parts.extend(text.format(value=value) for value in _values(items, key)[:2])
    if any(f.key == "maker_notes" for f in items):
        parts.append(_("the maker's private notes"))
    return ", ".join(parts) or _("camera details")


def _time(items: list[Finding], tr: NullTranslations, language: str) -> str:
    _ = tr.gettext
    for keys, text in (
        (("taken", "digitized"), _("taken on {when}")),
        (("gps_date", "modified"), _("last changed on {when}")),
    ):
        for value in _values(items, *keys):
            when = _local_time(value, language)
            if when:
                return text.format(when=when)
    return _("date and time details")


def _local_time(value: str, language: str) -> str | None:
    from babel.dates import format_date, format_time

    match = _EXIF_TIME.match(value)
    if not match:
        return None
    year, month, day, hour, minute = (int(g) if g else None for g in match.groups())
    try:
        moment = datetime(year or 0, month or 0, day or 0, hour or 0, minute or 0)
    except ValueError:
        return None
    locale = babel_locale(language)
    date = format_date(moment, "full", locale=locale)
    return date if hour is None else f"{date}, {format_time(moment, 'short', locale=locale)}"


def _credentials(items: list[Finding], tr: NullTranslations, language: str) -> str:
    return tr.gettext("content credentials (C2PA) that can record who made and edited it")


def _history(items: list[Finding], tr: NullTranslations, language: str) -> str:
    _ = tr.gettext
    counts = [int(v) for v in _values(items, "edit_history") if v.isdigit()]
    software = _values(items, "software")
    parts = []
    if counts:
        n = max(counts)
        parts.append(tr.ngettext("edited {n} time", "edited {n} times", n).format(n=n))
    if software:
        parts.append(_("with {software}").format(software=_listed(software, tr)))
    return " ".join(parts) or _("editing history")


def _description(items: list[Finding], tr: NullTranslations, language: str) -> str:
    quote = tr.gettext("“{text}”")  # each language has its own quotation marks
    return _listed([quote.format(text=t) for t in _values(items, *{f.key for f in items})], tr)


def _other(items: list[Finding], tr: NullTranslations, language: str) -> str:
    n = len(items)
    return tr.ngettext(
        "{n} other technical detail, such as camera settings",
        "{n} other technical details, such as camera settings",
        n,
    ).format(n=n)


_DESCRIBE: dict[Kind, Callable[[list[Finding], NullTranslations, str], str]] = {
    Kind.LOCATION: _location,
    Kind.TRACKING: _tracking,
    Kind.PEOPLE: _people,
    Kind.HIDDEN_PICTURE: _pictures,
    Kind.HIDDEN_MEDIA: _media,
    Kind.DEVICE: _device,
    Kind.TIME: _time,
    Kind.CREDENTIALS: _credentials,
    Kind.HISTORY: _history,
    Kind.DESCRIPTION: _description,
    Kind.OTHER: _other,
}
