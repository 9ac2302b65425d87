"""The two shortcuts of the derivation rule (guard.call_flags_to_correct) agree with it on every
combination of a call's flag values and its appointments: exhaustive, not sampled.
- The check of an application's flag write (the row trigger guard_calls_check_flag_write,
  reading one index entry and comparing with guard.call_flags_contradict). The write is made
  through the trigger, so the read it does is tested as well as the comparison.
- The one-call derivation of a one-row cancel, soft delete, delete or restore
  (guard.sync_one_call_flags), made through the appointment triggers.
And the call-end validation (guard.validate_call_end) reports a contradiction exactly where the
derivation finds one, so a call that ends consistent raises no flags alert a minute later."""

from __future__ import annotations

import itertools
from typing import Any

import psycopg

MADE = ("TRUE", "FALSE")
LINK_STATUS = ("NULL", "'linked'", "'unlinked'", "'creation_failed'", "'pending'")
LINKED_AT = ("NULL", "now()")
OUTCOME = ("NULL", "'appointment_booked'", "'information_only'", "'appointment_cancelled'")
FAILED = ("TRUE", "FALSE")
CONFIRMED = ("TRUE", "FALSE")
# What the call's appointments are: none, one active, one cancelled, one soft-deleted, an active
# and a cancelled one.
APPOINTMENTS = (
    (),
    (("scheduled", "NULL"),),
    (("cancelled", "NULL"),),
    (("scheduled", "now()"),),
    (("scheduled", "NULL"), ("cancelled", "NULL")),
)


def _write_flags(conn: psycopg.Connection[Any], call: int, state: tuple[str, ...]) -> None:
    """One UPDATE of the call's six flag columns, with the SQL literals of `state`."""
    made, link, linked_at, outcome, failed, confirmed = state
    conn.execute(
        f"UPDATE calls SET appointment_made = {made}, appointment_link_status = {link},"
        f" appointment_linked_at = {linked_at}, session_outcome = {outcome},"
        f" booking_failed = {failed}, booking_confirmed = {confirmed}"
        " WHERE id = %s",
        (call,),
    )


def _insert_appointments(conn: psycopg.Connection[Any], shapes: list[int]) -> None:
    """Call n (from 1) gets the appointments of APPOINTMENTS[shapes[n - 1]], of company 1."""
    for call, shape in enumerate(shapes, start=1):
        for status, deleted_at in APPOINTMENTS[shape]:
            conn.execute(
                f"INSERT INTO appointments (company_id, call_id, status, deleted_at)"
                f" VALUES (1, %s, %s, {deleted_at})",
                (call, status),
            )


def _to_correct(conn: psycopg.Connection[Any], count: int) -> set[int]:
    """The calls 1..count whose flags the derivation (guard.call_flags_to_correct) corrects."""
    return {
        row[0]
        for row in conn.execute(
            "SELECT f.id FROM guard.call_flags_to_correct("
            " ARRAY(SELECT generate_series(1, %s)::bigint), FALSE) AS f",
            (count,),
        ).fetchall()
    }


def test_the_write_check_agrees_with_the_derivation_on_every_state(db_url: str) -> None:
    states = list(itertools.product(MADE, LINK_STATUS, LINKED_AT, OUTCOME, FAILED, CONFIRMED))
    cases = list(itertools.product(range(len(APPOINTMENTS)), states))
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        conn.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, session_outcome)"
            " SELECT g, 1, 'rule-' || g, 'information_only'"
            " FROM generate_series(1, %s) AS g",
            (len(cases),),
        )
        _insert_appointments(conn, [shape for shape, _ in cases])
        # Each call's flags written by one statement at depth 0, as an application writes them.
        for call, (_, state) in enumerate(cases, start=1):
            _write_flags(conn, call, state)
        flagged = {
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT unnest(call_ids) FROM guard.flag_checks_at_commit"
            ).fetchall()
        }
        derived = _to_correct(conn, len(cases))
        conn.rollback()  # the commit-time check would correct them: not what is tested here
    assert len(cases) == 5 * 2 * 5 * 2 * 4 * 2 * 2
    assert derived, "no state contradicts: the cases do not test anything"
    assert len(derived) < len(cases), "every state contradicts: the cases do not test anything"
    wrong = sorted(flagged ^ derived)
    assert wrong == [], [
        (call, APPOINTMENTS[cases[call - 1][0]], cases[call - 1][1], call in derived)
        for call in wrong[:5]
    ]


# The one-row changes of an appointment that derive its call through guard.sync_one_call_flags:
# (the statement, the changed appointment's status before, whether it was linked to the call
# before, whether the call loses an active appointment). Each is tried with each shape of the
# call's other appointments (OTHERS). The changed appointment's id is its call's.
ONE_ROW_CHANGES = {
    "cancel": ("UPDATE appointments SET status = 'cancelled' WHERE id = %s", "scheduled", True),
    "soft delete": ("UPDATE appointments SET deleted_at = now() WHERE id = %s", "scheduled", True),
    "delete": ("DELETE FROM appointments WHERE id = %s", "scheduled", True),
    "restore": ("UPDATE appointments SET status = 'scheduled' WHERE id = %s", "cancelled", True),
    "link": ("UPDATE appointments SET call_id = id WHERE id = %s", "scheduled", False),
    "link cancelled": ("UPDATE appointments SET call_id = id WHERE id = %s", "cancelled", False),
}
LOSES = {"cancel", "soft delete", "delete"}
# (status, deleted_at, company): the last one is another company's (a cross-tenant link, as an
# adopted database may hold), which books nothing.
OTHERS = (
    (),
    (("scheduled", "NULL", 1),),
    (("cancelled", "NULL", 1),),
    (("scheduled", "NULL", 2),),
)


def _one_row_cases() -> list[tuple[str, int, tuple[str, ...]]]:
    """(change, index into OTHERS, flag state) for every combination."""
    states = list(itertools.product(MADE, LINK_STATUS, LINKED_AT, OUTCOME, FAILED, CONFIRMED))
    return [
        (change, others, state)
        for change in ONE_ROW_CHANGES
        for others in range(len(OTHERS))
        for state in states
    ]


def _flags_after(conn: psycopg.Connection[Any], count: int) -> dict[int, tuple[Any, ...]]:
    return {
        row[0]: row[1:]
        for row in conn.execute(
            "SELECT id, appointment_made, appointment_link_status, appointment_linked_at"
            " IS NOT NULL, session_outcome, booking_failed, booking_confirmed,"
            " updated_at = '2000-01-01' FROM calls WHERE id <= %s",
            (count,),
        ).fetchall()
    }


def test_the_one_call_derivation_agrees_with_the_derivation_on_every_state(db_url: str) -> None:
    """A one-row cancel, soft delete, delete, restore or link derives its call through
    guard.sync_one_call_flags; the same change made with the triggers off and then derived by
    guard.sync_call_flags (guard.call_flags_to_correct: the definition) must leave the same
    flags, and touch updated_at alike, for every combination of the call's flags and its other
    appointments."""
    cases = _one_row_cases()
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B')")
        conn.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, session_outcome)"
            " SELECT g, 1, 'one-' || g, 'information_only' FROM generate_series(1, %s) AS g",
            (len(cases),),
        )
        conn.execute("SET session_replication_role = replica")  # the states as written
        # The states are data here, not the writes under test: one statement per table.
        states = ", ".join(
            f"({call}, {', '.join(state)})" for call, (_, _, state) in enumerate(cases, start=1)
        )
        conn.execute(
            "UPDATE calls AS c SET appointment_made = v.made, appointment_link_status = v.link,"
            " appointment_linked_at = v.linked_at, session_outcome = v.outcome,"
            " booking_failed = v.failed, booking_confirmed = v.confirmed,"
            " updated_at = '2000-01-01'"
            f" FROM (VALUES {states})"
            " AS v (id, made, link, linked_at, outcome, failed, confirmed) WHERE c.id = v.id"
        )
        # Each call's changed appointment has the call's id; at most one other, its id after
        # every call's. Replica mode skips the composite foreign key (the other company's).
        ids: list[int] = []
        companies: list[int] = []
        linked_calls: list[int | None] = []
        statuses: list[str] = []
        deleted: list[bool] = []
        for call, (change, others, _) in enumerate(cases, start=1):
            _, status, linked = ONE_ROW_CHANGES[change]
            ids.append(call)
            companies.append(1)
            linked_calls.append(call if linked else None)
            statuses.append(status)
            deleted.append(False)
            for other_status, deleted_at, company in OTHERS[others]:
                ids.append(len(cases) + call)
                companies.append(company)
                linked_calls.append(call)
                statuses.append(other_status)
                deleted.append(deleted_at != "NULL")
        conn.execute(
            "INSERT INTO appointments (id, company_id, call_id, status, deleted_at)"
            " SELECT a.id, a.company_id, a.call_id, a.status, CASE WHEN a.deleted THEN now() END"
            " FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::boolean[])"
            " AS a (id, company_id, call_id, status, deleted)",
            (ids, companies, linked_calls, statuses, deleted),
        )
        conn.execute("SET session_replication_role = origin")
        conn.commit()
        # Statistics of the tables as filled, as autovacuum would soon gather them: planned for
        # empty tables, every call's lookup of its appointments read all of its company's.
        conn.execute("ANALYZE calls, appointments")
        conn.commit()

        with conn.pipeline():
            for call, (change, *_) in enumerate(cases, start=1):
                conn.execute(ONE_ROW_CHANGES[change][0], (call,))
        through_the_trigger = _flags_after(conn, len(cases))
        conn.rollback()

        conn.execute("SET LOCAL session_replication_role = replica")
        with conn.pipeline():
            for call, (change, *_) in enumerate(cases, start=1):
                conn.execute(ONE_ROW_CHANGES[change][0], (call,))
        conn.execute("SET LOCAL session_replication_role = origin")
        lost = [call for call, case in enumerate(cases, start=1) if case[0] in LOSES]
        kept = [call for call, case in enumerate(cases, start=1) if case[0] not in LOSES]
        conn.execute("SELECT guard.sync_call_flags(%s, %s)", (lost, kept))
        by_the_definition = _flags_after(conn, len(cases))
        conn.rollback()

    assert len(through_the_trigger) == len(cases) == 6 * 4 * 5 * 2 * 4 * 2 * 2 * 2
    with psycopg.connect(db_url) as conn:
        written = conn.execute("SELECT count(*) FROM calls WHERE updated_at = '2000-01-01'")
        assert written.fetchone() == (len(cases),), "the states were stored as written"
    changed = [call for call in by_the_definition if not by_the_definition[call][-1]]
    assert changed and len(changed) < len(cases), "the cases test nothing"
    wrong = [
        call for call in through_the_trigger if through_the_trigger[call] != by_the_definition[call]
    ]
    assert wrong == [], [
        (cases[call - 1], through_the_trigger[call], by_the_definition[call]) for call in wrong[:5]
    ]


def test_call_end_validation_agrees_with_the_derivation_on_every_state(db_url: str) -> None:
    """Every flag state beside every shape of appointments, written past the triggers (as an
    adopted database or a disabled trigger leaves them): guard.validate_call_end reports
    `flags_contradict_appointments` for exactly the calls the derivation would correct, except
    those it reports as `booked_without_appointment` (a phantom booking, reported once); and it
    reports the phantom only where no active appointment exists and the outcome or
    appointment_made says booked."""
    states = list(itertools.product(MADE, LINK_STATUS, LINKED_AT, OUTCOME, FAILED, CONFIRMED))
    cases = list(itertools.product(range(len(APPOINTMENTS)), states))
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        conn.execute("SET session_replication_role = replica")  # the states as written
        rows = ", ".join(
            f"({call}, {', '.join(state)})" for call, (_, state) in enumerate(cases, start=1)
        )
        conn.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, appointment_made,"
            " appointment_link_status, appointment_linked_at, session_outcome, booking_failed,"
            " booking_confirmed, direction, customer_link_status)"
            " SELECT v.id, 1, 'end-' || v.id, v.made, v.link, v.linked_at, v.outcome, v.failed,"
            " v.confirmed, 'inbound', 'unlinked'"
            f" FROM (VALUES {rows})"
            " AS v (id, made, link, linked_at, outcome, failed, confirmed)"
        )
        _insert_appointments(conn, [shape for shape, _ in cases])
        conn.execute("SET session_replication_role = origin")
        reported: dict[str, set[int]] = {}
        for call, problem in conn.execute(
            "SELECT c.id, v.problem FROM calls AS c"
            " CROSS JOIN LATERAL guard.validate_call_end(c.id) AS v"
        ).fetchall():
            reported.setdefault(problem, set()).add(call)
        derived = _to_correct(conn, len(cases))
        conn.rollback()

    phantoms = {
        call
        for call, (shape, state) in enumerate(cases, start=1)
        if ("scheduled", "NULL") not in APPOINTMENTS[shape]
        and (state[0] == "TRUE" or state[3] == "'appointment_booked'")
    }
    contradicting = reported.get("flags_contradict_appointments", set())
    assert phantoms and contradicting, "the cases test nothing"
    assert reported.get("booked_without_appointment", set()) == phantoms
    assert contradicting & phantoms == set(), "a phantom booking is reported once"
    wrong = sorted(contradicting ^ (derived - phantoms))
    assert wrong == [], [
        (call, APPOINTMENTS[cases[call - 1][0]], cases[call - 1][1], call in derived)
        for call in wrong[:5]
    ]
