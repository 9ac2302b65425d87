"""`guard breaker …` against real Redis and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis

from guard.breaker import (
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    State,
)
from guard.breaker.redis_store import hash_key
from tests.support.cli import BreakerCli, breaker_cli
from tests.support.queries import fetch_all, fetch_one

CONFIG = BreakerConfig(cooldown_seconds=30, call_timeout_seconds=None, local_state_ttl_seconds=0)


def test_list_and_show_as_json(cli: BreakerCli, tripped: CircuitBreaker, key: str) -> None:
    listed = cli("list", "--json")
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    assert (row["key"], row["state"], row["failure_count"]) == (key, "open", 3)
    assert 0 < row["recovers_in_seconds"] <= 30

    shown = cli("show", key, "--json")
    assert shown.exit_code == 0, shown.output
    view = json.loads(shown.output)
    assert view["opened_at"] is not None and view["source"] == "redis"
    assert [event["to_state"] for event in view["events"]] == ["open"]


def test_human_output_is_a_table(cli: BreakerCli, tripped: CircuitBreaker, key: str) -> None:
    result = cli("show", key)
    assert result.exit_code == 0, result.output
    assert key in result.output and "recent events" in result.output
    assert "3 consecutive failures" in result.output


def test_unknown_key_is_a_clear_error(cli: BreakerCli) -> None:
    for args, hint in (
        (("show", "appointment_booking:service:404"), ""),
        (
            ("trip", "appointment_booking:service:404", "--reason", "x"),
            "; to prepare a circuit that was never used: add --create",
        ),
    ):
        result = cli(*args)
        assert result.exit_code == 1
        assert result.stderr == (
            "guard: error: unknown circuit key 'appointment_booking:service:404'"
            f" (see `guard breaker list`){hint}\n"
        )


def test_trip_and_reset_are_shared_and_recorded(
    cli: BreakerCli, tripped: CircuitBreaker, key: str, db_url: str
) -> None:
    result = cli("reset", key, "--reason", "dependency fixed", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["state"] == "closed"
    assert tripped.call(lambda: "booked") == "booked"  # the application sees the reset

    result = cli("trip", key, "--reason", "maintenance window", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["recorded_in_postgresql"] is True
    with pytest.raises(CircuitOpenError) as rejected:
        tripped.call(lambda: "booked")
    assert rejected.value.state.label == "forced_open"

    assert cli("disable", key, "--reason", "investigating").exit_code == 0
    rows = fetch_all(
        db_url,
        "SELECT generation, to_state, reason, actor IS NOT NULL FROM guard.breaker_events"
        " WHERE key = %s ORDER BY generation",
        (key,),
    )
    state = fetch_one(
        db_url, "SELECT state, generation FROM guard.breaker_state WHERE key = %s", (key,)
    )
    assert rows == [
        (1, "open", "3 consecutive failures", False),
        (2, "closed", "reset: dependency fixed", True),
        (3, "forced_open", "force_open: maintenance window", True),
        (4, "disabled", "disable: investigating", True),
    ]
    assert state == ("disabled", 4)


def test_reason_is_required(cli: BreakerCli, tripped: CircuitBreaker, key: str) -> None:
    result = cli("trip", key)
    assert result.exit_code != 0 and "--reason" in result.output


def test_redis_down_is_one_clear_line(db_url: str, key: str) -> None:
    cli = breaker_cli(db_url, "redis://:hunter2@127.0.0.1:1/0")
    result = cli("trip", key, "--reason", "x")
    assert result.exit_code == 1
    assert result.stderr.startswith("guard: error: cannot reach breaker state")
    assert result.stderr.count("\n") == 1
    assert "hunter2" not in result.output


def test_trip_prepares_a_circuit_never_used(
    cli: BreakerCli, db_url: str, redis_url: str, key: str
) -> None:
    """A planned calendar outage: the circuit is tripped, with its rules, before any call."""
    refused = cli("trip", key, "--reason", "calendar maintenance")
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"guard: error: unknown circuit key {key!r} (see `guard breaker list`);"
        " to prepare a circuit that was never used: add --create\n"
    )
    rules_alone = cli("trip", key, "--reason", "x", "--cooldown", "60")
    assert rules_alone.exit_code == 2 and "go with --create" in rules_alone.stderr

    result = cli(
        "trip", key, "--reason", "calendar maintenance", "--create",
        "--failure-threshold", "4", "--cooldown", "60", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "forced_open"
    shown = json.loads(cli("show", key, "--json").stdout)
    assert shown["state"] == "forced_open"
    assert (shown["failure_threshold"], shown["cooldown_seconds"]) == (4, 60)

    # The application's first call meets the prepared circuit: rejected, not sent.
    circuit = CircuitBreaker(key, CONFIG, redis_url=redis_url)
    with pytest.raises(CircuitOpenError):
        circuit.call(lambda: "booked")
    events = fetch_all(
        db_url,
        "SELECT from_state, to_state, reason FROM guard.breaker_events WHERE key = %s"
        " ORDER BY generation",
        (key,),
    )
    # every change is recorded: the circuit created with its rules, then tripped
    assert events == [
        ("closed", "closed", "configure: none -> 4/2/60s"),
        ("closed", "forced_open", "force_open: calendar maintenance"),
    ]

    # --create on a known circuit keeps its rules (configure changes them).
    again = cli("trip", key, "--reason", "still down", "--create", "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(cli("show", key, "--json").stdout)["failure_threshold"] == 4


def test_configure_sets_a_failure_rate_window_for_every_process(
    cli: BreakerCli, redis_url: str, key: str
) -> None:
    """`configure` stores the window's rules with the circuit; an application configured
    without a window follows them; `show` prints the rules and what the window holds."""
    result = cli(
        "configure", key, "--failure-rate", "50", "--window-size", "40",
        "--minimum-calls", "20", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "key": key,
        "failure_threshold": 3,
        "success_threshold": 2,
        "cooldown_seconds": 30.0,
        "cooldown_growth_factor": None,
        "max_cooldown_seconds": None,
        "window_type": "count",
        "window_size": 40,
        "minimum_calls": 20,
        "failure_rate_threshold": 50,
        "slow_call_seconds": None,
        "slow_call_rate_threshold": None,
        "previous": None,
    }
    app = CircuitBreaker(key, CONFIG, redis_url=redis_url)

    def down() -> None:
        raise ConnectionError("booking API down")

    for i in range(10):
        with contextlib.suppress(ConnectionError):
            app.call(down if i % 2 else (lambda: "booked"))
    shown = json.loads(cli("show", key, "--json").stdout)
    assert (shown["window_calls"], shown["window_failures"], shown["window_slow_calls"]) == (
        10,
        5,
        0,
    )
    assert (shown["failure_rate_threshold"], shown["window_size"]) == (50, 40)
    table = cli("show", key).stdout
    assert "3/2/30s, 50% failed of the last 40 calls (min 20)" in table
    assert "10 calls, 5 failed, 0 slow" in table
    for i in range(10):
        with contextlib.suppress(ConnectionError, CircuitOpenError):
            app.call(down if i % 2 else (lambda: "booked"))
    assert app.state is State.OPEN  # the 20th call: 10 of 20 failed

    missing = cli("configure", key, "--slow-call-rate", "80")
    assert missing.exit_code == 1
    assert missing.stderr == (
        "guard: error: --slow-call-rate needs --slow-call-duration (what a slow call is)\n"
    )
    too_long = cli("configure", key, "--window-type", "time", "--window-size", "601")
    assert too_long.exit_code == 1
    assert "window_size of a time window must be 1 to 600 seconds" in too_long.stderr

    slow = cli(
        "configure", key, "--slow-call-rate", "80", "--slow-call-duration", "2",
        "--window-type", "time", "--window-size", "60", "--json",
    )  # fmt: skip
    assert slow.exit_code == 0, slow.stderr
    configured = json.loads(slow.stdout)
    assert configured["previous"] == "3/2/30s, 50% failed of the last 40 calls (min 20)"
    assert (configured["window_type"], configured["slow_call_seconds"]) == ("time", 2.0)
    listed = cli("list")
    assert listed.exit_code == 0, listed.stderr
    assert "50% failed or 80% slower than 2s of the last 60s (min 20)" in listed.stdout

    off = cli("configure", key, "--failure-rate", "0", "--slow-call-rate", "0", "--json")
    assert off.exit_code == 0, off.stderr
    assert json.loads(off.stdout)["window_type"] is None
    assert json.loads(cli("show", key, "--json").stdout)["window_calls"] is None


def test_statistics_in_list_and_show(
    cli: BreakerCli, tripped: CircuitBreaker, key: str, redis_url: str
) -> None:
    """`last_failure_at` and `closed_at` (issue 53): in the JSON of `list` and `show` and in
    their tables; a stored value the breaker never writes is shown as none, in one line."""
    row = json.loads(cli("list", "--json").stdout)[0]
    failed = datetime.fromisoformat(row["last_failure_at"])
    assert timedelta(0) <= datetime.now(UTC) - failed < timedelta(minutes=5)
    assert row["closed_at"] is None  # opened, never closed again
    assert cli("reset", key, "--reason", "calendar back").exit_code == 0
    view = json.loads(cli("show", key, "--json").stdout)
    assert view["closed_at"] is not None and view["last_failure_at"] == row["last_failure_at"]
    for table in (cli("show", key).stdout, cli("list").stdout):
        assert "last failure" in table and "closed at" in table
        assert failed.strftime("%Y-%m-%d %H:%M") in table

    client = redis.Redis.from_url(redis_url)
    client.hset(hash_key(key), "lf", "not a time")
    client.close()
    shown = cli("show", key, "--json")
    assert shown.exit_code == 0 and shown.stderr == "", shown.stderr
    assert json.loads(shown.stdout)["last_failure_at"] is None


def test_configure_a_growing_cooldown(cli: BreakerCli, tripped: CircuitBreaker, key: str) -> None:
    result = cli("configure", key, "--cooldown-growth", "2", "--max-cooldown", "240", "--json")
    assert result.exit_code == 0, result.stderr
    configured = json.loads(result.stdout)
    assert (configured["cooldown_growth_factor"], configured["max_cooldown_seconds"]) == (2, 240)
    assert configured["previous"] == "3/2/30s"
    view = json.loads(cli("show", key, "--json").stdout)
    assert (view["cooldown_growth_factor"], view["max_cooldown_seconds"]) == (2, 240)
    assert view["current_cooldown_seconds"] == 30
    assert "3/2/30s, cooldown x2 up to 240s" in cli("list").stdout
    # another option keeps the growth; a factor of 1 turns it off
    kept = json.loads(cli("configure", key, "--failure-threshold", "4", "--json").stdout)
    assert (kept["cooldown_growth_factor"], kept["max_cooldown_seconds"]) == (2, 240)
    off = json.loads(cli("configure", key, "--cooldown-growth", "1", "--json").stdout)
    assert (off["cooldown_growth_factor"], off["max_cooldown_seconds"]) == (None, None)
    assert off["previous"] == "4/2/30s, cooldown x2 up to 240s"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cooldown-growth", "2"), "--cooldown-growth needs --max-cooldown"),
        (("--max-cooldown", "60"), "--max-cooldown goes with --cooldown-growth"),
        (
            ("--cooldown-growth", "2", "--max-cooldown", "10"),
            "max_cooldown_seconds must be from the cooldown (30) to 2000000",
        ),
        (
            ("--cooldown-growth", "1.005", "--max-cooldown", "60"),
            "cooldown_growth_factor must be from 1.01 to 10",
        ),
    ],
)
def test_a_growing_cooldown_out_of_range_is_one_line(
    cli: BreakerCli, tripped: CircuitBreaker, key: str, args: tuple[str, ...], message: str
) -> None:
    result = cli("configure", key, *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("guard: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert json.loads(cli("show", key, "--json").stdout)["cooldown_growth_factor"] is None


def test_a_grown_cooldown_is_shown_with_the_time_to_the_probe(
    cli: BreakerCli, tripped: CircuitBreaker, key: str
) -> None:
    result = cli(
        "configure", key, "--cooldown", "0.2", "--cooldown-growth", "3", "--max-cooldown", "60"
    )
    assert result.exit_code == 0, result.stderr

    def down() -> None:
        raise ConnectionError("booking API down")

    time.sleep(0.25)  # the open circuit's cooldown, now 0.2 s, is over
    with pytest.raises(ConnectionError):
        tripped.call(down)  # the probe fails: the next opening lasts 0.6 s
    view = json.loads(cli("show", key, "--json").stdout)
    assert (view["state"], view["current_cooldown_seconds"]) == ("open", 0.6)
    assert " s of 0.6 s" in cli("show", key).stdout


def test_list_with_both_stores_unreachable_says_neither_can_be_read() -> None:
    """Nothing to print from either store: one line saying breaker state cannot be reached, not
    an empty list that claims to be what the other store has."""
    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])  # closed again: nothing listens there
    cli = breaker_cli(
        f"postgresql://postgres@127.0.0.1:{ports[0]}/postgres?connect_timeout=2",
        f"redis://127.0.0.1:{ports[1]}/0",
    )
    result = cli("list")
    assert result.exit_code == 1, result.output
    assert result.stdout == "", "no list of anything"
    [line] = result.stderr.splitlines()
    assert line.startswith("guard: error: cannot reach breaker state at redis://"), line
    assert "Redis: " in line and "PostgreSQL: " in line, line
