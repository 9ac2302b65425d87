"""Per-channel rate limit: at most N messages in any 60 s window (0 = unlimited)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 60.0


class RateWindow:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._sent: deque[float] = deque()

    def _trim(self) -> None:
        cutoff = self._clock() - WINDOW_S
        while self._sent and self._sent[0] <= cutoff:
            self._sent.popleft()

    def capacity(self) -> int | None:
        """Messages that may still go out now; None when unlimited."""
        if self.per_minute <= 0:
            return None
        self._trim()
        return max(0, self.per_minute - len(self._sent))

    def record(self) -> None:
        if self.per_minute > 0:
            self._sent.append(self._clock())

    def seconds_until_room(self) -> float:
        capacity = self.capacity()
        if capacity is None or capacity > 0 or not self._sent:
            return 0.0
        return max(0.0, self._sent[0] + WINDOW_S - self._clock())
