"""No raw phone number is readable by a reporting login in free text, found by walking the
catalog: the application writes a phone number into every text and JSON column it may write
(and into the context of a rolled back booking), detection copies what it copies, and then
every column of every relation the reporting login may SELECT, of a text or JSON type, is read
and searched for the number's digits."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from tests.security.conftest import COMPANY_A, connect_as

PHONE = "+49 30 9876543"
# the subscriber digits: what a masked number hides (+49 30 ****543)
NEEDLE = "9876543"

_WRITABLE_TEXT_COLUMNS = """
SELECT c.table_name, c.column_name, c.data_type
FROM information_schema.columns AS c
WHERE
    c.table_schema = 'public'
    AND c.data_type IN ('text', 'character varying', 'jsonb', 'json')
    AND has_column_privilege(
        format('public.%I', c.table_name), c.column_name, 'UPDATE'
    )
ORDER BY 1, 2
"""

_READABLE_TEXT_COLUMNS = """
SELECT n.nspname, c.relname, a.attname
FROM pg_class AS c
JOIN pg_namespace AS n ON c.relnamespace = n.oid
JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE
    n.nspname = %s
    AND c.relkind IN ('r', 'v', 'm', 'p')
    AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'jsonb'::regtype, 'json'::regtype,
                       'text[]'::regtype, 'name'::regtype)
    AND has_column_privilege(c.oid, a.attnum, 'SELECT')
ORDER BY 1, 2, 3
"""


def _value(data_type: str) -> str:
    if data_type in ("jsonb", "json"):
        return json.dumps({"phone": PHONE, "note": f"call back on {PHONE}", "list": [PHONE]})
    return f"customer {PHONE} unreachable"


def _write_phone_numbers_everywhere(url: str, app_login: str) -> list[str]:
    """As the application: a phone number in every text/JSON column it may update (a column
    whose constraints refuse one is left as it is), and in a rolled back booking's context."""
    written = []
    with connect_as(url, app_login) as app:
        for table, column, data_type in app.execute(_WRITABLE_TEXT_COLUMNS).fetchall():
            statement = sql.SQL("UPDATE {} SET {} = %s").format(
                sql.Identifier("public", table), sql.Identifier(column)
            )
            try:
                with app.transaction():
                    app.execute(statement, (_value(data_type),))
                written.append(f"{table}.{column}")
            except (errors.CheckViolation, errors.UniqueViolation, errors.DataException):
                pass  # the column refuses a phone number: nothing to leak
        app.execute(
            "SELECT guard.rollback_booking(1, 'calendar_booking_failure', %s)",
            (json.dumps({"customer": PHONE, "said": f"call me on {PHONE}"}),),
        )
    return written


def _raw_numbers_readable(conn: psycopg.Connection[Any], schema: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for nsp, rel, column in conn.execute(_READABLE_TEXT_COLUMNS, (schema,)).fetchall():
        query = sql.SQL(
            "SELECT count(*) FROM {} WHERE regexp_replace({}::text, '[^0-9]', '', 'g') LIKE %s"
        ).format(sql.Identifier(nsp, rel), sql.Identifier(column))
        (count,) = conn.execute(query, (f"%{NEEDLE}%",)).fetchone() or (0,)
        if count:
            found[f"{nsp}.{rel}.{column}"] = count
    return found


@pytest.fixture
def phone_numbers_everywhere(seeded_url: str, login_roles: dict[str, str]) -> str:
    written = _write_phone_numbers_everywhere(seeded_url, login_roles["application"])
    # the test can fail: the free-text columns the issue names were written
    assert {"calls.booking_failure_reason", "calls.booking_details"} <= set(written)
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        admin.execute("SELECT count(*) FROM guard.run_detection('-infinity', NULL)")
    return seeded_url


# Not fixed yet: text columns the application writes that are not free text by intent (codes,
# booking ids, a company name) still show what it wrote, and so do the audit's copy of a call's
# columns and the details of alerts and review items (they also carry booking uids and
# idempotency keys that a person needs whole: masking them when stored would destroy those, and
# masking at read needs views over both tables). Listed exactly: a new leak fails this test, and
# so does one that gets fixed without this list being shortened.
KNOWN_UNMASKED = {
    "guard.alerts.details",
    "guard.review_items.details",
    "guard.calls_report.booking_id",
    "guard.calls_report.session_outcome",
    "guard.calls_report.status",
    "guard.check_recent_booking_failure.detail",  # its session_outcome
    "guard.correction_audit.before",
    "guard.daily_report_view.company_name",
}


@pytest.mark.parametrize("kind", ["reporting", "reviewer"])
def test_no_raw_phone_number_in_any_guard_view_or_table_a_reader_may_read(
    phone_numbers_everywhere: str, login_roles: dict[str, str], kind: str
) -> None:
    with connect_as(phone_numbers_everywhere, login_roles[kind], tenant=COMPANY_A) as reader:
        columns = reader.execute(_READABLE_TEXT_COLUMNS, ("guard",)).fetchall()
        assert len(columns) > 20  # the walk reached the views and tables
        masked = reader.execute(
            "SELECT booking_failure_reason FROM guard.calls_report WHERE id = 1"
        ).fetchone()
        assert masked == ("customer +49 30 ****543 unreachable",)
        assert set(_raw_numbers_readable(reader, "guard")) == KNOWN_UNMASKED


@pytest.mark.xfail(
    strict=True,
    reason="not fixed yet: reporting and reviewer hold SELECT on public.calls"
    " booking_failure_reason and booking_details (free text as the application wrote it);"
    " the security_invoker view guard.check_recent_booking_failure reads the reason with the"
    " reader's rights, so the grant cannot simply be revoked",
)
def test_no_raw_phone_number_in_the_application_tables_reporting_may_read(
    phone_numbers_everywhere: str, login_roles: dict[str, str]
) -> None:
    with connect_as(phone_numbers_everywhere, login_roles["reporting"], tenant=COMPANY_A) as reader:
        assert _raw_numbers_readable(reader, "public") == {}


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("customer +49 30 1234567 unreachable", "customer +49 30 ****567 unreachable"),
        ("two: 030 1234567, +4930 7654321.", "two: 030 ****567, +4930 ****321."),
        ("+49 30 1234567 030 7654321", "+** ** ******* *** *******"),
        ("booked for 2026-11-22 09:00", "booked for 2026-11-22 09:00"),
        ("call 4711 or room 12", "call 4711 or room 12"),
        ("no number", "no number"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_phone_numbers_in_free_text(
    conn: psycopg.Connection[tuple[object, ...]], text: str | None, masked: str | None
) -> None:
    assert conn.execute("SELECT guard.mask_phone_numbers(%s)", (text,)).fetchone() == (masked,)


def test_mask_phone_numbers_in_json(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    document = {"a": [PHONE, 4930987654321, None, {"b": f"x {PHONE}"}], PHONE: True}
    row = conn.execute(
        "SELECT guard.mask_phone_numbers_json(%s::jsonb)", (json.dumps(document),)
    ).fetchone()
    assert row == (
        {
            "a": ["+49 30 ****543", 4930987654321, None, {"b": "x +49 30 ****543"}],
            "+49 30 ****543": True,
        },
    )
