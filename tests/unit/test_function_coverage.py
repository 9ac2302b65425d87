"""The record behind mutation/coverage.py: a cluster started with the coverage directory set
writes down, when a test's database is dropped, which `guard` functions it ran and for which test
file, counting a call made by a session still open at the drop."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres import COVERAGE_ENV, throwaway_cluster


def test_a_dropped_database_records_the_guard_functions_it_ran(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(COVERAGE_ENV, str(tmp_path))
    with throwaway_cluster() as cluster, cluster.database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA guard")
            for name in ("ran_once", "never_ran", "ran_in_an_open_session"):
                conn.execute(
                    f"CREATE FUNCTION guard.{name}() RETURNS int"
                    " LANGUAGE plpgsql AS 'BEGIN RETURN 1; END'"
                )
            conn.execute("CREATE FUNCTION public.not_ours() RETURNS int LANGUAGE sql AS 'SELECT 1'")
            conn.execute("SELECT guard.ran_once(), public.not_ours()")
        still_open = psycopg.connect(url, autocommit=True)  # its counts arrive only as it ends
        still_open.execute("SELECT guard.ran_in_an_open_session()")
    still_open.close()
    records = [json.loads(line) for f in tmp_path.glob("functions-*.jsonl") for line in f.open()]
    assert records == [
        {
            "test": "tests/unit/test_function_coverage.py",
            "functions": ["ran_in_an_open_session", "ran_once"],
        }
    ]


def test_without_the_directory_nothing_is_recorded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(COVERAGE_ENV, raising=False)
    with (
        throwaway_cluster() as cluster,
        cluster.database() as url,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        assert conn.execute("SHOW track_functions").fetchone() == ("none",)
    assert not list(tmp_path.iterdir())
