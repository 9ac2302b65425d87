"""Failover with a real streaming standby: `guard watch`, `guard jobs run` and `guard metrics`
are given a libpq multi-host URL with target_session_attrs=read-write; the primary crashes
(`pg_ctl stop -m immediate`), the standby is promoted (`pg_ctl promote`), and each of them
carries on against the new primary without a restart. Before the failover the standby serves
reads (BI) and the jobs do nothing there."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import psycopg
import pytest

from guard.db.migrate import Migrator
from tests.support.pg_node import PgNode, pg_cron_options

DATABASE = "guard_ha"


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def _insert_alert(url: str, tag: str) -> int:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id,"
            " severity, message, details) VALUES (%s, 'booked_without_appointment', 1, 'call',"
            " 1, 'high', 'failover test', '{}') RETURNING id",
            (f"ha:{tag}",),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _delivered_ids(path: Path) -> set[int]:
    return {int(json.loads(line)["alert_id"]) for line in path.read_text().splitlines() if line}


def _scrape(url: str) -> float | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
    except OSError:
        return None
    match = re.search(r"^guard_up (\S+)$", body, re.MULTILINE)
    return float(match.group(1)) if match else None


def _guard(
    url: str, *args: str, stdout: IO[bytes] | int, stderr: IO[bytes] | int
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "guard.cli", "--database-url", url, *args]
    return subprocess.Popen(argv, stdout=stdout, stderr=stderr)


@pytest.fixture
def cluster_pair() -> Iterator[tuple[PgNode, PgNode]]:
    """A migrated primary and a streaming standby of it, pg_cron preloaded on both."""
    primary = PgNode.create(*pg_cron_options(DATABASE))
    standby: PgNode | None = None
    try:
        primary.start()
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        with Migrator(primary.url(DATABASE)) as migrator:
            migrator.apply()
        standby = primary.standby("booking_guard_failover_test")
        standby.wait_for_replay_of(primary)
        yield primary, standby
    finally:
        if standby is not None:
            standby.destroy()
        primary.destroy()


@pytest.mark.slow
def test_watch_jobs_and_metrics_follow_a_promoted_standby(
    cluster_pair: tuple[PgNode, PgNode], tmp_path: Path
) -> None:
    primary, standby = cluster_pair
    both = (
        f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/{DATABASE}"
        "?target_session_attrs=read-write"
    )
    logs = {name: (tmp_path / f"{name}.out").open("w+b") for name in ("watch", "jobs")}
    errors = {name: (tmp_path / f"{name}.err").open("w+b") for name in ("watch", "jobs")}
    watch = _guard(
        both, "watch", "--channel", "stdout", "--poll-interval", "0.5",
        stdout=logs["watch"], stderr=errors["watch"],
    )  # fmt: skip
    jobs = _guard(
        both, "jobs", "run", "--job", "detect", "--max-sleep", "1",
        stdout=logs["jobs"], stderr=errors["jobs"],
    )  # fmt: skip
    metrics = _guard(
        both, "metrics", "--port", "0", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    processes = {"watch": watch, "jobs": jobs, "metrics": metrics}
    try:
        assert metrics.stderr is not None
        served = re.search(r"serving (http://\S+/metrics)", metrics.stderr.readline().decode())
        assert served, "guard metrics did not start"
        metrics_url = served.group(1)

        # Before: everything works against the primary.
        first = _insert_alert(both, "before")
        wait_for(lambda: first in _delivered_ids(tmp_path / "watch.out"), 30, "delivery before")
        wait_for(
            lambda: b"detect: succeeded" in (tmp_path / "jobs.out").read_bytes(), 30, "a job run"
        )
        assert _scrape(metrics_url) == 1.0

        # The standby serves reads, and a job run there does nothing.
        standby.wait_for_replay_of(primary)
        with psycopg.connect(standby.url(DATABASE), autocommit=True) as replica:
            assert replica.execute("SELECT count(*) FROM guard.kpis").fetchone()
            skipped = replica.execute("SELECT guard.run_job('detect')").fetchone()
        assert skipped and "skipped, this server is a replica" in skipped[0]

        # Failover: the primary crashes, the standby is promoted.
        primary.stop("immediate")
        failed_over = time.monotonic()
        standby.promote()
        assert not standby.in_recovery()
        jobs_before = (tmp_path / "jobs.out").read_bytes().count(b"detect: succeeded")
        with psycopg.connect(standby.url(DATABASE), autocommit=True) as new_primary:
            # make detect due again at once (it last ran moments ago)
            new_primary.execute("DELETE FROM guard.job_runs WHERE job_name = 'detect'")

        second = _insert_alert(both, "after")
        delivered_after = wait_for(
            lambda: second in _delivered_ids(tmp_path / "watch.out"), 90, "delivery after promotion"
        )
        wait_for(
            lambda: (tmp_path / "jobs.out").read_bytes().count(b"detect: succeeded") > jobs_before,
            90,
            "a job run after promotion",
        )
        wait_for(lambda: _scrape(metrics_url) == 1.0, 60, "guard_up 1 after promotion")
        recovered = time.monotonic() - failed_over
        for name, process in processes.items():
            assert process.poll() is None, f"guard {name} stopped"
        with psycopg.connect(standby.url(DATABASE), autocommit=True) as new_primary:
            runs = new_primary.execute(
                "SELECT count(*) FROM guard.job_runs WHERE job_name = 'detect'"
                " AND status = 'succeeded'"
            ).fetchone()
            delivered = new_primary.execute(
                "SELECT status FROM guard.alert_deliveries WHERE alert_id = %s", (second,)
            ).fetchone()
        assert runs is not None and runs[0] >= 1, "the run after promotion is on the new primary"
        assert delivered == ("delivered",)
        print(
            f"\nfailover: alert delivered {delivered_after:.1f} s after the insert on the new"
            f" primary; watch, jobs run and metrics all back within {recovered:.1f} s"
        )
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=20)
        for handle in [*logs.values(), *errors.values()]:
            handle.close()
    assert watch.returncode == 0, (tmp_path / "watch.err").read_text()
    assert "retrying in" in (tmp_path / "watch.err").read_text(), "watch never lost its connection"
    assert "reconnected" in (tmp_path / "jobs.out").read_text()
