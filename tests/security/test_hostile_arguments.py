"""Every function the application role may EXECUTE, called by an application login with hostile
arguments: NULL in each argument, values of the wrong type, huge and negative numbers, another
tenant's ids, injection strings and odd Unicode. Each call must end in one clear SQL error, or
succeed without writing a row (a read, or a documented no-op).

The functions are read from the catalog (has_function_privilege), so a function granted to the
application role later is covered without touching this test. Arguments are varied one at a
time around a valid call (by argument name where it names a booking object, else by type), so
each variant reaches the check of the argument it varies.

Writes are counted in the caller's own transaction (pg_stat_xact_all_tables counts the rows
every statement of this backend inserted, updated or deleted, SECURITY DEFINER functions
included; the difference before and after the call) and then rolled back, so every variant
starts from the same data. A checksum of every table before and after all calls shows that
nothing was committed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.security.conftest import COMPANY_A, connect_as
from tests.support.queries import fetch_all

# A valid value for an argument, by name, in tenant A; and the same kind of id of tenant B.
VALID_BY_NAME: dict[str, str] = {
    "call_id": "1",
    "appointment_id": "1",
    "company_id": "1",
    "service_id": "1",
    "call_ids": "{1}",
    "booking_uid": "uid-a1",
    "reason": "other",
    "failure_reason": "booking_uid_mismatch",
    "ok": "false",
    "latency_ms": "1.5",
    "setting_key": "grace_period_seconds",
}
OTHER_TENANT_BY_NAME: dict[str, str] = {
    "call_id": "3",
    "appointment_id": "2",
    "company_id": "2",
    "service_id": "2",
    "call_ids": "{3}",
}
VALID_BY_TYPE: dict[str, str] = {
    "bigint": "1",
    "integer": "1",
    "smallint": "1",
    "numeric": "1",
    "double precision": "1",
    "real": "1",
    "boolean": "false",
    "text": "x",
    "jsonb": "{}",
    "json": "{}",
    "uuid": "00000000-0000-0000-0000-000000000001",
    "timestamp with time zone": "2026-01-01 00:00:00+00",
    "interval": "1 minute",
    "bigint[]": "{1}",
    "integer[]": "{1}",
    "text[]": "{x}",
}

INJECTION = [
    "x'); DROP TABLE public.calls; --",
    "1; DELETE FROM guard.alerts",
    "%s %n %x $1 \\",
    '"; SELECT pg_sleep(10); --',
    "x" * 100_000,
    "",
]
ODD_UNICODE = [
    "\u202e\ufeffcall\u200b\ufffd",  # right-to-left override, BOM, zero width space, U+FFFD
    "\U0001f4de +49 30 1234567 \u00fc",
    "\\xff\\xfe\\x00",  # what invalid UTF-8 looks like once a client escaped it
]
WRONG_TYPE = ["not a value", "1.5e", "{", "true false"]
HUGE_NUMBERS = ["9223372036854775807", "-9223372036854775808", "-1", "1e308", "NaN", "-Infinity"]
HUGE_ARRAYS = ["{9223372036854775807}", "{-1,0}", "{NULL}", "{}"]

# (function, argument) whose values the function stores as data by contract, so a call with a
# valid rest writes rows whatever the value is. Each with why; NULL: also accepted (a default).
ACCEPTED_AS_DATA: dict[tuple[str, str], tuple[str, bool]] = {
    ("guard.rollback_booking", "context"): (
        "what a reviewer needs; a non-object is wrapped as {'context': ...}; NULL means {}",
        True,
    ),
    ("guard.validate_booking", "appointment_id"): (
        "an unknown appointment is the failure appointment_not_found, recorded against the call",
        False,
    ),
    ("guard.validate_booking", "booking_uid"): (
        "a uid that differs from the appointment's is the failure validate_booking records",
        False,
    ),
    ("guard.audit_calendar_restorations", "replayed_until"): (
        "when the promoted server had replayed up to, after a failover; NULL: not after one",
        True,
    ),
    ("guard.record_validation", "appointment_id"): (
        "the booking path records after its rollback removed the appointment: the id is a record",
        False,
    ),
}

# Errors that would mean the argument escaped into SQL text, or the server broke.
FORBIDDEN_SQLSTATES = {"42601": "syntax error: an argument became SQL text"}


@dataclass(frozen=True)
class Function:
    signature: str
    name: str  # schema-qualified
    kind: str  # 'f' function, 'p' procedure
    returns_trigger: bool
    arg_names: tuple[str, ...]
    arg_types: tuple[str, ...]

    def valid(self, index: int) -> str:
        name, type_name = self.arg_names[index], self.arg_types[index]
        if name in VALID_BY_NAME:
            return VALID_BY_NAME[name]
        return VALID_BY_TYPE.get(type_name, "1")


@dataclass(frozen=True)
class Outcome:
    function: str
    argument: str
    category: str
    value: str | None
    sqlstate: str | None  # None: the call succeeded
    message: str
    rows_written: int


_EXECUTABLE = """
SELECT p.oid::regprocedure::text, p.oid::regproc::text, p.prokind,
       p.prorettype = 'trigger'::regtype,
       coalesce(p.proargnames, '{}'), coalesce(p.proargmodes::text[], '{}'),
       array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) WITH ORDINALITY AS a (t, o)
             ORDER BY o)
FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE has_function_privilege(%(role)s, p.oid, 'EXECUTE')
  AND p.prokind IN ('f', 'p')
  AND NOT EXISTS (  -- extensions' functions (pgTAP in the test template) are not ours
      SELECT FROM pg_depend AS d
      WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  )
  AND (n.nspname = 'guard' OR p.proowner = to_regrole(guard.role('owner')))
ORDER BY 1
"""


def executable_functions(conn: psycopg.Connection[Any], role: str) -> list[Function]:
    found = []
    for signature, name, kind, is_trigger, names, modes, types in conn.execute(
        _EXECUTABLE, {"role": role}
    ).fetchall():
        # proargnames lists OUT/TABLE columns too; proargtypes only the input arguments
        inputs = list(names)
        if modes:
            inputs = [n for n, m in zip(names, modes, strict=True) if m in ("i", "b", "v")]
        inputs = (inputs + [f"${i + 1}" for i in range(len(types))])[: len(types)]
        found.append(Function(signature, name, kind, is_trigger, tuple(inputs), tuple(types)))
    return found


def _hostile_values(type_name: str) -> Iterator[tuple[str, str]]:
    """(category, value) pairs that fit an argument of this type, beyond NULL."""
    if type_name in ("text", "character varying"):
        for value in INJECTION + ODD_UNICODE:
            yield "injection/unicode", value
    else:
        for value in WRONG_TYPE + INJECTION[:2] + ODD_UNICODE[:1]:
            yield "wrong type", value
    if type_name in ("bigint", "integer", "smallint", "numeric", "double precision", "real"):
        for value in HUGE_NUMBERS:
            yield "huge number", value
    if type_name.endswith("[]"):
        for value in HUGE_ARRAYS:
            yield "huge number", value
    if type_name in ("jsonb", "json"):
        for value in ['"a string"', "null", "[1, 2]", "42", '{"\\u0000": 1}', "{" * 2000]:
            yield "odd json", value


def variants(function: Function, with_other_tenant: bool) -> Iterator[tuple[int, str, str | None]]:
    """(argument index, category, value) for each hostile value of each argument. A function
    without arguments is called once as it is (index -1): a trigger function the role may
    execute must then fail, as PostgreSQL refuses to call one outside a trigger."""
    if not function.arg_types:
        yield -1, "no arguments", None
    for index, (name, type_name) in enumerate(
        zip(function.arg_names, function.arg_types, strict=True)
    ):
        yield index, "null", None
        for category, value in _hostile_values(type_name):
            yield index, category, value
        if with_other_tenant and name in OTHER_TENANT_BY_NAME:
            yield index, "other tenant", OTHER_TENANT_BY_NAME[name]


def _statement(function: Function) -> sql.Composed:
    args = sql.SQL(", ").join(
        sql.SQL("%s::{}").format(sql.SQL(type_name)) for type_name in function.arg_types
    )
    if function.kind == "p":
        return sql.SQL("CALL {}({})").format(sql.SQL(function.name), args)
    return sql.SQL("SELECT * FROM {}({})").format(sql.SQL(function.name), args)


_WRITES = """
SELECT coalesce(sum(s.n_tup_ins + s.n_tup_upd + s.n_tup_del), 0)::bigint
FROM pg_stat_xact_all_tables AS s
WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
"""


def call(conn: psycopg.Connection[Any], function: Function, args: list[str | None]) -> Outcome:
    """One call in its own transaction, rolled back; what it raised or how many rows it wrote."""
    statement = _statement(function)
    try:
        with conn.transaction(force_rollback=True):
            # A difference: the counters also hold earlier transactions' counts until the
            # backend reports them (at most once a second).
            row = conn.execute(_WRITES).fetchone()
            counted_before = int(row[0]) if row else 0
            conn.execute(statement, args)
            row = conn.execute(_WRITES).fetchone()
            written = (int(row[0]) if row else 0) - counted_before
    except psycopg.Error as error:
        diag = error.diag
        message = diag.message_primary or str(error)
        return Outcome(function.name, "", "", None, error.sqlstate or "?", message, 0)
    return Outcome(function.name, "", "", None, None, "", written)


def _checksum(url: str) -> dict[str, str]:
    """md5 of every row of every table in schemas guard and public, as the superuser sees them."""
    tables = fetch_all(
        url,
        "SELECT c.oid::regclass::text FROM pg_class AS c"
        " WHERE c.relnamespace IN ('guard'::regnamespace, 'public'::regnamespace)"
        " AND c.relkind IN ('r', 'p') ORDER BY 1",
    )
    sums = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for (table,) in tables:
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text),"
                    " '')) FROM {} AS t"
                ).format(sql.SQL(table))
            ).fetchone()
            sums[table] = f"{row[0]}:{row[1]}" if row else ""
    return sums


def _run_matrix(
    url: str, login: str, tenant: int | None, functions: list[Function]
) -> list[Outcome]:
    outcomes = []
    with connect_as(url, login, select=tenant) as conn:  # selects a company; stays unbound
        conn.autocommit = False
        conn.execute("SET statement_timeout = '10s'")
        conn.commit()
        for function in functions:
            for index, category, value in variants(function, with_other_tenant=tenant is not None):
                args: list[str | None] = [function.valid(i) for i in range(len(function.arg_types))]
                if index >= 0:
                    args[index] = value
                outcome = call(conn, function, args)
                outcomes.append(
                    Outcome(
                        function.name,
                        function.arg_names[index] if index >= 0 else "",
                        category,
                        value,
                        outcome.sqlstate,
                        outcome.message,
                        outcome.rows_written,
                    )
                )
    return outcomes


def _problems(outcomes: list[Outcome]) -> list[str]:
    problems = []
    for o in outcomes:
        shown = repr(o.value)[:60]
        where = f"{o.function}({o.argument} = {shown}) [{o.category}]"
        if o.sqlstate is not None:
            if o.sqlstate in FORBIDDEN_SQLSTATES or o.sqlstate.startswith("XX"):
                problems.append(f"{where}: {o.sqlstate} {o.message}")
            elif not o.message.strip():
                problems.append(f"{where}: an error without a message ({o.sqlstate})")
            continue
        accepted = ACCEPTED_AS_DATA.get((o.function, o.argument))
        if accepted is not None and (o.value is not None or accepted[1]):
            continue
        if o.rows_written:
            problems.append(f"{where}: succeeded and wrote {o.rows_written} row(s)")
    return problems


@pytest.fixture
def hostile_url(seeded_url: str) -> str:
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        admin.execute(
            "INSERT INTO services (id, company_id, name) VALUES (1, 1, 'cut'), (2, 2, 'colour')"
        )
    return seeded_url


def test_every_application_function_refuses_hostile_arguments(
    hostile_url: str, login_roles: dict[str, str]
) -> None:
    login = login_roles["application"]
    with psycopg.connect(hostile_url, autocommit=True) as admin:
        functions = executable_functions(admin, login)
    names = {f.name for f in functions}
    # the functions the booking path calls must be among them, or the catalog query is wrong
    assert {
        "guard.check_call",
        "guard.validate_booking",
        "guard.record_validation",
        "guard.rollback_booking",
    } <= names, names
    before = _checksum(hostile_url)

    outcomes = _run_matrix(hostile_url, login, COMPANY_A, functions)
    outcomes += _run_matrix(hostile_url, login, None, functions)

    assert _checksum(hostile_url) == before, "a call committed something despite the rollback"
    summary = Counter(
        (o.function, "error" if o.sqlstate else f"ok, {o.rows_written} rows") for o in outcomes
    )
    print(f"\n{len(outcomes)} hostile calls of {len(functions)} functions:")
    for (function, result), n in sorted(summary.items()):
        print(f"  {function:<32} {result:<14} {n:>4}")
    # The write counter must see writes made inside SECURITY DEFINER functions, or every
    # "wrote nothing" above would be vacuous: the accepted context of rollback_booking writes
    # an alert and a review item.
    wrapped = [
        o
        for o in outcomes
        if o.function == "guard.rollback_booking" and o.argument == "context" and o.value == "42"
    ]
    assert wrapped and all(o.sqlstate is None and o.rows_written >= 2 for o in wrapped), wrapped
    problems = _problems(outcomes)
    assert problems == [], "\n".join(problems[:40])


def test_the_matrix_catches_a_function_that_writes_on_null(
    hostile_url: str, login_roles: dict[str, str]
) -> None:
    """Not vacuous: a function granted to the application role later that records a row when
    called with NULL (what validate_booking did) is found and reported."""
    login = login_roles["application"]
    with psycopg.connect(hostile_url, autocommit=True) as admin:
        admin.execute(
            "CREATE FUNCTION guard.careless(call_id bigint) RETURNS void LANGUAGE sql"
            " SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS"
            " $$INSERT INTO guard.validation_metrics (company_id, call_id, ok, latency_ms)"
            " VALUES (NULL, careless.call_id, FALSE, 0)$$"
        )
        admin.execute(
            sql.SQL("GRANT EXECUTE ON FUNCTION guard.careless(bigint) TO {}").format(
                sql.Identifier(login)
            )
        )
        functions = [f for f in executable_functions(admin, login) if f.name == "guard.careless"]
    assert len(functions) == 1, "a newly granted function is picked up from the catalog"
    problems = _problems(_run_matrix(hostile_url, login, COMPANY_A, functions))
    assert "guard.careless(call_id = None) [null]: succeeded and wrote 1 row(s)" in problems
