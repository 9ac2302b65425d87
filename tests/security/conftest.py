"""Login roles for each kind of Booking Guard role, and a database with two tenants' data.

Roles belong to the cluster: the login roles are created once per session, as members of the
group roles the migrations created (guard.role_names of the template database). The reporting
login has a mixed-case name with a space, to catch a missing quote anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import Transaction, sql
from psycopg.pq import TransactionStatus

from tests.support.postgres import Cluster

APP_LOGIN = "guard_test_app"
REPORTING_LOGIN = "Reporting Bot"
REVIEWER_LOGIN = "guard_test_reviewer"
OWNER_LOGIN = "guard_test_jobs"
LOGINS = {
    "application": APP_LOGIN,
    "reporting": REPORTING_LOGIN,
    "reviewer": REVIEWER_LOGIN,
    "owner": OWNER_LOGIN,
}

COMPANY_A = 1
COMPANY_B = 2


def create_login(admin: psycopg.Connection[Any], login: str, group: str) -> None:
    exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone()
    if not exists:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(login)))
    admin.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(login)))


def create_logins(admin: psycopg.Connection[Any], kinds: dict[str, str]) -> None:
    """Each login of `kinds` (login -> kind) made a member of that kind's group role."""
    groups = dict(admin.execute("SELECT kind, role_name FROM guard.role_names").fetchall())
    for login, kind in kinds.items():
        create_login(admin, login, groups[kind])


@pytest.fixture(scope="session")
def login_roles(pg_cluster: Cluster, template_database: str) -> dict[str, str]:
    """kind -> login role name, each a member of that kind's group role."""
    with psycopg.connect(pg_cluster.url(template_database), autocommit=True) as admin:
        create_logins(admin, {login: kind for kind, login in LOGINS.items()})
    return dict(LOGINS)


def bind(url: str, login: str, *companies: int) -> None:
    """Make `companies` exactly the companies bound to `login` in the database at `url` (as the
    superuser, through the owner's functions)."""
    with psycopg.connect(url, autocommit=True) as admin:
        bound = admin.execute(
            "SELECT company_id FROM guard.tenant_list() WHERE role_name = %s", (login,)
        ).fetchall()
        for (company,) in bound:
            admin.execute("SELECT guard.tenant_revoke(%s, %s)", (login, company))
        for company in companies:
            admin.execute("SELECT guard.tenant_grant(%s, %s)", (login, company))


class PinnedConnection(psycopg.Connection[tuple[Any, ...]]):
    """A connection narrowed to one company the way docs/security.md tells a single-company
    application to: every transaction starts with SELECT guard.pin_company(N). A statement run
    outside a transaction (autocommit) gets a transaction of its own, pinned."""

    company: int | None = None

    @contextmanager
    def transaction(
        self, savepoint_name: str | None = None, force_rollback: bool = False
    ) -> Iterator[Transaction]:
        outermost = self.info.transaction_status == TransactionStatus.IDLE
        with super().transaction(savepoint_name, force_rollback) as tx:
            if outermost and self.company is not None:
                super().execute("SELECT guard.pin_company(%s)", (self.company,))
            yield tx

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool = False
    ) -> psycopg.Cursor[tuple[Any, ...]]:
        if self.company is None or self.info.transaction_status != TransactionStatus.IDLE:
            return super().execute(query, params, prepare=prepare, binary=binary)
        if self.autocommit:
            with self.transaction():
                return super().execute(query, params, prepare=prepare, binary=binary)
        super().execute("SELECT guard.pin_company(%s)", (self.company,))
        return super().execute(query, params, prepare=prepare, binary=binary)


def assert_refused(conn: psycopg.Connection[Any], *statements: str) -> None:
    """Each statement fails on `conn` for want of a privilege (42501)."""
    for statement in statements:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def connect_as(
    url: str,
    login: str,
    tenant: int | None = None,
    select: int | None = None,
    **options: Any,
) -> PinnedConnection:
    """A connection logged in as `login` (the test cluster trusts local logins). `tenant` binds
    the login to exactly that company first (None: leaves the bindings as they are); `select`
    pins every transaction to that company (guard.pin_company), as a single-company application
    or dashboard does."""
    if tenant is not None:
        bind(url, login, tenant)
    conn = PinnedConnection.connect(url, user=login, autocommit=True, **options)
    conn.company = select
    return conn


SEED = """
INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
INSERT INTO calls (id, company_id, retell_call_id, from_number, to_number, session_outcome,
                   booking_failed, created_at)
VALUES
    (1, 1, 'a1', '+49 30 1234567', '+49 40 7654321', NULL, FALSE, now()),
    (2, 1, 'a2', '+49 30 2222222', '+49 40 7654321', 'creation_failed', TRUE, now()),
    (3, 2, 'b1', '+33 1 98765432', '+33 1 11111111', NULL, FALSE, now()),
    (4, 2, 'b2', '+33 1 55555555', '+33 1 11111111', 'creation_failed', TRUE, now());
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, source, created_at)
VALUES (1, 1, 1, 'uid-a1', 'retell_webhook', now()), (2, 2, 3, 'uid-b1', 'retell_webhook', now());
SELECT guard.enqueue_review(1, 2, NULL, 'calendar_booking_failure');
SELECT guard.enqueue_review(2, 4, NULL, 'calendar_booking_failure');
SELECT guard.record_validation(1, 1, 1, TRUE, NULL, 3.0);
SELECT guard.record_validation(2, 3, 2, FALSE, 'booking_uid_mismatch', 5.0);
INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, reason)
VALUES ('I3_appointment_flags', 1, 'call', 1, 'seed'),
       ('I3_appointment_flags', 2, 'call', 3, 'seed');
INSERT INTO guard.daily_reports (report_date, company_id, total_calls, inconsistent_calls,
                                 inconsistency_rate_pct, auto_corrected, manual_reviews,
                                 open_review_items)
VALUES (current_date, 1, 2, 0, 0, 0, 0, 1), (current_date, 2, 2, 1, 50, 0, 0, 1);
SELECT count(*) FROM guard.run_detection('-infinity', NULL);
"""


@pytest.fixture
def seeded_url(db_url: str, login_roles: dict[str, str]) -> Iterator[str]:
    """Two tenants (companies 1 and 2) with calls, appointments, alerts, review items,
    validation metrics, corrections and daily reports, seeded by the superuser."""
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(SEED.encode())
        alerts = admin.execute("SELECT DISTINCT company_id FROM guard.alerts").fetchall()
        assert {COMPANY_A, COMPANY_B} <= {c for (c,) in alerts}, "seed must alert both tenants"
    yield db_url
