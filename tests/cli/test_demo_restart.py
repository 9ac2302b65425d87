"""The demo's embedded cluster restarts when its remembered port was taken, and a failed start
says why in the error itself, not only in postgres.log."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.demo.embedded import EmbeddedCluster
from guard.errors import GuardError


@pytest.fixture
def stopped_cluster() -> Iterator[EmbeddedCluster]:
    """A demo-like cluster, created and stopped; its state dir reachable by the postgres user."""
    state = Path(tempfile.mkdtemp(prefix="guard-demo-restart-"))
    state.chmod(0o755)
    cluster = EmbeddedCluster(state / "state")
    cluster.start()
    cluster.stop()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(state, ignore_errors=True)


def test_a_taken_port_moves_the_cluster_to_a_free_one(stopped_cluster: EmbeddedCluster) -> None:
    remembered = stopped_cluster.port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", remembered))
        squatter.listen()
        assert stopped_cluster.start() is True
        assert stopped_cluster.moved_from_port == remembered
        assert stopped_cluster.port != remembered
        assert stopped_cluster.running()
    # the new port is remembered: the next start does not move again
    stopped_cluster.stop()
    again = EmbeddedCluster(stopped_cluster.state_dir)
    assert again.start() is True
    assert again.moved_from_port is None and again.port == stopped_cluster.port


def test_a_free_port_is_kept(stopped_cluster: EmbeddedCluster) -> None:
    remembered = stopped_cluster.port
    assert stopped_cluster.start() is True
    assert stopped_cluster.moved_from_port is None and stopped_cluster.port == remembered


def test_a_failed_start_names_the_servers_own_reason(stopped_cluster: EmbeddedCluster) -> None:
    conf = stopped_cluster.data_dir / "postgresql.conf"
    with conf.open("a") as f:
        f.write("\nshared_buffers = 'a lot'\n")
    with pytest.raises(GuardError) as failed:
        stopped_cluster.start()
    message = str(failed.value)
    assert "Examine the log output" not in message
    assert "contains errors" in message and "postgresql.conf" in message, message
    assert str(stopped_cluster.log_file) in message


def test_demo_stop_names_the_cluster_it_stopped(stopped_cluster: EmbeddedCluster) -> None:
    def stop() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "guard.cli", "demo", "--stop"],
            env={**os.environ, "GUARD_STATE_DIR": str(stopped_cluster.state_dir)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    stopped_cluster.start()
    first, second = stop(), stop()
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.strip() == (
        f"Embedded PostgreSQL stopped (data kept in {stopped_cluster.data_dir})."
    )
    assert second.stdout.strip() == (
        f"Embedded PostgreSQL was not running (data in {stopped_cluster.data_dir})."
    )
