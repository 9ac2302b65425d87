"""docs/invariant-map.md: everything about one invariant, found in one place, never written by hand
(devtools/invariant_map.py generates it; `make generated` writes it).

The contract it rests on: the first line of a canonical SQL file that serves an invariant starts
with its tag, `-- I3:` or `-- I1, I2, ...` (the invariants are the `invariant` column of
guard.rules). The tests below hold every file to it where the catalog says which invariant an
object serves (the view of one of the rule's checks, the rule's constraints, Booking Guard's
triggers on the booking tables and their functions), and refuse a tag that names no invariant.
The last one fails when docs/invariant-map.md differs from what the generator writes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from devtools.generate import CHECKOUT
from devtools.invariant_map import (
    CHECKS,
    COMMENT,
    PATH,
    RULES,
    SqlObject,
    migration_history,
    render,
    sql_objects,
)

DOC = CHECKOUT / PATH

# Booking Guard's triggers on the booking tables and on its own tables of pending checks, with
# the function each one runs.
TRIGGERS = """
SELECT t.tgname::text, p.proname::text
FROM pg_trigger AS t
JOIN pg_proc AS p ON p.oid = t.tgfoid
WHERE NOT t.tgisinternal
  AND t.tgrelid IN ('public.calls'::regclass, 'public.appointments'::regclass,
                    'guard.flag_checks_at_commit'::regclass)
ORDER BY 1
"""


@pytest.fixture(scope="module")
def catalog(template_database: str, pg_cluster: Any) -> Iterator[dict[str, Any]]:
    with psycopg.connect(pg_cluster.url(template_database)) as conn:
        yield {
            "rules": conn.execute(RULES).fetchall(),
            "checks": conn.execute(CHECKS).fetchall(),
            "triggers": conn.execute(TRIGGERS).fetchall(),
        }


def test_every_tag_names_an_invariant(catalog: dict[str, Any]) -> None:
    known = {row[1] for row in catalog["rules"]}
    unknown = {o.file: t for o in sql_objects() for t in o.tags if t not in known}
    assert not unknown, f"tags that name no invariant in guard.rules: {unknown}"


def test_objects_the_catalog_ties_to_an_invariant_carry_its_tag(catalog: dict[str, Any]) -> None:
    objects = sql_objects()
    by_view = {o.bare: o for o in objects if o.kind == "detection view"}
    by_constraint = {o.bare: o for o in objects if o.kind == "constraint"}
    missing = []
    for rule_id, invariant, *_, constraints in catalog["rules"]:
        tied = [by_constraint[c] for c in constraints]
        missing += [f"{o.file} ({rule_id})" for o in tied if invariant not in o.tags]
    for check_id, invariant, *_, check_view in catalog["checks"]:
        tied = [by_view[check_view]] if check_view else []
        missing += [f"{o.file} ({check_id})" for o in tied if invariant not in o.tags]
    assert not missing, f"files without their invariant's tag: {missing}"


def test_guard_triggers_and_their_functions_are_tagged(catalog: dict[str, Any]) -> None:
    objects = {(o.kind, o.bare): o for o in sql_objects()}
    untagged = []
    for trigger, function in catalog["triggers"]:
        for key in (("trigger", trigger), ("function", function)):
            obj = objects.get(key)
            assert obj is not None, f"{key} has no canonical file"
            if not obj.tags:
                untagged.append(obj.file)
    assert not untagged, (
        f"triggers on the booking tables or their functions without a tag: {untagged}"
    )


def test_migration_history_reads_ddl_not_comments() -> None:
    obj = SqlObject(
        "function", "guard.refresh_call_flags", "functions/guard.refresh_call_flags.sql", ("I3",)
    )
    migrations = [
        ("0001_a", COMMENT.sub("", "-- CREATE FUNCTION guard.refresh_call_flags( in a comment\n")),
        ("0002_b", "CREATE FUNCTION guard.refresh_call_flags(a int)"),
        ("0003_c", "ALTER FUNCTION guard.refresh_call_flags(int) SET jit = off"),
        ("0004_d", "CREATE OR REPLACE FUNCTION guard.refresh_call_flags_other(a int)"),
        (
            "0005_e",
            "DROP FUNCTION guard.refresh_call_flags(int);"
            " CREATE FUNCTION guard.refresh_call_flags(b text)",
        ),
    ]
    assert migration_history(obj, migrations) == [
        "0002 created",
        "0003 altered",
        "0005 dropped+created",
    ]


def test_invariant_map_is_current(catalog: dict[str, Any]) -> None:
    text = render(catalog["rules"], catalog["checks"], sql_objects())
    assert DOC.exists() and DOC.read_text() == text, (
        "docs/invariant-map.md is stale: run `make generated`"
    )
