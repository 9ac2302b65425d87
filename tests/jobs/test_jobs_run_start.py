"""`guard jobs run` (the loop) started while no primary can be reached, as during a failover:
it retries with the backoff of `guard watch` instead of exiting (the standby case:
tests/ha/test_standby_commands.py)."""

from __future__ import annotations

import subprocess
import sys
import time

from guard.demo.embedded import free_port
from tests.support.polling import collect_lines

STARTED_WITHIN_S = 60


def test_jobs_run_started_without_a_database_retries_with_backoff() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/guard"  # nothing listens there
    process = subprocess.Popen(
        [sys.executable, "-m", "guard.cli", "--database-url", url, "jobs", "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines, reader = collect_lines(process.stderr)
    try:
        # attempts at 0, 1 and 3 s of its loop, which a loaded machine starts seconds after the
        # process (the import alone took 3 s there): waited for, not a fixed time from the start
        deadline = time.monotonic() + STARTED_WITHIN_S
        while sum("retrying in" in line for line in lines) < 3 and time.monotonic() < deadline:
            assert process.poll() is None, "guard jobs run exited without a database"
            time.sleep(0.05)
        assert process.poll() is None, "guard jobs run exited without a database"
    finally:
        process.terminate()
        process.wait(timeout=20)
        reader.join(timeout=10)
    err = "".join(lines)
    warnings = [line for line in err.splitlines() if line.startswith("guard: warning:")]
    assert len(warnings) >= 2, err
    assert all("database unavailable (cannot connect to" in line for line in warnings), err
    assert "retrying in 1.0 s" in warnings[0] and "retrying in 2.0 s" in warnings[1], err
    assert "Traceback" not in err and "guard: error:" not in err
