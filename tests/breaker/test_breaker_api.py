"""What pybreaker users expect: generators, raising on trip, in-process state and manual control
(on real Redis and on the memory store), and the per-circuit choice when Redis is unreachable."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator

import psycopg
import pytest

from guard.breaker import (
    Backend,
    BreakerConfig,
    BreakerEvent,
    CircuitBreaker,
    CircuitOpenError,
    ControlUnavailableError,
    EventKind,
    PostgresWriteBehind,
    State,
    StoreUnavailableError,
)
from guard.breaker.state import RULE, SharedRules
from tests.support.redis_server import RedisServer, free_port

CONFIG = BreakerConfig(cooldown_seconds=30, call_timeout_seconds=None, local_state_ttl_seconds=0)


class Dependency:
    def __init__(self) -> None:
        self.calls = 0

    def fail(self) -> None:
        self.calls += 1
        raise ConnectionError("booking API down")

    def ok(self) -> str:
        self.calls += 1
        return "booked"


@pytest.fixture
def breaker_config() -> BreakerConfig:
    return CONFIG


# ---------------------------------------------------------------------- generators
def test_generator_functions_are_refused_at_decoration(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    breaker = make_breaker()

    def slots() -> Iterator[int]:
        yield 1

    async def async_slots() -> AsyncIterator[int]:
        yield 1

    for fn in (slots, async_slots):
        with pytest.raises(TypeError, match=r"generator function.*breaker\.guard"):
            breaker(fn)
    # Passed to call(), the generator is refused too and nothing is counted.
    with pytest.raises(TypeError, match="generator"):
        breaker.call(slots)
    assert breaker.snapshot().failure_count == 0


def test_failures_while_iterating_count_under_guard(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    """The documented way to protect an iteration: the failure raised by the third item is
    counted, so three such iterations open the circuit."""
    breaker = make_breaker()

    def slots() -> Iterator[int]:
        yield 1
        yield 2
        raise ConnectionError("calendar stream broke")

    for _ in range(3):
        with pytest.raises(ConnectionError), breaker.guard():
            for _slot in slots():
                pass
    assert breaker.state is State.OPEN
    with pytest.raises(CircuitOpenError), breaker.guard():
        pass


# ---------------------------------------------------------------------- raise on trip
def test_raise_open_on_trip_replaces_the_tripping_error(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    breaker = make_breaker(dataclasses.replace(CONFIG, raise_open_on_trip=True))
    dependency = Dependency()
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(dependency.fail)
    with pytest.raises(CircuitOpenError) as tripped:
        breaker.call(dependency.fail)
    assert isinstance(tripped.value.__cause__, ConnectionError)
    retry_after = tripped.value.retry_after
    assert tripped.value.state is State.OPEN
    assert retry_after is not None and 0 < retry_after <= 30
    assert dependency.calls == 3


def test_raise_open_on_trip_async(make_breaker: Callable[..., CircuitBreaker]) -> None:
    breaker = make_breaker(dataclasses.replace(CONFIG, raise_open_on_trip=True))

    async def down() -> None:
        raise ConnectionError("booking API down")

    async def scenario() -> list[type[BaseException]]:
        raised: list[type[BaseException]] = []
        for _ in range(3):
            try:
                await breaker.call_async(down)
            except Exception as error:
                raised.append(type(error))
        return raised

    assert asyncio.run(scenario()) == [ConnectionError, ConnectionError, CircuitOpenError]


# ---------------------------------------------------------------------- in-process API
def test_state_and_counters_come_from_the_store(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    """A process that never called sees the state other processes produced (pybreaker's
    ``current_state`` and counters); before anything happened the circuit is closed."""
    worker, observer = make_breaker(), make_breaker()
    assert observer.state is State.CLOSED
    dependency = Dependency()
    for _ in range(2):
        with pytest.raises(ConnectionError):
            worker.call(dependency.fail)
    snapshot = observer.snapshot()
    assert (snapshot.state, snapshot.failure_count, snapshot.generation) == (State.CLOSED, 2, 0)
    with pytest.raises(ConnectionError):
        worker.call(dependency.fail)
    snapshot = observer.snapshot()
    assert snapshot.state is State.OPEN and snapshot.generation == 1
    recovers_in = snapshot.recovers_in_seconds
    assert snapshot.opened_at is not None
    assert recovers_in is not None and 29 < recovers_in <= 30
    assert snapshot.rules is not None and snapshot.rules.cooldown_ms == 30_000


def test_manual_actions_apply_to_every_process(make_breaker: Callable[..., CircuitBreaker]) -> None:
    first, second = make_breaker(), make_breaker()
    events: list[BreakerEvent] = []
    first.add_listener(events.append)
    assert first.force_open("calendar maintenance", actor="ops@example") is State.FORCED_OPEN
    with pytest.raises(CircuitOpenError) as rejected:
        second.call(lambda: "booked")
    assert rejected.value.state is State.FORCED_OPEN
    assert first.disable("investigating") is State.DISABLED
    assert second.call(lambda: "booked") == "booked"
    assert first.force_close("known good") is State.FORCED_CLOSED
    assert first.reset("done") is State.CLOSED
    assert second.snapshot().state is State.CLOSED
    transitions = [(e.from_state, e.state, e.reason, e.actor) for e in events]
    assert transitions[0] == (
        State.CLOSED,
        State.FORCED_OPEN,
        "force_open: calendar maintenance",
        "ops@example",
    )
    assert [t[1] for t in transitions] == [
        State.FORCED_OPEN,
        State.DISABLED,
        State.FORCED_CLOSED,
        State.CLOSED,
    ]
    assert all(actor and "@" in actor for *_, actor in transitions)
    with pytest.raises(ValueError, match="reason"):
        first.reset("  ")


def test_manual_actions_are_recorded_like_the_cli_records_them(
    db_url: str, redis_url: str, key: str
) -> None:
    writer = PostgresWriteBehind(db_url)
    breaker = CircuitBreaker(key, CONFIG, redis_url=redis_url, listeners=(writer,))
    breaker.force_open("calendar maintenance", actor="ops@host")
    breaker.reset("maintenance over", actor="ops@host")
    assert writer.close()
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT e.generation, e.from_state, e.to_state, e.reason, e.actor, s.state"
            " FROM guard.breaker_events AS e JOIN guard.breaker_state AS s USING (key)"
            " WHERE key = %s ORDER BY e.generation",
            (key,),
        ).fetchall()
    assert rows == [
        (1, "closed", "forced_open", "force_open: calendar maintenance", "ops@host", "closed"),
        (2, "forced_open", "closed", "reset: maintenance over", "ops@host", "closed"),
    ]


# ---------------------------------------------------------------------- Redis unreachable
def _unreachable(mode: str, key: str) -> CircuitBreaker:
    config = dataclasses.replace(CONFIG, when_store_unreachable=mode)
    return CircuitBreaker(key, config, redis_url=f"redis://127.0.0.1:{free_port()}/0")


def test_unreachable_at_first_call_local_protects_per_process(key: str) -> None:
    breaker, dependency = _unreachable("local", key), Dependency()
    for _ in range(10):
        with contextlib.suppress(ConnectionError, CircuitOpenError):
            breaker.call(dependency.fail)
    assert dependency.calls == 3  # still a breaker: threshold calls, then open
    assert breaker.state is State.OPEN


def test_unreachable_at_first_call_closed_admits_without_counting(key: str) -> None:
    breaker, dependency = _unreachable("closed", key), Dependency()
    for _ in range(10):
        with pytest.raises(ConnectionError):
            breaker.call(dependency.fail)
    assert dependency.calls == 10
    assert breaker.call(dependency.ok) == "booked"


def test_unreachable_at_first_call_open_refuses(key: str) -> None:
    breaker, dependency = _unreachable("open", key), Dependency()
    for _ in range(5):
        with pytest.raises(StoreUnavailableError) as refused:
            breaker.call(dependency.ok)
    assert isinstance(refused.value, CircuitOpenError)
    assert dependency.calls == 0
    counters = (
        breaker.rejected_open,
        breaker.rejected_bulkhead,
        breaker.rejected_store_unavailable,
    )
    assert counters == (0, 0, 5)
    with pytest.raises(ControlUnavailableError):
        breaker.snapshot()
    with pytest.raises(ControlUnavailableError):
        breaker.force_open("x")


def test_open_mode_follows_redis_again_when_it_is_back(redis_server: RedisServer, key: str) -> None:
    config = dataclasses.replace(CONFIG, when_store_unreachable="open")
    backend = Backend(redis_server.url, redis_retry_interval=0.05)
    breaker = CircuitBreaker(key, config, backend=backend)
    events: list[BreakerEvent] = []
    breaker.add_listener(events.append)
    redis_server.stop()
    with pytest.raises(StoreUnavailableError):
        breaker.call(lambda: "booked")
    redis_server.start()
    time.sleep(0.1)
    assert breaker.call(lambda: "booked") == "booked"
    assert [e.kind for e in events if e.kind is not EventKind.SUCCESS] == [
        EventKind.REDIS_UNAVAILABLE,
        EventKind.REJECTED,
        EventKind.REDIS_RESTORED,
    ]
    backend.close()


def test_a_manual_action_does_not_become_the_first_writer_of_the_rules(
    make_breaker: Callable[..., CircuitBreaker],
) -> None:
    """An operator's action on a circuit with no rules yet leaves them to the application's
    first decision (the operator's defaults are not the circuit's rules)."""
    operator = make_breaker(CONFIG)
    operator.force_open("before the rollout")
    assert operator.snapshot().rules is None
    app = make_breaker(dataclasses.replace(CONFIG, failure_threshold=1))
    app.reset("rollout")
    with pytest.raises(ConnectionError):
        app.call(Dependency().fail)
    snapshot = app.snapshot()
    assert snapshot.state is State.OPEN and snapshot.rules is not None
    assert snapshot.rules.failure_threshold == 1


def test_redis_arguments_are_packed_as_resp_bulk_strings() -> None:
    """What the Redis store sends, byte for byte (RESP, as redis-py would): an integer argument
    is its decimal digits with their length; 0 to 99,999 are cached, larger ones not."""
    from guard.breaker import redis_store

    assert redis_store.pack_argument(0) == b"$1\r\n0\r\n"
    assert redis_store.pack_argument(1234) == b"$4\r\n1234\r\n"
    assert redis_store.pack_argument(-5) == b"$2\r\n-5\r\n"
    assert redis_store.pack_argument(99_999) == b"$5\r\n99999\r\n"
    assert redis_store.pack_argument(100_000) == b"$6\r\n100000\r\n"
    assert 0 in redis_store._ARGUMENTS
    assert 99_999 in redis_store._ARGUMENTS
    assert 100_000 not in redis_store._ARGUMENTS
    assert -5 not in redis_store._ARGUMENTS
    assert redis_store.pack_command("EVALSHA", "ab", 2, b"k") == (
        b"*4\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n2\r\n$1\r\nk\r\n"
    )
    assert redis_store.pack_command("GET", more=2).startswith(b"*3\r\n$3\r\nGET\r\n")


@pytest.mark.parametrize(
    ("recorded", "seeded"),
    [
        (State.FORCED_OPEN, (State.FORCED_OPEN, 5_000)),
        (State.FORCED_CLOSED, (State.FORCED_CLOSED, 5_000)),
        (State.DISABLED, (State.DISABLED, 5_000)),
        (State.OPEN, (State.OPEN, 5_000)),  # its cooldown goes on
        (State.HALF_OPEN, (State.OPEN, 0)),  # a fresh cooldown: the probe is lost
        (State.CLOSED, (State.CLOSED, 0)),
    ],
)
def test_a_missing_circuit_is_seeded_from_its_recorded_state(
    recorded: State, seeded: tuple[State, int]
) -> None:
    """guard.breaker.codec.seed_for, every state: manual states exactly, open with its
    opened-at; the generation never lowered, one on for a repaired record."""
    from guard.breaker.codec import RecordedState, seed_for

    seed = seed_for(RecordedState(recorded, 7, opened_at_ms=5_000), 3)
    assert (seed.state, seed.opened_at_ms, seed.generation, seed.note) == (*seeded, 7, "")
    assert seed_for(RecordedState(recorded, 2, 5_000), 9).generation == 9
    repaired = seed_for(RecordedState(recorded, 7, 5_000, problems=("bad",)), 3)
    assert (repaired.generation, repaired.note) == (8, "repaired: bad")
    assert seed_for(None, 4).state is State.CLOSED


def test_window_limits_on_both_sides() -> None:
    """BreakerConfig's window checks: each limit accepted, one past it refused."""

    def check(window_type: str, size: int, minimum: int) -> None:
        BreakerConfig(
            window_type=window_type,
            window_size=size,
            minimum_calls=minimum,
            failure_rate_threshold=50,
        )

    for window_type, limit in (("count", 1000), ("time", 600)):
        check(window_type, 1, 1)
        check(window_type, limit, 1_000_000)
        for size in (0, limit + 1, True):
            with pytest.raises(ValueError, match="window_size"):
                check(window_type, size, 1)
        for minimum in (0, 1_000_001, True):
            with pytest.raises(ValueError, match="minimum_calls"):
                check(window_type, 1, minimum)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"failure_threshold": 0}, "failure_threshold must be a whole number from 1 to 2147483647"),
        # beyond what a stored rule holds: the scripts would drop the rules at every decision
        ({"success_threshold": 2**31}, "success_threshold must be a whole number from 1 to"),
        ({"failure_threshold": 2.5}, "failure_threshold must be a whole number"),
        ({"cooldown_seconds": 0}, "cooldown_seconds must be from 0.001 to 2147483.647"),
        ({"cooldown_seconds": 3e6}, "cooldown_seconds must be from 0.001 to 2147483.647"),
        ({"call_timeout_seconds": 0}, "call_timeout_seconds must be from 0.001"),
        ({"local_state_ttl_seconds": -1}, "local_state_ttl_seconds must be from 0.0"),
        ({"max_concurrent_calls": 0}, "max_concurrent_calls must be a whole number from 1"),
        ({"when_store_unreachable": "retry"}, "must be one of local, closed, open"),
    ],
)
def test_every_rule_is_checked_against_its_bounds(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        BreakerConfig(**changes)  # type: ignore[arg-type]
    name, value = next(iter(changes.items()))
    if isinstance(value, int) and name != "when_store_unreachable":
        rule = RULE[name]
        BreakerConfig(**{name: rule.lowest})  # type: ignore[arg-type]
        BreakerConfig(**{name: rule.highest})  # type: ignore[arg-type]


def test_rules_without_a_window_are_all_zero() -> None:
    from guard.breaker.state import SharedRules

    rules = SharedRules(5, 1, 1000)
    assert tuple(rules)[3:] == ("", 0, 0, 0, 0, 0, 0, 0)
    assert not rules.has_window


@pytest.mark.parametrize(
    ("url", "split"),
    [
        ("redis+cluster://h:7000/0", ("redis://h:7000/0", True)),
        ("rediss+cluster://u:p+cluster@h:7000", ("rediss://u:p+cluster@h:7000", True)),
        ("redis://u:p+cluster@h:6379/0", ("redis://u:p+cluster@h:6379/0", False)),
    ],
)
def test_a_cluster_url_loses_only_its_scheme_marker(url: str, split: tuple[str, bool]) -> None:
    from guard.breaker.redis_store import _split_cluster

    assert _split_cluster(url) == split


@pytest.mark.parametrize(
    "rules",
    [
        SharedRules(5, 1, 1000),
        SharedRules(3, 2, 30_000, cooldown_growth_percent=200, max_cooldown_ms=600_000),
        SharedRules(5, 1, 1000, "count", 20, 10, 50, 0, 0),
        SharedRules(5, 1, 1000, "time", 60, 10, 0, 2000, 80),
    ],
)
def test_stored_rules_read_back_as_written(rules: SharedRules) -> None:
    """guard.breaker.codec: the rules as the circuit's hash stores them read back unchanged,
    zeros included; without the window fields (an older hash) there is no window."""
    from guard.breaker.codec import rules_from_values, rules_values

    stored = [value.encode() for value in rules_values(rules)]
    assert rules_from_values(stored) == rules
    if not rules.has_window:
        assert rules_from_values(stored[:3]) == rules._replace(
            cooldown_growth_percent=0, max_cooldown_ms=0
        )


# The scripts' reply, parsed: ten comma-separated fields, the reason last (it may hold commas).
def test_a_script_reply_is_parsed_with_commas_in_its_reason() -> None:
    from guard.breaker.redis_store import parse_reply

    reply = parse_reply(b"1,2,7,3,1,1700000000000,1699999999000,1,4,probe, then more")
    assert (reply.code, reply.state, reply.generation, reply.reason) == (
        1,
        State.HALF_OPEN,
        7,
        "probe, then more",
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"",  # no fields
        b"1,2,3",  # too few
        b"x,0,1,0,0,0,0,0,0,",  # not a number
        b"1,9,1,0,0,0,0,0,0,",  # no such state
        b"\xff\xfe,0,1,0,0,0,0,0,0,",  # not UTF-8
        None,  # a nil reply
        5,  # an integer reply
        bytearray(b"1,0,1,0,0,0,0,0,0,"),  # bytes of another type: split wants bytes
    ],
)
def test_an_unreadable_script_reply_is_one_error(raw: object) -> None:
    from guard.breaker.redis_store import UnreadableReplyError, parse_reply

    with pytest.raises(UnreadableReplyError, match=r"unreadable reply from the breaker's script"):
        parse_reply(raw)  # type: ignore[arg-type]


def test_statement_timeout_is_at_least_a_millisecond_and_ends_with_its_transaction(
    db_url: str,
) -> None:
    """Rounded to milliseconds, never to 0 (which would mean no timeout at all)."""
    from guard.breaker import statement_timeout

    with psycopg.connect(db_url, autocommit=True) as conn:
        before = conn.execute("SHOW statement_timeout").fetchone()
        for seconds, shown in ((0.0001, "1ms"), (0.0004, "1ms"), (0.002, "2ms"), (0.25, "250ms")):
            # On a loaded machine even the SHOW can outlast 1 ms and be cancelled (the timeout
            # at work): the transaction is tried again until a SHOW answers.
            answer = None
            for _ in range(100):
                try:
                    with conn.transaction(), statement_timeout(conn, seconds):
                        answer = conn.execute("SHOW statement_timeout").fetchone()
                    break
                except psycopg.errors.QueryCanceled:
                    continue
            assert answer == (shown,), seconds
        assert conn.execute("SHOW statement_timeout").fetchone() == before


# What guard.breaker_restore_state returned, checked before the breaker uses it: each bound
# accepted, one past it refused with its problem named.
def test_a_restored_record_is_taken_within_its_bounds_and_repaired_past_them() -> None:
    from guard.breaker.codec import check_record
    from guard.breaker.state import MAX_GENERATION, MAX_TIME_MS

    for opened in (1.0, float(MAX_TIME_MS)):
        record = check_record("open", 1, opened)
        assert (record.opened_at_ms, record.problems) == (int(opened), ()), opened
    for opened in (0.0, float(MAX_TIME_MS + 1)):
        record = check_record("open", 1, opened)
        assert record.opened_at_ms == 0, opened
        assert [p for p in record.problems if p.startswith("opened_at")], (opened, record)
    for generation in (1, MAX_GENERATION):
        assert check_record("closed", generation, None).generation == generation
    for generation in (0, MAX_GENERATION + 1):
        record = check_record("closed", generation, None)
        assert record.generation == 0 and record.problems, generation
