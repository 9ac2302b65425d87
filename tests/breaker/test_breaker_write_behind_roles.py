"""Breaker history written behind as the application role, a log that says what went wrong,
and a write-behind that follows PostgreSQL through restarts and a standby promotion (real
servers: ``pg_ctl restart -m fast`` / ``-m immediate``, ``pg_ctl promote``)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from guard.breaker import (
    BreakerConfig,
    BreakerEvent,
    BreakerRegistry,
    EventKind,
    PostgresWriteBehind,
    State,
)
from tests.support.breakers import fail_calls
from tests.support.pg_node import PgNode, migrated_node
from tests.support.redis_server import free_port

APP_LOGIN = "guard_test_breaker_app"
NOBODY_LOGIN = "guard_test_breaker_nobody"


def _as(url: str, login: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{login}@{parts.hostname}:{parts.port}"))


@pytest.fixture
def logins(db_url: str) -> dict[str, str]:
    """An application login (member of the application group role) and a login with no
    Booking Guard role at all, as URLs of the test database."""
    with psycopg.connect(db_url, autocommit=True) as admin:
        row = admin.execute("SELECT guard.role('application')").fetchone()
        assert row is not None
        app_group = row[0]
        for login in (APP_LOGIN, NOBODY_LOGIN):
            if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone():
                admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(login)))
        admin.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(app_group), sql.Identifier(APP_LOGIN))
        )
    return {"application": _as(db_url, APP_LOGIN), "nobody": _as(db_url, NOBODY_LOGIN)}


def _trip(registry: BreakerRegistry, key: str) -> None:
    fail_calls(registry.get(key), 3)


def _history(db_url: str, key: str) -> list[tuple[object, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT e.generation, e.to_state, s.state FROM guard.breaker_events AS e"
            " JOIN guard.breaker_state AS s USING (key) WHERE key = %s ORDER BY 1",
            (key,),
        ).fetchall()


def test_application_role_writes_breaker_history(
    db_url: str, logins: dict[str, str], redis_url: str, key: str
) -> None:
    app_url = logins["application"]
    with psycopg.connect(app_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        # What the write-behind used to do: the application role may not write the tables...
        conn.execute(
            "INSERT INTO guard.breaker_state (key, state, generation, changed_at)"
            " VALUES (%s, 'open', 1, now())",
            (key,),
        )
    # ...so it goes through guard.record_breaker_transitions, which it may execute.
    registry = BreakerRegistry.from_settings(app_url, redis_url=redis_url)
    registry.add_template(key, BreakerConfig(call_timeout_seconds=None))
    _trip(registry, key)
    registry.get(key).force_open("maintenance", actor="ops@host")
    registry.close()
    assert _history(db_url, key) == [(1, "open", "forced_open"), (2, "forced_open", "forced_open")]


def test_the_function_checks_its_input(logins: dict[str, str]) -> None:
    with psycopg.connect(logins["application"], autocommit=True) as conn:
        for bad, message in (
            ("{}", "expected a JSON array"),
            ("[1]", "must be a JSON object"),
            # each one wrong value in an otherwise valid transition: the key's syntax and
            # length, the generation's range and wholeness, the states
            (_transition("a{b}", NOW), "invalid transition"),
            (_transition("", NOW), "invalid transition"),
            (_transition("k" * 201, NOW), "invalid transition"),
            (_transition(None, NOW), "invalid transition"),
            (_transition("k", NOW, generation=0), "invalid transition"),
            (_transition("k", NOW, generation=10**12 + 1), "invalid transition"),
            (_transition("k", NOW, generation=1.5), "invalid transition"),
            (_transition("k", NOW, generation=None), "invalid transition"),
            (_transition("k", NOW, from_state=None), "invalid transition"),
            (_transition("k", NOW, from_state="gone"), "invalid transition"),
            (_transition("k", NOW, to_state=None), "invalid transition"),
            (_transition("k", NOW, to_state="gone"), "invalid transition"),
            # a transition without a time, or with one a breaker cannot write (1970 to 2286)
            (_transition("k", None), "invalid transition"),
            (_transition("k", "1969-12-31T23:59:59.999999Z"), "invalid transition"),
            (_transition("k", "2286-11-20T17:46:40.000001Z"), "invalid transition"),
            # the opening a breaker keeps with its state: the same years
            (_transition("k", NOW, opened_at="1969-12-31T23:59:59.999999Z"), "invalid transition"),
            (_transition("k", NOW, opened_at="2286-11-20T17:46:40.000001Z"), "invalid transition"),
            # no writer, or one no process can be; a count a breaker cannot have
            (_transition("k", NOW, host=None), "invalid transition"),
            (_transition("k", NOW, pid=None), "invalid transition"),
            (_transition("k", NOW, pid=-1), "invalid transition"),
            (_transition("k", NOW, pid=2147483648), "invalid transition"),
            (_transition("k", NOW, pid=1.5), "invalid transition"),
            (_transition("k", NOW, failure_count=1.5), "invalid transition"),
            (_transition("k", NOW, failure_count=-1), "invalid transition"),
            (_transition("k", NOW, failure_count=2147483648), "invalid transition"),
            (_transition("k", NOW, success_count=-1), "invalid transition"),
            (_transition("k", NOW, success_count=2147483648), "invalid transition"),
            (_transition("k", NOW, success_count=0.5), "invalid transition"),
        ):
            with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
                conn.execute("SELECT guard.record_breaker_transitions(%s::jsonb)", (bad,))
        # the first and the last moment a breaker can write are recorded, and the edges of a
        # pid and of the counts
        longest = "A-z_0.9:/" + "k" * 191
        for key, transition in (
            ("longest", _transition(longest, NOW, generation=10**12)),
            ("first", _transition("first", "1970-01-01T00:00:00Z")),
            ("no counts", _transition("no-counts", NOW, failure_count=None, success_count=None)),
            ("last", _transition("last", "2286-11-20T17:46:40Z")),
            ("opened first", _transition("opened-first", NOW, opened_at="1970-01-01T00:00:00Z")),
            ("opened last", _transition("opened-last", NOW, opened_at="2286-11-20T17:46:40Z")),
            ("pid-0", _transition("pid-0", NOW, pid=0, failure_count=0, success_count=0)),
            (
                "pid-max",
                _transition(
                    "pid-max", NOW, pid=2147483647, failure_count=2147483647, success_count=2
                ),
            ),
        ):
            row = conn.execute(
                "SELECT guard.record_breaker_transitions(%s::jsonb)", (transition,)
            ).fetchone()
            assert row == (1,), key


def test_a_generation_recorded_again_changes_nothing(db_url: str, logins: dict[str, str]) -> None:
    """A retried batch, or a second writer with the same generation and other counts, records
    no event and leaves the state as the first write left it; a newer generation moves it."""
    state = (
        "SELECT state, generation, failure_count, updated_at FROM guard.breaker_state"
        " WHERE key = 'replayed'"
    )
    with psycopg.connect(logins["application"], autocommit=True) as conn:
        first = _transition("replayed", NOW, failure_count=3)
        record = "SELECT guard.record_breaker_transitions(%s::jsonb)"
        assert conn.execute(record, (first,)).fetchone() == (1,)
    with psycopg.connect(db_url, autocommit=True) as conn:
        before = conn.execute(state).fetchone()
    assert before is not None and before[:3] == ("open", 1, 3)
    with psycopg.connect(logins["application"], autocommit=True) as conn:
        again = _transition("replayed", NOW, failure_count=5, to_state="forced_open")
        assert conn.execute(record, (again,)).fetchone() == (0,)
        assert conn.execute(record, (first,)).fetchone() == (0,)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute(state).fetchone() == before
    with psycopg.connect(logins["application"], autocommit=True) as conn:
        newer = _transition("replayed", NOW, generation=2, failure_count=0, to_state="half_open")
        assert conn.execute(record, (newer,)).fetchone() == (1,)
    with psycopg.connect(db_url, autocommit=True) as conn:
        after = conn.execute(state).fetchone()
    assert after is not None and after[:3] == ("half_open", 2, 0)


NOW = "2026-01-01T00:00:00Z"


def _transition(key: str | None, occurred_at: str | None, **fields: object) -> str:
    return json.dumps(
        [
            {
                "key": key,
                "generation": 1,
                "from_state": "closed",
                "to_state": "open",
                "host": "h",
                "pid": 1,
                "occurred_at": occurred_at,
                **fields,
            }
        ]
    )


def _event(key: str, generation: int) -> BreakerEvent:
    return BreakerEvent(
        kind=EventKind.TRANSITION,
        key=key,
        state=State.OPEN if generation % 2 else State.HALF_OPEN,
        generation=generation,
        occurred_at=datetime.now(UTC),
        host="h",
        pid=1,
        from_state=State.HALF_OPEN if generation % 2 else State.OPEN,
        reason="test",
    )


def test_the_log_says_permission_denied_not_unreachable(
    db_url: str, logins: dict[str, str], key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="guard.breaker")
    writer = PostgresWriteBehind(logins["nobody"], min_retry_seconds=0.05, max_retry_seconds=0.1)
    writer.submit([_event(key, 1)])
    assert not writer.flush(timeout=0.5)
    writer.database_url = db_url  # the DBA fixes the role; the queued event is then written
    assert writer.close(timeout=10)
    messages = [r.getMessage() for r in caplog.records]
    refused = [m for m in messages if "refused" in m]
    assert len(refused) == 1, messages
    assert "permission denied (InsufficientPrivilege" in refused[0]
    assert "guard.record_breaker_transitions" in refused[0]
    assert not any("unreachable" in m for m in messages)
    assert _history(db_url, key) == [(1, "open", "open")]


def test_the_log_says_unreachable_when_it_is(key: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="guard.breaker")
    writer = PostgresWriteBehind(
        f"postgresql://postgres:secret@127.0.0.1:{free_port()}/x", min_retry_seconds=0.05
    )
    writer.submit([_event(key, 1)])
    assert not writer.flush(timeout=0.3)
    writer.close(timeout=0.1)
    [line] = [r.getMessage() for r in caplog.records if "write-behind" in r.getMessage()][:1]
    assert "PostgreSQL unreachable (OperationalError)" in line and "secret" not in line


# ---------------------------------------------------------------------- failover
@pytest.fixture
def primary() -> Iterator[PgNode]:
    """A migrated PostgreSQL of this test's own (the faults would hit the shared one's users)."""
    with migrated_node() as node:
        yield node


def _multi_host(*nodes_or_ports: PgNode | int) -> str:
    hosts = ",".join(f"127.0.0.1:{n.port if isinstance(n, PgNode) else n}" for n in nodes_or_ports)
    return f"postgresql://postgres@{hosts}/postgres?target_session_attrs=read-write"


class Producer:
    """Submits one transition every few ms from a thread, as a busy breaker process would."""

    def __init__(self, writer: PostgresWriteBehind, key: str) -> None:
        self.writer, self.key = writer, key
        self.generation = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.generation += 1
            self.writer(_event(self.key, self.generation))
            time.sleep(0.005)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.generation


def _recorded(url: str, key: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT generation FROM guard.breaker_events WHERE key = %s ORDER BY 1", (key,)
        ).fetchall()
    return [g for (g,) in rows]


@pytest.mark.slow
def test_write_behind_survives_restarts_with_a_multi_host_url(primary: PgNode, key: str) -> None:
    """A dead first host and the real one, target_session_attrs=read-write; PostgreSQL restarted
    with -m fast and then -m immediate while transitions keep coming: none is lost or doubled."""
    writer = PostgresWriteBehind(
        _multi_host(free_port(), primary), min_retry_seconds=0.05, max_retry_seconds=0.5
    )
    producer = Producer(writer, key)
    for mode in ("fast", "immediate"):
        time.sleep(0.5)
        primary.restart(mode)
    time.sleep(0.5)
    produced = producer.stop()
    assert writer.close(timeout=30)
    assert _recorded(primary.url(), key) == list(range(1, produced + 1))
    assert writer.dropped == 0


@pytest.mark.slow
def test_write_behind_follows_a_promoted_standby(primary: PgNode, key: str) -> None:
    """Streaming standby promoted after the primary crashed: the writer's URL lists both; it
    keeps writing to the old primary, then finds the promoted standby by itself. Replication is
    synchronous, as an HA setup that must not lose an acknowledged commit runs it, so every event
    the old primary acknowledged is on the standby."""
    standby = primary.standby("breaker_write_behind_test")
    try:
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            conn.execute("SELECT pg_reload_conf()")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and conn.execute(
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
            ).fetchone() != (1,):
                time.sleep(0.05)
        writer = PostgresWriteBehind(
            _multi_host(primary, standby), min_retry_seconds=0.05, max_retry_seconds=0.5
        )
        producer = Producer(writer, key)
        time.sleep(0.5)
        primary.stop("immediate")
        standby.promote()
        time.sleep(0.5)
        produced = producer.stop()
        assert writer.close(timeout=30)
        recorded = _recorded(standby.url(), key)
        # Every event is there, written once, whichever node took it.
        assert recorded == list(range(1, produced + 1))
        with psycopg.connect(standby.url()) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    finally:
        standby.destroy()
