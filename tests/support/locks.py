"""A lock held from another session for a while: what a login's lock_timeout meets."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


@contextmanager
def lock_held(url: str, statement: str, seconds: float) -> Iterator[None]:
    """Run `statement` (a LOCK TABLE ...) in a transaction of another session, keep it for
    `seconds`, and yield once the lock is held; on leaving, wait for that session to end."""
    locked = threading.Event()

    def hold() -> None:
        with psycopg.connect(url) as conn:
            conn.execute(statement)
            locked.set()
            time.sleep(seconds)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        if not locked.wait(10):
            raise TimeoutError(f"the lock was not taken within 10 s: {statement}")
        yield
    finally:
        holder.join()
