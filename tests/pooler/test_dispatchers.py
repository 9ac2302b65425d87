"""Issue 49, row 6: two dispatchers (`guard watch`) through a transaction pooler both exited
within 40 s on DuplicatePreparedStatement (psycopg's automatic prepared statements), and
`guard db verify` failed the same way. The fix opens every connection with
prepare_threshold=None.

The dispatchers run RUN_S = 15 s, not 40: with `--poll-interval 0.5` and an alert every half
second each dispatcher repeats its statements some 30 times, six times psycopg's threshold of 5,
which is what made them crash (well within 15 s before the fix). Prints its counts (`-s`)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.dispatch.conftest import insert_alerts
from tests.pooler.conftest import (
    BouncerFactory,
    dbname,
    delivered_alert_ids,
    guard_cli,
    start_guard,
    stop_process,
    wait_for,
)

RUN_S = 15.0
ALERT_EVERY_S = 0.5
# An error a dispatcher logged instead of crashing counts too.
ERROR_LINE = re.compile(r"(?i)prepared statement|traceback|database unavailable|error")


def _says(path: Path, text: bytes) -> Callable[[], bool]:
    return lambda: text in path.read_bytes()


@pytest.mark.slow
def test_two_dispatchers_and_verify_through_a_transaction_pool(
    db_url: str, bouncer: BouncerFactory, tmp_path: Path
) -> None:
    pooler = bouncer("transaction")
    url = pooler.url("postgres", dbname(db_url))
    watches = []
    for name in ("a", "b"):
        watches.append(
            start_guard(
                url,
                *("watch", "--channel", "stdout", "--poll-interval", "0.5"),
                out=tmp_path / f"{name}.out",
                err=tmp_path / f"{name}.err",
            )
        )
    inserted: list[int] = []
    crashed_at: dict[int, float] = {}
    try:
        for name in ("a", "b"):
            wait_for(_says(tmp_path / f"{name}.err", b"watching channels"), 30, f"watch {name}")
        started = time.monotonic()
        while time.monotonic() - started < RUN_S:
            inserted += insert_alerts(db_url, 1)
            for index, watch in enumerate(watches):
                if watch.poll() is not None and index not in crashed_at:
                    crashed_at[index] = time.monotonic() - started
            time.sleep(ALERT_EVERY_S)
        delivered: set[int] = set()

        def all_delivered() -> bool:
            delivered.update(*(delivered_alert_ids(tmp_path / f"{n}.out") for n in ("a", "b")))
            return set(inserted) <= delivered or len(crashed_at) == len(watches)

        wait_for(all_delivered, 10, "the last alerts to be delivered")
        for index, watch in enumerate(watches):
            if watch.poll() is not None and index not in crashed_at:
                crashed_at[index] = time.monotonic() - started
    finally:
        for watch in watches:
            stop_process(watch)
    errors = [
        line
        for name in ("a", "b")
        for line in (tmp_path / f"{name}.err").read_text(errors="replace").splitlines()
        if ERROR_LINE.search(line)
    ]
    undelivered = len(set(inserted) - delivered)

    # verify through the pooler answers what it answers directly (the working tree may drift)
    verify = guard_cli(url, "db", "verify")
    direct = guard_cli(db_url, "db", "verify")
    verify_errors = [line for line in verify.stderr.splitlines() if "error" in line.lower()]
    print(
        f"row 6: two dispatchers through a transaction pool of 2 for {RUN_S:g} s: crashed"
        f" {len(crashed_at)} (after {', '.join(f'{s:.1f}' for s in crashed_at.values()) or '-'}"
        f" s), error lines {len(errors)}, alerts {len(inserted)}, undelivered {undelivered};"
        f" guard db verify exit {verify.returncode} (direct {direct.returncode}),"
        f" error lines {len(verify_errors)}"
    )
    assert not crashed_at, errors[:3]
    assert errors == []
    assert undelivered == 0
    assert verify_errors == [], verify.stderr[-500:]
    assert (verify.returncode, verify.stdout) == (direct.returncode, direct.stdout)
