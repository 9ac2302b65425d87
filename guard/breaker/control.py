"""Manual control and inspection of circuits, shared by all processes (used by the CLI).

A manual action (force-open, force-close, disable, reset) is one ``CONTROL`` script in Redis:
it bumps the generation (so calls admitted before it cannot count afterwards), records the event
in the circuit's Redis event list and is then written synchronously to PostgreSQL. Other
processes see it at their next Redis round trip, at the latest after ``local_state_ttl_seconds``.
``configure`` is one ``CONFIGURE`` script, recorded the same way (an event from the state to
itself, with the old and new rules as its reason).

Only an operator changes a circuit: every change runs inside a PostgreSQL transaction that first
takes the breaker tables' ROW EXCLUSIVE lock, which only a login that may write them gets
(Booking Guard's owner role, or a superuser). A reporting, reviewer or application login is
refused there, before Redis is touched (``PermissionDenied``: the CLI names the role needed).
The same transaction serialises the operators of one circuit (an advisory lock on its key),
reads what PostgreSQL recorded (a circuit Redis lost is restored from it, so the change moves
from the state the circuit really had: the script reads that state and changes it atomically)
and records the change; PostgreSQL unreachable means no change.

Redis is the live state; PostgreSQL is the durable history. A key is *known* when either has it.
Whatever either store holds is checked before it is shown or used (``stored.py``).
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from guard import queries
from guard.breaker.codec import WindowCounts, decode_circuit
from guard.breaker.errors import ControlUnavailableError
from guard.breaker.listeners import BreakerEvent, EventKind
from guard.breaker.persistence import write_transitions
from guard.breaker.redis_store import REDIS_DOWN_ERRORS, CircuitArgs, RedisStore, make_client
from guard.breaker.restore import RecordedState, Seed, new_circuit, seed_for
from guard.breaker.state import (
    ACTION_TARGET,
    Action,
    BreakerConfig,
    Reply,
    SharedRules,
    State,
    configure_reason,
    validate_key,
)
from guard.breaker.stored import MAX_GENERATION, MAX_TIME_MS, STATE_LABELS, check_record, int_in
from guard.connection import connect, open_connection
from guard.errors import GuardError, PermissionDenied, first_line

ADMIN_REDIS_TIMEOUT_SECONDS = 2.0


class UnknownCircuitError(LookupError):
    def __init__(self, key: str) -> None:
        super().__init__(f"unknown circuit key {key!r} (see `guard breaker list`)")
        self.key = key


@dataclass
class CircuitView:
    """What an operator sees about one circuit."""

    key: str
    state: str
    generation: int
    failure_count: int
    success_count: int
    opened_at: datetime | None
    changed_at: datetime | None
    recovers_in_seconds: float | None
    source: str  # "redis" (live) or "postgresql" (last persisted, Redis has no state)
    events: list[dict[str, Any]] = field(default_factory=list)
    rules: SharedRules | None = None
    # The failure-rate window now (None: the circuit has none, or Redis is not read).
    window: WindowCounts | None = None
    # Statistics (None: none since the circuit was created, restored, or Redis is not read).
    last_failure_at: datetime | None = None
    closed_at: datetime | None = None
    # The cooldown of the present opening (grown by failed probes when the rules say so).
    cooldown_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        rules, window = self.rules, self.window
        has_window = rules is not None and rules.has_window
        return {
            "key": self.key,
            "state": self.state,
            "generation": self.generation,
            "failure_count": self.failure_count,
            "success_count": self.success_count,
            "opened_at": _iso(self.opened_at),
            "changed_at": _iso(self.changed_at),
            "recovers_in_seconds": self.recovers_in_seconds,
            "last_failure_at": _iso(self.last_failure_at),
            "closed_at": _iso(self.closed_at),
            "source": self.source,
            "failure_threshold": rules.failure_threshold if rules else None,
            "success_threshold": rules.success_threshold if rules else None,
            "cooldown_seconds": rules.cooldown_ms / 1000 if rules else None,
            **growth_rules_dict(rules),
            "current_cooldown_seconds": self.cooldown_seconds,
            **window_rules_dict(rules),
            "window_calls": window.calls if window and has_window else None,
            "window_failures": window.failures if window and has_window else None,
            "window_slow_calls": window.slow_calls if window and has_window else None,
            "events": self.events,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def growth_rules_dict(rules: SharedRules | None) -> dict[str, Any]:
    """The growing cooldown's rules as JSON fields (None when the cooldown does not grow)."""
    if rules is None or not rules.has_growth:
        return {"cooldown_growth_factor": None, "max_cooldown_seconds": None}
    return {
        "cooldown_growth_factor": rules.cooldown_growth_percent / 100,
        "max_cooldown_seconds": rules.max_cooldown_ms / 1000,
    }


def window_rules_dict(rules: SharedRules | None) -> dict[str, Any]:
    """The window's rules as JSON fields (all None without a window)."""
    if rules is None or not rules.has_window:
        rules = SharedRules(0, 0, 0)
    return {
        "window_type": rules.window_type or None,
        "window_size": rules.window_size or None,
        "minimum_calls": rules.minimum_calls or None,
        "failure_rate_threshold": rules.failure_rate_threshold or None,
        "slow_call_seconds": rules.slow_call_ms / 1000 if rules.slow_call_ms else None,
        "slow_call_rate_threshold": rules.slow_call_rate_threshold or None,
    }


def _ms(value: int | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


@dataclass(frozen=True)
class Recorded:
    """What PostgreSQL knows of one circuit, read in the operator's transaction."""

    state: RecordedState | None  # its last recorded state, checked (None: no row)
    generation: int  # the highest valid generation recorded (0: none)

    @property
    def known(self) -> bool:
        return self.state is not None or self.generation > 0


@dataclass(frozen=True)
class WindowChange:
    """``guard breaker configure``'s window options: None keeps the stored value; a rate of 0
    turns that rule off (the window is off when both rates are)."""

    window_type: str | None = None
    window_size: int | None = None
    minimum_calls: int | None = None
    failure_rate_threshold: int | None = None
    slow_call_seconds: float | None = None
    slow_call_rate_threshold: int | None = None

    def merged(self, base: SharedRules) -> dict[str, Any]:
        """``BreakerConfig`` window fields: these changes over ``base`` (the stored rules; a
        circuit without a window starts from ``BreakerConfig``'s defaults)."""
        defaults = BreakerConfig()
        if base.has_window:
            window_type, size, minimum = base.window_type, base.window_size, base.minimum_calls
        else:
            window_type, size = defaults.window_type, defaults.window_size
            minimum = defaults.minimum_calls
        failure_rate = _rate(self.failure_rate_threshold, base.failure_rate_threshold)
        slow_rate = _rate(self.slow_call_rate_threshold, base.slow_call_rate_threshold)
        slow_seconds = self.slow_call_seconds
        if slow_seconds is None and base.slow_call_ms:
            slow_seconds = base.slow_call_ms / 1000
        if slow_rate is None:
            if self.slow_call_seconds is not None:
                raise ValueError("--slow-call-duration goes with --slow-call-rate")
            slow_seconds = None
        elif slow_seconds is None:
            raise ValueError("--slow-call-rate needs --slow-call-duration (what a slow call is)")
        return {
            "window_type": self.window_type or window_type,
            "window_size": self.window_size or size,
            "minimum_calls": self.minimum_calls or minimum,
            "failure_rate_threshold": failure_rate,
            "slow_call_seconds": slow_seconds,
            "slow_call_rate_threshold": slow_rate,
        }


@dataclass(frozen=True)
class GrowthChange:
    """``guard breaker configure``'s growing-cooldown options: None keeps the stored value; a
    factor of 1 turns the growth off."""

    factor: float | None = None
    max_cooldown_seconds: float | None = None

    def merged(self, base: SharedRules) -> dict[str, Any]:
        """``BreakerConfig`` growth fields: these changes over ``base`` (the stored rules)."""
        factor, cap = self.factor, self.max_cooldown_seconds
        if factor is None and base.has_growth:
            factor = base.cooldown_growth_percent / 100
        if cap is None and base.has_growth:
            cap = base.max_cooldown_ms / 1000
        if factor is None or factor == 1:
            if self.max_cooldown_seconds is not None:
                raise ValueError("--max-cooldown goes with --cooldown-growth (a factor above 1)")
            return {"cooldown_growth_factor": None, "max_cooldown_seconds": None}
        if cap is None:
            raise ValueError("--cooldown-growth needs --max-cooldown (the longest cooldown)")
        return {"cooldown_growth_factor": factor, "max_cooldown_seconds": cap}


def _rate(given: int | None, stored: int) -> int | None:
    value = stored if given is None else given
    return value or None


class BreakerAdmin:
    def __init__(
        self,
        redis_url: str,
        database_url: str | None,
        config: BreakerConfig | None = None,
        actor: str | None = None,
    ) -> None:
        self.redis = RedisStore(
            make_client(
                redis_url,
                connect_timeout=ADMIN_REDIS_TIMEOUT_SECONDS,
                read_timeout=ADMIN_REDIS_TIMEOUT_SECONDS,
            )
        )
        self.database_url = database_url
        self.config = config or BreakerConfig()
        self.actor = actor or f"{getpass.getuser()}@{socket.gethostname()}"
        self.unreachable: list[str] = []
        # Whether the change of the running operator's transaction reached Redis (_operator).
        self.applied_in_redis = False
        self.host = socket.gethostname()
        self.pid = os.getpid()

    def close(self) -> None:
        self.redis.client.close()

    # ------------------------------------------------------------------ PostgreSQL side
    def _pg(self) -> psycopg.Connection[dict[str, Any]]:
        return open_connection(self.database_url or "", connect_timeout=5, row_factory=dict_row)

    def _pg_states(self) -> dict[str, dict[str, Any]]:
        with self._pg() as conn:
            rows = conn.execute(queries.BREAKER_STATES).fetchall()
        return {row["key"]: row for row in rows}

    def _pg_events(self, key: str, limit: int) -> list[dict[str, Any]]:
        with self._pg() as conn:
            rows = conn.execute(queries.BREAKER_EVENTS, (key, limit)).fetchall()
        return [
            {**row, "occurred_at": row["occurred_at"].isoformat() if row["occurred_at"] else None}
            for row in rows
        ]

    @contextmanager
    def _operator(self, key: str) -> Iterator[tuple[psycopg.Connection[Any], Recorded]]:
        """The PostgreSQL transaction a change of ``key`` runs in (see the module docstring):
        refused with ``PermissionDenied`` unless the login may write the breaker tables, before
        anything else happens; yields the connection and what PostgreSQL recorded of the
        circuit; commits when the block ends (the caller has recorded the change in it)."""
        conn = connect(self.database_url, application_name="guard breaker")
        self.applied_in_redis = False
        try:
            with conn, conn.transaction():
                try:
                    conn.execute(queries.BREAKER_OPERATOR_LOCK)
                except psycopg.errors.InsufficientPrivilege as error:
                    raise PermissionDenied(
                        f"{first_line(error)} (changing a circuit is recorded in"
                        " guard.breaker_state and guard.breaker_events)"
                    ) from None
                conn.execute(queries.BREAKER_CIRCUIT_LOCK, (key,))
                yield conn, self._recorded(conn, key)
        except psycopg.Error as error:
            if not self.applied_in_redis:
                raise GuardError(f"PostgreSQL: {first_line(error)}; nothing was changed") from None
            raise GuardError(
                f"the change of {key} was made in Redis, but PostgreSQL could not record it"
                f" ({first_line(error)}): see `guard breaker show {key}`"
            ) from None

    @staticmethod
    def _recorded(conn: psycopg.Connection[Any], key: str) -> Recorded:
        row = conn.execute(queries.BREAKER_RESTORE_STATE, (key,)).fetchone()
        state = None
        if row is not None:
            checked = check_record(*row)
            state = RecordedState(
                checked.state, checked.generation, checked.opened_at_ms, problems=checked.problems
            )
        known = conn.execute(
            queries.BREAKER_KNOWN_GENERATION, {"key": key, "max": MAX_GENERATION}
        ).fetchone()
        return Recorded(state, int(known[0]) if known and known[0] is not None else 0)

    def _record(self, conn: psycopg.Connection[Any], key: str, reply: Reply, reason: str) -> None:
        """Record a change Redis made in the operator's transaction (committed by the caller)."""
        self.applied_in_redis = True
        at = datetime.fromtimestamp(reply.now_ms / 1000, tz=UTC)
        event = BreakerEvent(
            kind=EventKind.TRANSITION,
            key=key,
            state=reply.state,
            generation=reply.generation,
            occurred_at=at,
            host=self.host,
            pid=self.pid,
            from_state=State(reply.from_state),
            reason=reason,
            failure_count=reply.failures,
            success_count=reply.successes,
            actor=self.actor,
            opened_at=at if reply.state.rejects else None,
        )
        write_transitions(conn, [event])

    # ------------------------------------------------------------------ views
    def _view_from_redis(self, key: str, raw: dict[str, str], now_ms: int) -> CircuitView:
        """``now_ms`` is Redis ``TIME``: the cooldown ends on the clock that decides it, with
        the cooldown stored with the circuit (not this host's clock or configuration). Values
        the breaker never writes are shown as the circuit's next decision repairs them."""
        circuit = decode_circuit(raw, now_ms, cooldown_without_rules_ms=self.config.cooldown_ms)
        recovers_in = None
        if circuit.recovers_in_ms is not None and circuit.opened_at_ms:
            recovers_in = round(circuit.recovers_in_ms / 1000, 1)
        rules = circuit.rules
        return CircuitView(
            key=key,
            state=circuit.state.label,
            generation=circuit.generation,
            failure_count=circuit.failures,
            success_count=circuit.successes,
            opened_at=_ms(circuit.opened_at_ms),
            changed_at=_ms(circuit.changed_at_ms),
            recovers_in_seconds=recovers_in,
            source="redis",
            rules=rules,
            window=circuit.window if rules and rules.has_window else None,
            last_failure_at=_ms(circuit.last_failure_at_ms),
            closed_at=_ms(circuit.closed_at_ms),
            cooldown_seconds=circuit.cooldown_ms / 1000 if circuit.cooldown_ms else None,
        )

    @staticmethod
    def _view_from_pg(row: dict[str, Any]) -> CircuitView:
        return CircuitView(
            key=row["key"],
            state=row["state"] if row["state"] in STATE_LABELS else State.OPEN.label,
            generation=int(row["generation"]),
            failure_count=int(row["failure_count"]),
            success_count=int(row["success_count"]),
            opened_at=row["opened_at"],
            changed_at=row["changed_at"],
            recovers_in_seconds=None,
            source="postgresql",
        )

    def list(self) -> list[CircuitView]:
        """Every circuit, live from Redis, else as last persisted in PostgreSQL. What could not
        be read is left in `self.unreachable` for the caller to say."""
        views: dict[str, CircuitView] = {}
        errors: list[str] = []
        try:
            for key in self.redis.circuit_keys():
                raw, now_ms = self.redis.read_with_time(key)
                if raw:
                    views[key] = self._view_from_redis(key, raw, now_ms)
        except REDIS_DOWN_ERRORS as error:
            errors.append(f"Redis: {type(error).__name__}")
        try:
            for key, row in self._pg_states().items():
                views.setdefault(key, self._view_from_pg(row))
        except psycopg.errors.InsufficientPrivilege as error:
            # a login that may not read the circuits is refused, not shown Redis's half as if
            # PostgreSQL were down
            raise PermissionDenied(first_line(error)) from None
        except psycopg.Error as error:
            errors.append(f"PostgreSQL: {type(error).__name__}")
        if len(errors) == 2:
            raise ControlUnavailableError("; ".join(errors))
        self.unreachable = errors
        return [views[key] for key in sorted(views)]

    def show(self, key: str, events: int = 10) -> CircuitView:
        validate_key(key)
        view: CircuitView | None = None
        redis_events: list[dict[str, Any]] = []
        try:
            raw, now_ms = self.redis.read_with_time(key)
            if raw:
                view = self._view_from_redis(key, raw, now_ms)
                redis_events = self.redis.events(key, events)
        except REDIS_DOWN_ERRORS:
            pass
        pg_events: list[dict[str, Any]] = []
        try:
            if view is None:
                row = self._pg_states().get(key)
                if row is not None:
                    view = self._view_from_pg(row)
            pg_events = self._pg_events(key, events)
        except psycopg.errors.InsufficientPrivilege as error:
            raise PermissionDenied(first_line(error)) from None
        except psycopg.Error:
            pass
        if view is None:
            raise UnknownCircuitError(key)
        view.events = pg_events or [_redis_event(e) for e in redis_events]
        return view

    # ------------------------------------------------------------------ actions
    def configure(
        self,
        key: str,
        failure_threshold: int | None,
        success_threshold: int | None,
        cooldown_seconds: float | None,
        window: WindowChange | None = None,
        growth: GrowthChange | None = None,
        *,
        only_if_new: bool = False,
    ) -> tuple[SharedRules | None, SharedRules | None]:
        """Store rules with the circuit for every process; unspecified values keep the stored
        ones (else this admin's defaults). Returns (previous, new). The circuit may be new:
        configuring before the first call is how a rollout sets its rules (it is created
        closed). New window rules start an empty window; new growth rules apply from the next
        failed probe (a cooldown already grown stays within the new cap). An operator's change
        (see the module docstring), recorded in PostgreSQL. ``only_if_new``: only for a circuit
        neither store knows (`trip --create`); a known one is left as it is and (None, None)
        returned."""
        validate_key(key)
        with self._operator(key) as (conn, recorded):
            try:
                if only_if_new and (recorded.known or self.redis.read(key)):
                    return None, None
                current = self.redis.rules(key)
            except REDIS_DOWN_ERRORS as error:
                raise _redis_down(error) from None
            base = current or self.config.shared_rules
            config = BreakerConfig(
                failure_threshold=failure_threshold or base.failure_threshold,
                success_threshold=success_threshold or base.success_threshold,
                cooldown_seconds=(
                    cooldown_seconds if cooldown_seconds is not None else base.cooldown_ms / 1000
                ),
                **(window or WindowChange()).merged(base),
                **(growth or GrowthChange()).merged(base),
            )
            rules = config.shared_rules
            reason = configure_reason(current, rules)
            args = CircuitArgs.build(key, self.config, self.host, self.pid)
            restore = _Restore(recorded)
            try:
                previous, reply = self.redis.configure(
                    args, rules, reason, self.actor, recorded.generation, restore
                )
            except REDIS_DOWN_ERRORS as error:
                raise _redis_down(error) from None
            self._record(conn, key, reply, restore.noted(reply.reason))
        return previous, rules

    def act(self, key: str, action: Action, reason: str) -> tuple[Reply, bool]:
        """Apply a manual action; returns the reply and whether PostgreSQL recorded it (always
        True: an action PostgreSQL cannot record is not made, see the module docstring)."""
        validate_key(key)
        if not reason.strip():
            raise ValueError("a reason is required")
        with self._operator(key) as (conn, recorded):
            try:
                in_redis = bool(self.redis.read(key))
            except REDIS_DOWN_ERRORS as error:
                raise _redis_down(error) from None
            if not in_redis and not recorded.known:
                raise UnknownCircuitError(key)
            args = CircuitArgs.build(key, self.config, self.host, self.pid)
            target = ACTION_TARGET[action]
            full_reason = f"{action.value}: {reason.strip()}"
            restore = _Restore(recorded)
            try:
                reply = self.redis.control(
                    args, target, full_reason, self.actor, recorded.generation, restore
                )
            except REDIS_DOWN_ERRORS as error:
                raise _redis_down(error) from None
            self._record(conn, key, reply, restore.noted(reply.reason))
        return reply, True


def _redis_down(error: BaseException) -> ControlUnavailableError:
    return ControlUnavailableError(f"Redis unreachable ({type(error).__name__})")


class _Restore:
    """What an operator's change re-creates when Redis lost the circuit: the state PostgreSQL
    recorded (checked, and repaired where it must be), else a new closed circuit; remembers the
    repair, so that the change's recorded reason says it."""

    def __init__(self, recorded: Recorded) -> None:
        self.recorded = recorded
        self.seed: Seed | None = None

    def __call__(self, known_generation: int) -> Seed:
        known = max(known_generation, self.recorded.generation)
        state = self.recorded.state
        self.seed = seed_for(state, known) if state is not None else new_circuit(known)
        return self.seed

    def noted(self, reason: str) -> str:
        if self.seed is None or not self.seed.note:
            return reason
        return f"{reason} (restored from postgresql, {self.seed.note})"


def _redis_event(event: dict[str, Any]) -> dict[str, Any]:
    at = _ms(int_in(event.get("occurred_at_ms"), 1, MAX_TIME_MS))
    return {
        "generation": event.get("generation"),
        "from_state": event.get("from_state"),
        "to_state": event.get("to_state"),
        "reason": event.get("reason"),
        "failure_count": event.get("failure_count"),
        "success_count": event.get("success_count"),
        "actor": event.get("actor") or None,
        "host": event.get("host"),
        "pid": event.get("pid"),
        "occurred_at": at.isoformat() if at else None,
    }
