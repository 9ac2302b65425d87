"""Every function a role must execute, executed as that role.

The tests of the booking path, detection and the review trail mostly run as the owner, who may
execute everything: a grant row lost from sql/grants/role_grants.sql went unnoticed (issue 51's
probe dropped the application's grant on a booking function and every test passed). Here the
list of what each role must be able to execute is written down independently of that file, and
each function is called as a login of that role, with NULL arguments in a transaction that is
rolled back: any error but "permission denied for function" shows the role may run it.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from tests.security.conftest import LOGINS
from tests.support.queries import fetch_all

# What the reporting role executes in the BI views, its tenant pin and `guard alerts show`
# (guard.json_excerpt and the guard.json_scalars it calls); the reviewer too.
READER = {
    "guard.current_company()",
    "guard.pin_company(bigint)",
    "guard.may_pin_company(bigint)",
    "guard.setting(text)",
    "guard.mask_phone(text)",
    "guard.mask_phone_numbers(text)",
    "guard.mask_phone_numbers_json(jsonb)",
    "guard.json_excerpt(jsonb, text)",
    "guard.json_scalars(jsonb)",
    "guard.visible_companies()",
    "guard.is_active_appointment(text, anyelement)",
    "guard.activity_against_usual(text)",
    "guard.activity_check(text, text, boolean)",
    "guard.app_time_zone()",
    "guard.app_time(timestamp without time zone, text)",
    "guard.app_time(timestamp with time zone, text)",
    "guard.to_app_time(timestamp with time zone, timestamp without time zone, text)",
    "guard.to_app_time(timestamp with time zone, timestamp with time zone, text)",
}

# What each role calls: the application on its booking path, in its triggers and through the
# breaker's write-behind; the reporting role in the BI views and its tenant pin; the reviewer in
# `guard review`. Written from the code that calls them, not copied from role_grants.sql.
MUST_EXECUTE = {
    "application": {
        "guard.setting(text)",
        "guard.current_company()",
        "guard.pin_company(bigint)",
        "guard.may_pin_company(bigint)",
        "guard.validate_booking(bigint, bigint, text)",
        "guard.rollback_booking(bigint, text, jsonb)",
        "guard.check_call(bigint)",
        "guard.validate_call_end(bigint)",
        "guard.call_flags_to_correct(bigint[], boolean)",
        "guard.active_appointment_for_call(bigint, bigint)",
        "guard.sync_call_flags(bigint[], bigint[])",
        "guard.sync_one_call_flags(bigint, boolean)",
        "guard.is_active_appointment(text, anyelement)",
        "guard.normalised_direction(text)",
        "guard.call_flags_contradict(boolean, text, timestamp with time zone, text, boolean,"
        " boolean)",
        "guard.record_validation(bigint, bigint, bigint, boolean, text, double precision)",
        "guard.begin_booking_attempt(bigint, bigint, text)",
        "guard.begin_booking(bigint, bigint, double precision, text)",
        "guard.record_booking(text, text, timestamp with time zone, timestamp with time zone,"
        " jsonb, text, integer)",
        "guard.booking_attempt_to_record(text)",
        "guard.record_calendar_booking(bigint, bigint, text, timestamp with time zone,"
        " timestamp with time zone, jsonb, text, text)",
        "guard.mask_phone_numbers(text)",
        "guard.alter_column_type(regclass, name, text, text)",
        "guard.set_aside_column_views(regclass, name)",
        "guard.restore_column_views()",
        "guard.complete_booking_attempt(text, bigint, text, integer)",
        "guard.fail_booking_attempt(text, text, jsonb)",
        "guard.reconcile_calendar_booking(bigint, text, text, timestamp with time zone,"
        " timestamp with time zone, bigint, text)",
        "guard.queue_missing_in_calendar(bigint, timestamp with time zone, timestamp with time"
        " zone, timestamp with time zone, text[], integer)",
        "guard.audit_calendar_restorations(bigint[], timestamp with time zone)",
        "guard.unsettled_booking_attempts(integer, integer)",
        "guard.record_breaker_transitions(jsonb)",
        "guard.breaker_restore_state(text)",
        "guard.app_time_zone()",
        "guard.app_time(timestamp without time zone, text)",
        "guard.app_time(timestamp with time zone, text)",
        "guard.to_app_time(timestamp with time zone, timestamp without time zone, text)",
        "guard.to_app_time(timestamp with time zone, timestamp with time zone, text)",
    },
    "reporting": READER,
    # the reviewer reads what the reporting role reads, and works the review queue
    "reviewer": READER
    | {
        "guard.review_claim(text, integer)",
        "guard.review_close(bigint, text, text, text, boolean)",
    },
}


def _granted(url: str) -> dict[str, set[str]]:
    """role kind -> the functions guard.role_grants grants it (as applied to the database)."""
    rows = fetch_all(
        url,
        "SELECT role_kind, object_name FROM guard.role_grants"
        " WHERE object_type = 'FUNCTION' AND 'EXECUTE' = ANY(privileges)",
    )
    found: dict[str, set[str]] = {}
    for kind, name in rows:
        found.setdefault(str(kind), set()).add(str(name))
    return found


def _null_call(signature: str) -> sql.Composed:
    """SELECT guard.f(NULL::t1, NULL::t2, ...) for `guard.f(t1, t2, ...)` (anyelement as text)."""
    name, arguments = signature.split("(", 1)
    types = [t.strip() for t in arguments.rstrip(")").split(",") if t.strip()]
    schema, function = name.split(".")
    nulls = sql.SQL(", ").join(
        sql.SQL("NULL::{}").format(sql.SQL("text" if t == "anyelement" else t)) for t in types
    )
    return sql.SQL("SELECT {}({})").format(sql.Identifier(schema, function), nulls)


def test_the_list_is_every_function_granted_to_those_roles(db_url: str) -> None:
    """A new grant needs its line here (and a caller); a grant gone from role_grants.sql fails
    the test below as well as this one."""
    granted = _granted(db_url)
    for kind, wanted in MUST_EXECUTE.items():
        assert granted.get(kind, set()) >= wanted, (
            f"{kind} lost: {wanted - granted.get(kind, set())}"
        )
    new = {
        kind: names - MUST_EXECUTE.get(kind, set())
        for kind, names in granted.items()
        if kind != "owner" and names - MUST_EXECUTE.get(kind, set())
    }
    assert not new, f"granted but not listed here with its caller: {new}"


@pytest.mark.parametrize(
    ("kind", "signature"),
    sorted((kind, signature) for kind, names in MUST_EXECUTE.items() for signature in names),
)
def test_each_role_executes_what_it_must(
    db_url: str, login_roles: dict[str, str], kind: str, signature: str
) -> None:
    with psycopg.connect(db_url, user=LOGINS[kind]) as conn:
        try:
            conn.execute(_null_call(signature))
        except psycopg.errors.InsufficientPrivilege as error:
            assert "permission denied for function" not in str(error), (
                f"{kind} may not execute {signature}: {error}"
            )
        except psycopg.Error:
            pass  # NULL arguments may be refused: the role got to run the function
        finally:
            conn.rollback()


def test_a_role_without_the_grant_is_refused(db_url: str, login_roles: dict[str, str]) -> None:
    """The other side: the reporting role may not run a booking function."""
    with (
        psycopg.connect(db_url, user=LOGINS["reporting"]) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for function"),
    ):
        conn.execute(_null_call("guard.rollback_booking(bigint, text, jsonb)"))
