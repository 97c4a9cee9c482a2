"""Where a JPEG scan's entropy-coded data ends: the first marker after it.

    next_marker(data, start) -> int     position of the first marker at or after `start`, or -1
    use_simd(allowed)                   load Hyperscan now (True), or never in this process (False)

A marker is 0xFF followed by anything but stuffing (00), a restart marker (D0-D7) or fill (FF).
Finding it means reading every byte of the picture data, the one cost of cleaning a JPEG that
grows with its size: Python's `re` reads about 3.3 GB/s here, Hyperscan (Intel's SIMD regex
engine, made for untrusted network traffic) about 6 GB/s (bench/throughput.py). Hyperscan is
an optional dependency (x86-64 only); loading it costs about 9 ms, so a process loads it on the
first scan of at least SIMD_FROM bytes, or when told to (`use_simd`: the CLI loads it before
forking its workers for a big batch and forbids it for a small one, whose start-up would pay
more than the scans save). Both engines give the same answer (tests/test_jpeg_scan.py).
"""

import re
import threading
from typing import Any

NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
SIMD_FROM = 1 << 20  # bytes of picture data from which a scan loads Hyperscan when allowed
_SIMD_PATTERN = rb"\xff[\x01-\xcf\xd8-\xfe]"  # NEXT_MARKER, spelled for Hyperscan


class _Simd(threading.local):
    scratch: Any = None  # Hyperscan scratch space: one per thread, as scans run unlocked


_allowed: bool | None = None  # None: load on the first large scan
_database: Any = None
_engine: Any = None
_simd = _Simd()
_lock = threading.Lock()


def use_simd(allowed: bool) -> bool:
    """Load Hyperscan now (so forked workers inherit it) or never use it in this process;
    whether it is in use."""
    global _allowed
    _allowed = allowed
    return allowed and _load()


def next_marker(data: bytes, start: int) -> int:
    if len(data) - start >= SIMD_FROM and _allowed is not False and _load():
        return _simd_next_marker(data, start)
    return _re_next_marker(data, start)


def _re_next_marker(data: bytes, start: int) -> int:
    found = NEXT_MARKER.search(data, start)
    return found.start() if found else -1


def _load() -> bool:
    global _database, _engine, _allowed
    if _database is not None:  # loaded: no lock on every scan
        return True
    with _lock:
        if _database is None and _allowed is not False:
            try:
                import hyperscan

                database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
                flags = [hyperscan.HS_FLAG_SINGLEMATCH]
                database.compile(expressions=[_SIMD_PATTERN], flags=flags)
            except Exception:  # not installed, or a CPU it cannot run on: re answers
                _allowed = False
                return False
            _engine, _database = hyperscan, database
    return _database is not None


def _simd_next_marker(data: bytes, start: int) -> int:
    if _simd.scratch is None:
        _simd.scratch = _engine.Scratch(_database)
    found: list[int] = []

    def first(pattern: int, begin: int, end: int, flags: int, context: object) -> bool:
        found.append(end - 2)  # every match is two bytes long
        return True  # stop: the first is the one

    try:
        _database.scan(memoryview(data)[start:], match_event_handler=first, scratch=_simd.scratch)
    except _engine.ScanTerminated:
        pass
    except _engine.error:  # never seen; re answers instead
        return _re_next_marker(data, start)
    return start + found[0] if found else -1
