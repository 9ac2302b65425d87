"""The release record (migrations/releases.toml): which migrations each released version shipped,
with the checksums `guard db apply` records. `make release` writes it (devtools/release.py)."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from guard.resources import migrations_dir


def checksum(migration_path: str | Path) -> str:
    """sha256 over a migration file and its rollback file (guard.migration_checksums)."""
    path = Path(migration_path)
    digest = hashlib.sha256(path.read_bytes())
    rollback = path.with_name(path.name.removesuffix(".sql") + ".rollback.sql")
    if path.suffix == ".sql" and rollback.exists():
        digest.update(b"\0rollback\0")
        digest.update(rollback.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Release:
    version: str
    date: str
    migrations: dict[str, str]  # migration id -> checksum
    # sha256 of migrations/releases/VERSION.definitions.json.gz: the definitions it shipped
    # (None for a release whose migrations carry them all: 0.1.0)
    definitions: str | None = None

    @property
    def last_migration(self) -> str:
        return max(self.migrations)


def release_levels(directory: Path | None = None) -> dict[str, Release]:
    """The last migration of each release that keeps its definitions -> that release: the levels
    at which `guard db rollback` (and `apply --to`) put a release's definitions in place."""
    return {r.last_migration: r for r in load(directory) if r.definitions is not None}


def record_path(directory: Path | None = None) -> Path:
    return (directory or migrations_dir()) / "releases.toml"


def load(directory: Path | None = None) -> list[Release]:
    source = record_path(directory)
    if not source.exists():
        return []
    data = tomllib.loads(source.read_text())
    return [
        Release(
            str(r["version"]),
            str(r["date"]),
            {str(k): str(v) for k, v in r["migrations"].items()},
            str(r["definitions"]) if "definitions" in r else None,
        )
        for r in data.get("release", [])
    ]
