"""What a video's metadata items say: `findings(key, value, where)` for the items
`bot.formats.mp4` reads ('©xyz', Apple keys, 'loci', timed location tracks, ...).

Keys (the part of a MOVIE block's name before "@"): location (ISO 6709 text), route ("seconds
ISO-6709" lines of a timed location track), track (a timed metadata or text track), make,
model, software, encoder, lens, lens_serial, serial, maker_notes, place (a place's name), taken,
created (Unix seconds from a movie or track header), identifier, author, title, comment,
chapters.
"""

import datetime
import re

from bot.findings import Finding, Kind
from bot.metadata.text import readable

# ISO 6709 as phones write it: "+52.5200+013.4050+034.000/" (degrees, optional altitude).
_ISO6709 = re.compile(r"^\s*([+-]\d{1,2}(?:\.\d+)?)([+-]\d{1,3}(?:\.\d+)?)([+-]\d+(?:\.\d+)?)?")
_MAX_DATE = datetime.datetime(9999, 12, 31, tzinfo=datetime.UTC).timestamp()

MAX_POINTS = 1_000_000

_SIMPLE: dict[str, tuple[Kind, str]] = {
    "make": (Kind.DEVICE, "make"),
    "model": (Kind.DEVICE, "model"),
    "software": (Kind.DEVICE, "software"),
    "encoder": (Kind.DEVICE, "software"),
    "lens": (Kind.DEVICE, "lens"),
    "lens_serial": (Kind.DEVICE, "lens_serial"),
    "serial": (Kind.DEVICE, "serial"),
    "maker_notes": (Kind.DEVICE, "maker_notes"),
    "place": (Kind.LOCATION, "place"),
    "taken": (Kind.TIME, "taken"),
    "identifier": (Kind.TRACKING, "apple_id"),
    "author": (Kind.PEOPLE, "author"),
    "title": (Kind.DESCRIPTION, "title"),
    "comment": (Kind.DESCRIPTION, "comment"),
    "chapters": (Kind.DESCRIPTION, "chapters"),
}


def position(text: str) -> tuple[float, float, float | None] | None:
    """Latitude, longitude and altitude (or None) from ISO 6709 text; None if it is none."""
    match = _ISO6709.match(text)
    if not match:
        return None
    lat, lon = float(match[1]), float(match[2])
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon, float(match[3]) if match[3] else None


def findings(key: str, value: bytes, where: str) -> list[Finding]:
    text = readable(value)
    source = f"video ({where})"
    if key == "location":
        return _location(text, source)
    if key == "route":
        return _route(value.decode("ascii", "replace"), source)
    if key == "track":
        return [Finding(Kind.HIDDEN_MEDIA, "track", text, source)]
    if key == "created":
        return _created(text, source)
    if key in _SIMPLE:
        kind, name = _SIMPLE[key]
        return [Finding(kind, name, text, source)] if text else []
    return [Finding(Kind.OTHER, "container", key, source)]


def _location(text: str, source: str) -> list[Finding]:
    place = position(text)
    if place is None:
        return [Finding(Kind.LOCATION, "coordinates", "", source)]
    lat, lon, alt = place
    found = [Finding(Kind.LOCATION, "coordinates", f"{lat:.6f}, {lon:.6f}", source, (lat, lon))]
    if alt is not None:
        found.append(Finding(Kind.LOCATION, "altitude", f"{alt:.0f} m", source))
    return found


def _route(text: str, source: str) -> list[Finding]:
    """A route: how many positions over how many seconds, its first and last position."""
    points: list[tuple[float, float, float]] = []
    for line in text.splitlines():
        seconds, _, where = line.partition(" ")
        place = position(where)
        if len(points) >= MAX_POINTS:
            break
        if place is not None:
            points.append((float(seconds), place[0], place[1]))
    if not points:
        return [Finding(Kind.LOCATION, "coordinates", "", source)]
    span = max(1, round(points[-1][0] - points[0][0]))
    first, last = points[0], points[-1]
    return [
        Finding(Kind.LOCATION, "route", f"{len(points)} {span}", source, first[1:]),
        Finding(Kind.LOCATION, "route_end", f"{last[1]:.6f}, {last[2]:.6f}", source, last[1:]),
    ]


def _created(text: str, source: str) -> list[Finding]:
    try:
        seconds = int(text)
    except ValueError:
        return []
    if not -2082844800 <= seconds <= _MAX_DATE:
        return [Finding(Kind.TIME, "modified", "", source)]
    when = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return [Finding(Kind.TIME, "taken", when.strftime("%Y:%m:%d %H:%M:%S"), source)]
