"""Build a database from the canonical sql/ files instead of the migrations."""

from __future__ import annotations

from pathlib import Path

from guard.connection import open_connection
from guard.resources import canonical_files


def build_from_canonical(url: str, root: Path | None = None) -> None:
    """Run every file the manifests list, in order, in one transaction."""
    with open_connection(url) as conn, conn.transaction():
        for path in canonical_files(root):
            # No parameters: psycopg sends the whole file with the simple-query protocol.
            conn.execute(path.read_text().encode())
