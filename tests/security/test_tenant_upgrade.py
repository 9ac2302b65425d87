"""Upgrade from tenants selected by a setting to tenants bound to roles: a database whose BI login
was pinned with ALTER ROLE ... SET booking_guard.company_id keeps working after `guard db apply`
once the login is bound, `guard db verify` names it until then, and the old pin no longer
lets the login reach another company."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from guard.cli import main
from guard.schema.migrate import Migrator
from tests.security.conftest import create_login
from tests.security.test_tenant_isolation import warnings_of
from tests.support.postgres import Cluster

BEFORE_BINDINGS = "0014_flag_sync_plans"
LOGIN = "Legacy BI"


def _companies(url: str) -> list[int]:
    with psycopg.connect(url, user=LOGIN, autocommit=True) as bi:
        return [c for (c,) in bi.execute("SELECT DISTINCT company_id FROM calls ORDER BY 1")]


@pytest.fixture
def pinned_url(pg_cluster: Cluster) -> Iterator[str]:
    """Migrated up to the migration before tenant bindings, with a BI login pinned to company 1
    the way the old documentation said."""
    with pg_cluster.database() as url:
        with Migrator(url) as migrator:
            migrator.apply(to=BEFORE_BINDINGS)
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B')")
            admin.execute(
                "INSERT INTO calls (id, company_id, retell_call_id) VALUES (1, 1, 'a'), (2, 2, 'b')"
            )
            create_login(admin, LOGIN, "guard_reporting")
            dbname = url.rsplit("/", 1)[1]
            admin.execute(
                sql.SQL("ALTER ROLE {} IN DATABASE {} SET booking_guard.company_id = '1'").format(
                    sql.Identifier(LOGIN), sql.Identifier(dbname)
                )
            )
        yield url


def test_a_pinned_login_keeps_working_once_bound(pinned_url: str) -> None:
    url = pinned_url
    assert _companies(url) == [1]  # the old way works before the upgrade
    with psycopg.connect(url, user=LOGIN, autocommit=True) as bi:
        bi.execute("SET booking_guard.company_id = '2'")
        # ... and was never isolation: the login just picks another company
        assert [c for (c,) in bi.execute("SELECT DISTINCT company_id FROM calls")] == [2]

    runner = CliRunner()
    result = runner.invoke(main, ["--database-url", url, "db", "apply"])
    assert result.exit_code == 0, result.output
    assert _companies(url) == []  # unbound: nothing, until a DBA binds it

    result = runner.invoke(main, ["--database-url", url, "db", "verify"])
    assert result.exit_code == 0, result.output  # not drift
    assert f"unbound   {LOGIN} (reporting)" in result.output

    result = runner.invoke(main, ["--database-url", url, "tenant", "grant", LOGIN, "1"])
    assert result.exit_code == 0, result.output
    assert _companies(url) == [1]  # the old pin still applies, now only narrowing
    with psycopg.connect(url, user=LOGIN, autocommit=True) as bi:
        # another company set for the session is ignored, with a warning (a pooler would hand
        # it on): the login's own default still decides
        bi.execute("SET booking_guard.company_id = '2'")
        heard = warnings_of(bi)
        assert [c for (c,) in bi.execute("SELECT DISTINCT company_id FROM calls")] == [1]
        assert heard and heard[0][1] is not None and "is ignored" in heard[0][1], heard
    # a company not bound to the login cannot be pinned (it would show nothing)
    with (
        psycopg.connect(url, user=LOGIN, autocommit=True) as bi,
        pytest.raises(psycopg.errors.NoDataFound, match="not bound to role"),
    ):
        bi.execute("SELECT guard.pin_company(2)")

    result = runner.invoke(main, ["--database-url", url, "db", "verify"])
    # (logins other tests of this cluster created may still be listed: roles are cluster-wide)
    assert result.exit_code == 0 and f"unbound   {LOGIN} " not in result.output, result.output
