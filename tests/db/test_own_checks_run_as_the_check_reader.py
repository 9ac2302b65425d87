"""A DBA's own check runs as the check reader role (guard.read_own_check), whoever starts the pass,
with real commits (docs/dba.md, "Your own checks"):

- a superuser's `guard check` over a check view altered behind its registration into
  `query_to_xml` reads no other tenant's customers into alerts a bound reporting login reads;
- `guard.check_call` from the application's session leaves that session as it was (settings, the
  company pin, advisory locks) when an own check tries to change it, and the next calls work;
- an own check no pass has read within the budget stalls no `check_call`, eight at once included;
- a check view register_check refused, or nobody registered, is not granted to reporting by
  `guard db apply`, and `guard db verify` calls one a reader holds `unsafe`;
- generated: every function the check reader may execute, fed NULLs and hostile values from a
  check view, changes no row, no setting and leaves no lock.
The pgTAP side: pgtests/detection/own_checks_run_as_the_check_reader.sql."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.conninfo import make_conninfo

from guard.cli import main
from guard.schema.verify import verify
from tests.support.logins import role_login
from tests.support.queries import execute, fetch_all
from tests.support.seeds import register_own_check

Conn = psycopg.Connection[tuple[Any, ...]]
REPORTING_LOGIN = "reader_checks_bi"
APP_LOGIN = "reader_checks_app"


def _check_view(name: str, detail: str, where: str = "a.starts_at IS NULL") -> str:
    return (
        f"CREATE OR REPLACE VIEW guard.check_{name} WITH (security_invoker = TRUE) AS SELECT"
        f" '{name}'::text AS check_id, a.company_id, 'appointment'::text AS entity_type,"
        " a.id AS entity_id, a.call_id, 'low'::text AS severity, a.created_at AS observed_at,"
        f" jsonb_build_object('x', ({detail})::text) AS detail, 'own_rule'::text AS rule_id"
        f" FROM public.appointments AS a WHERE {where}"
    )


@pytest.fixture
def seeded(db_url: str) -> Iterator[str]:
    """Two companies, each with a customer, a call and an appointment without a start time; a
    reporting login bound to company 1; an application login (guard_app)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B')")
        conn.execute(
            "INSERT INTO customers (id, company_id, name, email) VALUES"
            " (1, 1, 'Ann One', 'ann@one.example'), (2, 2, 'Bob Two', 'bob@two.example')"
        )
        conn.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, direction)"
            " VALUES (1, 1, 'c1', 'inbound'), (2, 2, 'c2', 'inbound')"
        )
        conn.execute(
            "INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, starts_at)"
            " VALUES (1, 1, 1, 'u1', NULL), (2, 2, 2, 'u2', NULL)"
        )
        conn.execute("INSERT INTO services (id, company_id, name) VALUES (1, 1, 'Cut')")
        conn.execute(
            "INSERT INTO guard.rules (id, severity, description, remedy)"
            " VALUES ('own_rule', 'low', 'A rule of the DBA''s own.', 'report')"
        )
    for login, role in ((REPORTING_LOGIN, "guard_reporting"), (APP_LOGIN, "guard_app")):
        role_login(db_url, login, role)
    execute(db_url, f"SELECT guard.tenant_grant('{REPORTING_LOGIN}', 1)")
    yield db_url


def test_a_superuser_pass_reads_no_other_tenant_through_an_altered_check(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute(_check_view("leaky", "a.status"))
        register_own_check(conn, "leaky")
        # behind its registration: every customer of every company into each alert's detail
        conn.execute(
            _check_view(
                "leaky",
                "query_to_xml('SELECT name, email FROM public.customers', TRUE, TRUE, '')",
            )
        )
    result = CliRunner().invoke(main, ["--database-url", seeded, "check"])
    assert result.exit_code == 1, result.output
    assert "check leaky failed: permission denied for table customers" in result.stderr
    with psycopg.connect(seeded) as conn:
        everything = conn.execute("SELECT string_agg(details::text, ' ') FROM guard.alerts")
        row = everything.fetchone()
    assert row is not None and "bob@two.example" not in str(row[0])
    with psycopg.connect(make_conninfo(seeded, user=REPORTING_LOGIN)) as conn:
        report = conn.execute("SELECT string_agg(t::text, ' ') FROM guard.alerts_report AS t")
        seen = report.fetchone()
    assert seen is not None and "Bob" not in str(seen[0]) and "bob@" not in str(seen[0])


def test_check_call_leaves_the_application_session_as_it_was(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute(_check_view("meddling", "a.status"))
        register_own_check(conn, "meddling")
        # a pass reads it within check_call's budget, so check_call runs it from now on
        conn.execute("SELECT * FROM guard.detect()")
        conn.execute(
            _check_view(
                "meddling",
                "set_config('statement_timeout', '0', FALSE)"
                " || set_config('search_path', 'pg_temp, public', FALSE)"
                " || set_config('booking_guard.company_id', '2', FALSE)"
                " || pg_advisory_lock(4242)::text",
            )
        )
    with psycopg.connect(make_conninfo(seeded, user=APP_LOGIN), autocommit=True) as app:
        notices: list[str] = []
        app.add_notice_handler(lambda notice: notices.append(str(notice.message_primary)))
        app.execute("SET statement_timeout = '5s'")
        before = app.execute(
            "SELECT current_setting('statement_timeout'), current_setting('search_path')"
        ).fetchone()
        rows = {r[0]: r for r in app.execute("SELECT * FROM guard.check_call(1)").fetchall()}
        assert rows["meddling"][2] == 1, "the own check ran"
        after = app.execute(
            "SELECT current_setting('statement_timeout'), current_setting('search_path'),"
            " coalesce(current_setting('booking_guard.company_id', TRUE), ''),"
            " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            " AND pid = pg_backend_pid())"
        ).fetchone()
        assert after == (*before, "", 0)  # type: ignore[misc]
        assert notices == [], "the locks it took (one per row) are released without a warning"
        # and the next calls on that connection work
        assert len(app.execute("SELECT * FROM guard.check_call(2)").fetchall()) > 1
        with app.transaction():
            app.execute("SELECT guard.begin_booking_attempt(1, 1, 'reader-key-1')")


@pytest.mark.slow
def test_an_own_check_no_pass_has_read_stalls_no_check_call(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute(_check_view("slow", "a.status"))
        register_own_check(conn, "slow")
        conn.execute(
            _check_view("slow", "a.status", "a.starts_at IS NULL AND pg_sleep(3) IS NOT NULL")
        )
    took: list[float] = []
    skipped: list[str] = []

    def one_call(call: int) -> None:
        with psycopg.connect(make_conninfo(seeded, user=APP_LOGIN), autocommit=True) as app:
            started = time.monotonic()
            rows = app.execute("SELECT * FROM guard.check_call(%s)", (call,)).fetchall()
            took.append(time.monotonic() - started)
            skipped.extend(str(r[0]) for r in rows if r[0] == "slow" and r[2] is None)

    threads = [threading.Thread(target=one_call, args=(1 + n % 2,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(took) == 8 and max(took) < 1.5, took
    assert len(skipped) == 8, "check_call left it out every time"
    [(status, error)] = fetch_all(
        seeded, "SELECT status, error FROM guard.run_checks(NULL, 1) WHERE check_id = 'slow'"
    )
    assert status == "skipped" and "not yet read by a detection pass" in str(error)
    print(f"\n8 check_calls at once beside a 3 s own check no pass has read: max {max(took):.2f} s")


def test_a_refused_or_unregistered_check_view_is_never_granted(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute(
            _check_view("refused", "table_to_xml('guard.tenant_bindings', TRUE, TRUE, '')")
        )
        with pytest.raises(psycopg.errors.InvalidObjectDefinition, match="table_to_xml"):
            register_own_check(conn, "refused")
        # as a release that granted every guard.check_* view left it
        conn.execute("GRANT SELECT ON guard.check_refused TO guard_reporting")
        unsafe = [(d.kind, d.subject) for d in verify(seeded) if d.kind == "unsafe"]
        assert unsafe == [("unsafe", "view guard.check_refused")]
        conn.execute("SELECT guard.apply_grants()")
        assert conn.execute(
            "SELECT has_table_privilege('guard_reporting', 'guard.check_refused', 'SELECT')"
        ).fetchone() == (False,)
        assert [d for d in verify(seeded) if d.kind == "unsafe"] == []


# -- generated: every function the check reader may execute, from a check view ------------------

_HOSTILE = ("NULL", "'-1'", "'9223372036854775807'", "'2'", "'x''); DROP TABLE calls; --'")


def _snapshot(conn: Conn) -> tuple[Any, ...]:
    """Every row of every table in guard and public, the session's settings, its locks and large
    objects: what a check must leave as it found it."""
    tables = [
        str(t)
        for (t,) in conn.execute(
            "SELECT c.oid::regclass::text FROM pg_class AS c WHERE c.relkind IN ('r', 'p')"
            " AND c.relnamespace IN ('guard'::regnamespace, 'public'::regnamespace) ORDER BY 1"
        )
    ]
    rows = tuple(
        conn.execute(
            f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {t} AS t"
        ).fetchone()
        for t in tables
    )
    session = conn.execute(
        "SELECT current_setting('statement_timeout'), current_setting('search_path'),"
        " coalesce(current_setting('booking_guard.company_id', TRUE), ''),"
        " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),"
        " (SELECT count(*) FROM pg_largeobject_metadata)"
    ).fetchone()
    return rows, session


def test_every_function_the_check_reader_may_execute_changes_nothing(seeded: str) -> None:
    functions = fetch_all(
        seeded,
        "SELECT p.oid::regprocedure::text, p.prosecdef,"
        " ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) AS t)"
        " FROM pg_proc AS p"
        " WHERE p.pronamespace IN ('guard'::regnamespace, 'public'::regnamespace)"
        " AND has_function_privilege(guard.check_reader(), p.oid, 'EXECUTE')"
        " AND p.prorettype <> 'trigger'::regtype AND p.prokind = 'f'"
        " AND NOT EXISTS (SELECT FROM pg_depend AS d WHERE d.classid = 'pg_proc'::regclass"
        " AND d.objid = p.oid AND d.deptype = 'e')"
        " ORDER BY 1",
    )
    with psycopg.connect(seeded, autocommit=True) as conn:
        names = [str(f[0]) for f in functions]
        # it may run no function with another role's rights but its own sandbox
        assert [n for n, definer, _ in functions if definer] == [
            n for n in names if n.startswith("guard.read_own_check(")
        ]
        assert "guard.pin_company(bigint)" in names, "the walk reaches what reporting may run"
        conn.execute(_check_view("walk", "a.status"))
        register_own_check(conn, "walk")
        conn.execute("SET statement_timeout = '30s'")
        before = _snapshot(conn)
        tried = 0
        for name, _definer, types in functions:
            if str(name).startswith("guard.read_own_check("):
                continue
            base = str(name).split("(", 1)[0]
            for value in _HOSTILE:
                arguments = ", ".join(
                    "a.status"
                    if t == "text" and value == "NULL"
                    else f"{value}::{t}"
                    if t != "anyelement"
                    else f"{value}::text"
                    for t in types
                )
                try:
                    conn.execute(_check_view("walk", f"{base}({arguments})"))
                    conn.execute(
                        "SELECT count(*)"
                        " FROM guard.read_own_check('check_walk', NULL, NULL, NULL, NULL)"
                    )
                except psycopg.errors.Error as error:
                    # one clear error, not a crash: the session goes on
                    assert error.diag.message_primary, name
                tried += 1
                assert _snapshot(conn) == before, (name, value)
    assert tried >= 5 * len(_HOSTILE)
