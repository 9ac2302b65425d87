"""Write-behind of transitions to real PostgreSQL (the harness's migrated ``db_url``)."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import redis

from guard.breaker import (
    BreakerConfig,
    BreakerEvent,
    BreakerRegistry,
    CircuitBreaker,
    EventKind,
    PostgresWriteBehind,
    State,
    config_from_settings,
    load_settings_config,
)
from guard.breaker.persistence import UNWRITTEN_KEY
from guard.breaker.state import PROBE_LEASE_WITHOUT_TIMEOUT_MS
from tests.support.breakers import fail_calls
from tests.support.pg_node import PgNode, migrated_node
from tests.support.redis_server import free_port

CONFIG = BreakerConfig(cooldown_seconds=0.2, call_timeout_seconds=None)


def _rows(db_url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()


def test_transitions_are_written_behind_with_state_upserted(
    db_url: str, redis_url: str, key: str
) -> None:
    writer = PostgresWriteBehind(db_url)
    breaker = CircuitBreaker(key, CONFIG, redis_url=redis_url, listeners=(writer,))
    fail_calls(breaker, 3)
    time.sleep(0.25)
    breaker.call(lambda: None)
    breaker.call(lambda: None)
    assert breaker.state is State.CLOSED
    assert writer.close()

    events = _rows(
        db_url,
        "SELECT generation, from_state, to_state, reason, failure_count, success_count, actor,"
        " host, pid FROM guard.breaker_events WHERE key = %s ORDER BY generation",
        key,
    )
    host, pid = socket.gethostname(), breaker.backend.pid
    assert events == [
        (1, "closed", "open", "3 consecutive failures", 3, 0, None, host, pid),
        (2, "open", "half_open", "cooldown elapsed", 3, 0, None, host, pid),
        (3, "half_open", "closed", "2 probe successes", 0, 2, None, host, pid),
    ]
    state = _rows(
        db_url, "SELECT state, generation, opened_at FROM guard.breaker_state WHERE key = %s", key
    )
    assert state == [("closed", 3, None)]


def _event(key: str, generation: int, to: State) -> BreakerEvent:
    return BreakerEvent(
        kind=EventKind.TRANSITION,
        key=key,
        state=to,
        generation=generation,
        occurred_at=datetime.now(UTC),
        host="h",
        pid=1,
        from_state=State.CLOSED if to is State.OPEN else State.OPEN,
        reason="test",
    )


def test_writes_are_idempotent_per_key_and_generation(db_url: str, key: str) -> None:
    writer = PostgresWriteBehind(db_url)
    writer.submit([_event(key, 1, State.OPEN), _event(key, 2, State.HALF_OPEN)])
    assert writer.flush()
    # Replayed or late events (a retried batch, another process) come in later batches, so the
    # upsert itself must refuse them (within one batch only the newest is upserted anyway).
    writer.submit([_event(key, 1, State.OPEN)])
    assert writer.flush()
    writer.submit([_event(key, 1, State.OPEN)])
    assert writer.close()
    assert _rows(db_url, "SELECT count(*) FROM guard.breaker_events WHERE key = %s", key) == [(2,)]
    # The state row never moves back to an older generation.
    assert _rows(
        db_url, "SELECT state, generation FROM guard.breaker_state WHERE key = %s", key
    ) == [("half_open", 2)]


def test_postgresql_outage_loses_no_events(db_url: str, key: str) -> None:
    """Events queued while PostgreSQL is unreachable are written once it is back."""
    dead_url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    writer = PostgresWriteBehind(dead_url, min_retry_seconds=0.05, max_retry_seconds=0.1)
    started = time.perf_counter()
    for generation in range(1, 6):
        writer(_event(key, generation, State.OPEN))
    assert time.perf_counter() - started < 0.05  # the listener never waits on PostgreSQL
    assert not writer.flush(timeout=0.5)
    assert writer.pending == 5
    writer.database_url = db_url  # "PostgreSQL is back" (same effect as a restart)
    assert writer.close(timeout=10)
    assert _rows(db_url, "SELECT count(*) FROM guard.breaker_events WHERE key = %s", key) == [(5,)]


def test_close_writes_at_once_what_a_backoff_holds_when_postgresql_is_back(
    db_url: str, redis_url: str, key: str
) -> None:
    """A registry closed moments after PostgreSQL came back (a restart, a promotion), while its
    writer waits out a backoff longer than close's timeout: close() makes it try again at once,
    and the transitions are written before it returns."""
    dead_url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    writer = PostgresWriteBehind(dead_url, min_retry_seconds=30, max_retry_seconds=60)
    registry = BreakerRegistry(redis_url, default=CONFIG, listeners=(writer,))
    registry.writer = writer
    breaker = registry.get(key)
    fail_calls(breaker, 3)
    time.sleep(0.25)
    breaker.call(lambda: None)
    breaker.call(lambda: None)
    assert writer.pending == 3 and writer.written == 0, "open, half open, closed: all queued"
    writer.database_url = db_url  # PostgreSQL is back; the writer sleeps 30 s before retrying
    before = _rows(db_url, "SELECT count(*) FROM guard.breaker_events WHERE key = %s", key)
    started = time.monotonic()
    registry.close()  # waits up to 10 s
    closed_in = time.monotonic() - started
    after = _rows(db_url, "SELECT count(*) FROM guard.breaker_events WHERE key = %s", key)
    assert (before, after, writer.pending) == ([(0,)], [(3,)], 0)
    assert closed_in < 5, closed_in


def test_close_gives_up_at_its_timeout_while_postgresql_stays_away(key: str) -> None:
    dead_url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    writer = PostgresWriteBehind(dead_url, min_retry_seconds=0.05, max_retry_seconds=30)
    writer.submit([_event(key, 1, State.OPEN)])
    started = time.monotonic()
    assert not writer.close(timeout=0.5)
    assert 0.4 < time.monotonic() - started < 3
    assert writer.pending == 1


def _kept(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.hlen(UNWRITTEN_KEY))
    finally:
        client.close()


def test_what_close_could_not_write_is_written_by_the_next_writer_once_in_order(
    db_url: str, redis_url: str, key: str
) -> None:
    """Events left at close's timeout are kept in Redis; the next writer started with that
    Redis writes them ahead of its own, oldest first, deletes them there, and a start after
    that (or two writers replaying the same events) records nothing twice."""
    other = key + "b"
    dead_url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    closing = PostgresWriteBehind(dead_url, redis_url=redis_url, min_retry_seconds=0.05)
    closing.submit([_event(key, 1, State.OPEN), _event(other, 1, State.OPEN)])
    closing.submit([_event(key, 2, State.HALF_OPEN), _event(other, 2, State.HALF_OPEN)])
    assert not closing.close(timeout=0.3)
    assert _kept(redis_url) == 4

    count = "SELECT count(*) FROM guard.breaker_events WHERE key IN (%s, %s)"
    before = _rows(db_url, count, key, other)
    first = PostgresWriteBehind(db_url, redis_url=redis_url)
    second = PostgresWriteBehind(db_url, redis_url=redis_url)  # another process, same time
    first.submit([_event(key, 3, State.CLOSED)])  # new: written after what was kept
    assert first.flush() and second.flush()
    assert first.close() and second.close()
    after = _rows(db_url, count, key, other)
    assert (before, after, _kept(redis_url)) == ([(0,)], [(5,)], 0)
    in_order = _rows(
        db_url,
        "SELECT key = %s, generation FROM guard.breaker_events WHERE key IN (%s, %s) ORDER BY id",
        other,
        key,
        other,
    )
    assert in_order == [(False, 1), (True, 1), (False, 2), (True, 2), (False, 3)]

    third = PostgresWriteBehind(db_url, redis_url=redis_url)
    assert third.close()
    assert _rows(db_url, count, key, other) == [(5,)]


def test_close_without_redis_logs_the_events_it_loses(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="guard.breaker")
    dead_url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    for redis_url in (None, dead_redis):
        writer = PostgresWriteBehind(dead_url, redis_url=redis_url, min_retry_seconds=0.05)
        writer.submit([_event(key, 1, State.OPEN)])
        assert not writer.close(timeout=0.3)
    lines = [r.getMessage() for r in caplog.records if "stopped with" in r.getMessage()]
    assert lines == [
        "breaker write-behind stopped with 1 events unwritten",
        "breaker write-behind stopped with 1 events unwritten, lost: Redis did not keep them"
        " either (ConnectionError)",
    ]


@pytest.fixture
def own_postgresql() -> Iterator[PgNode]:
    """A migrated PostgreSQL of this test's own, stopped and started by it."""
    with migrated_node() as node:
        yield node


@pytest.mark.slow
def test_transitions_of_a_postgresql_outage_reach_it_after_a_restart_exactly_once(
    own_postgresql: PgNode, redis_url: str, key: str
) -> None:
    """PostgreSQL crashes (``pg_ctl stop -m immediate``); the circuit opens, probes and closes
    while it is down; the registry is closed with a short timeout and the process ends.
    PostgreSQL comes back; the next registry writes the three transitions, once each."""
    url = own_postgresql.url()
    templates = {key: CONFIG}
    registry = BreakerRegistry.from_settings(url, redis_url=redis_url, templates=templates)
    own_postgresql.stop("immediate")
    breaker = registry.get(key)
    fail_calls(breaker, 3)
    time.sleep(0.25)
    breaker.call(lambda: None)
    breaker.call(lambda: None)
    assert breaker.state is State.CLOSED
    registry.close(timeout=0.5)
    assert _kept(redis_url) == 3

    own_postgresql.start()
    history = "SELECT generation, to_state FROM guard.breaker_events WHERE key = %s ORDER BY id"
    before = _rows(url, history, key)
    for _ in range(2):  # the next start writes them; the one after finds nothing to do
        registry = BreakerRegistry.from_settings(url, redis_url=redis_url, templates=templates)
        assert registry.writer is not None and registry.writer.flush()
        registry.close()
    after = _rows(url, history, key)
    assert before == []
    assert after == [(1, "open"), (2, "half_open"), (3, "closed")]
    assert _rows(url, "SELECT state, generation FROM guard.breaker_state WHERE key = %s", key) == [
        ("closed", 3)
    ]
    assert _kept(redis_url) == 0


def test_full_queue_drops_the_oldest_events_and_says_so(
    db_url: str, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Memory stays bounded during a long PostgreSQL outage: beyond ``max_pending`` the oldest
    events are dropped (counted and logged once); the newest, which carry the current state,
    are kept and written when PostgreSQL is back."""
    caplog.set_level(logging.WARNING, logger="guard.breaker")
    dead_url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    writer = PostgresWriteBehind(dead_url, max_pending=3, batch_size=1, min_retry_seconds=0.05)
    for generation in range(1, 7):
        writer(_event(key, generation, State.OPEN))
    assert writer.dropped >= 2
    assert len([r for r in caplog.records if "dropping the oldest" in r.getMessage()]) == 1
    writer.database_url = db_url
    assert writer.close(timeout=10)
    written = _rows(
        db_url, "SELECT generation FROM guard.breaker_events WHERE key = %s ORDER BY 1", key
    )
    assert [g for (g,) in written][-3:] == [4, 5, 6]
    assert len(written) == 6 - writer.dropped


def test_registry_defaults_come_from_the_settings_table(db_url: str, redis_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE guard.settings SET value = '5' WHERE key = 'breaker_failure_threshold'"
        )
        conn.execute(
            "UPDATE guard.settings SET value = '7' WHERE key = 'breaker_call_timeout_seconds'"
        )
    assert load_settings_config(db_url).failure_threshold == 5
    registry = BreakerRegistry.from_settings(
        db_url,
        redis_url=redis_url,
        templates={"appointment_booking:staff:": BreakerConfig(failure_threshold=7)},
    )
    assert registry.service(1).config.failure_threshold == 5
    assert registry.service(1).config.cooldown_seconds == 30
    # the booking path's calendar call is bounded by the row, not by BreakerConfig()'s none
    assert registry.service(1).config.call_timeout_seconds == 7
    assert registry.staff(9).config.failure_threshold == 7
    # a template is a whole BreakerConfig: none of the rows, its own (no) timeout
    assert registry.staff(9).config.call_timeout_seconds is None
    assert registry.global_().key == "appointment_booking:global"
    registry.close()


def test_unreadable_settings_keep_the_rows_shipped_call_timeout() -> None:
    nobody = f"postgresql://guard@127.0.0.1:{free_port()}/guard"  # nothing listens there
    config = load_settings_config(nobody)
    assert config.call_timeout_seconds == 10
    assert config.failure_threshold == BreakerConfig().failure_threshold


def test_a_setting_missing_from_the_rows_keeps_its_shipped_value() -> None:
    """As when the rows cannot be read: the call timeout a missing row leaves is its 10 s."""
    config = config_from_settings({"breaker_failure_threshold": 5})
    assert (config.failure_threshold, config.call_timeout_seconds) == (5, 10)
    assert config_from_settings({}, BreakerConfig()).call_timeout_seconds is None


@pytest.mark.parametrize(
    ("row", "timeout"), [(0, None), ("0", None), (0.5, 0.5), (7, 7.0)], ids=str
)
def test_a_call_timeout_row_of_0_means_no_timeout(row: object, timeout: float | None) -> None:
    config = config_from_settings({"breaker_call_timeout_seconds": row})
    assert config.call_timeout_seconds == timeout
    assert config.probe_lease_ms == (
        PROBE_LEASE_WITHOUT_TIMEOUT_MS if timeout is None else round(timeout * 1000) + 1000
    )


def test_a_negative_call_timeout_row_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"breaker_call_timeout_seconds is -1: .* or 0 for no"):
        config_from_settings({"breaker_call_timeout_seconds": -1})


def test_a_call_timeout_row_of_0_starts_a_registry(db_url: str, redis_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE guard.settings SET value = '0' WHERE key = 'breaker_call_timeout_seconds'"
        )
    registry = BreakerRegistry.from_settings(db_url, redis_url=redis_url, persist=False)
    try:
        assert registry.service(1).config.call_timeout_seconds is None
        assert registry.service(1).call(lambda: 42) == 42
    finally:
        registry.close()
