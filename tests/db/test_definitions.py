"""Definitions applied from sql/ (guard.schema.definitions): a change of a function, view, trigger
or policy needs no migration; what CREATE OR REPLACE cannot change is dropped and created again with
the definitions depending on it; anything else depending on it stops the apply; a file removed
drops its object; a failure keeps nothing; a release's definitions come back with a rollback to
it, and applying them to a database of that release changes nothing."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from guard.cli import main
from guard.errors import GuardError
from guard.resources import sql_dir
from guard.schema import catalog, definitions
from guard.schema.drift import compare
from guard.schema.lock_retry import LockPolicy
from guard.schema.migrate import Migrator
from tests.support.migrations import (
    apply_every_definition,
    list_before_the_grants,
    shipped_migrations,
)
from tests.support.postgres import Cluster
from tests.support.queries import fetch_all, fetch_one

RELEASE_0_1_0_LAST = "0024_commit_time_flag_checks"
RELEASE_0_2_0_LAST = "0031_rules_and_checks"


@pytest.fixture
def sql_copy(tmp_path: Path) -> Path:
    """A copy of sql/ to change, as a developer changes the checkout."""
    copy = tmp_path / "sql"
    shutil.copytree(sql_dir(), copy)
    return copy


def _snapshot(url: str) -> catalog.Snapshot:
    with psycopg.connect(url) as conn:
        return catalog.take(conn)


def _describe(expected: catalog.Snapshot, actual: catalog.Snapshot) -> str:
    return "\n".join(line for d in compare(expected, actual, set()) for line in d.lines())


def _apply(
    url: str, sql_directory: Path | None = None, directory: Path | None = None, **kwargs: Any
) -> Migrator:
    with Migrator(url, directory, sql_directory=sql_directory, **kwargs) as migrator:
        migrator.apply()
    return migrator


def _function_source(url: str, name: str) -> list[str]:
    rows = fetch_all(
        url,
        "SELECT p.prosrc FROM pg_proc AS p WHERE p.pronamespace = 'guard'::regnamespace"
        " AND p.proname = %s",
        (name,),
    )
    return [str(source) for (source,) in rows]


def test_a_changed_function_is_applied_without_a_migration(db_url: str, sql_copy: Path) -> None:
    path = "functions/guard.setting.sql"
    file = sql_copy / path
    file.write_text(file.read_text().replace("unknown Booking Guard setting", "no such setting"))

    migrator = _apply(db_url, sql_copy)

    outcome = migrator.definitions_outcome
    assert outcome is not None and outcome.applied == [path], outcome
    assert outcome.recreated == [] and outcome.dropped == []
    [source] = _function_source(db_url, "setting")
    assert "no such setting" in source
    again = _apply(db_url, sql_copy)
    assert again.definitions_outcome is None, "an unchanged sql/ applies nothing"


def test_a_new_role_grant_alone_is_applied(db_url: str, sql_copy: Path) -> None:
    grants = sql_copy / "grants" / "role_grants.sql"
    grants.write_text(
        grants.read_text()
        + "\nINSERT INTO guard.role_grants (role_kind, object_type, object_name, privileges)"
        " VALUES ('reporting', 'FUNCTION', 'guard.review_claim(text, integer)', '{EXECUTE}');\n"
    )
    with psycopg.connect(db_url) as conn:
        query = (
            "SELECT has_function_privilege('guard_reporting', 'guard.review_claim(text, integer)',"
            " 'EXECUTE')"
        )
        assert conn.execute(query).fetchone() == (False,)

    migrator = _apply(db_url, sql_copy)

    outcome = migrator.definitions_outcome
    assert outcome is not None and outcome.closing and outcome.applied == []
    assert "grants, schedule and comments applied" in outcome.summary()
    assert fetch_one(db_url, query) == (True,)


def test_a_deleted_object_is_created_again(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP VIEW guard.kpis")
    with Migrator(db_url) as migrator:
        assert migrator.pending_definitions() == ["views/guard.kpis.sql"]
        migrator.apply()
        outcome = migrator.definitions_outcome
    assert outcome is not None and outcome.applied == ["views/guard.kpis.sql"]
    assert fetch_one(db_url, "SELECT to_regclass('guard.kpis') IS NOT NULL") == (True,)


def test_a_view_whose_columns_change_is_recreated_with_the_views_on_it(
    db_url: str, sql_copy: Path
) -> None:
    base, top = "views/guard.test_base.sql", "views/guard.test_top.sql"
    (sql_copy / base).write_text(
        "CREATE OR REPLACE VIEW guard.test_base AS SELECT 1 AS one, 2 AS two;\n"
    )
    (sql_copy / top).write_text(
        "CREATE OR REPLACE VIEW guard.test_top AS SELECT b.one FROM guard.test_base AS b;\n"
    )
    list_before_the_grants(sql_copy, base, top)
    _apply(db_url, sql_copy)
    # CREATE OR REPLACE VIEW cannot drop a column: the view is dropped and created, and so is
    # the view on it
    (sql_copy / base).write_text("CREATE OR REPLACE VIEW guard.test_base AS SELECT 1 AS one;\n")

    migrator = _apply(db_url, sql_copy)

    outcome = migrator.definitions_outcome
    assert outcome is not None
    assert (outcome.applied, outcome.recreated) == ([base], [top])
    assert fetch_all(db_url, "SELECT * FROM guard.test_top") == [(1,)]
    owner = fetch_one(
        db_url,
        "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'guard.test_top'::regclass",
    )
    assert owner == ("guard_owner",)


def test_a_view_of_the_dbas_on_a_changed_view_stops_the_apply_and_is_named(
    db_url: str, sql_copy: Path
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE VIEW public.bi_kpis AS SELECT * FROM guard.kpis")
        before = conn.execute("SELECT pg_get_viewdef('guard.kpis'::regclass)").fetchone()
    # other columns: CREATE OR REPLACE refuses, and DROP would take bi_kpis with it
    (sql_copy / "views/guard.kpis.sql").write_text(
        "CREATE OR REPLACE VIEW guard.kpis AS SELECT 1 AS only_column;\n"
    )

    with pytest.raises(GuardError, match=r"view bi_kpis depends on it"):
        _apply(db_url, sql_copy)

    assert fetch_one(db_url, "SELECT pg_get_viewdef('guard.kpis'::regclass)") == before
    assert fetch_one(db_url, "SELECT to_regclass('public.bi_kpis') IS NOT NULL") == (True,)


def _apply_then_apply_again(db_url: str, sql_copy: Path, path: str, first: str, then: str) -> None:
    """The definition file `path` written as `first` and applied, then as `then` and applied."""
    (sql_copy / path).write_text(first)
    list_before_the_grants(sql_copy, path)
    _apply(db_url, sql_copy)
    (sql_copy / path).write_text(then)
    _apply(db_url, sql_copy)


@pytest.mark.parametrize(
    ("name", "template", "first", "then", "after"),
    [
        pytest.param(
            "test_double",
            "(amount {type}) RETURNS {type} LANGUAGE sql IMMUTABLE AS $$ SELECT amount * 2 $$",
            "integer",
            "bigint",
            [("guard.test_double(bigint)", "bigint")],
            id="parameter types: no old overload left",
        ),
        pytest.param(
            "test_half",
            "(amount integer) RETURNS {type} LANGUAGE sql IMMUTABLE AS $$ SELECT amount / 2 $$",
            "integer",
            "numeric",
            [("guard.test_half(integer)", "numeric")],
            id="result type: created again once",
        ),
    ],
)
def test_a_function_whose_signature_changes_leaves_its_new_form_alone(
    db_url: str,
    sql_copy: Path,
    name: str,
    template: str,
    first: str,
    then: str,
    after: list[tuple[str, str]],
) -> None:
    """A parameter type changed leaves no old overload; CREATE OR REPLACE cannot change a result
    type: the old form is dropped, the new one created, and nothing is dropped twice."""
    create = f"CREATE OR REPLACE FUNCTION guard.{name}{template};\n"
    _apply_then_apply_again(
        db_url,
        sql_copy,
        f"functions/guard.{name}.sql",
        create.format(type=first),
        create.format(type=then),
    )

    signatures = fetch_all(
        db_url,
        "SELECT oid::regprocedure::text, prorettype::regtype::text FROM pg_proc WHERE proname = %s",
        (name,),
    )
    assert signatures == after


def test_an_apply_from_empty_leaves_no_overload_an_older_migration_made(
    empty_db_url: str,
) -> None:
    """An older migration created guard.enqueue_alert_deliveries with other parameter types; the
    definitions applied at the end replace it, and the failure shows here, not in a fixture."""
    with Migrator(empty_db_url) as migrator:
        migrator.apply()
    signatures = fetch_all(
        empty_db_url,
        "SELECT oid::regprocedure::text FROM pg_proc WHERE proname = 'enqueue_alert_deliveries'",
    )
    assert len(signatures) == 1, signatures


def test_a_file_may_define_one_name_for_several_argument_types(db_url: str, sql_copy: Path) -> None:
    """guard.app_time is one file with a form per argument type: both are kept, applied again
    with nothing pending, and a form whose parameter type changes replaces only itself."""
    path = "functions/guard.test_twice.sql"
    form = (
        "CREATE OR REPLACE FUNCTION guard.test_twice(amount {type}) RETURNS {type}"
        " LANGUAGE sql IMMUTABLE AS $$ SELECT amount * 2 $$;\n"
    )
    (sql_copy / path).write_text(form.format(type="integer") + form.format(type="numeric"))
    list_before_the_grants(sql_copy, path)
    _apply(db_url, sql_copy)
    with psycopg.connect(db_url) as conn:
        assert path not in definitions.pending(conn, definitions.checkout_definitions(sql_copy))
    (sql_copy / path).write_text(form.format(type="bigint") + form.format(type="numeric"))

    _apply(db_url, sql_copy)

    signatures = fetch_all(
        db_url,
        "SELECT oid::regprocedure::text FROM pg_proc WHERE proname = 'test_twice' ORDER BY 1",
    )
    assert signatures == [("guard.test_twice(bigint)",), ("guard.test_twice(numeric)",)]


def test_a_removed_file_drops_its_object(db_url: str, sql_copy: Path) -> None:
    path = "functions/guard.test_gone.sql"
    (sql_copy / path).write_text(
        "CREATE OR REPLACE FUNCTION guard.test_gone() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n"
    )
    list_before_the_grants(sql_copy, path)
    _apply(db_url, sql_copy)
    assert _function_source(db_url, "test_gone")
    manifest = sql_copy / "manifest.txt"
    manifest.write_text(manifest.read_text().replace(f"{path}\n", ""))
    (sql_copy / path).unlink()

    migrator = _apply(db_url, sql_copy)

    assert migrator.definitions_outcome is not None
    assert migrator.definitions_outcome.dropped == [path]
    assert _function_source(db_url, "test_gone") == []
    assert fetch_one(db_url, "SELECT count(*) FROM guard.definitions WHERE path = %s", (path,)) == (
        0,
    )


def _check_view_oids(url: str) -> dict[str, int]:
    rows = fetch_all(
        url,
        "SELECT relname::text, oid::bigint FROM pg_class"
        " WHERE relnamespace = 'guard'::regnamespace AND relkind = 'v'"
        " AND relname LIKE 'check\\_%%'",
    )
    return {str(name): int(oid) for name, oid in rows}


def _refusal_of_a_shipped_view(url: str) -> str:
    """What guard.register_check says when asked to take a shipped check view as a DBA's."""
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InvalidParameterValue) as error:
        conn.execute(
            "SELECT guard.register_check('mine', 'I9_expected_activity', 'check_calls_stopped',"
            " 'low', 'a shipped view taken as my own')"
        )
    return str(error.value)


def test_check_views_moved_to_sql_checks_keep_their_objects(
    empty_db_url: str, tmp_path: Path
) -> None:
    """A database applied while the check views were under sql/detection/, applied again from
    sql/checks/: the records move; no view is dropped, run again or taken for a DBA's."""
    old_layout = tmp_path / "sql"
    shutil.copytree(sql_dir(), old_layout)
    (old_layout / "checks").rename(old_layout / "detection")
    manifest = old_layout / "manifest.txt"
    manifest.write_text(re.sub(r"^checks/", "detection/", manifest.read_text(), flags=re.M))
    _apply(empty_db_url, old_layout)
    before, oids = _snapshot(empty_db_url), _check_view_oids(empty_db_url)
    shipped = len(list((sql_dir() / "checks").glob("*.sql")))
    assert len(oids) == shipped, oids
    assert "is a view Booking Guard ships" in _refusal_of_a_shipped_view(empty_db_url)

    migrator = _apply(empty_db_url)

    outcome = migrator.definitions_outcome
    moved = [d.path for d in definitions.checkout_definitions() if d.path.startswith("checks/")]
    assert outcome is not None and outcome.moved == moved, outcome
    assert (outcome.applied, outcome.recreated, outcome.dropped) == ([], [], []), outcome
    assert f"{shipped} moved (checks/guard.check_" in outcome.summary()
    after = _snapshot(empty_db_url)
    assert after == before, _describe(before, after)
    assert _check_view_oids(empty_db_url) == oids, "no check view was dropped and created again"
    with psycopg.connect(empty_db_url) as conn:
        recorded = [
            path
            for (path,) in conn.execute(
                "SELECT path FROM guard.definitions"
                " WHERE kind = 'view' AND path LIKE '%/guard.check\\_%' ORDER BY position"
            ).fetchall()
        ]
    assert recorded == moved
    assert "is a view Booking Guard ships" in _refusal_of_a_shipped_view(empty_db_url)
    assert _apply(empty_db_url).definitions_outcome is None, "the move is applied once"


def test_a_failing_definition_keeps_nothing_of_the_apply(db_url: str, sql_copy: Path) -> None:
    changed, broken = "functions/guard.setting.sql", "functions/guard.visible_companies.sql"
    (sql_copy / changed).write_text(
        (sql_copy / changed).read_text().replace("unknown Booking Guard setting", "changed")
    )
    (sql_copy / broken).write_text((sql_copy / broken).read_text().replace("BEGIN", "BEGIN x", 1))
    recorded_before = fetch_all(db_url, "SELECT path, sha256 FROM guard.definitions")

    with pytest.raises(GuardError, match=r"the definitions were not applied: .*visible_companies"):
        _apply(db_url, sql_copy)

    [source] = _function_source(db_url, "setting")
    assert "unknown Booking Guard setting" in source, "a definition of the failed apply stayed"
    assert fetch_all(db_url, "SELECT path, sha256 FROM guard.definitions") == (recorded_before)


def test_an_overload_made_by_hand_is_refused_not_kept(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION guard.setting(setting_key integer) RETURNS jsonb LANGUAGE sql"
            " AS $$ SELECT NULL::jsonb $$"
        )
    with pytest.raises(GuardError, match=r"function guard\.setting .*: 2 in the catalog"):
        _apply(db_url)


def test_a_result_unlike_the_stored_snapshot_is_refused(db_url: str) -> None:
    """Before commit the definitions are compared with the canonical snapshot when it was made
    from the same files: here a snapshot that says guard.setting reads differently."""
    wanted = definitions.checkout_definitions()
    snapshot, made_from = definitions.stored_snapshot()
    assert made_from == definitions.digest(wanted), "stale snapshot: run `make generated`"
    [key] = [k for k in snapshot["functions"] if k.startswith("guard.setting(")]
    snapshot["functions"][key]["definition"] += "\n-- not what sql/ says"
    with (
        psycopg.connect(db_url) as conn,
        conn.transaction(force_rollback=True),
        pytest.raises(definitions.DefinitionError, match=r"function guard\.setting"),
    ):
        apply_every_definition(conn, wanted, snapshot=snapshot, snapshot_digest=made_from)


@pytest.mark.serial
def test_definitions_wait_for_a_writer_with_short_lock_timeouts(
    db_url: str, sql_copy: Path
) -> None:
    """A changed trigger on calls needs a lock a writer holds: the apply retries with short lock
    timeouts (application writes never queue behind it for long) and succeeds once the writer
    commits."""
    path = "triggers/public.calls.guard_calls_normalise.sql"
    file = sql_copy / path
    file.write_text("-- changed\n" + file.read_text())
    locked = threading.Event()
    timed_out = threading.Event()
    released = threading.Event()

    def writer() -> None:
        # Held until the apply has reported a timed-out attempt (or 30 s at most), so the
        # test does not depend on how fast this machine connects or applies.
        with psycopg.connect(db_url) as conn:
            conn.execute("LOCK TABLE public.calls IN ROW EXCLUSIVE MODE")
            locked.set()
            timed_out.wait(30)
        released.set()

    def progress(line: str) -> None:
        lines.append(line)
        if "timed out" in line:
            timed_out.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert locked.wait(30)
    lines: list[str] = []
    try:
        migrator = _apply(
            db_url,
            sql_copy,
            lock_policy=LockPolicy(deadline_s=30),
            progress=progress,
        )
    finally:
        timed_out.set()
        thread.join()
    assert released.is_set()
    assert migrator.definitions_outcome is not None
    assert migrator.definitions_outcome.applied == [path]
    assert any("timed out" in line for line in lines), lines


def test_triggers_and_policies_lock_the_booking_tables_after_grants_and_comments(
    db_url: str, sql_copy: Path
) -> None:
    """CREATE TRIGGER and CREATE POLICY lock their table against the application's writes until
    commit: they run after the grants and comments, so a writer waits for the tail of the
    transaction only (the record and the check), not for the whole definitions step. The order
    is the one the server saw, recorded by an event trigger."""
    for path in (
        "functions/guard.setting.sql",
        "triggers/public.calls.guard_calls_normalise.sql",
        "policies/public.appointments.guard_tenant_only.sql",
    ):
        file = sql_copy / path
        file.write_text("-- changed\n" + file.read_text())
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            """
            CREATE TABLE public.ddl_seen (
                n bigint GENERATED ALWAYS AS IDENTITY, tag text, identity text);
            CREATE FUNCTION public.note_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO public.ddl_seen (tag, identity)
                SELECT tg_tag, c.object_identity FROM pg_event_trigger_ddl_commands() AS c;
            END $$;
            CREATE EVENT TRIGGER note_ddl ON ddl_command_end EXECUTE FUNCTION public.note_ddl();
            """
        )
    try:
        migrator = _apply(db_url, sql_copy)
        seen = fetch_all(db_url, "SELECT n, tag, identity FROM public.ddl_seen ORDER BY n")
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DROP EVENT TRIGGER note_ddl")
    outcome = migrator.definitions_outcome
    assert outcome is not None and outcome.closing
    locking = [
        n
        for n, tag, identity in seen
        if tag in ("CREATE TRIGGER", "CREATE POLICY", "ALTER TABLE")
        and re.search(r"\bpublic\.(calls|appointments)\b", identity or "")
    ]
    closing = [n for n, tag, _ in seen if tag in ("GRANT", "COMMENT")]
    assert locking and closing, seen
    assert max(closing) < min(locking), [row for row in seen if row[0] >= min(locking)][:5]


def test_status_and_verify_name_pending_definitions(db_url: str) -> None:
    def guard_db(*args: str) -> Any:
        return CliRunner().invoke(main, ["--database-url", db_url, "db", *args])

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP VIEW guard.job_status")
    verified = guard_db("verify", "--json")
    assert verified.exit_code == 1
    assert "definition views/guard.job_status.sql" in verified.stdout
    status = guard_db("status")
    assert "1 pending (views/guard.job_status.sql)" in status.stdout
    applied = guard_db("apply")
    assert applied.exit_code == 0, applied.stderr
    closing = sum(d.closing for d in definitions.checkout_definitions())
    assert (
        f"definitions  1 applied (views/guard.job_status.sql); {closing} files of registry rows,"
        " grants, schedule and comments applied from sql/"
    ) in applied.stdout
    assert guard_db("verify").exit_code == 0


# -- releases ----------------------------------------------------------------------------------


def _apply_release_0_2_0(url: str) -> None:
    with Migrator(url) as migrator:
        migrator.apply(to=RELEASE_0_2_0_LAST)


@pytest.fixture(scope="module")
def release_0_2_0_template(pg_cluster: Cluster) -> Iterator[str]:
    """A database built by the migrations of release 0.2.0 (its definitions came with them),
    built once for the module."""
    with pg_cluster.template("release_0_2_0_template", _apply_release_0_2_0) as name:
        yield name


@pytest.fixture
def release_0_2_0_url(pg_cluster: Cluster, release_0_2_0_template: str) -> Iterator[str]:
    """A fresh clone of it for each test."""
    with pg_cluster.database(template=release_0_2_0_template) as url:
        yield url


def test_the_release_definitions_change_nothing_on_a_database_of_that_release(
    release_0_2_0_url: str,
) -> None:
    bundle = definitions.read_bundle("0.2.0")
    assert bundle, "release 0.2.0 keeps its definitions"
    before = _snapshot(release_0_2_0_url)
    with psycopg.connect(release_0_2_0_url) as conn:
        outcome = definitions.apply(conn, bundle, source="release 0.2.0")
    assert len(outcome.applied) == len([d for d in bundle if not d.closing])
    after = _snapshot(release_0_2_0_url)
    assert after == before, _describe(before, after)


@pytest.mark.history
def test_a_database_built_by_0_1_0_and_upgraded_reaches_the_canonical_schema(
    pg_cluster: Cluster,
) -> None:
    with pg_cluster.database() as upgraded, pg_cluster.database() as fresh:
        with Migrator(upgraded) as migrator:
            migrator.apply(to=RELEASE_0_1_0_LAST)
        with Migrator(upgraded) as migrator:
            migrator.apply(to=RELEASE_0_2_0_LAST)
        at_0_2_0 = _snapshot(upgraded)
        bundle = definitions.read_bundle("0.2.0")
        assert bundle is not None
        with psycopg.connect(upgraded) as conn:
            definitions.apply(conn, bundle, source="release 0.2.0")
        assert _snapshot(upgraded) == at_0_2_0, _describe(at_0_2_0, _snapshot(upgraded))
        with Migrator(upgraded) as migrator:
            migrator.apply()
            assert migrator.definitions_outcome is not None
        with Migrator(fresh) as migrator:
            migrator.apply()
        expected = _snapshot(fresh)
        assert _snapshot(upgraded) == expected, _describe(expected, _snapshot(upgraded))


def test_a_rollback_to_a_release_restores_its_definitions(
    db_url: str, release_0_2_0_url: str
) -> None:
    expected = _snapshot(release_0_2_0_url)
    with Migrator(db_url) as migrator:
        migrator.rollback(to=RELEASE_0_2_0_LAST)
        outcome = migrator.definitions_outcome
    assert outcome is not None and outcome.source == "release 0.2.0"
    assert outcome.dropped, "definitions made after 0.2.0 are dropped"
    restored = _snapshot(db_url)
    assert restored == expected, _describe(expected, restored)


def test_a_view_on_a_retyped_column_is_created_again_after_the_migration(
    db_url: str, tmp_path: Path, sql_copy: Path
) -> None:
    """A migration that changes a column a view reads drops the view first (PostgreSQL refuses
    the ALTER otherwise); the definitions step, in the same transaction, creates it again."""
    migrations = shipped_migrations(tmp_path)
    retype = "ALTER TABLE guard.review_items ALTER COLUMN note TYPE varchar(4000);\n"
    forward = migrations / "9000_note_varchar.sql"
    (migrations / "9000_note_varchar.rollback.sql").write_text(
        "DROP VIEW IF EXISTS guard.review_items_report;\n"
        "ALTER TABLE guard.review_items ALTER COLUMN note TYPE text;\n"
    )
    forward.write_text(retype)
    with pytest.raises(GuardError, match=r"9000_note_varchar failed.*review_items_report"):
        _apply(db_url, sql_copy, directory=migrations)

    forward.write_text("DROP VIEW IF EXISTS guard.review_items_report;\n" + retype)
    migrator = _apply(db_url, sql_copy, directory=migrations)

    assert migrator.definitions_outcome is not None
    assert "views/guard.review_items_report.sql" in migrator.definitions_outcome.applied
    assert fetch_one(
        db_url,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'guard.review_items'::regclass AND attname = 'note'",
    ) == ("character varying(4000)",)
    assert fetch_one(db_url, "SELECT count(*) FROM guard.review_items_report") == (0,)


# -- what a migration or rollback changes behind the record ------------------------------------


def _rollback_replaces_setting(tmp_path: Path) -> tuple[Path, str]:
    """A copy of migrations/ with one more migration whose rollback puts back an older
    guard.setting, as 0066's rollback puts back the normalise_customer_link 0065 had; and the
    text it puts back."""
    migrations = shipped_migrations(tmp_path)
    older = (sql_dir() / "functions/guard.setting.sql").read_text()
    older = older.replace("unknown Booking Guard setting", "no such setting (the older text)")
    assert "the older text" in older
    (migrations / "9000_next_level.sql").write_text("SELECT 1;\n")
    (migrations / "9000_next_level.rollback.sql").write_text(older)
    return migrations, "the older text"


def test_a_definition_a_rollback_changed_is_applied_again(
    db_url: str, tmp_path: Path, sql_copy: Path
) -> None:
    """Without the snapshot's help (sql/ differs from the files it was made from), the record
    alone must say that guard.setting is no longer what sql/ holds."""
    other = sql_copy / "functions/guard.mask_phone.sql"
    other.write_text(other.read_text() + "\n-- a change elsewhere: the snapshot does not apply\n")
    migrations, older = _rollback_replaces_setting(tmp_path)
    _apply(db_url, sql_copy, directory=migrations)

    with Migrator(db_url, migrations, sql_directory=sql_copy) as migrator:
        assert migrator.rollback() == ["9000_next_level"]
        assert "functions/guard.setting.sql" in migrator.pending_definitions()
    [source] = _function_source(db_url, "setting")
    assert older in source, "the rollback put the older text back"
    assert fetch_one(
        db_url, "SELECT sha256 FROM guard.definitions WHERE path = 'functions/guard.setting.sql'"
    ) == (definitions.STALE,)
    found = CliRunner().invoke(
        main, ["--database-url", db_url, "db", "verify", "--migrations-dir", str(migrations)]
    )
    assert (
        "pending   definition functions/guard.setting.sql: a migration or rollback changed its"
        " object since it was applied"
    ) in found.stdout, found.stdout

    migrator = _apply(db_url, sql_copy, directory=migrations)

    outcome = migrator.definitions_outcome
    assert outcome is not None and "functions/guard.setting.sql" in outcome.applied, outcome
    [source] = _function_source(db_url, "setting")
    assert older not in source and "unknown Booking Guard setting" in source
    with Migrator(db_url, migrations, sql_directory=sql_copy) as migrator:
        assert migrator.pending_definitions() == []


def test_a_definition_changed_behind_its_record_is_repaired_by_the_next_apply(
    db_url: str,
) -> None:
    """A database a rollback left in that state before the records were marked (or a hand edit):
    the check before commit finds guard.setting unlike the snapshot although its file was not
    run, runs it again and checks again, instead of refusing every apply."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        text = (sql_dir() / "functions/guard.setting.sql").read_text()
        conn.execute(text.replace("unknown Booking Guard setting", "edited by hand").encode())
        conn.execute("DROP VIEW guard.kpis")  # something is due, so an apply runs

    migrator = _apply(db_url)

    outcome = migrator.definitions_outcome
    assert outcome is not None
    assert set(outcome.applied) == {"views/guard.kpis.sql", "functions/guard.setting.sql"}
    [source] = _function_source(db_url, "setting")
    assert "unknown Booking Guard setting" in source
    assert CliRunner().invoke(main, ["--database-url", db_url, "db", "verify"]).exit_code == 0


def test_the_recorded_source_of_an_empty_record_is_none(db_url: str) -> None:
    """`guard db status` names where the definitions came from; a record table with no row (a
    database whose definitions were never applied by this version) has no source, not "None"."""
    with psycopg.connect(db_url) as conn:
        assert definitions.recorded_source(conn) is not None
        conn.execute("DELETE FROM guard.definitions")
        assert definitions.recorded_source(conn) is None
        conn.rollback()


def test_a_definition_never_recorded_is_planned_as_new(db_url: str) -> None:
    """The plan (`guard db apply --dry-run`) of a definition with no record of its own says
    "new", and one whose record is marked stale by a migration says so."""
    everything = definitions.checkout_definitions()
    view = next(d for d in everything if d.path.endswith("guard.check_call_without_direction.sql"))
    function = next(d for d in everything if d.path.endswith("guard.mask_phone.sql"))
    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM guard.definitions WHERE path = %s", (view.path,))
        conn.execute(
            "UPDATE guard.definitions SET sha256 = %s WHERE path = %s",
            (definitions.STALE, function.path),
        )
        planned = definitions.plan(conn, everything).run
        conn.rollback()
    by_path = {d.path: reason for d, reason in planned}
    assert by_path[view.path] == "new"
    assert by_path[function.path] == "a migration changed its object since it was applied"


def test_an_apply_with_nothing_changed_runs_no_closing_file(db_url: str) -> None:
    """The grants, comments and schedule run when something was applied (or nothing ever was),
    not on an apply that finds every definition as recorded."""
    with psycopg.connect(db_url) as conn:
        outcome = definitions.apply(conn, definitions.checkout_definitions())
        conn.rollback()
    assert outcome.applied == [] and not outcome.closing


def test_a_drop_that_meets_a_lock_is_left_to_the_migrators_retry(
    db_url: str, sql_copy: Path
) -> None:
    """Dropping a removed file's object waits on a reader of it like any statement: past the
    lock timeout the error is the lock's, which the migrator retries, not a failed definition."""
    path = "views/guard.test_gone_view.sql"
    (sql_copy / path).write_text(
        "CREATE OR REPLACE VIEW guard.test_gone_view AS SELECT 1 AS one;\n"
    )
    list_before_the_grants(sql_copy, path)
    _apply(db_url, sql_copy)
    manifest = sql_copy / "manifest.txt"
    manifest.write_text(manifest.read_text().replace(f"{path}\n", ""))
    (sql_copy / path).unlink()
    with psycopg.connect(db_url) as reader, psycopg.connect(db_url) as conn:
        reader.execute("SELECT * FROM guard.test_gone_view")
        conn.execute("SET LOCAL lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            definitions.apply(conn, definitions.checkout_definitions(sql_copy))
        conn.rollback()
        reader.rollback()
    assert _apply(db_url, sql_copy).definitions_outcome is not None


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        ("triggers/public.guard_calls_normalise.sql", "schema.table.name.sql"),
        ("policies/guard.alerts.sql", "schema.table.name.sql"),
        ("functions/guard.a.b.sql", "schema.name.sql"),
        ("views/reporting.sql", "schema.name.sql"),
    ],
)
def test_a_misnamed_file_is_told_the_name_its_kind_takes(path: str, pattern: str) -> None:
    with pytest.raises(definitions.DefinitionError) as refused:
        _ = definitions.Definition(path, "").identity
    kind = definitions.Definition(path, "").kind
    assert str(refused.value) == f"{path}: a {kind} file is named {pattern}"


def test_every_recorded_object_has_a_fingerprint_that_follows_its_changes(db_url: str) -> None:
    """Each object a record names is found in the catalog (a trigger and a policy on their
    table), and a change to one, here a trigger disabled behind Booking Guard's back, is
    the one change reported."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        records = definitions.recorded(conn)
        assert records is not None
        before = definitions.fingerprints(conn, records)
        assert sorted(path for path, print_ in before.items() if print_ is None) == []
        kinds = {r.kind for r in records if r.path in before}
        assert {"function", "view", "trigger", "policy"} <= kinds
        assert definitions.touched(conn, records, before) == []
        conn.execute("ALTER TABLE public.calls DISABLE TRIGGER guard_calls_normalise")
        try:
            changed = definitions.touched(conn, records, before)
        finally:
            conn.execute("ALTER TABLE public.calls ENABLE TRIGGER guard_calls_normalise")
    assert changed == ["triggers/public.calls.guard_calls_normalise.sql"]


def test_restrict_keeps_only_what_the_files_define() -> None:
    """A function that shares its name with a view of the files, and a view named like a
    function of the files, are the migrations' objects: `restrict` leaves them out."""
    snapshot: Any = {
        "functions": {"guard.report(integer)": "f1", "guard.helper()": "f2"},
        "relations": {
            "guard.report": {"kind": "v", "view_def": "v1"},
            "guard.helper": {"kind": "v", "view_def": "v2"},
        },
    }
    files = [
        definitions.Definition("views/guard.report.sql", ""),
        definitions.Definition("functions/guard.helper.sql", ""),
    ]
    restricted = definitions.restrict(snapshot, files)
    assert restricted["functions"] == {"guard.helper()": "f2"}
    assert restricted["relations"] == {"guard.report": {"kind": "v", "view_def": "v1"}}
