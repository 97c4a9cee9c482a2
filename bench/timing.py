"""Timing shared by the benches: the best of several runs, which keeps this shared machine's
other jobs out of the figure as far as one run can."""

import time
from collections.abc import Callable


def best_ms(step: Callable[[], object], runs: int) -> float:
    """Milliseconds of the fastest of `runs` calls of `step`."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best * 1e3
