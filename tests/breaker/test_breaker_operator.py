"""Operator commands need an operator (issue 50, row 13).

The issue's case: the reporting login of docs/bi.md ran `guard breaker trip` on the demo; the
booking circuit was tripped in Redis (not recorded in PostgreSQL) and the command exited 0 with
an unprefixed `warning:` line. And `guard breaker reset` on an open circuit recorded
"closed -> closed".

Now every command that changes a circuit (trip, trip --create, reset, disable, force-close,
configure) first shows PostgreSQL that the login may change circuits (Booking Guard's owner
role, or a superuser); the reporting, reviewer and application logins are refused with one line
naming the role, before Redis sees a single command. Every change is recorded in
guard.breaker_events, from the state the circuit really had.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import psycopg
import pytest
import redis
from psycopg import sql

from guard.breaker import (
    BreakerRegistry,
    CircuitBreaker,
)
from guard.breaker.redis_store import hash_key
from tests.support.cli import BreakerCli, breaker_cli
from tests.support.queries import fetch_all, fetch_one

LOGINS = {
    "reporting": "Reporting Bot",  # the mixed-case name of tests/security, quoting included
    "reviewer": "guard_test_reviewer",
    "application": "guard_test_app",
    "owner": "guard_test_jobs",
}
CHANGES: dict[str, tuple[str, ...]] = {
    "trip": ("trip", "KEY", "--reason", "calendar down"),
    "trip --create": ("trip", "KEY", "--reason", "planned", "--create", "--cooldown", "60"),
    "reset": ("reset", "KEY", "--reason", "calendar back"),
    "disable": ("disable", "KEY", "--reason", "investigating"),
    "force-close": ("force-close", "KEY", "--reason", "must book"),
    "configure": ("configure", "KEY", "--failure-threshold", "9"),
}
OWNER_NEEDED = "needs Booking Guard's owner role (guard_owner by default) or a superuser"


@pytest.fixture
def logins(db_url: str) -> dict[str, str]:
    """kind -> a login that is a member of that kind's group role (roles are per cluster)."""
    with psycopg.connect(db_url, autocommit=True) as admin:
        groups: dict[str, str] = dict(
            admin.execute("SELECT kind, role_name FROM guard.role_names").fetchall()
        )
        for kind, login in LOGINS.items():
            if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone():
                admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(login)))
            admin.execute(
                sql.SQL("GRANT {} TO {}").format(
                    sql.Identifier(groups[kind]), sql.Identifier(login)
                )
            )
    return dict(LOGINS)


def as_login(db_url: str, login: str) -> str:
    return psycopg.conninfo.make_conninfo(db_url, user=login)


@pytest.fixture
def cli_as(redis_url: str) -> Callable[[str], BreakerCli]:
    def for_url(url: str) -> BreakerCli:
        return breaker_cli(url, redis_url)

    return for_url


@pytest.fixture
def cli_of(
    db_url: str, logins: dict[str, str], cli_as: Callable[[str], BreakerCli]
) -> Callable[[str], BreakerCli]:
    """kind -> `guard breaker` run by that kind's login."""
    return lambda kind: cli_as(as_login(db_url, logins[kind]))


@pytest.fixture
def raw_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def _commands_seen(client: redis.Redis) -> dict[str, int]:
    """Redis commands run since the last CONFIG RESETSTAT, but the INFO that asks."""
    stats = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if name not in ("cmdstat_info", "cmdstat_config|resetstat")
    }


def _events(db_url: str, key: str) -> list[tuple[int, str, str, str]]:
    query = (
        "SELECT generation, from_state, to_state, reason FROM guard.breaker_events"
        " WHERE key = %s ORDER BY generation"
    )
    return [(g, f, t, r) for g, f, t, r in fetch_all(db_url, query, (key,))]


@pytest.mark.parametrize("kind", ["reporting", "reviewer", "application"])
@pytest.mark.parametrize("command", list(CHANGES))
def test_a_login_that_is_no_operator_is_refused_before_redis_is_touched(
    db_url: str,
    logins: dict[str, str],
    cli_of: Callable[[str], BreakerCli],
    raw_redis: redis.Redis,
    tripped: CircuitBreaker,
    key: str,
    kind: str,
    command: str,
) -> None:
    before = raw_redis.hgetall(hash_key(key))
    raw_redis.config_resetstat()
    args = [key if arg == "KEY" else arg for arg in CHANGES[command]]
    result = cli_of(kind)(*args)

    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("guard: error: permission denied for table breaker_state"), line
    verb = args[0]
    assert f"`guard breaker {verb}` {OWNER_NEEDED}; you are logged in as {logins[kind]}" in line
    # Redis never heard of the command: no script, no read, no CONFIG
    assert _commands_seen(raw_redis) == {}
    assert raw_redis.hgetall(hash_key(key)) == before
    assert [to for _, _, to, _ in _events(db_url, key)] == ["open"]


def test_the_issue_case_reporting_trips_the_booking_circuit(
    db_url: str, cli_of: Callable[[str], BreakerCli], redis_url: str, key: str
) -> None:
    """A closed, working booking circuit; the reporting login tries to trip it."""
    registry = BreakerRegistry.from_settings(db_url, redis_url=redis_url)
    try:
        booking = registry.get(key)
        assert booking.call(lambda: "booked") == "booked"
        result = cli_of("reporting")("trip", key, "--reason", "curious analyst")
        assert result.exit_code == 1
        assert "warning" not in result.stderr
        assert booking.call(lambda: "booked") == "booked"  # still closed for every process
    finally:
        registry.close()


def test_the_owner_role_operates_and_every_change_is_recorded(
    db_url: str, cli_of: Callable[[str], BreakerCli], tripped: CircuitBreaker, key: str
) -> None:
    owner = cli_of("owner")
    for command in ("reset", "disable", "force-close", "trip", "configure", "reset"):
        args = [key if arg == "KEY" else arg for arg in CHANGES[command]]
        result = owner(*args, "--json")
        assert result.exit_code == 0, (command, result.stderr)
        assert result.stderr == ""
    assert _events(db_url, key) == [
        (1, "closed", "open", "3 consecutive failures"),
        (2, "open", "closed", "reset: calendar back"),
        (3, "closed", "disabled", "disable: investigating"),
        (4, "disabled", "forced_closed", "force_close: must book"),
        (5, "forced_closed", "forced_open", "force_open: calendar down"),
        (6, "forced_open", "forced_open", "configure: 3/2/30s -> 9/2/30s"),
        (7, "forced_open", "closed", "reset: calendar back"),
    ]
    state = fetch_one(
        db_url, "SELECT state, generation FROM guard.breaker_state WHERE key = %s", (key,)
    )
    assert state == ("closed", 7)


def test_reset_of_a_circuit_redis_lost_records_the_state_it_had(
    db_url: str,
    cli_as: Callable[[str], BreakerCli],
    raw_redis: redis.Redis,
    tripped: CircuitBreaker,
    key: str,
) -> None:
    """The demo's case: the circuit is open in PostgreSQL's record, Redis does not have it
    (the demo's breakers run without Redis; here Redis lost it). `reset` moves it from open."""
    raw_redis.delete(hash_key(key))
    result = cli_as(db_url)("reset", key, "--reason", "calendar back", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "closed"
    assert _events(db_url, key) == [
        (1, "closed", "open", "3 consecutive failures"),
        (2, "open", "closed", "reset: calendar back"),
    ]
    # and the history is one chain: every change moves from the state the one before left
    raw_redis.delete(hash_key(key))
    assert cli_as(db_url)("trip", key, "--reason", "again").exit_code == 0
    raw_redis.delete(hash_key(key))
    assert cli_as(db_url)("configure", key, "--cooldown", "45").exit_code == 0
    raw_redis.delete(hash_key(key))
    assert cli_as(db_url)("force-close", key, "--reason", "book anyway").exit_code == 0
    events = _events(db_url, key)
    assert [(f, t) for _, f, t, _ in events[2:]] == [
        ("closed", "forced_open"),
        ("forced_open", "forced_open"),
        ("forced_open", "forced_closed"),
    ]
    assert [g for g, *_ in events] == list(range(1, len(events) + 1))


def test_postgresql_unreachable_changes_nothing(
    cli_as: Callable[[str], BreakerCli],
    raw_redis: redis.Redis,
    tripped: CircuitBreaker,
    key: str,
) -> None:
    """A change PostgreSQL cannot record is not made: one line, exit 1, Redis untouched (it
    used to trip in Redis and say `warning:` with exit 0)."""
    before = raw_redis.hgetall(hash_key(key))
    raw_redis.config_resetstat()
    result = cli_as("postgresql://nobody@127.0.0.1:1/nothing")("reset", key, "--reason", "x")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("guard: error: cannot connect to"), line
    assert _commands_seen(raw_redis) == {}
    assert raw_redis.hgetall(hash_key(key)) == before
