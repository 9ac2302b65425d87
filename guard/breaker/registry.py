"""Per-key breakers sharing one backend, configured by the longest matching key prefix
(``templates``), else by the default that ``from_settings`` reads from ``guard.settings``."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Mapping
from typing import Any

import psycopg

from guard import queries
from guard.breaker.backend import Backend, redis_url_from_env
from guard.breaker.circuit import CircuitBreaker
from guard.breaker.listeners import Listener
from guard.breaker.persistence import PostgresStateSource, PostgresWriteBehind, StateSource
from guard.breaker.state import RULES, BreakerConfig, validate_key
from guard.connection import open_connection

log = logging.getLogger("guard.breaker")

KEY_PREFIX = "appointment_booking"

# The BreakerConfig fields the guard.settings rows ``breaker_<field>`` set.
SETTINGS = tuple(rule for rule in RULES if rule.setting)

# The shipped values of those rows: the booking path's calendar call, which may block without a
# timeout of its own, stays bounded by the breaker when the rows cannot be read.
SETTINGS_DEFAULT = BreakerConfig(call_timeout_seconds=10.0)


def service_key(service_id: int | str) -> str:
    return f"{KEY_PREFIX}:service:{service_id}"


def config_from_settings(
    rows: Mapping[str, Any], base: BreakerConfig | None = None
) -> BreakerConfig:
    """``guard.settings`` values over ``base`` (default: the rows' shipped values, so a row
    missing keeps its own); a call timeout of 0 means none."""
    changes: dict[str, Any] = {
        rule.name: int(value) if rule.whole else float(value)
        for rule in SETTINGS
        if (value := rows.get(f"breaker_{rule.name}")) is not None
    }
    timeout = changes.get("call_timeout_seconds")
    if timeout is not None and timeout < 0:
        raise ValueError(
            f"guard.settings breaker_call_timeout_seconds is {timeout:g}: it must be a number"
            " of seconds, or 0 for no timeout"
        )
    if timeout == 0:
        changes["call_timeout_seconds"] = None  # the row's spelling of "no timeout"
    return dataclasses.replace(base or SETTINGS_DEFAULT, **changes)


def load_settings_config(
    database_url: str | None, base: BreakerConfig | None = None
) -> BreakerConfig:
    """``config_from_settings`` of the rows; ``base`` alone if PostgreSQL cannot be read."""
    base = base or SETTINGS_DEFAULT
    try:
        with open_connection(database_url or "", connect_timeout=5) as conn:
            rows = conn.execute(
                queries.BREAKER_SETTINGS,
                ([f"breaker_{rule.name}" for rule in SETTINGS],),
            ).fetchall()
    except psycopg.Error as error:
        log.warning("breaker settings not readable (%s); using built-in defaults", error)
        return base
    return config_from_settings(dict(rows), base)


class BreakerRegistry:
    """Creates and caches one ``CircuitBreaker`` per key, all sharing one ``Backend``."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        in_memory: bool = False,
        default: BreakerConfig | None = None,
        templates: Mapping[str, BreakerConfig] | None = None,
        listeners: tuple[Listener, ...] = (),
        backend: Backend | None = None,
        state_source: StateSource | None = None,
    ) -> None:
        self.default = default or BreakerConfig()
        self.templates: dict[str, BreakerConfig] = dict(templates or {})
        self.backend = backend or Backend(
            None if in_memory else (redis_url or redis_url_from_env()),
            listeners=listeners,
            state_source=state_source,
        )
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()
        self.writer: PostgresWriteBehind | None = None

    @classmethod
    def from_settings(
        cls,
        database_url: str | None,
        *,
        redis_url: str | None = None,
        templates: Mapping[str, BreakerConfig] | None = None,
        listeners: tuple[Listener, ...] = (),
        persist: bool = True,
    ) -> BreakerRegistry:
        """Defaults from ``guard.settings``; circuits missing from Redis are restored from
        PostgreSQL, and with ``persist`` transitions are written behind to it."""
        registry = cls(
            redis_url,
            default=load_settings_config(database_url),
            templates=templates,
            listeners=listeners,
            state_source=PostgresStateSource(database_url),
        )
        if persist:
            registry.writer = PostgresWriteBehind(
                database_url, redis_url=registry.backend.redis_url
            )
            registry.add_listener(registry.writer)
        return registry

    def add_template(self, prefix: str, config: BreakerConfig) -> None:
        self.templates[prefix] = config

    def config_for(self, key: str) -> BreakerConfig:
        matching = [prefix for prefix in self.templates if key.startswith(prefix)]
        return self.templates[max(matching, key=len)] if matching else self.default

    def get(self, key: str) -> CircuitBreaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            validate_key(key)
            with self._lock:
                breaker = self._breakers.get(key)
                if breaker is None:
                    breaker = CircuitBreaker(key, self.config_for(key), backend=self.backend)
                    self._breakers[key] = breaker
        return breaker

    def service(self, service_id: int | str) -> CircuitBreaker:
        return self.get(service_key(service_id))

    def staff(self, staff_id: int | str) -> CircuitBreaker:
        return self.get(f"{KEY_PREFIX}:staff:{staff_id}")

    def global_(self) -> CircuitBreaker:
        return self.get(f"{KEY_PREFIX}:global")

    def add_listener(self, listener: Listener) -> None:
        self.backend.listeners.add(listener)

    def close(self, timeout: float = 10.0) -> None:
        """Stop; the write-behind gets up to ``timeout`` seconds to write what it holds."""
        if self.writer is not None:
            self.writer.close(timeout)
        self.backend.close()
