"""ICC colour profiles, every format: parsed (bounded) and rebuilt with only their colour data.

What a profile can carry besides colour data (ICC.1:2022):
- header: preferred CMM, creation date, platform, flags, device maker and model, device
  attributes, creator, and reserved bytes;
- text tags: description (`desc`), copyright (`cprt`), device maker and model descriptions
  (`dmnd`, `dmdd`), viewing conditions descriptions, `meta` dictionaries, calibration and
  target data, colorant and named-colour tables (with names), and private tags of any size;
- any bytes between, after or inside tags that no field accounts for.

How we remove it: `clean(profile)` writes a new profile from the parsed fields. The header
keeps version, device class, colour space, PCS and rendering intent, with the PCS illuminant
set to D50 and everything else zeroed; the profile ID is recomputed (MD5 over the profile with
flags, intent and ID zeroed, ICC.1:2022 7.2.18) for version 4 and zeroed for version 2. Only
the tags that change how colours render are kept (`RENDERING_TAGS`; the RGB shaper only in RGB
profiles, `kTRC` only in grey ones), each of a type its signature allows (`TAG_TYPES`) and
re-serialised from its parsed fields; tags with identical data share it, in signature order. A
neutral description is added ('mluc' for version 4, 'desc' for version 2). `is_canonical(profile)`
says whether a profile is exactly what `clean` writes, which `bot.scrub.verify` requires.

A profile we cannot parse is replaced by the standard profile it claims to be (sRGB, Display
P3) or, when its header or tag table is broken so that decoders ignore it anyway, dropped.
A profile whose colour tags we cannot rebuild, and which claims no standard space, is refused.
"""

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from bot.errors import DamagedImage

HEADER = 128
MAX_PROFILE = 16 * 1024 * 1024  # a JPEG holds at most 255 chunks of 64 KiB; printer profiles ~4 MB
MAX_TAGS = 512  # real profiles have fewer than 50
MAX_CURVE = 65_536  # entries of one sampled curve
MAX_CHANNELS = 15  # the most colour channels ICC allows (15CLR)
D50 = bytes.fromhex("0000f6d6 00010000 0000d32d")  # the PCS illuminant, as s15Fixed16 XYZ
NEUTRAL_NAME = "ICC Profile"
IDENTITY = b"".join(struct.pack(">i", v) for v in (65536, 0, 0, 0, 65536, 0, 0, 0, 65536))
CLASSES = frozenset({b"scnr", b"mntr", b"prtr", b"link", b"spac", b"abst", b"nmcl"})
SPACES = frozenset(
    {b"XYZ ", b"Lab ", b"Luv ", b"YCbr", b"Yxy ", b"RGB ", b"GRAY", b"HSV ", b"HLS ", b"CMYK"}
    | {b"CMY "}
    | {f"{n:X}CLR".encode() for n in range(2, 16)}
)

# The tags that change how colours render, kept (rebuilt); every other tag is dropped.
RENDERING_TAGS = frozenset(
    {
        b"A2B0",
        b"A2B1",
        b"A2B2",
        b"B2A0",
        b"B2A1",
        b"B2A2",
        b"rXYZ",
        b"gXYZ",
        b"bXYZ",
        b"rTRC",
        b"gTRC",
        b"bTRC",
        b"kTRC",
        b"wtpt",
        b"bkpt",
        b"chad",
        b"chrm",
        b"lumi",
        b"cicp",
    }
)
# The tag types each kept tag may have (ICC.1:2022 section 9, as littleCMS reads them): a tag of
# another type is one we cannot rebuild (and littleCMS cannot read): `BadProfile`, as for an
# unknown type, so whatever it holds never reaches the output.
_XYZ, _CURVE = frozenset({b"XYZ "}), frozenset({b"curv", b"para"})
TAG_TYPES: dict[bytes, frozenset[bytes]] = {
    **{sig: frozenset({b"mft1", b"mft2", b"mAB "}) for sig in (b"A2B0", b"A2B1", b"A2B2")},
    **{sig: frozenset({b"mft1", b"mft2", b"mBA "}) for sig in (b"B2A0", b"B2A1", b"B2A2")},
    **{sig: _XYZ for sig in (b"rXYZ", b"gXYZ", b"bXYZ", b"wtpt", b"bkpt", b"lumi")},
    **{sig: _CURVE for sig in (b"rTRC", b"gTRC", b"bTRC", b"kTRC")},
    b"chad": frozenset({b"sf32"}),
    b"chrm": frozenset({b"chrm"}),
    b"cicp": frozenset({b"cicp"}),
}
# Tags only one colour space uses: the matrix/TRC shaper (RGB) and the grey curve (GRAY). In
# another space no decoder reads them, and a curve can hold 128 KiB of anything.
SPACE_TAGS = {
    **{sig: b"RGB " for sig in (b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC")},
    b"kTRC": b"GRAY",
}
# Float LUTs (multiProcessElementType) take precedence over A2B/B2A in littleCMS; we do not
# rebuild them, and dropping them would change colours, so a profile with them is not rebuilt.
FLOAT_LUT_TAGS = frozenset(
    {b"D2B0", b"D2B1", b"D2B2", b"D2B3", b"B2D0", b"B2D1", b"B2D2", b"B2D3"}
)
# Tags whose text says who or what made the profile: reported as findings, then dropped.
NAMING_TAGS = (b"desc", b"cprt", b"dmnd", b"dmdd")


class BadProfile(ValueError):
    """The profile's structure or one of its colour tags cannot be read."""


class BrokenTable(BadProfile):
    """The header or tag table is broken: decoders ignore such a profile."""


@dataclass(frozen=True)
class Profile:
    header: bytes  # the 128 header bytes as found
    tags: tuple[tuple[bytes, bytes], ...]  # (signature, raw data) in table order, first of repeats

    @property
    def version(self) -> int:
        return self.header[8]

    def tag(self, signature: bytes) -> bytes | None:
        return next((data for sig, data in self.tags if sig == signature), None)


def parse(profile: bytes) -> Profile:
    """Header and tag table, bounded; raises BrokenTable when they do not hold together."""
    if not HEADER + 4 <= len(profile) <= MAX_PROFILE:
        raise BrokenTable("size")
    (size,) = struct.unpack_from(">I", profile, 0)
    if profile[36:40] != b"acsp" or not HEADER + 4 <= size <= len(profile):
        raise BrokenTable("header")
    (count,) = struct.unpack_from(">I", profile, HEADER)
    if count > MAX_TAGS or HEADER + 4 + 12 * count > size:
        raise BrokenTable("tag table")
    tags: list[tuple[bytes, bytes]] = []
    seen: set[bytes] = set()
    for i in range(count):
        sig, offset, length = struct.unpack_from(">4sII", profile, HEADER + 4 + 12 * i)
        if offset < HEADER + 4 + 12 * count or offset + length > size:
            raise BrokenTable("tag outside the profile")
        if sig not in seen:
            seen.add(sig)
            tags.append((sig, profile[offset : offset + length]))
    return Profile(profile[:HEADER], tuple(tags))


def clean(profile: bytes) -> bytes | None:
    """The profile rebuilt with only its colour data; None when it is best dropped.

    Raises DamagedImage when the profile's colours cannot be kept and it claims no standard
    space: dropping it would change the picture's colours.
    """
    return _clean(bytes(profile))


def _clean(profile: bytes) -> bytes | None:
    # Not cached on purpose: a profile is part of a user's file and must not outlive the request
    # (it may name a person); rebuilding a typical 0.5-4 KB profile takes about 50 microseconds.
    try:
        return rebuild(parse(profile))
    except BrokenTable:
        standard = _claimed_standard(profile)
        return standard() if standard else None
    except BadProfile as error:
        names = named(profile)  # the table is sound: the description says what it claims
        standard = _claimed_standard(names[0].encode("utf-8")) if names else None
        if standard is None:
            raise DamagedImage(
                "The picture's colour profile is damaged, so its colours cannot be kept."
            ) from error
        return standard()


def is_canonical(profile: bytes) -> bool:
    """True when `profile` is exactly what `clean` writes (a fixed point of it)."""
    try:
        return _clean(bytes(profile)) == profile
    except DamagedImage:
        return False


def rebuild(parsed: Profile) -> bytes:
    """A new profile from the parsed fields: normalised header, rendering tags, neutral name."""
    version = parsed.version
    if not 2 <= version <= 4:
        raise BadProfile("version")
    cls, space, pcs = parsed.header[12:16], parsed.header[16:20], parsed.header[20:24]
    if cls not in CLASSES or space not in SPACES or pcs not in SPACES:
        raise BadProfile("class or colour space")
    if any(sig in FLOAT_LUT_TAGS for sig, _ in parsed.tags):
        raise BadProfile("float LUTs")
    tags = []
    for sig, data in parsed.tags:
        if sig not in RENDERING_TAGS or SPACE_TAGS.get(sig, space) != space:
            continue
        if data[:4] not in TAG_TYPES[sig]:
            raise BadProfile("tag type")
        rebuilt = _tag(sig, data, _channels(space))
        if rebuilt is not None:
            tags.append((sig, rebuilt))
    if not tags:
        raise BadProfile("no colour data")
    tags.append((b"desc", _description(version)))
    tags.sort()
    table_end = HEADER + 4 + 12 * len(tags)
    body = bytearray()
    where: dict[bytes, int] = {}
    entries = []
    for sig, data in tags:
        if data not in where:
            where[data] = table_end + len(body)
            body += data + b"\0" * (-len(data) % 4)
        entries.append(struct.pack(">4sII", sig, where[data], len(data)))
    size = table_end + len(body)
    header = _header(parsed.header, size)
    out = bytearray(header + struct.pack(">I", len(tags)) + b"".join(entries) + body)
    if version >= 4:
        out[84:100] = _profile_id(bytes(out))
    return bytes(out)


def _profile_id(profile: bytes) -> bytes:
    """MD5 of the profile with flags (44-47), rendering intent (64-67) and ID (84-99) zeroed."""
    zeroed = bytearray(profile)
    zeroed[44:48] = zeroed[64:68] = b"\0" * 4
    zeroed[84:100] = b"\0" * 16
    import hashlib  # here: OpenSSL's start-up costs a CLI run 2 ms, and few files need it

    return hashlib.md5(zeroed, usedforsecurity=False).digest()


def _header(found: bytes, size: int) -> bytes:
    """Size, version, class, colour space, PCS and intent kept; D50; all else zero."""
    (intent,) = struct.unpack_from(">I", found, 64)
    out = bytearray(HEADER)
    struct.pack_into(">I", out, 0, size)
    out[8] = found[8]  # major version
    out[9] = found[9] & 0xF0  # minor version; the bug-fix version changes nothing we keep
    out[12:24] = found[12:24]  # device class, colour space, PCS
    out[36:40] = b"acsp"
    struct.pack_into(">I", out, 64, intent if intent <= 3 else 0)
    out[68:80] = D50
    return bytes(out)


def _description(version: int) -> bytes:
    """A neutral description: 'mluc' (en-US) for version 4, 'desc' for version 2."""
    text = NEUTRAL_NAME.encode("utf-16-be")
    if version >= 4:
        return (
            b"mluc\0\0\0\0" + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(text), 28) + text
        )
    ascii_ = NEUTRAL_NAME.encode("ascii") + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_)) + ascii_ + b"\0" * (8 + 3 + 67)


# --- tag types: each rebuilt from its fields at its specified length ---


# Tags whose array type holds a fixed number of values: the rest of a longer tag is dropped.
_COUNTS = {b"chad": 9}  # s15Fixed16 values of the 3x3 adaptation matrix; XYZ tags hold one


def _channels(space: bytes) -> int:
    """How many channels a colour space has (ICC.1:2022 table 19)."""
    if space.endswith(b"CLR"):
        return int(space[:1], 16)
    return {b"GRAY": 1, b"CMYK": 4}.get(space, 3)


def _tag(signature: bytes, data: bytes, channels: int) -> bytes | None:
    """The tag rebuilt; None when its values are ones no decoder uses (the tag is dropped)."""
    if len(data) < 8:
        raise BadProfile("tag too short")
    kind = data[:4]
    if signature == b"lumi":  # luminance: only Y means anything (ICC.1:2022 9.2.32)
        _need(data, 20)
        return b"XYZ \0\0\0\0\0\0\0\0" + data[12:16] + b"\0\0\0\0"
    if kind == b"chrm":
        return _chrm(data, channels)
    if kind == b"cicp":
        return _cicp(data)
    if kind == b"XYZ ":
        return _array(data, 12, 1)
    if kind == b"sf32":
        return _array(data, 4, _COUNTS.get(signature, 0))
    writer = _TYPES.get(kind)
    if writer is None:
        raise BadProfile("unknown tag type")
    return writer(data)


def _array(data: bytes, item: int, count: int) -> bytes:
    """An XYZType or s15Fixed16ArrayType: `count` items (0: as many as fit)."""
    count = count or (len(data) - 8) // item
    if count < 1 or 8 + item * count > len(data):
        raise BadProfile("array too short")
    return data[:4] + b"\0\0\0\0" + data[8 : 8 + item * count]


def _curv(data: bytes) -> bytes:
    return _curve_at(data, 0)[0]


_PARA_PARAMS = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}


def _para(data: bytes) -> bytes:
    return _curve_at(data, 0)[0]


def _curve_at(data: bytes, pos: int) -> tuple[bytes, int]:
    """A 'curv' or 'para' element at `pos`: (rebuilt bytes, length in the source)."""
    _need(data, pos + 12)
    kind = data[pos : pos + 4]
    if kind == b"curv":
        (count,) = struct.unpack_from(">I", data, pos + 8)
        if count > MAX_CURVE:
            raise BadProfile("curve too long")
        end = pos + 12 + 2 * count
        _need(data, end)
        return b"curv\0\0\0\0" + data[pos + 8 : end], end - pos
    if kind == b"para":
        (function,) = struct.unpack_from(">H", data, pos + 8)
        if function not in _PARA_PARAMS:
            raise BadProfile("parametric curve type")
        end = pos + 12 + 4 * _PARA_PARAMS[function]
        _need(data, end)
        return b"para\0\0\0\0" + data[pos + 8 : pos + 10] + b"\0\0" + data[pos + 12 : end], (
            end - pos
        )
    raise BadProfile("curve type")


def _chrm(data: bytes, channels: int) -> bytes | None:
    """Chromaticities: one x, y pair per channel of the colour space and a colorant type 0-4
    (ICC.1:2022 10.2); any other count or type is dropped (no CMM renders with this tag)."""
    _need(data, 12)
    count, colorants = struct.unpack_from(">HH", data, 8)
    end = 12 + 8 * channels
    if count != channels or colorants > 4:
        return None
    _need(data, end)
    return b"chrm\0\0\0\0" + data[8:end]


# ITU-T H.273 code points a picture can have: colour primaries, transfer characteristics; the
# ICC cicp tag requires matrix coefficients 0 (RGB) and a range flag of 0 or 1 (ICC.1:2022 10.3).
_CICP_PRIMARIES = frozenset({1, *range(4, 13), 22})
_CICP_TRANSFERS = frozenset({1, *range(4, 19)})


def _cicp(data: bytes) -> bytes | None:
    _need(data, 12)
    primaries, transfer, matrix, full_range = data[8:12]
    if (
        primaries not in _CICP_PRIMARIES
        or transfer not in _CICP_TRANSFERS
        or matrix != 0
        or full_range > 1
    ):
        return None
    return b"cicp\0\0\0\0" + data[8:12]


def _lut(data: bytes, precision: int) -> bytes:
    """lut8Type ('mft1') or lut16Type ('mft2'): matrix, input tables, CLUT, output tables."""
    _need(data, 48)
    inputs, outputs, grid = data[8], data[9], data[10]
    if not (1 <= inputs <= MAX_CHANNELS and 1 <= outputs <= MAX_CHANNELS and grid >= 2):
        raise BadProfile("lut channels")
    if precision == 1:
        in_entries = out_entries = 256
        start = 48
    else:
        _need(data, 52)
        in_entries, out_entries = struct.unpack_from(">HH", data, 48)
        if not (2 <= in_entries <= 4096 and 2 <= out_entries <= 4096):
            raise BadProfile("lut table size")
        start = 52
    points = _grid_points([grid] * inputs, len(data))
    end = start + precision * (inputs * in_entries + points * outputs + outputs * out_entries)
    _need(data, end)
    kind = b"mft1" if precision == 1 else b"mft2"
    # The matrix applies to three input channels only; otherwise it is unused: identity.
    matrix = data[12:48] if inputs == 3 else IDENTITY
    return kind + b"\0\0\0\0" + data[8:11] + b"\0" + matrix + data[48:end]


def _grid_points(grid: list[int], limit: int) -> int:
    points = 1
    for n in grid:
        points *= n
        if points > limit:
            raise BadProfile("CLUT larger than the profile")
    return points


def _lut_ab(data: bytes) -> bytes:
    """lutAtoBType ('mAB ') / lutBtoAType ('mBA '): elements rebuilt in a fixed order."""
    _need(data, 32)
    kind = data[:4]
    inputs, outputs = data[8], data[9]
    if not (1 <= inputs <= MAX_CHANNELS and 1 <= outputs <= MAX_CHANNELS):
        raise BadProfile("lut channels")
    b_at, matrix_at, m_at, clut_at, a_at = struct.unpack_from(">5I", data, 12)
    # 'mAB ': A curves (inputs), CLUT, M curves, matrix, B curves (outputs); 'mBA ' reversed.
    a_count, b_count = (inputs, outputs) if kind == b"mAB " else (outputs, inputs)
    elements: list[tuple[int, bytes]] = []  # (header slot, rebuilt element)
    if b_at == 0:
        raise BadProfile("lut without B curves")
    elements.append((0, _curves(data, b_at, b_count)))
    if matrix_at:
        if b_count != 3:
            raise BadProfile("matrix needs three channels")
        _need(data, matrix_at + 48)
        elements.append((1, data[matrix_at : matrix_at + 48]))
    if m_at:
        elements.append((2, _curves(data, m_at, b_count)))
    if clut_at:
        elements.append((3, _clut(data, clut_at, inputs, outputs)))
    if a_at:
        elements.append((4, _curves(data, a_at, a_count)))
    offsets = [0] * 5
    body = bytearray()
    for slot, element in elements:
        offsets[slot] = 32 + len(body)
        body += element + b"\0" * (-len(element) % 4)
    head = kind + b"\0\0\0\0" + bytes((inputs, outputs)) + b"\0\0" + struct.pack(">5I", *offsets)
    return head + bytes(body)


def _curves(data: bytes, pos: int, count: int) -> bytes:
    out = bytearray()
    for _ in range(count):
        curve, length = _curve_at(data, pos)
        out += curve + b"\0" * (-len(curve) % 4)
        pos += length + (-length % 4)
    return bytes(out)


def _clut(data: bytes, pos: int, inputs: int, outputs: int) -> bytes:
    _need(data, pos + 20)
    grid = list(data[pos : pos + inputs])
    precision = data[pos + 16]
    if precision not in (1, 2) or any(n < 2 for n in grid) or any(data[pos + inputs : pos + 16]):
        raise BadProfile("CLUT header")
    end = pos + 20 + precision * outputs * _grid_points(grid, len(data))
    _need(data, end)
    return bytes(grid).ljust(16, b"\0") + bytes((precision, 0, 0, 0)) + data[pos + 20 : end]


def _need(data: bytes, end: int) -> None:
    if end > len(data):
        raise BadProfile("tag data ends early")


_TYPES: dict[bytes, Callable[[bytes], bytes]] = {
    b"curv": _curv,
    b"para": _para,
    b"mft1": lambda data: _lut(data, 1),
    b"mft2": lambda data: _lut(data, 2),
    b"mAB ": _lut_ab,
    b"mBA ": _lut_ab,
}


# --- what a profile names, for the findings ---


def named(profile: bytes) -> tuple[str, ...]:
    """The texts a profile carries (description, copyright, device maker and model).

    Empty for a profile this code wrote. When the tag table is broken, the text tags are
    looked for by their type signatures instead. Bounded; never raises.
    """
    profile = bytes(profile)
    try:
        parsed = parse(profile)
        texts = [_text(data) for sig in NAMING_TAGS if (data := parsed.tag(sig))]
    except BadProfile:
        texts = [_text(profile[pos:]) for pos in _text_tags(profile[:MAX_SCANNED])]
    found: list[str] = []
    for text in texts:
        if text and text != NEUTRAL_NAME and text not in found:
            found.append(text)
    return tuple(found)


MAX_SCANNED = 256 * 1024  # bytes of a broken profile searched for its text tags
MAX_TEXTS = 8


def _text_tags(profile: bytes) -> list[int]:
    """Where text tags ('desc', 'text', 'mluc' with zero reserved bytes) start, in order."""
    found: list[int] = []
    for kind in (b"desc\0\0\0\0", b"text\0\0\0\0", b"mluc\0\0\0\0"):
        pos = profile.find(kind)
        while pos >= 0 and len(found) < MAX_TEXTS:
            found.append(pos)
            pos = profile.find(kind, pos + 1)
    return sorted(found)


def _text(data: bytes) -> str:
    """The first string of a 'desc', 'text' or 'mluc' tag, cut to 200 characters."""
    kind = data[:4]
    raw = ""
    try:
        if kind == b"text":
            raw = data[8:].split(b"\0", 1)[0].decode("latin-1")
        elif kind == b"desc":
            (count,) = struct.unpack_from(">I", data, 8)
            raw = data[12 : 12 + min(count, 1024)].split(b"\0", 1)[0].decode("latin-1")
        elif kind == b"mluc":
            (records,) = struct.unpack_from(">I", data, 8)
            if records:
                length, offset = struct.unpack_from(">II", data, 20)
                raw = data[offset : offset + min(length, 2048)].decode("utf-16-be", "replace")
    except (struct.error, UnicodeDecodeError):
        return ""
    return "".join(c for c in raw if c.isprintable()).strip()[:200]


# --- standard profiles a damaged one may claim to be ---


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def _matrix_profile(primaries: tuple[tuple[float, float, float], ...]) -> bytes:
    """A version 4 display profile: D50 white, Bradford `chad` from D65, sRGB curves."""
    srgb_curve = b"para\0\0\0\0\0\x03\0\0" + b"".join(
        _s15(v) for v in (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
    )
    chad = (1.047882, 0.022918, -0.050217, 0.029586, 0.990478, -0.017075, -0.009247, 0.015075)
    tags = [
        (b"wtpt", _xyz_tag(0.964203, 1.0, 0.824905)),
        (b"chad", b"sf32\0\0\0\0" + b"".join(_s15(v) for v in (*chad, 0.751678))),
        (b"rXYZ", _xyz_tag(*primaries[0])),
        (b"gXYZ", _xyz_tag(*primaries[1])),
        (b"bXYZ", _xyz_tag(*primaries[2])),
        (b"rTRC", srgb_curve),
        (b"gTRC", srgb_curve),
        (b"bTRC", srgb_curve),
    ]
    header = bytearray(HEADER)
    header[8] = 4
    header[9] = 0x30
    header[12:24] = b"mntrRGB XYZ "
    header[36:40] = b"acsp"
    return rebuild(Profile(bytes(header), tuple(tags)))


@lru_cache(maxsize=1)
def srgb() -> bytes:
    """sRGB IEC 61966-2.1 as a matrix/TRC profile (D50-adapted primaries)."""
    return _matrix_profile(
        (
            (0.436066, 0.222488, 0.013916),
            (0.385147, 0.716873, 0.097076),
            (0.143066, 0.060608, 0.714096),
        )
    )


@lru_cache(maxsize=1)
def display_p3() -> bytes:
    """Display P3 (P3 primaries, D65 white, sRGB curves) as a matrix/TRC profile."""
    return _matrix_profile(
        (
            (0.515102, 0.241182, -0.001050),
            (0.291965, 0.692236, 0.041882),
            (0.157153, 0.066582, 0.784378),
        )
    )


def _claimed_standard(profile: bytes) -> Callable[[], bytes] | None:
    """The standard profile a damaged one names itself as, from its description or raw bytes."""
    head = profile[: 64 * 1024]
    lowered = head.replace(b"\0", b"").lower()  # UTF-16 text too
    if b"display p3" in lowered or (b"p3" in lowered and b"d65" in lowered):
        return display_p3  # Apple's name, or Samsung's "DCI-P3 D65 Gamut with sRGB Transfer"
    if b"srgb" in lowered or b"iec61966-2" in lowered:
        return srgb
    return None
