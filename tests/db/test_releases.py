"""The release record (migrations/releases.toml, guard.schema.releases, devtools.release):
released migrations and a release's definitions are immutable, every release keeps its
predecessor's migrations, nothing new sorts before them, and the version in pyproject.toml and
CHANGELOG.md names the newest release."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tomllib
from pathlib import Path

import pytest

import guard
from devtools import release as recording
from guard.resources import migrations_dir
from guard.schema import definitions, releases
from guard.schema.releases import checksum

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 1, 2)


def test_the_repository_keeps_every_promise_of_its_release_record() -> None:
    assert recording.problems() == []


def test_the_newest_release_is_the_package_version_and_has_a_changelog_section() -> None:
    recorded = releases.load()
    assert recorded, "no release recorded in migrations/releases.toml"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert recorded[-1].version == version
    assert guard.__version__ == version, "guard --version says another version"
    changelog = (ROOT / "CHANGELOG.md").read_text()
    for release in recorded:
        heading = re.compile(rf"^## {re.escape(release.version)} - {release.date}$", re.M)
        assert heading.search(changelog), f"CHANGELOG.md has no '## {release.version} - date'"


def test_recorded_checksums_are_what_guard_db_apply_records() -> None:
    newest = releases.load()[-1]
    for name, sha in newest.migrations.items():
        assert checksum(migrations_dir() / f"{name}.sql") == sha


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the migrations with a record of their first three as release 1.0.0."""
    target = tmp_path / "migrations"
    target.mkdir()
    for name in recording.migration_ids()[:3]:
        for suffix in (".sql", ".rollback.sql"):
            source = migrations_dir() / f"{name}{suffix}"
            if source.exists():
                shutil.copy(source, target / source.name)
    recording.record("1.0.0", target, DAY)
    return target


def test_a_changed_released_migration_breaks_the_record(copy: Path) -> None:
    first = sorted(copy.glob("*.rollback.sql"))[0]
    first.write_text(first.read_text() + "\n-- an edit\n")
    assert recording.problems(copy) == [
        f"{first.name.removesuffix('.rollback.sql')} (released in 1.0.0) was changed"
    ]
    with pytest.raises(ValueError, match="broken"):
        recording.record("1.1.0", copy, DAY)


def test_a_new_migration_must_sort_after_the_released_ones(copy: Path) -> None:
    released = recording.migration_ids(copy)
    early = released[0] + "a_late_fix"
    (copy / f"{early}.sql").write_text("SELECT 1;\n")
    assert recording.problems(copy) == [
        f"{early} is not released but sorts before the released {released[-1]}"
    ]


def test_a_release_keeps_the_migrations_of_the_one_before(copy: Path) -> None:
    gone = recording.migration_ids(copy)[-1]
    (copy / f"{gone}.sql").unlink()
    (copy / f"{gone}.rollback.sql").unlink(missing_ok=True)
    text = recording.render([*releases.load(copy), releases.Release("1.1.0", DAY.isoformat(), {})])
    releases.record_path(copy).write_text(text)
    assert recording.problems(copy) == [
        f"{gone} (released in 1.0.0) is missing",
        f"release 1.1.0 lacks {', '.join(sorted(releases.load(copy)[0].migrations))} of 1.0.0",
        "release 1.1.0 keeps no definitions (1.0.0 does)",
    ]


def test_recording_a_version_twice_is_refused(copy: Path) -> None:
    with pytest.raises(ValueError, match="already recorded"):
        recording.record("1.0.0", copy, DAY)
    new = recording.record("1.1.0", copy, DAY)
    assert [r.version for r in releases.load(copy)] == ["1.0.0", "1.1.0"]
    assert new.migrations == releases.load(copy)[0].migrations


def test_a_release_keeps_its_definitions_and_they_are_immutable(copy: Path) -> None:
    [recorded] = releases.load(copy)
    bundle = definitions.read_bundle("1.0.0", copy)
    assert bundle == definitions.checkout_definitions(), "the release keeps sql/'s definitions"
    assert recorded.definitions == recording.bundle_checksum("1.0.0", copy)
    path = definitions.bundle_path("1.0.0", copy)
    path.write_bytes(path.read_bytes() + b"\0")
    assert recording.problems(copy) == ["the definitions of 1.0.0 were changed"]
    path.unlink()
    assert recording.problems(copy) == ["the definitions of 1.0.0 are missing"]
