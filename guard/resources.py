"""Where the migrations and canonical SQL live: next to the package in a wheel, at the top of the
repository in a checkout."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    bundled = _PACKAGE / "_data" / name
    if bundled.is_dir():
        return bundled
    return _PACKAGE.parent / name


def migrations_dir() -> Path:
    return _data_dir("migrations")


def sql_dir() -> Path:
    return _data_dir("sql")


def canonical_files(root: Path | None = None) -> list[Path]:
    """The canonical SQL files in load order (sql/manifest.txt): what versioned migrations
    create, then the definitions guard.schema.definitions applies."""
    root = root or sql_dir()
    names = [
        line.strip()
        for line in (root / "manifest.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return [root / name for name in names]


def snapshot_path() -> Path:
    """The catalog snapshot of the canonical SQL that `guard db verify` compares against."""
    return _PACKAGE / "schema" / "canonical_snapshot.json"
