"""Catalog facts about every function and view in schema guard, read from the catalog so that a
new function or view is covered without touching this test."""

from __future__ import annotations

import re
from pathlib import Path
from typing import cast

import psycopg

from tests.support.queries import fetch_all, fetch_one

# SECURITY DEFINER only where the application (or a trigger firing for it) must write (or, for
# the breaker's restore, read) what it may not write or read itself. A new one is a deliberate
# change here and in docs/security.md.
EXPECTED_DEFINERS = {
    "guard.audit_calendar_restorations(bigint[],timestamp with time zone)",
    "guard.begin_booking(bigint,bigint,double precision,text)",
    "guard.begin_booking_attempt(bigint,bigint,text)",
    "guard.booking_attempt_to_record(text)",
    "guard.restore_column_views()",
    "guard.set_aside_column_views(regclass,name)",
    "guard.check_call(bigint)",
    "guard.complete_booking_attempt(text,bigint,text,integer)",
    "guard.fail_booking_attempt(text,text,jsonb)",
    "guard.check_flags_at_commit()",
    "guard.breaker_restore_state(text)",
    "guard.forget_deleted_companies()",
    "guard.record_breaker_transitions(jsonb)",
    "guard.record_validation(bigint,bigint,bigint,boolean,text,double precision)",
    "guard.refresh_call_flags(bigint[],text)",
    "guard.rollback_booking(bigint,text,jsonb)",
    "guard.read_own_check(text,timestamp with time zone,timestamp with time zone,bigint,bigint[],"
    "boolean)",
    "guard.queue_missing_in_calendar(bigint,timestamp with time zone,timestamp with time zone,"
    "timestamp with time zone,text[],integer)",
    "guard.reconcile_calendar_booking(bigint,text,text,timestamp with time zone,"
    "timestamp with time zone,bigint,text)",
    "guard.unsettled_booking_attempts(integer,integer)",
    "guard.validate_booking(bigint,bigint,text)",
    "guard.validate_call_end(bigint)",
}

_FUNCTIONS = """
SELECT p.oid::regprocedure::text, p.prosecdef, p.proconfig
FROM pg_proc AS p
WHERE p.pronamespace = 'guard'::regnamespace
ORDER BY 1
"""


def _search_path(proconfig: list[str] | None) -> list[str] | None:
    for entry in proconfig or []:
        name, _, value = entry.partition("=")
        if name == "search_path":
            return [part.strip().strip('"') for part in value.split(",")]
    return None


def _schemas_others_can_create_in(conn: psycopg.Connection[tuple[object, ...]]) -> set[str]:
    """Schemas in which some role other than the schema's owner (PUBLIC included) holds CREATE:
    a name there can be planted to hijack a SECURITY DEFINER function's lookups."""
    rows = conn.execute(
        "SELECT n.nspname FROM pg_namespace AS n"
        " CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS x"
        " WHERE x.privilege_type = 'CREATE' AND x.grantee <> n.nspowner"
    ).fetchall()
    return {str(name) for (name,) in rows}


def _definer_problems(
    conn: psycopg.Connection[tuple[object, ...]],
) -> tuple[list[str], set[str]]:
    """(problems, definers): every SECURITY DEFINER function in schema guard must set a
    search_path that lists pg_temp last and no schema other roles can create objects in."""
    functions = conn.execute(_FUNCTIONS).fetchall()
    assert functions, "no functions found in schema guard: the check would pass vacuously"
    unsafe_schemas = _schemas_others_can_create_in(conn) | {"public", "$user"}
    problems: list[str] = []
    definers = set()
    for signature, is_definer, proconfig in functions:
        if not is_definer:
            continue
        definers.add(re.sub(r",\s+", ",", str(signature)))
        path = _search_path(cast(list[str] | None, proconfig))
        if path is None:
            problems.append(f"{signature}: SECURITY DEFINER without SET search_path")
            continue
        bad = [schema for schema in path if schema in unsafe_schemas]
        if bad:
            problems.append(f"{signature}: search_path {path} includes writable schema(s) {bad}")
        if path[-1] != "pg_temp":
            problems.append(f"{signature}: search_path {path} must list pg_temp last")
    return problems, definers


def test_every_security_definer_function_has_a_safe_fixed_search_path(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        problems, definers = _definer_problems(conn)
    assert problems == []
    assert definers == EXPECTED_DEFINERS


def test_the_safety_check_catches_unsafe_definers(db_url: str) -> None:
    """The check is not vacuous: a definer without a search_path, one whose path includes
    public, and one whose path includes a schema PUBLIC may create in are all caught."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION guard.bad_one() RETURNS int LANGUAGE sql SECURITY DEFINER"
            " AS 'SELECT 1'"
        )
        conn.execute(
            "CREATE FUNCTION guard.bad_two() RETURNS int LANGUAGE sql SECURITY DEFINER"
            " SET search_path = public, pg_temp AS 'SELECT 1'"
        )
        conn.execute("CREATE SCHEMA scratch")
        conn.execute("GRANT CREATE ON SCHEMA scratch TO PUBLIC")
        conn.execute(
            "CREATE FUNCTION guard.bad_three() RETURNS int LANGUAGE sql SECURITY DEFINER"
            " SET search_path = pg_catalog, scratch, pg_temp AS 'SELECT 1'"
        )
        problems, _ = _definer_problems(conn)
    for name in ("bad_one", "bad_two", "bad_three"):
        assert any(problem.startswith(f"guard.{name}()") for problem in problems), name


def test_no_guard_function_is_executable_by_public(db_url: str) -> None:
    rows = fetch_all(
        db_url,
        "SELECT p.oid::regprocedure::text FROM pg_proc AS p"
        " CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS x"
        " WHERE p.pronamespace = 'guard'::regnamespace AND x.grantee = 0",
    )
    assert rows == []


def test_every_guard_object_is_owned_by_the_owner_role(db_url: str) -> None:
    """All but one: guard.read_own_check is the check reader's, so that own checks run as it."""
    owner = fetch_one(db_url, "SELECT guard.role('owner')")
    reader = fetch_one(db_url, "SELECT guard.check_reader()")
    rows = fetch_all(
        db_url,
        "SELECT c.oid::regclass::text, pg_get_userbyid(c.relowner) FROM pg_class AS c"
        " WHERE c.relnamespace = 'guard'::regnamespace"
        " UNION ALL SELECT p.oid::regprocedure::text, pg_get_userbyid(p.proowner)"
        " FROM pg_proc AS p WHERE p.pronamespace = 'guard'::regnamespace"
        " UNION ALL SELECT t.oid::regtype::text, pg_get_userbyid(t.typowner)"
        " FROM pg_type AS t WHERE t.typnamespace = 'guard'::regnamespace"
        " UNION ALL SELECT 'schema guard', pg_get_userbyid(nspowner)"
        " FROM pg_namespace WHERE nspname = 'guard'",
    )
    assert owner is not None and reader is not None
    assert [(name, who) for name, who in rows if who != owner[0]] == [
        (
            "guard.read_own_check(text,timestamp with time zone,timestamp with time zone,bigint,"
            "bigint[],boolean)",
            reader[0],
        )
    ]


# Views that mask what their readers may not read, so they run with their owner's rights.
MASKING_VIEWS = {
    "calls_report",
    "alerts_report",
    "review_items_report",
    "correction_audit_report",
    "check_recent_booking_failure",
}


def test_every_guard_view_is_security_invoker_but_the_masking_views(db_url: str) -> None:
    """The masking views run with their owner's rights: each must then be a security barrier
    and filter by the reader's bound companies itself."""
    rows = fetch_all(
        db_url,
        "SELECT c.relname, coalesce(c.reloptions, '{}'), pg_get_viewdef(c.oid)"
        " FROM pg_class AS c"
        " WHERE c.relnamespace = 'guard'::regnamespace AND c.relkind IN ('v', 'm')",
    )
    assert rows
    definer_views = {name for name, options, _ in rows if "security_invoker=true" not in options}
    assert definer_views == MASKING_VIEWS
    for name, options, definition in rows:
        if name in MASKING_VIEWS:
            assert "security_barrier=true" in options, name
            assert "guard.visible_companies()" in definition, name


def test_no_view_exposes_raw_phone_numbers(db_url: str) -> None:
    """from_number and to_number appear in a guard view only inside guard.mask_phone()."""
    rows = fetch_all(
        db_url,
        "SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class AS c"
        " WHERE c.relnamespace = 'guard'::regnamespace AND c.relkind IN ('v', 'm')",
    )
    exposing = []
    for name, definition in rows:
        # 16 and later print a column without its table alias where the view reads one table
        unmasked = re.sub(r"mask_phone\((\w+\.)?(from|to)_number\)", "", definition)
        if re.search(r"\b(from|to)_number\b", unmasked) or "transcript" in definition:
            exposing.append(name)
    assert exposing == []


# -- trigger functions that run under the writer's search_path ------------------------------------

_TRIGGER_FUNCTIONS = """
SELECT p.oid::regproc::text, p.proconfig, p.prosrc
FROM pg_proc AS p
WHERE p.pronamespace = 'guard'::regnamespace
  AND p.prorettype = 'trigger'::regtype
  AND NOT p.prosecdef
"""
_CALLED_PLPGSQL_FUNCTIONS = """
SELECT p.oid::regproc::text, p.proconfig, p.prosrc
FROM pg_proc AS p
INNER JOIN pg_language AS l ON l.oid = p.prolang
WHERE p.pronamespace = 'guard'::regnamespace
  AND p.proname = ANY (%s)
  AND l.lanname = 'plpgsql'
  AND NOT p.prosecdef
"""
# Grammar, not a function looked up by name: coalesce (...), ARRAY (...), EXISTS (...), and the
# words of PL/pgSQL and SQL that a parenthesis may follow.
_SYNTAX = {
    "coalesce", "nullif", "greatest", "least", "array", "exists", "any", "all", "in", "row",
    "values", "cast", "filter", "over", "not", "and", "or", "when", "then", "else", "if", "elsif",
    "from", "select", "where", "on", "as", "using", "returning", "into", "set", "case", "update",
    "return", "perform",
}  # fmt: skip


def _unqualified_calls(body: str) -> list[str]:
    """Names called in a function body without a schema (comments and string literals left out;
    a column list after AS, `AS x (id)`, is not a call)."""
    body = re.sub(r"--[^\n]*", "", body)
    body = re.sub(r"'(?:[^']|'')*'", "''", body)
    return [
        match.group(1)
        for match in re.finditer(r"(?<![\w.])([A-Za-z_]\w*)\s*\(", body)
        if match.group(1).lower() not in _SYNTAX
        and not re.search(r"\bAS\s+$", body[: match.start()], re.IGNORECASE)
    ]


def _documented_without_search_path() -> set[str]:
    """The functions the first paragraph of "Trigger functions without SET clauses" in
    docs/security.md names."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    section = text.split("## Trigger functions without SET clauses", 1)[1]
    return set(re.findall(r"`(guard\.\w+)`", section.split("\n\n", 2)[1]))


def test_trigger_functions_without_a_fixed_search_path_are_documented_and_qualify_every_call(
    db_url: str,
) -> None:
    """A trigger function that runs under the writer's search_path, and a PL/pgSQL function it
    calls with the writer's rights, is one docs/security.md lists and argues for, and names every
    function it calls with its schema (PostgreSQL then resolves none of them through the writer's
    path)."""
    rows = fetch_all(db_url, _TRIGGER_FUNCTIONS)
    without_path = {
        str(name): str(body)
        for name, proconfig, body in rows
        if _search_path(cast(list[str] | None, proconfig)) is None
    }
    assert without_path, "no trigger function without a search_path: the check would be vacuous"
    # and the PL/pgSQL functions they call, which run with the same rights under the same path
    called = sorted(
        {
            name
            for body in without_path.values()
            for name in re.findall(r"\bguard\.(\w+)\s*\(", body)
        }
    )
    helpers = fetch_all(db_url, _CALLED_PLPGSQL_FUNCTIONS, (called,))
    assert helpers, "the triggers call no PL/pgSQL function: the helper check would be vacuous"
    without_path |= {
        str(name): str(body)
        for name, proconfig, body in helpers
        if _search_path(cast(list[str] | None, proconfig)) is None
    }
    assert set(without_path) == _documented_without_search_path()
    unqualified = {name: _unqualified_calls(body) for name, body in without_path.items()}
    assert {name: calls for name, calls in unqualified.items() if calls} == {}


def test_the_qualified_call_check_catches_an_unqualified_call() -> None:
    body = """
    -- now() in a comment is not a call
    SELECT coalesce(pg_catalog.cardinality(ids), 0), 'now()' FROM unnest(ids) AS x (id);
    IF cardinality(lost) > 0 THEN RETURN NULL; END IF;
    """
    assert _unqualified_calls(body) == ["unnest", "cardinality"]
