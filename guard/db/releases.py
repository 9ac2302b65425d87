"""The release record: which migrations each released version shipped, and their checksums.

A released migration is immutable: a database that applied it must never meet a different
text under the same name. migrations/releases.toml lists, per version, every migration with the
checksum `guard db apply` records in guard.migration_checksums (sha256 over the migration and
its rollback, guard.db.migrate.checksum), so a DBA can compare a database with a release, and
tests/db/test_releases.py fails when a released file changes or a new migration would sort
before a released one. A git tag alone does not travel with a copy of the repository; this file
does.

    python -m guard.db.releases record 0.1.0     # (make release VERSION=0.1.0)
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from guard.db.migrate import checksum
from guard.resources import migrations_dir


@dataclass(frozen=True)
class Release:
    version: str
    date: str
    migrations: dict[str, str]  # migration id -> checksum


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
            str(r["version"]), str(r["date"]), {str(k): str(v) for k, v in r["migrations"].items()}
        )
        for r in data.get("release", [])
    ]


def render(releases: list[Release]) -> str:
    lines = [
        "# Released versions of Booking Guard and the migrations each shipped, with the checksum",
        "# `guard db apply` records (guard.migration_checksums: sha256 over the migration and its",
        "# rollback). A released migration is immutable. Written by `make release VERSION=x.y.z`.",
    ]
    for release in releases:
        lines += ["", "[[release]]", f'version = "{release.version}"', f'date = "{release.date}"']
        lines += ["", "[release.migrations]"]
        lines += [f'"{name}" = "{sha}"' for name, sha in release.migrations.items()]
    return "\n".join(lines) + "\n"


def record(version: str, directory: Path | None = None, today: dt.date | None = None) -> Release:
    """Add a release holding every migration there is now; refuse a version already recorded
    and a record that is broken already (see problems)."""
    root = directory or migrations_dir()
    releases = load(root)
    if any(r.version == version for r in releases):
        raise ValueError(f"release {version} is already recorded in {record_path(root).name}")
    broken = problems(root)
    if broken:
        raise ValueError("the release record is broken: " + "; ".join(broken))
    release = Release(
        version,
        (today or dt.datetime.now(dt.UTC).date()).isoformat(),
        {name: checksum(root / f"{name}.sql") for name in migration_ids(root)},
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
