"""I3 at commit, with real commits: an application's write of booking flags that contradicts the
appointments is judged when its transaction commits (the deferred constraint trigger
guard.guard_flag_checks_at_commit), so a transaction that writes the call's flags before the
appointment that makes them true is neither corrected, audited nor alerted, and a contradiction
still standing at commit is corrected (or, in reject mode, fails the commit).

The application connects as a login in the application role, as it does in production."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from tests.support.postgres import Cluster
from tests.support.queries import execute, fetch_all, fetch_one

APP_LOGIN = "guard_test_app_commit"

MARK_BOOKED = """
UPDATE calls SET appointment_made = TRUE, appointment_link_status = 'linked',
    appointment_linked_at = now(), session_outcome = 'appointment_booked',
    booking_confirmed = TRUE
WHERE id = %s
"""
INSERT_APPOINTMENT = "INSERT INTO appointments (company_id, call_id) VALUES (1, %s)"


@pytest.fixture(scope="module")
def app_login(pg_cluster: Cluster, template_database: str) -> str:
    with psycopg.connect(pg_cluster.url(template_database), autocommit=True) as admin:
        (group,) = admin.execute("SELECT guard.role('application')").fetchone() or ("",)
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_LOGIN,)).fetchone():
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(APP_LOGIN)))
        admin.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(APP_LOGIN))
        )
    return APP_LOGIN


@pytest.fixture
def calls_url(db_url: str, app_login: str) -> Iterator[str]:
    """Company 1 with calls 1..4, none booked."""
    execute(
        db_url,
        "INSERT INTO companies (id, name) VALUES (1, 'A')",
        (
            "INSERT INTO calls (id, company_id, retell_call_id, session_outcome)"
            " SELECT g, 1, 'c' || g, 'information_only' FROM generate_series(1, 4) AS g"
        ),
    )
    yield db_url


def _app(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(url, user=APP_LOGIN)


def _state(url: str, call: int) -> tuple[Any, ...]:
    row = fetch_one(
        url,
        "SELECT c.appointment_made, c.session_outcome,"
        " (SELECT count(*) FROM guard.correction_audit AS a WHERE a.entity_id = c.id),"
        " (SELECT count(*) FROM guard.alerts WHERE check_id = 'flags_corrected_on_write'),"
        " (SELECT count(*) FROM guard.flag_checks_at_commit)"
        " FROM calls AS c WHERE c.id = %s",
        (call,),
    )
    assert row is not None
    return tuple(row)


def test_flags_written_before_their_appointment_commit_untouched(calls_url: str) -> None:
    with _app(calls_url) as app:
        app.execute(MARK_BOOKED, (1,))
        app.execute(INSERT_APPOINTMENT, (1,))
        app.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, appointment_made,"
            " appointment_link_status, appointment_linked_at, session_outcome)"
            " VALUES (5, 1, 'c5', TRUE, 'linked', now(), 'appointment_booked')"
        )
        app.execute(INSERT_APPOINTMENT, (5,))
        app.commit()
    # booked, no correction, no alert, nothing pending
    assert _state(calls_url, 1) == (True, "appointment_booked", 0, 0, 0)
    assert _state(calls_url, 5) == (True, "appointment_booked", 0, 0, 0)


def test_a_contradiction_standing_at_commit_is_corrected_audited_and_alerted(
    calls_url: str,
) -> None:
    with _app(calls_url) as app:
        app.execute(MARK_BOOKED, (1,))
        made_inside = app.execute("SELECT appointment_made FROM calls WHERE id = 1").fetchone()
        assert made_inside == (True,), "the write stands until commit"
        app.commit()
    made, outcome, audits, alerts, pending = _state(calls_url, 1)
    assert (made, outcome, audits, alerts, pending) == (False, "appointment_booked", 1, 1, 0)
    actor, reason = fetch_one(
        calls_url, "SELECT actor, reason FROM guard.correction_audit WHERE entity_id = 1"
    )
    assert actor == APP_LOGIN, "the audit names the login whose write was corrected"
    assert reason == "an update wrote booking flags that contradict the appointments"


def test_one_commit_is_one_pass_whatever_the_statements(calls_url: str) -> None:
    with _app(calls_url) as app:
        app.execute(MARK_BOOKED, (1,))
        app.execute(MARK_BOOKED, (2,))
        app.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, appointment_made)"
            " VALUES (6, 1, 'c6', TRUE)"
        )
        app.commit()
    corrected = fetch_one(
        calls_url, "SELECT array_agg(entity_id ORDER BY entity_id) FROM guard.correction_audit"
    )
    alert = fetch_all(
        calls_url,
        "SELECT occurrences, (details ->> 'corrected_calls')::int, details ->> 'reason'"
        " FROM guard.alerts WHERE check_id = 'flags_corrected_on_write'",
    )
    assert corrected == ([1, 2, 6],)
    assert alert == [
        (
            1,
            3,
            "a new call claimed a booking its appointments do not show; "
            "an update wrote booking flags that contradict the appointments",
        )
    ], "three statements, one commit: one correction pass, one alert"


def test_a_rolled_back_savepoint_takes_its_check_with_it(calls_url: str) -> None:
    with _app(calls_url) as app, app.transaction():
        with pytest.raises(errors.RaiseException), app.transaction():
            app.execute(MARK_BOOKED, (1,))
            app.execute("DO $$ BEGIN RAISE EXCEPTION 'undo'; END $$")
        app.execute("UPDATE calls SET status = 'completed' WHERE id = 1")
    assert _state(calls_url, 1) == (False, "information_only", 0, 0, 0)


def test_reject_mode_fails_the_commit_of_a_contradiction(calls_url: str) -> None:
    with psycopg.connect(calls_url, autocommit=True) as admin:
        admin.execute("UPDATE guard.rules SET mode = 'reject' WHERE id = 'I3_appointment_flags'")
    with _app(calls_url) as app:
        app.execute(MARK_BOOKED, (1,))
        with pytest.raises(errors.CheckViolation, match="contradict their appointments"):
            app.commit()
    assert _state(calls_url, 1) == (False, "information_only", 0, 0, 0)
    # The same write followed by its appointment is a legitimate transaction in reject mode too.
    with _app(calls_url) as app:
        app.execute(MARK_BOOKED, (1,))
        app.execute(INSERT_APPOINTMENT, (1,))
        app.commit()
    assert _state(calls_url, 1) == (True, "appointment_booked", 0, 0, 0)


def test_a_booking_in_call_first_order_waits_for_no_other_booking(calls_url: str) -> None:
    """The point of judging at commit: a booking in that order used to correct its transient
    state at once and bump its company's alert row, so concurrent bookings of one company queued
    behind each other. Now an uncommitted booking holds nothing another booking of the same
    company needs: the second one must not wait (a lock wait fails it here)."""
    with _app(calls_url) as first, _app(calls_url) as second:
        first.execute(MARK_BOOKED, (1,))
        first.execute(INSERT_APPOINTMENT, (1,))
        second.execute("SET lock_timeout = '200ms'")
        second.execute(MARK_BOOKED, (2,))
        second.execute(INSERT_APPOINTMENT, (2,))
        second.commit()
        first.commit()
    assert _state(calls_url, 1)[:2] == (True, "appointment_booked")
    assert _state(calls_url, 2) == (True, "appointment_booked", 0, 0, 0)


# Every statement form that can write a booking flag, each contradicting the appointments of
# call 1 (it has none): each must reach the commit-time check, whichever flag it writes. A form
# the marker trigger (guard_calls_note_flag_write) did not fire for would commit untouched.
FLAG_WRITES = {
    "update-all-flags": MARK_BOOKED % 1,
    "update-appointment_made-only": "UPDATE calls SET appointment_made = TRUE WHERE id = 1",
    "update-link-status-only": (
        "UPDATE calls SET appointment_link_status = 'linked', appointment_linked_at = now()"
        " WHERE id = 1"
    ),
    "update-link-status-alone": (
        "UPDATE calls SET appointment_link_status = 'linked' WHERE id = 1"
    ),
    "insert-of-a-linked-call-not-made": (
        "DELETE FROM calls WHERE id = 1;"
        " INSERT INTO calls (id, company_id, retell_call_id, appointment_link_status,"
        " appointment_linked_at) VALUES (1, 1, 'c1', 'linked', now())"
    ),
    "update-with-status-in-one-statement": (
        "UPDATE calls SET status = 'completed', appointment_made = TRUE WHERE id = 1"
    ),
    "insert-on-conflict-do-update": (
        "INSERT INTO calls (id, company_id, retell_call_id) VALUES (1, 1, 'c1')"
        " ON CONFLICT (id) DO UPDATE SET appointment_made = TRUE"
    ),
    "merge": (
        "MERGE INTO calls AS c USING (VALUES (1::bigint)) AS v (id) ON c.id = v.id"
        " WHEN MATCHED THEN UPDATE SET appointment_made = TRUE"
    ),
    # Booking Guard's own update of call 2 (the appointment trigger, a nested statement) runs
    # inside this statement, before its AFTER trigger on calls (the UPDATE reads the inserted
    # rows, so the INSERT's trigger is queued first): it must not take the mark of the
    # application's write of call 1.
    "update-reading-an-appointment-insert-in-one-statement": (
        "WITH booked AS (INSERT INTO appointments (company_id, call_id) VALUES (1, 2)"
        " RETURNING call_id) UPDATE calls SET appointment_made = TRUE"
        " WHERE id = 1 AND (SELECT count(*) FROM booked) = 1"
    ),
}


@pytest.mark.parametrize("statement", FLAG_WRITES.values(), ids=list(FLAG_WRITES))
def test_every_form_of_flag_write_is_judged_at_commit(calls_url: str, statement: str) -> None:
    before = fetch_one(
        calls_url,
        "SELECT appointment_made, appointment_link_status, session_outcome FROM calls WHERE id = 1",
    )
    with _app(calls_url) as app:
        app.execute(statement)
        app.commit()
    after = fetch_one(
        calls_url,
        "SELECT appointment_made, appointment_link_status, session_outcome FROM calls WHERE id = 1",
    )
    audits = fetch_one(calls_url, "SELECT count(*) FROM guard.correction_audit")
    assert audits == (1,), f"{statement!r} committed a contradiction unchecked"
    assert after is not None and before is not None
    assert after[0] is False and after[1] != "linked", "the booking flags were derived again"


def test_a_status_update_between_flag_writes_does_not_hide_them(calls_url: str) -> None:
    """A status update after a flag write, in the same transaction, neither re-checks it nor
    drops the pending check."""
    with _app(calls_url) as app:
        app.execute("UPDATE calls SET appointment_made = TRUE WHERE id = 1")
        app.execute("UPDATE calls SET status = 'completed' WHERE id = 1")
        app.execute("UPDATE calls SET status = 'completed' WHERE id = 2")
        app.commit()
    made, _, audits, _, pending = _state(calls_url, 1)
    assert (made, audits, pending) == (False, 1, 0)
    assert _state(calls_url, 2)[:3] == (False, "information_only", 0), "call 2 was not checked"


def test_a_session_setting_cannot_skip_the_check_of_a_flag_write(calls_url: str) -> None:
    """The check is a row trigger on the flag columns, not a mark a session could clear: a
    statement that sets the old mark's setting in its own SET list is checked all the same."""
    with _app(calls_url) as app:
        app.execute(
            "UPDATE calls SET appointment_made = TRUE,"
            " status = coalesce(status, '')"
            " || left(set_config('booking_guard.i3_flags_written', 'off', TRUE), 0)"
            " WHERE id = 1"
        )
        app.commit()
    made, _, audits, _, pending = _state(calls_url, 1)
    assert (made, audits, pending) == (False, 1, 0)


def test_a_flag_write_of_many_calls_checks_each(calls_url: str) -> None:
    """One statement writing the flags of several calls: each row is checked, the contradicting
    ones are corrected at commit, the agreeing one is left alone."""
    with _app(calls_url) as app:
        app.execute("UPDATE calls SET appointment_made = TRUE WHERE id IN (1, 2)")
        app.commit()
    assert _state(calls_url, 1)[0] is False
    assert _state(calls_url, 2)[0] is False
    audited = fetch_one(
        calls_url,
        "SELECT count(DISTINCT entity_id) FROM guard.correction_audit WHERE entity_id IN (1, 2)",
    )
    assert audited == (2,)


# Each booking flag written alone on a booked call, contradicting its appointment: the column list
# of the check's trigger (guard_calls_check_flag_write) must name every one of them.
BOOKED_CALL_FLAG_WRITES = {
    "appointment_made": "UPDATE calls SET appointment_made = FALSE WHERE id = 1",
    "appointment_link_status": "UPDATE calls SET appointment_link_status = 'unlinked' WHERE id = 1",
    "appointment_linked_at": "UPDATE calls SET appointment_linked_at = NULL WHERE id = 1",
    "session_outcome": "UPDATE calls SET session_outcome = 'no_availability' WHERE id = 1",
    "booking_failed": "UPDATE calls SET booking_failed = TRUE WHERE id = 1",
}
BOOKED_FLAGS = (
    "SELECT appointment_made, appointment_link_status, appointment_linked_at IS NOT NULL,"
    " session_outcome, booking_failed FROM calls WHERE id = 1"
)


@pytest.mark.parametrize(
    "statement", BOOKED_CALL_FLAG_WRITES.values(), ids=list(BOOKED_CALL_FLAG_WRITES)
)
def test_each_flag_written_alone_on_a_booked_call_is_judged_at_commit(
    calls_url: str, statement: str
) -> None:
    with psycopg.connect(calls_url, autocommit=True) as admin:
        admin.execute(INSERT_APPOINTMENT, (1,))
        booked = admin.execute(BOOKED_FLAGS).fetchone()
    assert booked == (True, "linked", True, "appointment_booked", False)
    with _app(calls_url) as app:
        app.execute(statement)
        app.commit()
    after = fetch_one(calls_url, BOOKED_FLAGS)
    assert after == booked, f"{statement!r} committed a contradiction unchecked"
    assert _state(calls_url, 1)[2] == 1, "the correction is audited"


def _store_contradiction_while_the_rule_is_off(url: str, call: int) -> None:
    """The application marks `call` made (it has no appointment) while rule I3 is disabled, as
    legacy data holds such a call; the rule is on again afterwards."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("UPDATE guard.rules SET enabled = FALSE WHERE id = 'I3_appointment_flags'")
    with _app(url) as app:
        app.execute("UPDATE calls SET appointment_made = TRUE WHERE id = %s", (call,))
        app.commit()
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("UPDATE guard.rules SET enabled = TRUE WHERE id = 'I3_appointment_flags'")


def test_an_update_that_writes_no_flag_checks_nothing(calls_url: str) -> None:
    """A contradiction already stored (written while the rule was disabled) is detection's to
    report: an update that writes no flag column neither corrects nor refuses its call, also when
    the same transaction wrote flags before, or booked another call (Booking Guard's own flag
    write), and in the session's next transaction."""
    _store_contradiction_while_the_rule_is_off(calls_url, 2)
    with _app(calls_url) as app:
        app.execute("UPDATE calls SET appointment_made = TRUE WHERE id = 1")
        app.execute(INSERT_APPOINTMENT, (3,))
        app.execute("UPDATE calls SET status = 'completed' WHERE id = 2")
        app.commit()
        app.execute("UPDATE calls SET status = 'in_progress' WHERE id = 2")
        app.commit()
    assert _state(calls_url, 2)[:3] == (True, "information_only", 0), "call 2 was checked"
    assert _state(calls_url, 1)[:3] == (False, "information_only", 1), "call 1's write was checked"
    assert _state(calls_url, 3)[:3] == (True, "appointment_booked", 0)


def test_a_restatement_of_the_flags_is_not_judged_and_a_change_is(calls_url: str) -> None:
    """An update that writes the flags the call already has changes nothing the rule reads: it is
    not judged, not even when the stored flags contradict (written while the rule was disabled:
    detection's to report, as for an update that writes no flag column). The same call's next
    write that changes one of those values is judged at commit and corrected. A booked call
    whose flags the application restates after its appointment (the everyday flag write) keeps
    them."""
    _store_contradiction_while_the_rule_is_off(calls_url, 2)
    with psycopg.connect(calls_url, autocommit=True) as admin:
        admin.execute(INSERT_APPOINTMENT, (1,))
    with _app(calls_url) as app:
        app.execute(
            "UPDATE calls SET appointment_made = TRUE, session_outcome = 'information_only'"
            " WHERE id = 2"
        )
        app.execute(MARK_BOOKED, (1,))
        app.commit()
    assert _state(calls_url, 2)[:3] == (True, "information_only", 0), "call 2 was judged"
    assert _state(calls_url, 1)[:3] == (True, "appointment_booked", 0)
    # Booked flags in full: judged against call 2's own appointments (none), not call 1's.
    with _app(calls_url) as app:
        app.execute(MARK_BOOKED, (2,))
        app.commit()
    assert _state(calls_url, 2)[:3] == (False, "appointment_booked", 1), "the change was not judged"
