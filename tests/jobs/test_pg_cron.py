"""The jobs under pg_cron, really running in the test cluster: the migration schedules them in
the one database where pg_cron lives (tests.support.postgres.CRON_DATABASE), `guard db verify`
sees cron drift, and a job scheduled every minute leaves its heartbeat."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import psycopg
import pytest

from guard.ops.jobs import job_status
from guard.schema import catalog
from guard.schema.drift import compare_cron_jobs
from tests.support.cron import migrated_cron_database, quiet_cron
from tests.support.postgres import CRON_DATABASE, Cluster, throwaway_cluster
from tests.support.queries import fetch_all, fetch_one

pytestmark = pytest.mark.pg_cron

JOB_NAMES = {
    "detect",
    "detect_queue",
    "reconcile",
    "review_sweep",
    "sweep",
    "daily_report",
    "retention",
}


@pytest.fixture(scope="module")
def cron_db_url(pg_cluster: Cluster) -> Iterator[str]:
    url = migrated_cron_database(pg_cluster)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT guard.schedule_jobs()")  # in case the database was migrated before
    yield url
    quiet_cron(url)  # its runs would hold up every DROP DATABASE of the worker's later tests


def _cron_jobs(url: str) -> dict[str, tuple[str, str]]:
    rows = fetch_all(url, "SELECT jobname, schedule, command FROM cron.job")
    return {name: (schedule, command) for name, schedule, command in rows}


def _pg_cron_has_seconds(url: str) -> bool:
    version = fetch_one(
        url,
        "SELECT string_to_array(substring(extversion FROM '^[0-9]+(?:\\.[0-9]+)*'), '.')::int[]"
        " FROM pg_extension WHERE extname = 'pg_cron'",
    )
    assert version is not None
    return bool(version[0] >= [1, 5])


def test_the_migration_schedules_every_job(cron_db_url: str) -> None:
    scheduled = _cron_jobs(cron_db_url)
    seconds = _pg_cron_has_seconds(cron_db_url)
    for name in JOB_NAMES:
        assert f"guard_{name}" in scheduled, scheduled
        if name == "detect_queue" and not seconds:
            # minutes only: the minute's run runs the job every 15 s itself, committing each
            # run, and at once again after a run that took a whole batch
            command = scheduled[f"guard_{name}"][1]
            assert command.startswith("DO $run$"), scheduled[f"guard_{name}"]
            assert "PERFORM guard.run_job('detect_queue');" in command
            assert "COMMIT; EXIT WHEN" in command and "CONTINUE WHEN again;" in command
            continue
        assert scheduled[f"guard_{name}"][1].endswith(f"SELECT guard.run_job('{name}')")
    # the detect job's pass runs under detection_statement_timeout_ms (armed by the statement
    # before it: a function cannot arm statement_timeout for itself)
    assert scheduled["guard_detect"][1].startswith(
        "SELECT pg_catalog.set_config('statement_timeout',"
    )
    assert scheduled["guard_reconcile"][1] == "SELECT guard.run_job('reconcile')"
    assert scheduled["guard_detect"][0] == "*/5 * * * *"
    assert scheduled["guard_daily_report"][0] == "0 2 * * *"
    # '15 seconds' where pg_cron has seconds (1.5 on); every minute on an older one
    assert scheduled["guard_detect_queue"][0] == ("15 seconds" if seconds else "* * * * *")


def test_cron_schedule_has_seconds_from_pg_cron_1_5(cron_db_url: str) -> None:
    """guard.cron_schedule decides from the installed pg_cron's version: before 1.5 a job of
    'N seconds' runs every minute, from 1.5 on it keeps its seconds; a cron line is kept on
    both. The version is set on the real extension row in a transaction that is rolled back."""
    given: dict[str, tuple[str, str]] = {}
    with psycopg.connect(cron_db_url) as conn:
        try:
            for version in ("1.4", "1.4-1", "1.5", "1.5.2", "1.6", "1.10", "2.0"):
                conn.execute(
                    "UPDATE pg_catalog.pg_extension SET extversion = %s WHERE extname = 'pg_cron'",
                    (version,),
                )
                row = conn.execute(
                    "SELECT guard.cron_schedule('15 seconds'), guard.cron_schedule('0 2 * * *')"
                ).fetchone()
                assert row is not None
                given[version] = row
        finally:
            conn.rollback()
    minutes = ("* * * * *", "0 2 * * *")
    seconds = ("15 seconds", "0 2 * * *")
    assert given == {
        "1.4": minutes,
        "1.4-1": minutes,
        "1.5": seconds,
        "1.5.2": seconds,
        "1.6": seconds,
        "1.10": seconds,
        "2.0": seconds,
    }


def test_verify_reports_cron_drift(cron_db_url: str) -> None:
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        assert compare_cron_jobs(catalog.cron_jobs(conn)) == []
        try:
            conn.execute("SELECT cron.unschedule('guard_retention')")
            conn.execute("SELECT cron.schedule('guard_detect', '*/7 * * * *', 'SELECT 1')")
            found = {(d.kind, d.subject) for d in compare_cron_jobs(catalog.cron_jobs(conn))}
            assert found == {
                ("missing", "cron job guard_retention"),
                ("changed", "cron job guard_detect"),
            }
            snapshot = catalog.take(conn)
            assert "cron_jobs" in snapshot
        finally:
            conn.execute("SELECT guard.schedule_jobs()")
        assert compare_cron_jobs(catalog.cron_jobs(conn)) == []


def test_jobs_status_and_verify_agree_on_the_installed_pg_cron(cron_db_url: str) -> None:
    """`guard jobs status` judges drift as verify does: on pg_cron before 1.5 detect_queue's
    '15 seconds' is scheduled every minute, which is no drift there; a real change still is."""
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        assert compare_cron_jobs(catalog.cron_jobs(conn)) == []
        states = {job["job_name"]: job["pg_cron"] for job in job_status(conn)}
        assert set(states.values()) == {"scheduled"}, states
        try:
            conn.execute("SELECT cron.schedule('guard_detect', '*/7 * * * *', 'SELECT 1')")
            states = {job["job_name"]: job["pg_cron"] for job in job_status(conn)}
            assert states["detect"].startswith("drift (*/7 * * * *"), states
            assert states["detect_queue"] == "scheduled"
        finally:
            conn.execute("SELECT guard.schedule_jobs()")


def test_jobs_status_says_what_a_login_may_not_see_of_pg_cron(cron_db_url: str) -> None:
    """A login without USAGE on schema cron (pg_cron grants it to no one), or without SELECT on
    cron.job, is told the jobs' pg_cron state is not visible to it."""
    with psycopg.connect(cron_db_url) as conn:
        [(owner,)] = conn.execute(
            "SELECT role_name FROM guard.role_names WHERE kind = 'owner'"
        ).fetchall()
        conn.execute(f'SET LOCAL ROLE "{owner}"')
        assert {job["pg_cron"] for job in job_status(conn)} == {"not visible to this login"}
        conn.execute("RESET ROLE")
        conn.execute(f'GRANT USAGE ON SCHEMA cron TO "{owner}"')
        conn.execute("REVOKE SELECT ON cron.job FROM PUBLIC")
        conn.execute(f'SET LOCAL ROLE "{owner}"')
        assert {job["pg_cron"] for job in job_status(conn)} == {"not visible to this login"}
        conn.rollback()
        assert {job["pg_cron"] for job in job_status(conn)} == {"scheduled"}


def test_disabling_a_job_unschedules_it(cron_db_url: str) -> None:
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        try:
            conn.execute("UPDATE guard.jobs SET enabled = false WHERE name = 'retention'")
            message = conn.execute("SELECT guard.schedule_jobs()").fetchone()
            assert message == (f"pg_cron: {len(JOB_NAMES) - 1} job(s) scheduled, 1 unscheduled",)
            assert "guard_retention" not in _cron_jobs(cron_db_url)
        finally:
            conn.execute("UPDATE guard.jobs SET enabled = true WHERE name = 'retention'")
            conn.execute("SELECT guard.schedule_jobs()")
        assert "guard_retention" in _cron_jobs(cron_db_url)


def test_schedule_jobs_leaves_every_other_cron_job_alone(cron_db_url: str) -> None:
    """A DBA's own job in this database, and a guard_* job of another database, are not
    Booking Guard's schedule here: guard.schedule_jobs unschedules neither."""
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        own = conn.execute(
            "SELECT cron.schedule('nightly_vacuum', '0 4 * * *', 'VACUUM')"
        ).fetchone()
        elsewhere = conn.execute(
            "SELECT cron.schedule_in_database("
            "'guard_elsewhere', '0 5 * * *', 'SELECT 1', 'postgres')"
        ).fetchone()
        assert own is not None and elsewhere is not None
        try:
            message = conn.execute("SELECT guard.schedule_jobs()").fetchone()
            assert message == (f"pg_cron: {len(JOB_NAMES)} job(s) scheduled, 0 unscheduled",)
            left = conn.execute(
                "SELECT jobname, database FROM cron.job WHERE jobid = ANY(%s) ORDER BY jobname",
                ([own[0], elsewhere[0]],),
            ).fetchall()
            assert left == [("guard_elsewhere", "postgres"), ("nightly_vacuum", CRON_DATABASE)]
        finally:
            conn.execute(
                "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobid = ANY(%s)",
                ([own[0], elsewhere[0]],),
            )
        assert compare_cron_jobs(catalog.cron_jobs(conn)) == []


@pytest.mark.slow
def test_pg_cron_runs_a_job_and_it_leaves_a_heartbeat(cron_db_url: str) -> None:
    """pg_cron 1.4 has minute granularity: a job scheduled every minute runs within 75 s."""
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO guard.jobs (name, schedule, interval_seconds, command, description)"
            " VALUES ('cron_probe', '* * * * *', 60,"
            " 'SELECT count(*) FROM guard.daily_report(CAST(now() AS date) - 1)', 'test probe')"
        )
        try:
            conn.execute("SELECT guard.schedule_jobs()")
            deadline = time.monotonic() + 75
            row = None
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT status, runner FROM guard.job_runs WHERE job_name = 'cron_probe'"
                    " ORDER BY id DESC LIMIT 1"
                ).fetchone()
                if row is not None:
                    break
                time.sleep(1)
            details = conn.execute(
                "SELECT d.status, d.return_message FROM cron.job_run_details AS d"
                " JOIN cron.job AS j USING (jobid) WHERE j.jobname = 'guard_cron_probe'"
            ).fetchall()
            assert row is not None, f"no heartbeat within 75 s; pg_cron said {details}"
            assert row == ("succeeded", "pg_cron"), row
        finally:
            conn.execute("DELETE FROM guard.jobs WHERE name = 'cron_probe'")
            conn.execute("SELECT guard.schedule_jobs()")
        assert "guard_cron_probe" not in _cron_jobs(cron_db_url)


@pytest.mark.slow
def test_pg_cron_runs_the_jobs_a_fresh_install_scheduled() -> None:
    """The install schedules the jobs in the transaction that creates the whole schema; its
    invalidation messages overflow pg_cron's queue and pg_cron keeps its old, empty job list
    (tests here otherwise schedule once more before they look). The migrator schedules again
    after the commit: with nothing else touching cron.job, pg_cron runs detect_queue within its
    first whole minute."""
    with throwaway_cluster() as cluster:
        url = migrated_cron_database(cluster)
        installed = time.monotonic()
        runs: list[tuple[object, ...]] = []
        while time.monotonic() < installed + 75 and not runs:
            time.sleep(1)
            runs = fetch_all(
                url,
                "SELECT status FROM guard.job_runs WHERE job_name = 'detect_queue'"
                " AND runner = 'pg_cron'",
            )
        details = fetch_all(url, "SELECT jobid, status FROM cron.job_run_details")
        assert runs, f"pg_cron ran no detect_queue within 75 s of the install; it ran {details}"


@pytest.mark.slow
def test_pg_cron_alerts_a_phantom_booking_no_watcher_checked(cron_db_url: str) -> None:
    """No guard watch runs: the detect_queue job pg_cron runs (every minute on pg_cron 1.4)
    checks the queued call once its grace period is over."""
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO companies (id, name) VALUES (9001, 'cron') ON CONFLICT DO NOTHING"
        )
        call = conn.execute(
            "INSERT INTO calls (company_id, retell_call_id, direction, customer_link_status,"
            " created_at, updated_at) VALUES (9001, 'cron-phantom-' || clock_timestamp(),"
            " 'inbound', 'unlinked', now() - interval '1 min', now() - interval '1 min')"
            " RETURNING id"
        ).fetchone()
        assert call is not None
        conn.execute(
            "UPDATE calls SET status = 'ended', session_outcome = 'appointment_booked',"
            " updated_at = now() - interval '1 hour' WHERE id = %s",
            call,
        )
        deadline = time.monotonic() + 90
        alert = None
        while time.monotonic() < deadline and alert is None:
            alert = conn.execute(
                "SELECT check_id FROM guard.alerts WHERE entity_type = 'call' AND entity_id = %s",
                call,
            ).fetchone()
            time.sleep(1)
        assert alert == ("booked_without_appointment",), "pg_cron's drain did not alert it in 90 s"
        left = conn.execute(
            "SELECT count(*) FROM guard.detection_queue WHERE call_id = %s", call
        ).fetchone()
        assert left == (0,)


@pytest.mark.slow
@pytest.mark.serial
def test_pg_cron_alone_checks_the_queue_every_15_seconds_and_alerts_within_a_minute(
    cron_db_url: str,
) -> None:
    """No guard watch runs. pg_cron runs detect_queue every 15 s (on pg_cron before 1.5 the
    minute's run runs it 15, 30 and 45 s into its minute, guard.cron_command), so a phantom
    booking committed now, with its real grace period, is alerted within the grace period plus
    15 s: within a minute of its commit, and the KPI counts from that commit (its last write)."""
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO companies (id, name) VALUES (9002, 'cron 15') ON CONFLICT DO NOTHING"
        )
        since = conn.execute("SELECT clock_timestamp()").fetchone()
        assert since is not None
        call = conn.execute(
            "INSERT INTO calls (company_id, retell_call_id, direction, customer_link_status,"
            " created_at, updated_at) VALUES (9002, 'cron-15-' || clock_timestamp(),"
            " 'inbound', 'unlinked', now() - interval '5 min', now() - interval '5 min')"
            " RETURNING id"
        ).fetchone()
        assert call is not None
        # the commit that makes it bad: its claim, with no appointment
        conn.execute(
            "UPDATE calls SET status = 'ended', session_outcome = 'appointment_booked',"
            " updated_at = clock_timestamp() WHERE id = %s",
            call,
        )
        deadline = time.monotonic() + 120
        alert = None
        while time.monotonic() < deadline and alert is None:
            alert = conn.execute(
                "SELECT extract(EPOCH FROM a.first_seen_at - a.written_at)::float8,"
                " a.written_at = c.updated_at FROM guard.alerts AS a"
                " JOIN calls AS c ON c.id = a.entity_id"
                " WHERE a.check_id = 'booked_without_appointment' AND a.entity_type = 'call'"
                " AND a.entity_id = %s",
                call,
            ).fetchone()
            time.sleep(1)
        runs: list[float] = []
        while time.monotonic() < deadline + 30:
            runs = [
                row[0]
                for row in conn.execute(
                    "SELECT extract(EPOCH FROM started_at)::float8 FROM guard.job_runs"
                    " WHERE job_name = 'detect_queue' AND runner = 'pg_cron' AND started_at >= %s"
                    " ORDER BY started_at",
                    since,
                ).fetchall()
            ]
            if len(runs) >= 3:
                break
            time.sleep(1)
    assert alert is not None, f"pg_cron's drain did not alert it in 120 s; its runs: {runs}"
    latency, from_last_write = alert
    assert from_last_write, "the alert keeps the call's last write"
    assert latency <= 60, f"alerted {latency:.1f} s after its commit; pg_cron ran at {runs}"
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert gaps and all(10 <= gap <= 20 for gap in gaps), f"runs {gaps} s apart"


@pytest.mark.slow
@pytest.mark.serial
def test_pg_cron_alone_drains_batch_after_batch_in_one_turn(cron_db_url: str) -> None:
    """No guard watch runs. A run of detect_queue that took a whole batch is followed at once by
    the next, each its own transaction, so a backlog of many batches is drained in one turn: with
    one batch a turn, 5 batches took 4 waits of 15 s. Each batch commits its calls' advisory
    locks: in one transaction, batch after batch ran out of shared memory."""
    batch, batches = 40, 5
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO companies (id, name) VALUES (9003, 'cron drain') ON CONFLICT DO NOTHING"
        )
        conn.execute(
            "UPDATE guard.settings SET value = to_jsonb(%s::integer)"
            " WHERE key = 'detection_queue_batch'",
            (batch,),
        )
        try:
            since = conn.execute("SELECT clock_timestamp()").fetchone()
            assert since is not None
            conn.execute(
                "WITH made AS (INSERT INTO calls (company_id, retell_call_id, direction,"
                " customer_link_status) SELECT 9003, 'cron-drain-' || g || '-'"
                " || clock_timestamp(), 'inbound', 'unlinked'"
                " FROM generate_series(1, %s) AS g RETURNING id)"
                " INSERT INTO guard.detection_queue (call_id, due_at)"
                " SELECT id, now() - interval '1 min' FROM made",
                (batch * batches,),
            )
            queued_at = time.monotonic()
            deadline = queued_at + 120
            left: tuple[int, ...] | None = None
            while time.monotonic() < deadline:
                left = conn.execute(
                    "SELECT count(*) FROM guard.detection_queue WHERE due_at <= now()"
                ).fetchone()
                if left == (0,):
                    break
                time.sleep(0.5)
            drained_s = time.monotonic() - queued_at
            runs = conn.execute(
                "SELECT count(*), extract(EPOCH FROM max(started_at) - min(started_at))::float8"
                " FROM guard.job_runs WHERE job_name = 'detect_queue' AND runner = 'pg_cron'"
                " AND status = 'succeeded' AND started_at >= %s",
                since,
            ).fetchone()
        finally:
            conn.execute(
                "UPDATE guard.settings SET value = '1000' WHERE key = 'detection_queue_batch'"
            )
    assert left == (0,), f"{left} calls still due after 120 s; runs (count, span s): {runs}"
    # the next turn comes within 15 s; one batch a turn needed 60 s more
    assert drained_s <= 40, f"drained in {drained_s:.1f} s; runs (count, span s): {runs}"
    assert runs is not None and runs[0] >= batches, runs


def test_retention_deletes_only_booking_guards_cron_run_details(cron_db_url: str) -> None:
    """pg_cron never cleans cron.job_run_details; retention does, for Booking Guard's jobs only:
    another application's jobs in the same database keep their history."""
    old = "now() - interval '400 days'"
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        conn.execute("SELECT cron.schedule('app_nightly', '0 3 * * *', 'SELECT 1')")
        try:
            for job in ("app_nightly", "guard_retention"):
                conn.execute(
                    "INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username,"
                    " command, status, return_message, start_time, end_time)"
                    f" SELECT jobid, nextval('cron.runid_seq'), 0, current_database(),"
                    f" current_user, 'SELECT 1', 'succeeded', '1 row', {old}, {old}"
                    " FROM cron.job WHERE jobname = %s",
                    (job,),
                )
            conn.execute("SELECT * FROM guard.apply_retention()")
            left: dict[str, int] = dict(
                conn.execute(
                    "SELECT j.jobname, count(d.runid) FROM cron.job AS j"
                    " LEFT JOIN cron.job_run_details AS d"
                    f" ON d.jobid = j.jobid AND d.end_time < {old} + interval '1 day'"
                    " WHERE j.jobname IN ('app_nightly', 'guard_retention') GROUP BY j.jobname"
                ).fetchall()
            )
        finally:
            conn.execute("SELECT cron.unschedule('app_nightly')")
    assert left == {"app_nightly": 1, "guard_retention": 0}


def test_retention_of_cron_run_details_at_its_cutoff(cron_db_url: str) -> None:
    """A run exactly as old as retention_job_runs_days is kept, one a microsecond older is not,
    and a run that never ended counts from its start. One transaction: one now()."""
    cutoff = "now() - make_interval(days => guard.setting('retention_job_runs_days')::integer)"
    with psycopg.connect(cron_db_url) as conn:
        for label, start, end in (
            ("at the cutoff", f"{cutoff} - interval '1 minute'", cutoff),
            (
                "just older",
                f"{cutoff} - interval '1 minute'",
                f"{cutoff} - interval '1 microsecond'",
            ),
            ("never ended", f"{cutoff} - interval '1 day'", "NULL"),
        ):
            conn.execute(
                "INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username,"
                " command, status, return_message, start_time, end_time)"
                " SELECT jobid, nextval('cron.runid_seq'), 0, current_database(), current_user,"
                f" 'SELECT 1', 'succeeded', %s, {start}, {end}"
                " FROM cron.job WHERE jobname = 'guard_retention'",
                (label,),
            )
        conn.execute("SELECT * FROM guard.apply_retention()")
        left = conn.execute(
            "SELECT d.return_message FROM cron.job_run_details AS d"
            " WHERE d.return_message IN ('at the cutoff', 'just older', 'never ended')"
        ).fetchall()
        conn.rollback()
    assert left == [("at the cutoff",)]


def test_retention_as_a_role_without_usage_on_schema_cron_skips_the_run_details(
    cron_db_url: str,
) -> None:
    """Issue 71: `guard jobs run` as a login of the owner role stopped retention with
    "permission denied for schema cron" (pg_cron grants its schema to no one). Without the
    privilege the run details are skipped, said in a notice and a row of deleted NULL, and the
    rest of retention runs; with it, the cleaning runs (under pg_cron's row security)."""
    old = "now() - interval '400 days'"
    with psycopg.connect(cron_db_url) as conn:
        [(owner,)] = conn.execute(
            "SELECT role_name FROM guard.role_names WHERE kind = 'owner'"
        ).fetchall()
        conn.execute(
            "INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username,"
            " command, status, return_message, start_time, end_time)"
            " SELECT jobid, nextval('cron.runid_seq'), 0, current_database(), %s,"
            f" 'SELECT 1', 'succeeded', 'old run of the owner', {old}, {old}"
            " FROM cron.job WHERE jobname = 'guard_retention'",
            (owner,),
        )
        assert conn.execute(
            "SELECT has_schema_privilege(%s, 'cron', 'USAGE')", (owner,)
        ).fetchone() == (False,)
        notices: list[str] = []
        conn.add_notice_handler(lambda notice: notices.append(notice.message_primary or ""))
        conn.execute(f'SET LOCAL ROLE "{owner}"')
        skipped: dict[str, int | None] = dict(
            conn.execute("SELECT target, deleted FROM guard.apply_retention()").fetchall()
        )
        conn.execute("RESET ROLE")
        assert skipped["cron.job_run_details"] is None
        assert skipped["guard.job_runs"] is not None
        assert [n for n in notices if "job_run_details not cleaned" in n], notices
        kept = (
            "SELECT count(*) FROM cron.job_run_details"
            " WHERE return_message = 'old run of the owner'"
        )
        assert conn.execute(kept).fetchone() == (1,)
        conn.execute(f'GRANT USAGE ON SCHEMA cron TO "{owner}"')
        conn.execute(f'SET LOCAL ROLE "{owner}"')
        cleaned: dict[str, int | None] = dict(
            conn.execute("SELECT target, deleted FROM guard.apply_retention()").fetchall()
        )
        conn.execute("RESET ROLE")
        # pg_cron's row security shows a role only the runs of the jobs it scheduled: the
        # owner's cleaning is allowed now, and reaches none of the migrating role's jobs
        assert cleaned["cron.job_run_details"] == 0
        conn.rollback()
