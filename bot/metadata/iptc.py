"""IPTC-IIM records (APP13 / Photoshop resource 0x0404): captions, names, places, and the
transmission reference where Facebook writes its FBMD download code."""

import struct

from bot.findings import Finding, Kind
from bot.metadata.text import readable

_DATASETS: dict[int, tuple[Kind, str]] = {
    5: (Kind.DESCRIPTION, "title"),
    25: (Kind.DESCRIPTION, "keywords"),
    40: (Kind.DESCRIPTION, "instructions"),
    55: (Kind.TIME, "taken"),
    60: (Kind.TIME, "taken_time"),
    62: (Kind.TIME, "digitized"),
    63: (Kind.TIME, "digitized_time"),
    80: (Kind.PEOPLE, "author"),
    85: (Kind.PEOPLE, "author_title"),
    90: (Kind.LOCATION, "city"),
    92: (Kind.LOCATION, "sublocation"),
    95: (Kind.LOCATION, "state"),
    100: (Kind.LOCATION, "country_code"),
    101: (Kind.LOCATION, "country"),
    103: (Kind.TRACKING, "transmission_reference"),
    105: (Kind.DESCRIPTION, "headline"),
    110: (Kind.PEOPLE, "credit"),
    115: (Kind.PEOPLE, "source"),
    116: (Kind.PEOPLE, "copyright"),
    118: (Kind.PEOPLE, "contact"),
    120: (Kind.DESCRIPTION, "caption"),
    122: (Kind.PEOPLE, "writer"),
}
_IGNORED = frozenset({0})  # record version
MAX_RECORDS = 4096


def records(data: bytes) -> list[tuple[int, int, bytes]]:
    """(record, dataset, value) triples; stops quietly at the first broken record."""
    out: list[tuple[int, int, bytes]] = []
    pos = 0
    while pos + 5 <= len(data) and data[pos] == 0x1C and len(out) < MAX_RECORDS:
        record, dataset, size = struct.unpack_from(">BBH", data, pos + 1)
        pos += 5
        if size & 0x8000:  # extended length: the low bits give the length of the length
            width = size & 0x7FFF
            if width > 4 or pos + width > len(data):
                break
            size = int.from_bytes(data[pos : pos + width], "big")
            pos += width
        out.append((record, dataset, data[pos : pos + size]))
        pos += size
    return out


def findings(data: bytes, source: str = "IPTC") -> list[Finding]:
    found: list[Finding] = []
    for record, dataset, raw in records(data):
        if record != 2 or dataset in _IGNORED:
            if record not in (1, 2):
                found.append(Finding(Kind.OTHER, f"IPTC {record}:{dataset}", "", source))
            continue
        value = readable(raw)
        if value.upper().startswith("FBMD"):
            found.append(Finding(Kind.TRACKING, "facebook_code", value, source))
            continue
        kind, key = _DATASETS.get(dataset, (Kind.OTHER, f"IPTC 2:{dataset}"))
        found.append(Finding(kind, key, value, source))
    return found
