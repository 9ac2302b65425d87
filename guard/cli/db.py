"""`guard db`: apply, roll back, inspect and verify the schema."""

from __future__ import annotations

from pathlib import Path

import click

from guard.cli.output import emit_json, emit_table
from guard.db.migrate import Migrator
from guard.db.validate import validate as validate_database
from guard.db.verify import unbound_logins
from guard.db.verify import verify as verify_database
from guard.errors import GuardError

_MIGRATIONS_DIR = click.option(
    "--migrations-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Migrations to use (default: the ones shipped with Booking Guard).",
)


@click.group()
def db() -> None:
    """Apply, roll back, inspect and verify Booking Guard's schema."""


@db.command()
@click.option("--to", "to", metavar="ID", help="Stop after applying this migration.")
@_MIGRATIONS_DIR
@click.pass_obj
def apply(obj: dict[str, str | None], to: str | None, migrations_dir: Path | None) -> None:
    """Apply pending migrations (all, or up to and including ID)."""
    with Migrator(obj["database_url"], migrations_dir) as migrator:
        applied = migrator.apply(to)
    if not applied:
        click.echo("Nothing to apply: the database is up to date.")
    for migration_id in applied:
        click.echo(f"applied  {migration_id}")


@db.command()
@click.option("--to", "to", metavar="ID", help="Roll back every migration after ID.")
@click.option("--all", "all_", is_flag=True, help="Roll back every migration.")
@_MIGRATIONS_DIR
@click.pass_obj
def rollback(
    obj: dict[str, str | None], to: str | None, all_: bool, migrations_dir: Path | None
) -> None:
    """Roll back the newest migration (or down to ID, or all of them)."""
    if to and all_:
        raise GuardError("--to and --all exclude each other")
    with Migrator(obj["database_url"], migrations_dir) as migrator:
        rolled_back = migrator.rollback(to, all_=all_)
    if not rolled_back:
        click.echo("Nothing to roll back.")
    for migration_id in rolled_back:
        click.echo(f"rolled back  {migration_id}")


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_MIGRATIONS_DIR
@click.pass_obj
def status(obj: dict[str, str | None], as_json: bool, migrations_dir: Path | None) -> None:
    """Applied, pending and edited migrations."""
    with Migrator(obj["database_url"], migrations_dir) as migrator:
        states = migrator.states()
    if as_json:
        emit_json(
            [
                {
                    "id": s.id,
                    "applied": s.applied,
                    "edited": s.edited,
                    "checksum_recorded": s.checksum_recorded,
                    "in_directory": s.in_directory,
                }
                for s in states
            ]
        )
        return
    emit_table("Migrations", ["migration", "state"], [(s.id, s.label) for s in states])


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_MIGRATIONS_DIR
@click.pass_obj
def verify(obj: dict[str, str | None], as_json: bool, migrations_dir: Path | None) -> None:
    """Compare the database with the canonical definitions; exit 1 on any difference."""
    differences = verify_database(obj["database_url"], migrations_dir)
    unbound = unbound_logins(obj["database_url"])
    if as_json:
        emit_json(
            {
                "ok": not differences,
                "differences": [d.as_dict() for d in differences],
                "unbound_logins": [{"login": login, "kinds": kinds} for login, kinds in unbound],
            }
        )
    elif not differences:
        click.echo("OK: the database matches Booking Guard's canonical definitions.")
    else:
        click.echo(f"DRIFT: {len(differences)} difference(s) from the canonical definitions:")
        for difference in differences:
            for line in difference.lines():
                click.echo(f"  {line}")
    if unbound and not as_json:
        # Not drift (exit status unchanged): an unbound login sees no company, which is safe.
        click.echo(
            f"NOTE: {len(unbound)} login(s) can reach Booking Guard's data but are bound to no"
            " company, so they see nothing; bind them with `guard tenant grant LOGIN COMPANY_ID`:"
        )
        for login, kinds in unbound:
            click.echo(f"  unbound   {login} ({', '.join(kinds)})")
    if differences:
        raise SystemExit(1)


@db.command()
@click.option("--batch-size", default=10_000, show_default=True, help="Calls per transaction.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (progress goes to stderr).")
@click.pass_obj
def validate(obj: dict[str, str | None], batch_size: int, as_json: bool) -> None:
    """Reconcile old rows and validate the NOT VALID constraints without blocking writes.

    Exits 1 if a constraint stays NOT VALID because old rows still violate it."""
    if batch_size < 1:
        raise GuardError("--batch-size must be at least 1")
    report = validate_database(
        obj["database_url"],
        batch_size=batch_size,
        progress=lambda line: click.echo(line, err=as_json),
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
