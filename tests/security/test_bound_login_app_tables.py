"""An application login that serves some companies only (a member of the bound application role,
bound with `guard tenant grant`) reads and writes only their rows of the application's tables
(calls, appointments, customers, services) through plain SQL, with or without a pinned company,
and none while bound to none; the application login (a member of the application role alone)
sees and writes every company's rows as before, bound or not. A call or an appointment linked to
another company's customer is refused on write, and one an adopted database already had is found
by check cross_tenant_link.
Issue 72, row 4: a bound login read, updated and inserted another company's calls and customers
through Eloquent; only Booking Guard's own functions refused."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.security.conftest import bind, create_login
from tests.support.queries import fetch_one

TABLES = ("calls", "appointments", "customers", "services")
SEED = """
INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
INSERT INTO customers (id, company_id, name) VALUES (1, 1, 'Ann'), (2, 2, 'Bea');
INSERT INTO services (id, company_id, name) VALUES (1, 1, 'Cut'), (2, 2, 'Dye');
INSERT INTO calls (id, company_id, retell_call_id, customer_id)
VALUES (1, 1, 'a1', 1), (2, 2, 'b1', 2);
INSERT INTO appointments (id, company_id, call_id, customer_id, service_id, calcom_v2_booking_id)
VALUES (1, 1, 1, 1, 1, 'u1'), (2, 2, 2, 2, 2, 'u2');
SELECT setval(pg_get_serial_sequence(t, 'id'), 100)
FROM unnest(ARRAY['calls', 'appointments', 'customers', 'services']) AS t;
"""


BOUND_LOGIN = "guard_test_bound_app"


@pytest.fixture
def two_companies(db_url: str, login_roles: dict[str, str]) -> str:
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(SEED.encode())
        bound_role = admin.execute("SELECT guard.bound_application_role()").fetchone()
        assert bound_role is not None
        create_login(admin, BOUND_LOGIN, bound_role[0])
    return db_url


def _companies_seen(conn: psycopg.Connection[Any]) -> dict[str, list[int]]:
    return {
        table: [
            company
            for (company,) in conn.execute(
                f"SELECT DISTINCT company_id FROM {table} ORDER BY 1"
            ).fetchall()
        ]
        for table in TABLES
    }


@pytest.mark.parametrize("pinned", [False, True])
def test_a_bound_login_reads_and_changes_only_its_companies_rows(
    two_companies: str, pinned: bool
) -> None:
    login = BOUND_LOGIN
    bind(two_companies, login, 1)
    with psycopg.connect(two_companies, user=login, autocommit=True) as app:
        if pinned:
            app.execute("SELECT guard.pin_company(1)")  # lasts for that statement's transaction
        assert _companies_seen(app) == {table: [1] for table in TABLES}
        for table in TABLES:
            updated = app.execute(
                f"UPDATE {table} SET updated_at = now() WHERE company_id = 2"
            ).rowcount
            assert updated == 0, table
            assert app.execute(f"DELETE FROM {table} WHERE company_id = 2").rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            app.execute("INSERT INTO customers (company_id, name) VALUES (2, 'Eve')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            app.execute("INSERT INTO calls (company_id, retell_call_id) VALUES (2, 'b9')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            app.execute("UPDATE calls SET company_id = 2 WHERE id = 1")  # moving a row out
        app.execute("INSERT INTO calls (company_id, retell_call_id) VALUES (1, 'a9')")
    assert fetch_one(two_companies, "SELECT count(*) FROM calls") == (3,)
    assert fetch_one(two_companies, "SELECT count(*) FROM customers") == (2,)


@pytest.mark.parametrize("bound_to", [(), (1,)])
def test_the_application_login_is_unchanged(
    two_companies: str, login_roles: dict[str, str], bound_to: tuple[int, ...]
) -> None:
    """A member of the application role alone is the multi-tenant application: its statements on
    the application's tables are not narrowed (its binding narrows Booking Guard's functions)."""
    login = login_roles["application"]
    bind(two_companies, login, *bound_to)
    with psycopg.connect(two_companies, user=login, autocommit=True) as app:
        assert _companies_seen(app) == {table: [1, 2] for table in TABLES}
        assert app.execute("UPDATE calls SET updated_at = now()").rowcount == 2
        app.execute("INSERT INTO customers (company_id, name) VALUES (2, 'Eve')")
    bind(two_companies, login)


def test_a_bound_application_login_bound_to_nothing_sees_nothing(two_companies: str) -> None:
    bind(two_companies, BOUND_LOGIN)
    with psycopg.connect(two_companies, user=BOUND_LOGIN, autocommit=True) as app:
        assert _companies_seen(app) == {table: [] for table in TABLES}
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            app.execute("INSERT INTO customers (company_id, name) VALUES (1, 'Eve')")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE calls SET customer_id = 2 WHERE id = 1",
        "INSERT INTO calls (company_id, retell_call_id, customer_id) VALUES (1, 'x', 2)",
        "UPDATE appointments SET customer_id = 2 WHERE id = 1",
        "INSERT INTO appointments (company_id, call_id, customer_id) VALUES (1, 1, 2)",
    ],
)
def test_a_link_to_another_companys_customer_is_refused(
    two_companies: str, login_roles: dict[str, str], statement: str
) -> None:
    bind(two_companies, login_roles["application"])
    login = login_roles["application"]
    with (
        psycopg.connect(two_companies, user=login, autocommit=True) as app,
        pytest.raises(psycopg.errors.ForeignKeyViolation, match="customer_company_fkey"),
    ):
        app.execute(statement)


def test_an_adopted_link_to_another_companys_customer_is_detected(two_companies: str) -> None:
    with psycopg.connect(two_companies, autocommit=True) as admin:
        admin.execute("ALTER TABLE calls DROP CONSTRAINT guard_calls_customer_company_fkey")
        admin.execute(
            "ALTER TABLE appointments DROP CONSTRAINT guard_appointments_customer_company_fkey"
        )
        admin.execute("UPDATE calls SET customer_id = 2 WHERE id = 1")
        admin.execute("UPDATE appointments SET customer_id = 1 WHERE id = 2")
        found = admin.execute(
            "SELECT entity_type, entity_id, company_id, detail FROM guard.check_cross_tenant_link"
            " ORDER BY entity_type, entity_id"
        ).fetchall()
        assert found == [
            ("appointment", 2, 2, {"customer_company_id": 1}),
            ("call", 1, 1, {"customer_company_id": 2}),
        ]
        admin.execute("SELECT count(*) FROM guard.run_detection('-infinity', NULL)")
        alerts = admin.execute(
            "SELECT entity_type, entity_id FROM guard.alerts WHERE check_id = 'cross_tenant_link'"
            " AND resolved_at IS NULL ORDER BY 1, 2"
        ).fetchall()
        assert alerts == [("appointment", 2), ("call", 1)]
