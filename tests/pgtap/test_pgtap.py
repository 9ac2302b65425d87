"""One pytest test per pgtests/**/*.sql file (in folders by area): a fresh database cloned from
the migrated template, the file run whole, its plan checked, failing assertions shown with their
have/want. The same files run under pg_prove (test_pg_prove)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ROOT
from tests.support.postgres import Cluster
from tests.support.tap import run_tap_file

PGTAP_FILES = sorted((ROOT / "pgtests").rglob("*.sql"))
# The files' shared set-up (functions in schema pgtap_setup), loaded before them.
HELPERS = Path(__file__).with_name("helpers.sql")


def test_there_are_pgtap_files() -> None:
    assert PGTAP_FILES, "no pgtests/**/*.sql found"
    assert not list((ROOT / "pgtests").glob("*.sql")), "a pgTAP file belongs in an area's folder"


# The files whose triggers and functions derive or repair booking flags: run once more with
# every cached plan generic (parameters instead of constants), as a long-lived connection's
# triggers run once PostgreSQL has switched their plans; results must not depend on the plan.
GENERIC_PLAN_NAMES = (
    "invariants/i3_booking_flags.sql",
    "invariants/i5_tenant.sql",
    "correction/reconcile.sql",
    "booking/validate_booking.sql",
)
GENERIC_PLAN_FILES = [ROOT / "pgtests" / name for name in GENERIC_PLAN_NAMES]


def _name(path: Path) -> str:
    """The test id: the file's path under pgtests/ (area/name.sql)."""
    return path.relative_to(ROOT / "pgtests").as_posix()


def _run_pgtap_file(path: Path, db_url: str, *settings: str) -> None:
    text = path.read_text()
    statements = [
        line.strip().upper()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("--")
    ]
    assert statements[0] == "BEGIN;", f"{path.name} must start with BEGIN;"
    assert statements[-1] == "ROLLBACK;", f"{path.name} must end with ROLLBACK; (never commit)"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(HELPERS.read_text())
        for setting in settings:
            conn.execute(setting)
        result = run_tap_file(conn, text)
    assert result.planned is not None, f"{path.name} declared no plan"
    assert not result.failed, f"{path.name}: failing assertions:\n" + "\n".join(result.failed)
    assert result.ran == result.planned, (
        f"{path.name}: planned {result.planned} tests, ran {result.ran}"
    )


@pytest.mark.parametrize("path", PGTAP_FILES, ids=_name)
def test_pgtap_file(path: Path, db_url: str) -> None:
    _run_pgtap_file(path, db_url)


def test_generic_plan_files_exist() -> None:
    assert all(path.is_file() for path in GENERIC_PLAN_FILES), GENERIC_PLAN_NAMES


@pytest.mark.parametrize("path", GENERIC_PLAN_FILES, ids=_name)
def test_pgtap_file_with_generic_plans(path: Path, db_url: str) -> None:
    _run_pgtap_file(path, db_url, "SET plan_cache_mode = force_generic_plan")


# Slow by nature: every file once more, in one pg_prove run. `make test` runs each file above;
# the documented pg_prove run (tests/pgtap/test_testing_doc.py) does this too on every version.
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pg_prove") is None, reason="pg_prove is installed by make setup")
def test_pg_prove_runs_the_same_files(pg_cluster: Cluster, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(HELPERS.read_text())
    completed = subprocess.run(
        [
            "pg_prove",
            "--dbname",
            db_url.rsplit("/", 1)[1],
            "--host",
            pg_cluster.host,
            "--port",
            str(pg_cluster.port),
            "--username",
            pg_cluster.user,
            *map(str, PGTAP_FILES),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    assert "Result: PASS" in completed.stdout
