"""The breaker and retry benchmark against the peers as their users install them today.

    python -m bench.peers [--keep] [bench.breaker's options]     # make bench-peers

Creates a throwaway virtualenv, installs Booking Guard (this checkout, with its dependencies)
and the newest pybreaker and tenacity from the package index into it, and runs bench/breaker.py
there: the same rows and ratio table as `python -m bench.breaker`, measured against the peers'
current releases instead of the versions the development environment pins. The virtualenv is
removed afterwards (--keep leaves it and prints where). Needs the package index.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = ("pybreaker", "tenacity")


def _run(argv: list[str], **kwargs: object) -> None:
    subprocess.run(argv, check=True, **kwargs)  # type: ignore[call-overload]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the virtualenv in place")
    args, bench_args = parser.parse_known_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="guard-peers-"))
    try:
        venv.create(directory, with_pip=True)
        python = str(directory / "bin" / "python")
        print(
            f"[bench] installing Booking Guard and {', '.join(PEERS)} into {directory}",
            file=sys.stderr,
            flush=True,
        )
        _run(
            [
                python,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                str(ROOT),
                *PEERS,
            ],
            stdout=subprocess.DEVNULL,
        )
        versions = subprocess.run(
            [
                python,
                "-c",
                "import importlib.metadata as m;"
                f"print(', '.join(p + ' ' + m.version(p) for p in {PEERS!r}))",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        print(f"peers: {versions}", flush=True)
        # From the checkout, so the bench and its helpers are the ones of this tree; its table
        # printed from here, so that `python -m bench.record peers` keeps it.
        measured = subprocess.run(
            [python, "-m", "bench.breaker", *bench_args],
            cwd=ROOT,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "160"},
        )
        print(measured.stdout, end="", flush=True)
    finally:
        if args.keep:
            print(f"[bench] kept {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
