"""The cluster's one pg_cron database (pg_cron schedules in one database per cluster)."""

from __future__ import annotations

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
