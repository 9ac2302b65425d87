"""Detection at volume (issue 30, item 1), with real concurrent sessions: check_call does not wait
on a windowed pass held open in another transaction, the two writing the same alert leave one open
alert, and a pass that runs past detection_statement_timeout_ms fails the detect job clearly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psycopg
import pytest
from click.testing import CliRunner

from guard.cli import main
from tests.support.queries import fetch_all, fetch_one
from tests.support.seeds import seed_phantom

# Each session that could wait on another gives up after this: a regression fails, never hangs.
BOUND = "SET statement_timeout = '3s'"


def _open_alerts(url: str, call_id: int) -> list[tuple[str, int]]:
    with psycopg.connect(url) as conn:
        return [
            (r[0], r[1])
            for r in conn.execute(
                "SELECT check_id, occurrences FROM guard.alerts"
                " WHERE status = 'open' AND entity_type = 'call' AND entity_id = %s"
                " ORDER BY check_id",
                (call_id,),
            ).fetchall()
        ]


@pytest.mark.serial
def test_check_call_does_not_wait_on_a_windowed_pass_writing_its_alert(db_url: str) -> None:
    seed_phantom(db_url, 1)
    with (
        psycopg.connect(db_url) as global_pass,
        psycopg.connect(db_url, autocommit=True) as app,
    ):
        app.execute(BOUND)
        # The windowed pass opens the call's alert and stays open: it holds the detection lock
        # and the new alert row until it commits.
        opened = global_pass.execute(
            "SELECT sum(opened) FROM guard.detect() WHERE check_id = 'booked_without_appointment'"
        ).fetchone()
        assert opened == (1,)
        started = time.perf_counter()
        rows = app.execute("SELECT * FROM guard.check_call(1)").fetchall()
        waited = time.perf_counter() - started
        assert waited < 1.0, f"check_call waited {waited:.2f} s on the windowed pass"
        found = {r[0]: r for r in rows}
        assert found["booked_without_appointment"][2] == 1, "the call's finding is reported"
        # Its alert row is the pass's, not yet committed: check_call left it to the pass.
        assert found["booked_without_appointment"][3:] == (0, 0, 0)
        global_pass.commit()
    assert _open_alerts(db_url, 1) == [("booked_without_appointment", 1)], (
        "both wrote the same alert: exactly one is open"
    )


def _second_meets_the_first_uncommitted(url: str, first: str, second: str) -> None:
    """`first` runs and keeps its transaction open; `second`, in another session, runs into its
    uncommitted alert, and the first commits 0.3 s later."""
    with (
        psycopg.connect(url) as first_session,
        psycopg.connect(url, autocommit=True) as second_session,
    ):
        second_session.execute(BOUND)
        first_session.execute(first).fetchall()
        committer = threading.Timer(0.3, first_session.commit)
        committer.start()
        try:
            second_session.execute(second).fetchall()
        finally:
            committer.join()


def test_check_call_and_a_pass_writing_the_same_alert_leave_one_open_alert(db_url: str) -> None:
    seed_phantom(db_url, 2)
    # check_call first, its transaction open: the pass meets its uncommitted alert.
    _second_meets_the_first_uncommitted(
        db_url, "SELECT * FROM guard.check_call(2)", "SELECT * FROM guard.detect()"
    )
    assert _open_alerts(db_url, 2) == [("booked_without_appointment", 1)], (
        "the pass met check_call's alert on the unique index and opened no second one"
    )


def test_two_check_calls_of_one_call_open_one_alert(db_url: str) -> None:
    seed_phantom(db_url, 3)
    # The call's own lock: the second waits for the first, then finds its alert (a repeat
    # within the alert's refresh period: counted, not written).
    _second_meets_the_first_uncommitted(
        db_url, "SELECT * FROM guard.check_call(3)", "SELECT * FROM guard.check_call(3)"
    )
    assert _open_alerts(db_url, 3) == [("booked_without_appointment", 1)]


def test_check_call_prepares_its_queries_and_follows_a_redefined_view(db_url: str) -> None:
    """check_call prepares each check's query once per session: a second call plans nothing, a
    pooler's DEALLOCATE ALL only makes the next call prepare again, and a check view redefined
    meanwhile (a DBA's own check changed) is what the next call reads."""
    seed_phantom(db_url, 4)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE VIEW guard.check_every_call WITH (security_invoker = true) AS"
            " SELECT 'every_call'::text AS check_id, c.company_id, 'call'::text AS entity_type,"
            " c.id AS entity_id, c.id AS call_id, 'low'::text AS severity,"
            " c.created_at AS observed_at, '{}'::jsonb AS detail,"
            " 'I4_booked_outcome'::text AS rule_id FROM public.calls AS c WHERE c.id > 0"
        )
        conn.execute(
            "SELECT guard.register_check('every_call', 'I4_booked_outcome', 'check_every_call',"
            " 'low', 'every call')"
        )
        # a pass reads it first: check_call runs no own check no pass has read
        conn.execute("SELECT count(*) FROM guard.detect()")

        def found() -> dict[str, int]:
            rows = conn.execute("SELECT check_id, offending FROM guard.check_call(4)").fetchall()
            return {str(check): int(offending) for check, offending in rows if offending}

        def prepared() -> int:
            row = conn.execute(
                "SELECT count(*) FROM pg_prepared_statements"
                " WHERE name LIKE 'guard\\_check\\_call\\_%'"
            ).fetchone()
            assert row is not None
            return int(row[0])

        first = found()
        checks = prepared()
        assert first == {"booked_without_appointment": 1, "every_call": 1}
        assert checks >= 13, "one prepared query per check"
        assert found() == first and prepared() == checks, "a second call prepares nothing"
        conn.execute("DEALLOCATE ALL")
        assert found() == first and prepared() == checks, "prepared again after DEALLOCATE ALL"
        conn.execute(
            "CREATE OR REPLACE VIEW guard.check_every_call WITH (security_invoker = true) AS"
            " SELECT 'every_call'::text AS check_id, c.company_id, 'call'::text AS entity_type,"
            " c.id AS entity_id, c.id AS call_id, 'low'::text AS severity,"
            " c.created_at AS observed_at, '{}'::jsonb AS detail,"
            " 'I4_booked_outcome'::text AS rule_id FROM public.calls AS c WHERE c.id < 0"
        )
        assert found() == {"booked_without_appointment": 1}, "the redefined view is read"


def _run_as_cron_does(url: str) -> tuple[int, str]:
    """The detect job's command as pg_cron sends it: one simple-query message."""
    with psycopg.connect(url, autocommit=True) as conn:
        command = conn.execute("SELECT guard.job_command('detect')").fetchone()
        assert command is not None
        cursor = conn.execute(str(command[0]).encode())
        while cursor.nextset():
            pass
        row = cursor.fetchone()
    assert row is not None
    message = str(row[0])
    return (1 if "failed" in message else 0), message


def _run_with_the_cli(url: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["--database-url", url, "jobs", "run", "--once", "--job", "detect"]
    )
    return result.exit_code, result.output


@pytest.mark.parametrize("runner", [_run_with_the_cli, _run_as_cron_does], ids=["cli", "pg_cron"])
def test_a_pass_past_its_statement_timeout_fails_the_detect_job(
    db_url: str, runner: Callable[[str], tuple[int, str]]
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE guard.settings SET value = '300' WHERE key = 'detection_statement_timeout_ms'"
        )
    release = threading.Event()

    def hold_calls() -> None:
        # Another session holds a lock on a table every pass reads, for longer than the timeout
        # (released after 20 s at the latest, so a missing timeout fails the test, not hangs it).
        with psycopg.connect(db_url) as holder:
            holder.execute("LOCK TABLE public.calls IN ACCESS EXCLUSIVE MODE")
            release.wait(20)
            holder.rollback()

    holder = threading.Thread(target=hold_calls)
    holder.start()
    try:
        time.sleep(0.3)
        started = time.perf_counter()
        exit_code, output = runner(db_url)
        took = time.perf_counter() - started
    finally:
        release.set()
        holder.join()
    assert exit_code == 1, output
    assert "detect: failed after" in output, output
    assert "statement timeout" in output, output
    assert took < 10, f"the pass ran {took:.1f} s past a 300 ms timeout"
    run = fetch_all(db_url, "SELECT status, sqlstate FROM guard.job_runs WHERE job_name = 'detect'")
    alert = fetch_one(
        db_url,
        "SELECT status, details->>'sqlstate' FROM guard.alerts"
        " WHERE fingerprint = 'job_failed:job:detect'",
    )
    assert run == [("failed", "57014")]
    assert alert == ("open", "57014"), "the timeout raised a job_failed alert"
