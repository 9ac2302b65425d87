"""What `guard db apply` costs on an empty database, against the same SQL run without it.

    python -m bench.apply [--rounds N] [--json]

One throwaway cluster with durable commits (fsync, synchronous_commit on: what a DBA's server
does); every measurement creates a fresh empty database and times, as the superuser:

- `guard db apply`: the command as a DBA runs it, a process of its own (interpreter start and
  imports included), every migration with its lock retries, bookkeeping and bridges, then the
  definitions from sql/;
- the same step in process (guard.schema.migrate.Migrator.apply): the command without the start
  of a Python process and the CLI around it;
- baseline: the same migration files in one psql session (`psql -f` each, in order): the
  migrations' own SQL, without the definitions step, lock retries or bookkeeping;
- baseline: the canonical sql/ files (sql/manifest.txt) in one psql transaction (`psql -1`): the
  whole schema `guard db apply` ends with, built the fastest way PostgreSQL allows.

The variants run in turns, round by round, so that drift in the machine's speed reaches all of
them alike; figures are medians. The ratios are against each baseline of the same run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._cluster import bench_cluster, progress
from guard.demo.embedded import EmbeddedCluster, pg_bindir
from guard.resources import canonical_files, migrations_dir
from guard.schema.migrate import Migrator


def _fresh_database(cluster: EmbeddedCluster, name: str) -> str:
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return cluster.url(name)


def _psql(url: str, files: list[Path], *, one_transaction: bool) -> None:
    argv = [str(pg_bindir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url]
    if one_transaction:
        argv.append("-1")
    for path in files:
        argv += ["-f", str(path)]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _guard_apply(url: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "guard.cli", "--database-url", url, "db", "apply"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )


def _migrator_apply(url: str) -> None:
    with Migrator(url, progress=lambda _line: None, install_when_empty=True) as migrator:
        migrator.apply()


def _timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def measure(rounds: int, log: Callable[[str], None]) -> dict[str, list[float]]:
    migrations = sorted(
        path for path in migrations_dir().glob("*.sql") if not path.name.endswith(".rollback.sql")
    )
    canonical = canonical_files()
    variants: dict[str, Callable[[str], None]] = {
        "guard db apply": _guard_apply,
        "Migrator.apply (in process)": _migrator_apply,
        "migrations, one psql session": lambda url: _psql(url, migrations, one_transaction=False),
        "canonical sql/, one transaction": lambda url: _psql(url, canonical, one_transaction=True),
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    with bench_cluster(durable=True) as cluster:
        for number in range(rounds):
            log(f"round {number + 1} of {rounds}")
            for index, (name, run) in enumerate(variants.items()):
                url = _fresh_database(cluster, f"apply_{index}")
                seconds[name].append(_timed(functools.partial(run, url)))
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    seconds = measure(args.rounds, progress)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    session = medians["migrations, one psql session"]
    canonical = medians["canonical sql/, one transaction"]
    if args.json:
        print(json.dumps({"rounds": args.rounds, "seconds": seconds, "median": medians}, indent=2))
        return 0
    print(f"empty database, durable commits, {args.rounds} rounds, medians")
    print(f"{'variant':<34} {'s':>7} {'/ psql session':>15} {'/ canonical':>12}")
    for name, median in medians.items():
        print(f"{name:<34} {median:>7.2f} {median / session:>15.2f} {median / canonical:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
