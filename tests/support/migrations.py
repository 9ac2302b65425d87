"""The shipped migrations copied where a test may add its own to them."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from guard.resources import migrations_dir


def shipped_migrations(tmp_path: Path, added: Mapping[str, str] | None = None) -> Path:
    """A copy of Booking Guard's migrations in `tmp_path/migrations`, with the files `added`
    (file name -> SQL: a migration and its `.rollback.sql`) written beside them."""
    directory = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), directory)
    for name, text in (added or {}).items():
        (directory / name).write_text(text)
    return directory
