"""Which test files execute which functions of schema guard, by running them.

Naming is not executing: a trigger function no test names runs in every test that writes its
table, and a helper runs under every function that calls it. So the suite runs once (tests
marked slow left out, as in a generated mutant's run) on clusters that count the calls of every
function (`track_functions = all`); every test database is a clone of its own, and when one is
dropped the functions it ran are written down with its test file (tests/support/postgres.py,
COVERAGE_ENV). The map is kept in `.mutation-coverage/`, named by a digest of the code under
test (guard/, sql/, migrations/), so it is made once per state of the code, about as long as
`make test`'s parallel pass. A test file written since is left out of the map until the code
changes; the naming rule still finds it (a test written for a survivor names its function).

PostgreSQL counts a call only where the function runs as one: a LANGUAGE sql function the
planner inlines into the query that calls it (guard.is_active_appointment in a view) is not
counted there, so for such a function the map is short and the naming rule does the work.

A test that failed in that run still counts as executing what it ran: the map chooses which
tests run against a mutant, and only a covering test that passes unmutated can kill one (the
baseline in mutation/mutate.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from mutation import PYTEST
from tests.support.postgres import COVERAGE_ENV

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".mutation-coverage"
# The code under test: a change to it can change what every test runs.
INPUTS = ("guard", "sql", "migrations")

Coverage = Mapping[str, frozenset[str]]


def digest(root: Path = ROOT) -> str:
    """sha256 over the path and content of every file of INPUTS (caches and bytecode left out)."""
    hasher = hashlib.sha256()
    for part in INPUTS:
        for path in sorted((root / part).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            hasher.update(path.relative_to(root).as_posix().encode() + b"\0")
            hasher.update(path.read_bytes() + b"\0")
    return hasher.hexdigest()[:16]


def cached(root: Path = ROOT) -> Coverage | None:
    """The map of the tree as it is now, if one was made; None otherwise."""
    path = CACHE / f"{digest(root)}.json"
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    return {name: frozenset(files) for name, files in raw.items()}


def function_coverage(root: Path = ROOT, workers: int = 4) -> Coverage:
    """function name -> the test files (pgTAP files by their own path) that executed it; made
    by running the suite when the tree has no map yet."""
    found = cached(root)
    if found is not None:
        return found
    key = digest(root)
    started = time.monotonic()
    print("coverage: running the suite once to see which tests execute which function", flush=True)
    with tempfile.TemporaryDirectory(prefix="guard-coverage-") as records:
        subprocess.run(
            [
                *PYTEST,
                "-m",
                "not slow and not history",
                "-n",
                str(workers),
                "--dist",
                "loadfile",
                "tests",
            ],
            cwd=root,
            env={**os.environ, COVERAGE_ENV: records},
            stdout=subprocess.DEVNULL,
            check=False,  # a failing test still executed what it ran
        )
        executed: dict[str, set[str]] = {}
        for record in sorted(Path(records).glob("functions-*.jsonl")):
            for line in record.read_text().splitlines():
                entry = json.loads(line)
                for name in entry["functions"]:
                    executed.setdefault(name, set()).add(entry["test"])
    if not executed:
        raise RuntimeError("coverage: the suite recorded no function call; is pytest broken?")
    CACHE.mkdir(exist_ok=True)
    (CACHE / f"{key}.json").write_text(
        json.dumps({name: sorted(files) for name, files in sorted(executed.items())}, indent=0)
    )
    print(
        f"coverage: {len(executed)} functions executed, map made in "
        f"{time.monotonic() - started:.0f} s (.mutation-coverage/{key}.json)",
        flush=True,
    )
    return {name: frozenset(files) for name, files in executed.items()}
