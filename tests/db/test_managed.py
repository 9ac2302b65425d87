"""Booking Guard applied the way a managed service (RDS, Cloud SQL, Azure, Supabase) allows: by a
login that owns the database and has CREATEROLE and CREATEDB but is no superuser. Run on every
supported server version (`make test-versions`); what differs since PostgreSQL 16 is asserted per
version.

Role names are cluster-wide, and the session's cluster already has the default ones (made by a
superuser): each test names its own roles through the settings the security migration reads
(booking_guard.role_*), so it sees a cluster in the state its scenario needs."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql
from psycopg.conninfo import make_conninfo
from yoyo import read_migrations

from guard.cli import main
from guard.demo.embedded import pg_cron_available
from guard.resources import migrations_dir
from guard.schema import catalog
from tests.support.postgres import CRON_DATABASE, Cluster, throwaway_cluster
from tests.support.queries import fetch_all, fetch_one

KINDS = ("owner", "application", "reporting", "reviewer")
_names = itertools.count(1)


def _guard(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.stdout + result.stderr
    err = "".join(
        line for line in result.stderr.splitlines(keepends=True) if not line.startswith("target: ")
    )
    return result.exit_code, result.stdout, err


def _url(cluster: Cluster, user: str, dbname: str, prefix: str = "") -> str:
    """A connection as `user`; with `prefix`, Booking Guard's roles are named `<prefix>_<kind>`
    (set per session: a managed admin may not ALTER DATABASE ... SET a custom setting)."""
    options = " ".join(f"-c booking_guard.role_{kind}={prefix}_{kind}" for kind in KINDS)
    return make_conninfo(
        host=cluster.host,
        port=cluster.port,
        user=user,
        dbname=dbname,
        **({"options": options} if prefix else {}),
    )


def _server_major(cluster: Cluster) -> int:
    with cluster.admin() as conn:
        return conn.info.server_version // 10000


def _create_admin(cluster: Cluster, name: str, *, createrole: bool = True) -> None:
    options = "LOGIN NOSUPERUSER CREATEDB" + (" CREATEROLE" if createrole else "")
    with cluster.admin() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(name)))


def _create_database(cluster: Cluster, owner: str, name: str) -> str:
    """A database created by `owner` itself, as on a managed service."""
    with psycopg.connect(_url(cluster, owner, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


@pytest.fixture
def prefix() -> str:
    return f"managed{next(_names)}"


def _has_guard_schema(url: str) -> bool:
    row = fetch_one(url, "SELECT to_regnamespace('guard') IS NOT NULL")
    return bool(row and row[0])


def _snapshot(url: str) -> catalog.Snapshot:
    with psycopg.connect(url) as conn:
        return catalog.take(conn)


@pytest.mark.history
def test_a_managed_admin_applies_verifies_validates_and_rolls_back(
    pg_cluster: Cluster, prefix: str
) -> None:
    admin = f"{prefix}_admin"
    _create_admin(pg_cluster, admin)
    url = _url(pg_cluster, admin, _create_database(pg_cluster, admin, f"{prefix}_db"), prefix)

    code, out, err = _guard("--database-url", url, "db", "apply")
    assert code == 0, err
    assert re.findall(r"applied  (\S+)", out) == [
        m.id for m in read_migrations(str(migrations_dir()))
    ]
    # pg_cron is not in this database: the install says so, as migration 0009 does.
    assert "install: notice: pg_cron is not installed in this database" in err
    assert "skipping" not in err
    first = _snapshot(url)

    code, out, err = _guard("--database-url", url, "db", "verify")
    assert (code, out.splitlines()[0]) == (
        0,
        "OK: the database matches Booking Guard's canonical definitions.",
    ), out + err
    code, _, err = _guard("--database-url", url, "db", "validate")
    assert code == 0, err
    code, _, err = _guard("--database-url", url, "db", "rollback", "--all", "--yes")
    assert code == 0, err
    assert not _has_guard_schema(url)
    code, _, err = _guard("--database-url", url, "db", "apply")
    assert code == 0, err
    assert _snapshot(url) == first


def test_a_managed_admin_uses_roles_it_created_beforehand(pg_cluster: Cluster, prefix: str) -> None:
    """Since 16 the roles a CREATEROLE login creates are its to administer, not to use: apply
    gives it SET and INHERIT on the owner role itself, and says so."""
    admin = f"{prefix}_admin"
    _create_admin(pg_cluster, admin)
    url = _url(pg_cluster, admin, _create_database(pg_cluster, admin, f"{prefix}_db"), prefix)
    with psycopg.connect(url, autocommit=True) as conn:
        for kind in KINDS:
            conn.execute(
                sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(f"{prefix}_{kind}"))
            )
    code, _, err = _guard("--database-url", url, "db", "apply")
    assert code == 0, err
    granted = f"granted {admin} SET and INHERIT on {prefix}_owner"
    assert (granted in err) == (_server_major(pg_cluster) >= 16), err
    code, out, _ = _guard("--database-url", url, "db", "verify")
    assert code == 0, out


@pytest.mark.history
def test_a_second_admin_needs_the_first_admins_grant_since_16(
    pg_cluster: Cluster, prefix: str
) -> None:
    first, second = f"{prefix}_admin_a", f"{prefix}_admin_b"
    _create_admin(pg_cluster, first)
    _create_admin(pg_cluster, second)
    first_url = _url(pg_cluster, first, _create_database(pg_cluster, first, f"{prefix}_a"), prefix)
    assert _guard("--database-url", first_url, "db", "apply")[0] == 0
    # The second admin's own database, with the same Booking Guard roles (they exist now).
    second_url = _url(
        pg_cluster, second, _create_database(pg_cluster, second, f"{prefix}_b"), prefix
    )

    code, out, err = _guard("--database-url", second_url, "db", "apply")
    if _server_major(pg_cluster) < 16:  # CREATEROLE grants any role that is not a superuser
        assert code == 0, err
        return
    assert code == 1 and out == "" and err.count("\n") == 1, err
    statement = f"GRANT {prefix}_owner TO {second} WITH INHERIT TRUE, SET TRUE"
    assert err.startswith(f"guard: error: {second} may not act as Booking Guard's owner role")
    assert f"`{statement};`" in err
    assert not _has_guard_schema(second_url), "nothing may be applied before the refusal"

    with psycopg.connect(first_url, autocommit=True) as conn:
        conn.execute(statement)  # what the message says the first admin runs
    code, _, err = _guard("--database-url", second_url, "db", "apply")
    assert code == 0, err
    assert _guard("--database-url", second_url, "db", "verify")[0] == 0
    assert _guard("--database-url", second_url, "db", "rollback", "--all", "--yes")[0] == 0


def test_without_createrole_apply_names_the_privilege_and_changes_nothing(
    pg_cluster: Cluster, prefix: str
) -> None:
    admin = f"{prefix}_admin"
    _create_admin(pg_cluster, admin, createrole=False)
    url = _url(pg_cluster, admin, _create_database(pg_cluster, admin, f"{prefix}_db"), prefix)
    code, _, err = _guard("--database-url", url, "db", "apply")
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith(f"guard: error: nothing was applied: {admin} may not create roles")
    assert f"`ALTER ROLE {admin} CREATEROLE;`" in err
    assert not _has_guard_schema(url)


@pytest.fixture(scope="module")
def cron_cluster() -> Iterator[Cluster]:
    """A cluster of its own: pg_cron lives in one database per cluster (CRON_DATABASE), created
    here by the managed admin as on a managed service."""
    assert pg_cron_available(), "pg_cron is installed by make setup; this test must not skip"
    with throwaway_cluster() as cluster:
        yield cluster


@pytest.mark.pg_cron
def test_pg_cron_without_usage_on_its_schema_is_named_then_works_with_it(
    cron_cluster: Cluster,
) -> None:
    admin = "cron_admin"
    _create_admin(cron_cluster, admin)
    with psycopg.connect(_url(cron_cluster, admin, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(CRON_DATABASE)))
    with psycopg.connect(cron_cluster.url(CRON_DATABASE), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_cron")  # the provider's admin does this
    url = _url(cron_cluster, admin, CRON_DATABASE)

    code, out, err = _guard("--database-url", url, "db", "apply")
    assert (code, out) == (1, ""), err
    assert err.startswith("guard: error: nothing was applied: pg_cron is installed")
    assert f"`GRANT USAGE ON SCHEMA cron TO {admin};`" in err
    assert not _has_guard_schema(url)

    with psycopg.connect(cron_cluster.url(CRON_DATABASE), autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA cron TO {}").format(sql.Identifier(admin)))
    code, _, err = _guard("--database-url", url, "db", "apply")
    assert code == 0, err
    assert "0009_reports_jobs: notice: pg_cron: 5 job(s) scheduled, 0 unscheduled" in err
    owners = fetch_all(
        cron_cluster.url(CRON_DATABASE),
        "SELECT DISTINCT username FROM cron.job WHERE jobname LIKE 'guard\\_%%'",
    )
    assert owners == [(admin,)]
    code, out, _ = _guard("--database-url", url, "db", "verify")
    assert code == 0, out
