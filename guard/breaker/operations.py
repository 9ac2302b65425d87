"""What an operator does with circuits (`guard breaker ...`): the breaker package's one door for
the command line.

``operator_session(database_url)`` opens Redis (``GUARD_REDIS_URL``) and PostgreSQL for one
command and yields an ``Operator``: list and show circuits, trip, reset, disable, force-close,
configure and prepare (``trip --create``). Whatever goes wrong that an operator can cause or
meet (an unknown key, a store that cannot be reached, a value out of range) leaves the session as
one ``GuardError`` line; how the circuits are stored stays behind this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from guard.breaker.backend import redis_url_from_env
from guard.breaker.control import (
    BreakerAdmin,
    CircuitView,
    GrowthChange,
    UnknownCircuitError,
    WindowChange,
    growth_rules_dict,
    window_rules_dict,
)
from guard.breaker.errors import ControlUnavailableError
from guard.breaker.redis_config import describe_eviction, evicting_policies
from guard.breaker.redis_store import REDIS_DOWN_ERRORS, mask_url
from guard.breaker.state import (
    MAX_COOLDOWN_GROWTH,
    MAX_COOLDOWN_SECONDS,
    MAX_COUNT_WINDOW,
    MAX_TIME_WINDOW_SECONDS,
    WINDOW_TYPES,
    Action,
)
from guard.errors import ConfigurationError, GuardError

__all__ = [
    "MAX_COOLDOWN_GROWTH",
    "MAX_COOLDOWN_SECONDS",
    "MAX_COUNT_WINDOW",
    "MAX_TIME_WINDOW_SECONDS",
    "WINDOW_TYPES",
    "Action",
    "CircuitList",
    "CircuitView",
    "GrowthChange",
    "Operator",
    "RulesChange",
    "WindowChange",
    "operator_session",
]


@dataclass(frozen=True)
class CircuitList:
    """Every known circuit, and the stores that could not be read (the list may then be
    incomplete or stale)."""

    circuits: list[CircuitView]
    unreachable: list[str]


@dataclass(frozen=True)
class RulesChange:
    """A change of a circuit's stored rules; None (and the empty changes) keep a stored value."""

    failure_threshold: int | None = None
    success_threshold: int | None = None
    cooldown_seconds: float | None = None
    window: WindowChange = field(default_factory=WindowChange)
    growth: GrowthChange = field(default_factory=GrowthChange)

    @property
    def empty(self) -> bool:
        return self == RulesChange()


class Operator:
    """One command's access to the circuits (built by ``operator_session``)."""

    def __init__(self, admin: BreakerAdmin, redis_url: str) -> None:
        self._admin = admin
        self._redis_url = redis_url

    def eviction_warning(self) -> str | None:
        """Why Redis may evict the breaker's state (its maxmemory policy), None when it will
        not or cannot say: an unreachable Redis is the command's own error, and a refused
        CONFIG (managed Redis) would repeat on every command."""
        try:
            policies, maxmemory = evicting_policies(self._admin.redis.client)
        except REDIS_DOWN_ERRORS:
            return None
        return describe_eviction(policies, maxmemory, mask_url(self._redis_url))

    def list(self) -> CircuitList:
        circuits = self._admin.list()
        return CircuitList(circuits, list(self._admin.unreachable))

    def show(self, key: str, events: int) -> CircuitView:
        return self._admin.show(key, events)

    def act(self, key: str, action: Action, reason: str) -> dict[str, Any]:
        """A manual action (trip, reset, disable, force-close), recorded in PostgreSQL."""
        reply, recorded = self._admin.act(key, action, reason)
        return {
            "key": key,
            "action": action.value,
            "state": reply.state.label,
            "generation": reply.generation,
            "recorded_in_postgresql": recorded,
        }

    def configure(self, key: str, change: RulesChange) -> dict[str, Any]:
        """Store ``change`` over the circuit's rules; the rules now, and the previous ones."""
        previous, rules = self._admin.configure(
            key,
            change.failure_threshold,
            change.success_threshold,
            change.cooldown_seconds,
            change.window,
            change.growth,
        )
        assert rules is not None  # only `only_if_new` leaves a circuit unchanged
        return {
            "key": key,
            "failure_threshold": rules.failure_threshold,
            "success_threshold": rules.success_threshold,
            "cooldown_seconds": rules.cooldown_ms / 1000,
            **growth_rules_dict(rules),
            **window_rules_dict(rules),
            "previous": None if previous is None else previous.text(),
        }

    def prepare(self, key: str, change: RulesChange) -> None:
        """Create a circuit never used yet with ``change`` over the defaults (``trip --create``);
        a circuit either store knows keeps its rules."""
        self._admin.configure(
            key,
            change.failure_threshold,
            change.success_threshold,
            change.cooldown_seconds,
            change.window,
            change.growth,
            only_if_new=True,
        )


@contextmanager
def operator_session(database_url: str | None) -> Iterator[Operator]:
    """An ``Operator`` for one command; its errors leave as one ``GuardError`` line."""
    redis_url = redis_url_from_env()
    try:
        admin = BreakerAdmin(redis_url, database_url)
    except ValueError:
        raise ConfigurationError(
            f"GUARD_REDIS_URL is not a Redis URL (redis://, rediss:// or unix://):"
            f" {mask_url(redis_url)}"
        ) from None
    try:
        yield Operator(admin, redis_url)
    except UnknownCircuitError as error:
        raise GuardError(str(error)) from None
    except ControlUnavailableError as error:
        raise GuardError(f"cannot reach breaker state at {mask_url(redis_url)}: {error}") from None
    except ValueError as error:
        raise GuardError(str(error)) from None
    finally:
        admin.close()
