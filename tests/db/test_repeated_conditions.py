"""The I1 normalisation and the I2 link condition, each defined once: guard.normalised_direction and
guard.is_valid_customer_link. The planner inlines them, guard.is_active_appointment and
guard.active_appointment_for_call (a call costs what the expression written in place costs), on a
new database and on an adopted one (whose deleted_at is `timestamp without time zone`). The domains
the CHECKs on calls cast to (guard.call_direction, guard.customer_link) and the WHEN clauses of the
legacy-row triggers keep their condition written out (a domain keeps its compiled CHECK for the
session, with an inlined function as it was then; PostgreSQL compiles a WHEN clause again for every
statement that writes calls): these tests prove that every copy, and the table's CHECK itself, says
the same thing on every combination of the columns involved, reading each condition from the catalog
as PostgreSQL stores it."""

from __future__ import annotations

import itertools
import re
from typing import Any

import psycopg
import pytest

from devtools.legacy_schema import LEGACY_SCHEMA
from guard.schema.migrate import Migrator
from guard.schema.validate import validate
from tests.support.queries import fetch_all, text_on

LINK_COLUMNS = (
    "customer_id bigint",
    "customer_link_status text",
    "customer_linked_at timestamptz",
    "customer_link_method text",
    "customer_link_confidence numeric",
)
LINK_VALUES = (
    (None, 7),
    (None, "linked", "unlinked", "anonymous", "pending", ""),
    (None, "2026-11-01 10:00:00+00"),
    (None, "phone_number"),
    (None, 0, 100),
)
# btrim takes spaces only: a tab stays, and the CHECK refuses what it leaves.
DIRECTIONS = (None, "", "  ", "inbound", "outbound", "Inbound", " OUTBOUND ", "out\t", "sideways")


@pytest.fixture
def adopted_db(legacy_db_url: str) -> str:
    """A legacy database after `guard db apply`, before `guard db validate`: the CHECKs are
    NOT VALID and the legacy-row triggers exist (a clone of the session's legacy template)."""
    return legacy_db_url


def _check_expression(conn: psycopg.Connection[Any], name: str) -> str:
    return text_on(
        conn,
        "SELECT pg_get_expr(conbin, conrelid) FROM pg_constraint"
        " WHERE conrelid = 'public.calls'::regclass AND conname = %s",
        (name,),
        name,
    )


def _domain_condition(conn: psycopg.Connection[Any], domain: str, value: str) -> str:
    """The conjunction of a domain's CHECK constraints with VALUE standing for `value`; NULL
    passes, as it passes a CHECK."""
    rows = conn.execute(
        "SELECT pg_get_expr(conbin, 0) FROM pg_constraint"
        " WHERE contypid = %s::regtype ORDER BY conname",
        (domain,),
    ).fetchall()
    assert rows, f"{domain} has no CHECK"
    conditions = [re.sub(r"\bVALUE\b", value, str(expression)) for (expression,) in rows]
    return " AND ".join(f"coalesce(({condition}), TRUE)" for condition in conditions)


def _accepted(
    conn: psycopg.Connection[Any],
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    check: str,
) -> dict[tuple[Any, ...], bool]:
    """Whether the table CHECK `check` lets each row through. A cast to a domain raises on a
    value the domain refuses (23514), so each row is asked on its own, in a savepoint."""
    accepted: dict[tuple[Any, ...], bool] = {}
    for row in rows:
        try:
            with conn.transaction():
                verdict = _evaluate(conn, columns, [row], {"check": check})[row]["check"]
        except psycopg.errors.CheckViolation:
            verdict = False
        accepted[row] = verdict is not False  # a CHECK passes on NULL
    return accepted


def _when_expression(conn: psycopg.Connection[Any], trigger: str) -> str:
    definition = text_on(
        conn,
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger"
        " WHERE tgrelid = 'public.calls'::regclass AND tgname = %s",
        (trigger,),
        f"{trigger} is missing: is the CHECK still NOT VALID?",
    )
    match = re.search(r" WHEN \((.*)\) EXECUTE FUNCTION ", definition, re.S)
    assert match is not None, definition
    return match.group(1)


def _evaluate(
    conn: psycopg.Connection[Any],
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    expressions: dict[str, str],
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Each expression for each row, the row's columns visible both unqualified (as a CHECK
    names them) and as `new.column` (as a trigger's WHEN names them)."""
    names = [c.split()[0] for c in columns]
    casts = [c.split()[1] for c in columns]
    placeholders = ", ".join(
        "(" + ", ".join(["%s::int"] + [f"%s::{t}" for t in casts]) + ")" for _ in rows
    )
    params = [v for i, row in enumerate(rows) for v in (i, *row)]
    selected = ", ".join(f"({e}) AS {k}" for k, e in expressions.items())
    query = (
        f"SELECT n, {selected} FROM (VALUES {placeholders})"
        f" AS new (n, {', '.join(names)}) ORDER BY n"
    )
    result = conn.execute(query.encode(), params).fetchall()
    assert len(result) == len(rows)
    return {rows[r[0]]: dict(zip(expressions, r[1:], strict=True)) for r in result}


def test_the_customer_link_condition_agrees_with_the_check_and_the_legacy_trigger(
    adopted_db: str,
) -> None:
    combinations = list(itertools.product(*LINK_VALUES))
    link = (
        "(ROW(new.customer_id, new.customer_link_status, new.customer_linked_at,"
        " new.customer_link_method, new.customer_link_confidence)::guard.customer_link_fields)"
    )
    with psycopg.connect(adopted_db) as conn:
        verdicts = _evaluate(
            conn,
            LINK_COLUMNS,
            combinations,
            {
                "domain": _domain_condition(conn, "guard.customer_link", link),
                "trigger_fires": _when_expression(conn, "guard_calls_normalise_legacy_link"),
                "function": "guard.is_valid_customer_link(new.customer_id,"
                " new.customer_link_status, new.customer_linked_at, new.customer_link_method,"
                " new.customer_link_confidence)",
            },
        )
        table_check = _accepted(
            conn,
            LINK_COLUMNS,
            combinations,
            _check_expression(conn, "guard_calls_customer_link_check"),
        )
    assert all(isinstance(x, bool) for v in verdicts.values() for x in v.values())
    disagree = [
        (row, v, table_check[row])
        for row, v in verdicts.items()
        if not (
            v["domain"] is v["function"] is table_check[row]
            and v["trigger_fires"] is not v["domain"]
        )
    ]
    assert disagree == []
    # The grid reaches both verdicts, each through more than one column.
    valid = [row for row, v in verdicts.items() if v["function"]]
    assert 0 < len(valid) < len(combinations)
    assert {row[1] for row in valid} == {"linked", "unlinked", "anonymous"}


def test_the_confidence_range_is_part_of_the_link_check(db_url: str) -> None:
    """The range 0-100 that guard_calls_link_confidence_range held on the table is the second
    CHECK of the domain: the table's link CHECK refuses a confidence outside it."""
    rows = [(7, "linked", "2026-11-01 10:00:00+00", "phone_number", c) for c in (-1, 0, 100, 101)]
    with psycopg.connect(db_url) as conn:
        accepted = _accepted(
            conn, LINK_COLUMNS, rows, _check_expression(conn, "guard_calls_customer_link_check")
        )
    assert [accepted[row] for row in rows] == [False, True, True, False]


def test_the_direction_check_and_its_legacy_trigger_agree(adopted_db: str) -> None:
    directions = [(d,) for d in DIRECTIONS]
    with psycopg.connect(adopted_db) as conn:
        verdicts = _evaluate(
            conn,
            ("direction text",),
            directions,
            {
                "domain": "new.direction IS NOT NULL AND "
                + _domain_condition(conn, "guard.call_direction", "new.direction"),
                "trigger_fires": _when_expression(conn, "guard_calls_normalise_legacy_direction"),
                "normalised": "guard.normalised_direction(new.direction)",
            },
        )
        table_check = _accepted(
            conn,
            ("direction text",),
            directions,
            _check_expression(conn, "guard_calls_direction_check"),
        )
    assert {
        d: v["trigger_fires"] is not v["domain"] is table_check[(d,)]
        for (d,), v in verdicts.items()
    } == dict.fromkeys(DIRECTIONS, True)
    assert {d for (d,), ok in table_check.items() if ok} == {"inbound", "outbound"}
    assert {d: v["normalised"] for (d,), v in verdicts.items()} == {
        None: "inbound",
        "": "inbound",
        "  ": "inbound",
        "inbound": "inbound",
        "outbound": "outbound",
        "Inbound": "inbound",
        " OUTBOUND ": "outbound",
        "out\t": "out\t",
        "sideways": "sideways",
    }


def test_the_normaliser_stores_the_normalised_direction(db_url: str) -> None:
    """What guard.normalised_direction says is what the BEFORE ROW trigger stores; a value it
    cannot make valid is refused by the CHECK, nothing stored."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        company = conn.execute(
            "INSERT INTO companies (name) VALUES ('Dir') RETURNING id"
        ).fetchone()
        assert company is not None
        for direction in DIRECTIONS:
            expected = conn.execute(
                "SELECT guard.normalised_direction(%s::text)", (direction,)
            ).fetchone()
            assert expected is not None
            if expected[0] in ("inbound", "outbound"):
                stored = conn.execute(
                    "INSERT INTO calls (company_id, direction) VALUES (%s, %s) RETURNING direction",
                    (company[0], direction),
                ).fetchone()
                assert stored == expected, direction
            else:
                with pytest.raises(psycopg.errors.CheckViolation):
                    conn.execute(
                        "INSERT INTO calls (company_id, direction) VALUES (%s, %s)",
                        (company[0], direction),
                    )
        count = conn.execute("SELECT count(*) FROM calls WHERE company_id = %s", company).fetchone()
    assert count == (len(DIRECTIONS) - 2,), "all but sideways and a tab are stored"


def test_validate_fixes_a_blank_direction(empty_db_url: str) -> None:
    """An old row whose direction is '' is what the normaliser makes inbound: `guard db
    validate` fixes it, audited, and the CHECK validates. Before 0026 the reconciler did not
    count a blank direction as one to fix: it was fixed unaudited when the row's link needed a
    fix too, and otherwise left for the CHECK to refuse."""
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(LEGACY_SCHEMA.encode())
        conn.execute(
            "ALTER TABLE calls ADD COLUMN direction varchar(255),"
            " ADD COLUMN customer_link_status varchar(255)"
        )
        # Call 5's link is whole (no customer, unlinked): only its direction needs the fix.
        conn.execute(
            "UPDATE calls SET direction = CASE WHEN id = 5 THEN '' ELSE 'Outbound' END,"
            " customer_link_status = CASE WHEN id = 5 THEN 'unlinked' END"
        )
        conn.execute("ANALYZE")  # as autovacuum has long done on the legacy database in use
    with Migrator(empty_db_url) as migrator:
        migrator.apply()
    report = validate(empty_db_url, pause_ratio=0)
    assert [r.constraint for r in report.constraints if not r.validated] == []
    assert report.corrected["I1_call_direction"] == 20000
    rows = fetch_all(empty_db_url, "SELECT direction, count(*) FROM calls GROUP BY 1 ORDER BY 1")
    audit = fetch_all(
        empty_db_url,
        "SELECT before, after FROM guard.correction_audit"
        " WHERE rule_id = 'I1_call_direction' AND entity_id = 5",
    )
    assert rows == [("inbound", 1), ("outbound", 19999)]
    assert audit == [({"direction": ""}, {"direction": "inbound"})]


INLINED = {
    "guard.is_active_appointment": (
        "SELECT a.id FROM public.appointments AS a"
        " WHERE guard.is_active_appointment(a.status, a.deleted_at)",
        ("deleted_at IS NULL", "cancelled"),
    ),
    "guard.normalised_direction": (
        "SELECT c.id FROM public.calls AS c"
        " WHERE guard.normalised_direction(c.direction) NOT IN ('inbound', 'outbound')",
        ("btrim", "lower", "inbound"),
    ),
    "guard.active_appointment_for_call": (
        "SELECT c.id, h.has_active FROM public.calls AS c"
        " CROSS JOIN LATERAL guard.active_appointment_for_call(c.id, c.company_id) AS h",
        ("SubPlan", "public.appointments", "deleted_at IS NULL"),
    ),
    # and so the derivation that reads it
    "guard.call_flags_to_correct": (
        "SELECT f.id FROM guard.call_flags_to_correct(ARRAY[1, 2]::bigint[], FALSE) AS f",
        ("SubPlan", "public.appointments", "public.calls"),
    ),
    "guard.is_valid_customer_link": (
        "SELECT c.id FROM public.calls AS c WHERE NOT guard.is_valid_customer_link("
        "c.customer_id, c.customer_link_status, c.customer_linked_at, c.customer_link_method,"
        " c.customer_link_confidence)",
        ("customer_link_method IS NOT NULL", "unlinked", "anonymous"),
    ),
}


@pytest.mark.parametrize("schema", ["new", "adopted"])
@pytest.mark.parametrize("function", sorted(INLINED))
def test_the_planner_inlines_it(request: pytest.FixtureRequest, schema: str, function: str) -> None:
    """On a database the migrations built (`db_url`, a template clone) and on a legacy one they
    adopted (`legacy_db_url`)."""
    query, expected = INLINED[function]
    url = request.getfixturevalue("db_url" if schema == "new" else "legacy_db_url")
    with psycopg.connect(url) as conn:
        plan = "\n".join(
            str(row[0]) for row in conn.execute(f"EXPLAIN (VERBOSE, COSTS OFF) {query}".encode())
        )
    assert function.split(".")[1] not in plan, plan
    assert all(part in plan for part in expected), plan
