"""What a photo would have told a stranger: `Finding`s, grouped by `Kind`, with values.

Findings keep the values found (coordinates, codes, serials) so a parent in a private chat can see
exactly what was exposed; `bot.summary` decides how much of that to show where.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """The groups a parent understands, most serious first."""

    LOCATION = "location"
    TRACKING = "tracking"
    PEOPLE = "people"
    HIDDEN_PICTURE = "hidden_picture"
    HIDDEN_MEDIA = "hidden_media"
    DEVICE = "device"
    TIME = "time"
    CREDENTIALS = "credentials"
    HISTORY = "history"
    DESCRIPTION = "description"
    OTHER = "other"


@dataclass(frozen=True)
class Finding:
    """One piece of hidden data: `key` says what it is, `value` what it said (may be empty)."""

    kind: Kind
    key: str
    value: str
    source: str
    position: tuple[float, float] | None = None


def by_kind(findings: Iterable[Finding]) -> dict[Kind, list[Finding]]:
    """Group findings in `Kind` order, dropping exact repeats from different containers."""
    groups: dict[Kind, list[Finding]] = {kind: [] for kind in Kind}
    seen: set[tuple[Kind, str, str]] = set()
    for finding in findings:
        ident = (finding.kind, finding.key, finding.value)
        if ident not in seen:
            seen.add(ident)
            groups[finding.kind].append(finding)
    return {kind: items for kind, items in groups.items() if items}
