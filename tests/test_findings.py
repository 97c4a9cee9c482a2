"""Findings: each kind of hidden data is recognised, with its value, where it hides."""

import io
import struct
from pathlib import Path

import piexif
import pytest
from PIL import Image

from bot.findings import Finding, Kind, by_kind
from bot.metadata import iptc, xmp
from bot.scrub import inspect
from tests.conftest import CORPUS

XMP_HEAD = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
)
XMP_TAIL = b"</rdf:RDF></x:xmpmeta>"


def packet(body: bytes) -> bytes:
    return XMP_HEAD + body + XMP_TAIL


def keys(found: list[Finding]) -> set[tuple[Kind, str, str]]:
    return {(f.kind, f.key, f.value) for f in found}


def test_xmp_face_regions_history_and_ids() -> None:
    body = b"""<rdf:Description
        xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/"
        xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#"
        xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
        xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"
        xmlns:exif="http://ns.adobe.com/exif/1.0/"
        xmpMM:DocumentID="xmp.did:1234abcd"
        exif:GPSLatitude="52,30.6N" exif:GPSLongitude="13,23.4E">
      <mwg-rs:Regions rdf:parseType="Resource"><mwg-rs:RegionList><rdf:Bag>
        <rdf:li><rdf:Description mwg-rs:Name="Mia Example" mwg-rs:Type="Face"/></rdf:li>
      </rdf:Bag></mwg-rs:RegionList></mwg-rs:Regions>
      <xmpMM:History><rdf:Seq>
        <rdf:li stEvt:action="saved" stEvt:softwareAgent="Adobe Photoshop 25.0"/>
        <rdf:li stEvt:action="saved" stEvt:softwareAgent="Adobe Photoshop 25.0"/>
      </rdf:Seq></xmpMM:History>
    </rdf:Description>"""
    found = xmp.findings(packet(body))
    got = keys(found)
    assert (Kind.PEOPLE, "person", "Mia Example") in got
    assert (Kind.HISTORY, "edit_history", "2") in got
    assert (Kind.HISTORY, "software", "Adobe Photoshop 25.0") in got
    assert (Kind.TRACKING, "document_id", "xmp.did:1234abcd") in got
    (position,) = [f.position for f in found if f.key == "coordinates"]
    assert position == pytest.approx((52.51, 13.39))


def test_xmp_motion_photo_depth_and_gain_map_markers() -> None:
    body = b"""<rdf:Description
        xmlns:GCamera="http://ns.google.com/photos/1.0/camera/"
        xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/"
        xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/1.0/"
        GCamera:MotionPhoto="1" GDepth:Data="AAAA" hdrgm:Version="1.0"/>"""
    groups = by_kind(xmp.findings(packet(body)))
    assert [f.key for f in groups[Kind.HIDDEN_MEDIA]] == ["motion_photo"]
    assert {f.value for f in groups[Kind.HIDDEN_PICTURE]} == {"depth map", "HDR gain map"}


def test_xmp_entity_expansion_is_refused_not_expanded() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>'
    )
    assert keys(xmp.findings(bomb)) == {(Kind.OTHER, "xmp", "unreadable")}


def iim(dataset: int, value: bytes) -> bytes:
    return struct.pack(">BBBH", 0x1C, 2, dataset, len(value)) + value


def test_iptc_facebook_code_names_and_places() -> None:
    code = b"FBMD0100096e0300004f0e0000b31a0000d71b00005a1d0000"
    data = iim(103, code) + iim(40, code) + iim(80, b"Jo Parent") + iim(90, b"Berlin")
    got = keys(iptc.findings(data))
    assert (Kind.TRACKING, "facebook_code", code.decode()) in got
    assert (Kind.PEOPLE, "author", "Jo Parent") in got
    assert (Kind.LOCATION, "city", "Berlin") in got


def test_iptc_stops_at_a_broken_record() -> None:
    data = iim(80, b"Jo") + b"\x1c\x02\x50\x80\x09"  # extended length of an impossible width
    assert keys(iptc.findings(data)) == {(Kind.PEOPLE, "author", "Jo")}


def jpeg_with_thumbnail(size: tuple[int, int], thumb_size: tuple[int, int]) -> bytes:
    thumb = io.BytesIO()
    Image.new("RGB", thumb_size, "orange").save(thumb, "JPEG")
    exif = piexif.dump({"0th": {}, "1st": {}, "thumbnail": thumb.getvalue()})
    out = io.BytesIO()
    Image.new("RGB", size, "orange").save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_thumbnail_of_a_cropped_photo_is_flagged() -> None:
    cropped = inspect(jpeg_with_thumbnail((300, 100), (160, 120))).findings
    assert {f.key for f in cropped} >= {"thumbnail", "thumbnail_shows_more"}
    same_shape = inspect(jpeg_with_thumbnail((400, 300), (160, 120))).findings
    assert "thumbnail_shows_more" not in {f.key for f in same_shape}
    assert (Kind.HIDDEN_PICTURE, "thumbnail", "160x120") in keys(list(same_shape))


def test_letterboxed_thumbnail_is_not_called_cropped() -> None:
    thumb = Image.new("RGB", (160, 120), "black")
    thumb.paste(Image.new("RGB", (160, 106), "white"), (0, 7))
    buffer = io.BytesIO()
    thumb.save(buffer, "JPEG")
    exif = piexif.dump({"0th": {}, "1st": {}, "thumbnail": buffer.getvalue()})
    out = io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(out, "JPEG", exif=exif)
    assert "thumbnail_shows_more" not in {f.key for f in inspect(out.getvalue()).findings}


@pytest.mark.skipif(not (CORPUS / "heic").is_dir(), reason="../shared/corpus is absent")
def test_apple_live_photo_identifier_is_tracking() -> None:
    data = Path(CORPUS / "heic" / "exif-at-eof.heic").read_bytes()
    tracking = [f.value for f in inspect(data).findings if f.kind is Kind.TRACKING]
    assert "live photo: 1745E022-9712-43C7-B024-F308EC6413CB" in tracking


def test_exif_text_values_are_made_safe() -> None:
    exif = piexif.dump({"0th": {piexif.ImageIFD.Artist: b"Eve\x00\x1b[31m" + b"x" * 500}})
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG", exif=exif)
    (artist,) = [f.value for f in inspect(out.getvalue()).findings if f.key == "artist"]
    assert artist == "Eve"  # stops at the NUL, as EXIF ASCII does

    exif = piexif.dump({"0th": {piexif.ImageIFD.Artist: b"\x1b[31m" + b"x" * 500}})
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG", exif=exif)
    (artist,) = [f.value for f in inspect(out.getvalue()).findings if f.key == "artist"]
    assert "\x1b" not in artist
    assert len(artist) <= 200
