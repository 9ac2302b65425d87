"""A throwaway PostgreSQL cluster for one benchmark run (tuned for loading, removed afterwards)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from guard.demo.embedded import EmbeddedCluster

# The templates and a clone fit in shared_buffers; no autovacuum worker competes with a run.
BENCH_SETTINGS = {"shared_buffers": "1GB", "max_wal_size": "4GB", "autovacuum": "off"}


@contextmanager
def bench_cluster(
    extra_settings: Mapping[str, str] | None = None,
    *,
    durable: bool = False,
    parent: Path | None = None,
    keep: bool = False,
) -> Iterator[EmbeddedCluster]:
    """durable: fsync, synchronous_commit and full_page_writes at PostgreSQL's defaults (on).
    parent: the directory the cluster is made in (default /tmp); keep: leave it there, stopped."""
    # The postgres OS user must reach the state directory: mode 755, under a parent it may enter.
    state_dir = Path(tempfile.mkdtemp(prefix="guard-bench-", dir=parent or "/tmp"))
    state_dir.chmod(0o755)
    cluster = EmbeddedCluster(state_dir / "cluster", fast_unsafe=not durable)
    try:
        cluster.start()
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            for name, value in {**BENCH_SETTINGS, **(extra_settings or {})}.items():
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(value)
                    )
                )
        cluster.stop()
        cluster.start()  # shared_buffers takes effect on restart
        yield cluster
    finally:
        cluster.stop()
        if not keep:
            shutil.rmtree(state_dir, ignore_errors=True)


def restart_durable(cluster: EmbeddedCluster) -> None:
    """Restart a cluster that was loaded with fsync off with fsync, synchronous_commit and
    full_page_writes on, so that what is measured afterwards pays for durable commits."""
    cluster.stop()
    # Written back now rather than by the kernel in the middle of the measurements; and fsync
    # on over files that were never synced would not make them durable.
    os.sync()
    cluster.fast_unsafe = False
    cluster.start()


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def print_report(as_json: bool, document: Mapping[str, Any], table: Callable[[], None]) -> None:
    """A benchmark's figures: the document as JSON (--json), otherwise its table."""
    if as_json:
        print(json.dumps(document, indent=2, default=str))
    else:
        table()


def print_measured(
    args: argparse.Namespace,
    server: str,
    built: dict[str, Any],
    result: dict[str, Any],
    table: Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], None],
    **extra: Any,
) -> None:
    """A load-then-measure benchmark's report (options from ``bench_parser``): the header, the
    data loaded, the result and any ``extra`` as JSON, otherwise the table."""
    header = {"server": server, "cores": os.cpu_count(), "repeat": args.repeat}
    print_report(
        args.json,
        {"header": header, "data": built, **result, **extra},
        lambda: table(header, built, result),
    )


def bench_parser(doc: str | None, count: str, default: int, what: str) -> argparse.ArgumentParser:
    """The options every load-then-measure benchmark takes: how many rows (--COUNT), the runs per
    figure and JSON output; a benchmark adds its own."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument(f"--{count}", type=int, default=default, help=what)
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser


@contextmanager
def bench_database(
    name: str, extra_settings: Mapping[str, str] | None = None
) -> Iterator[tuple[EmbeddedCluster, str]]:
    """A throwaway cluster holding one empty database `name`: the cluster and the server's
    version as a report's header names it."""
    progress("starting a throwaway cluster")
    with bench_cluster(extra_settings) as cluster:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
            row = admin.execute("SELECT version()").fetchone()
        yield cluster, (row[0] if row else "?").split(" on ")[0]
