"""XMP packets: RDF/XML with names, face regions, places, document IDs, edit history and the
Google/Adobe markers for depth maps, gain maps and motion photos.

Parsed with defusedxml (no entities, no DTDs), so a hostile packet cannot expand or fetch anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from bot.findings import Finding, Kind
from bot.metadata.text import readable

if TYPE_CHECKING:  # the Element type only; parsing goes through defusedxml
    import xml.etree.ElementTree as ET

RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
MAX_PACKET = 4 * 1024 * 1024
MAX_PROPERTIES = 2000

# Property local name -> (kind, key). Names are shared across schemas, so the local name decides.
_MEANING: dict[str, tuple[Kind, str]] = {
    "GPSAltitude": (Kind.LOCATION, "altitude"),
    "GPSImgDirection": (Kind.LOCATION, "direction"),
    "City": (Kind.LOCATION, "city"),
    "State": (Kind.LOCATION, "state"),
    "ProvinceState": (Kind.LOCATION, "state"),
    "Country": (Kind.LOCATION, "country"),
    "CountryName": (Kind.LOCATION, "country"),
    "CountryCode": (Kind.LOCATION, "country_code"),
    "Sublocation": (Kind.LOCATION, "sublocation"),
    "Location": (Kind.LOCATION, "place"),
    "CreateDate": (Kind.TIME, "taken"),
    "DateCreated": (Kind.TIME, "taken"),
    "DateTimeOriginal": (Kind.TIME, "taken"),
    "DateTimeDigitized": (Kind.TIME, "digitized"),
    "ModifyDate": (Kind.TIME, "modified"),
    "MetadataDate": (Kind.TIME, "modified"),
    "GPSTimeStamp": (Kind.TIME, "gps_time"),
    "Make": (Kind.DEVICE, "make"),
    "Model": (Kind.DEVICE, "model"),
    "SerialNumber": (Kind.DEVICE, "serial"),
    "BodySerialNumber": (Kind.DEVICE, "serial"),
    "CameraSerialNumber": (Kind.DEVICE, "serial"),
    "LensSerialNumber": (Kind.DEVICE, "lens_serial"),
    "Lens": (Kind.DEVICE, "lens"),
    "LensModel": (Kind.DEVICE, "lens"),
    "LensMake": (Kind.DEVICE, "lens_make"),
    "CreatorTool": (Kind.DEVICE, "software"),
    "Software": (Kind.DEVICE, "software"),
    "creator": (Kind.PEOPLE, "author"),
    "Artist": (Kind.PEOPLE, "artist"),
    "rights": (Kind.PEOPLE, "copyright"),
    "Copyright": (Kind.PEOPLE, "copyright"),
    "Owner": (Kind.PEOPLE, "owner"),
    "OwnerName": (Kind.PEOPLE, "owner"),
    "CameraOwnerName": (Kind.PEOPLE, "owner"),
    "Credit": (Kind.PEOPLE, "credit"),
    "AuthorsPosition": (Kind.PEOPLE, "author_title"),
    "CaptionWriter": (Kind.PEOPLE, "writer"),
    "PersonInImage": (Kind.PEOPLE, "person"),
    "PersonDisplayName": (Kind.PEOPLE, "person"),
    "CiEmailWork": (Kind.PEOPLE, "contact"),
    "CiTelWork": (Kind.PEOPLE, "contact"),
    "CiAdrExtadr": (Kind.PEOPLE, "contact"),
    "CiAdrCity": (Kind.PEOPLE, "contact"),
    "CiUrlWork": (Kind.PEOPLE, "contact"),
    "DocumentID": (Kind.TRACKING, "document_id"),
    "OriginalDocumentID": (Kind.TRACKING, "document_id"),
    "InstanceID": (Kind.TRACKING, "document_id"),
    "documentID": (Kind.TRACKING, "document_id"),
    "instanceID": (Kind.TRACKING, "document_id"),
    "ImageUniqueID": (Kind.TRACKING, "image_id"),
    "TransmissionReference": (Kind.TRACKING, "transmission_reference"),
    "softwareAgent": (Kind.HISTORY, "software"),
    "description": (Kind.DESCRIPTION, "description"),
    "title": (Kind.DESCRIPTION, "title"),
    "subject": (Kind.DESCRIPTION, "keywords"),
    "Headline": (Kind.DESCRIPTION, "headline"),
    "Instructions": (Kind.DESCRIPTION, "instructions"),
    "UserComment": (Kind.DESCRIPTION, "comment"),
    "Label": (Kind.DESCRIPTION, "label"),
}
_PEOPLE_REGION_NAMESPACES = ("regions", "photo/1.2", "faceinfo", "Iptc4xmpExt")
_HIDDEN_PICTURES = {"Data": "embedded picture", "Version": "HDR gain map"}
_PICTURE_NAMESPACES = {
    "http://ns.google.com/photos/1.0/depthmap/": "depth map",
    "http://ns.google.com/photos/1.0/image/": "embedded picture",
    "http://ns.adobe.com/hdr-gain-map/1.0/": "HDR gain map",
}
_MOTION = ("MotionPhoto", "MicroVideo", "MicroVideoOffset", "MotionPhotoVersion")
_HISTORY = ("History", "DocumentAncestors", "DerivedFrom", "Pantry", "Ingredients")
_GPS = re.compile(
    r"^\s*-?(\d+(?:\.\d+)?)(?:,(\d+(?:\.\d+)?))?(?:,(\d+(?:\.\d+)?))?\s*([NSEW])?\s*$"
)


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _properties(root: ET.Element) -> Iterator[tuple[str, str, str, ET.Element | None]]:
    """(namespace, local name, text value, element or None) for every property, flattened."""
    stack: list[ET.Element] = [root]
    count = 0
    while stack and count < MAX_PROPERTIES:
        element = stack.pop()
        for name, value in element.attrib.items():
            ns, local = _split(name)
            if not name.startswith(RDF) and not ns.startswith("http://www.w3.org/XML"):
                count += 1
                yield ns, local, value, None
        ns, local = _split(element.tag)
        is_property = not element.tag.startswith(RDF) and local != "xmpmeta"
        if is_property and len(element) == 0 and element.text and element.text.strip():
            count += 1
            yield ns, local, element.text, element
        elif is_property:
            yield ns, local, "", element
        stack.extend(reversed(list(element)))


def findings(data: bytes, source: str = "XMP") -> list[Finding]:
    if len(data) > MAX_PACKET:
        return [Finding(Kind.OTHER, "xmp", "too large to read", source)]
    from defusedxml import ElementTree as SafeET  # imported only when there is XMP to read
    from defusedxml.common import DefusedXmlException

    start, end = data.find(b"<"), data.rfind(b">")
    try:
        root = SafeET.fromstring(data[start : end + 1])
    except (SafeET.ParseError, DefusedXmlException, ValueError):
        return [Finding(Kind.OTHER, "xmp", "unreadable", source)]
    found: list[Finding] = []
    position: dict[str, str] = {}
    for ns, local, value, element in _properties(root):
        if local in ("GPSLatitude", "GPSLongitude"):
            position[local] = value
        elif element is not None and local in _HISTORY:
            events = sum(1 for child in element.iter() if child.tag == f"{RDF}li")
            found.append(Finding(Kind.HISTORY, "edit_history", str(events or 1), source))
        elif element is not None and element.text is None and len(element):
            continue  # a structure; its leaves are visited on their own
        else:
            found.extend(_classify(ns, local, readable(value), source))
    found.extend(_coordinates(position, source))
    return found


def _classify(ns: str, local: str, value: str, source: str) -> list[Finding]:
    if value.upper().startswith("FBMD"):
        return [Finding(Kind.TRACKING, "facebook_code", value, source)]
    if ns in _PICTURE_NAMESPACES:
        if local in _HIDDEN_PICTURES:
            return [Finding(Kind.HIDDEN_PICTURE, "image", _PICTURE_NAMESPACES[ns], source)]
        return []
    if local in _MOTION:
        return [Finding(Kind.HIDDEN_MEDIA, "motion_photo", "", source)] if value != "0" else []
    if local == "Semantic" and "container" in ns:
        return [Finding(Kind.HIDDEN_PICTURE, "image", value, source)] if value != "Primary" else []
    if local == "Name" and any(part in ns for part in _PEOPLE_REGION_NAMESPACES):
        return [Finding(Kind.PEOPLE, "person", value, source)]
    meaning = _MEANING.get(local)
    if meaning is None:
        return [Finding(Kind.OTHER, local, value, source)] if value else []
    return [Finding(*meaning, value, source)] if value else []


def _coordinates(position: dict[str, str], source: str) -> list[Finding]:
    if not position:
        return []
    lat = _gps_degrees(position.get("GPSLatitude", ""))
    lon = _gps_degrees(position.get("GPSLongitude", ""))
    if lat is None or lon is None:
        return [Finding(Kind.LOCATION, "coordinates", "", source)]
    return [Finding(Kind.LOCATION, "coordinates", f"{lat:.6f}, {lon:.6f}", source, (lat, lon))]


def _gps_degrees(text: str) -> float | None:
    """XMP writes "52,30.5N", "52,30,30N" or a signed decimal."""
    match = _GPS.match(text)
    if not match:
        return None
    degrees, minutes, seconds, ref = match.groups()
    value = float(degrees) + float(minutes or 0) / 60 + float(seconds or 0) / 3600
    if text.strip().startswith("-"):
        value = -value
    return -value if ref in ("S", "W") else value


TIFF_NS = "http://ns.adobe.com/tiff/1.0/"


def orientation(data: bytes) -> int | None:
    """The packet's `tiff:Orientation` (1-8), or None when it has none or an unreadable one.

    For every format that carries XMP: when EXIF has no Orientation tag, the scrubber writes
    this value back as EXIF Orientation, so a photo turned only in XMP stays upright. Cheap when
    the packet does not mention orientation at all (no XML parse).
    """
    if b"Orientation" not in data or len(data) > MAX_PACKET:
        return None
    from defusedxml import ElementTree as SafeET
    from defusedxml.common import DefusedXmlException

    start, end = data.find(b"<"), data.rfind(b">")
    try:
        root = SafeET.fromstring(data[start : end + 1])
    except (SafeET.ParseError, DefusedXmlException, ValueError):
        return None
    for ns, local, value, _ in _properties(root):
        if ns == TIFF_NS and local == "Orientation":
            text = value.strip()
            return int(text) if text in {"1", "2", "3", "4", "5", "6", "7", "8"} else None
    return None
