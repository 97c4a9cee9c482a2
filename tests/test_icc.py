"""ICC profiles: rebuilt with only their colour data, judged by littleCMS (Pillow's ImageCms).

Every profile here is either a real one from the corpus or built by the test itself, with codes
planted in every place a profile can hide bytes; the judge for colours is littleCMS, which reads
the original and the rebuilt profile independently of our parser.
"""

import functools
import gc
import hashlib
import io
import os
import random
import struct
import time
import types
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from bot import scrub
from bot.errors import DamagedImage
from bot.formats import icc
from bot.formats.base import BlockKind
from tests.conftest import corpus_files

SRGB = ImageCms.createProfile("sRGB")
# A dense RGB grid: 64 levels per channel, every combination (262,144 colours).
GRID = Image.frombytes(
    "RGB",
    (64 * 64, 64),
    bytes(
        v
        for r in range(0, 256, 4)
        for g in range(0, 256, 4)
        for b in range(0, 256, 4)
        for v in (r, g, b)
    ),
)
GREY = Image.frombytes("L", (256, 1), bytes(range(256)))
CMYK_GRID = Image.frombytes(
    "CMYK",
    (16 * 16 * 16, 16),
    bytes(
        v
        for c in range(0, 256, 17)
        for m in range(0, 256, 17)
        for y in range(0, 256, 17)
        for k in range(0, 256, 17)
        for v in (c, m, y, k)
    ),
)


@functools.cache
def _corpus_profile_files() -> dict[bytes, Path]:
    """Each distinct colour profile embedded in a corpus photo, with the first file holding it."""
    found: dict[bytes, Path] = {}
    for path in corpus_files("jpeg", "png", "webp", "gif", "tiff", "heic", "other"):
        data = path.read_bytes()
        try:
            fmt = scrub.sniff(data)
            parsed = fmt.parse(data)
        except Exception:  # noqa: S112 - unreadable samples are other tests' business
            continue
        for block in parsed.blocks:
            if block.kind is BlockKind.ICC and block.data:
                found.setdefault(block.data, path)
    return found


def _corpus_profiles() -> list[object]:
    found = _corpus_profile_files()
    if not found:
        return [pytest.param(b"", marks=pytest.mark.skip(reason="no corpus profiles"))]
    return [pytest.param(p, id=f"{path.parent.name}/{path.name}") for p, path in found.items()]


def _cms(profile: bytes) -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(io.BytesIO(profile))


def _rendered(profile: bytes, intent: int, inverse: bool = False) -> bytes:
    """The grid transformed from `profile` to sRGB (or from sRGB to `profile`)."""
    mode, grid = {b"GRAY": ("L", GREY), b"CMYK": ("CMYK", CMYK_GRID)}.get(
        profile[16:20], ("RGB", GRID)
    )
    source, target = (SRGB, _cms(profile)) if inverse else (_cms(profile), SRGB)
    transform = ImageCms.buildTransform(
        source, target, "RGB" if inverse else mode, mode if inverse else "RGB", intent
    )
    return ImageCms.applyTransform(GRID if inverse else grid, transform).tobytes()


def assert_same_colours(original: bytes, rebuilt: bytes, *, inverse: bool = False) -> None:
    for intent in range(4):
        assert _rendered(rebuilt, intent) == _rendered(original, intent), intent
        if inverse:
            assert _rendered(rebuilt, intent, True) == _rendered(original, intent, True), intent


def assert_absent(codes: list[bytes], data: bytes) -> None:
    for code in codes:
        assert code not in data
        assert code.decode("ascii").encode("utf-16-be") not in data


@pytest.mark.parametrize("profile", _corpus_profiles())
def test_corpus_profiles_keep_their_colours_and_lose_their_names(profile: bytes) -> None:
    rebuilt = icc.clean(profile)
    assert rebuilt is not None
    assert_same_colours(profile, rebuilt, inverse=True)
    assert icc.is_canonical(rebuilt)
    assert not icc.is_canonical(profile)
    assert_packed(rebuilt)
    assert icc.clean(rebuilt) == rebuilt
    names = icc.named(profile)
    assert names  # every real profile names itself or its maker
    assert icc.named(rebuilt) == ()
    for name in names:
        assert name.encode("latin-1", "replace") not in rebuilt
        assert name.encode("utf-16-be") not in rebuilt
    header = rebuilt[:128]
    assert header[4:8] + header[24:36] + header[40:64] + header[80:84] == bytes(4 + 12 + 24 + 4)
    assert header[100:] == bytes(28)


def test_the_profile_of_a_pixel_phone_names_google() -> None:
    pixel = [p for p in corpus_files("jpeg") if p.name == "pixel_8.jpg"]
    if not pixel:
        pytest.skip("corpus absent")
    (block,) = [b for b in scrub.inspect(pixel[0].read_bytes()).parsed.blocks if b.kind == "icc"]
    assert any("Google" in text for text in icc.named(block.data))


# --- profiles the test builds, with codes planted wherever a profile can hide bytes ---


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float, extra: bytes = b"") -> bytes:
    return b"XYZ " + extra[:4].ljust(4, b"\0") + _s15(x) + _s15(y) + _s15(z) + extra[4:]


def _text(kind: bytes, text: bytes) -> bytes:
    if kind == b"mluc":
        utf16 = text.decode().encode("utf-16-be")
        return (
            b"mluc\0\0\0\0" + struct.pack(">II2s2sII", 1, 12, b"de", b"DE", len(utf16), 28) + utf16
        )
    if kind == b"desc":
        return b"desc\0\0\0\0" + struct.pack(">I", len(text) + 1) + text + b"\0" + bytes(78)
    return b"text\0\0\0\0" + text + b"\0"


def _profile(
    tags: list[tuple[bytes, bytes]],
    *,
    version: int = 4,
    space: bytes = b"RGB ",
    pcs: bytes = b"XYZ ",
    cls: bytes = b"mntr",
    header_codes: dict[int, bytes] | None = None,
    gap: bytes = b"",
    tail: bytes = b"",
) -> bytes:
    """A profile laid out as a careless (or hostile) writer might: `gap` after every tag."""
    table = 128 + 4 + 12 * len(tags)
    body, entries = bytearray(), []
    for sig, data in tags:
        entries.append(struct.pack(">4sII", sig, table + len(body), len(data)))
        body += data + b"\0" * (-len(data) % 4) + gap
    body += tail
    header = bytearray(128)
    struct.pack_into(">I", header, 0, table + len(body))
    header[8:10] = bytes((version, 0x20 if version == 2 else 0x30))
    header[12:24] = cls + space + pcs
    header[36:40] = b"acsp"
    header[68:80] = icc.D50
    for offset, code in (header_codes or {}).items():
        header[offset : offset + len(code)] = code
    return bytes(header) + struct.pack(">I", len(tags)) + b"".join(entries) + bytes(body)


def _codes(seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    return [f"K{rng.randrange(16**7):07X}".encode() for _ in range(n)]


def _matrix_tags(codes: list[bytes], gamma: float = 2.2) -> list[tuple[bytes, bytes]]:
    curve = b"curv" + codes[0][:4] + struct.pack(">IH", 1, round(gamma * 256)) + codes[1]
    para = (
        b"para\0\0\0\0"
        + struct.pack(">HH", 3, 0x4B31)
        + b"".join(_s15(v) for v in (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045))
    )
    return [
        (b"wtpt", _xyz(0.9642, 1.0, 0.8249, codes[2][:4] + codes[2])),
        (b"rXYZ", _xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", _xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", _xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", curve),
        (b"gTRC", para),
        (b"bTRC", curve),
        (
            b"chad",
            b"sf32\0\0\0\0" + b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1)) + codes[3],
        ),
    ]


@pytest.mark.parametrize("version", [2, 4])
def test_planted_codes_leave_the_profile_and_colours_stay(version: int) -> None:
    codes = _codes(version, 16)
    text = b"mluc" if version == 4 else b"desc"
    tags = [
        *_matrix_tags(codes),
        (b"desc", _text(text, b"Calibrated by " + codes[4])),
        (b"cprt", _text(b"text" if version == 2 else b"mluc", codes[5])),
        (b"dmnd", _text(text, codes[6])),
        (b"dmdd", _text(text, codes[7])),
        (b"ZZZZ", b"ZZZZ\0\0\0\0" + codes[8]),  # a private tag
        (b"meta", b"dict\0\0\0\0" + codes[9]),
        (b"targ", _text(b"text", codes[10])),
    ]
    header_codes = {
        4: codes[11][:4],  # preferred CMM
        24: codes[12][:8] + b"\0\x01\0\x01",  # date
        40: b"APPL",  # platform
        44: b"\xff\xff\xff\xff",  # flags
        48: codes[13][:8],  # device maker and model
        56: codes[14][:8],  # device attributes
        80: codes[15][:4],  # creator
        84: codes[15] + codes[14][:8],  # profile ID
        68: codes[10][:4] + codes[9],  # PCS illuminant (the specification says D50)
        100: codes[13] + codes[12] + codes[11][:4],  # reserved
    }
    profile = _profile(
        tags, version=version, header_codes=header_codes, gap=codes[0], tail=codes[1] * 3
    )
    rebuilt = icc.clean(profile)
    assert rebuilt is not None
    assert_same_colours(profile, rebuilt, inverse=True)
    assert_absent([c[:4] for c in codes[9:]] + codes, rebuilt)
    assert_packed(rebuilt)
    assert icc.is_canonical(rebuilt)
    assert {b"Calibrated by " + codes[4], codes[5], codes[6], codes[7]} == {
        n.encode() for n in icc.named(profile)
    }
    kept = [sig for sig, _ in icc.parse(rebuilt).tags]
    assert kept == sorted(
        [b"bTRC", b"bXYZ", b"chad", b"desc", b"gTRC", b"gXYZ", b"rTRC", b"rXYZ", b"wtpt"]
    )


def test_version_4_profile_id_is_the_md5_of_the_spec() -> None:
    rebuilt = icc.clean(_profile(_matrix_tags(_codes(1, 4)), header_codes={64: b"\0\0\0\1"}))
    assert rebuilt is not None
    zeroed = bytearray(rebuilt)
    zeroed[44:48] = zeroed[64:68] = bytes(4)
    zeroed[84:100] = bytes(16)
    assert rebuilt[84:100] == hashlib.md5(zeroed).digest()  # noqa: S324 - ICC.1 says MD5
    assert rebuilt[64:68] == b"\0\0\0\1"  # the rendering intent is kept
    version2 = icc.clean(_profile(_matrix_tags(_codes(1, 4)), version=2))
    assert version2 is not None
    assert version2[84:100] == bytes(16)


def test_identical_tag_data_is_stored_once() -> None:
    rebuilt = icc.clean(_profile(_matrix_tags(_codes(2, 4))))
    assert rebuilt is not None
    entries = {sig: offset for sig, offset, _ in _entries(rebuilt)}
    assert entries[b"rTRC"] == entries[b"bTRC"] != entries[b"gTRC"]
    assert len(rebuilt) % 4 == 0


def assert_packed(profile: bytes) -> None:
    """Tag data follows the table with no gaps: each distinct tag at its length, padded to 4."""
    spans = sorted({(offset, size) for _, offset, size in _entries(profile)})
    position = 128 + 4 + 12 * len(_entries(profile))
    for offset, size in spans:
        assert offset == position
        assert profile[offset + size : offset + size + (-size % 4)] == bytes(-size % 4)
        position = offset + size + (-size % 4)
    assert position == len(profile) == struct.unpack_from(">I", profile)[0]


def _entries(profile: bytes) -> list[tuple[bytes, int, int]]:
    (count,) = struct.unpack_from(">I", profile, 128)
    return [struct.unpack_from(">4sII", profile, 132 + 12 * i) for i in range(count)]


def test_a_grey_profile_keeps_its_curve() -> None:
    codes = _codes(3, 4)
    curve = b"curv\0\0\0\0" + struct.pack(">I", 256)
    curve += b"".join(struct.pack(">H", round(65535 * (i / 255) ** 1.8)) for i in range(256))
    profile = _profile(
        [
            (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
            (b"kTRC", curve),
            (b"cprt", _text(b"mluc", codes[0])),
        ],
        space=b"GRAY",
        gap=codes[1],
    )
    rebuilt = icc.clean(profile)
    assert rebuilt is not None
    assert_same_colours(profile, rebuilt)
    assert_absent(codes[:2], rebuilt)


def _clut(rng: random.Random, inputs: int, outputs: int, grid: int, precision: int) -> bytes:
    fmt = ">H" if precision == 2 else ">B"
    top = 65535 if precision == 2 else 255
    values = []
    for _ in range(grid**inputs * outputs):
        values.append(struct.pack(fmt, rng.randrange(top // 8, top - top // 8)))
    return b"".join(values)


def _identity_table(entries: int, channels: int, precision: int) -> bytes:
    fmt, top = (">H", 65535) if precision == 2 else (">B", 255)
    one = b"".join(struct.pack(fmt, round(top * i / (entries - 1))) for i in range(entries))
    return one * channels


@pytest.mark.parametrize("precision", [1, 2])
def test_lut_profiles_keep_their_colours(precision: int) -> None:
    """lut8Type / lut16Type A2B0 (RGB to Lab), with a code after the tables."""
    rng = random.Random(precision)
    codes = _codes(10 + precision, 2)
    grid, entries = 9, 256 if precision == 1 else 1024
    matrix = b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    head = (b"mft1" if precision == 1 else b"mft2") + codes[0][:4] + bytes((3, 3, grid)) + b"\x7f"
    head += matrix + (b"" if precision == 1 else struct.pack(">HH", entries, entries))
    lut = head + _identity_table(entries, 3, precision) + _clut(rng, 3, 3, grid, precision)
    lut += _identity_table(entries, 3, precision) + codes[1]
    profile = _profile(
        [(b"wtpt", _xyz(0.9642, 1.0, 0.8249)), (b"A2B0", lut)], version=2, pcs=b"Lab ", cls=b"scnr"
    )
    rebuilt = icc.clean(profile)
    assert rebuilt is not None
    assert_same_colours(profile, rebuilt)
    assert_absent(codes, rebuilt)
    assert _tag_data(rebuilt, b"A2B0")[11] == 0  # the pad byte


def _tag_data(profile: bytes, signature: bytes) -> bytes:
    (offset, size) = next((o, n) for sig, o, n in _entries(profile) if sig == signature)
    return profile[offset : offset + size]


def _mab_curves(n: int, codes: list[bytes]) -> bytes:
    out = b""
    for i in range(n):
        curve = b"curv" + codes[i % len(codes)][:4] + struct.pack(">IH", 1, 400 + 40 * i)
        out += curve + codes[i % len(codes)][4:6]  # the padding to 4 bytes, not zero
    return out


def test_lut_a_to_b_elements_are_rebuilt_without_what_lies_between() -> None:
    """lutAtoBType A2B0 with A curves, CLUT, M curves, matrix and B curves, codes in the gaps."""
    rng = random.Random(7)
    codes = _codes(7, 6)
    gap = codes[5]
    a_curves = _mab_curves(3, codes)
    clut = bytes((5, 5, 5)) + bytes(13) + b"\x02\0\0\0" + _clut(rng, 3, 3, 5, 2)
    m_curves = _mab_curves(3, codes[2:])
    matrix = b"".join(_s15(v) for v in (0.9, 0.05, 0.05, 0.1, 0.8, 0.1, 0.0, 0.1, 0.9, 0, 0, 0))
    b_curves = _mab_curves(3, codes[1:])
    parts = [b_curves, matrix, m_curves, clut, a_curves]
    offsets, body = [], b""
    for part in parts:
        offsets.append(32 + len(body))
        body += part + bytes(-len(part) % 4) + gap
    lut = b"mAB " + codes[0][:4] + bytes((3, 3)) + b"\xab\xcd" + struct.pack(">5I", *offsets)
    lut += body
    profile = _profile(
        [(b"wtpt", _xyz(0.9642, 1.0, 0.8249)), (b"A2B0", lut)], pcs=b"XYZ ", cls=b"scnr"
    )
    rebuilt = icc.clean(profile)
    assert rebuilt is not None
    assert_same_colours(profile, rebuilt)
    assert_absent(codes[5:], rebuilt)
    for code in codes[:5]:
        assert code[:4] not in rebuilt  # reserved bytes
    curves = [i for i in range(len(rebuilt)) if rebuilt.startswith(b"curv", i)]
    assert len(curves) == 9
    assert _tag_data(rebuilt, b"A2B0")[10:12] == b"\0\0"  # reserved
    assert all(rebuilt[i + 14 : i + 16] == b"\0\0" for i in curves)  # padding zeroed
    assert icc.is_canonical(rebuilt)


def test_a_cmyk_lut_loses_what_its_unused_matrix_held() -> None:
    """A lut16Type with four inputs: its matrix is never applied, so it may hold a code."""
    rng = random.Random(4)
    codes = _codes(44, 5)
    head = b"mft2\0\0\0\0" + bytes((4, 3, 5, 0)) + b"".join(codes[:4]) + codes[4][:4]
    lut = head + struct.pack(">HH", 2, 2) + struct.pack(">HH", 0, 65535) * 4
    lut += _clut(rng, 4, 3, 5, 2) + struct.pack(">HH", 0, 65535) * 3
    profile = _profile(
        [(b"wtpt", _xyz(0.9642, 1.0, 0.8249)), (b"A2B0", lut)],
        version=2,
        space=b"CMYK",
        pcs=b"Lab ",
        cls=b"prtr",
    )
    rebuilt = icc.clean(profile)
    assert rebuilt is not None
    assert_same_colours(profile, rebuilt)
    assert_absent(codes[:4], rebuilt)
    assert icc.IDENTITY in rebuilt


def test_unknown_colour_spaces_are_not_rebuilt() -> None:
    with pytest.raises(DamagedImage):
        icc.clean(_profile(_matrix_tags(_codes(6, 4)), space=b"K123"))


# --- damaged profiles ---


def test_a_broken_tag_table_claiming_srgb_becomes_srgb() -> None:
    broken = _profile(
        [(b"desc", _text(b"desc", b"sRGB IEC61966-2.1")), (b"cprt", _text(b"text", b"Jo Doe"))]
    )
    broken = broken[:128] + struct.pack(">I", 400) + broken[132:]  # 400 tags in a tiny profile
    assert icc.named(broken) == ("sRGB IEC61966-2.1", "Jo Doe")  # still said, for the findings
    assert icc.clean(broken) == icc.srgb()
    assert icc.clean(broken[:100]) is None  # a broken header claims nothing: decoders ignore it


def test_a_colour_tag_we_cannot_read_falls_back_to_the_claimed_space() -> None:
    tags = _matrix_tags(_codes(4, 4))
    tags[4] = (b"rTRC", b"mpet\0\0\0\0" + bytes(16))  # a type we do not rebuild
    claims_p3 = [*tags, (b"desc", _text(b"mluc", b"Display P3"))]
    assert icc.clean(_profile(claims_p3)) == icc.display_p3()
    samsung = [*tags, (b"desc", _text(b"mluc", b"DCI-P3 D65 Gamut with sRGB Transfer"))]
    assert icc.clean(_profile(samsung)) == icc.display_p3()
    with pytest.raises(DamagedImage):
        icc.clean(_profile([*tags, (b"desc", _text(b"mluc", b"Studio 4"))]))
    with pytest.raises(DamagedImage):  # the description decides, not a mention elsewhere
        icc.clean(
            _profile(
                [*tags, (b"desc", _text(b"mluc", b"Wide")), (b"cprt", _text(b"mluc", b"not sRGB"))]
            )
        )
    float_lut = [*_matrix_tags(_codes(4, 4)), (b"D2B0", b"mpet\0\0\0\0" + bytes(16))]
    assert icc.clean(_profile([*float_lut, (b"desc", _text(b"mluc", b"sRGB"))])) == icc.srgb()
    assert not icc.is_canonical(_profile(tags))


def test_the_standard_profiles_render_as_their_names_say() -> None:
    assert icc.is_canonical(icc.srgb())
    assert icc.is_canonical(icc.display_p3())
    ours = _rendered(icc.srgb(), 1)
    assert max(abs(a - b) for a, b in zip(ours, GRID.tobytes(), strict=True)) <= 1
    apple = [p for p in corpus_files("heic") if p.name == "arrow.heic"]
    if apple:
        (block,) = [
            b for b in scrub.inspect(apple[0].read_bytes()).parsed.blocks if b.kind == "icc"
        ]
        theirs = _rendered(block.data, 1)
        ours = _rendered(icc.display_p3(), 1)
        assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) <= 1


@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param(lambda p: p[:128] + struct.pack(">I", 2**31) + p[132:], id="tag-count"),
        pytest.param(
            lambda p: p.replace(b"\x00\x00\x00\x01\x01\x00", b"\xff\xff\xff\xff\x01\x00"),
            id="curve-length",
        ),
        pytest.param(lambda p: p[:4] + b"\xff" * 4 + p[8:], id="cmm"),
        pytest.param(lambda p: p[:-3], id="truncated"),
    ],
)
def test_hostile_profiles_are_handled_quickly(hostile: object) -> None:
    profile = _profile([*_matrix_tags(_codes(5, 4)), (b"desc", _text(b"mluc", b"sRGB"))])
    changed = hostile(profile)  # type: ignore[operator]
    start = time.perf_counter()
    result = icc.clean(changed)
    assert time.perf_counter() - start < 0.05
    assert result is None or icc.is_canonical(result)


def test_giant_lut_grid_is_refused_without_allocating() -> None:
    lut = b"mft2\0\0\0\0" + bytes((15, 15, 255, 0)) + bytes(36) + struct.pack(">HH", 4096, 4096)
    profile = _profile([(b"wtpt", _xyz(0.9642, 1.0, 0.8249)), (b"A2B0", lut)], cls=b"scnr")
    with pytest.raises(DamagedImage):
        icc.clean(profile)


def test_no_profile_outlives_the_call() -> None:
    """A profile is part of a user's file: nothing in icc may keep it (no cache, no global)."""
    profile = _profile([*_matrix_tags(_codes(8, 4)), (b"desc", _text(b"mluc", b"Anna Smith"))])
    icc.clean(profile)
    icc.named(profile)
    icc.is_canonical(profile)
    referrers = [r for r in gc.get_referrers(profile) if not isinstance(r, types.FrameType)]
    assert referrers == []


def test_rebuilding_a_typical_profile_takes_well_under_a_millisecond() -> None:
    profiles = list(_corpus_profile_files())
    samples = [_profile(_matrix_tags(_codes(9, 4))), *profiles]
    rebuild = icc.clean
    start = time.perf_counter()
    for _ in range(20):
        for profile in samples:
            rebuild(profile)
    per_profile = (time.perf_counter() - start) / (20 * len(samples))
    assert per_profile < 0.0005


# --- fuzzing: hostile numbers in every field the parser reads ---


def _fuzz_seeds() -> list[bytes]:
    lut = b"mft2\0\0\0\0" + bytes((3, 3, 2, 0)) + icc.IDENTITY + struct.pack(">HH", 2, 2)
    lut += struct.pack(">HH", 0, 65535) * 3 + bytes(2 * 3 * 8) + struct.pack(">HH", 0, 65535) * 3
    return [
        _profile([*_matrix_tags(_codes(20, 4)), (b"desc", _text(b"mluc", b"sRGB"))]),
        _profile([(b"wtpt", _xyz(0.9642, 1.0, 0.8249)), (b"A2B0", lut)], version=2, cls=b"scnr"),
        icc.display_p3(),
    ]


_EXAMPLES = int(os.environ.get("SCRUBBOT_FUZZ_EXAMPLES", "60"))


@settings(max_examples=_EXAMPLES, derandomize=True, deadline=None)
@given(
    seed=st.sampled_from(_fuzz_seeds()),
    edits=st.lists(
        st.tuples(
            st.integers(0, 2000),
            st.sampled_from([0, 1, 2, 0xFF, 0x7FFFFFFF, 0xFFFFFFFF, 128, 132, 4096]),
            st.sampled_from([1, 2, 4]),
        ),
        max_size=6,
    ),
    cut=st.integers(0, 3000),
)
def test_hostile_profiles_give_a_profile_none_or_a_refusal(
    seed: bytes, edits: list[tuple[int, int, int]], cut: int
) -> None:
    data = bytearray(seed)
    for offset, value, width in edits:
        if offset + width <= len(data):
            data[offset : offset + width] = (value & (2 ** (8 * width) - 1)).to_bytes(width, "big")
    hostile = bytes(data[: max(cut, 1)])
    start = time.perf_counter()
    try:
        result = icc.clean(hostile)
    except DamagedImage:
        result = None
    icc.named(hostile)
    assert time.perf_counter() - start < 0.5
    if result is not None:
        assert icc.is_canonical(result)
        assert icc.clean(result) == result


def _sampled(code: bytes) -> bytes:
    """A 'curv' whose entries spell `code` (padded to whole entries)."""
    code += b"\0" * (len(code) % 2)
    return b"curv\0\0\0\0" + struct.pack(">I", len(code) // 2) + code


def test_tags_the_colour_space_never_reads_are_dropped() -> None:
    codes = _codes(11, 8)
    rgb = _profile(
        [
            *_matrix_tags(_codes(12, 4)),
            (b"kTRC", _sampled(codes[0] * 64)),  # a grey curve in an RGB profile
            (b"chrm", b"chrm\0\0\0\0" + struct.pack(">HH", 9, 0) + codes[1] * 9),  # 9 channels
            (b"cicp", b"cicp\0\0\0\0" + codes[2][:4]),  # code points H.273 does not have
            (b"lumi", b"XYZ \0\0\0\0" + codes[6][:4] + _s15(160.0) + codes[6][4:]),  # X, Z
        ]
    )
    grey = _profile(
        [
            (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
            (b"kTRC", b"curv\0\0\0\0" + struct.pack(">IH", 1, 563) + b"\0\0"),
            (b"rTRC", _sampled(codes[3] * 64)),  # the RGB shaper in a grey profile
            (b"gXYZ", _xyz(0.3851, 0.7169, 0.0971, codes[4][:4])),
            (b"chrm", b"chrm\0\0\0\0" + struct.pack(">HH", 1, 0x4B31) + codes[5]),  # type 19249
        ],
        space=b"GRAY",
    )
    for profile in (rgb, grey):
        rebuilt = icc.clean(profile)
        assert rebuilt is not None
        assert_same_colours(profile, rebuilt, inverse=profile is rgb)
        assert_absent([*codes[:7], codes[4][:4], codes[6][:4], codes[6][4:]], rebuilt)
        assert icc.is_canonical(rebuilt)
    kept = [sig for sig, _ in icc.parse(icc.clean(grey) or b"").tags]
    assert kept == [b"desc", b"kTRC", b"wtpt"]
    fine = b"cicp\0\0\0\0\x01\x0d\x00\x01"  # sRGB primaries and transfer, full range
    assert (
        icc.parse(icc.clean(_profile([*_matrix_tags(codes), (b"cicp", fine)])) or b"").tag(b"cicp")
        == fine
    )


@pytest.mark.parametrize(
    ("signature", "kind"),
    [
        (b"rXYZ", b"sf32"),
        (b"wtpt", b"curv"),
        (b"bkpt", b"curv"),
        (b"chad", b"XYZ "),
        (b"A2B0", b"mBA "),
        (b"B2A0", b"mAB "),
        (b"gTRC", b"XYZ "),
    ],
)
def test_a_kept_tag_of_a_type_it_cannot_have_is_never_copied(
    signature: bytes, kind: bytes
) -> None:
    code = _codes(13, 1)[0] * 8
    if kind in (b"mAB ", b"mBA "):  # one curve per channel, each spelling the code
        data = kind + b"\0\0\0\0\x03\x03\0\0" + struct.pack(">5I", 32, 0, 0, 0, 0)
        data += _sampled(code) * 3
    elif kind == b"curv":
        data = _sampled(code)
    else:
        data = kind + b"\0\0\0\0" + code
    tags = [t for t in _matrix_tags(_codes(14, 4)) if t[0] != signature] + [(signature, data)]
    with pytest.raises(DamagedImage):  # no standard space named: refused, never copied
        icc.clean(_profile(tags))
    named_srgb = _profile([*tags, (b"desc", _text(b"mluc", b"sRGB IEC61966-2.1"))])
    assert icc.clean(named_srgb) == icc.srgb()
