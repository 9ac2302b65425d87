"""plpgsql_check over every PL/pgSQL function in the guard schema; a trigger function is checked
against each table it is attached to."""

from __future__ import annotations

import psycopg

FUNCTIONS = """
SELECT p.oid, p.oid::regprocedure::text, p.prorettype = 'trigger'::regtype AS is_trigger
FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace
JOIN pg_language AS l ON l.oid = p.prolang
WHERE n.nspname = 'guard' AND l.lanname = 'plpgsql'
ORDER BY 2
"""


def test_every_plpgsql_function_passes_plpgsql_check(db_url: str) -> None:
    problems: list[str] = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS plpgsql_check")
        functions = conn.execute(FUNCTIONS).fetchall()
        assert functions, "no PL/pgSQL functions found: the check would pass vacuously"
        for oid, signature, is_trigger in functions:
            # (table, old transition table, new transition table) for each use as a trigger
            uses: list[tuple[int | None, str | None, str | None]] = [(None, None, None)]
            if is_trigger:
                uses = conn.execute(
                    "SELECT DISTINCT tgrelid::oid, tgoldtable::text, tgnewtable::text"
                    " FROM pg_trigger WHERE tgfoid = %s",
                    (oid,),
                ).fetchall()
                assert uses, f"trigger function {signature} is attached to no table"
            for relid, old_table, new_table in uses:
                rows = conn.execute(
                    "SELECT level, message, lineno, statement"
                    " FROM plpgsql_check_function_tb(%s, coalesce(%s, 0)::regclass,"
                    " oldtable => %s, newtable => %s,"
                    " performance_warnings => false, extra_warnings => true)",
                    (oid, relid, old_table, new_table),
                ).fetchall()
                problems += [
                    f"{signature} line {lineno}: {level}: {message} ({statement})"
                    for level, message, lineno, statement in rows
                ]
    assert problems == []
