"""The application as migration tests need it: one session writing in a loop, each statement's
latency recorded with the time it started, while a migrator takes and waits for locks."""

from __future__ import annotations

import threading
import time

import psycopg


class Writer(threading.Thread):
    """Runs `statement` (autocommit) every `pause_s` until `stop` is set."""

    def __init__(self, url: str, statement: str, pause_s: float) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.statement = statement
        self.pause_s = pause_s
        self.samples: list[tuple[float, float]] = []  # (started, latency), monotonic seconds
        self.stop = threading.Event()
        self.error: BaseException | None = None

    @property
    def worst(self) -> float:
        return max(latency for _, latency in self.samples)

    def run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True, application_name="app") as conn:
                while not self.stop.is_set():
                    started = time.monotonic()
                    conn.execute(self.statement.encode())
                    self.samples.append((started, time.monotonic() - started))
                    time.sleep(self.pause_s)
        except BaseException as error:  # surfaced by the test
            self.error = error
