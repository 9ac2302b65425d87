"""docs/testing.md tells a DBA how to run pgtests/ with pg_prove: its shell block, run as it
stands against a real cluster (a superuser, as the doc says), must end with "Result: PASS"."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.postgres import Cluster

DOC = ROOT / "docs" / "testing.md"
SERVER_BIN = "/usr/lib/postgresql/15/bin"


@pytest.mark.history
def test_the_documented_pg_prove_run_passes(pg_cluster: Cluster) -> None:
    [block] = re.findall(r"^```sh\n(.*?)^```", DOC.read_text(), re.DOTALL | re.MULTILINE)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PG", "GUARD_"))}
    env.update(
        PGHOST=pg_cluster.host,
        PGPORT=str(pg_cluster.port),
        PGUSER=pg_cluster.user,
        PATH=os.pathsep.join([str(Path(sys.executable).parent), SERVER_BIN, env["PATH"]]),
    )
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Result: PASS" in done.stdout
    assert "pgtests/security/security.sql" in done.stdout, "every file ran"
