"""Every leaf command of the `guard` tree with arguments that make it do its work on the seeded
database of tests/security/conftest.py (companies 1 and 2, alerts, review items), in an order
where each finds what it needs (a circuit is created before it is shown). The walking tests
(roles, time format) run them all; a command added to the CLI without an entry here fails
test_every_command_is_walked."""

from __future__ import annotations

from pathlib import Path

import click
import psycopg

from tests.support.cli import all_commands

ROOT = Path(__file__).resolve().parents[2]
CIRCUIT = "appointment_booking:service:424242"

# Not walked, and why. Nothing else may be missing.
NOT_WALKED = {
    # starts its own embedded cluster and ignores --database-url: tests/cli/test_demo.py
    "demo": "runs its own cluster (tests/cli/test_demo.py)",
}


def leaves(command: click.Command | None = None, path: tuple[str, ...] = ()) -> list[str]:
    command = all_commands() if command is None else command
    if isinstance(command, click.Group):
        return [
            leaf
            for name, sub in sorted(command.commands.items())
            for leaf in leaves(sub, (*path, name))
        ]
    return [" ".join(path)]


def newest_migration() -> str:
    return sorted(
        p.name.removesuffix(".sql")
        for p in (ROOT / "migrations").glob("*.sql")
        if not p.name.endswith(".rollback.sql")
    )[-1]


def command_lines(url: str, login: str) -> list[tuple[str, list[str]]]:
    """(command path, arguments after the path) for every walked command, in order. `url` is
    the superuser's: ids are looked up with it."""
    with psycopg.connect(url, autocommit=True) as admin:
        # company 1's: the reading logins are bound to it
        alert = admin.execute("SELECT min(id) FROM guard.alerts WHERE company_id = 1").fetchone()
        items = admin.execute(
            "SELECT id FROM guard.review_items WHERE status = 'open' AND company_id = 1 ORDER BY id"
        ).fetchall()
    alert_id = str(alert[0] if alert and alert[0] else 1)
    first_item = str(items[0][0]) if items else "1"
    second_item = str(items[-1][0]) if items else "2"

    def reason(key: str) -> list[str]:
        return [key, "--reason", "walked by a test"]

    return [
        ("alerts list", []),
        ("alerts show", [alert_id]),
        ("alerts test", ["--channel", "stdout"]),
        ("breaker trip", [*reason(CIRCUIT), "--create"]),
        ("breaker list", []),
        ("breaker show", [CIRCUIT]),
        ("breaker configure", [CIRCUIT, "--cooldown", "5"]),
        ("breaker disable", reason(CIRCUIT)),
        ("breaker force-close", reason(CIRCUIT)),
        ("breaker reset", reason(CIRCUIT)),
        ("calendar reconcile", ["--client", "tests.support.calendar_client:list_bookings"]),
        ("check", []),
        ("db apply", ["--dry-run"]),
        ("db apply", []),
        ("db rollback", ["--to", newest_migration(), "--yes"]),
        ("db status", []),
        ("db verify", []),
        ("db validate", []),
        ("reconcile", ["--dry-run"]),
        ("review list", ["--status", "active"]),
        ("review show", [first_item]),
        ("review claim", ["--limit", "1"]),
        ("review resolve", [first_item, "--note", "walked"]),
        ("review dismiss", [second_item, "--note", "walked", "--false-positive"]),
        ("rules list", []),
        ("rules show", ["I3_appointment_flags"]),
        ("rules mode", ["I3_appointment_flags", "reject", "--company", "1"]),
        ("rules stage", ["I3_appointment_flags", "--clear"]),
        ("tenant list", []),
        ("tenant grant", [login, "1"]),
        ("tenant revoke", [login, "2"]),
        ("jobs status", []),
        ("jobs run", ["--once", "--job", "review_sweep"]),
        ("report", ["--date", "2026-01-10"]),
        ("watch", ["--once", "--channel", "stdout", "--skip-before", "2026-01-01T00:00:00Z"]),
        ("metrics", ["--once"]),
    ]
