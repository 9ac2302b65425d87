"""`guard db verify` and `guard db apply` agree (issue 74, row 4): a grant verify reports
missing is put back by apply, which says so; the application's own column, index and trigger on
a booking table Booking Guard created are the application's, not drift, while a `guard_*`
object nobody shipped and an extra column of a guard table still are."""

from __future__ import annotations

import psycopg
from click.testing import CliRunner

from guard.cli import main
from guard.schema.verify import verify
from tests.support.queries import execute


def _apply(url: str) -> str:
    result = CliRunner().invoke(main, ["--database-url", url, "db", "apply"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_revoked_grant_that_verify_reports_is_restored_by_apply(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("REVOKE SELECT ON guard.kpis FROM guard_reporting")
    assert [(d.kind, d.subject) for d in verify(db_url)] == [
        ("missing", "grant SELECT on guard.kpis to reporting")
    ]
    assert _apply(db_url).startswith("Restored the privileges Booking Guard grants")
    assert verify(db_url) == []
    assert _apply(db_url) == "Nothing to apply: the database is up to date.\n"


def test_the_applications_own_objects_on_a_booking_table_are_not_drift(db_url: str) -> None:
    execute(
        db_url,
        "ALTER TABLE calls ADD COLUMN agent_notes text",
        "CREATE INDEX calls_agent_notes_idx ON calls (agent_notes)",
        "ALTER TABLE appointments ADD CONSTRAINT appointments_notes_short CHECK (true)",
    )
    assert verify(db_url) == []


def test_guard_named_objects_and_guard_tables_are_still_compared(db_url: str) -> None:
    execute(
        db_url,
        "CREATE INDEX guard_calls_stray_idx ON calls (status)",
        "ALTER TABLE guard.review_items ADD COLUMN stray text",
    )
    assert sorted((d.kind, d.subject) for d in verify(db_url)) == [
        ("extra", "column guard.review_items.stray"),
        ("extra", "index guard_calls_stray_idx on public.calls"),
    ]
