"""Breaker events and their listeners: plain callables run on the calling thread; one that
raises is logged and never breaks the guarded call."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from guard.breaker.state import Reply, State

log = logging.getLogger("guard.breaker")


class EventKind(enum.StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    IGNORED = "ignored"
    TIMEOUT = "timeout"
    # open or forced open, or Redis unreachable with when_store_unreachable="open"
    REJECTED = "rejected"
    BULKHEAD_FULL = "bulkhead_full"  # max_concurrent_calls of this process in flight
    TRANSITION = "transition"  # automatic or manual (``actor`` set) state change
    REDIS_UNAVAILABLE = "redis_unavailable"
    REDIS_RESTORED = "redis_restored"


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    """One thing that happened to a circuit; ``shared``: decided in Redis, for every process
    (only those transitions go to PostgreSQL), not by this process alone while Redis was down."""

    kind: EventKind
    key: str
    state: State
    generation: int
    occurred_at: datetime
    host: str
    pid: int
    shared: bool = True
    from_state: State | None = None
    reason: str = ""
    failure_count: int = 0
    success_count: int = 0
    actor: str | None = None
    opened_at: datetime | None = None
    elapsed_seconds: float | None = None
    error: BaseException | None = None


Listener = Callable[[BreakerEvent], None]


def transition_event(
    key: str,
    reply: Reply,
    occurred_at: datetime,
    host: str,
    pid: int,
    *,
    shared: bool = True,
    reason: str | None = None,
    actor: str | None = None,
) -> BreakerEvent:
    """The transition ``reply`` made; it opened the circuit (if it did) at ``occurred_at``."""
    return BreakerEvent(
        EventKind.TRANSITION,
        key,
        reply.state,
        reply.generation,
        occurred_at,
        host,
        pid,
        shared,
        State(reply.from_state),
        reply.reason if reason is None else reason,
        reply.failures,
        reply.successes,
        actor,
        occurred_at if reply.state.rejects else None,
    )


class Listeners:
    """An ordered set of listeners."""

    def __init__(self, listeners: Iterable[Listener] = ()) -> None:
        self._listeners: list[Listener] = list(listeners)

    def add(self, listener: Listener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    def remove(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, event: BreakerEvent) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("breaker listener %r failed on %s event", listener, event.kind)
