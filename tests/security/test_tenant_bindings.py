"""Tenant bindings are the owner's: a reporting or reviewer login cannot bind itself, directly or
through any function it may execute; a reviewer works only its companies' review items, and the
login that claimed or closed an item is recorded whatever the statement says; a bound
application login stays within its companies in the SECURITY DEFINER functions; `guard db verify`
names logins that are bound to nothing."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from guard.schema.verify import unbound_logins, verify
from tests.security.conftest import (
    COMPANY_A,
    COMPANY_B,
    assert_refused,
    bind,
    connect_as,
    create_login,
)
from tests.support.queries import execute, fetch_one

Connection = psycopg.Connection[tuple[Any, ...]]


def _one(conn: Connection, query: str, *params: object) -> Any:
    row = conn.execute(query, params or None).fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize("kind", ["reporting", "reviewer"])
def test_a_login_cannot_bind_itself_directly(
    seeded_url: str, login_roles: dict[str, str], kind: str
) -> None:
    login = login_roles[kind]
    with connect_as(seeded_url, login, tenant=COMPANY_A) as conn:
        for statement, params in (
            ("SELECT guard.tenant_grant(%s, %s)", (login, COMPANY_B)),
            ("SELECT guard.tenant_revoke(%s, %s)", (login, COMPANY_A)),
            ("SELECT * FROM guard.tenant_list()", ()),
            (
                "INSERT INTO guard.tenant_bindings (role_id, company_id)"
                " VALUES (%s::text::regrole, %s)",
                (sql.Identifier(login).as_string(conn), COMPANY_B),
            ),
            ("UPDATE guard.tenant_bindings SET company_id = %s", (COMPANY_B,)),
            ("DELETE FROM guard.tenant_bindings", ()),
            ("TRUNCATE guard.tenant_bindings", ()),
            ("ALTER TABLE guard.tenant_bindings DISABLE ROW LEVEL SECURITY", ()),
            ("SET ROLE guard_owner", ()),
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement, params or None)
        assert conn.execute("SELECT guard.visible_companies()").fetchone() == ([COMPANY_A],)


@pytest.mark.parametrize("kind", ["reporting", "reviewer"])
def test_no_function_a_login_may_execute_can_bind_it(
    seeded_url: str, login_roles: dict[str, str], kind: str
) -> None:
    """A function writes with its caller's rights (SECURITY INVOKER), and the login may not write
    the bindings; or with its owner's (SECURITY DEFINER): then it must not be one the login may
    execute and that touches the bindings. Checked over every function of the database."""
    login = login_roles[kind]
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        writes = _one(
            admin,
            "SELECT bool_or(has_table_privilege(%s, 'guard.tenant_bindings', p))"
            " FROM unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p",
            login,
        )
        assert writes is False
        assert _one(admin, "SELECT pg_has_role(%s, guard.role('owner'), 'MEMBER')", login) is False
        definers = admin.execute(
            "SELECT p.oid::regprocedure::text, p.prosrc FROM pg_proc AS p"
            " WHERE p.prosecdef AND has_function_privilege(%s, p.oid, 'EXECUTE')"
            "   AND p.pronamespace <> 'pg_catalog'::regnamespace",
            (login,),
        ).fetchall()
        touching = [name for name, source in definers if "tenant_" in source]
        assert touching == [], f"{login} may execute SECURITY DEFINER functions {touching}"
        owner_only = admin.execute(
            "SELECT p.proname::text FROM pg_proc AS p"
            " WHERE p.pronamespace = 'guard'::regnamespace AND p.proname LIKE 'tenant\\_%%'"
            "   AND has_function_privilege(%s, p.oid, 'EXECUTE')",
            (login,),
        ).fetchall()
        assert owner_only == []


def test_only_the_owner_binds_and_mistakes_are_refused(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    reviewer = login_roles["reviewer"]
    with connect_as(seeded_url, login_roles["owner"]) as owner:
        assert _one(owner, "SELECT guard.tenant_grant(%s, %s)", reviewer, COMPANY_B) is True
        assert _one(owner, "SELECT guard.tenant_grant(%s, %s)", reviewer, COMPANY_B) is False
        listed = owner.execute(
            "SELECT role_name, company_id, company_name, logins, granted_by"
            " FROM guard.tenant_list()"
        ).fetchall()
        assert listed == [(reviewer, COMPANY_B, "B", [reviewer], login_roles["owner"])]
        with pytest.raises(errors.UndefinedObject, match="does not exist"):
            owner.execute("SELECT guard.tenant_grant('no such role', 1)")
        with pytest.raises(errors.ForeignKeyViolation, match="company 99 does not exist"):
            owner.execute("SELECT guard.tenant_grant(%s, 99)", (reviewer,))
        assert _one(owner, "SELECT guard.tenant_revoke(%s, %s)", reviewer, COMPANY_B) is True
        assert _one(owner, "SELECT guard.tenant_revoke(%s, %s)", reviewer, COMPANY_B) is False
        assert owner.execute("SELECT * FROM guard.tenant_list()").fetchall() == []


def test_reviewer_of_company_a_cannot_claim_resolve_or_dismiss_company_bs_item(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        item_b = _one(admin, "SELECT id FROM guard.review_items WHERE company_id = %s", COMPANY_B)
    login = login_roles["reviewer"]
    with connect_as(seeded_url, login, tenant=COMPANY_A) as reviewer:
        # company B cannot even be pinned
        with pytest.raises(errors.NoDataFound, match="not bound to role"):
            reviewer.execute("SELECT guard.pin_company(%s)", (COMPANY_B,))
        claimed = reviewer.execute(
            "SELECT company_id FROM guard.review_claim('ann', 10)"
        ).fetchall()
        assert claimed == [(COMPANY_A,)]
        for outcome in ("resolved", "dismissed"):
            with pytest.raises(errors.NoDataFound):
                reviewer.execute(
                    "SELECT guard.review_close(%s, 'ann', %s, 'not mine')", (item_b, outcome)
                )
        touched = reviewer.execute(
            "UPDATE guard.review_items SET status = 'claimed', claimed_by = 'ann',"
            " claimed_at = now() WHERE id = %s",
            (item_b,),
        ).rowcount
        assert touched == 0
    state = fetch_one(
        seeded_url,
        "SELECT status, claimed_by, claimed_by_role FROM guard.review_items WHERE id = %s",
        (item_b,),
    )
    assert state == ("open", None, None)


def test_the_login_behind_a_claim_and_a_close_is_recorded_not_the_label(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    login = login_roles["reviewer"]
    with connect_as(seeded_url, login, tenant=COMPANY_A) as reviewer:
        item, label, who = reviewer.execute(
            "SELECT id, claimed_by, claimed_by_role FROM guard.review_claim('somebody else', 1)"
        ).fetchone() or (None, None, None)
        assert (label, who) == ("somebody else", login)
        # SET ROLE to the group does not hide the person: the login is recorded
        reviewer.execute("SET ROLE guard_reviewer")
        bind(seeded_url, "guard_reviewer", COMPANY_A)
        assert_refused(
            reviewer,
            "UPDATE guard.review_items SET claimed_by_role = 'somebody else'",
            "UPDATE guard.review_items SET closed_by_role = 'somebody else'",
        )
        # a direct write of the label leaves the recorded login alone
        reviewer.execute(
            "UPDATE guard.review_items SET claimed_by = 'mallory' WHERE id = %s", (item,)
        )
        closed = reviewer.execute(
            "SELECT closed_by, closed_by_role, claimed_by_role"
            " FROM guard.review_close(%s, 'someone', 'dismissed', 'duplicate', TRUE)",
            (item,),
        ).fetchone()
    assert closed == ("someone", login, login)


def test_a_bound_application_login_stays_within_its_companies(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    """The application is the trusted multi-tenant writer; a DBA may still bind one of its logins
    (one company's booking service), and the SECURITY DEFINER functions then refuse other
    companies' calls without any setting."""
    app = login_roles["application"]
    with connect_as(seeded_url, app, tenant=COMPANY_A) as conn:
        conn.execute("SELECT guard.rollback_booking(2, 'other', '{}')")
        with pytest.raises(errors.InsufficientPrivilege, match="not bound"):
            conn.execute("SELECT guard.rollback_booking(4, 'other', '{}')")
    bind(seeded_url, app)
    with connect_as(seeded_url, app) as conn:  # unbound again: every company, as before
        conn.execute("SELECT guard.rollback_booking(4, 'other', '{}')")


def test_verify_names_logins_bound_to_nothing_without_calling_it_drift(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        create_login(admin, "guard_test_unbound_bi", "guard_reporting")
    bind(seeded_url, login_roles["reporting"], COMPANY_A)
    bind(seeded_url, login_roles["reviewer"], COMPANY_B)
    with psycopg.connect(seeded_url) as conn:
        unbound = dict(unbound_logins(conn))
    assert unbound["guard_test_unbound_bi"] == ["reporting"]
    assert login_roles["reporting"] not in unbound and login_roles["reviewer"] not in unbound
    assert login_roles["owner"] not in unbound and login_roles["application"] not in unbound
    assert verify(seeded_url) == []
    execute(
        seeded_url,
        "CREATE ROLE guard_test_bi_group NOLOGIN",
        "GRANT guard_test_bi_group TO guard_test_unbound_bi",
    )
    bind(seeded_url, "guard_test_bi_group", COMPANY_A)  # a group's binding covers its members
    try:
        with psycopg.connect(seeded_url) as conn:
            assert "guard_test_unbound_bi" not in dict(unbound_logins(conn))
    finally:
        execute(seeded_url, "DELETE FROM guard.tenant_bindings", "DROP ROLE guard_test_bi_group")


def test_assert_tenant_refuses_a_row_without_a_company(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    """A row whose company is NULL (review items may have none) belongs to no tenant: a session
    pinned to a company, and a login bound to companies, are both refused it."""
    app = login_roles["application"]
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        # The SECURITY DEFINER functions call it; here the login calls it directly.
        admin.execute(
            sql.SQL(
                "GRANT EXECUTE ON FUNCTION guard.assert_tenant(bigint), guard.login_companies(),"
                " guard.current_company() TO {}"
            ).format(sql.Identifier(app))
        )
        admin.execute(
            sql.SQL("GRANT SELECT ON guard.tenant_bindings TO {}").format(sql.Identifier(app))
        )
    bind(seeded_url, app)
    with connect_as(seeded_url, app, select=COMPANY_A) as conn:
        conn.execute("SELECT guard.assert_tenant(%s)", (COMPANY_A,))
        with pytest.raises(errors.InsufficientPrivilege, match="session's tenant"):
            conn.execute("SELECT guard.assert_tenant(NULL)")
    with connect_as(seeded_url, app, tenant=COMPANY_A) as conn:
        conn.execute("SELECT guard.assert_tenant(%s)", (COMPANY_A,))
        with pytest.raises(errors.InsufficientPrivilege, match="not bound"):
            conn.execute("SELECT guard.assert_tenant(NULL)")
    bind(seeded_url, app)
