"""What an operator does with circuits (`guard breaker ...`), the breaker's one door for the
command line: ``operator_session`` yields an ``Operator`` whose errors leave as one ``GuardError``.

Every change runs in a PostgreSQL transaction that first takes the breaker tables' ROW EXCLUSIVE
lock, which only a login that may write them gets: others are refused before Redis is touched.
The same transaction serialises the operators of a circuit (an advisory lock on its key), reads
what PostgreSQL recorded (a circuit Redis lost is restored from it) and records the change.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from guard import queries
from guard.breaker import redis_store
from guard.breaker.backend import redis_url_from_env
from guard.breaker.codec import (
    STATE_LABELS,
    CircuitSnapshot,
    RecordedState,
    Seed,
    check_record,
    int_in,
    seed_for,
)
from guard.breaker.listeners import transition_event
from guard.breaker.persistence import iso, transition_record, write_records
from guard.breaker.redis_store import (
    REDIS_DOWN_ERRORS,
    CircuitArgs,
    RedisStore,
    hash_key,
    make_client,
    mask_url,
)
from guard.breaker.state import (
    ACTION_TARGET,
    MAX_GENERATION,
    MAX_TIME_MS,
    Action,
    BreakerConfig,
    ControlUnavailableError,
    Reply,
    SharedRules,
    State,
    configure_reason,
    validate_key,
)
from guard.connection import connect, open_connection, scalar, who_acts
from guard.errors import ConfigurationError, GuardError, PermissionDenied, first_line

ADMIN_REDIS_TIMEOUT_SECONDS = 2.0


def _unknown(key: str) -> GuardError:
    return GuardError(f"unknown circuit key {key!r} (see `guard breaker list`)")


@dataclass(frozen=True, slots=True)
class CircuitView(CircuitSnapshot):
    """What an operator sees about one circuit: a snapshot read by the operator's process (its
    counters 0), ``source`` "redis" (live) or "postgresql" (last persisted, Redis has none)."""

    events: tuple[dict[str, Any], ...] = ()  # newest first, occurred_at a datetime or None

    def as_dict(self) -> dict[str, Any]:
        rules, window = self.rules, self.window
        has_window = rules is not None and rules.has_window
        return {
            "key": self.key,
            "state": self.state.label,
            "generation": self.generation,
            "failure_count": self.failure_count,
            "success_count": self.success_count,
            "opened_at": iso(self.opened_at),
            "changed_at": iso(self.changed_at),
            "recovers_in_seconds": self.recovers_in_seconds,
            "last_failure_at": iso(self.last_failure_at),
            "closed_at": iso(self.closed_at),
            "source": self.source,
            **(rules or SharedRules(0, 0, 0)).config_values(),
            "current_cooldown_seconds": self.cooldown_seconds,
            "window_calls": window.calls if has_window else None,
            "window_failures": window.failures if has_window else None,
            "window_slow_calls": window.slow_calls if has_window else None,
            "events": [{**e, "occurred_at": iso(e["occurred_at"])} for e in self.events],
        }


def rules_over(base: SharedRules, given: Mapping[str, Any]) -> SharedRules:
    """``given``, the options of ``guard breaker configure``, over ``base``, the stored rules (a
    circuit without a window takes ``BreakerConfig``'s): None keeps a stored value; a rate of 0
    turns that rule off (the window is off when both rates are); a growth factor of 1 turns the
    growing cooldown off."""
    changed = {name: value for name, value in given.items() if value is not None}
    values = {**base.config_values(), **changed}
    if not values["slow_call_rate_threshold"]:
        if "slow_call_seconds" in changed:
            raise ValueError("--slow-call-duration goes with --slow-call-rate")
        values["slow_call_seconds"] = None
    elif values["slow_call_seconds"] is None:
        raise ValueError("--slow-call-rate needs --slow-call-duration (what a slow call is)")
    if values["cooldown_growth_factor"] in (None, 1):
        if "max_cooldown_seconds" in changed:
            raise ValueError("--max-cooldown goes with --cooldown-growth (a factor above 1)")
        values["cooldown_growth_factor"] = values["max_cooldown_seconds"] = None
    elif values["max_cooldown_seconds"] is None:
        raise ValueError("--cooldown-growth needs --max-cooldown (the longest cooldown)")
    # an off rule (None, or a rate of 0) is BreakerConfig's default: off
    return BreakerConfig(**{name: value for name, value in values.items() if value}).shared_rules


@dataclass(frozen=True)
class Recorded:
    state: RecordedState | None  # its last recorded state, checked (None: no row)
    generation: int  # the highest valid generation recorded (0: none)

    @property
    def known(self) -> bool:
        return self.state is not None or self.generation > 0


class Operator:
    """One command's access to the circuits (built by ``operator_session``)."""

    def __init__(self, redis_url: str, database_url: str | None) -> None:
        self.redis = RedisStore(
            make_client(
                redis_url,
                connect_timeout=ADMIN_REDIS_TIMEOUT_SECONDS,
                read_timeout=ADMIN_REDIS_TIMEOUT_SECONDS,
            )
        )
        self.redis_url = redis_url
        self.database_url = database_url
        self.config = BreakerConfig()
        self.actor = who_acts()
        # Whether the change of the running operator's transaction reached Redis (_operator).
        self.applied_in_redis = False
        self.host = socket.gethostname()
        self.pid = os.getpid()

    def close(self) -> None:
        self.redis.client.close()

    def eviction_warning(self) -> str | None:
        """Why Redis may evict the breaker's state, None when it will not or cannot say: an
        unreachable Redis is the command's own error, and a refused CONFIG (managed Redis)
        would repeat on every command."""
        try:
            policies, maxmemory = redis_store.evicting_policies(self.redis.client)
        except REDIS_DOWN_ERRORS:
            return None
        return redis_store.describe_eviction(policies, maxmemory, mask_url(self.redis_url))

    def _pg(self) -> psycopg.Connection[dict[str, Any]]:
        return open_connection(self.database_url or "", connect_timeout=5, row_factory=dict_row)

    def _pg_states(self) -> dict[str, dict[str, Any]]:
        with self._pg() as conn:
            rows = conn.execute(queries.BREAKER_STATES).fetchall()
        return {row["key"]: row for row in rows}

    @contextmanager
    def _operator(self, key: str) -> Iterator[_Change]:
        """The transaction a change of ``key`` runs in (see the module docstring): yields the
        change, with what PostgreSQL recorded of the circuit; commits when the block ends. A
        Redis error rolls it back and leaves as ``ControlUnavailableError``."""
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
                yield _Change(self, conn, key, self._recorded(conn, key))
        except psycopg.Error as error:
            if not self.applied_in_redis:
                raise GuardError(f"PostgreSQL: {first_line(error)}; nothing was changed") from None
            raise GuardError(
                f"the change of {key} was made in Redis, but PostgreSQL could not record it"
                f" ({first_line(error)}): see `guard breaker show {key}`"
            ) from None
        except REDIS_DOWN_ERRORS as error:
            raise ControlUnavailableError(f"Redis unreachable ({type(error).__name__})") from None

    @staticmethod
    def _recorded(conn: psycopg.Connection[Any], key: str) -> Recorded:
        row = conn.execute(queries.BREAKER_RESTORE_STATE, (key,)).fetchone()
        state = None if row is None else check_record(*row)
        known = scalar(conn, queries.BREAKER_KNOWN_GENERATION, {"key": key, "max": MAX_GENERATION})
        return Recorded(state, int(known or 0))

    def _view_from_redis(self, key: str, raw: dict[str, str], now_ms: int) -> CircuitView:
        """``now_ms`` is Redis ``TIME``: the cooldown ends on the clock that decides it."""
        view = CircuitView.decode(
            key, raw, now_ms, "redis", cooldown_without_rules_ms=self.config.cooldown_ms
        )
        recovers_in = view.recovers_in_seconds
        shown = None if recovers_in is None or view.opened_at is None else round(recovers_in, 1)
        return replace(view, recovers_in_seconds=shown)

    @staticmethod
    def _view_from_pg(row: dict[str, Any]) -> CircuitView:
        label = row["state"] if row["state"] in STATE_LABELS else State.OPEN.label
        return CircuitView(
            row["key"],
            State.from_label(label),
            int(row["generation"]),
            int(row["failure_count"]),
            int(row["success_count"]),
            row["opened_at"],
            row["changed_at"],
            None,
            None,
            "postgresql",
            *(0, 0, 0, 0),
        )

    def list(self) -> tuple[list[CircuitView], list[str]]:
        """Every circuit, live from Redis, else as last persisted in PostgreSQL, and the stores
        that could not be read (the list may then be incomplete or stale)."""
        views: dict[str, CircuitView] = {}
        errors: list[str] = []
        try:
            for key in circuit_keys(self.redis.client):
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
        return [views[key] for key in sorted(views)], errors

    def show(self, key: str, events: int = 10) -> CircuitView:
        validate_key(key)
        view: CircuitView | None = None
        redis_events: list[dict[str, Any]] = []
        with contextlib.suppress(*REDIS_DOWN_ERRORS):
            raw, now_ms = self.redis.read_with_time(key)
            if raw:
                view = self._view_from_redis(key, raw, now_ms)
                redis_events = recent_events(self.redis.client, key, events)
        pg_events: list[dict[str, Any]] = []
        try:
            if view is None:
                row = self._pg_states().get(key)
                if row is not None:
                    view = self._view_from_pg(row)
            with self._pg() as conn:
                pg_events = conn.execute(queries.BREAKER_EVENTS, (key, events)).fetchall()
        except psycopg.errors.InsufficientPrivilege as error:
            raise PermissionDenied(first_line(error)) from None
        except psycopg.Error:
            pass
        if view is None:
            raise _unknown(key)
        return replace(view, events=tuple(pg_events or map(_redis_event, redis_events)))

    def act(self, key: str, action: Action, reason: str) -> dict[str, Any]:
        """A manual action (trip, reset, disable, force-close), recorded in PostgreSQL: an
        action PostgreSQL cannot record is not made."""
        validate_key(key)
        if not reason.strip():
            raise ValueError("a reason is required")
        with self._operator(key) as tx:
            if not tx.recorded.known and not self.redis.client.exists(hash_key(key)):
                raise _unknown(key)
            full_reason = f"{action.value}: {reason.strip()}"
            target, generation = ACTION_TARGET[action], tx.recorded.generation
            reply = self.redis.control(tx.args, target, full_reason, self.actor, generation, tx)
            tx.record(reply)
        return {
            "key": key,
            "action": action.value,
            "state": reply.state.label,
            "generation": reply.generation,
            "recorded_in_postgresql": True,
        }

    def configure(
        self, key: str, given: Mapping[str, Any], *, only_if_new: bool = False
    ) -> dict[str, Any] | None:
        """Store ``given`` over the circuit's rules (``rules_over``; values not given keep the
        stored ones, else the defaults): the rules now, and the previous ones. ``only_if_new``
        (``trip --create``): a circuit either store knows keeps its rules (None)."""
        validate_key(key)
        with self._operator(key) as tx:
            if only_if_new and (tx.recorded.known or self.redis.client.exists(hash_key(key))):
                return None
            current = self.redis.rules(key)
            rules = rules_over(current or self.config.shared_rules, given)
            reason, generation = configure_reason(current, rules), tx.recorded.generation
            previous, reply = self.redis.configure(
                tx.args, rules, reason, self.actor, generation, tx
            )
            tx.record(reply)
        return {
            "key": key,
            **rules.config_values(),
            "previous": None if previous is None else previous.text(),
        }


class _Change:
    """An operator's change of a circuit in its transaction. Called by the store when Redis lost
    the circuit: re-creates the state PostgreSQL recorded (checked, and repaired where it must
    be), else a new closed circuit; the change's recorded reason then says the repair."""

    def __init__(
        self, operator: Operator, conn: psycopg.Connection[Any], key: str, recorded: Recorded
    ) -> None:
        self.operator, self.conn, self.key, self.recorded = operator, conn, key, recorded
        self.args = CircuitArgs.build(key, operator.config, operator.host, operator.pid)
        self.seed: Seed | None = None

    def __call__(self, known_generation: int) -> Seed:
        known = max(known_generation, self.recorded.generation)
        self.seed = seed_for(self.recorded.state, known)
        return self.seed

    def record(self, reply: Reply) -> None:
        """Record the change in PostgreSQL (in the operator's transaction)."""
        op, reason = self.operator, reply.reason
        op.applied_in_redis = True
        if self.seed is not None and self.seed.note:
            reason = f"{reason} (restored from postgresql, {self.seed.note})"
        at = datetime.fromtimestamp(reply.now_ms / 1000, tz=UTC)
        event = transition_event(
            self.key, reply, at, op.host, op.pid, reason=reason, actor=op.actor
        )
        write_records(self.conn, [transition_record(event)])


def circuit_keys(client: Any) -> list[str]:
    """Every circuit Redis has: a scan for their hashes, ``guard:breaker:{KEY}``."""
    found = set()
    for raw in client.scan_iter(match=hash_key("*"), count=1000):
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        found.add(name.removeprefix("guard:breaker:{").removesuffix("}"))
    return sorted(found)


def recent_events(client: Any, key: str, limit: int = 20) -> list[dict[str, Any]]:
    """The circuit's Redis event list; an item that is not a JSON object is skipped."""
    events = []
    for item in client.lrange(redis_store.events_key(key), 0, limit - 1):
        with contextlib.suppress(ValueError):
            event = json.loads(item)
            if isinstance(event, dict):
                events.append(event)
    return events


# An event's fields as `guard breaker show` lists them (guard.breaker_events' columns).
EVENT_FIELDS = (
    "generation",
    "from_state",
    "to_state",
    "reason",
    "failure_count",
    "success_count",
    "actor",
    "host",
    "pid",
)


def _redis_event(event: dict[str, Any]) -> dict[str, Any]:
    at_ms = int_in(event.get("occurred_at_ms"), 1, MAX_TIME_MS)
    shown = {name: event.get(name) for name in EVENT_FIELDS}
    shown["actor"] = shown["actor"] or None
    shown["occurred_at"] = datetime.fromtimestamp(at_ms / 1000, UTC) if at_ms else None
    return shown


@contextmanager
def operator_session(database_url: str | None) -> Iterator[Operator]:
    """An ``Operator`` for one command; its errors leave as one ``GuardError`` line."""
    redis_url = redis_url_from_env()
    try:
        operator = Operator(redis_url, database_url)
    except ValueError:
        raise ConfigurationError(
            f"GUARD_REDIS_URL is not a Redis URL (redis://, rediss:// or unix://):"
            f" {mask_url(redis_url)}"
        ) from None
    try:
        yield operator
    except ControlUnavailableError as error:
        raise GuardError(f"cannot reach breaker state at {mask_url(redis_url)}: {error}") from None
    except ValueError as error:
        raise GuardError(str(error)) from None
    finally:
        operator.close()
