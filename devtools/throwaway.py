"""Throwaway databases of the generators and the tests: where a cluster keeps its files, and a
database built from the canonical sql/ files instead of the migrations."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from guard.connection import open_connection
from guard.resources import canonical_files

# A throwaway cluster makes and deletes thousands of files (a database cloned and dropped per
# test). On ext4 the inode allocator then searches past recently deleted inodes, and that search
# grows with the churn; a memory file system has none (docs/measurements.md, "The test suite's
# time"). Only with room to spare: a cluster's files there are memory.
MEMORY_SCRATCH = Path("/dev/shm")  # noqa: S108 - mkdtemp makes a new private directory there
DISK_SCRATCH = Path("/tmp")  # noqa: S108 - the same; as root, one the postgres OS user can reach
MEMORY_SCRATCH_MIN_FREE = 4 * 2**30


def scratch_directory(prefix: str) -> Path:
    """A new directory for a throwaway cluster that the server's OS user may enter: in
    MEMORY_SCRATCH when it has MEMORY_SCRATCH_MIN_FREE bytes free, else in DISK_SCRATCH."""
    root = MEMORY_SCRATCH if _memory_scratch_has_room() else DISK_SCRATCH
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    directory.chmod(0o755)
    return directory


def _memory_scratch_has_room() -> bool:
    try:
        usage = os.statvfs(MEMORY_SCRATCH)
    except OSError:  # no such file system here
        return False
    free = usage.f_bavail * usage.f_frsize
    return free >= MEMORY_SCRATCH_MIN_FREE and os.access(MEMORY_SCRATCH, os.W_OK | os.X_OK)


def build_from_canonical(url: str, root: Path | None = None) -> None:
    """Run every file the manifests list, in order, in one transaction."""
    with open_connection(url) as conn, conn.transaction():
        for path in canonical_files(root):
            # No parameters: psycopg sends the whole file with the simple-query protocol.
            conn.execute(path.read_text().encode())
