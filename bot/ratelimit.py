"""A per-sender limit on photos per minute, in memory only (nothing is stored)."""

import time
from collections import deque
from collections.abc import Callable, Hashable


class RateLimit:
    """At most `count` events per `seconds` for each key; old keys are forgotten."""

    def __init__(
        self, count: int, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.count, self.seconds, self._clock = count, seconds, clock
        self._events: dict[Hashable, deque[float]] = {}

    def allow(self, key: Hashable) -> bool:
        now = self._clock()
        self._forget_before(now - self.seconds)
        events = self._events.setdefault(key, deque())
        if len(events) >= self.count:
            return False
        events.append(now)
        return True

    def _forget_before(self, cutoff: float) -> None:
        for key in [k for k, events in self._events.items() if events[-1] < cutoff]:
            del self._events[key]
        for events in self._events.values():
            while events and events[0] < cutoff:
                events.popleft()
