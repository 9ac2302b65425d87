"""Bounded dispatcher: multi-megabyte details leave the database as an excerpt with a pointer to
the rest, a real `guard watch` stays under 200 MB with 50 such alerts, and a claim, a release and
the next due time read a bounded number of rows whatever the backlog behind them."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from guard.ops.dispatch.loop import Dispatcher, DispatchSettings
from guard.ops.dispatch.message import TRUNCATED_KEY, truncated_bytes
from guard.ops.dispatch.outbox import DeliveryStore
from guard.ops.dispatch.sinks import WebhookSink
from tests.dispatch.conftest import Webhook
from tests.support.peak_rss import run_measured

GUARD = str(Path(sys.executable).with_name("guard"))

# A rollback context of about `mb` MB: the reason (whitelisted), a long raw response and nested
# records (neither leaves the database). md5 text: TOAST cannot compress it away.
_BIG = """
INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id, severity,
    message, details)
SELECT 'big:' || a, 'booking_rolled_back', 7, 'call', 5000 + a, 'high',
    'a booking failed and was rolled back; a review item is queued',
    jsonb_build_object(
        'reason', 'calendar_booking_failure',
        'raw_response', (SELECT string_agg(md5(a || '/' || r), '')
                         FROM generate_series(1, %(chunks)s) AS r),
        'records', (SELECT jsonb_agg(jsonb_build_object('seq', r, 'body', md5(r || ':' || a)))
                    FROM generate_series(1, 1000) AS r)
    )
FROM generate_series(1, %(n)s) AS a
RETURNING id
"""


def _insert_big(url: str, n: int, mb: float) -> list[int]:
    chunks = int(mb * 1024 * 1024 / 32)
    with psycopg.connect(url, autocommit=True) as conn:
        return [int(r[0]) for r in conn.execute(_BIG, {"n": n, "chunks": chunks}).fetchall()]


def test_multi_mb_details_are_delivered_truncated_with_where_to_read_the_rest(
    db_url: str, webhook: Webhook
) -> None:
    ids = _insert_big(db_url, 3, 3.0)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT guard.enqueue_alert_deliveries(ARRAY['webhook'])")
        # What crosses the wire with a claim: bounded, whatever the details weigh.
        with conn.transaction(force_rollback=True):
            claimed = conn.execute(
                "SELECT l.alert_id, octet_length(l.details::text), l.details"
                " FROM guard.alerts_for_delivery(ARRAY(SELECT subject"
                " FROM guard.claim_deliveries('alert', 'webhook', 'probe', 10, 60))) AS l"
            ).fetchall()
        full = conn.execute(
            "SELECT min(octet_length(details::text)) FROM guard.alerts WHERE id = ANY(%s)", (ids,)
        ).fetchone()
    assert full is not None and full[0] > 3_000_000
    assert [r[0] for r in claimed] == ids
    for alert_id, size, details in claimed:
        assert size < 20_000, f"alert #{alert_id}: {size} bytes of details in the claim"
        assert details["reason"] == "calendar_booking_failure"
        assert len(details["raw_response"]) == 200
        assert "records" not in details  # nested: never needed by a message
        assert details["details_truncated"]["bytes"] > 3_000_000

    Dispatcher(
        db_url,
        [(WebhookSink(webhook.url, timeout_s=5.0), 0)],
        DispatchSettings(poll_interval_s=0.2, lease_s=30.0, send_timeout_s=5.0),
    ).run_once()

    assert sorted(webhook.delivered_ids()) == ids
    for body, alert_id in zip(webhook.bodies, ids, strict=True):
        text = body["text"]
        assert len(text) < 2000
        assert "reason=calendar_booking_failure" in text
        assert "details truncated (3." in text
        assert f"the rest: SELECT details FROM guard.alerts WHERE id = {alert_id}" in text


def test_small_details_still_arrive_whole(db_url: str, webhook: Webhook) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        details = conn.execute(
            "SELECT guard.json_excerpt(%s::jsonb, 'more')",
            ('{"reason": "x", "nested": {"a": [1, 2]}}',),
        ).fetchone()
    assert details is not None
    assert details[0] == {"reason": "x", "nested": {"a": [1, 2]}}


@pytest.mark.slow
def test_guard_watch_peak_memory_stays_under_200_mb_with_50_alerts_of_2_mb(
    db_url: str, webhook: Webhook
) -> None:
    _insert_big(db_url, 50, 2.0)
    env = {**os.environ, "GUARD_DATABASE_URL": db_url, "GUARD_SLACK_WEBHOOK_URL": webhook.url}
    with tempfile.TemporaryFile() as err:
        code, peak_mb = run_measured(
            [GUARD, "watch", "--once", "--channel", "webhook", "--webhook-rate", "0"],
            env,
            subprocess.DEVNULL,
            err,
        )
        err.seek(0)
        stderr = err.read()
    print(f"guard watch --once, 50 alerts of 2 MB: peak RSS {peak_mb:.0f} MB")
    assert code == 0, stderr.decode(errors="replace")
    assert len(webhook.delivered_ids()) == 50
    assert peak_mb < 200, f"peak RSS {peak_mb:.0f} MB"


def _rows_read(url: str, work: Callable[[DeliveryStore], object]) -> int:
    """Tuples of guard.deliveries and guard.alerts that `work` read (sequential and
    through indexes), counted by PostgreSQL for this transaction only, which is rolled back."""
    with psycopg.connect(url, autocommit=True) as conn:
        store = DeliveryStore(conn)
        conn.autocommit = False
        work(store)
        row = conn.execute(
            "SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0)"
            " FROM pg_stat_xact_user_tables"
            " WHERE schemaname = 'guard' AND relname IN ('alerts', 'deliveries')"
        ).fetchone()
        conn.rollback()
    return int(row[0]) if row else 0


def test_a_wake_up_does_not_read_the_backlog_of_a_dead_channel(db_url: str) -> None:
    backlog = 20_000
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id,"
            " severity, message) SELECT 'backlog:' || g, 'booked_without_appointment', 7,"
            " 'call', g, 'high', 'booked but no appointment' FROM generate_series(1, %s) AS g",
            (backlog,),
        )
        # One statement: every row gets the same next_attempt_at, as after an outage.
        conn.execute("SELECT guard.enqueue_alert_deliveries(ARRAY['webhook'])")
        # The channel is down: some rows failed and wait, another dispatcher holds a claim.
        conn.execute(
            "UPDATE guard.deliveries SET attempts = 3, next_attempt_at = now() + '1h'"
            " WHERE subject % 3 = 0"
        )
        conn.execute("SELECT guard.claim_deliveries('alert', 'webhook', 'other', 10, 60)")
        conn.execute("VACUUM ANALYZE guard.deliveries, guard.alerts")

    claim = _rows_read(db_url, lambda s: s.claim("alert", "webhook", "me", 10, 60.0))
    release = _rows_read(
        db_url, lambda s: (s.claim("alert", "webhook", "me", 10, 60.0), s.release("webhook", "me"))
    )
    next_due = _rows_read(db_url, lambda s: s.seconds_until_due([("alert", "webhook")]))
    print(
        f"rows read with a backlog of {backlog}: claim {claim}, claim + release {release},"
        f" next due {next_due}"
    )
    # A batch of 10 (plus the 10 claimed by the other dispatcher it skips, plus the alerts it
    # joins): nothing near the 20 000 rows behind it.
    assert claim <= 60, f"the claim read {claim} rows"
    assert release - claim <= 40, f"the release read {release - claim} rows"
    assert next_due <= 40, f"the next due time read {next_due} rows"


@pytest.mark.parametrize(
    ("details", "size"),
    [
        ({TRUNCATED_KEY: {"bytes": 3_145_728}}, 3_145_728),
        # what an application may write under the same key is no size
        ({TRUNCATED_KEY: {"bytes": "3145728"}}, None),
        ({TRUNCATED_KEY: {"bytes": True}}, None),
        ({TRUNCATED_KEY: {"bytes": 1.5}}, None),
        ({TRUNCATED_KEY: 3_145_728}, None),
        ({"bytes": 3_145_728}, None),
        ([TRUNCATED_KEY], None),
    ],
)
def test_only_the_claims_marker_says_details_were_cut(details: object, size: int | None) -> None:
    assert truncated_bytes(details) == size
