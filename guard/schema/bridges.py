"""Bridges: objects `guard db apply` and `rollback` keep in place across a range of released
(immutable) migrations in whose middle the database would refuse application writes it accepts on
either side. A bridge exists exactly while its first migration is applied and its last is not:
created and dropped in the transactions of those migrations (on rollback, dropped before the
statements that would remove what it uses), so no committed state lacks it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from guard.connection import scalar
from guard.resources import migrations_dir


@dataclass(frozen=True)
class Bridge:
    """Triggers on one table, defined in migrations/bridges/<name>.sql."""

    name: str
    opened_by: str  # the migration whose state refuses the writes
    closed_by: str  # the migration that makes them pass again
    table: str  # schema-qualified
    triggers: tuple[str, ...]

    def wanted(self, applied: set[str]) -> bool:
        return self.opened_by in applied and self.closed_by not in applied


BRIDGES = (
    Bridge(
        name="legacy_rows_on_update",
        opened_by="0006_invariants",
        closed_by="0021_legacy_rows_on_update",
        table="public.calls",
        triggers=("guard_calls_bridge_direction", "guard_calls_bridge_link"),
    ),
)


def settle(conn: psycopg.Connection[Any], applied: set[str]) -> list[str]:
    """Create or drop each bridge as `applied` (once this transaction commits) wants it."""
    done: list[str] = []
    for bridge in BRIDGES:
        present = scalar(
            conn,
            "SELECT count(*) > 0 FROM pg_catalog.pg_trigger"
            " WHERE tgrelid = to_regclass(%s) AND tgname = ANY(%s)",
            (bridge.table, list(bridge.triggers)),
        )
        if bridge.wanted(applied) and not present:
            conn.execute((migrations_dir() / "bridges" / f"{bridge.name}.sql").read_bytes())
            done.append(f"bridge {bridge.name} created (until {bridge.closed_by})")
        elif present and not bridge.wanted(applied):
            for trigger in bridge.triggers:
                conn.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {bridge.table}".encode())
            done.append(f"bridge {bridge.name} dropped")
    return done
