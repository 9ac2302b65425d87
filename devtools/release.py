"""Recording a release (`make release VERSION=x.y.z`): its migrations and checksums in
migrations/releases.toml (guard.schema.releases reads it), and its definitions beside it, so that
a DBA can compare a database with a release and tests/db/test_releases.py fails when a released
file changes. A git tag alone does not travel with a copy of the repository; this file does.

    python -m devtools.release record 0.1.0     # (make release VERSION=0.1.0)"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import itertools
import json
import sys
from pathlib import Path

from guard.resources import migrations_dir
from guard.schema.definitions import Definition, bundle_path, checkout_definitions
from guard.schema.releases import Release, checksum, load, record_path


def write_bundle(
    version: str, definitions: list[Definition], directory: Path | None = None
) -> Path:
    """Keep a release's definitions with it (gzip with no timestamp: the same input gives the
    same bytes)."""
    target = bundle_path(version, directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps(
        {
            "version": version,
            "definitions": [{"path": d.path, "text": d.text} for d in definitions],
        },
        indent=0,
        sort_keys=True,
    ).encode()
    target.write_bytes(gzip.compress(body, mtime=0))
    return target


def bundle_checksum(version: str, directory: Path | None = None) -> str | None:
    path = bundle_path(version, directory)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def migration_ids(directory: Path | None = None) -> list[str]:
    """Every forward migration, in the order the migrator applies them (file name order)."""
    root = directory or migrations_dir()
    return sorted(
        p.name.removesuffix(".sql")
        for p in root.glob("*.sql")
        if not p.name.endswith(".rollback.sql")
    )


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
