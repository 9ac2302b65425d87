"""`guard check --all` reads the calls once per batch for the checks that each read every call
(guard.history_call_candidates). When that read is cut by the pass's own statement_timeout, each
of those checks reads its view whole instead; a cancel somebody asked for stops the pass."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from guard.ops.detection import CALL_CANDIDATE_CHECKS, _call_candidates, check_history
from tests.support.polling import wait_for

SINCE = datetime(2000, 1, 1, tzinfo=UTC)
UNTIL = datetime.max.replace(tzinfo=UTC)


def _read_while_calls_are_locked(url: str, *, cancel: bool) -> dict[str, Any]:
    """The candidates read, run while another session holds public.calls locked; `cancel`:
    pg_cancel_backend once the read waits for the lock. What it returned or raised."""
    outcome: dict[str, Any] = {}
    with (
        psycopg.connect(url) as locker,
        psycopg.connect(url) as reader,
        psycopg.connect(url, autocommit=True) as observer,
    ):
        locker.execute("LOCK TABLE public.calls IN ACCESS EXCLUSIVE MODE")

        def read() -> None:
            try:
                outcome["returned"] = _call_candidates(reader, SINCE, UNTIL)
            except psycopg.Error as error:
                outcome["raised"] = error

        thread = threading.Thread(target=read)
        thread.start()
        if cancel:
            deadline = time.monotonic() + 30
            pid = reader.info.backend_pid
            while observer.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone() != ("Lock",):
                assert time.monotonic() < deadline, "the read never waited for the lock"
                time.sleep(0.01)
            observer.execute("SELECT pg_cancel_backend(%s)", (pid,))
        thread.join(timeout=60)
        assert not thread.is_alive(), "the candidates read never ended"
        locker.rollback()
    return outcome


def test_the_pass_timer_leaves_each_check_to_read_its_view_whole(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE guard.settings SET value = '300' WHERE key = 'detection_statement_timeout_ms'"
        )
    assert _read_while_calls_are_locked(db_url, cancel=False) == {"returned": {}}


@pytest.mark.parametrize("timeout_ms", ["60000", "0"])
def test_a_cancel_somebody_asked_for_stops_the_pass(db_url: str, timeout_ms: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE guard.settings SET value = %s WHERE key = 'detection_statement_timeout_ms'",
            (timeout_ms,),
        )
    outcome = _read_while_calls_are_locked(db_url, cancel=True)
    assert isinstance(outcome.get("raised"), psycopg.errors.QueryCanceled), outcome


def test_without_a_cut_the_checks_get_their_candidates(db_url: str) -> None:
    """The other side: the read runs through and names each check it serves."""
    with psycopg.connect(db_url) as conn:
        found = _call_candidates(conn, SINCE, UNTIL)
    assert set(found) == {
        "booked_without_appointment",
        "flags_contradict_appointments",
        "call_without_direction",
    }
    assert set(found) == CALL_CANDIDATE_CHECKS


def _sessions(url: str, application_name: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        query = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s"
        )
        [(count,)] = conn.execute(query, (application_name,)).fetchall()
    return int(count)


def _candidate_reads(url: str) -> int:
    """How often guard.history_call_candidates ran in this database (track_functions)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT calls FROM pg_stat_user_functions"
            " WHERE schemaname = 'guard' AND funcname = 'history_call_candidates'"
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("served_enabled", [True, False])
def test_the_calls_are_read_only_for_a_check_that_uses_them(
    db_url: str, served_enabled: bool
) -> None:
    """A pass without any of the checks the read serves does not scan the calls for them; one
    with them reads once per batch."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {conn.info.dbname} SET track_functions = 'pl'")
        [(company,)] = conn.execute(
            "INSERT INTO public.companies (name) VALUES ('Clinic') RETURNING id"
        ).fetchall()
        conn.execute(
            "INSERT INTO public.calls (company_id, direction) VALUES (%s, 'inbound')", (company,)
        )
        if not served_enabled:
            conn.execute(
                "UPDATE guard.checks SET enabled = FALSE WHERE id = ANY(%s)",
                (sorted(CALL_CANDIDATE_CHECKS),),
            )
        [(enabled,)] = conn.execute(
            "SELECT count(*) FROM guard.history_checks() WHERE check_id <> ALL(%s)",
            (sorted(CALL_CANDIDATE_CHECKS),),
        ).fetchall()
    assert enabled > 0, "the pass must still have checks to run"
    summary = check_history(db_url, None, lambda _: None)
    assert summary, "the pass ran no check"
    # a session's function statistics reach the shared counters as it exits, before it leaves
    # pg_stat_activity
    wait_for(lambda: not _sessions(db_url, "guard check --all"), 30, "the pass's session to end")
    assert _candidate_reads(db_url) == (1 if served_enabled else 0)
