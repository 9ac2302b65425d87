"""What the breakers of one process share: Redis clients and health, the fallback store, host,
pid and listeners. Nothing connects at construction: building a breaker never raises for Redis.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from guard.breaker.codec import RecordedState, Seed, seed_for
from guard.breaker.listeners import Listener, Listeners
from guard.breaker.machine import MemoryStore
from guard.breaker.persistence import StateSource
from guard.breaker.redis_store import (
    DEFAULT_REDIS_URL,
    RedisStore,
    eviction_warning,
    make_client,
    mask_url,
)

log = logging.getLogger("guard.breaker")

REDIS_URL_ENV = "GUARD_REDIS_URL"


def redis_url_from_env() -> str:
    return os.environ.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL


class RedisHealth:
    """Whether Redis is reachable. While it is down, one call per ``retry_interval`` tries it, so
    an outage costs the process one timeout per interval, not one per call."""

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


class Backend:
    """Shared by all breakers of a registry. ``redis_url=None`` means in-memory only."""

    def __init__(
        self,
        redis_url: str | None,
        *,
        listeners: tuple[Listener, ...] = (),
        redis_retry_interval: float = 1.0,
        state_source: StateSource | None = None,
    ) -> None:
        self.redis_url = redis_url
        self.masked_url = mask_url(redis_url) if redis_url else "memory"
        self.health = RedisHealth(self.masked_url, redis_retry_interval)
        self.memory = MemoryStore()
        self.listeners = Listeners(listeners)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._sync_store: RedisStore | None = None
        self._async_client: tuple[asyncio.AbstractEventLoop, Any] | None = None
        self._executors: list[ThreadPoolExecutor] = []
        # Where a circuit missing from Redis is restored from; None: only from
        # what this process saw.
        self.state_source = state_source
        self._redis_config_checked = False

    @property
    def uses_redis(self) -> bool:
        return self.redis_url is not None

    @property
    def sync_store(self) -> RedisStore:
        store = self._sync_store
        if store is None:
            assert self.redis_url is not None
            with self._lock:
                if self._sync_store is None:
                    self._sync_store = RedisStore(make_client(self.redis_url))
                store = self._sync_store
        return store

    @property
    def store(self) -> RedisStore | MemoryStore:
        """Where manual actions and reads go: Redis, or in memory only this process's store."""
        return self.sync_store if self.redis_url is not None else self.memory

    def restore(self, key: str, seen: RecordedState | None, known_generation: int) -> Seed:
        """What to re-create when Redis has no state for circuit ``key``: the state recorded in
        ``state_source``, else ``seen`` (what this process last saw in Redis), else a new closed
        circuit at ``known_generation``."""
        recorded, unread = None, ""
        if self.state_source is not None:
            try:
                recorded = self.state_source(key)
            except Exception as error:
                unread = f"; PostgreSQL could not be read ({type(error).__name__})"
        seed = seed_for(seen if recorded is None else recorded, known_generation)
        if seed.restored_from is not None:
            log.warning(
                "circuit %s: its state was missing from Redis (evicted? see maxmemory-policy in "
                "docs/breaker.md); restored %s at generation %d from %s (%s recorded there)%s%s; "
                "failure counts are lost",
                key,
                seed.state.label,
                seed.generation,
                seed.restored_from.source,
                seed.restored_from.state.label,
                unread,
                f"; the recorded state was {seed.note}" if seed.note else "",
            )
        elif unread:
            log.warning(
                "circuit %s: not in Redis and not known to this process%s; starting it closed",
                key,
                unread,
            )
        return seed

    def check_redis_config(self) -> None:
        """Warn once per backend, after a first answer, when Redis may evict the breaker's keys."""
        with self._lock:  # once per circuit: the lock costs nothing
            if self._redis_config_checked:
                return
            self._redis_config_checked = True
        warning = eviction_warning(self.sync_store.client, self.masked_url)
        if warning is not None:
            log.warning("%s", warning)

    def async_client(self) -> Any:
        """The running loop's ``redis.asyncio`` client (those clients are loop-bound)."""
        loop = asyncio.get_running_loop()
        current = self._async_client
        if current is None or current[0] is not loop:
            assert self.redis_url is not None
            current = self._async_client = (loop, make_client(self.redis_url, for_asyncio=True))
        return current[1]

    def timeout_threads(self, key: str, workers: int) -> ThreadPoolExecutor:
        """A circuit's own worker threads, one per bulkhead slot: a call never waits for one."""
        executor = ThreadPoolExecutor(workers, thread_name_prefix=f"guard-breaker-{key}")
        with self._lock:
            self._executors.append(executor)
        return executor

    def close(self) -> None:
        close_source = getattr(self.state_source, "close", None)
        if close_source is not None:
            close_source()
        if self._sync_store is not None:
            self._sync_store.client.close()
            self._sync_store = None
        with self._lock:
            executors, self._executors = self._executors, []
        for executor in executors:
            executor.shutdown(wait=False, cancel_futures=True)
