"""A bounded reader for TIFF-structured data: EXIF blocks and TIFF files share this layout.
BigTIFF (magic 43: 8-byte counts and offsets, 20-byte entries) is read the same way.

It never follows an offset twice, caps entries and directories, and raises `ValueError` on any
structure that points outside the data, so hostile files cannot loop or read out of bounds.
"""

import struct
from collections.abc import Iterator
from dataclasses import dataclass

MAX_ENTRIES = 1024  # per directory; real files have under 100
MAX_DIRECTORIES = 64

# TIFF field type -> size in bytes of one value.
TYPE_SIZES = {
    **{1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4},
    **{16: 8, 17: 8, 18: 8},  # BigTIFF: LONG8, SLONG8, IFD8
}
_FORMATS = {3: "H", 4: "I", 8: "h", 9: "i", 11: "f", 12: "d", 13: "I", 16: "Q", 17: "q", 18: "Q"}

EXIF_IFD, GPS_IFD, INTEROP_IFD = 0x8769, 0x8825, 0xA005
SUB_IFDS = 0x014A
POINTER_TAGS = {EXIF_IFD: "Exif", GPS_IFD: "GPS", INTEROP_IFD: "Interop"}


@dataclass(frozen=True)
class Entry:
    tag: int
    type: int
    count: int
    offset: int  # where the value bytes start in the data
    size: int  # length of the value bytes


@dataclass(frozen=True)
class Directory:
    name: str  # "IFD0", "IFD1", "Exif", "GPS", "Interop", "SubIFD"
    offset: int
    entries: tuple[Entry, ...]
    next_offset: int


class Ifds:
    """The directories of one TIFF structure, read eagerly with bounds and loop checks."""

    def __init__(self, data: bytes, *, follow_chain: bool = True) -> None:
        if len(data) < 8 or data[:2] not in (b"II", b"MM"):
            raise ValueError("not a TIFF structure")
        self.data = data
        self.order = "<" if data[:2] == b"II" else ">"
        (magic,) = struct.unpack_from(self.order + "H", data, 2)
        self.big = magic == 43
        if self.big:
            header = struct.unpack_from(self.order + "HHQ", data, 4) if len(data) >= 16 else ()
            if header[:2] != (8, 0):
                raise ValueError("unsupported BigTIFF header")
            first = header[2]
        elif magic == 42:
            (first,) = struct.unpack_from(self.order + "I", data, 4)
        else:
            raise ValueError("unsupported TIFF magic")
        # BigTIFF: 8-byte entry count, 20-byte entries with 8-byte values, 8-byte next link
        self.count_size, self.entry_size, self.value_size = (8, 20, 8) if self.big else (2, 12, 4)
        self.directories: list[Directory] = []
        self._seen: set[int] = set()
        chain_name = 0
        offset = first
        while offset:
            directory = self._read(offset, f"IFD{chain_name}")
            self._children(directory)
            if not follow_chain:
                break
            chain_name += 1
            offset = directory.next_offset

    def _read(self, offset: int, name: str) -> Directory:
        if offset in self._seen or len(self._seen) >= MAX_DIRECTORIES:
            raise ValueError("directory loop or too many directories")
        if offset < 8 or offset + self.count_size > len(self.data):
            raise ValueError("directory offset out of range")
        self._seen.add(offset)
        big, o = self.big, self.order
        (count,) = struct.unpack_from(o + ("Q" if big else "H"), self.data, offset)
        end = offset + self.count_size + self.entry_size * count
        if count > MAX_ENTRIES or end + self.value_size > len(self.data):
            raise ValueError("directory out of range")
        entries = []
        for i in range(count):
            pos = offset + self.count_size + self.entry_size * i
            tag, typ, n = struct.unpack_from(o + ("HHQ" if big else "HHI"), self.data, pos)
            size = TYPE_SIZES.get(typ, 1) * n
            value = pos + (12 if big else 8)
            if size <= self.value_size:
                value_at = value
            else:
                (value_at,) = struct.unpack_from(o + ("Q" if big else "I"), self.data, value)
                if value_at + size > len(self.data):
                    raise ValueError("value out of range")
            entries.append(Entry(tag, typ, n, value_at, size))
        (next_offset,) = struct.unpack_from(o + ("Q" if big else "I"), self.data, end)
        directory = Directory(name, offset, tuple(entries), next_offset)
        self.directories.append(directory)
        return directory

    def _children(self, directory: Directory) -> None:
        for entry in directory.entries:
            if entry.tag in POINTER_TAGS or entry.tag == SUB_IFDS:
                name = POINTER_TAGS.get(entry.tag, "SubIFD")
                for child in self.ints(entry):
                    if child:
                        self._children(self._read(child, name))

    def end(self, directory: Directory) -> int:
        """Where a directory's entries and next-directory link end."""
        entries = self.count_size + self.entry_size * len(directory.entries)
        return directory.offset + entries + self.value_size

    def raw(self, entry: Entry) -> bytes:
        return self.data[entry.offset : entry.offset + entry.size]

    def ints(self, entry: Entry) -> tuple[int, ...]:
        code = _FORMATS.get(entry.type)
        if entry.type in (1, 7):
            return tuple(self.raw(entry))
        if entry.type == 6:
            return struct.unpack(f"{entry.count}b", self.raw(entry))
        if code is None or code in "fd":
            return ()
        return struct.unpack(f"{self.order}{entry.count}{code}", self.raw(entry))

    def rationals(self, entry: Entry) -> tuple[float, ...]:
        if entry.type not in (5, 10):
            return tuple(float(v) for v in self.ints(entry))
        code = "I" if entry.type == 5 else "i"
        parts = struct.unpack(f"{self.order}{2 * entry.count}{code}", self.raw(entry))
        return tuple(a / b if b else 0.0 for a, b in zip(parts[::2], parts[1::2], strict=True))

    def text(self, entry: Entry) -> str:
        raw = self.raw(entry)
        if entry.tag in (0x9C9B, 0x9C9C, 0x9C9D, 0x9C9E, 0x9C9F):  # Windows XP tags: UTF-16LE
            return raw.decode("utf-16-le", "replace").rstrip("\0").strip()
        if entry.tag == 0x9286 and raw[:8] in (b"ASCII\0\0\0", b"UNICODE\0", b"\0" * 8):
            codec = "utf-16-be" if raw[:8] == b"UNICODE\0" else "utf-8"
            if raw[:8] == b"UNICODE\0" and self.order == "<":
                codec = "utf-16-le"
            return raw[8:].decode(codec, "replace").rstrip("\0").strip()
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()

    def find(self, name: str, tag: int) -> Entry | None:
        for directory in self.directories:
            if directory.name == name:
                for entry in directory.entries:
                    if entry.tag == tag:
                        return entry
        return None

    def all_entries(self) -> Iterator[tuple[Directory, Entry]]:
        for directory in self.directories:
            for entry in directory.entries:
                yield directory, entry
