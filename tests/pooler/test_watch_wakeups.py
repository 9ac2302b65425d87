"""Issue 49, row 5: `guard watch` waits for NOTIFY guard_alerts on a LISTEN connection. Behind a
transaction pooler LISTEN stays on a server connection the dispatcher no longer holds, so no
NOTIFY ever reaches it and it fell back to its 30 s poll without a word. The fix: at start it
sends itself a NOTIFY; when that does not arrive it logs one line saying so and polls about every
second. In session mode LISTEN works and NOTIFY wakes it.

Each test prints its counts on one line (`pytest -s`)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.dispatch.conftest import insert_alerts
from tests.pooler.conftest import (
    BouncerFactory,
    dbname,
    delivered_alert_ids,
    start_watch,
    stop_process,
)

ALERTS = 3
# The fix polls about every second behind a transaction pooler; NOTIFY is near instant.
DELIVERED_WITHIN_S = 2.5
# One line naming notifications (NOTIFY, LISTEN) and polling; not the final stats
# (`notify_wakeups`, `poll_wakeups`).
POLLING_LINE = re.compile(
    r"(?i)\b(notif\w*|listen)\b.*\bpoll(s|ing|ed)?\b|\bpoll(s|ing|ed)?\b.*\b(notif\w*|listen)\b"
)
STATS_LINE = re.compile(r"stopped: (\{.*\})")


@pytest.mark.slow  # a guard watch process behind PgBouncer, seconds by nature
@pytest.mark.serial  # each delivery is timed against DELIVERED_WITHIN_S
@pytest.mark.parametrize("pool_mode", ["transaction", "session"])
def test_watch_is_woken_or_says_it_polls(
    db_url: str, bouncer: BouncerFactory, pool_mode: str, tmp_path: Path
) -> None:
    out, err = tmp_path / "watch.out", tmp_path / "watch.err"
    watch = start_watch(bouncer, pool_mode, dbname(db_url), out, err)
    latencies: list[float] = []
    try:
        for _ in range(ALERTS):
            (alert,) = insert_alerts(db_url, 1)
            started = time.monotonic()
            deadline = started + 5
            while alert not in delivered_alert_ids(out) and time.monotonic() < deadline:
                time.sleep(0.02)
            latencies.append(time.monotonic() - started)
        crashed = watch.poll() is not None
    finally:
        stop_process(watch)
    log = err.read_text(errors="replace").splitlines()
    polling = [line for line in log if POLLING_LINE.search(line)]
    late = sum(1 for seconds in latencies if seconds > DELIVERED_WITHIN_S)
    stats = [json.loads(m.group(1)) for line in log if (m := STATS_LINE.search(line))]
    woken = int(stats[-1].get("notify_wakeups", 0)) if stats else -1
    print(
        f"row 5 ({pool_mode} pool): alerts {ALERTS}, delivered later than"
        f" {DELIVERED_WITHIN_S} s {late} (latencies {', '.join(f'{s:.2f}' for s in latencies)} s);"
        f" log lines about polling instead of NOTIFY {len(polling)}; NOTIFY wake-ups {woken};"
        f" crashed {int(crashed)}"
    )
    assert not crashed, "\n".join(log[-5:])
    assert late == 0
    if pool_mode == "transaction":
        assert len(polling) == 1, "one line saying NOTIFY does not reach it and it polls"
    else:
        assert polling == [], "in session mode NOTIFY reaches it: no polling line"
        assert woken >= ALERTS, "in session mode each alert's NOTIFY wakes it"
