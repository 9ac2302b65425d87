"""The cluster's one pg_cron database (pg_cron schedules in one database per cluster)."""

from __future__ import annotations

import time

import psycopg

from guard.demo.embedded import pg_cron_available
from guard.schema.migrate import Migrator
from tests.support.postgres import CRON_DATABASE, Cluster


def migrated_cron_database(cluster: Cluster) -> str:
    """Its URL: created unless there, with pg_cron and every migration applied."""
    assert pg_cron_available(), "pg_cron is installed by make setup; this test must not skip"
    with cluster.admin() as admin:
        exists = admin.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (CRON_DATABASE,)
        ).fetchone()
    if not exists or not exists[0]:
        cluster.create_database(name=CRON_DATABASE)
    url = cluster.url(CRON_DATABASE)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
    with Migrator(url) as migrator:
        migrator.apply()
    return url


def quiet_cron(url: str) -> None:
    """Unschedule every pg_cron job of the cron database at `url` and end the runs in progress.

    From PostgreSQL 15 on, DROP DATABASE waits until every process has taken in its signal
    barrier, and pg_cron's launcher takes it in only between its jobs' runs. Before pg_cron 1.5
    the detect_queue job runs for most of every minute (it checks the queue every 15 s), so
    while it is scheduled almost every DROP DATABASE in the cluster waits up to 45 s: a test
    cluster that clones and drops a database per test keeps no job scheduled once the tests
    that need pg_cron are done."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT cron.unschedule(jobid) FROM cron.job")
        deadline = time.monotonic() + 10
        while conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'pg_cron' AND backend_type = 'client backend'"
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "pg_cron's runs did not end"
            time.sleep(0.05)
