"""Detection at commit (docs/jobs.md, "Detection at commit"), with real commits by the
application login: the commit that ends a call booked without an appointment queues it, guard
watch checks it once its grace period is over and alerts it, and with the watcher stopped the
detect_queue job does (`guard.run_job`, as `guard jobs run` and pg_cron run it). A call that ended
without a booking, and one that booked, raise nothing. Every role as itself: the application
queues only through its write, the other logins can neither read nor drain the queue."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from guard.ops.dispatch.loop import Dispatcher, DispatchSettings
from guard.ops.dispatch.sinks import StdoutSink
from tests.security.conftest import connect_as, login_roles  # noqa: F401 (fixture)
from tests.support.queries import fetch_all, fetch_one

# A short grace period keeps the tests quick; the bound asserted is the grace period plus a
# generous margin for a shared 2-core machine (figures: bench/detection_latency.py).
GRACE_S = 2
MARGIN_S = 5.0
SETTINGS = DispatchSettings(poll_interval_s=30.0, lease_s=5.0, send_timeout_s=1.0, worker_id="t")


@pytest.fixture
def calls_url(db_url: str) -> Iterator[str]:
    """Company 1 with calls 1..6 that started a minute ago, and the short grace period."""
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        admin.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, direction, customer_link_status,"
            " status, created_at, updated_at)"
            " SELECT g, 1, 'q' || g, 'inbound', 'unlinked', 'ongoing', now() - interval '1 min',"
            " now() - interval '1 min' FROM generate_series(1, 6) AS g"
        )
        admin.execute(
            "UPDATE guard.settings SET value = %s::jsonb WHERE key = 'grace_period_seconds'",
            (str(GRACE_S),),
        )
    yield db_url


def end_call(url: str, login: str, call_id: int, outcome: str | None) -> float:
    """The application ends a call (its status and outcome, one commit); when it committed."""
    with connect_as(url, login) as app:
        app.execute(
            "UPDATE calls SET status = 'ended', session_outcome = %s, updated_at = now()"
            " WHERE id = %s",
            (outcome, call_id),
        )
    return time.monotonic()


def book(url: str, login: str, call_id: int) -> None:
    """The application books the call (the appointment derives its flags), then ends it."""
    with connect_as(url, login) as app, app.transaction():
        app.execute(
            "INSERT INTO appointments (company_id, call_id, calcom_v2_booking_id, source)"
            " VALUES (1, %s, 'uid-' || %s, 'retell_webhook')",
            (call_id, call_id),
        )
        app.execute(
            "UPDATE calls SET status = 'ended', session_outcome = 'appointment_booked'"
            " WHERE id = %s",
            (call_id,),
        )


def open_alerts(url: str) -> dict[int, str]:
    rows = fetch_all(
        url,
        "SELECT entity_id, check_id FROM guard.alerts"
        " WHERE status = 'open' AND entity_type = 'call'",
    )
    return {int(entity): str(check) for entity, check in rows}


def queued(url: str) -> list[int]:
    rows = fetch_all(url, "SELECT call_id FROM guard.detection_queue ORDER BY id")
    return [int(r[0]) for r in rows]


def wait_until(condition: Callable[[], bool], timeout_s: float) -> float | None:
    """Seconds until condition() held, None if it did not within timeout_s."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    return None


@pytest.mark.serial
def test_the_watcher_alerts_a_phantom_booking_once_its_grace_period_is_over(
    calls_url: str,
    login_roles: dict[str, str],  # noqa: F811
) -> None:
    app = login_roles["application"]
    out = io.StringIO()
    dispatcher = Dispatcher(calls_url, [(StdoutSink(out), 0)], SETTINGS)
    thread = threading.Thread(target=dispatcher.run_forever)
    thread.start()
    try:
        assert wait_until(lambda: dispatcher.stats.notifications_arrive is not None, 10)
        book(calls_url, app, 2)
        end_call(calls_url, app, 3, "no_booking")
        end_call(calls_url, app, 4, None)
        committed = end_call(calls_url, app, 1, "appointment_booked")
        took = wait_until(lambda: 1 in open_alerts(calls_url), GRACE_S + MARGIN_S)
        assert took is not None, "the phantom booking was not alerted"
        assert time.monotonic() - committed <= GRACE_S + MARGIN_S
        assert wait_until(lambda: '"entity_id": 1' in out.getvalue(), MARGIN_S) is not None
        assert dispatcher.stats.calls_checked >= 3
    finally:
        dispatcher.stop()
        thread.join(timeout=15)
    assert not thread.is_alive()
    assert open_alerts(calls_url) == {1: "booked_without_appointment"}
    assert queued(calls_url) == []
    opened_after = fetch_one(
        calls_url,
        "SELECT a.first_seen_at - c.updated_at FROM guard.alerts AS a"
        " JOIN calls AS c ON c.id = a.entity_id WHERE a.entity_type = 'call'",
    )
    assert opened_after is not None
    # not inside the grace period (the view's boundary: pgtests/detection/detection_queue.sql), and
    # at its end, not a detection pass later
    assert GRACE_S < opened_after[0].total_seconds() <= GRACE_S + MARGIN_S


def test_without_a_watcher_the_detect_queue_job_alerts_it(
    calls_url: str,
    login_roles: dict[str, str],  # noqa: F811
) -> None:
    app, owner = login_roles["application"], login_roles["owner"]
    grace_s = 4  # the first run must come inside it, on a slow machine too
    with psycopg.connect(calls_url, autocommit=True) as admin:
        admin.execute(
            "UPDATE guard.settings SET value = %s::jsonb WHERE key = 'grace_period_seconds'",
            (str(grace_s),),
        )
    # a watcher that ran and was stopped: the queue outlives it
    dispatcher = Dispatcher(calls_url, [(StdoutSink(io.StringIO()), 0)], SETTINGS)
    dispatcher.run_once()
    end_call(calls_url, app, 5, "appointment_booked")
    with connect_as(calls_url, owner) as jobs:
        first = jobs.execute("SELECT guard.run_job('detect_queue')").fetchone()
        assert first is not None and "succeeded" in str(first[0])
        assert open_alerts(calls_url) == {}, "alerted inside its grace period"
        assert queued(calls_url) == [5], "queued again for the end of its grace period"
        time.sleep(grace_s + 0.2)
        jobs.execute("SELECT guard.run_job('detect_queue')")
    assert open_alerts(calls_url) == {5: "booked_without_appointment"}
    assert queued(calls_url) == []
    # the detection latency counts from the commit that made the call bad (its last write), not
    # from the call's creation a minute before it: the grace period and the second run, not 60 s
    kept = fetch_one(
        calls_url,
        "SELECT a.written_at = c.updated_at, a.observed_at = c.created_at FROM guard.alerts"
        " AS a JOIN calls AS c ON c.id = a.entity_id WHERE a.entity_type = 'call'",
    )
    kpi = fetch_one(
        calls_url,
        "SELECT current_value, target FROM guard.kpis WHERE kpi = 'detection_latency_p95'",
    )
    assert kept == (True, True)
    assert kpi is not None and grace_s <= kpi[0] < 30 and kpi[1] == 60, kpi


def test_only_the_application_s_write_queues_and_only_the_owner_drains(
    calls_url: str,
    login_roles: dict[str, str],  # noqa: F811
) -> None:
    end_call(calls_url, login_roles["application"], 6, "appointment_booked")
    assert queued(calls_url) == [6]
    for kind in ("application", "reporting", "reviewer"):
        with connect_as(calls_url, login_roles[kind]) as conn:
            for statement in (
                "SELECT count(*) FROM guard.detection_queue",
                "SELECT guard.drain_detection_queue()",
                "DELETE FROM guard.detection_queue",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
    with (
        connect_as(calls_url, login_roles["reporting"]) as bi,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        bi.execute("INSERT INTO guard.detection_queue (call_id) VALUES (6)")
    with connect_as(calls_url, login_roles["owner"]) as owner:
        drained = owner.execute("SELECT guard.drain_detection_queue()").fetchone()
    assert drained == (1,)
    assert queued(calls_url) == [6], "inside its grace period: queued again"
