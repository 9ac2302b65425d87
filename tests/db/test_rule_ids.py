"""A correction is audited under the rule id of the invariant it restores (I1_call_direction),
never under the detection rule that found the row (call_without_direction): one id whichever
path made the fix, so guard_corrections_total counts a fix of a direction in one series. The
test walks the catalog: every function that writes guard.correction_audit, wherever it is."""

from __future__ import annotations

import re
from typing import Any

import psycopg

WRITERS = """
SELECT p.oid::regprocedure::text, p.prosrc
FROM pg_proc AS p
INNER JOIN pg_namespace AS n ON p.pronamespace = n.oid
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND p.prosrc ~* 'INSERT\\s+INTO\\s+guard\\.correction_audit'
ORDER BY 1
"""
RULES = "SELECT id, invariant, id LIKE invariant || '\\_%' AS is_invariant_rule FROM guard.rules"
ANY_AUDIT_INSERT = re.compile(r"INSERT\s+INTO\s+guard\.correction_audit\b", re.IGNORECASE)
AUDIT_INSERT = re.compile(
    r"INSERT\s+INTO\s+guard\.correction_audit\s*\(\s*(\w+)[^)]*\)\s*SELECT\s", re.IGNORECASE
)
UNION_SELECT = re.compile(r"\bUNION\s+(?:ALL\s+)?SELECT\s", re.IGNORECASE)
LITERAL = re.compile(r"'([^']*)'")


def _top_level_cut(text: str, stop: str) -> str:
    """text up to the first character of stop outside quotes and parentheses, or up to the
    parenthesis that closes the enclosing one (the end of a CTE)."""
    depth, quoted = 0, False
    for i, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return text[:i]
        elif depth == 0 and char in stop:
            return text[:i]
    return text


def audited_rule_ids(name: str, source: str) -> list[str]:
    """The rule ids each INSERT INTO guard.correction_audit ... SELECT of a function writes: the
    literals of the first select item of each SELECT of the statement (rule_id must be the
    first column)."""
    found: list[str] = []
    inserts = list(AUDIT_INSERT.finditer(source))
    # every write of the audit is read: one in another form (VALUES) fails instead of passing
    assert len(inserts) == len(ANY_AUDIT_INSERT.findall(source)), (
        f"{name}: an INSERT INTO guard.correction_audit is not INSERT (rule_id, ...) SELECT"
    )
    for insert in inserts:
        assert insert.group(1).lower() == "rule_id", f"{name}: rule_id is not the first column"
        statement = _top_level_cut(source[insert.end() :], ";")
        for select in UNION_SELECT.split(statement):
            literals = LITERAL.findall(_top_level_cut(select, ","))
            assert literals, f"{name}: an audit row's rule id is not a literal the test can read"
            found += literals
    return found


def test_every_correction_is_audited_under_an_invariant_rule(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        writers = conn.execute(WRITERS).fetchall()
        rules: dict[str, tuple[Any, bool]] = {
            rule_id: (invariant, bool(is_invariant_rule))
            for rule_id, invariant, is_invariant_rule in conn.execute(RULES).fetchall()
        }
    # the writers there are today; a new one joins the walk by itself
    assert {name.split("(")[0] for name, _ in writers} >= {
        "guard.reconcile",
        "guard.reconcile_call_batch",
        "guard.refresh_call_flags",
    }
    for name, source in writers:
        audited = audited_rule_ids(name, source)
        unknown = sorted(set(audited) - set(rules))
        assert not unknown, f"{name} audits under ids that are no rule of guard.rules: {unknown}"
        wrong = sorted({r for r in audited if not rules[r][1]})
        assert not wrong, (
            f"{name} audits under detection or operational rule ids {wrong}; use the invariant's"
            f" rule id ({', '.join(sorted(r for r in rules if rules[r][1]))})"
        )


def test_each_invariant_has_one_rule_id(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        per_invariant = conn.execute(
            "SELECT invariant, array_agg(id ORDER BY id) FROM guard.rules"
            " WHERE id LIKE invariant || '\\_%' GROUP BY invariant ORDER BY invariant"
        ).fetchall()
        invariants = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT invariant FROM guard.rules WHERE invariant IS NOT NULL ORDER BY 1"
            ).fetchall()
        ]
    assert [inv for inv, _ in per_invariant] == invariants, "an invariant has no rule of its own"
    several = {inv: ids for inv, ids in per_invariant if len(ids) != 1}
    assert not several, f"invariants with more than one rule id: {several}"
