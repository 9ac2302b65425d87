"""The release record (migrations/releases.toml): which migrations each released version shipped,
with the checksums `guard db apply` records, so that a DBA can compare a database with a release
and tests/db/test_releases.py fails when a released file changes. A git tag alone does not travel
with a copy of the repository; this file does.

    python -m guard.schema.releases record 0.1.0     # (make release VERSION=0.1.0)"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from guard.resources import migrations_dir
from guard.schema.definitions import bundle_path, checkout_definitions, write_bundle


def checksum(migration_path: str | Path) -> str:
    """sha256 over a migration file and its rollback file (what guard.migration_checksums
    records when it is applied)."""
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


def bundle_checksum(version: str, directory: Path | None = None) -> str | None:
    path = bundle_path(version, directory)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def record_path(directory: Path | None = None) -> Path:
    return (directory or migrations_dir()) / "releases.toml"


def migration_ids(directory: Path | None = None) -> list[str]:
    """Every forward migration, in the order the migrator applies them (file name order)."""
    root = directory or migrations_dir()
    return sorted(
        p.name.removesuffix(".sql")
        for p in root.glob("*.sql")
        if not p.name.endswith(".rollback.sql")
    )


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


def render(releases: list[Release]) -> str:
    lines = [
        "# Released versions of Booking Guard and the migrations each shipped, with the checksum",
        "# `guard db apply` records (guard.migration_checksums: sha256 over the migration and its",
        "# rollback). A released migration is immutable. Written by `make release VERSION=x.y.z`.",
        "# definitions: sha256 of releases/VERSION.definitions.json.gz, the functions, views,",
        "# triggers, policies and grants it shipped (`guard db rollback` to it applies them).",
    ]
    for release in releases:
        lines += ["", "[[release]]", f'version = "{release.version}"', f'date = "{release.date}"']
        if release.definitions is not None:
            lines.append(f'definitions = "{release.definitions}"')
        lines += ["", "[release.migrations]"]
        lines += [f'"{name}" = "{sha}"' for name, sha in release.migrations.items()]
    return "\n".join(lines) + "\n"


def record(version: str, directory: Path | None = None, today: dt.date | None = None) -> Release:
    """Add a release holding every migration there is now, and its definitions (sql/, as
    migrations/releases/VERSION.definitions.json.gz); refuse a version already recorded and a
    record that is broken already (see problems)."""
    root = directory or migrations_dir()
    releases = load(root)
    if any(r.version == version for r in releases):
        raise ValueError(f"release {version} is already recorded in {record_path(root).name}")
    broken = problems(root)
    if broken:
        raise ValueError("the release record is broken: " + "; ".join(broken))
    # a versioned rollback restores tables only: a rollback to this release applies these
    write_bundle(version, checkout_definitions(), root)
    release = Release(
        version,
        (today or dt.datetime.now(dt.UTC).date()).isoformat(),
        {name: checksum(root / f"{name}.sql") for name in migration_ids(root)},
        bundle_checksum(version, root),
    )
    record_path(root).write_text(render([*releases, release]))
    return release


def problems(directory: Path | None = None) -> list[str]:
    """What breaks the promise of the record: a released migration missing or changed, a release
    that lost a migration of the one before, a new migration that sorts before a released one
    (the migrator would apply it out of order on a database that has the release)."""
    root = directory or migrations_dir()
    releases = load(root)
    found = []
    for release in releases:
        for name, sha in release.migrations.items():
            path = root / f"{name}.sql"
            if not path.exists():
                found.append(f"{name} (released in {release.version}) is missing")
            elif checksum(path) != sha:
                found.append(f"{name} (released in {release.version}) was changed")
    for older, newer in itertools.pairwise(releases):
        lost = sorted(set(older.migrations) - set(newer.migrations))
        if lost:
            found.append(f"release {newer.version} lacks {', '.join(lost)} of {older.version}")
        if older.definitions is not None and newer.definitions is None:
            found.append(f"release {newer.version} keeps no definitions ({older.version} does)")
    for release in releases:
        if release.definitions is None:
            continue
        actual = bundle_checksum(release.version, root)
        if actual is None:
            found.append(f"the definitions of {release.version} are missing")
        elif actual != release.definitions:
            found.append(f"the definitions of {release.version} were changed")
    if releases:
        released = set().union(*(r.migrations for r in releases))
        last = max(released)
        early = [n for n in migration_ids(root) if n not in released and n < last]
        found += [f"{n} is not released but sorts before the released {last}" for n in early]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Record a release of the migrations.")
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="record every migration there is now as VERSION")
    rec.add_argument("version")
    args = parser.parse_args(argv)
    try:
        release = record(args.version)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"recorded {release.version}: {len(release.migrations)} migrations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
