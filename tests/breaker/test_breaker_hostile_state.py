"""Hostile stored states (issue 50, row 6): what the breaker reads from its two stores is
checked, repaired to a safe state and reported, never raised into a guarded call or an
operator's command.

The issue's case: the application login recorded a state of generation 9.2e18 for another
company's circuit; once Redis lost the circuit, 10 of 10 calls raised ``ValueError`` and `guard
breaker reset` and `trip` failed (any generation of 1e14 or more did it). Here the cases are
generated, field by value class, on both stores, with real servers:

* the Redis hash ``guard:breaker:{KEY}``: every field the scripts read, set to a huge number,
  1e14, a negative one, NaN, infinity, text, bytes that are not UTF-8, empty, a fraction (and
  for the state a code that does not exist);
* the row of ``guard.breaker_state`` (and the event log it is restored with): a huge, 1e14,
  negative or zero generation, an opened-at of infinity, -infinity or past year 9999, a state
  name that does not exist or is empty, negative counts. The CHECKs that refuse those now
  (``breaker_state_values_in_range``) are dropped first: what a database holds from before them
  must not break the breaker either.

For each: ten calls raise nothing but the breaker's own ``CircuitOpenError``; the repair is
reported (a warning in the log and a transition event whose reason says ``repaired``); and
`reset` and `trip` work, in code and on the command line.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest
import redis

from guard.breaker import (
    BreakerConfig,
    BreakerEvent,
    BreakerRegistry,
    CircuitBreaker,
    CircuitOpenError,
    EventKind,
    State,
)
from guard.breaker.redis_store import events_key, hash_key
from tests.support.cli import breaker_cli
from tests.support.logins import application_login
from tests.support.postgres import Cluster
from tests.support.queries import fetch_all
from tests.support.redis_server import RedisServer

_keys = itertools.count(1)

# A circuit with a count window, so that the window's fields are read too.
CONFIG = BreakerConfig(
    failure_threshold=3,
    cooldown_seconds=0.2,
    call_timeout_seconds=None,
    local_state_ttl_seconds=0,
    failure_rate_threshold=50,
    window_size=10,
    minimum_calls=5,
)

# Value classes for a field of the Redis hash (the scripts read every one with tonumber).
REDIS_VALUES: dict[str, bytes] = {
    "huge": b"9200000000000000000",
    "huge_float": b"9.2e18",
    "1e14": b"100000000000000",
    "negative": b"-5",
    "nan": b"nan",
    "inf": b"inf",
    "text": b"abc",
    "not_utf8": b"\xff\xfe\x00",
    "empty": b"",
    "fraction": b"1.5",
}
# Every field a decision reads: state (statistics included), the rules, the failure-rate window.
REDIS_FIELDS = (
    "st", "g", "f", "s", "oa", "pu", "ps", "oc", "lf", "cl",
    "cft", "cst", "ccd", "cwt", "cws", "cwm", "cfr", "csd", "csr", "ccg", "ccm",
    "we", "wn", "wf", "wsl", "wp",
)  # fmt: skip
REDIS_CASES = [
    *itertools.product(REDIS_FIELDS, REDIS_VALUES),
    ("st", "unknown_state"),
    ("cwt", "unknown_window_type"),
]
UNKNOWN_CODE = b"7"


def _value(name: str) -> bytes:
    return UNKNOWN_CODE if name.startswith("unknown") else REDIS_VALUES[name]


@pytest.fixture(scope="module")
def redis_module() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def raw_redis(redis_module: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_module.url)
    yield client
    client.close()


def _new_key() -> str:
    return f"appointment_booking:service:hostile{next(_keys)}"


def _ten_calls(breaker: CircuitBreaker) -> Counter[str]:
    """What ten calls of a working dependency ended in: ``ok``, ``open`` (the breaker's own
    refusal) or the name of any other exception (what must never happen)."""
    outcomes: Counter[str] = Counter()
    for _ in range(10):
        try:
            breaker.call(lambda: "booked")
            outcomes["ok"] += 1
        except CircuitOpenError:
            outcomes["open"] += 1
        except Exception as error:  # the finding: anything else reached the application
            outcomes[type(error).__name__] += 1
    return outcomes


def _unexpected(outcomes: Counter[str]) -> dict[str, int]:
    return {name: n for name, n in outcomes.items() if name not in ("ok", "open")}


def _repaired_in_redis(client: redis.Redis, key: str) -> bool:
    items = client.lrange(events_key(key), 0, -1)
    return any(b"repaired" in item for item in items)


@pytest.mark.parametrize(("field", "value_class"), REDIS_CASES)
def test_a_hostile_redis_field_is_repaired_and_reported(
    redis_module: RedisServer,
    raw_redis: redis.Redis,
    caplog: pytest.LogCaptureFixture,
    field: str,
    value_class: str,
) -> None:
    key = _new_key()
    events: list[BreakerEvent] = []
    breaker = CircuitBreaker(key, CONFIG, redis_url=redis_module.url, listeners=(events.append,))
    try:
        for _ in range(2):
            breaker.call(lambda: "booked")  # the circuit, its rules and its window exist
        raw_redis.hset(hash_key(key), field, _value(value_class))

        with caplog.at_level(logging.WARNING, logger="guard.breaker"):
            outcomes = _ten_calls(breaker)
        assert _unexpected(outcomes) == {}, outcomes
        # decided by Redis, not by a process that gave up on it
        assert not breaker.backend.health.down, caplog.text
        # reported: the log, the transition the listeners heard, Redis's event list
        assert "repaired" in caplog.text
        repairs = [e for e in events if e.kind is EventKind.TRANSITION and "repaired" in e.reason]
        assert len(repairs) == 1, [e.reason for e in events if e.kind is EventKind.TRANSITION]
        assert field in repairs[0].reason
        assert _repaired_in_redis(raw_redis, key)
        # a working dependency gets through again; an unknown state is restored, here (no
        # PostgreSQL) as this process last saw it: closed
        if field == "st":
            assert repairs[0].state is State.CLOSED and outcomes == Counter(ok=10), outcomes
        elif outcomes["ok"] == 0:
            assert repairs[0].state is State.OPEN
        # reset and trip always work
        assert breaker.reset("hostile state test") is State.CLOSED
        assert breaker.call(lambda: "booked") == "booked"
        assert breaker.force_open("hostile state test") is State.FORCED_OPEN
        assert breaker.reset("hostile state test") is State.CLOSED
        snapshot = breaker.snapshot()
        assert snapshot.state is State.CLOSED and snapshot.generation > 0
    finally:
        breaker.backend.close()


def test_a_sound_hash_is_not_reported(redis_module: RedisServer, raw_redis: redis.Redis) -> None:
    """The checks do not cry wolf: a circuit used normally (opened, probed, closed, window
    filled and wrapped, tripped, reset and configured) never records a repair; each of those
    changes is a transition of its own (configure too: recorded like the others)."""
    key = _new_key()
    events: list[BreakerEvent] = []
    breaker = CircuitBreaker(key, CONFIG, redis_url=redis_module.url, listeners=(events.append,))

    def down() -> None:
        raise ConnectionError("calendar down")

    try:
        for _ in range(12):
            breaker.call(lambda: "booked")
        for _ in range(3):
            with pytest.raises((ConnectionError, CircuitOpenError)):
                breaker.call(down)
        breaker.force_open("maintenance")
        breaker.reset("done")
        breaker.configure()
        assert _ten_calls(breaker) == Counter(ok=10)
        reasons = [e.reason for e in events if e.kind is EventKind.TRANSITION]
        assert reasons[-3:] == [
            "force_open: maintenance",
            "reset: done",
            "configure: 3/2/0.2s,"
            " 50% failed of the last 10 calls (min 5) -> 3/2/0.2s, 50% failed"
            " of the last 10 calls (min 5)",
        ]
        assert not any("repaired" in reason for reason in reasons)
        assert not _repaired_in_redis(raw_redis, key)
    finally:
        breaker.backend.close()


# ---------------------------------------------------------------------------- PostgreSQL side

# (column, value class, SQL value): what a row of guard.breaker_state may hold from before its
# CHECKs; "events" puts the generation into guard.breaker_events (the restore takes the highest).
PG_CASES: list[tuple[str, str, str]] = [
    ("generation", "huge", "9200000000000000000"),
    ("generation", "1e14", "100000000000000"),
    ("generation", "negative", "-5"),
    ("generation", "zero", "0"),
    ("events.generation", "huge", "9200000000000000000"),
    ("opened_at", "infinity", "'infinity'"),
    ("opened_at", "-infinity", "'-infinity'"),
    ("opened_at", "past year 9999", "'294276-01-01 00:00:00+00'"),
    ("opened_at", "before 1970", "'1900-01-01 00:00:00+00'"),
    ("state", "unknown", "'exploded'"),
    ("state", "empty", "''"),
]
# Values the restore does not use, only `guard breaker list/show` shows: they must not break
# those (nothing to repair in a decision, so nothing is reported for them).
PG_SHOWN_ONLY: list[tuple[str, str, str]] = [
    ("failure_count", "negative", "-1"),
    ("success_count", "negative", "-1"),
    ("changed_at", "infinity", "'infinity'"),
]


@pytest.fixture(scope="module")
def hostile_db(pg_cluster: Cluster, template_database: str) -> Iterator[str]:
    """One database for the module, with the CHECKs that refuse hostile rows dropped (a
    database from before them, or one whose DBA dropped them)."""
    with pg_cluster.database(template=template_database) as url:
        with psycopg.connect(url, autocommit=True) as admin:
            for table, constraint in (
                ("breaker_state", "breaker_state_values_in_range"),
                ("breaker_state", "breaker_state_state_check"),
                ("breaker_events", "breaker_events_values_in_range"),
            ):
                admin.execute(f"ALTER TABLE guard.{table} DROP CONSTRAINT IF EXISTS {constraint}")
        yield url


def _write_hostile_row(db_url: str, key: str, column: str, value: str) -> None:
    """A recorded forced_open (an operator's trip: it must survive) with one hostile value."""
    row = {
        "state": "'forced_open'",
        "generation": "5",
        "failure_count": "0",
        "success_count": "0",
        "opened_at": "now()",
        "changed_at": "now()",
    }
    events_generation = None
    if column == "events.generation":
        events_generation = value
    else:
        row[column] = value
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(
            f"INSERT INTO guard.breaker_state (key, {', '.join(row)})"
            f" VALUES (%s, {', '.join(row.values())})",
            (key,),
        )
        if events_generation is not None:
            admin.execute(
                "INSERT INTO guard.breaker_events (key, generation, from_state, to_state, reason,"
                f" host, pid, occurred_at) VALUES (%s, {events_generation}, 'closed',"
                " 'forced_open', 'x', 'h', 1, now())",
                (key,),
            )


@pytest.mark.parametrize(("column", "value_class", "value"), PG_CASES + PG_SHOWN_ONLY)
def test_a_hostile_postgresql_row_is_repaired_and_reported(
    hostile_db: str,
    redis_module: RedisServer,
    caplog: pytest.LogCaptureFixture,
    column: str,
    value_class: str,
    value: str,
) -> None:
    """Redis has lost the circuit (here: never had it); the breaker restores it from the
    hostile row."""
    key = _new_key()
    _write_hostile_row(hostile_db, key, column, value)
    registry = BreakerRegistry.from_settings(
        hostile_db, redis_url=redis_module.url, templates={"appointment_booking:": CONFIG}
    )
    try:
        breaker = registry.get(key)
        with caplog.at_level(logging.WARNING, logger="guard.breaker"):
            outcomes = _ten_calls(breaker)
        assert _unexpected(outcomes) == {}, outcomes
        assert not breaker.backend.health.down, caplog.text
    finally:
        registry.close()
    if (column, value_class, value) in PG_CASES:
        # reported: the log, and an event of the repair in PostgreSQL
        assert "repaired" in caplog.text
        with psycopg.connect(hostile_db) as conn:
            reasons = [
                r
                for (r,) in conn.execute(
                    "SELECT reason FROM guard.breaker_events WHERE key = %s", (key,)
                ).fetchall()
            ]
        assert any("repaired" in reason for reason in reasons), reasons

    cli = breaker_cli(hostile_db, redis_module.url)
    for args in (("list", "--json"), ("show", key, "--json")):
        shown = cli(*args)
        assert shown.exit_code == 0, (args, shown.stderr)
        json.loads(shown.stdout)
    for action in ("reset", "trip", "reset"):
        result = cli(action, key, "--reason", "hostile state test", "--json")
        assert result.exit_code == 0, (action, result.stderr)
    assert json.loads(cli("show", key, "--json").stdout)["state"] == "closed"


def test_a_hostile_row_read_by_the_cli_before_redis_has_the_circuit(
    hostile_db: str, redis_module: RedisServer
) -> None:
    """`guard breaker list` and `show` read guard.breaker_state while Redis has nothing: an
    infinite time in any row is shown as none, never a failure of the whole list."""
    key = _new_key()
    _write_hostile_row(hostile_db, key, "opened_at", "'infinity'")
    with psycopg.connect(hostile_db, autocommit=True) as admin:
        admin.execute(
            "INSERT INTO guard.breaker_events (key, generation, from_state, to_state, reason,"
            " host, pid, occurred_at) VALUES (%s, 4, 'closed', 'forced_open', 'x', 'h', 1,"
            " 'infinity')",
            (key,),
        )
    cli = breaker_cli(hostile_db, redis_module.url)
    listed = cli("list", "--json")
    assert listed.exit_code == 0, listed.stderr
    [row] = [r for r in json.loads(listed.stdout) if r["key"] == key]
    assert (row["state"], row["source"], row["opened_at"]) == ("forced_open", "postgresql", None)
    shown = cli("show", key, "--json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["events"][0]["occurred_at"] is None


# ---------------------------------------------------------------------------- the case


@pytest.fixture
def app_url(db_url: str) -> str:
    """A login of the application role (as the booking application connects)."""
    return application_login(db_url, "guard_test_app")


# (0 and negative ones were refused already.)
HOSTILE_GENERATIONS = [9_200_000_000_000_000_000, 10**14, 10**12 + 1]


@pytest.mark.parametrize("generation", HOSTILE_GENERATIONS)
def test_the_application_login_cannot_record_a_generation_the_breaker_cannot_restore(
    db_url: str, app_url: str, redis_url: str, generation: int
) -> None:
    """The issue's case end to end: the application login records a state for another
    company's circuit; Redis has lost the circuit. The write is refused, and the circuit's
    calls and the operator's commands work."""
    key = "appointment_booking:service:4242"
    transition = {
        "key": key,
        "generation": generation,
        "from_state": "closed",
        "to_state": "forced_open",
        "host": "h",
        "pid": 1,
        "occurred_at": "2026-01-01T00:00:00Z",
    }
    with psycopg.connect(app_url, autocommit=True) as app:
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            app.execute(
                "SELECT guard.record_breaker_transitions(%s::jsonb)", (json.dumps([transition]),)
            )
        # what a breaker writes is still accepted
        transition["generation"] = 3
        app.execute(
            "SELECT guard.record_breaker_transitions(%s::jsonb)", (json.dumps([transition]),)
        )
    registry = BreakerRegistry.from_settings(
        db_url, redis_url=redis_url, templates={"appointment_booking:": CONFIG}
    )
    try:
        outcomes = _ten_calls(registry.get(key))
    finally:
        registry.close()
    assert outcomes == Counter(open=10)  # the recorded trip holds, nothing else reached us
    cli = breaker_cli(db_url, redis_url)
    for action in ("reset", "trip"):
        result = cli(action, key, "--reason", "issue 50 row 6")
        assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("failure_count", "-1"),
        ("success_count", "-1"),
        ("opened_at", "'infinity'"),
        ("changed_at", "'-infinity'"),
        ("changed_at", "'3000-01-01 00:00:00+00'"),
    ],
)
def test_the_breaker_tables_refuse_values_no_breaker_writes(
    db_url: str, column: str, value: str
) -> None:
    """The CHECKs (breaker_state_values_in_range, breaker_events_values_in_range): even the
    owner cannot store a value the breaker could not restore."""
    columns = {
        "failure_count": "0",
        "success_count": "0",
        "opened_at": "now()",
        "changed_at": "now()",
        column: value,
    }
    with psycopg.connect(db_url, autocommit=True) as admin:
        with pytest.raises(psycopg.errors.CheckViolation):
            admin.execute(
                f"INSERT INTO guard.breaker_state (key, state, generation, {', '.join(columns)})"
                f" VALUES ('k', 'open', 1, {', '.join(columns.values())})"
            )
        if column in ("failure_count", "success_count"):
            with pytest.raises(psycopg.errors.CheckViolation):
                admin.execute(
                    "INSERT INTO guard.breaker_events (key, generation, from_state, to_state,"
                    f" reason, host, pid, occurred_at, {column}) VALUES ('k', 1, 'closed',"
                    f" 'open', 'x', 'h', 1, now(), {value})"
                )


@pytest.mark.slow
def test_migration_0075_repairs_rows_no_breaker_wrote(empty_db_url: str) -> None:
    """A database from before the CHECKs, holding what the application login could record:
    0075 repairs or removes those rows and 0075a validates the CHECKs."""
    from guard.schema.migrate import Migrator

    with Migrator(empty_db_url) as migrator:
        migrator.apply(to="0074b_review_items_unsettled_index")
    with psycopg.connect(empty_db_url, autocommit=True) as admin:
        admin.execute(
            "INSERT INTO guard.breaker_state (key, state, generation, failure_count,"
            " success_count, opened_at, changed_at) VALUES"
            " ('huge', 'forced_open', 9200000000000000000, 0, 0, now(), now()),"
            " ('counts', 'open', 4, -3, -1, 'infinity', 'infinity'),"
            " ('fine', 'open', 7, 3, 0, now(), now())"
        )
        admin.execute(
            "INSERT INTO guard.breaker_events (key, generation, from_state, to_state, reason,"
            " host, pid, occurred_at, failure_count) VALUES"
            " ('huge', 9200000000000000000, 'closed', 'forced_open', 'x', 'h', 1, now(), 0),"
            " ('counts', 4, 'closed', 'open', 'x', 'h', 1, '-infinity', -2)"
        )
    with Migrator(empty_db_url) as migrator:
        migrator.apply(to="0075a_breaker_values_in_range_validate")
    states = fetch_all(
        empty_db_url,
        "SELECT key, generation, failure_count, success_count, opened_at IS NULL,"
        " isfinite(changed_at) FROM guard.breaker_state ORDER BY key",
    )
    events = fetch_all(
        empty_db_url, "SELECT key, failure_count, isfinite(occurred_at) FROM guard.breaker_events"
    )
    validated = fetch_all(
        empty_db_url,
        "SELECT conname, convalidated FROM pg_constraint"
        " WHERE conname LIKE 'breaker_%%_values_in_range' ORDER BY conname",
    )
    assert states == [("counts", 4, 0, 0, True, True), ("fine", 7, 3, 0, False, True)]
    assert events == [("counts", 0, True)]
    assert validated == [
        ("breaker_events_values_in_range", True),
        ("breaker_state_values_in_range", True),
    ]
