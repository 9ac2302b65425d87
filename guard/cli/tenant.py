"""`guard tenant grant|revoke|list`: which companies a database role may see."""

from __future__ import annotations

from typing import Any, LiteralString

import click
import psycopg

from guard import queries
from guard.cli.output import echo_text, emit_json, emit_table, json_option, wide_option
from guard.cli.params import BIGINT, NON_EMPTY_TEXT
from guard.connection import fetch_all, scalar, transaction

_LIST_COLUMNS = ["role_name", "company_id", "company_name", "logins", "granted_by", "granted_at"]


def _change(
    database_url: str | None, statement: LiteralString, role: str, companies: tuple[int, ...]
) -> list[tuple[int, bool]]:
    """Run `statement` (role, company) for every company in one transaction, all or none; each
    company with whether it changed."""
    changed: list[bool] = []
    warnings: dict[str, str] = {}

    def hear(notice: psycopg.errors.Diagnostic) -> None:
        if notice.severity_nonlocalized == "WARNING" and notice.message_primary:
            warnings.setdefault(notice.message_primary, notice.message_hint or "")

    with transaction(database_url) as conn:
        conn.add_notice_handler(hear)
        for company in companies:
            changed.append(bool(scalar(conn, statement, (role, company))))
    for message, hint in warnings.items():
        echo_text(f"warning: {message}", err=True)
        if hint:
            echo_text(f"  {hint}", err=True)
    return list(zip(companies, changed, strict=True))


@click.group()
def tenant() -> None:
    """Bind database roles to the companies they may see."""


@tenant.command()
@click.argument("role", type=NON_EMPTY_TEXT)
@click.argument("company_ids", nargs=-1, required=True, type=BIGINT)
@click.pass_obj
def grant(obj: dict[str, str | None], role: str, company_ids: tuple[int, ...]) -> None:
    """Let ROLE (and every role that inherits from it) see COMPANY_IDS."""
    for company, new in _change(obj["database_url"], queries.TENANT_GRANT, role, company_ids):
        echo_text(f"{'granted' if new else 'already granted'}  {role} -> company {company}")


@tenant.command()
@click.argument("role", type=NON_EMPTY_TEXT)
@click.argument("company_ids", nargs=-1, required=True, type=BIGINT)
@click.pass_obj
def revoke(obj: dict[str, str | None], role: str, company_ids: tuple[int, ...]) -> None:
    """Stop ROLE from seeing COMPANY_IDS (its members keep what other bindings give them)."""
    for company, gone in _change(obj["database_url"], queries.TENANT_REVOKE, role, company_ids):
        echo_text(f"{'revoked' if gone else 'was not granted'}  {role} -> company {company}")


@tenant.command("list")
@wide_option
@json_option
@click.pass_obj
def list_bindings(obj: dict[str, str | None], as_json: bool) -> None:
    """Every binding, with the logins it reaches."""
    rows: list[Any] = fetch_all(obj["database_url"], queries.tenant_list(_LIST_COLUMNS))
    if as_json:
        emit_json([dict(zip(_LIST_COLUMNS, row, strict=True)) for row in rows])
        return
    if not rows:
        click.echo("No tenant bindings: reporting and reviewer logins see no company.")
        return
    emit_table(
        "Tenant bindings",
        _LIST_COLUMNS,
        [[*row[:3], ", ".join(row[3]), *row[4:]] for row in rows],
    )
