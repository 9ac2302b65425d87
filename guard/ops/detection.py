"""Detection over the whole history (`guard check --all`, the demo): the checks over batches of
observed time, one transaction each, then the open alerts re-checked a range of ids at a time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from guard import queries
from guard.connection import connect, guard_function_errors


@dataclass(frozen=True)
class BatchChecked:
    """One batch of observed time checked (and committed): `number` of `batches`."""

    number: int
    batches: int
    since: datetime
    offending: int


@dataclass(frozen=True)
class AlertsRechecked:
    """One range of open alert ids re-checked (and committed): `number` of `chunks`."""

    number: int
    chunks: int
    rechecked: int
    resolved: int


HistoryProgress = BatchChecked | AlertsRechecked


def _history_start(conn: psycopg.Connection[Any]) -> datetime | None:
    """Where the whole history begins (guard.history_start)."""
    (start,) = conn.execute(queries.HISTORY_START).fetchone() or (None,)
    conn.commit()
    return start


# Alert ids re-checked per transaction at the end of `guard check --all`.
RECHECK_BATCH_IDS = 20_000


def arm_pass_timeout(conn: psycopg.Connection[Any]) -> None:
    """statement_timeout = detection_statement_timeout_ms for the rest of this transaction."""
    conn.execute(queries.ARM_DETECTION_TIMEOUT)


def check_history(
    database_url: str | None, batch: timedelta, progress: Callable[[HistoryProgress], None]
) -> list[list[Any]]:
    """Every check over the whole history, one transaction per batch of `batch` of observed time
    (`guard check --all`; `progress` hears of each transaction), then the open alerts re-checked a
    range of ids per transaction, which resolves what was fixed."""
    totals: dict[tuple[str, str], list[int]] = {}
    failures: dict[str, tuple[str, str]] = {}
    with (
        connect(database_url, application_name="guard check --all") as conn,
        guard_function_errors(),
    ):
        start = _history_start(conn)
        if start is not None:
            now: datetime = conn.execute(queries.NOW).fetchall()[0][0]
            conn.commit()
            batches = max(1, -(-(now - start) // batch))
            for number in range(batches):
                since = start + number * batch
                # The last batch is open-ended: rows written while the pass runs count too.
                until = (
                    since + batch
                    if number < batches - 1
                    else datetime.max.replace(tzinfo=since.tzinfo)
                )
                arm_pass_timeout(conn)
                rows = conn.execute(queries.RUN_CHECKS_BETWEEN, (since, until)).fetchall()
                conn.commit()
                for check_id, rule_id, offending, opened, repeated, status, error in rows:
                    total = totals.setdefault((check_id, rule_id), [0, 0, 0, 0])
                    total[0] += offending or 0
                    total[1] += opened
                    total[2] += repeated
                    if status != "ok":
                        # the first batch that did not run it through says why
                        failures.setdefault(check_id, (status, f"{error} (batch {number + 1})"))
                found = sum(row[2] or 0 for row in rows)
                progress(BatchChecked(number + 1, batches, since, found))
        (low, high) = conn.execute(queries.OPEN_ALERT_ID_RANGE).fetchall()[0]
        conn.commit()
        if low is not None:
            chunks = -(-(high - low + 1) // RECHECK_BATCH_IDS)
            for number in range(chunks):
                after = low - 1 + number * RECHECK_BATCH_IDS
                arm_pass_timeout(conn)
                rows = conn.execute(
                    queries.RECHECK_ALERTS_BETWEEN,
                    (after, after + RECHECK_BATCH_IDS),
                ).fetchall()
                conn.commit()
                for check_id, rule_id, _rechecked, resolved in rows:
                    totals.setdefault((check_id, rule_id), [0, 0, 0, 0])[3] += resolved
                progress(
                    AlertsRechecked(
                        number + 1, chunks, sum(r[2] for r in rows), sum(r[3] for r in rows)
                    )
                )
        checks = conn.execute(queries.ENABLED_CHECK_RULES).fetchall()
        conn.commit()
    return [
        [
            check_id,
            rule_id,
            *totals.get((check_id, rule_id), [0, 0, 0, 0]),
            *failures.get(check_id, ("ok", None)),
        ]
        for check_id, rule_id in checks
    ]
