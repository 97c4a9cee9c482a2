"""bot.cli_json: the values of `inspect --json` as data, never as a guess that loses text."""

import pytest

from bot.cli_json import iso_time, normalised
from bot.findings import Finding, Kind


def value(kind: Kind, key: str, text: str, position: tuple[float, float] | None = None) -> object:
    return normalised(Finding(kind, key, text, "EXIF", position))


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024:05:02 16:07:07", "2024-05-02T16:07:07"),
        ("2024:05:02", "2024-05-02"),
        ("2024-05-02T16:07:07+02:00", "2024-05-02T16:07:07+02:00"),
        ("2024-05-02T16:07:07.25Z", "2024-05-02T16:07:07.25Z"),
        ("2024:05:02 16:07:07 +0200", "2024-05-02T16:07:07+02:00"),
        ("2024-05-02T16:07", "2024-05-02T16:07:00"),
        ("0000:00:00 00:00:00", None),
        ("2024:13:40 10:00:00", None),
        ("yesterday", None),
    ],
)
def test_times_become_iso_8601(text: str, iso: str | None) -> None:
    assert iso_time(text) == iso


def test_an_unreadable_time_stays_text() -> None:
    assert value(Kind.TIME, "taken", "0000:00:00 00:00:00") == "0000:00:00 00:00:00"


def test_coordinates_are_decimal_degrees() -> None:
    found = value(Kind.LOCATION, "coordinates", "52.500000, -13.383333", (52.5, -13.3833333))
    assert found == {"latitude": 52.5, "longitude": -13.383333}
    assert value(Kind.LOCATION, "coordinates", "") is None  # GPS present, position unreadable


@pytest.mark.parametrize(
    ("kind", "key", "text", "expected"),
    [
        (Kind.OTHER, "ExposureProgram", "2", 2),
        (Kind.OTHER, "FNumber", "1.8", 1.8),
        (Kind.OTHER, "ExposureBiasValue", "-0.7", -0.7),
        (Kind.OTHER, "ComponentsConfiguration", "1 2 3 0", [1, 2, 3, 0]),
        (Kind.OTHER, "MakerNote", "1024 bytes", "1024 bytes"),
        (Kind.OTHER, "ImageUniqueID", "0042", "0042"),  # a leading zero: an ID, not a number
        (Kind.DEVICE, "serial", "123456", "123456"),  # serials stay text even when all digits
        (Kind.LOCATION, "altitude", "35 m", 35),
        (Kind.HIDDEN_MEDIA, "video", "3.2", 3.2),
        (Kind.HIDDEN_PICTURE, "thumbnail", "160x120", {"width": 160, "height": 120}),
        (Kind.HIDDEN_PICTURE, "thumbnail", "", None),
        (Kind.PEOPLE, "artist", "Ada Lovelace", "Ada Lovelace"),
    ],
)
def test_numbers_become_numbers_and_text_stays_text(
    kind: Kind, key: str, text: str, expected: object
) -> None:
    assert value(kind, key, text) == expected
