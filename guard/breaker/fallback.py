"""Tracks whether Redis is reachable, so that an outage costs little and is logged once.

While Redis is down every breaker decides on its per-process ``MemoryStore`` under the same
rules (never "fail open"). Redis is tried again at most every ``retry_interval`` seconds, and
only by the one call that wins the retry slot, so a dead or paused Redis costs at most one
connect/read timeout per interval for the whole process, not one per call.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("guard.breaker")


class RedisHealth:
    def __init__(self, masked_url: str, retry_interval: float = 1.0) -> None:
        self.masked_url = masked_url
        self.retry_interval = retry_interval
        self.down = False
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def should_try_redis(self) -> bool:
        """True when up, or when down and this caller wins the next reconnection attempt."""
        if not self.down:
            return True
        now = time.monotonic()
        with self._lock:
            if now < self._retry_at:
                return False
            # Claim the attempt: concurrent callers keep using the fallback meanwhile.
            self._retry_at = now + self.retry_interval
            return True

    def mark_down(self, error: BaseException) -> bool:
        """Record a failed Redis operation; True only for the first failure of an outage."""
        with self._lock:
            self._retry_at = time.monotonic() + self.retry_interval
            if self.down:
                return False
            self.down = True
        log.warning(
            "Redis at %s is unreachable (%s: %s); circuit breakers keep protecting per "
            "process until it is back",
            self.masked_url,
            type(error).__name__,
            error,
        )
        return True

    def mark_up(self) -> bool:
        """Record a successful Redis operation; True only for the first one after an outage."""
        if not self.down:
            return False
        with self._lock:
            if not self.down:
                return False
            self.down = False
        log.warning("Redis at %s is reachable again; circuit breakers rejoined it", self.masked_url)
        return True
