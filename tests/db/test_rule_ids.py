"""A correction is audited under the rule id of the invariant it restores (I1_call_direction),
never under the detection rule that found the row (call_without_direction): one id whichever
path made the fix, so guard_corrections_total counts a fix of a direction in one series. The
test walks the catalog: every function that writes guard.correction_audit, wherever it is."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg

from tests.support.queries import fetch_all

# The functions (and their source) that insert into the table {table} of schema guard.
WRITERS_OF = """
SELECT p.oid::regprocedure::text, p.prosrc
FROM pg_proc AS p
INNER JOIN pg_namespace AS n ON p.pronamespace = n.oid
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND p.prosrc ~* 'INSERT\\s+INTO\\s+guard\\.{table}'
ORDER BY 1
"""
WRITERS = WRITERS_OF.format(table="correction_audit")
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


ALERT_WRITERS = WRITERS_OF.format(table="alerts")
ALERT_INSERT = re.compile(
    r"INSERT\s+INTO\s+guard\.alerts\s+(?:AS\s+\w+\s+)?\(\s*fingerprint\s*,\s*(\w+)[^)]*\)\s*"
    r"(?:SELECT|VALUES\s*\()\s*",
    re.IGNORECASE,
)
# where a writer takes the check from a row instead of a literal: a check view's row
# (run_detection, detect_between) or guard.checks itself (open_job_alert)
CHECK_FROM_A_ROW = {"f.check_id", "k.id"}


def _first_two_items(text: str) -> tuple[str, str]:
    fingerprint = _top_level_cut(text, ",")
    rest = text[len(fingerprint) + 1 :]
    return fingerprint.strip(), _top_level_cut(rest, ",").strip()


def test_every_alert_is_written_under_a_check_of_guard_checks(db_url: str) -> None:
    """An alert names the check that raised it, never a rule: the walk finds every function that
    writes guard.alerts and holds the check it writes (and the fingerprint's prefix) to a row of
    guard.checks. Before 0031 the commit-time correction of I3 raised its alerts under the rule
    id I3_appointment_flags."""
    with psycopg.connect(db_url) as conn:
        writers = conn.execute(ALERT_WRITERS).fetchall()
        checks = {row[0] for row in conn.execute("SELECT id FROM guard.checks").fetchall()}
    assert {name.split("(")[0] for name, _ in writers} >= {
        "guard.record_findings",
        "guard.open_job_alert",
        "guard.refresh_call_flags",
        "guard.reconcile",
        "guard.rollback_booking",
    }
    for name, source in writers:
        inserts = list(ALERT_INSERT.finditer(source))
        assert len(inserts) == len(re.findall(r"INSERT\s+INTO\s+guard\.alerts\b", source, re.I)), (
            f"{name}: an INSERT INTO guard.alerts is not (fingerprint, check_id, ...) SELECT|VALUES"
        )
        for insert in inserts:
            assert insert.group(1).lower() == "check_id", f"{name}: check_id is not the 2nd column"
            fingerprint, check = _first_two_items(source[insert.end() :])
            if check in CHECK_FROM_A_ROW:
                continue
            literal = LITERAL.fullmatch(check)
            assert literal, f"{name}: the check {check!r} is neither a literal nor a check's row"
            assert literal.group(1) in checks, f"{name} raises alerts under {check}: not a check"
            assert fingerprint.startswith(f"'{literal.group(1)}:"), (
                f"{name}: the fingerprint {fingerprint} does not start with its check"
            )


def test_each_check_view_names_its_check_and_rule(db_url: str) -> None:
    rows = fetch_all(
        db_url,
        "SELECT k.id, k.rule_id, pg_get_viewdef(('guard.' || k.check_view)::regclass)"
        " FROM guard.checks AS k WHERE k.check_view IS NOT NULL ORDER BY k.id",
    )
    assert len(rows) >= 8
    monitors = 0
    for check_id, rule_id, definition in rows:
        named = dict(
            (column, value)
            for value, column in re.findall(r"'(\w+)'::text AS (check_id|rule_id)", definition)
        )
        if named:
            assert named == {"check_id": check_id, "rule_id": rule_id}, (check_id, named)
            continue
        # or both read from the check's own row of guard.checks: the activity monitors, through
        # guard.activity_check given the check's id (its body is checked below)
        monitor = re.search(r"guard\.activity_check\('(\w+)'::text", definition)
        if monitor:
            assert monitor.group(1) == check_id, (check_id, definition)
            monitors += 1
            continue
        own_row = re.search(r"JOIN guard\.checks (\w+) ON \(*\1\.id = '(\w+)'::text", definition)
        assert own_row and own_row.group(2) == check_id, (check_id, definition)
        alias = own_row.group(1)
        assert re.search(rf"\b{alias}\.id AS check_id\b", definition), (check_id, definition)
        assert re.search(rf"\b{alias}\.rule_id\b", definition), (check_id, definition)
    if monitors:
        body = fetch_all(
            db_url, "SELECT prosrc FROM pg_proc WHERE oid = 'guard.activity_check'::regproc"
        )[0][0]
        joined = re.search(
            r"JOIN guard\.checks AS (\w+) ON \1\.id = activity_check\.monitor_check", body
        )
        assert joined, body
        alias = joined.group(1)
        assert re.search(rf"SELECT\s+{alias}\.id,", body), body
        assert re.search(rf"{alias}\.rule_id\s+FROM", body), body


def test_the_peer_table_in_invariants_md_lists_every_shipped_check(db_url: str) -> None:
    """docs/invariants.md, "The checks a new user gets, and their peers": one row (or a share of
    one) for every check of guard.checks a new database has, and none that does not exist."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "invariants.md").read_text()
    section = doc.split("## The checks a new user gets, and their peers", 1)[1].split("\n## ", 1)[0]
    first_cells = re.findall(r"^\| ([^|]+) \|", section, re.MULTILINE)
    documented = {name for cell in first_cells for name in re.findall(r"`(\w+)`", cell)}
    with psycopg.connect(db_url) as conn:
        shipped = {row[0] for row in conn.execute("SELECT id FROM guard.checks").fetchall()}
    assert len(shipped) >= 15
    assert documented - {"check"} == shipped, (
        f"missing from the table: {sorted(shipped - documented)};"
        f" not a check: {sorted(documented - shipped - {'check'})}"
    )
