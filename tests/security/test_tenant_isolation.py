"""Tenant isolation for every table and view the reporting and reviewer roles can read, found
from the catalog: a tenant sees only its own rows, another tenant's rows never, an unset tenant
nothing; a write into another tenant fails."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from tests.security.conftest import COMPANY_A, COMPANY_B, connect_as, create_login

TENANT_TABLES = (
    "guard.alerts",
    "guard.review_items",
    "guard.daily_reports",
    "guard.correction_audit",
    "guard.validation_metrics",
)

# Relations the seed gives both tenants rows in: each tenant must see some of its own.
SEEDED = {
    *TENANT_TABLES,
    "guard.calls_report",
    "guard.daily_report_view",
    "guard.check_recent_booking_failure",
    "public.calls",
    "public.appointments",
}


def _readable_with_company(admin: psycopg.Connection[Any], group_role: str) -> list[str]:
    """Every relation in schema guard, and booking table, that `group_role` may read and that has
    a company_id column."""
    rows = admin.execute(
        "SELECT c.oid::regclass::text FROM pg_class AS c"
        " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        " JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attname = 'company_id'"
        " WHERE c.relkind IN ('r', 'v', 'm')"
        "   AND (n.nspname = 'guard' OR (n.nspname = 'public' AND c.relname IN"
        "        ('calls', 'appointments', 'customers', 'services')))"
        "   AND NOT a.attisdropped"
        "   AND has_column_privilege(%s, c.oid, a.attnum, 'SELECT')"
        " ORDER BY 1",
        (group_role,),
    ).fetchall()
    return [name if "." in name else f"public.{name}" for (name,) in rows]


def _companies(conn: psycopg.Connection[Any], relation: str) -> list[int]:
    query = sql.SQL("SELECT DISTINCT company_id FROM {} ORDER BY 1").format(
        sql.Identifier(*relation.split("."))
    )
    return [company for (company,) in conn.execute(query).fetchall()]


@pytest.mark.parametrize("kind", ["reporting", "reviewer"])
def test_each_tenant_sees_only_its_rows_in_every_exposed_relation(
    seeded_url: str, login_roles: dict[str, str], kind: str
) -> None:
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        group = admin.execute("SELECT guard.role(%s)", (kind,)).fetchone()
        assert group is not None
        relations = _readable_with_company(admin, group[0])
    assert set(relations) >= SEEDED, "a tenant relation is not readable: the test would skip it"
    assert "public.customers" not in relations  # reporting reads calls, not the customer list
    login = login_roles[kind]
    for tenant, other in ((COMPANY_A, COMPANY_B), (COMPANY_B, COMPANY_A)):
        with connect_as(seeded_url, login, tenant=tenant) as conn:
            for relation in relations:
                seen = _companies(conn, relation)
                assert other not in seen, f"{login} as tenant {tenant} reads {relation} of {other}"
                assert set(seen) <= {tenant}, f"{relation}: {seen}"
                if relation in SEEDED:
                    assert seen == [tenant], f"{relation}: tenant {tenant} sees none of its rows"
    with connect_as(seeded_url, login) as unset:
        for relation in relations:
            assert _companies(unset, relation) == [], f"{relation}: an unset tenant sees rows"


def test_aggregating_views_count_only_the_tenants_rows(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    with connect_as(seeded_url, login_roles["reporting"], tenant=COMPANY_A) as bi:
        samples = bi.execute(
            "SELECT sum(validations) FROM guard.validation_latency_daily"
        ).fetchone()
        assert samples == (1,)
        reviews = bi.execute(
            "SELECT current_value FROM guard.kpis WHERE kpi = 'review_queue_size'"
        ).fetchone()
        assert reviews == (1,)  # one open item per tenant in the seed: only its own counts


def test_a_write_into_another_tenant_fails(seeded_url: str, login_roles: dict[str, str]) -> None:
    """A role that is granted writes on the tenant tables (here a test-only role) still cannot
    move a row to, or write a row of, another tenant: the policies' WITH CHECK refuses it."""
    writer = "guard_test_writer"
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        create_login(admin, writer, "pg_read_all_settings")
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA guard TO {}").format(sql.Identifier(writer)))
        admin.execute(
            sql.SQL("GRANT EXECUTE ON FUNCTION guard.current_company() TO {}").format(
                sql.Identifier(writer)
            )
        )
        for table in TENANT_TABLES:
            admin.execute(
                sql.SQL("GRANT SELECT, INSERT, UPDATE ON {} TO {}").format(
                    sql.Identifier(*table.split(".")), sql.Identifier(writer)
                )
            )
    with connect_as(seeded_url, writer, tenant=COMPANY_A) as conn:
        for table in TENANT_TABLES:
            name = sql.Identifier(*table.split("."))
            moved = sql.SQL("UPDATE {} SET company_id = %s WHERE company_id = %s").format(name)
            with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
                conn.execute(moved, (COMPANY_B, COMPANY_A))
            other = sql.SQL("UPDATE {} SET company_id = company_id WHERE company_id = %s")
            assert conn.execute(other.format(name), (COMPANY_B,)).rowcount == 0
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(
                "INSERT INTO guard.alerts (fingerprint, rule_id, company_id, entity_type,"
                " severity, message) VALUES ('forged', 'x', %s, 'company', 'low', 'forged')",
                (COMPANY_B,),
            )
