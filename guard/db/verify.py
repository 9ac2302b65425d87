"""`guard db verify`: the live database against the canonical definitions and the migrations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from guard.db import catalog
from guard.db.drift import Difference, compare
from guard.db.migrate import Migrator
from guard.errors import GuardError
from guard.resources import snapshot_path


def load_canonical_snapshot() -> catalog.Snapshot:
    path = snapshot_path()
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise GuardError(f"canonical snapshot {path} is missing (run `make snapshot`)") from None
    return loaded


def verify(database_url: str | None, migrations_dir: Path | None = None) -> list[Difference]:
    """Every difference between the database and the canonical definitions, plus edited and
    pending migrations. An empty list means the database is exactly what Booking Guard ships."""
    expected = load_canonical_snapshot()
    with Migrator(database_url, migrations_dir) as migrator:
        states = migrator.states()
        actual = catalog.take(migrator.conn)
        adopted = catalog.adopted_tables(migrator.conn)
    differences = compare(expected, actual, adopted)
    for state in states:
        if not state.in_directory:
            differences.append(
                Difference("extra", f"migration {state.id}", "applied but not in the directory")
            )
        elif not state.applied:
            differences.append(Difference("pending", f"migration {state.id}", "not applied"))
        elif state.edited:
            differences.append(
                Difference("edited", f"migration {state.id}", "file changed since it was applied")
            )
    return differences
