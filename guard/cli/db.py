"""`guard db`: apply, roll back, inspect and verify the schema (docs/dba.md). Every command
first names on stderr the database it acts on (never a password)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
import psycopg

from guard.cli.output import echo_text, emit_json, emit_table, json_option
from guard.cli.params import COUNT, INT_MAX, duration_seconds, options
from guard.connection import connect
from guard.errors import GuardError
from guard.schema import definitions
from guard.schema.lock_retry import LockPolicy
from guard.schema.migrate import ApplyPlan, Migrator, RollbackPreview
from guard.schema.validate import RECONCILE_PAUSE_RATIO
from guard.schema.validate import validate as validate_database
from guard.schema.verify import unbound_logins, zoneless_columns, zoneless_note
from guard.schema.verify import verify as verify_database

_MIGRATIONS_DIR = click.option(
    "--migrations-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Migrations to use (default: the ones shipped with Booking Guard).",
)


class _Duration(click.ParamType[float]):
    """A duration option in seconds (a bare number in `default_unit`). PostgreSQL's timeouts are
    integer milliseconds, so that is the longest accepted."""

    name = "duration"

    def __init__(self, default_unit: str) -> None:
        self.default_unit = default_unit

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        text = str(value)
        length = duration_seconds(text, self.default_unit)
        if length is None:
            self.fail(f"not a duration: {text!r} (examples: 15min, 90s, 250ms)", param, ctx)
        if length * 1000 > INT_MAX:
            self.fail(f"{text!r} is longer than PostgreSQL allows ({INT_MAX} ms)", param, ctx)
        return length


_lock_options = options(
    click.option(
        "--lock-deadline",
        type=_Duration("s"),
        default="15min",
        show_default=True,
        help="Keep retrying a lock this long, then give up changing nothing.",
    ),
    click.option(
        "--lock-timeout",
        type=_Duration("ms"),
        default="100ms",
        show_default=True,
        help="Longest one attempt waits for its locks, all waits together (and so the"
        " application behind it).",
    ),
    click.option(
        "--statement-timeout",
        type=_Duration("s"),
        default="10s",
        show_default=True,
        help="Longest a statement holding a lock may run (it is meant to be instant).",
    ),
)


def _policy(lock_deadline: float, lock_timeout: float, statement_timeout: float) -> LockPolicy:
    timeout_ms = round(lock_timeout * 1000)
    if timeout_ms < 1:
        raise GuardError("--lock-timeout must be at least 1ms")
    return LockPolicy(
        lock_timeout_ms=timeout_ms,
        deadline_s=lock_deadline,
        statement_timeout_ms=round(statement_timeout * 1000),
    )


_progress = functools.partial(echo_text, err=True)


def _announce(conn: psycopg.Connection[Any]) -> None:
    """Where a connection really went (libpq may have chosen from PG* variables or defaults)."""
    info = conn.info
    where = f"socket {info.host}" if info.host.startswith("/") else f"host {info.host}"
    _progress(f"target: {where}, port {info.port}, database {info.dbname}, role {info.user}")


@contextmanager
def _migrator(
    obj: dict[str, str | None], migrations_dir: Path | None, /, **options: Any
) -> Iterator[Migrator]:
    """The command's migrator, its target named on stderr first; `options` go to Migrator."""
    with Migrator(obj["database_url"], migrations_dir, progress=_progress, **options) as migrator:
        _announce(migrator.conn)
        yield migrator


@click.group()
def db() -> None:
    """Apply, roll back, inspect and verify Booking Guard's schema."""


@db.command()
@click.option("--to", "to", metavar="ID", help="Stop after applying this migration.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the SQL it would run (pending migrations, then changed definitions) and change"
    " nothing: one read-only transaction, no lock that blocks a writer.",
)
@_MIGRATIONS_DIR
@_lock_options
@click.pass_obj
def apply(
    obj: dict[str, str | None],
    /,
    to: str | None,
    dry_run: bool,
    migrations_dir: Path | None,
    **lock: float,
) -> None:
    """Apply pending migrations in order (all, or up to and including ID).

    A migration older than one already applied is refused. With --dry-run, print what would run
    instead; it takes no migration lock and works through a connection pooler (the apply itself
    needs a direct connection)."""
    policy = _policy(**lock)
    with _migrator(obj, migrations_dir, lock_policy=policy, install_when_empty=True) as migrator:
        if dry_run:
            _show_plan(migrator.plan_apply(to))
            return
        applied = migrator.apply(to, on_applied=lambda i: echo_text(f"applied  {i}"))
        zoneless = zoneless_columns(migrator.conn)
    outcome = migrator.definitions_outcome
    if outcome is not None and outcome.changed:
        echo_text(outcome.summary())
    elif migrator.grants_restored and not applied:
        click.echo(
            "Restored the privileges Booking Guard grants (guard.apply_grants): one was"
            " missing. Nothing else to apply."
        )
    elif not applied:
        click.echo("Nothing to apply: the database is up to date.")
    for line in zoneless_note(zoneless):
        echo_text(line)


def _show_plan(plan: ApplyPlan) -> None:
    """A dry run: the SQL on stdout, in the order apply runs it, what is not SQL as comments."""
    if plan.migrator_running is not None:
        _progress(
            f"note: a migrator is running now ({plan.migrator_running}): what is pending may"
            " change before you apply"
        )
    if plan.empty:
        click.echo("Nothing to apply: the database is up to date.")
        return
    for refusal in plan.refusals:
        _progress(f"note: `guard db apply` would refuse here: {refusal}")
    if plan.install:
        echo_text(
            f"-- an empty database: install from sql/ in one transaction, the"
            f" {len(plan.migrations)} migrations recorded as applied (the schema they build)"
        )
        for name, text in plan.install:
            echo_text(f"-- {name}")
            _echo_sql(text)
        echo_text("")
    for migration in [] if plan.install else plan.migrations:
        how = (
            "one transaction, with its bookkeeping"
            if migration.transactional
            else "not transactional: each statement commits on its own"
        )
        echo_text(f"-- migration {migration.id} ({how})")
        for statement in migration.statements:
            _echo_sql(statement)
        echo_text("")
    if plan.definitions is not None:
        _show_definitions(plan.definitions, plan)
    step = plan.definitions or definitions.Plan()  # none: nothing to count
    files = sum(not definition.closing for definition, _ in step.run)
    closing = len(step.run) - files
    moves = f", {len(step.moved)} moved" if step.moved else ""
    also = f" and {definitions.closing_files(closing)}" if closing else ""
    echo_text(
        f"-- dry run: {len(plan.migrations)} migration(s), {files} definition file(s){also} to"
        f" run, {len(step.dropped)} to drop{moves}. Nothing was changed."
    )


def _show_definitions(step: definitions.Plan, plan: ApplyPlan) -> None:
    """The definitions step of a dry run: each file with why it runs, then the drops."""
    where = (
        "in a transaction of their own"
        if not plan.definitions_with_last_migration
        else "in the install's transaction"
        if plan.install
        else "in the transaction of the last migration"
    )
    echo_text(f"-- definitions from {step.source} ({where})")
    if plan.migrations:
        echo_text(
            "-- (as the database is now: a migration above that changes a definition's object"
            " makes its file run too)"
        )
    for definition, reason in step.run:
        echo_text(f"-- {definition.path}: {definition.label}, {reason}")
        recreated = step.recreated_if_refused.get(definition.path)
        if recreated:
            echo_text(
                "--   should CREATE OR REPLACE refuse the change (a view's columns, a"
                " function's result type or parameter names), it is dropped and created"
                f" again, and so are: {', '.join(recreated)}"
            )
        stopped_by = step.stopped_by.get(definition.path)
        if stopped_by:
            echo_text(
                "--   should CREATE OR REPLACE refuse the change, these stop the apply (not"
                f" Booking Guard's, they depend on it): {', '.join(stopped_by)}"
            )
        _echo_sql(definition.text, terminate=False)
    for path, recorded in step.moved:
        echo_text(f"-- {path}: unchanged, recorded as {recorded}: only the record moves")
    for path, label, statements in step.dropped:
        echo_text(f"-- {path}: removed from {step.source}, its {label} is dropped")
        for statement in statements:
            _echo_sql(statement)
    echo_text("")


def _echo_sql(statement: str, terminate: bool = True) -> None:
    """A statement as it would stand in a script: one yoyo split (without its semicolon) gets it
    back; a definition file is printed as it is."""
    text = statement.strip()
    for line in (text + ";" if terminate and not text.endswith(";") else text).splitlines():
        echo_text(line)


@db.command()
@click.option("--to", "to", metavar="ID", help="Roll back every migration after ID.")
@click.option("--all", "all_", is_flag=True, help="Roll back every migration.")
@click.option("--yes", is_flag=True, help="Do not ask (required without a terminal).")
@_MIGRATIONS_DIR
@_lock_options
@click.pass_obj
def rollback(
    obj: dict[str, str | None],
    /,
    to: str | None,
    all_: bool,
    yes: bool,
    migrations_dir: Path | None,
    **lock: float,
) -> None:
    """Roll back the newest migration (or down to ID, or all of them).

    Shows first what would be dropped (tables with their row counts, columns), found by running
    the rollback in a transaction that is rolled back; then asks. Without a terminal, --yes is
    required."""
    if to and all_:
        raise GuardError("--to and --all exclude each other")
    with _migrator(obj, migrations_dir, lock_policy=_policy(**lock)) as migrator:
        migrations = migrator.rollback_plan(to, all_=all_)
        plan = [m.id for m in migrations]
        if not plan:
            click.echo("Nothing to roll back.")
            return
        preview = migrator.preview_rollback(migrations)
        _show_preview(plan, preview)
        if not yes:
            if not sys.stdin.isatty():
                raise GuardError(
                    "not rolling back without confirmation: no terminal to ask on; read what it"
                    " drops (above) and pass --yes. Nothing was changed"
                )
            if not click.confirm("Roll back and drop all of the above?", default=False, err=True):
                raise GuardError("rollback cancelled; nothing was changed")
        rolled_back = migrator.rollback(to, all_=all_, expected=plan)
    for migration_id in rolled_back:
        echo_text(f"rolled back  {migration_id}")
    if migrator.definitions_outcome is not None:
        echo_text(migrator.definitions_outcome.summary())


def _show_preview(plan: list[str], preview: RollbackPreview) -> None:
    _progress(f"Rolls back {len(plan)} migration(s), newest first: {', '.join(plan)}")
    if preview.tables:
        _progress("Drops these tables with every row in them:")
        for name, rows in preview.tables:
            _progress(f"  {name}  ({rows:,} rows)")
    if preview.columns:
        _progress("Drops these columns (and their values) from tables that stay:")
        for column in preview.columns:
            _progress(f"  {column}")
    if not preview.tables and not preview.columns and preview.error is None:
        _progress("Drops no table and no column (functions, triggers, views, constraints only).")
    if preview.not_previewed:
        _progress(
            "Not previewed (they cannot run in one transaction; none drops a table or a column): "
            + ", ".join(preview.not_previewed)
        )
    if preview.error is not None:
        _progress(f"The preview stopped early ({preview.error}); it may drop more than listed.")


@db.command()
@json_option
@_MIGRATIONS_DIR
@click.pass_obj
def status(obj: dict[str, str | None], as_json: bool, migrations_dir: Path | None) -> None:
    """Applied and pending migrations: when and by which role each was applied, and whether its
    file still matches the checksum recorded then."""
    with _migrator(obj, migrations_dir) as migrator:
        states = migrator.states()
        pending_definitions = migrator.pending_definitions()
        source = definitions.recorded_source(migrator.conn)
    if as_json:
        emit_json([{**asdict(s), "checksum": s.checksum_state or None} for s in states])
        return
    rows = [[s.id, s.label, s.applied_at, s.applied_by] for s in states]
    # ids are what a DBA copies into --to: never wrapped
    emit_table("Migrations", ["migration", "state", "applied", "by"], rows, no_wrap=["migration"])
    if source is not None:
        state = (
            f"{len(pending_definitions)} pending ({', '.join(pending_definitions)}):"
            " `guard db apply` applies them"
            if pending_definitions
            else "all applied"
        )
        echo_text(
            f"Definitions (functions, views, triggers, policies, grants, comments) from {source}:"
            f" {state}"
        )


@db.command()
@json_option
@_MIGRATIONS_DIR
@click.pass_obj
def verify(obj: dict[str, str | None], as_json: bool, migrations_dir: Path | None) -> None:
    """Compare the database with the canonical definitions; exit 1 on any difference."""
    with connect(obj["database_url"], application_name="guard db") as conn:
        _announce(conn)
        zoneless = zoneless_columns(conn)
        unbound = unbound_logins(conn)
    differences = verify_database(obj["database_url"], migrations_dir)
    if as_json:
        emit_json(
            {
                "ok": not differences,
                "differences": [d.as_dict() for d in differences],
                "unbound_logins": [{"login": login, "kinds": kinds} for login, kinds in unbound],
                "columns_without_declared_zone": zoneless,
            }
        )
    elif not differences:
        click.echo("OK: the database matches Booking Guard's canonical definitions.")
    else:
        click.echo(f"DRIFT: {len(differences)} difference(s) from the canonical definitions:")
        for difference in differences:
            for line in difference.lines():
                echo_text(f"  {line}")
    if unbound and not as_json:
        # Not drift (exit status unchanged): an unbound login sees no company, which is safe.
        click.echo(
            f"NOTE: {len(unbound)} login(s) can reach Booking Guard's data but are bound to no"
            " company, so they see nothing; bind them with `guard tenant grant LOGIN COMPANY_ID`:"
        )
        for login, kinds in unbound:
            echo_text(f"  unbound   {login} ({', '.join(kinds)})")
    if not as_json:
        for line in zoneless_note(zoneless):
            echo_text(line)
    if differences:
        raise SystemExit(1)


@db.command()
@click.option(
    "--batch-size", type=COUNT, default=10_000, show_default=True, help="Calls per transaction."
)
@click.option(
    "--pause-ratio",
    type=click.FloatRange(min=0, max=10),
    default=RECONCILE_PAUSE_RATIO,
    show_default=True,
    help="Pause after each reconcile batch for this share of its time (0: no pause).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (progress goes to stderr).")
@_lock_options
@click.pass_obj
def validate(
    obj: dict[str, str | None],
    /,
    batch_size: int,
    pause_ratio: float,
    as_json: bool,
    **lock: float,
) -> None:
    """Reconcile old rows and validate the NOT VALID constraints without blocking writes.

    Exits 1 if a constraint stays NOT VALID because old rows still violate it."""
    policy = _policy(**lock)
    with connect(obj["database_url"], application_name="guard db") as conn:
        _announce(conn)
    report = validate_database(
        obj["database_url"],
        batch_size=batch_size,
        progress=lambda line: echo_text(line, err=as_json),
        lock_policy=policy,
        pause_ratio=pause_ratio,
    )
    if as_json:
        emit_json(report.as_dict())
    else:
        emit_table(
            "Corrections of old rows (audited in guard.correction_audit)",
            ["rule", "rows corrected"],
            sorted(report.corrected.items()),
        )
        emit_table(
            "Constraints",
            ["table", "constraint", "state", "detail"],
            [
                (r.table, r.constraint, "validated" if r.validated else "NOT VALID", r.detail)
                for r in report.constraints
            ],
        )
        emit_table("Rule stages", ["rule", "stage"], sorted(report.stages.items()))
    if not report.complete:
        raise SystemExit(1)
