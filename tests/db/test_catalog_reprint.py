"""`catalog.as_printed_by` has the live server print each stored view text again. A text the server
cannot build keeps its stored form (the drift then shows); an attempt cut while printing (a lock
timeout, the hold guard's cancel) must reach the caller, whose lock retry runs the attempt again:
kept, it made `guard db apply` refuse a migration for a view that had not drifted."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from guard.schema import catalog, definitions
from tests.support.queries import fetch_one

_VIEW = "guard.kpis"


def _stored() -> catalog.Snapshot:
    stored, _made_from = definitions.stored_snapshot()
    return stored


def _printed_by_server(url: str, view: str) -> str:
    row = fetch_one(url, "SELECT pg_get_viewdef(%s::regclass)", (view,))
    assert row is not None
    return str(row[0])


@pytest.mark.parametrize(
    ("text", "sqlstate"),
    [
        ("SELECT c.no_such_column FROM public.calls AS c", "42703"),
        ("SELECT 1 AS one FROM public.no_such_table", "42P01"),
        ("SELECT '2026-13-45'::date AS day", "22008"),
    ],
    ids=["undefined-column", "undefined-table", "literal-refused"],
)
def test_a_text_this_server_cannot_build_keeps_its_stored_form(
    db_url: str, text: str, sqlstate: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as raised:
            conn.execute(text)
        assert raised.value.sqlstate == sqlstate, "the text fails in another way than meant"
        snapshot = _stored()
        snapshot["relations"][_VIEW]["view_def"] = text
        reprinted = catalog.as_printed_by(conn, snapshot)
    assert reprinted["relations"][_VIEW]["view_def"] == text
    # The views after it are still printed by the server.
    others = [
        name
        for name, relation in sorted(reprinted["relations"].items())
        if relation.get("view_def") is not None and name > _VIEW
    ]
    assert others, "no view follows guard.kpis: the walk's continuation is not asserted"
    assert reprinted["relations"][others[0]]["view_def"] == _printed_by_server(db_url, others[0])


def test_a_read_only_server_keeps_every_stored_text(db_url: str) -> None:
    """A standby cannot create the temporary view; `guard db verify` there compares the stored
    texts as they are (tests/ha/test_standby_commands.py runs it on a real standby)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = on")
        stored = _stored()
        stored["relations"][_VIEW]["view_def"] = "SELECT 1 AS not_as_printed"
        reprinted = catalog.as_printed_by(conn, stored)
    assert reprinted == stored


def test_a_lock_timeout_while_printing_reaches_the_caller(db_url: str) -> None:
    with (
        psycopg.connect(db_url) as blocker,
        psycopg.connect(db_url, autocommit=True) as conn,
    ):
        blocker.execute("LOCK TABLE public.calls IN ACCESS EXCLUSIVE MODE")
        conn.execute("SET lock_timeout = '100ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            catalog.as_printed_by(conn, _stored())
        blocker.rollback()
        # Nothing stays behind: the temporary views were rolled back with the attempt.
        left = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'guard_reprinted_%'"
        ).fetchone()
    assert left == (0,)


def test_a_cancel_while_printing_reaches_the_caller(db_url: str) -> None:
    """The hold guard's cut is a pg_cancel_backend of the attempt's statement; the blocker lets go
    right after it, so a swallowed cancel would let the walk go on and return."""
    with (
        psycopg.connect(db_url) as blocker,
        psycopg.connect(db_url, autocommit=True) as conn,
        psycopg.connect(db_url, autocommit=True) as canceller,
    ):
        blocker.execute("LOCK TABLE public.calls IN ACCESS EXCLUSIVE MODE")
        conn.execute("SET lock_timeout = '30s'")
        pid = conn.info.backend_pid
        cancelled = threading.Event()

        def cancel_once_waiting() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                row = canceller.execute(
                    "SELECT wait_event_type = 'Lock' AND query LIKE 'CREATE TEMPORARY VIEW%%'"
                    " FROM pg_stat_activity WHERE pid = %s",
                    (pid,),
                ).fetchone()
                if row is not None and row[0]:
                    canceller.execute("SELECT pg_cancel_backend(%s)", (pid,))
                    cancelled.set()
                    break
                time.sleep(0.01)
            blocker.rollback()

        thread = threading.Thread(target=cancel_once_waiting)
        thread.start()
        try:
            with pytest.raises(psycopg.errors.QueryCanceled):
                catalog.as_printed_by(conn, _stored())
        finally:
            thread.join(timeout=30)
    assert cancelled.is_set(), "the printing never waited on the lock: the cancel was not tested"
