"""A throwaway PostgreSQL cluster for one benchmark run (tuned for loading, removed afterwards)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from guard.embedded import EmbeddedCluster


@contextmanager
def bench_cluster(shared_buffers: str = "1GB") -> Iterator[EmbeddedCluster]:
    # The postgres OS user must reach the state directory: /tmp, mode 755.
    state_dir = Path(tempfile.mkdtemp(prefix="guard-bench-", dir="/tmp"))
    state_dir.chmod(0o755)
    cluster = EmbeddedCluster(state_dir / "cluster")
    try:
        cluster.start()
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'")
            conn.execute("ALTER SYSTEM SET max_wal_size = '4GB'")
        cluster.stop()
        cluster.start()  # shared_buffers takes effect on restart
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
