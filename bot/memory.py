"""Process-wide memory tuning for handling photo-sized buffers.

Every photo means a few buffers of several megabytes. By default glibc hands such blocks back
to the kernel when they are freed, so the next photo's buffers start as fresh pages and the
kernel zero-fills each one on first touch: measured here, that page-fault work cost about as
much as the scrubbing itself. Keeping freed blocks inside the process (up to a cap) lets the
next photo reuse them.
"""

import ctypes

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_KEEP_FREED = 128 * 1024 * 1024  # bytes of freed memory kept for reuse
_HEAP_UP_TO = 32 * 1024 * 1024  # blocks below this come from the reusable heap (glibc's max)
_RETURN_FROM = 1024 * 1024  # in the bot, blocks from this size on are mapped and returned


def reuse_freed_buffers() -> bool:
    """Ask glibc to keep freed photo buffers for reuse; False where there is no glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter itself runs on
    except (OSError, AttributeError, TypeError):
        return False
    return bool(
        mallopt(_M_MMAP_THRESHOLD, _HEAP_UP_TO) and mallopt(_M_TRIM_THRESHOLD, _KEEP_FREED)
    )


def return_freed_buffers() -> bool:
    """For the long-running bot, the opposite trade: every photo-sized block is mapped on its
    own and handed back when freed, and threads share two heaps, so memory follows the photos
    in flight instead of the largest burst so far (bench/burst.py: peak RSS 490 MB without
    this, 310-354 MB with it)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _RETURN_FROM) and mallopt(_M_ARENA_MAX, 2))
