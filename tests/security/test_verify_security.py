"""`guard db verify` checks roles, owners, grants and policies; role names are compared as their
kinds, so a database migrated with custom role names has no drift."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from guard.schema.drift import Difference
from guard.schema.migrate import Migrator
from guard.schema.verify import verify
from tests.security.conftest import COMPANY_A, connect_as, create_login
from tests.support.postgres import Cluster
from tests.support.queries import fetch_one

CUSTOM_NAMES = {
    "owner": "acme guard owner",
    "application": "AcmeApp",
    "reporting": "Acme BI Readers",
    "reviewer": "acme-reviewers",
}


def _kinds(differences: list[Difference]) -> set[tuple[str, str]]:
    return {(d.kind, d.subject) for d in differences}


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        pytest.param(
            "GRANT UPDATE ON guard.correction_audit TO guard_app",
            ("extra", "grant UPDATE on guard.correction_audit to application"),
            id="extra-grant",
        ),
        pytest.param(
            "REVOKE SELECT ON guard.kpis FROM guard_reporting",
            ("missing", "grant SELECT on guard.kpis to reporting"),
            id="missing-grant",
        ),
        pytest.param(
            "GRANT SELECT (from_number) ON public.calls TO guard_reporting",
            ("extra", "grant SELECT (from_number) on public.calls to reporting"),
            id="extra-column-grant",
        ),
        pytest.param(
            "GRANT EXECUTE ON FUNCTION guard.apply_grants() TO PUBLIC",
            ("extra", "grant EXECUTE on guard.apply_grants() to PUBLIC"),
            id="public-execute",
        ),
        pytest.param(
            "REVOKE EXECUTE ON FUNCTION guard.review_claim(text, integer) FROM guard_reviewer",
            (
                "missing",
                "grant EXECUTE on guard.review_claim(actor text, max_items integer) to reviewer",
            ),
            id="missing-execute",
        ),
        pytest.param(
            "GRANT CREATE ON SCHEMA guard TO guard_app",
            ("extra", "grant CREATE on schema guard to application"),
            id="schema-create",
        ),
        pytest.param(
            "ALTER VIEW guard.kpis OWNER TO postgres",
            ("changed", "view guard.kpis"),
            id="changed-owner",
        ),
        pytest.param(
            "ALTER POLICY tenant_isolation ON guard.alerts USING (true)",
            ("changed", "policy tenant_isolation on guard.alerts"),
            id="changed-policy",
        ),
        pytest.param(
            "ALTER POLICY guard_tenant_only ON public.calls TO guard_reporting",
            ("changed", "policy guard_tenant_only on public.calls"),
            id="changed-policy-roles",
        ),
        pytest.param(
            "DROP POLICY owner_maintenance ON guard.review_items",
            ("missing", "policy owner_maintenance on guard.review_items"),
            id="missing-policy",
        ),
        pytest.param(
            "ALTER TABLE guard.alerts NO FORCE ROW LEVEL SECURITY",
            ("changed", "table guard.alerts"),
            id="rls-not-forced",
        ),
        pytest.param(
            "UPDATE guard.role_names SET role_name = 'no such role' WHERE kind = 'reviewer'",
            ("missing", "role reviewer"),
            id="missing-role",
        ),
    ],
)
def test_security_drift_is_named(db_url: str, statement: str, expected: tuple[str, str]) -> None:
    assert verify(db_url) == []
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(statement)
    assert expected in _kinds(verify(db_url))


def test_changed_owner_says_who(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE guard.alerts OWNER TO postgres")
    details = [d.detail for d in verify(db_url) if d.subject == "table guard.alerts"]
    assert "owner is 'postgres', expected 'owner'" in details


@pytest.fixture
def custom_names_url(pg_cluster: Cluster) -> Iterator[str]:
    """A database migrated with the DBA's own role names, set with ALTER DATABASE ... SET."""
    with pg_cluster.database() as url:
        dbname = url.rsplit("/", 1)[1]
        with psycopg.connect(url, autocommit=True) as admin:
            for kind, name in CUSTOM_NAMES.items():
                admin.execute(
                    sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                        sql.Identifier(dbname),
                        sql.Identifier(f"booking_guard.role_{kind}"),
                        sql.Literal(name),
                    )
                )
        with Migrator(url) as migrator:
            migrator.apply()
        yield url


def test_custom_role_names_are_used_and_verify_clean(
    custom_names_url: str, login_roles: dict[str, str]
) -> None:
    url = custom_names_url
    with psycopg.connect(url, autocommit=True) as admin:
        names: dict[str, str] = dict(
            admin.execute("SELECT kind, role_name FROM guard.role_names").fetchall()
        )
        assert names == CUSTOM_NAMES
        created = admin.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND NOT rolcanlogin",
            (list(CUSTOM_NAMES.values()),),
        ).fetchall()
        assert len(created) == 4
        owner = admin.execute(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'guard.alerts'::regclass"
        ).fetchone()
        assert owner == (CUSTOM_NAMES["owner"],)
        admin.execute("INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B')")
        admin.execute(
            "INSERT INTO calls (id, company_id, from_number) VALUES"
            " (1, 1, '+49 30 1234567'), (2, 2, '+49 30 7654321')"
        )
        create_login(admin, "Acme BI Bot", CUSTOM_NAMES["reporting"])
        # the default-named roles of the template database have nothing here
        rows = admin.execute(
            "SELECT has_table_privilege('guard_reporting', 'guard.kpis', 'SELECT'),"
            " has_table_privilege(%s, 'guard.kpis', 'SELECT')",
            (CUSTOM_NAMES["reporting"],),
        ).fetchone()
        assert rows == (False, True)
    assert verify(url) == []
    with connect_as(url, "Acme BI Bot", tenant=COMPANY_A) as bi:
        assert bi.execute("SELECT id, from_number_masked FROM guard.calls_report").fetchall() == [
            (1, "+49 30 ****567")
        ]
        assert bi.execute("SELECT count(*) FROM calls").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            bi.execute("SELECT from_number FROM calls")


def test_role_names_from_pgoptions(pg_cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """PGOPTIONS (-c booking_guard.role_reporting=...) names a role just as well."""
    with pg_cluster.database() as url:
        monkeypatch.setenv("PGOPTIONS", "-c booking_guard.role_reporting=Reporting\\ Via\\ Env")
        with Migrator(url) as migrator:
            migrator.apply()
        monkeypatch.delenv("PGOPTIONS")
        assert fetch_one(url, "SELECT guard.role('reporting')") == ("Reporting Via Env",)
        assert fetch_one(url, "SELECT guard.role('application')") == ("guard_app",)
        assert verify(url) == []
