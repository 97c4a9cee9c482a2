"""The summary a parent reads: every kind in every language, no values in groups, safe HTML."""

import io
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import piexif
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from PIL import Image

from adapters.markup import as_html, fit
from bot import i18n
from bot.findings import Finding, Kind
from bot.scrub import inspect
from bot.summary import Detail, render

BERLIN = (52.4986, 13.4034)  # Kreuzberg
FBMD = "FBMD0100096e0300004f0e0000b31a0000d71b00005a1d0000"

# One finding per kind, with values a stranger must never see in a group.
SAMPLES: dict[Kind, list[Finding]] = {
    Kind.LOCATION: [
        Finding(Kind.LOCATION, "coordinates", "52.498600, 13.403400", "EXIF", BERLIN),
        Finding(Kind.LOCATION, "altitude", "34 m", "EXIF"),
    ],
    Kind.TRACKING: [Finding(Kind.TRACKING, "facebook_code", FBMD, "IPTC")],
    Kind.PEOPLE: [Finding(Kind.PEOPLE, "person", "Mia Beispiel", "XMP")],
    Kind.HIDDEN_PICTURE: [
        Finding(Kind.HIDDEN_PICTURE, "thumbnail", "160x120", "EXIF"),
        Finding(Kind.HIDDEN_PICTURE, "thumbnail_shows_more", "", "EXIF"),
    ],
    Kind.HIDDEN_MEDIA: [Finding(Kind.HIDDEN_MEDIA, "video", "3.0", "video after the picture")],
    Kind.DEVICE: [
        Finding(Kind.DEVICE, "make", "Apple", "EXIF"),
        Finding(Kind.DEVICE, "model", "iPhone 14 Pro", "EXIF"),
        Finding(Kind.DEVICE, "serial", "SN4711XYZ", "EXIF"),
    ],
    Kind.TIME: [Finding(Kind.TIME, "taken", "2025:05:02 08:13:00", "EXIF")],
    Kind.CREDENTIALS: [Finding(Kind.CREDENTIALS, "c2pa", "", "APP11 JUMBF segment")],
    Kind.HISTORY: [
        Finding(Kind.HISTORY, "edit_history", "2", "XMP"),
        Finding(Kind.HISTORY, "software", "Snapseed 2.0", "XMP"),
    ],
    Kind.DESCRIPTION: [Finding(Kind.DESCRIPTION, "comment", "Mias erster Schultag", "COM")],
    Kind.OTHER: [Finding(Kind.OTHER, "ExposureTime", "0.01", "EXIF")],
}
SECRETS = ("52.49", "13.40", "Kreuzberg", "Mia", "FBMD", "SN4711", "Snapseed", "Schultag", "2025")


def all_samples() -> list[Finding]:
    return [finding for findings in SAMPLES.values() for finding in findings]


def test_samples_cover_every_kind() -> None:
    assert set(SAMPLES) == set(Kind)  # a new kind needs a sample, and so text, to pass


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_has_a_line_with_its_value(kind: Kind, language: str) -> None:
    text = render(SAMPLES[kind], language).text
    _verdict, blank, line = text.split("\n")
    assert blank == ""
    label, _, value = line.partition(": ")
    assert label
    assert value
    english = render(SAMPLES[kind], "en").text
    assert (text != english) == (language != "en")  # the German is really translated


def test_private_detail_in_english() -> None:
    assert render(all_samples(), "en").text == (
        "This photo contained the place where it was taken, a Facebook tracking code, names of "
        "people, hidden pictures, a hidden video, the camera or phone model, the time it was "
        "taken, content credentials (C2PA), its editing history, comments or captions and other "
        "technical data. I removed all of it.\n"
        "\n"
        "Place: near Kreuzberg, Berlin, Germany (52.50, 13.40); altitude 34 m\n"
        "Tracking code: a Facebook download code (FBMD0100096e03…) that can link this file back "
        "to the account it came from\n"
        "People: tagged in the picture: Mia Beispiel\n"
        "Hidden pictures: a small preview that shows more than the visible photo\n"
        "Hidden media: contains a 3-second video (motion photo)\n"
        "Camera: Apple iPhone 14 Pro, serial number SN4711XYZ\n"
        "Time: taken on Friday, 2 May 2025, 08:13\n"
        "Content credentials: content credentials (C2PA) that can record who made and edited it\n"
        "Editing: edited 2 times with Snapseed 2.0\n"
        "Comments: “Mias erster Schultag”\n"
        "Other data: 1 other technical detail, such as camera settings"
    )


def test_private_detail_in_german() -> None:
    assert render(all_samples(), "de").text == (
        "Dieses Foto enthielt den Aufnahmeort, einen Facebook-Tracking-Code, Namen von Personen, "
        "versteckte Bilder, ein verstecktes Video, das Kamera- oder Handymodell, den "
        "Aufnahmezeitpunkt, Herkunftsnachweise (C2PA), seinen Bearbeitungsverlauf, Kommentare "
        "oder Bildunterschriften und weitere technische Daten. Ich habe alles davon entfernt.\n"
        "\n"
        "Ort: in der Nähe von Kreuzberg, Berlin, Deutschland (52.50, 13.40); Höhe 34 m\n"
        "Tracking-Code: ein Facebook-Download-Code (FBMD0100096e03…), über den sich diese Datei "
        "bis zu dem Konto zurückverfolgen lässt, von dem sie stammt\n"
        "Personen: im Bild markiert: Mia Beispiel\n"
        "Versteckte Bilder: ein kleines Vorschaubild, das mehr zeigt als das sichtbare Foto\n"
        "Versteckte Medien: enthält ein 3 Sekunden langes Video (Live-Foto)\n"
        "Kamera: Apple iPhone 14 Pro, Seriennummer SN4711XYZ\n"
        "Zeitpunkt: aufgenommen am Freitag, 2. Mai 2025, 08:13\n"
        "Herkunftsnachweis: Herkunftsnachweise (C2PA), die festhalten können, wer das Bild "
        "erstellt und bearbeitet hat\n"
        "Bearbeitung: 2-mal bearbeitet mit Snapseed 2.0\n"
        "Kommentare: „Mias erster Schultag“\n"
        "Weitere Daten: 1 weitere technische Angabe, etwa Kameraeinstellungen"
    )


@pytest.mark.parametrize("language", ["en", "de"])
def test_group_detail_names_kinds_but_no_values(language: str) -> None:
    summary = render(all_samples(), language, Detail.GROUP)
    for secret in SECRETS:
        assert secret not in summary.text
        assert secret not in as_html(summary)
    assert "\n" not in summary.text  # the verdict alone
    assert summary.lines == ()


def leaky_jpeg() -> bytes:
    exif = piexif.dump(
        {
            "0th": {piexif.ImageIFD.Make: b"Canon", piexif.ImageIFD.Artist: b"Jo Parent"},
            "Exif": {piexif.ExifIFD.BodySerialNumber: b"SN99887766"},
            "GPS": {
                piexif.GPSIFD.GPSLatitudeRef: b"N",
                piexif.GPSIFD.GPSLatitude: ((48, 1), (12, 1), (29, 1)),
                piexif.GPSIFD.GPSLongitudeRef: b"E",
                piexif.GPSIFD.GPSLongitude: ((16, 1), (22, 1), (25, 1)),
            },
        }
    )
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "blue").save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_group_summary_of_a_real_photo_leaks_nothing() -> None:
    findings = inspect(leaky_jpeg()).findings
    private = render(findings, "de").text
    assert "Vienna, Österreich" in private  # the private chat shows the place (city names are
    # GeoNames' own, countries are translated) …
    assert "SN99887766" in private
    group = render(findings, "de", Detail.GROUP)
    for secret in ("Österreich", "Vienna", "48.2", "16.3", "Jo Parent", "SN99887766", "Canon"):
        assert secret not in group.text
        assert secret not in as_html(group)
    assert group.lines == ()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the place lookup tried to use the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    ("position", "english", "german"),
    [
        (
            BERLIN,
            "near Kreuzberg, Berlin, Germany",
            "in der Nähe von Kreuzberg, Berlin, Deutschland",
        ),
        ((48.2082, 16.3738), "near Vienna, Austria", "in der Nähe von Vienna, Österreich"),
        ((0.0, -30.0), "GPS position 0.00, -30.00", "GPS-Position 0.00, -30.00"),
    ],
)
def test_place_names_come_from_offline_data(
    position: tuple[float, float], english: str, german: str
) -> None:
    found = [Finding(Kind.LOCATION, "coordinates", "", "EXIF", position)]
    assert english in render(found, "en").text
    assert german in render(found, "de").text


def test_hostile_values_are_escaped_and_cannot_reorder_text() -> None:
    hostile = "<script>alert(1)</script> & \u202egnp.exe \u2066x\u2069 \u200fRTL"
    found = [
        Finding(Kind.PEOPLE, "author", hostile, "EXIF"),
        Finding(Kind.DESCRIPTION, "comment", hostile, "COM"),
    ]
    summary = render(found, "en")
    html = as_html(summary)  # as Telegram and Matrix show it
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in html
    assert "<b>People:</b>" in html  # our own markup stays markup
    for control in ("\u202e", "\u2066", "\u2069", "\u200f"):
        assert control not in summary.text
        assert control not in html
        assert all(control not in value for line in summary.lines for value in line.values)


def test_lines_carry_kind_label_text_and_values() -> None:
    summary = render(all_samples(), "en")
    assert summary.lines[0].kind is Kind.LOCATION
    assert summary.lines[0].label == "Place"
    camera = next(line for line in summary.lines if line.kind is Kind.DEVICE)
    assert "SN4711XYZ" in camera.values
    assert "SN4711XYZ" in camera.text
    assert summary.text.split("\n")[2] == f"Place: {summary.lines[0].text}"


TELEGRAM_MESSAGE = 4096  # characters; the Telegram adapter drops the least serious lines


def test_two_hundred_tags_fit_one_message() -> None:
    found = [Finding(Kind.OTHER, f"Tag{i}", "x" * 150, "EXIF") for i in range(200)]
    found += [
        Finding(Kind.PEOPLE, "author", f"Person number {i} " + "y" * 100, "XMP") for i in range(40)
    ]
    found += [Finding(Kind.DESCRIPTION, "comment", "z" * 3000 + str(i), "COM") for i in range(30)]
    for language in ("en", "de"):
        summary = fit(render(found, language), TELEGRAM_MESSAGE)
        text = summary.text
        assert len(text) <= TELEGRAM_MESSAGE
        assert "200" in text  # "200 other technical details"
        assert ("and 35 more" if language == "en" else "und noch 35") in text


@pytest.mark.parametrize("language", ["en", "de"])
def test_nothing_found_says_the_file_was_checked(language: str) -> None:
    summary = render([], language)
    assert (
        summary.text
        == {
            "en": "I checked this file and found no hidden data in it.",
            "de": "Ich habe diese Datei geprüft und keine versteckten Daten gefunden.",
        }[language]
    )


@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("de", "de"),
        ("de-AT", "de"),
        ("de_DE.UTF-8", "de"),
        ("DE-ch", "de"),
        ("en-US", "en"),
        ("fr", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_language_is_picked_from_the_users_tag(tag: str | None, language: str) -> None:
    assert i18n.language_for(tag) == language


def source_messages() -> set[str]:
    """Every translatable string in the code, as Babel extracts it."""
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2)}
    project = Path(i18n.__file__).parent.parent
    return {
        message if isinstance(message, str) else message[0]
        for folder in ("bot", "adapters")
        for _, _, message, _, _ in extract_from_dir(project / folder, keywords=keywords)
    }


@pytest.mark.parametrize("language", [lang for lang in i18n.available() if lang != i18n.DEFAULT])
def test_every_catalog_translates_every_string(language: str) -> None:
    path = i18n.LOCALE_DIR / language / "LC_MESSAGES" / f"{i18n.DOMAIN}.po"
    with path.open("rb") as handle:
        catalog = read_po(handle)
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and m.string}
    assert source_messages() - translated == set()  # a new string needs its translation
    assert translated - source_messages() == set()  # and an old one is taken out


def test_place_lookup_loads_without_any_network() -> None:
    """In a fresh process, with sockets disabled before anything is imported."""
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise SystemExit('network used')\n"
        "socket.socket.connect = socket.socket.connect_ex = socket.socket.sendto = refuse\n"
        "socket.create_connection = socket.getaddrinfo = refuse\n"
        "from bot.places import nearby\n"
        "print(nearby(52.4986, 13.4034, 'de'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Kreuzberg, Berlin, Deutschland"


def test_a_third_language_is_one_po_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    german = i18n.LOCALE_DIR / "de" / "LC_MESSAGES" / "scrubbot.po"
    french = tmp_path / "fr" / "LC_MESSAGES" / "scrubbot.po"
    french.parent.mkdir(parents=True)
    french.write_text(
        german.read_text(encoding="utf-8")
        .replace("Language: de", "Language: fr")
        .replace('msgstr "Ort"', 'msgstr "Lieu"'),
        encoding="utf-8",
    )
    shutil.copytree(german.parent.parent, tmp_path / "de")
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.translations.cache_clear()
    try:
        assert i18n.available() == ("en", "de", "fr")
        assert i18n.language_for("fr-CA") == "fr"
        assert render(SAMPLES[Kind.LOCATION], "fr").text.split("\n")[2].startswith("Lieu: ")
    finally:
        i18n.translations.cache_clear()
