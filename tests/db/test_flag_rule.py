"""The check of an application's flag write (the row trigger guard_calls_check_flag_write,
reading one index entry and comparing with guard.call_flags_contradict) agrees with the
derivation rule (guard.call_flags_to_correct) on every combination of a call's flag values and
its appointments: exhaustive, not sampled. The write is made through the trigger, so the read it
does is tested as well as the comparison."""

from __future__ import annotations

import itertools

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
        for call, (shape, _) in enumerate(cases, start=1):
            for status, deleted_at in APPOINTMENTS[shape]:
                conn.execute(
                    f"INSERT INTO appointments (company_id, call_id, status, deleted_at)"
                    f" VALUES (1, %s, %s, {deleted_at})",
                    (call, status),
                )
        # Each call's flags written by one statement at depth 0, as an application writes them.
        for call, (_, state) in enumerate(cases, start=1):
            made, link, linked_at, outcome, failed, confirmed = state
            conn.execute(
                f"UPDATE calls SET appointment_made = {made}, appointment_link_status = {link},"
                f" appointment_linked_at = {linked_at}, session_outcome = {outcome},"
                f" booking_failed = {failed}, booking_confirmed = {confirmed}"
                " WHERE id = %s",
                (call,),
            )
        flagged = {
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT unnest(call_ids) FROM guard.flag_checks_at_commit"
            ).fetchall()
        }
        derived = {
            row[0]
            for row in conn.execute(
                "SELECT f.id FROM guard.call_flags_to_correct("
                " ARRAY(SELECT generate_series(1, %s)::bigint), FALSE) AS f",
                (len(cases),),
            ).fetchall()
        }
        conn.rollback()  # the commit-time check would correct them: not what is tested here
    assert len(cases) == 5 * 2 * 5 * 2 * 4 * 2 * 2
    assert derived, "no state contradicts: the cases do not test anything"
    assert len(derived) < len(cases), "every state contradicts: the cases do not test anything"
    wrong = sorted(flagged ^ derived)
    assert wrong == [], [
        (call, APPOINTMENTS[cases[call - 1][0]], cases[call - 1][1], call in derived)
        for call in wrong[:5]
    ]
