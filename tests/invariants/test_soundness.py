"""Soundness of the invariants under concurrent application writes (docs/invariants.md).

Random sequences of application writes -- single and bulk inserts, updates and deletes of calls
and appointments, spread over 2-4 connections whose transactions overlap and really wait for each
other's row locks -- are committed for real; after every commit every invariant must hold over
the committed data, except a booked outcome still inside its grace period (I4 is checked in the
direction "active appointment => appointment_booked" only).

One database is reused for all examples: the tables are truncated and re-seeded per example."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pprint import pformat

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

from tests.invariants.checker import check_invariants
from tests.invariants.harness import Harness
from tests.invariants.ops import RESET_SQL, SEED_SQL, Op, Scenario, scenarios

settings.register_profile(
    "invariants",
    max_examples=int(os.environ.get("GUARD_INVARIANT_EXAMPLES", "500")),
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
PROFILE = settings.get_profile("invariants")


@pytest.fixture
def harness(db_url: str) -> Iterator[Harness]:
    h = Harness(db_url, n_workers=4)
    try:
        yield h
    finally:
        h.close()


def seed_ops(scenario: Scenario) -> list[Op]:
    return [
        Op(0, "insert_appointments", ((call,), kind, 1, False))
        for call, kind in scenario.seed_appointments
    ]


def describe_failure(h: Harness, scenario: Scenario) -> str:
    parts = [
        f"seed appointments (call, kind): {list(scenario.seed_appointments)}",
        f"connections: {scenario.n_conns}",
        h.history(),
    ]
    for violation in h.violations:
        parts.append(f"INVARIANT VIOLATED after {violation.after}:")
        parts.append(pformat(violation.found, width=100))
        parts.append("committed calls and appointments at that moment:")
        parts.append(pformat(violation.state, width=100))
    parts += [f"HARNESS: {failure}" for failure in h.failures]
    return "\n".join(parts)


@pytest.mark.slow
def test_invariants_hold_after_every_commit(harness: Harness) -> None:
    started = time.monotonic()

    @PROFILE
    @given(scenario=scenarios())
    def run(scenario: Scenario) -> None:
        harness.reset(SEED_SQL, RESET_SQL, seed_ops(scenario))
        harness.check(harness.monitor, "seed")
        harness.run(scenario.ops, scenario.n_conns)
        harness.check(harness.monitor, "the end of the sequence")
        assert not harness.violations and not harness.failures, describe_failure(harness, scenario)

    try:
        run()
    finally:
        stats = harness.stats
        print(
            f"\ninvariant soundness: {stats.sequences} sequences, {stats.operations} operations,"
            f" {stats.commits} commits, {stats.checks} invariant checks,"
            f" {stats.lock_waits} lock waits, rolled back: {dict(stats.errors) or 'none'},"
            f" {time.monotonic() - started:.1f} s"
        )
    assert stats.sequences >= PROFILE.max_examples


def test_checker_detects_a_violation(db_url: str) -> None:
    """A checker that cannot fail proves nothing: with the appointment triggers disabled, a new
    appointment leaves its call unbooked, and the checker must say so (I3 and I4)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(SEED_SQL)
        assert check_invariants(conn) == {}
        with conn.transaction():
            conn.execute(
                "ALTER TABLE public.appointments DISABLE TRIGGER guard_appointments_sync_insert"
            )
            conn.execute(
                "INSERT INTO public.appointments (company_id, call_id, status)"
                " VALUES (1, 1, 'scheduled')"
            )
        found = check_invariants(conn)
        assert set(found) == {"I3", "I4"}
        assert [row["id"] for row in found["I3"]] == [1]
        assert found["I3"][0]["active_appointments"] == [1]
        # and each of the other rules is live too
        conn.execute("ALTER TABLE public.calls DISABLE TRIGGER USER")
        conn.execute("ALTER TABLE public.calls DROP CONSTRAINT guard_calls_direction_check")
        conn.execute("ALTER TABLE public.calls ALTER COLUMN direction DROP NOT NULL")
        conn.execute("ALTER TABLE public.calls DROP CONSTRAINT guard_calls_customer_link_check")
        conn.execute(
            "ALTER TABLE public.appointments DROP CONSTRAINT guard_appointments_call_company_fkey"
        )
        conn.execute("UPDATE public.calls SET direction = NULL WHERE id = 2")
        conn.execute(
            "UPDATE public.calls SET customer_id = NULL, customer_link_status = 'linked'"
            " WHERE id = 3"
        )
        conn.execute("ALTER TABLE public.appointments DISABLE TRIGGER USER")
        conn.execute("UPDATE public.appointments SET company_id = 2 WHERE id = 1")
        found = check_invariants(conn)
        assert set(found) == {"I1", "I2", "I3", "I4", "I5"}
        assert [row["id"] for row in found["I1"]] == [2]
        assert [row["id"] for row in found["I2"]] == [3]
        assert [row["appointment_id"] for row in found["I5"]] == [1]
