"""A rollback leaves the application able to write: the definitions the rolled-back migration's
tables served go back with it, not only at the next release.

Rolling back 0095_detection_queue dropped the queue while the calls trigger's function still
wrote to it: every write of a call's outcome or flags failed until the next `guard db apply`.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from guard.schema.migrate import Migrator
from tests.support.migrations import shipped_migrations
from tests.support.queries import fetch_all, fetch_one

BELOW_THE_QUEUE = "0090_rule_company_stages"
WITH_THE_QUEUE = "0095_detection_queue"


def _end_a_call_without_an_appointment(url: str) -> None:
    """What the application does when a call ends without a booking: the write the calls
    trigger queues for detection."""
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO public.companies (id, name) VALUES (1, 'A')")
        conn.execute(
            "INSERT INTO public.calls (id, company_id, retell_call_id, direction,"
            " customer_link_status, status) VALUES (1, 1, 'c1', 'inbound', 'unlinked', 'ongoing')"
        )
        conn.execute(
            "UPDATE public.calls SET status = 'ended', session_outcome = 'no_booking' WHERE id = 1"
        )


def test_the_calls_trigger_works_after_the_queue_is_rolled_back(db_url: str) -> None:
    with Migrator(db_url) as migrator:
        undone = migrator.rollback(to=BELOW_THE_QUEUE)
    assert WITH_THE_QUEUE in undone
    _end_a_call_without_an_appointment(db_url)  # raised UndefinedTable before the fix
    assert fetch_one(db_url, "SELECT to_regclass('guard.detection_queue')") == (None,)
    assert fetch_one(db_url, "SELECT status FROM public.calls WHERE id = 1") == ("ended",)


def test_the_queue_fills_again_after_apply(db_url: str) -> None:
    with Migrator(db_url) as migrator:
        migrator.rollback(to=BELOW_THE_QUEUE)
        migrator.apply()
    _end_a_call_without_an_appointment(db_url)
    assert fetch_all(db_url, "SELECT call_id FROM guard.detection_queue") == [(1,)]


def test_the_preview_names_every_dropped_table_and_not_a_renamed_one(
    db_url: str, tmp_path: Path
) -> None:
    """A rollback that renames one table back and drops another: the renamed one keeps its
    rows and is not listed; the dropped one is, with its rows, wherever it sorts."""
    added = {
        "0900_preview_fixture.sql": "CREATE TABLE public.aa_preview (id integer);\n",
        "0900_preview_fixture.rollback.sql": "DROP TABLE public.aa_preview;\n",
        "0901_preview_rename.sql": (
            "ALTER TABLE public.aa_preview RENAME TO ab_preview;\n"
            "CREATE TABLE public.zz_preview (id integer);\n"
            "INSERT INTO public.zz_preview SELECT generate_series(1, 3);\n"
        ),
        "0901_preview_rename.rollback.sql": (
            "DROP TABLE public.zz_preview;\nALTER TABLE public.ab_preview RENAME TO aa_preview;\n"
        ),
    }
    directory = shipped_migrations(tmp_path, added)
    with Migrator(db_url, directory) as migrator:
        migrator.apply()
        plan = migrator.rollback_plan("0900_preview_fixture")
        assert [m.id for m in plan] == ["0901_preview_rename"]
        preview = migrator.preview_rollback(plan)
    assert preview.error is None
    assert preview.tables == [("public.zz_preview", 3)]
    assert preview.columns == []
