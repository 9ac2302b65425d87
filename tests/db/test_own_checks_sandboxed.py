"""A DBA's own checks are sandboxed (docs/dba.md, "Your own checks"), tried with hostile check
views generated from a small grammar, not picked by hand:

- registration refuses, in one error, every view a reporting login could read past row-level
  security or its own privileges (no security_invoker; a read of phone numbers, a whole row,
  a table without row-level security reporting may not read, a view that runs with its owner's
  rights, a SECURITY DEFINER function, a function of the DBA's own), and accepts the others; a
  reporting login bound to company 1 reads through every accepted view only company 1's rows;
  `guard db verify` reports an own check altered after registration (security_invoker turned
  off, given to a superuser or a BYPASSRLS role);
- a check view that fails at run time (raises on one row, returns a NULL an alert needs, a
  severity or detail an alert refuses, was dropped or changed under its registration) stops
  neither the others, nor the pass, nor `guard.check_call`, nor `guard check`: it is rolled
  back alone, its failure is an alert naming it and its error, and `guard check` prints one line
  for it and exits 1;
- a slow own check is bounded: check_call starts own checks only within check_call_budget_ms
  and leaves one that took longer out for a while; a pass cut by its statement timeout keeps
  what ran before the cut and reports what was cut, and so do `guard check --all`'s history
  batches, its re-check of open alerts and the sweep (which also leaves alerts another writer
  holds to its next run, without calling that a failure).
The pgTAP side (the refusal, an existing bypassing check detected, the alerts' life):
pgtests/detection/own_checks_sandboxed.sql."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.conninfo import make_conninfo

from guard.cli import main
from guard.resources import sql_dir
from guard.schema.verify import verify
from tests.support.logins import role_login
from tests.support.queries import execute, fetch_all, fetch_one
from tests.support.seeds import register_own_check

Conn = psycopg.Connection[tuple[Any, ...]]
RULE = (
    "INSERT INTO guard.rules (id, severity, description, remedy)"
    " VALUES ('own_rule', 'low', 'A rule of the DBA''s own.', 'report')"
)
REPORTING_LOGIN = "own_checks_bi"
BYPASS_ROLE = "own_checks_bypass"
ROWS_PER_COMPANY = 20
SHIPPED_CHECKS = len(list((sql_dir() / "checks").glob("*.sql")))


def _check_view(
    name: str,
    *,
    invoker: bool = True,
    source: str = "public.appointments AS a",
    detail: str = "jsonb_build_object('status', a.status)",
    where: str = "a.starts_at IS NULL",
    check_id: str | None = None,
    severity: str = "'low'::text",
    entity_type: str = "'appointment'::text",
) -> str:
    """A check view over appointments (a) keeping the nine columns of the contract."""
    options = " WITH (security_invoker = TRUE)" if invoker else ""
    return (
        f"CREATE VIEW guard.check_{name}{options} AS SELECT"
        f" {check_id or repr(name) + '::text'} AS check_id, a.company_id,"
        f" {entity_type} AS entity_type, a.id AS entity_id, a.call_id,"
        f" {severity} AS severity, a.created_at AS observed_at, {detail} AS detail,"
        " 'own_rule'::text AS rule_id"
        f" FROM {source} WHERE {where}"
    )


@pytest.fixture
def seeded(db_url: str) -> Iterator[str]:
    """Three companies with 20 calls and 20 appointments without a start time each (what the
    own checks flag), the DBA's rule, and a reporting login bound to company 1."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B'), (3, 'C')")
        conn.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, from_number, direction)"
            " SELECT g, (g - 1) %% 3 + 1, 'c' || g, '+4917012345' || g, 'inbound'"
            " FROM generate_series(1, %s) AS g",
            (3 * ROWS_PER_COMPANY,),
        )
        conn.execute(
            "INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, starts_at)"
            " SELECT g, (g - 1) %% 3 + 1, g, 'uid-' || g, NULL FROM generate_series(1, %s) AS g",
            (3 * ROWS_PER_COMPANY,),
        )
        conn.execute(RULE)
        # check_call's budget for own checks out of reach, so that a loaded machine running
        # Booking Guard's checks slowly skips no own check; the budget's own test sets it back
        conn.execute("UPDATE guard.settings SET value = '60000' WHERE key = 'check_call_budget_ms'")
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (BYPASS_ROLE,)).fetchone():
            conn.execute(f'CREATE ROLE "{BYPASS_ROLE}" NOLOGIN BYPASSRLS')
        conn.execute(f'GRANT CREATE, USAGE ON SCHEMA guard TO "{BYPASS_ROLE}"')
        conn.execute(f'GRANT SELECT ON public.appointments TO "{BYPASS_ROLE}"')
    role_login(db_url, REPORTING_LOGIN, "guard_reporting")
    execute(db_url, f"SELECT guard.tenant_grant('{REPORTING_LOGIN}', 1)")
    yield db_url


def test_detection_knows_which_checks_it_ships(db_url: str) -> None:
    """guard.shipped_check_views() (Booking Guard's checks run first and without check_call's
    budget) lists exactly the views under sql/checks/ of sql/manifest.txt."""
    manifest = (Path(__file__).resolve().parents[2] / "sql" / "manifest.txt").read_text()
    files = {
        line.removeprefix("checks/guard.").removesuffix(".sql")
        for line in manifest.splitlines()
        if line.startswith("checks/")
    }
    [(listed,)] = fetch_all(db_url, "SELECT guard.shipped_check_views()")
    views = fetch_all(db_url, "SELECT check_view FROM guard.checks WHERE check_view IS NOT NULL")
    assert sorted(listed) == sorted(files)
    assert {view for (view,) in views} == files, "every shipped check's view, and no other"


# -- registration refuses what would bypass row-level security ----------------------------------


@dataclass(frozen=True)
class Shape:
    """One generated check view: how it is built, and whether registration must accept it."""

    name: str
    statements: tuple[str, ...]
    safe: bool
    why: str  # a word of the refusal's reason


# What a view reads (and the objects it needs first), and whether that is safe for reporting.
_SOURCES: dict[str, tuple[tuple[str, ...], dict[str, str], bool, str]] = {
    "appointments": ((), {}, True, ""),
    "phone_numbers": (
        (),
        {
            "source": "public.appointments AS a JOIN public.calls AS c ON c.id = a.call_id",
            "detail": "jsonb_build_object('number', c.from_number)",
        },
        False,
        "from_number",
    ),
    "whole_call_row": (
        (),
        {
            "source": "public.appointments AS a JOIN public.calls AS c ON c.id = a.call_id",
            "detail": "to_jsonb(c)",
        },
        False,
        "from_number",
    ),
    "table_without_rls": (
        (),
        {
            "source": "public.appointments AS a LEFT JOIN guard.breaker_state AS b ON FALSE",
            "detail": "jsonb_build_object('breaker', b.key)",
        },
        False,
        "breaker_state",
    ),
    "customers": (
        (),
        {
            "source": "public.appointments AS a LEFT JOIN public.customers AS u"
            " ON u.id = a.customer_id",
            "detail": "jsonb_build_object('customer', u.phone)",
        },
        False,
        "customers",
    ),
    "owner_rights_view": (
        ("CREATE VIEW public.{name}_inner AS SELECT * FROM public.appointments",),
        {"source": "public.{name}_inner AS a"},
        False,
        "owner's rights",
    ),
    "invoker_view": (
        (
            "CREATE VIEW public.{name}_inner WITH (security_invoker = TRUE) AS"
            " SELECT * FROM public.appointments",
            "GRANT SELECT ON public.{name}_inner TO guard_reporting",
        ),
        {"source": "public.{name}_inner AS a"},
        True,
        "",
    ),
    "definer_function": (
        (
            "CREATE FUNCTION public.{name}_companies() RETURNS SETOF bigint LANGUAGE sql"
            " SECURITY DEFINER AS 'SELECT id FROM public.companies'",
        ),
        {"where": "a.starts_at IS NULL AND a.company_id IN (SELECT public.{name}_companies())"},
        False,
        "SECURITY DEFINER",
    ),
    "own_function": (
        (
            "CREATE FUNCTION public.{name}_number(bigint) RETURNS text LANGUAGE sql STABLE"
            " AS 'SELECT from_number FROM public.calls WHERE id = $1'",
        ),
        {"detail": "jsonb_build_object('n', public.{name}_number(a.call_id))"},
        False,
        "function",
    ),
}


def _shapes() -> list[Shape]:
    """Every source read with and without security_invoker, each created by a superuser or by a
    BYPASSRLS role (registration gives the view to the owner role either way)."""
    shapes = []
    for number, (source, invoker, creator) in enumerate(
        itertools.product(_SOURCES, (True, False), ("superuser", "bypassrls"))
    ):
        prepare, parts, readable, why = _SOURCES[source]
        name = f"shape_{number}_{source}"[:40]
        view = _check_view(
            name, invoker=invoker, **{k: v.format(name=name) for k, v in parts.items()}
        )
        statements = [p.format(name=name) for p in prepare]
        if creator == "bypassrls":
            statements += [f'SET ROLE "{BYPASS_ROLE}"', view, "RESET ROLE"]
        else:
            statements.append(view)
        shapes.append(
            Shape(
                name,
                tuple(statements),
                invoker and readable,
                why if invoker else "security_invoker",
            )
        )
    return shapes


def test_registration_refuses_every_view_that_would_bypass_row_level_security(
    seeded: str,
) -> None:
    shapes = _shapes()
    refused: dict[str, str] = {}
    with psycopg.connect(seeded, autocommit=True) as conn:
        for shape in shapes:
            for statement in shape.statements:
                conn.execute(statement)
            try:
                register_own_check(conn, shape.name)
            except psycopg.errors.InvalidObjectDefinition as error:
                refused[shape.name] = error.diag.message_primary or ""
        registered = {
            str(row[0])
            for row in conn.execute(
                "SELECT id FROM guard.checks WHERE rule_id = 'own_rule'"
            ).fetchall()
        }
        conn.execute("SELECT guard.apply_grants()")  # what the next apply does: views granted

    wrong = [
        f"{shape.name}: {'refused' if shape.name in refused else 'accepted'}"
        for shape in shapes
        if (shape.name in registered) != shape.safe or (shape.name in refused) == shape.safe
    ]
    assert wrong == [], "registration decided wrongly:\n" + "\n".join(wrong)
    unexplained = [
        f"{name}: {refused[name]}"
        for name in refused
        if next(s.why for s in shapes if s.name == name) not in refused[name]
    ]
    assert unexplained == [], "a refusal does not say why:\n" + "\n".join(unexplained)

    # The reporting login bound to company 1 reads, through every accepted view, only its rows.
    leaked: dict[str, int] = {}
    with psycopg.connect(make_conninfo(seeded, user=REPORTING_LOGIN), autocommit=True) as bi:
        for name in sorted(registered):
            rows = bi.execute(f"SELECT company_id FROM guard.check_{name}").fetchall()
            assert rows, f"{name}: the reporting login sees its own company's rows"
            leaked[name] = sum(1 for (company,) in rows if company != 1)
    assert leaked and all(count == 0 for count in leaked.values()), leaked
    print(
        f"\n{len(shapes)} generated check views: {len(registered)} accepted,"
        f" {len(refused)} refused; rows of companies 2 and 3 read by a login bound to company 1:"
        f" {sum(leaked.values())}"
    )


def test_verify_reports_an_own_check_altered_to_bypass_row_level_security(seeded: str) -> None:
    alterations = {
        "invoker_off": "ALTER VIEW guard.check_{name} SET (security_invoker = FALSE)",
        "to_bypassrls": f'ALTER VIEW guard.check_{{name}} OWNER TO "{BYPASS_ROLE}"',
        "to_superuser": "ALTER VIEW guard.check_{name} OWNER TO CURRENT_USER",
    }
    with psycopg.connect(seeded, autocommit=True) as conn:
        for kind in alterations:
            conn.execute(_check_view(f"altered_{kind}"))
            register_own_check(conn, f"altered_{kind}")
        assert [d for d in verify(seeded) if d.kind == "unsafe"] == []
        for kind, statement in alterations.items():
            conn.execute(statement.format(name=f"altered_{kind}"))
        # registered before registration refused such views: a row written as register_check
        # wrote it then
        conn.execute(_check_view("registered_long_ago", invoker=False))
        conn.execute(
            "INSERT INTO guard.checks (id, rule_id, severity, description, remedy, check_view)"
            " VALUES ('registered_long_ago', 'own_rule', 'low', 'x', 'report',"
            " 'check_registered_long_ago')"
        )
    unsafe = {d.subject: d.detail for d in verify(seeded) if d.kind == "unsafe"}
    assert set(unsafe) == {
        *(f"own check altered_{k} (view guard.check_altered_{k})" for k in alterations),
        "own check registered_long_ago (view guard.check_registered_long_ago)",
    }, unsafe
    reasons = {subject.split()[2]: detail for subject, detail in unsafe.items()}
    assert "security_invoker" in reasons["altered_invoker_off"]
    assert "BYPASSRLS" in reasons["altered_to_bypassrls"]
    assert "superuser" in reasons["altered_to_superuser"]
    result = CliRunner().invoke(main, ["--database-url", seeded, "db", "verify"])
    assert result.exit_code == 1 and "unsafe" in result.output


# -- a failing own check stops nothing -----------------------------------------------------------

# Views that fail at run time, each on one row (appointment 7, of call 7) or on every row.
_FAILING: dict[str, dict[str, Any]] = {
    "raises_on_one_row": {"detail": "jsonb_build_object('x', 1 / (a.id - 7))"},
    "bad_cast_on_one_row": {
        "detail": "jsonb_build_object('x', (CASE WHEN a.id = 7 THEN 'x' ELSE '1' END)::integer)"
    },
    "null_check_id": {"check_id": "CASE WHEN a.id <> 7 THEN 'null_check_id' END::text"},
    "null_entity_type": {"entity_type": "CASE WHEN a.id <> 7 THEN 'appointment' END::text"},
    "severity_an_alert_refuses": {"severity": "'urgent'::text"},
    "detail_not_an_object": {"detail": "jsonb_build_array(a.status)"},
}


def _add_failing_checks(conn: Conn) -> list[str]:
    names = []
    for name, parts in _FAILING.items():
        conn.execute(_check_view(name, **parts))
        register_own_check(conn, name)
        names.append(name)
    # registered, then dropped, or replaced with another column type, behind its registration
    conn.execute(_check_view("dropped_later"))
    register_own_check(conn, "dropped_later")
    conn.execute("DROP VIEW guard.check_dropped_later")
    conn.execute(_check_view("changed_later"))
    register_own_check(conn, "changed_later")
    conn.execute("DROP VIEW guard.check_changed_later")
    conn.execute(
        _check_view("changed_later").replace("a.id AS entity_id", "a.id::text || 'x' AS entity_id")
    )
    return [*names, "dropped_later", "changed_later"]


def test_a_failing_own_check_stops_neither_the_others_nor_the_pass_nor_check_call(
    seeded: str,
) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute(_check_view("good"))
        register_own_check(conn, "good")
        failing = _add_failing_checks(conn)
        _measured(conn, "good", *failing)
        # a value outside the known set, which the shipped check unknown_value finds
        conn.execute("UPDATE appointments SET status = 'canceled' WHERE id = 7")

        # check_call, as the application calls it: never raises, every check has its row
        rows = {r[0]: r for r in conn.execute("SELECT * FROM guard.check_call(7)").fetchall()}
        assert len(rows) == SHIPPED_CHECKS + 1 + len(failing)
        assert rows["unknown_value"][2:4] == (1, 1), "a shipped check ran and opened"
        assert rows["good"][2] == 1, "the DBA's good check ran"
        hit_on_call_7 = {name for name in failing if rows[name][2] is None}
        assert hit_on_call_7 == set(failing), {n: rows[n] for n in failing}
        other = conn.execute("SELECT * FROM guard.check_call(8)").fetchall()
        assert {r[0] for r in other if r[2] is None} == {
            "severity_an_alert_refuses",
            "detail_not_an_object",
            "dropped_later",
            "changed_later",
        }, "a view that fails on one row fails on that row's call only"

        # the windowed pass: the others' alerts are kept, each failure named with its error
        status = {
            r[0]: (r[2], r[6], r[7])
            for r in conn.execute(
                "SELECT * FROM guard.run_checks(now() - interval '1 hour', NULL)"
            ).fetchall()
        }
        assert {name: status[name][1] for name in failing} == dict.fromkeys(failing, "failed")
        assert status["good"] == (3 * ROWS_PER_COMPANY, "ok", None)
        assert all(s[1] == "ok" for n, s in status.items() if n not in failing)
        alerts = {
            str(check): str(error)
            for check, error in conn.execute(
                "SELECT details ->> 'check', details ->> 'error' FROM guard.alerts"
                " WHERE check_id = 'check_failed' AND status = 'open'"
            ).fetchall()
        }
        assert set(alerts) == set(failing), alerts
        assert "division by zero" in alerts["raises_on_one_row"]
        assert "does not exist" in alerts["dropped_later"]
        conn.execute("SELECT * FROM guard.detect()")
        [(occurrences,)] = conn.execute(
            "SELECT occurrences FROM guard.alerts WHERE fingerprint ="
            " 'check_failed:check:raises_on_one_row' AND status = 'open'"
        ).fetchall()
        assert occurrences >= 2, "a repeat bumps the one open alert (deduplicated)"

    result = CliRunner().invoke(main, ["--database-url", seeded, "check", "--json"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("guard: error:")]
    assert sorted(line.split()[3] for line in lines) == sorted(failing), result.stderr
    assert "Traceback" not in result.output
    found = {row["check"]: row for row in json.loads(result.stdout)}
    assert found["good"]["status"] == "ok" and found["good"]["offending"] == 3 * ROWS_PER_COMPANY
    assert found["raises_on_one_row"]["status"] == "failed"

    # fixed and registered again: check_call runs it, and its failure alert is closed
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute(
            _check_view("raises_on_one_row").replace("CREATE VIEW", "CREATE OR REPLACE VIEW")
        )
        register_own_check(conn, "raises_on_one_row")
        closed = conn.execute(
            "SELECT resolution FROM guard.alerts"
            " WHERE fingerprint = 'check_failed:check:raises_on_one_row'"
        ).fetchall()
        assert closed == [("manual",)]
        rows = {r[0]: r for r in conn.execute("SELECT * FROM guard.check_call(7)").fetchall()}
        assert rows["raises_on_one_row"][2] == 1


def test_guard_check_call_names_the_failed_check(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute(_check_view("raises_on_one_row", **_FAILING["raises_on_one_row"]))
        register_own_check(conn, "raises_on_one_row")
        _measured(conn, "raises_on_one_row")
    result = CliRunner().invoke(main, ["--database-url", seeded, "check", "--call", "7"])
    assert result.exit_code == 1
    assert result.stderr == "guard: error: check raises_on_one_row failed: division by zero\n"
    assert "unknown_value" in result.stdout


# -- a slow own check is bounded -----------------------------------------------------------------


def _slow_view(name: str, seconds: float) -> str:
    return _check_view(name, where=f"a.starts_at IS NULL AND pg_sleep({seconds}) IS NOT NULL")


def _register_slow(conn: Conn, name: str, seconds: float) -> None:
    """A check registered fast and made slow behind its registration (register_check refuses
    pg_sleep, a VOLATILE function, outright): what run time must bound all the same."""
    conn.execute(_check_view(name))
    register_own_check(conn, name)
    conn.execute(_slow_view(name, seconds).replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))


def _measured(conn: Conn, *names: str) -> None:
    """As a detection pass leaves them: read through within check_call's budget, so that
    check_call runs them (it runs no own check no pass has read)."""
    for name in names:
        conn.execute(
            "INSERT INTO guard.detection_runs (pass_started_at, check_id, rule_id, duration_ms,"
            " offending, opened, repeated, resolved) VALUES (now(), %s, 'own_rule', 1, 0, 0, 0, 0)",
            (name,),
        )


def _timed(conn: Conn, query: str, *params: Any) -> tuple[float, list[tuple[Any, ...]]]:
    started = time.monotonic()
    rows = conn.execute(query, params).fetchall()
    return time.monotonic() - started, rows


# Serial: the 200 ms budget must cover the shipped checks' time (about 100 ms on a loaded
# machine, more at times), and the calls are timed against the baseline.
@pytest.mark.serial
def test_a_slow_own_check_is_bounded_in_check_call(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("UPDATE guard.settings SET value = '200' WHERE key = 'check_call_budget_ms'")
        # the application's baseline: check_call with Booking Guard's checks only
        baseline, _ = _timed(conn, "SELECT * FROM guard.check_call(7)")
        _register_slow(conn, "a_slow", 1.0)
        conn.execute(_check_view("b_after"))
        register_own_check(conn, "b_after")
        _measured(conn, "a_slow", "b_after")

        first, rows = _timed(conn, "SELECT * FROM guard.run_checks(NULL, 7)")
        by_check = {r[0]: r for r in rows}
        assert by_check["a_slow"][6] == "ok", "a check that has started is not interrupted"
        assert by_check["b_after"][6] == "skipped", "the budget was used up"
        assert "budget" in by_check["b_after"][7]
        assert first < baseline + 1.0 + 0.5, (first, baseline)
        [(message,)] = conn.execute(
            "SELECT message FROM guard.alerts"
            " WHERE fingerprint = 'check_over_budget:check:a_slow' AND status = 'open'"
        ).fetchall()
        assert "over its budget of 200 ms" in message

        # left out while its alert is fresh: check_call costs what it costs without it
        later, rows = _timed(conn, "SELECT * FROM guard.check_call(8)")
        by_check = {r[0]: r for r in rows}
        assert by_check["a_slow"][2] is None and by_check["b_after"][2] == 1
        assert later < baseline + 0.2, (later, baseline)

        # an application's own statement_timeout cuts it, and check_call still returns
        conn.execute(
            "UPDATE guard.alerts SET last_seen_at = now() - interval '2 hours'"
            " WHERE fingerprint = 'check_over_budget:check:a_slow'"
        )
        conn.execute("SET statement_timeout = '400ms'")
        cut, rows = _timed(conn, "SELECT * FROM guard.run_checks(NULL, 9)")
        conn.execute("RESET statement_timeout")
        by_check = {r[0]: r for r in rows}
        assert by_check["a_slow"][6] == "cut" and by_check["b_after"][6] == "skipped"
        assert all(r[6] == "ok" for n, r in by_check.items() if n not in ("a_slow", "b_after"))
        assert cut < 1.0
    print(
        f"\ncheck_call with a 1 s own check: baseline {baseline * 1000:.0f} ms, first call"
        f" {first * 1000:.0f} ms, later calls {later * 1000:.0f} ms, cut by a 400 ms timeout"
        f" {cut * 1000:.0f} ms"
    )


@pytest.mark.serial
def test_a_pass_cut_by_its_timeout_keeps_the_rest_and_says_what_was_cut(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("UPDATE appointments SET status = 'canceled' WHERE id IN (1, 2)")
        conn.execute(
            "UPDATE guard.settings SET value = '1500' WHERE key = 'detection_statement_timeout_ms'"
        )
        # 0.1 s a row in the window: 6 s for its 60 rows, longer than the pass may take
        _register_slow(conn, "a_slow", 0.1)
        conn.execute(_check_view("b_fine"))
        register_own_check(conn, "b_fine")

    outcomes = []
    for _ in range(2):
        started = time.monotonic()
        result = CliRunner().invoke(main, ["--database-url", seeded, "check", "--json"])
        elapsed = time.monotonic() - started
        found = {row["check"]: row for row in json.loads(result.stdout)}
        outcomes.append((elapsed, found, result.stderr, result.exit_code))

    (first_s, first, first_err, code), (second_s, second, _, _) = outcomes
    assert code == 1
    assert first["a_slow"]["status"] == "cut" and first["b_fine"]["status"] == "skipped"
    assert "guard: error: check a_slow was cut: cut after" in first_err
    assert first["unknown_value"] == {
        **first["unknown_value"],
        "offending": 2,
        "opened": 2,
        "status": "ok",
    }, "the shipped checks ran before the cut"
    assert second["b_fine"]["status"] == "ok", "the check cut last time runs after the others"
    assert second["a_slow"]["status"] == "cut"
    kept = fetch_one(
        seeded,
        "SELECT count(*) FROM guard.alerts WHERE check_id = 'unknown_value' AND status = 'open'",
    )
    passes = fetch_one(
        seeded,
        "SELECT count(DISTINCT pass_started_at) FROM guard.detection_runs"
        " WHERE check_id = 'unknown_value'",
    )
    [(message, details)] = fetch_all(
        seeded,
        "SELECT message, details FROM guard.alerts WHERE fingerprint ="
        " 'check_failed:check:a_slow' AND status = 'open'",
    )
    assert kept == (2,) and passes == (2,), "each cut pass kept what ran before the cut"
    assert "statement timeout (1500ms)" in message and details["status"] == "cut"
    assert first_s < 5 and second_s < 5
    print(
        f"\npass with an own check of 6 s under a 1.5 s timeout: {first_s:.1f} s and"
        f" {second_s:.1f} s, the shipped checks' work kept each time"
    )


# -- `guard check --all`: its batches and its re-check of open alerts, cut or failing ------------

# A statement timeout of 1 s cuts a check whose every row sleeps SLOW_ROW_S: the cut statement
# returns within CUT_WITHIN_S (a loaded machine adds its own delay to the second), and a cut that
# waited for the row would take SLOW_ROW_S, twice as long as the bound.
SLOW_ROW_S = 10.0
CUT_WITHIN_S = SLOW_ROW_S / 2

HISTORY = "now() - interval '1 day', now() + interval '1 second'"


def _open_alert(conn: Conn, check: str, appointment: int) -> int:
    [(alert,)] = conn.execute(
        "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id,"
        " severity, message) VALUES (%s || ':appointment:' || %s, %s, 1, 'appointment', %s,"
        " 'low', 'x') RETURNING id",
        (check, appointment, check, appointment),
    ).fetchall()
    return int(alert)


def _check_failed(conn: Conn, check: str) -> tuple[str, str, str] | None:
    row = conn.execute(
        "SELECT message, details ->> 'in', details ->> 'status' FROM guard.alerts"
        " WHERE fingerprint = 'check_failed:check:' || %s AND status = 'open'",
        (check,),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]), str(row[2]))


def test_a_history_batch_cut_by_its_timeout_keeps_the_rest(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        _register_slow(conn, "a_slow", SLOW_ROW_S)
        conn.execute(_check_view("b_after"))
        register_own_check(conn, "b_after")
        conn.execute("SET statement_timeout = '1s'")
        elapsed, rows = _timed(
            conn, f"SELECT check_id, status, error FROM guard.run_checks_between({HISTORY})"
        )
        conn.execute("RESET statement_timeout")
    by_check = {str(r[0]): r for r in rows}
    assert by_check["a_slow"][1] == "cut" and by_check["b_after"][1] == "skipped"
    assert "statement timeout (1s)" in str(by_check["b_after"][2])
    assert all(r[1] == "ok" for n, r in by_check.items() if n not in ("a_slow", "b_after"))
    assert elapsed < CUT_WITHIN_S, "cut at the timeout, not after the slow check's row"
    with psycopg.connect(seeded) as conn:
        failed = _check_failed(conn, "a_slow")
    assert failed is not None and failed[1:] == ("history", "cut")
    assert "a batch of the whole history" in failed[0]


def test_a_recheck_cut_by_its_timeout_resolves_nothing_after_the_cut(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        _register_slow(conn, "a_slow", SLOW_ROW_S)
        conn.execute(_check_view("b_after"))
        register_own_check(conn, "b_after")
        first = _open_alert(conn, "a_slow", 1)
        # appointment 2 has a start now: b_after's alert about it would be resolved as fixed
        conn.execute("UPDATE appointments SET starts_at = now() + interval '1 day' WHERE id = 2")
        last = _open_alert(conn, "b_after", 2)
        conn.execute("SET statement_timeout = '1s'")
        elapsed, rows = _timed(
            conn,
            "SELECT check_id, rechecked, resolved FROM guard.recheck_alerts_between(%s, %s)",
            first - 1,
            last,
        )
        conn.execute("RESET statement_timeout")
        by_check = {str(r[0]): r[1:] for r in rows}
        assert by_check["a_slow"] == (1, 0) and by_check["b_after"] == (1, 0)
        assert elapsed < CUT_WITHIN_S
        failed = _check_failed(conn, "a_slow")
        assert failed is not None and failed[1:] == ("history", "cut")
        assert "re-checking open alerts" in failed[0]
        [(status,)] = conn.execute("SELECT status FROM guard.alerts WHERE id = %s", (last,))
        assert status == "open", "the checks after the cut re-check nothing"

        # without a timeout the same batch resolves b_after's alert
        rows = conn.execute(
            "SELECT check_id, rechecked, resolved FROM guard.recheck_alerts_between(%s, %s)"
            " WHERE check_id = 'b_after'",
            (first, last),
        ).fetchall()
        assert rows == [("b_after", 1, 1)]


def test_a_recheck_runs_no_check_without_an_open_alert_in_its_range(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute(_check_view("dropped_later"))
        register_own_check(conn, "dropped_later")
        conn.execute("DROP VIEW guard.check_dropped_later")
        conn.execute(_check_view("b_after"))
        register_own_check(conn, "b_after")
        alert = _open_alert(conn, "b_after", 3)
        rows = conn.execute(
            "SELECT check_id, rechecked, resolved FROM guard.recheck_alerts_between(%s, %s)"
            " WHERE check_id IN ('dropped_later', 'b_after') ORDER BY check_id",
            (alert - 1, alert),
        ).fetchall()
        assert rows == [("b_after", 1, 0), ("dropped_later", 0, 0)]
        assert _check_failed(conn, "dropped_later") is None, "a check not run cannot fail"

        # with an open alert of its own in the range it runs, fails alone, and says so
        own = _open_alert(conn, "dropped_later", 4)
        conn.execute("SELECT * FROM guard.recheck_alerts_between(%s, %s)", (alert - 1, own))
        failed = _check_failed(conn, "dropped_later")
        assert failed is not None and failed[1:] == ("history", "failed")
        assert "does not exist" in failed[0]

        # a disabled check re-checks nothing, even an alert about a row fixed since
        conn.execute("UPDATE guard.checks SET enabled = FALSE WHERE id = 'b_after'")
        conn.execute("UPDATE appointments SET starts_at = now() + interval '1 day' WHERE id = 3")
        rows = conn.execute(
            "SELECT check_id FROM guard.recheck_alerts_between(%s, %s)", (alert - 1, alert)
        ).fetchall()
        assert ("b_after",) not in rows and rows, rows
        [(status,)] = conn.execute("SELECT status FROM guard.alerts WHERE id = %s", (alert,))
        assert status == "open"


# -- the sweep: waiting on a detection pass's alerts, or cut by its timeout -----------------------


def _sweep(conn: Conn) -> dict[str, tuple[Any, ...]]:
    rows = conn.execute("SELECT check_id, offending, opened, repeated FROM guard.sweep_checks()")
    return {str(r[0]): r[1:] for r in rows.fetchall()}


def test_a_sweep_leaves_alerts_another_writer_holds_to_its_next_run(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute(_check_view("b_after"))
        register_own_check(conn, "b_after")
        conn.execute("UPDATE guard.checks SET sweep = TRUE WHERE id = 'b_after'")
        conn.execute(
            "UPDATE guard.settings SET value = '200' WHERE key = 'check_call_lock_timeout_ms'"
        )
        with psycopg.connect(seeded) as writer:
            # another writer (a detection pass) opening the same alert, not committed yet
            _open_alert(writer, "b_after", 1)
            started = time.monotonic()
            swept = _sweep(conn)
            waited = time.monotonic() - started
            writer.rollback()
        assert swept["b_after"] == (3 * ROWS_PER_COMPANY, 0, 0), "left to the next run"
        assert _check_failed(conn, "b_after") is None, "waiting is not a failure"
        assert waited < 2.0, "it waited check_call_lock_timeout_ms, not for the writer"
        assert _sweep(conn)["b_after"] == (3 * ROWS_PER_COMPANY, 3 * ROWS_PER_COMPANY, 0)


def test_a_sweep_cut_by_its_timeout_keeps_the_rest_and_says_what_was_cut(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        _register_slow(conn, "a_slow", SLOW_ROW_S)
        conn.execute("UPDATE guard.checks SET sweep = TRUE WHERE id = 'a_slow'")
        conn.execute("SET statement_timeout = '1s'")
        elapsed, rows = _timed(conn, "SELECT check_id, offending FROM guard.sweep_checks()")
        conn.execute("RESET statement_timeout")
        # a_slow is cut, unknown_value (after it in id order) skipped: neither has a count
        assert dict(rows) == {"a_slow": None, "unknown_value": None}
        assert elapsed < CUT_WITHIN_S
        failed = _check_failed(conn, "a_slow")
        assert failed is not None and failed[1:] == ("sweep", "cut")
        assert "a_slow was cut in the sweep" in failed[0]
