"""Session-wide PostgreSQL: one throwaway cluster, template databases built from the migrations
and cloned for every test that needs a database.

Under pytest-xdist (`make test`) every worker is a session of its own: its own cluster on a free
port in its own temporary directory, its own templates. Nothing here is shared between workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devtools.legacy_schema import LEGACY_SCHEMA
from guard.schema.migrate import Migrator
from tests.support.postgres import (
    LEGACY_TEMPLATE_DATABASE,
    TEMPLATE_DATABASE,
    Cluster,
    throwaway_cluster,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def template_database(pg_cluster: Cluster) -> str:
    """A database with every migration applied, plus pgTAP; tests get clones of it."""
    pg_cluster.create_database(name=TEMPLATE_DATABASE)
    with Migrator(pg_cluster.url(TEMPLATE_DATABASE)) as migrator:
        migrator.apply()
    with psycopg.connect(pg_cluster.url(TEMPLATE_DATABASE), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgtap")
    return TEMPLATE_DATABASE


@pytest.fixture
def db_url(pg_cluster: Cluster, template_database: str) -> Iterator[str]:
    """A fresh database with all migrations applied (about 0.1 s: a template clone)."""
    with pg_cluster.database(template=template_database) as url:
        yield url


@pytest.fixture(scope="session")
def legacy_template_database(pg_cluster: Cluster) -> str:
    """A legacy database (the application's tables and 20 000 calls from before Booking Guard)
    after `guard db apply`: its CHECKs NOT VALID, its legacy-row triggers in place, nothing
    validated yet. Built once; tests that start from there get clones. Its statistics are
    gathered, as autovacuum has long done on a database in use: planned for empty tables,
    `guard db validate` took two to three times as long."""
    pg_cluster.create_database(name=LEGACY_TEMPLATE_DATABASE)
    url = pg_cluster.url(LEGACY_TEMPLATE_DATABASE)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LEGACY_SCHEMA.encode())
        conn.execute("ANALYZE")
    with Migrator(url) as migrator:
        migrator.apply()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return LEGACY_TEMPLATE_DATABASE


@pytest.fixture
def legacy_db_url(pg_cluster: Cluster, legacy_template_database: str) -> Iterator[str]:
    """A fresh clone of the legacy database after `guard db apply` (before `guard db validate`)."""
    with pg_cluster.database(template=legacy_template_database) as url:
        yield url


@pytest.fixture
def empty_db_url(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh, empty database."""
    with pg_cluster.database() as url:
        yield url


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection
