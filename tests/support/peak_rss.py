"""A command's own peak memory. A child started from the (large) test process reports that
process's peak as its own: the kernel folds the address space it was forked or vforked from into
its maximum RSS at exec. So the command is started by a small launcher, which reports the peak of
its own child alone."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from typing import IO, Any

_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as peak:
    peak.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(
    argv: list[str], env: dict[str, str], stdout: IO[Any] | int, stderr: IO[Any] | int
) -> tuple[int, float]:
    """Run `argv` to its end: its exit code and its own peak RSS in MB."""
    with tempfile.NamedTemporaryFile("r") as peak:
        code = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, peak.name, *argv],
            stdout=stdout,
            stderr=stderr,
            env=env,
            check=False,
        ).returncode
        return code, int(peak.read()) / 1024
