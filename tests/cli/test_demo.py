"""`guard demo` starts an embedded cluster, applies everything, loads data, and is re-runnable."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest


def _guard(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guard.cli", *args],
        env={**os.environ, "GUARD_STATE_DIR": str(state_dir)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


README = Path(__file__).resolve().parents[2] / "README.md"
# the README's sample: lines that must appear in this order in the demo's output, where the port
# and the paths are the author's and `...` stands for the rest of a line
_SAMPLE_VARIES = {
    r"45369": r"\d+",
    re.escape("/home/you/booking-guard/.guard-state"): r"\S+",  # GUARD_STATE_DIR
    re.escape("/home/you/booking-guard"): r"\S+",
}


def _readme_sample() -> list[str]:
    text = README.read_text()
    start = text.index("## What `make demo` shows")
    block = re.search(r"^```\n(.*?)^```", text[start:], re.DOTALL | re.MULTILINE)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.strip()]


def _sample_pattern(line: str, exact_numbers: bool) -> re.Pattern[str]:
    # `<every migration ...>`: a placeholder for what changes with every release
    pattern = ".*".join(re.escape(part) for part in re.split(r"<[^>]*>", line))
    for fixed, varying in _SAMPLE_VARIES.items():
        pattern = pattern.replace(fixed, varying)
    pattern = pattern.replace(re.escape("..."), ".*")
    if not exact_numbers:  # ids and counts of the booking and dispatch steps
        pattern = re.sub(r"(?<![\\])\d+", r"\\d+", pattern)
    return re.compile(pattern + "$")


def assert_readme_sample_matches(output: str) -> None:
    """Every line of the README's sample is a line of `output`, in order. The counts of the
    sample data, of detection and reconciliation and the final tally are exact; the migrations'
    count and the ids and counts of steps 8 and 9 (bookings, alerts) may differ."""
    lines = output.splitlines()
    position = 0
    for line in _readme_sample():
        exact = not re.match(r"\s*(call \d+|\{|9\.|8\.|2\.|1\.)", line)
        pattern = _sample_pattern(line, exact)
        found = next((i for i in range(position, len(lines)) if pattern.match(lines[i])), None)
        assert found is not None, f"README's demo sample line not in the output (in order): {line}"
        position = found + 1


@pytest.mark.slow
def test_demo_starts_loads_reuses_and_stops(reachable_dir: Path) -> None:
    state = reachable_dir / "state"
    try:
        first = _guard(state, "demo")
        assert first.returncode == 0, first.stderr
        assert "Embedded PostgreSQL started" in first.stdout
        assert_readme_sample_matches(first.stdout)
        assert "giving up after" not in first.stderr, "retry warnings break step 8's lines"
        url = re.search(r"psql (\S+)", first.stdout)
        assert url, first.stdout
        for step in (
            "Detection over the whole history",
            "Reconciliation",
            "Staged enforcement",
            "Detection again",
        ):
            assert step in first.stdout, first.stdout
        # step 9 shows the alert of the first rolled-back booking, named by check and rule
        assert '"check_id": "booking_rolled_back"' in first.stdout, first.stdout
        assert '"rule_id": "I7_booking_failures"' in first.stdout, first.stdout
        with psycopg.connect(url.group(1)) as conn:
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM companies), (SELECT count(*) FROM calls),"
                " (SELECT count(*) FROM appointments),"
                " (SELECT count(*) FROM guard.correction_audit),"
                " (SELECT count(*) FROM guard.review_items WHERE status = 'open'),"
                " (SELECT count(*) FROM pg_constraint WHERE conname LIKE 'guard%%'"
                "  AND NOT convalidated)"
            ).fetchone()
        assert counts is not None
        companies, calls, appointments, corrections, reviews, not_valid = counts
        assert companies == 3 and calls > 3000 and appointments > 1000
        assert corrections > 500, "the incident's bad rows were corrected, and audited"
        assert reviews > 0, "what could not be corrected waits for a person"
        assert not_valid == 0, "the constraints are validated"
        with psycopg.connect(url.group(1)) as conn:
            kpis = {
                kpi: (status, value)
                for kpi, status, value in conn.execute(
                    "SELECT kpi, status, current_value FROM guard.kpis"
                ).fetchall()
            }
        print(f"demo KPIs: {kpis}")
        # Step 4 runs what it names, `guard check --all`, whose batches read history: an old bad
        # row found now is not a detection that took 28 days (guard.run_detection('-infinity')
        # opened its alerts with observed_at, and the KPI showed such a breach).
        assert kpis["detection_latency_p95"][0] != "breach", kpis

        # the reporting login of docs/bi.md exists and sees the sample companies' alerts
        bi_url = re.search(r"psql (postgresql://bi_user@\S+)", first.stdout)
        assert bi_url, first.stdout
        with psycopg.connect(bi_url.group(1)) as bi:
            row = bi.execute("SELECT count(*) FROM guard.alerts WHERE status = 'open'").fetchone()
        assert row is not None and row[0] > 0, "docs/bi.md's examples return rows as printed"
        # the circuit the demo opened is visible to `guard breaker list` afterwards
        assert "circuit OPEN" in first.stdout
        listed = subprocess.run(
            [
                sys.executable,
                "-m",
                "guard.cli",
                "--database-url",
                url.group(1),
                "breaker",
                "list",
                "--json",
            ],
            env={**os.environ, "GUARD_REDIS_URL": "redis://127.0.0.1:1/0"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        circuits = {c["key"]: c for c in json.loads(listed.stdout)}
        assert circuits["appointment_booking:service:1"]["state"] == "open", listed
        assert listed.returncode == 1, "Redis unreachable: said, exit 1 (README)"
        # how to reach guard, and what to look at next
        assert "`guard` is" in first.stdout and "guard alerts list" in first.stdout
        assert re.search(r"Migrations: applied \d+, 0001_guard_schema \.\.\. \S+", first.stdout)

        second = _guard(state, "demo")
        assert second.returncode == 0, second.stderr
        assert "reused (already running)" in second.stdout
        assert "Sample data: already loaded" in second.stdout
    finally:
        stopped = _guard(state, "demo", "--stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout


def test_unreachable_state_dir_is_one_clear_line(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root hands the cluster to another OS user")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    result = _guard(private / "state", "demo")
    assert result.returncode == 1
    assert result.stderr.startswith("guard: error: the postgres OS user cannot reach")
    assert result.stderr.count("\n") == 1


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """pytest's tmp_path is private to root; the postgres OS user must reach the state dir."""
    path = Path(tempfile.mkdtemp(prefix="guard-demo-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_demo_in_a_directory_postgres_cannot_enter(tmp_path: Path) -> None:
    """No configuration needed: a checkout under a root-only directory puts the demo's state
    under /tmp instead of failing."""
    if os.geteuid() != 0:
        pytest.skip("only root hands the cluster to another OS user")
    project = tmp_path / "private" / "project"
    project.mkdir(parents=True)
    (tmp_path / "private").chmod(0o700)
    env = {key: value for key, value in os.environ.items() if key != "GUARD_STATE_DIR"}

    def guard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "guard.cli", *args],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    started = guard("demo")
    try:
        assert started.returncode == 0, started.stderr
        data_dir = re.search(r"data in (\S+)", started.stdout)
        assert data_dir and data_dir.group(1).startswith(
            tempfile.gettempdir() + "/booking-guard-demo-"
        )
    finally:
        stopped = guard("demo", "--stop")
        if data_dir := re.search(r"data in (\S+)/pgdata", started.stdout):
            shutil.rmtree(data_dir.group(1), ignore_errors=True)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
