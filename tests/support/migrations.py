"""The shipped migrations copied where a test may add its own to them."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg

from guard.resources import migrations_dir
from guard.schema import definitions


def shipped_migrations(tmp_path: Path, added: Mapping[str, str] | None = None) -> Path:
    """A copy of Booking Guard's migrations in `tmp_path/migrations`, with the files `added`
    (file name -> SQL: a migration and its `.rollback.sql`) written beside them."""
    directory = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), directory)
    for name, text in (added or {}).items():
        (directory / name).write_text(text)
    return directory


def list_before_the_grants(sql_root: Path, *paths: str) -> None:
    """Add files to a copy of sql/'s manifest where a new definition goes: before the grants
    (triggers and policies run after the grants wherever they stand)."""
    manifest = sql_root / "manifest.txt"
    text = manifest.read_text()
    assert text.count("grants/role_grants.sql\n") == 1
    manifest.write_text(
        text.replace(
            "grants/role_grants.sql\n",
            "".join(f"{p}\n" for p in paths) + "grants/role_grants.sql\n",
        )
    )


def apply_every_definition(
    conn: psycopg.Connection[Any], wanted: list[definitions.Definition], **options: Any
) -> definitions.Outcome:
    """definitions.apply with every file run, changed or not: each record is first marked STALE,
    as a migration that changed every object would."""
    conn.execute("UPDATE guard.definitions SET sha256 = %s", (definitions.STALE,))
    return definitions.apply(conn, wanted, **options)
