"""`scrubbot inspect --json`: findings as data, with a schema version and normalised values.

    {"schema_version": 1,
     "files": [{"file": "a.jpg", "format": "jpeg", "kinds": ["location", "device"],
                "findings": [{"kind": "location", "key": "coordinates",
                              "value": {"latitude": 52.5, "longitude": 13.383333},
                              "source": "EXIF"}, ...]},
               {"file": "b.txt", "error": "This file is not a photo format I can clean."}]}

`kind` is one of bot.findings.Kind, the groups the chat summary shows, and `kinds` lists those
present, most serious first, as the summary orders them. Values are normalised: coordinates as
decimal degrees, dates and times as ISO 8601 ("2024-05-02T16:07:07", "2024-05-02"), technical
numbers as JSON numbers (several as a list), altitude in metres and a video's length in seconds
as numbers, a picture size as {"width", "height"}; an empty value is null, and anything else
(names, serial numbers, codes) stays the text found. Version 1 adds fields only compatibly.
"""

import re
from datetime import datetime

from bot.findings import Finding, Kind, by_kind
from bot.scrub import Inspection

SCHEMA_VERSION = 1
JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

_TIME = re.compile(
    r"(\d{4})[:-](\d\d)[:-](\d\d)(?:[ T](\d\d):(\d\d)(?::(\d\d))?(\.\d+)?)?"
    r"\s*(Z|[+-]\d\d:?\d\d)?"
)
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?")
_SIZE = re.compile(r"(\d+)x(\d+)")
_TIME_KEYS = frozenset({"taken", "digitized", "modified", "gps_date"})
# Values that are measurements (never serials or IDs, which may start with zeros).
_MEASURES = {"altitude": " m", "video": "", "edit_history": "", "direction": ""}


def document(reports: list[dict[str, JsonValue]]) -> dict[str, JsonValue]:
    return {"schema_version": SCHEMA_VERSION, "files": list(reports)}


def file_report(name: str, inspection: Inspection) -> dict[str, JsonValue]:
    findings = inspection.findings
    return {
        "file": name,
        "format": inspection.format.name,
        "kinds": [kind.value for kind in by_kind(findings)],
        "findings": [finding(f) for f in findings],
    }


def error_report(name: str, message: str) -> dict[str, JsonValue]:
    return {"file": name, "error": message}


def finding(item: Finding) -> dict[str, JsonValue]:
    return {
        "kind": item.kind.value,
        "key": item.key,
        "value": normalised(item),
        "source": item.source,
    }


def normalised(item: Finding) -> JsonValue:
    """The value of `item` as data (see the module docstring)."""
    text = item.value.strip()
    if item.key == "coordinates" and item.position is not None:
        latitude, longitude = item.position
        return {"latitude": round(latitude, 6), "longitude": round(longitude, 6)}
    if not text:
        return None
    if item.kind is Kind.TIME or item.key in _TIME_KEYS:
        return iso_time(text) or text
    if item.key in ("thumbnail", "image") and (size := _SIZE.fullmatch(text)):
        return {"width": int(size[1]), "height": int(size[2])}
    if item.key in _MEASURES:
        number = _number(text.removesuffix(_MEASURES[item.key]).strip())
        return text if number is None else number
    if item.kind is Kind.OTHER:
        parts = [_number(part) for part in text.split()]
        if parts and all(part is not None for part in parts):
            return parts[0] if len(parts) == 1 else list(parts)
    return text


def _number(text: str) -> int | float | None:
    if not _NUMBER.fullmatch(text):
        return None
    return float(text) if "." in text else int(text)


def iso_time(text: str) -> str | None:
    """EXIF's "2024:05:02 16:07:07" (or XMP's ISO form) as ISO 8601; None if it is no date."""
    match = _TIME.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups()[:6])
    try:
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None  # "0000:00:00 00:00:00" and other placeholders
    if match[4] is None:
        return moment.date().isoformat()
    iso = moment.isoformat() + (match[7] or "")
    zone = match[8]
    if zone:
        iso += "Z" if zone == "Z" else f"{zone[:3]}:{zone[-2:]}"
    return iso
