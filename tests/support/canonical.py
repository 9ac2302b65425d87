"""Build a database from the canonical sql/ files instead of the migrations."""

from __future__ import annotations

from typing import Any

import psycopg

from guard.resources import canonical_files


def build_from_canonical(url: str) -> None:
    """Run every file listed in sql/manifest.txt, in order, in one transaction."""
    with psycopg.connect(url) as conn, conn.transaction():
        for path in canonical_files():
            _run_script(conn, path.read_text())


def _run_script(conn: psycopg.Connection[Any], text: str) -> None:
    # No parameters: psycopg sends the whole file with the simple-query protocol.
    conn.execute(text.encode())
