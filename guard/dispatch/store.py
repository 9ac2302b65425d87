"""The delivery table (guard.alert_deliveries) through its SQL functions. Every call is one
statement in autocommit mode, i.e. its own transaction: a claim is committed before the send,
a delivery is marked right after it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import psycopg

from guard.dispatch.message import AlertRow, ReviewRow


class DeliveryStore:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        if not conn.autocommit:
            raise ValueError("DeliveryStore needs an autocommit connection")
        self.conn = conn

    def drain_detection_queue(self) -> int:
        """Check the due calls of guard.detection_queue (one batch, one transaction); how many."""
        row = self.conn.execute("SELECT guard.drain_detection_queue()").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def seconds_until_detection_due(self) -> float | None:
        """Until the next queued call is due (<= 0: now), or None when none is queued."""
        row = self.conn.execute(
            "SELECT extract(EPOCH FROM min(due_at) - clock_timestamp())::float8"
            " FROM guard.detection_queue"
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def enqueue(self, channels: Sequence[str]) -> int:
        row = self.conn.execute(
            "SELECT guard.enqueue_alert_deliveries(%s::text[])", (list(channels),)
        ).fetchone()
        return int(row[0]) if row else 0

    def claim(self, channel: str, worker: str, limit: int, lease_s: float) -> list[AlertRow]:
        rows = self.conn.execute(
            "SELECT * FROM guard.claim_alert_deliveries(%s, %s, %s, %s)",
            (channel, worker, limit, lease_s),
        ).fetchall()
        return [AlertRow(*row) for row in rows]

    def claim_resolved(
        self, channel: str, worker: str, limit: int, lease_s: float
    ) -> list[AlertRow]:
        rows = self.conn.execute(
            "SELECT * FROM guard.claim_resolved_deliveries(%s, %s, %s, %s)",
            (channel, worker, limit, lease_s),
        ).fetchall()
        return [AlertRow(*row) for row in rows]

    def complete_resolved(self, channel: str, alert_ids: Sequence[int]) -> int:
        row = self.conn.execute(
            "SELECT guard.complete_resolved_deliveries(%s, %s::bigint[])",
            (channel, list(alert_ids)),
        ).fetchone()
        return int(row[0]) if row else 0

    def enqueue_review_notices(self, channels: Sequence[str], priorities: Sequence[int]) -> int:
        row = self.conn.execute(
            "SELECT guard.enqueue_review_notices(%s::text[], %s::smallint[])",
            (list(channels), list(priorities)),
        ).fetchone()
        return int(row[0]) if row else 0

    def claim_review_notices(
        self, channel: str, worker: str, limit: int, lease_s: float
    ) -> list[ReviewRow]:
        rows = self.conn.execute(
            "SELECT * FROM guard.claim_review_notices(%s, %s, %s, %s)",
            (channel, worker, limit, lease_s),
        ).fetchall()
        return [ReviewRow(*row) for row in rows]

    def complete_review_notices(
        self, channel: str, item_ids: Sequence[int], error: str | None = None
    ) -> int:
        row = self.conn.execute(
            "SELECT guard.complete_review_notices(%s, %s::bigint[], %s)",
            (channel, list(item_ids), error),
        ).fetchone()
        return int(row[0]) if row else 0

    def enqueue_reports(self, channels: Sequence[str]) -> int:
        row = self.conn.execute(
            "SELECT guard.enqueue_report_deliveries(%s::text[])", (list(channels),)
        ).fetchone()
        return int(row[0]) if row else 0

    def claim_reports(self, channel: str, worker: str, limit: int, lease_s: float) -> list[date]:
        rows = self.conn.execute(
            "SELECT report_date FROM guard.claim_report_deliveries(%s, %s, %s, %s)",
            (channel, worker, limit, lease_s),
        ).fetchall()
        return [row[0] for row in rows]

    def complete_reports(self, channel: str, days: Sequence[date], error: str | None = None) -> int:
        row = self.conn.execute(
            "SELECT guard.complete_report_deliveries(%s, %s::date[], %s)",
            (channel, list(days), error),
        ).fetchone()
        return int(row[0]) if row else 0

    def claim_digest(
        self, channel: str, worker: str, period_hours: int, limit: int, lease_s: float
    ) -> tuple[list[AlertRow], datetime | None]:
        """The channel's alerts due in a digest, and the end of the period they are sent for."""
        rows = self.conn.execute(
            "SELECT * FROM guard.claim_alert_digest(%s, %s, %s, %s, %s)",
            (channel, worker, period_hours, limit, lease_s),
        ).fetchall()
        period_end = rows[0][-1] if rows else None
        return [AlertRow(*row[:-1]) for row in rows], period_end

    def complete_digest(self, channel: str, period_end: datetime, alert_ids: Sequence[int]) -> int:
        row = self.conn.execute(
            "SELECT guard.complete_alert_digest(%s, %s, %s::bigint[])",
            (channel, period_end, list(alert_ids)),
        ).fetchone()
        return int(row[0]) if row else 0

    def skip_below(self, channel: str, min_severity: str, actor: str) -> int:
        """Mark skipped the channel's pending deliveries below its minimum severity (audited in
        guard.delivery_skips)."""
        row = self.conn.execute(
            "SELECT guard.skip_alert_deliveries_below(%s, %s, %s)",
            (channel, min_severity, actor),
        ).fetchone()
        return int(row[0]) if row else 0

    def complete(self, channel: str, alert_ids: Sequence[int]) -> int:
        row = self.conn.execute(
            "SELECT guard.complete_alert_deliveries(%s, %s::bigint[])", (channel, list(alert_ids))
        ).fetchone()
        return int(row[0]) if row else 0

    def fail(
        self,
        channel: str,
        alert_ids: Sequence[int],
        error: str,
        *,
        backoff_base_s: float,
        backoff_max_s: float,
        max_attempts: int,
    ) -> int:
        row = self.conn.execute(
            "SELECT guard.fail_alert_deliveries(%s, %s::bigint[], %s, %s, %s, %s)",
            (channel, list(alert_ids), error, backoff_base_s, backoff_max_s, max_attempts),
        ).fetchone()
        return int(row[0]) if row else 0

    def skip(self, seen_before: datetime, channels: Sequence[str], actor: str) -> int:
        """Mark older pending deliveries skipped (guard.skip_alert_deliveries; audited)."""
        row = self.conn.execute(
            "SELECT guard.skip_alert_deliveries(%s, %s::text[], %s)",
            (seen_before, list(channels), actor),
        ).fetchone()
        return int(row[0]) if row else 0

    def release(self, channel: str, worker: str) -> int:
        row = self.conn.execute(
            "SELECT guard.release_alert_deliveries(%s, %s)", (channel, worker)
        ).fetchone()
        return int(row[0]) if row else 0

    def seconds_until_due(self, channels: Sequence[str]) -> dict[str, float]:
        """Per channel with pending deliveries: seconds until the next one is due (a claim of
        another dispatcher counts from the end of its lease). Two bounded reads per channel, not
        the backlog: the first unclaimed row in the due index's order, and the claimed rows
        (alert_deliveries_claimed_idx: a batch per dispatcher)."""
        rows = self.conn.execute(
            "SELECT ch.channel, extract(epoch FROM least(f.due, h.due) - now())"
            " FROM pg_catalog.unnest(%s::text[]) AS ch (channel)"
            " LEFT JOIN LATERAL (SELECT d.next_attempt_at AS due"
            "  FROM guard.alert_deliveries AS d"
            "  WHERE d.channel = ch.channel AND d.status = 'pending'"
            "  AND d.claimed_until IS NULL"
            "  ORDER BY d.next_attempt_at LIMIT 1) AS f ON true"
            " LEFT JOIN LATERAL (SELECT min(greatest(d.next_attempt_at, d.claimed_until)) AS due"
            "  FROM guard.alert_deliveries AS d"
            "  WHERE d.channel = ch.channel AND d.status = 'pending'"
            "  AND d.claimed_until IS NOT NULL) AS h ON true"
            " WHERE f.due IS NOT NULL OR h.due IS NOT NULL",
            (list(channels),),
        ).fetchall()
        return {str(channel): max(0.0, float(due)) for channel, due in rows}

    def counts(self, channels: Sequence[str]) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT d.status, count(*) FROM guard.alert_deliveries AS d"
            " WHERE d.channel = ANY(%s::text[]) GROUP BY d.status",
            (list(channels),),
        ).fetchall()
        return {str(status): int(n) for status, n in rows}
