"""Photoshop image resources (8BIM blocks): they wrap IPTC, EXIF, XMP and a thumbnail."""

import struct
from collections.abc import Iterator

IPTC, THUMBNAIL_OLD, THUMBNAIL, ICC, EXIF, XMP = 0x0404, 0x0409, 0x040C, 0x040F, 0x0422, 0x0424
MAX_RESOURCES = 4096


def resources(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(resource id, payload) pairs; stops quietly at the first broken resource."""
    pos, count = 0, 0
    while pos + 12 <= len(data) and data[pos : pos + 4] == b"8BIM" and count < MAX_RESOURCES:
        count += 1
        (ident,) = struct.unpack_from(">H", data, pos + 4)
        name_length = data[pos + 6]
        pos += 6 + ((name_length + 2) & ~1)  # Pascal string padded to an even length
        if pos + 4 > len(data):
            return
        (size,) = struct.unpack_from(">I", data, pos)
        pos += 4
        if pos + size > len(data):
            return
        yield ident, data[pos : pos + size]
        pos += size + (size & 1)
