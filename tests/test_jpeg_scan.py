"""The two engines that find where a JPEG scan's data ends give the same answer."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.formats import jpeg_scan

hyperscan = pytest.importorskip("hyperscan", reason="Hyperscan is installed on x86-64 only")

# Bytes as they come around markers: stuffing, restarts, fill, markers, and anything else.
_BYTE = st.sampled_from([0x00, 0xFF, 0xD0, 0xD7, 0xD8, 0xD9, 0xC4, 0xE1, 0x01, 0xCF, 0xFE, 0x41])


def _both(data: bytes, start: int) -> tuple[int, int]:
    return jpeg_scan._re_next_marker(data, start), jpeg_scan._simd_next_marker(data, start)


@settings(max_examples=400, deadline=None)
@given(st.lists(_BYTE, max_size=64), st.integers(min_value=0, max_value=8))
def test_hyperscan_finds_the_marker_re_finds(values: list[int], start: int) -> None:
    assert jpeg_scan.use_simd(True)
    data = bytes(values)
    expected, found = _both(data, min(start, len(data)))
    assert found == expected


@pytest.mark.parametrize("second", range(256))
def test_every_byte_after_0xff_is_judged_alike(second: int) -> None:
    assert jpeg_scan.use_simd(True)
    data = b"\x12\x00" * 3 + bytes([0xFF, second]) + b"\x00\xff\xd9"
    assert _both(data, 0)[0] == _both(data, 0)[1]
    assert _both(data, 0)[0] in (6, 9)


def test_large_data_goes_through_hyperscan_and_a_marker_at_the_end_is_found() -> None:
    assert jpeg_scan.use_simd(True)
    data = (b"\x12\xff\x00\x34\xff\xd3" * (jpeg_scan.SIMD_FROM // 6 + 1)) + b"\xff\xe1"
    assert jpeg_scan.next_marker(data, 3) == len(data) - 2 == jpeg_scan._re_next_marker(data, 3)


def test_forbidden_it_is_never_loaded_in_a_fresh_process() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from bot.formats import jpeg_scan; jpeg_scan.use_simd(False);"
        "data = b'\\x12' * (2 * jpeg_scan.SIMD_FROM) + b'\\xff\\xd9';"
        "print(jpeg_scan.next_marker(data, 0), 'hyperscan' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == [str(2 * jpeg_scan.SIMD_FROM), "False"]
