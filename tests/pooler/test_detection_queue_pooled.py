"""Detection at commit behind a pooler: `guard watch` LISTENs on guard_detection_queue, which a
transaction pooler never delivers; there its one-second poll drains the queue instead, so a
problem the application's commit leaves (an unknown outcome, visible at once) is still alerted
within about a second. In session mode the NOTIFY wakes it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest

from tests.pooler.conftest import (
    BouncerFactory,
    dbname,
    start_watch,
    stop_process,
)
from tests.support.queries import execute

# a one-second poll behind a transaction pooler, the NOTIFY in session mode; a shared machine
ALERTED_WITHIN_S = 3.0


def _alerted(out: Path) -> set[int]:
    calls = set()
    for line in out.read_text(errors="replace").splitlines():
        try:
            payload = json.loads(line)
        except ValueError:
            continue
        if payload.get("check_id") == "unknown_value" and payload.get("entity_type") == "call":
            calls.add(int(payload["entity_id"]))
    return calls


@pytest.mark.slow  # a guard watch process behind PgBouncer, seconds by nature
@pytest.mark.parametrize("pool_mode", ["transaction", "session"])
def test_a_problem_visible_at_commit_is_alerted_behind_a_pooler(
    db_url: str, bouncer: BouncerFactory, pool_mode: str, tmp_path: Path
) -> None:
    execute(
        db_url,
        "INSERT INTO companies (id, name) VALUES (1, 'A')",
        (
            "INSERT INTO calls (id, company_id, retell_call_id, direction, customer_link_status)"
            " SELECT g, 1, 'p' || g, 'inbound', 'unlinked' FROM generate_series(1, 3) AS g"
        ),
    )
    out, err = tmp_path / "watch.out", tmp_path / "watch.err"
    watch = start_watch(bouncer, pool_mode, dbname(db_url), out, err)
    latencies: list[float] = []
    try:
        for call in (1, 2, 3):
            with psycopg.connect(db_url, autocommit=True) as app:
                app.execute(
                    "UPDATE calls SET status = 'ended', session_outcome = 'appointment_bookd'"
                    " WHERE id = %s",
                    (call,),
                )
            started = time.monotonic()
            while call not in _alerted(out) and time.monotonic() - started < 10:
                time.sleep(0.02)
            latencies.append(time.monotonic() - started)
        crashed = watch.poll() is not None
    finally:
        stop_process(watch)
    print(f"{pool_mode} pool: latencies {', '.join(f'{s:.2f}' for s in latencies)} s")
    assert not crashed, err.read_text(errors="replace")[-2000:]
    assert max(latencies) <= ALERTED_WITHIN_S, latencies
