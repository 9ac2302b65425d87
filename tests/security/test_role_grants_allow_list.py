"""Grants as data cannot grant what Booking Guard does not own.

A login that is a member of the owner role (not a superuser) may write guard.role_grants, and
guard.apply_grants runs as the migrating user, often a superuser: a row could have that user
grant what the writer may not (reporting reading password hashes in pg_authid, the owner role
reading server files with pg_read_file). Now such a row is refused when written (the table's
trigger), skipped and reported by guard.apply_grants when it got in anyway (written before the
trigger existed, or while its writer had disabled it), and named by `guard db verify` like every
row Booking Guard does not ship.

The hostile rows are generated: every object type (and types that are not one) crossed with
objects outside Booking Guard's own (pg_catalog tables and functions, other schemas, the
application's other tables and functions, sequences, names with SQL in them, names that do not
exist), every kind of role, privileges outside the closed list, column lists, NULLs and kinds
that are not Booking Guard's.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from guard.schema.verify import verify
from tests.security.conftest import OWNER_LOGIN, REPORTING_LOGIN, connect_as
from tests.support.queries import fetch_all

KINDS = ["owner", "application", "reporting", "reviewer"]
NOT_KINDS = [None, "", "postgres", "public", "pg_read_server_files", "OWNER", "owner'; --"]

# What a row may name, per object type: (names Booking Guard owns, privileges it grants on them)
ALLOWED = {
    "SCHEMA": (["guard"], ["USAGE"]),
    "TABLE": (["guard.settings", "public.calls"], ["SELECT", "INSERT", "UPDATE", "DELETE"]),
    "FUNCTION": (["guard.setting(text)"], ["EXECUTE"]),
}
INJECTION = "; GRANT ALL ON SCHEMA public TO PUBLIC; --"
OUTSIDE = {
    "SCHEMA": [
        "pg_catalog",
        "public",
        "information_schema",
        "pg_toast",
        "other_app",
        "pg_temp",
        "GUARD",
        '"guard"',
        "guard" + INJECTION,
        "no_such_schema",
    ],
    "TABLE": [
        "pg_catalog.pg_authid",
        "pg_authid",
        "pg_catalog.pg_shadow",
        "pg_catalog.pg_statistic",
        "pg_catalog.pg_largeobject",
        "information_schema.tables",
        "public._yoyo_migration",
        "public.app_secrets",
        "other_app.secrets",
        "guard.alerts_id_seq",
        "guard.settings" + INJECTION,
        'guard."settings TO PUBLIC; --"',
        "guard.no_such_table",
        "guard." + "x" * 5000,
    ],
    "FUNCTION": [
        "pg_read_file(text)",
        "pg_catalog.pg_read_file(text, bigint, bigint)",
        "pg_catalog.pg_ls_dir(text)",
        "pg_catalog.lo_import(text)",
        "pg_catalog.pg_terminate_backend(integer)",
        "public.app_function()",
        "other_app.elevate()",
        "guard.setting(text)" + INJECTION,
        "guard.setting",
        "guard.no_such_function()",
        "guard.setting(no_such_type)",
    ],
}
NOT_PRIVILEGES = {
    "SCHEMA": [["CREATE"], ["ALL"], ["USAGE", "CREATE"], ["usage"], ["SELECT"]],
    "TABLE": [
        ["TRUNCATE"],
        ["REFERENCES"],
        ["TRIGGER"],
        ["ALL"],
        ["SELECT", "TRUNCATE"],
        ["select"],
        ["EXECUTE"],
        ["SELECT ON guard.alerts TO PUBLIC; --"],
    ],
    "FUNCTION": [["ALL"], ["SELECT"], ["USAGE"], ["EXECUTE", "SELECT"]],
}
# NULL, empty, a NULL element, two dimensions
EVERY_TYPE_BAD_PRIVILEGES: list[Any] = [None, [], [None], [["SELECT"]]]
NOT_TYPES = [None, "SEQUENCE", "DATABASE", "LANGUAGE", "ROUTINE", "table", "TABLE; --"]
# the tables that decide who may do what: a row may give SELECT on them, never a write
GOVERNANCE = ["guard.role_grants", "guard.role_names", "guard.tenant_bindings", "guard.definitions"]
BAD_COLUMNS: list[list[str | None]] = [
    ["from_number", "no_such_column"],
    ["id) ON guard.alerts TO PUBLIC; --"],
    [],
    [None],
]

OUTSIDE_OBJECTS = """
CREATE SCHEMA other_app;
CREATE TABLE other_app.secrets (id int, secret text);
CREATE FUNCTION other_app.elevate() RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE TABLE public.app_secrets (id int, secret text);
CREATE FUNCTION public.app_function() RETURNS int LANGUAGE sql AS 'SELECT 1';
"""


@dataclass
class Row:
    role_kind: str | None
    object_type: str | None
    object_name: str | None
    privileges: Any
    columns: list[str | None] | None = None

    def values(self) -> tuple[Any, ...]:
        return (self.role_kind, self.object_type, self.object_name, self.privileges, self.columns)


def hostile_rows() -> list[Row]:
    """Rows none of which Booking Guard may grant; each differs from a row it may grant."""
    rows: list[Row] = []
    for object_type, (names, privileges) in ALLOWED.items():
        # every object outside Booking Guard's, for every kind of role and every privilege
        for kind, name, privilege in itertools.product(KINDS, OUTSIDE[object_type], privileges):
            rows.append(Row(kind, object_type, name, [privilege]))
        # every privilege outside the closed list, on an object Booking Guard owns
        for kind, name, bad in itertools.product(
            KINDS, names, NOT_PRIVILEGES[object_type] + EVERY_TYPE_BAD_PRIVILEGES
        ):
            rows.append(Row(kind, object_type, name, bad))
        # kinds that are not Booking Guard's, and NULL names
        for bad_kind, name in itertools.product(NOT_KINDS, names):
            rows.append(Row(bad_kind, object_type, name, [privileges[0]]))
        rows += [Row(kind, object_type, None, [privileges[0]]) for kind in KINDS]
        # a column list where a table takes none, or columns it does not have
        if object_type != "TABLE":
            rows += [Row(kind, object_type, names[0], [privileges[0]], ["id"]) for kind in KINDS]
    for kind, columns in itertools.product(KINDS, BAD_COLUMNS):
        rows.append(Row(kind, "TABLE", "public.calls", ["SELECT"], columns))
    for kind in KINDS:
        rows.append(Row(kind, "TABLE", "public.calls", ["DELETE"], ["id"]))
    for kind, table, privilege in itertools.product(
        KINDS, GOVERNANCE, ["INSERT", "UPDATE", "DELETE"]
    ):
        rows.append(Row(kind, "TABLE", table, [privilege]))
    for kind, bad_type in itertools.product(KINDS, NOT_TYPES):
        rows.append(Row(kind, bad_type, "guard.settings", ["SELECT"]))
    unique = list({repr(row): row for row in rows}.values())
    assert len(unique) > 300, len(unique)
    assert {"SCHEMA", "TABLE", "FUNCTION", None, "SEQUENCE"} <= {r.object_type for r in unique}
    assert {"pg_catalog.pg_authid", "pg_read_file(text)", "other_app.secrets"} <= {
        r.object_name for r in unique
    }
    assert any(r.role_kind is None for r in unique) and any(r.columns for r in unique)
    return unique


HOSTILE = hostile_rows()

INSERT = (
    "INSERT INTO guard.role_grants (role_kind, object_type, object_name, privileges, columns)"
    " VALUES (%s, %s, %s, %s, %s)"
)

# Every privilege and owner in the database: what guard.apply_grants may have changed.
_PRIVILEGES = """
SELECT 'relation', c.oid::regclass::text, c.relowner::regrole::text, c.relacl::text
FROM pg_class AS c
UNION ALL
SELECT 'column', a.attrelid::regclass::text || '.' || a.attname, NULL, a.attacl::text
FROM pg_attribute AS a WHERE a.attacl IS NOT NULL
UNION ALL
SELECT 'function', p.oid::regprocedure::text, p.proowner::regrole::text, p.proacl::text
FROM pg_proc AS p
UNION ALL
SELECT 'schema', n.nspname::text, n.nspowner::regrole::text, n.nspacl::text
FROM pg_namespace AS n
UNION ALL
SELECT 'member', m.roleid::regrole::text, m.member::regrole::text, NULL FROM pg_auth_members AS m
UNION ALL
SELECT 'default', d.defaclrole::regrole::text, d.defaclobjtype::text, d.defaclacl::text
FROM pg_default_acl AS d
ORDER BY 1, 2, 3, 4
"""


def _privileges(url: str) -> list[tuple[Any, ...]]:
    return fetch_all(url, _PRIVILEGES)


@pytest.fixture
def url(db_url: str, login_roles: dict[str, str]) -> Iterator[str]:
    """A migrated database with objects that are not Booking Guard's: another schema, another
    table and function in public; grants applied once, so a second run adds nothing."""
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(OUTSIDE_OBJECTS.encode())
        admin.execute("SELECT guard.apply_grants()")
    yield db_url


def _apply_grants(url: str) -> list[str]:
    """guard.apply_grants as the migrating superuser (the documented repair); its warnings."""
    heard: list[str] = []
    with psycopg.connect(url, autocommit=True) as admin:
        admin.add_notice_handler(
            lambda d: (
                heard.append(d.message_primary or "")
                if d.severity_nonlocalized == "WARNING"
                else None
            )
        )
        admin.execute("SELECT guard.apply_grants()")
    return heard


def _write_past_the_trigger(url: str, rows: list[Row]) -> list[Row]:
    """As the owner-member login: disable the table's user triggers (it owns the table), write
    the rows the table's own constraints let in, enable them again: rows as a version without
    the trigger let them in."""
    written = []
    with connect_as(url, OWNER_LOGIN) as owner:
        owner.execute("ALTER TABLE guard.role_grants DISABLE TRIGGER USER")
        for row in rows:
            try:
                with owner.transaction():
                    owner.execute(INSERT, row.values())
                written.append(row)
            except psycopg.errors.IntegrityError:
                pass  # NOT NULL, the role kind's foreign key, the privileges' CHECK
        owner.execute("ALTER TABLE guard.role_grants ENABLE TRIGGER USER")
    return written


def test_a_hostile_row_is_refused_when_the_owner_member_writes_it(url: str) -> None:
    before = _privileges(url)
    accepted = []
    with connect_as(url, OWNER_LOGIN) as owner:
        assert owner.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (False,)
        for row in HOSTILE:
            try:
                with owner.transaction():
                    owner.execute(INSERT, row.values())
                accepted.append(row)
            except psycopg.errors.CheckViolation as error:
                assert "guard.role_grants refuses this row" in str(error), (row, str(error))
    assert accepted == [], f"{len(accepted)} of {len(HOSTILE)} accepted, e.g. {accepted[:5]}"
    assert _apply_grants(url) == []
    assert _privileges(url) == before


def test_rows_that_got_in_are_skipped_reported_and_named(url: str) -> None:
    written = _write_past_the_trigger(url, HOSTILE)
    assert len(written) > 150, len(written)
    assert Row("reporting", "TABLE", "pg_catalog.pg_authid", ["SELECT"]) in written
    before = _privileges(url)

    warnings = _apply_grants(url)

    assert _privileges(url) == before, "apply_grants granted something for a hostile row"
    skipped = [w for w in warnings if w.startswith("guard.apply_grants skipped the row")]
    assert len(skipped) == len(written), (len(skipped), len(written))
    named = [d for d in verify(url) if d.kind == "extra" and d.subject.startswith("role grant ")]
    assert len(named) == len(written)
    assert all("guard.apply_grants skips it" in d.detail for d in named), named[:3]


def test_the_reported_case_grants_nothing_outside(url: str) -> None:
    """The case reported: reporting reading pg_authid, the owner role reading server files."""
    rows = [
        Row("reporting", "TABLE", "pg_catalog.pg_authid", ["SELECT"]),
        Row("owner", "FUNCTION", "pg_catalog.pg_read_file(text)", ["EXECUTE"]),
    ]
    assert _write_past_the_trigger(url, rows) == rows

    _apply_grants(url)

    with (
        connect_as(url, REPORTING_LOGIN) as reporting,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        reporting.execute("SELECT rolname, rolpassword FROM pg_authid")
    with (
        connect_as(url, OWNER_LOGIN) as owner,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        owner.execute("SELECT pg_read_file('PG_VERSION')")
    subjects = {d.subject for d in verify(url)}
    assert "role grant reporting TABLE pg_catalog.pg_authid {SELECT}" in subjects
    assert "role grant owner FUNCTION pg_catalog.pg_read_file(text) {EXECUTE}" in subjects


def test_verify_names_a_row_not_shipped_even_when_it_may_be_granted(url: str) -> None:
    with connect_as(url, OWNER_LOGIN) as owner:
        owner.execute(INSERT, ("reporting", "TABLE", "guard.breaker_state", ["SELECT"], None))
        # the shipped row, its column list emptied: the whole table, phone numbers included
        owner.execute(
            "UPDATE guard.role_grants SET columns = NULL WHERE role_kind = 'reporting'"
            " AND object_type = 'TABLE' AND object_name = 'public.calls'"
        )
    found = {(d.kind, d.subject): d.detail for d in verify(url)}
    extra = found[("extra", "role grant reporting TABLE guard.breaker_state {SELECT}")]
    assert "does not ship" in extra and "guard.apply_grants grants it" in extra
    changed = found[("changed", "role grant reporting TABLE public.calls {SELECT}")]
    assert changed.startswith("columns (the whole table), Booking Guard ships {id,company_id,")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "role", ["postgres", "pg_read_server_files", "pg_write_server_files", "public", "nobody"]
)
def test_a_kind_mapped_to_another_role_gets_nothing(url: str, kind: str, role: str) -> None:
    """guard.role_names redirected by the owner-member: a superuser, a predefined role, PUBLIC,
    a role that does not exist. The owner role is refused outright (its objects and SECURITY
    DEFINER functions would run as that role); any other kind's rows are skipped."""
    before = _privileges(url)
    with connect_as(url, OWNER_LOGIN) as owner:
        owner.execute("UPDATE guard.role_names SET role_name = %s WHERE kind = %s", (role, kind))
    if kind == "owner":
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="owner role may not be"):
            _apply_grants(url)
    else:
        warnings = _apply_grants(url)
        assert warnings and all(role in w for w in warnings), warnings[:3]
    assert _privileges(url) == before


def test_applying_grants_again_locks_nothing_it_leaves_as_it_is(url: str) -> None:
    """Every migration ends with guard.apply_grants: on a live database it must not queue behind
    (and so block) the application's readers by taking a table lock on objects that already
    belong to the owner role. An object that does not is handed over, a composite type too."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("CREATE TYPE guard.edge_pair AS (a integer, b integer)")
    with psycopg.connect(url) as reader, psycopg.connect(url) as migrator:
        reader.execute("SELECT count(*) FROM guard.alerts")  # holds its ACCESS SHARE lock
        migrator.execute("SET LOCAL lock_timeout = '1s'")
        migrator.execute("SELECT guard.apply_grants()")
        owner = migrator.execute(
            "SELECT typowner::regrole::text = quote_ident(guard.role('owner'))"
            " FROM pg_type WHERE oid = 'guard.edge_pair'::regtype"
        ).fetchone()
        migrator.commit()
        reader.rollback()
    assert owner == (True,)
