"""Tenant isolation against arbitrary SQL, for every table and view the reporting and reviewer
roles can read, found from the catalog (a new view is covered without touching this file).

A login is bound to companies by the owner (guard.tenant_bindings). As a bound login, an unbound
login, and a bound login that tries every way a session has to change its settings (SET,
set_config, ALTER ROLE ... SET on itself, connection options as PGOPTIONS sends them) or to
become a role it is not a member of (SET ROLE): it never reads a row of another company, and
every write is refused or touches none of another company's rows. A company set for the session
is ignored with a WARNING (behind a pooler it would be another client's), never applied, never
an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from tests.security.conftest import COMPANY_A, COMPANY_B, bind, connect_as, create_login

Connection = psycopg.Connection[tuple[Any, ...]]

TENANT_TABLES = (
    "guard.alerts",
    "guard.review_items",
    "guard.daily_reports",
    "guard.correction_audit",
    "guard.validation_metrics",
)

# Relations the seed gives both companies rows in: a bound login must see some of its own, so an
# isolation that hides everything from everybody fails too.
SEEDED = {
    *TENANT_TABLES,
    "guard.calls_report",
    "guard.alerts_report",
    "guard.review_items_report",
    "guard.correction_audit_report",
    "guard.daily_report_view",
    "guard.check_recent_booking_failure",
    "public.calls",
    "public.appointments",
    "public.companies",
    "guard.tenant_bindings",
}

# Readable relations without a company: configuration and the breaker's log, no tenant's rows.
# A new readable relation without a company column fails the test until it is judged here.
WITHOUT_COMPANY = {
    "guard.settings",
    # the rule and check registries: ids, severities, descriptions (an alert's check leads there)
    "guard.rules",
    "guard.checks",
    "guard.jobs",
    "guard.job_runs",
    "guard.job_status",
    # detection's own history: totals per check over every company, no company's rows
    "guard.detection_runs",
    "guard.detection_passes",
    "guard.breaker_events",
    "guard.kpis",
}

# Errors that mean "refused": no privilege, a row-level security check, or a view that takes no
# writes at all.
REFUSED = (
    errors.InsufficientPrivilege,
    errors.ObjectNotInPrerequisiteState,
    errors.FeatureNotSupported,
    errors.WrongObjectType,
)


def _relation_name(name: str) -> str:
    return name if "." in name else f"public.{name}"


def _readable(admin: Connection, group_role: str) -> dict[str, str | None]:
    """Every relation in schema guard and every booking table that `group_role` may read (any
    column), with the column that names its company (None: it has none)."""
    rows = admin.execute(
        "SELECT c.oid::regclass::text,"
        "  CASE WHEN c.oid = 'public.companies'::regclass THEN 'id'"
        "       WHEN EXISTS (SELECT FROM pg_attribute AS a WHERE a.attrelid = c.oid"
        "                    AND a.attname = 'company_id' AND NOT a.attisdropped)"
        "       THEN 'company_id' END"
        " FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')"
        "   AND (n.nspname = 'guard' OR (n.nspname = 'public' AND c.relname IN"
        "        ('calls', 'appointments', 'customers', 'services', 'companies')))"
        "   AND (has_table_privilege(%s, c.oid, 'SELECT')"
        "        OR has_any_column_privilege(%s, c.oid, 'SELECT'))"
        " ORDER BY 1",
        (group_role, group_role),
    ).fetchall()
    return {_relation_name(name): column for name, column in rows}


def _identifier(relation: str) -> sql.Identifier:
    return sql.Identifier(*relation.split("."))


def _companies(conn: Connection, relation: str, column: str) -> set[int]:
    query = sql.SQL("SELECT DISTINCT {} FROM {}").format(
        sql.Identifier(column), _identifier(relation)
    )
    return {company for (company,) in conn.execute(query).fetchall()}


def _group_and_relations(url: str, kind: str) -> tuple[str, dict[str, str | None]]:
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute("SELECT guard.role(%s)", (kind,)).fetchone()
        assert row is not None
        return row[0], _readable(admin, row[0])


def _assert_sees_only(
    conn: Connection,
    relations: dict[str, str | None],
    allowed: set[int],
    who: str,
    exact: bool = True,
) -> None:
    for relation, column in relations.items():
        if column is None:
            continue
        seen = _companies(conn, relation, column)
        assert seen <= allowed, f"{who} reads {relation} of companies {sorted(seen - allowed)}"
        if exact and allowed and relation in SEEDED:
            assert seen == allowed, f"{who}: {relation} hides the login's own rows"


def _assert_writes_refused(
    admin: Connection, conn: Connection, relations: dict[str, str | None], group: str, who: str
) -> None:
    """INSERT, DELETE and TRUNCATE are refused everywhere; an UPDATE of a column the role may
    write touches no row of another company (row-level security hides them)."""
    for relation, column in relations.items():
        name = _identifier(relation)
        for statement in (
            sql.SQL("INSERT INTO {} DEFAULT VALUES").format(name),
            sql.SQL("DELETE FROM {}").format(name),
            sql.SQL("TRUNCATE {}").format(name),
        ):
            with pytest.raises(REFUSED):
                conn.execute(statement)
        writable = admin.execute(
            "SELECT a.attname FROM pg_attribute AS a WHERE a.attrelid = %s::regclass"
            " AND a.attnum > 0 AND NOT a.attisdropped"
            " AND has_column_privilege(%s, a.attrelid, a.attnum, 'UPDATE') ORDER BY 1",
            (relation, group),
        ).fetchall()
        if not writable:
            first = admin.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
                " AND NOT attisdropped AND attidentity = '' AND attgenerated = ''"
                # a view's column mapped to an identity column refuses any UPDATE as
                # GeneratedAlways before privileges are checked: company_id never is one
                " ORDER BY attname <> 'company_id', attnum LIMIT 1",
                (relation,),
            ).fetchone()
            assert first is not None
            any_column = sql.Identifier(first[0])
            with pytest.raises(REFUSED):
                conn.execute(sql.SQL("UPDATE {} SET {} = {}").format(name, any_column, any_column))
            continue
        assert column is not None, f"{relation} is writable and has no company"
        for (attname,) in writable:
            touched = conn.execute(
                sql.SQL("UPDATE {} SET {} = {} WHERE {} <> %s").format(
                    name, sql.Identifier(attname), sql.Identifier(attname), sql.Identifier(column)
                ),
                (COMPANY_A,),
            ).rowcount
            assert touched == 0, f"{who} updated {touched} row(s) of another company in {relation}"


@contextmanager
def _alter_role_setting(url: str, login: str, company: int) -> Iterator[None]:
    """ALTER ROLE ... SET booking_guard.company_id on the login itself. PostgreSQL 15 refuses it
    to the login (a custom setting needs a superuser or GRANT SET ON PARAMETER), so a superuser
    sets it, as the old documentation told DBAs to; taken back afterwards, as roles belong to the
    whole cluster."""
    statement = sql.SQL("ALTER ROLE {} SET booking_guard.company_id = {}").format(
        sql.Identifier(login), sql.Literal(str(company))
    )
    with connect_as(url, login) as own, pytest.raises(errors.InsufficientPrivilege):
        own.execute(statement)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(statement)
    try:
        yield
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("ALTER ROLE {} RESET booking_guard.company_id").format(
                    sql.Identifier(login)
                )
            )


# Attempts that set booking_guard.company_id for the whole session: ignored by every read.
SESSION_SETTINGS = {"SET", "PGOPTIONS"}


def warnings_of(conn: Connection) -> list[tuple[str | None, str | None, str | None]]:
    """The WARNINGs the server sends `conn` from now on, as (SQLSTATE, message, hint): a list
    that grows. (Read inside the handler: psycopg frees a notice's fields after it returns.)"""
    heard: list[tuple[str | None, str | None, str | None]] = []

    def hear(diagnostic: psycopg.errors.Diagnostic) -> None:
        if diagnostic.severity_nonlocalized == "WARNING":
            heard.append((diagnostic.sqlstate, diagnostic.message_primary, diagnostic.message_hint))

    conn.add_notice_handler(hear)
    return heard


def assert_ignored_with_a_warning(conn: Connection, company: int) -> None:
    """guard.current_company() ignores the session's value `company`: NULL, no error, and one
    WARNING that names the value and guard.pin_company."""
    heard = warnings_of(conn)
    assert conn.execute("SELECT guard.current_company()").fetchone() == (None,)
    assert len(heard) == 1, heard
    sqlstate, message, hint = heard[0]
    assert sqlstate == "01000"
    assert message == (
        f"booking_guard.company_id = '{company}' is ignored: it was set for the session,"
        " not pinned in this transaction"
    )
    assert "guard.pin_company" in (hint or "")


def _attempts(url: str, login: str, foreign_roles: list[str]) -> dict[str, Callable[[], Any]]:
    """Ways a session bound to company A tries to reach company B, each a context manager that
    yields the connection."""

    @contextmanager
    def plain_set() -> Iterator[Connection]:
        with connect_as(url, login) as conn:
            conn.execute(f"SET booking_guard.company_id = '{COMPANY_B}'")
            assert_ignored_with_a_warning(conn, COMPANY_B)
            yield conn

    @contextmanager
    def pin_unbound() -> Iterator[Connection]:
        with connect_as(url, login) as conn:
            # a pin of a company not bound to the login is refused, not a quiet narrowing
            with pytest.raises(errors.NoDataFound, match="not bound to role"):
                conn.execute("SELECT guard.pin_company(%s)", (COMPANY_B,))
            yield conn

    @contextmanager
    def alter_role_set() -> Iterator[Connection]:
        with _alter_role_setting(url, login, COMPANY_B), connect_as(url, login) as conn:
            assert conn.execute("SELECT guard.current_company()").fetchone() == (COMPANY_B,)
            yield conn

    @contextmanager
    def connection_options() -> Iterator[Connection]:
        # what PGOPTIONS='-c booking_guard.company_id=2' sends: the startup packet's options
        with connect_as(url, login, options=f"-c booking_guard.company_id={COMPANY_B}") as conn:
            assert_ignored_with_a_warning(conn, COMPANY_B)
            yield conn

    @contextmanager
    def set_role_elsewhere() -> Iterator[Connection]:
        with connect_as(url, login) as conn:
            for role in foreign_roles:
                with pytest.raises(errors.InsufficientPrivilege):
                    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            yield conn

    return {
        "SET": plain_set,
        "pin_company": pin_unbound,
        "ALTER ROLE ... SET": alter_role_set,
        "PGOPTIONS": connection_options,
        "SET ROLE": set_role_elsewhere,
    }


@pytest.mark.parametrize("kind", ["reporting", "reviewer"])
def test_no_session_reads_or_writes_another_companys_rows(
    seeded_url: str, login_roles: dict[str, str], kind: str
) -> None:
    group, relations = _group_and_relations(seeded_url, kind)
    assert set(relations) >= SEEDED, "a tenant relation is not readable: the test would skip it"
    # of the customer list, only a customer's id and company (check cross_tenant_link compares
    # them), never a name or a phone number; the loops below judge its rows like any other's
    with psycopg.connect(seeded_url) as admin:
        readable = {
            name
            for (name,) in admin.execute(
                "SELECT attname::text FROM pg_attribute"
                " WHERE attrelid = 'public.customers'::regclass AND attnum > 0 AND NOT attisdropped"
                " AND has_column_privilege(%s, attrelid, attnum, 'SELECT')",
                (group,),
            ).fetchall()
        }
    assert readable == {"id", "company_id"}
    without_company = {r for r, column in relations.items() if column is None}
    assert without_company == WITHOUT_COMPANY, "judge the new company-less relation here"
    login = login_roles[kind]
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        # a login bound to company B, for SET ROLE to try
        create_login(admin, "guard_test_other_tenant", group)
        bind(seeded_url, "guard_test_other_tenant", COMPANY_B)

        bind(seeded_url, login)
        with connect_as(seeded_url, login) as unbound:
            _assert_sees_only(unbound, relations, set(), f"unbound {login}")
            _assert_writes_refused(admin, unbound, relations, group, f"unbound {login}")

        for company in (COMPANY_A, COMPANY_B):
            with connect_as(seeded_url, login, tenant=company) as bound:
                _assert_sees_only(bound, relations, {company}, f"{login} bound to {company}")

        bind(seeded_url, login, COMPANY_A)
        with connect_as(seeded_url, login) as bound:
            _assert_writes_refused(admin, bound, relations, group, f"{login} bound to A")
        foreign = [
            "guard_test_other_tenant",
            *(
                name
                for (name,) in admin.execute(
                    "SELECT role_name FROM guard.role_names WHERE kind IN ('owner', 'application')"
                ).fetchall()
            ),
        ]
        for how, attempt in _attempts(seeded_url, login, foreign).items():
            with attempt() as conn:
                if how in SESSION_SETTINGS:
                    # a company set for the session is ignored, never applied nor refused:
                    # behind a pooler it would belong to another client (docs/security.md). The
                    # login reads its own company, by its binding, and B stays out of reach.
                    heard = warnings_of(conn)
                    for relation in SEEDED - {"guard.tenant_bindings"}:
                        by = relations[relation] or "company_id"
                        assert _companies(conn, relation, by) == {COMPANY_A}, relation
                    assert heard, "an ignored value warns whoever is on the connection"
                # B was asked for and is not bound: never a row of B; the setting narrows the
                # tenant data to nothing (the login still reads its own binding to A)
                _assert_sees_only(
                    conn, relations, {COMPANY_A}, f"{login} bound to A after {how}", exact=False
                )
                asked_for_b = how not in {"SET ROLE", "pin_company", *SESSION_SETTINGS}
                for relation in SEEDED - {"guard.tenant_bindings"} if asked_for_b else ():
                    column = relations[relation]
                    assert column is not None
                    assert _companies(conn, relation, column) == set(), f"{relation} after {how}"
                _assert_writes_refused(admin, conn, relations, group, f"{login} after {how}")
                conn.company = None  # no selection (the pin ends with each transaction)
                conn.execute("SET booking_guard.company_id = ''")
                if how == "ALTER ROLE ... SET":
                    # the login's own default outlasts a value emptied for the session: still B
                    for relation in SEEDED - {"guard.tenant_bindings"}:
                        by = relations[relation] or "company_id"
                        assert _companies(conn, relation, by) == set(), relation
                    continue
                _assert_sees_only(conn, relations, {COMPANY_A}, f"{login} after {how}, reset")


def test_the_pin_narrows_a_login_bound_to_two_companies_to_one(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    login = login_roles["reporting"]
    bind(seeded_url, login, COMPANY_A, COMPANY_B)
    with connect_as(seeded_url, login) as both:
        assert _companies(both, "guard.calls_report", "company_id") == {COMPANY_A, COMPANY_B}
        with both.transaction():
            both.execute("SELECT guard.pin_company(%s)", (COMPANY_B,))
            assert _companies(both, "guard.calls_report", "company_id") == {COMPANY_B}
            assert _companies(both, "guard.alerts", "company_id") == {COMPANY_B}
        # the pin ended with its transaction
        assert _companies(both, "guard.calls_report", "company_id") == {COMPANY_A, COMPANY_B}


def test_a_binding_of_a_group_role_covers_its_members_and_set_role_narrows(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    """Granting a tenant to a group role covers its members; SET ROLE to that group (PostgreSQL's
    own authorisation) sees the group's companies, never more than the login's."""
    login = login_roles["reporting"]
    bind(seeded_url, login, COMPANY_A)
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'bi_company_b'").fetchone()
        if not exists:
            admin.execute("CREATE ROLE bi_company_b NOLOGIN")
        admin.execute("GRANT guard_reporting TO bi_company_b")
        admin.execute(sql.SQL("GRANT bi_company_b TO {}").format(sql.Identifier(login)))
    bind(seeded_url, "bi_company_b", COMPANY_B)
    try:
        with connect_as(seeded_url, login) as conn:
            assert _companies(conn, "public.calls", "company_id") == {COMPANY_A, COMPANY_B}
            conn.execute("SET ROLE bi_company_b")
            assert _companies(conn, "public.calls", "company_id") == {COMPANY_B}
    finally:
        with psycopg.connect(seeded_url, autocommit=True) as admin:
            admin.execute(sql.SQL("REVOKE bi_company_b FROM {}").format(sql.Identifier(login)))


def test_aggregating_views_count_only_the_bound_companys_rows(
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
        assert reviews == (1,)  # one open item per company in the seed: only its own counts


def test_a_write_into_another_tenant_fails(seeded_url: str, login_roles: dict[str, str]) -> None:
    """A role that is granted writes on the tenant tables (here a test-only role) still cannot
    move a row to, or write a row of, another company: the policies' WITH CHECK refuses it."""
    writer = "guard_test_writer"
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        create_login(admin, writer, "pg_read_all_settings")
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA guard TO {}").format(sql.Identifier(writer)))
        admin.execute(
            sql.SQL(
                "GRANT EXECUTE ON FUNCTION guard.visible_companies(), guard.current_company() TO {}"
            ).format(sql.Identifier(writer))
        )
        admin.execute(
            sql.SQL("GRANT SELECT ON guard.tenant_bindings TO {}").format(sql.Identifier(writer))
        )
        for table in TENANT_TABLES:
            admin.execute(
                sql.SQL("GRANT SELECT, INSERT, UPDATE ON {} TO {}").format(
                    _identifier(table), sql.Identifier(writer)
                )
            )
    with connect_as(seeded_url, writer, tenant=COMPANY_A) as conn:
        for table in TENANT_TABLES:
            name = _identifier(table)
            moved = sql.SQL("UPDATE {} SET company_id = %s WHERE company_id = %s").format(name)
            with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
                conn.execute(moved, (COMPANY_B, COMPANY_A))
            other = sql.SQL("UPDATE {} SET company_id = company_id WHERE company_id = %s")
            assert conn.execute(other.format(name), (COMPANY_B,)).rowcount == 0
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(
                "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type,"
                " severity, message) VALUES ('forged', 'x', %s, 'company', 'low', 'forged')",
                (COMPANY_B,),
            )


def test_a_noinherit_member_gets_its_groups_companies_only_through_set_role(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    """A login that does not inherit its group's privileges (NOINHERIT) does not inherit the
    group's companies either: it sees them after SET ROLE to the group, as PostgreSQL's own
    privileges behave."""
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        for role, attributes in (
            ("bi_noinherit_group", "NOLOGIN"),
            ("bi_noinherit", "LOGIN NOINHERIT"),
        ):
            exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if not exists:
                admin.execute(sql.SQL("CREATE ROLE {} " + attributes).format(sql.Identifier(role)))
        admin.execute("GRANT bi_noinherit_group TO bi_noinherit")
        # Its own right to ask, so that only the group's companies are in question.
        admin.execute("GRANT USAGE ON SCHEMA guard TO bi_noinherit, bi_noinherit_group")
        admin.execute(
            "GRANT EXECUTE ON FUNCTION guard.visible_companies(), guard.current_company()"
            " TO bi_noinherit, bi_noinherit_group"
        )
        admin.execute("GRANT SELECT ON guard.tenant_bindings TO bi_noinherit, bi_noinherit_group")
    bind(seeded_url, "bi_noinherit_group", COMPANY_B)
    with connect_as(seeded_url, "bi_noinherit") as conn:
        assert conn.execute("SELECT guard.visible_companies()").fetchone() == ([],)
        conn.execute("SET ROLE bi_noinherit_group")
        assert conn.execute("SELECT guard.visible_companies()").fetchone() == ([COMPANY_B],)
