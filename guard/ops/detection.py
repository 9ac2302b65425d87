"""Detection over the whole history (`guard check --all`, the demo): each check over batches of
observed time, one transaction per check and batch, then the open alerts re-checked a range of ids
at a time. The checks that read every call read them once per batch, together
(guard.history_call_candidates), then each its candidates by key."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from guard import queries
from guard.connection import connect, guard_function_errors


@dataclass(frozen=True)
class BatchChecked:
    """One check over one batch of observed time (committed): `number` of `batches`."""

    number: int
    batches: int
    check_id: str
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


# Alert ids re-checked per transaction at the end of `guard check --all`.
RECHECK_BATCH_IDS = 20_000
# Without a batch length, each check reads the whole history in one transaction while the tables
# hold at most this many rows (by the planner's estimate), and a week per transaction beyond. A
# check's joins read their tables whole in every batch (a hash of every appointment), which one
# batch pays once; on a larger history a transaction would outgrow its budget, and a week's rows
# are few enough to be joined through indexes (docs/measurements.md, "The full pass against dbt").
HISTORY_WHOLE_ROWS = 2_000_000
HISTORY_BATCH = timedelta(days=7)


def arm_pass_timeout(conn: psycopg.Connection[Any]) -> float:
    """statement_timeout = detection_statement_timeout_ms for the rest of this transaction;
    returns it in seconds (0: none)."""
    [(milliseconds,)] = conn.execute(queries.ARM_DETECTION_TIMEOUT).fetchall()
    return int(milliseconds) / 1000


# The checks guard.history_call_candidates returns candidates for; a pass with none of them
# enabled skips its scan of the calls.
CALL_CANDIDATE_CHECKS = frozenset(
    {"booked_without_appointment", "flags_contradict_appointments", "call_without_direction"}
)


def _call_candidates(
    conn: psycopg.Connection[Any], since: datetime, until: datetime
) -> dict[str, list[int]]:
    """The candidate calls of the checks guard.history_call_candidates reads the calls once for,
    over [since, until), in a transaction of its own; none when the pass's timeout cuts it: each
    check then reads its view whole. A cancel somebody asked for (pg_cancel_backend) stops the
    pass, as it does in guard.run_checks_between; the timer is told from it as
    guard.statement_timed_out tells it, by the time the statement ran."""
    timeout = arm_pass_timeout(conn)
    started = time.monotonic()
    try:
        rows = conn.execute(queries.HISTORY_CALL_CANDIDATES, (since, until)).fetchall()
    except psycopg.errors.QueryCanceled:
        conn.rollback()
        if not timeout or time.monotonic() - started < 0.9 * timeout:
            raise
        return {}
    conn.commit()
    return {check_id: list(entity_ids) for check_id, entity_ids in rows}


def check_history(
    database_url: str | None,
    batch: timedelta | None,
    progress: Callable[[HistoryProgress], None],
) -> list[list[Any]]:
    """Every check over the whole history, one check at a time, one transaction per batch of
    `batch` of observed time (None: see HISTORY_WHOLE_ROWS; `guard check --all`; `progress` hears
    of each transaction), then the open alerts re-checked a range of ids per transaction, which
    resolves what was fixed."""
    totals: dict[tuple[str, str], list[int]] = {}
    failures: dict[str, tuple[str, str]] = {}
    with (
        connect(database_url, application_name="guard check --all") as conn,
        guard_function_errors(),
    ):
        (start,) = conn.execute(queries.HISTORY_START).fetchone() or (None,)
        conn.commit()
        if start is not None:
            now: datetime = conn.execute(queries.NOW).fetchall()[0][0]
            checks = [row[0] for row in conn.execute(queries.HISTORY_CHECKS).fetchall()]
            conn.commit()
            if batch is None:  # see HISTORY_WHOLE_ROWS
                (estimate,) = conn.execute(queries.HISTORY_ROWS_ESTIMATE).fetchone() or (0,)
                conn.commit()
                batch = None if int(estimate or 0) <= HISTORY_WHOLE_ROWS else HISTORY_BATCH
            batches = 1 if batch is None else max(1, -(-(now - start) // batch))
            step = batch or timedelta()
            # each batch's candidate calls of the checks that share one read of the calls
            candidates: dict[int, dict[str, list[int]]] = {}
            for position, check in enumerate(checks):
                for number in range(batches):
                    since = start + number * step
                    # The last batch is open-ended: rows written while the pass runs count too
                    # (for the checks guard.history_call_candidates serves, those written before
                    # its read of the batch, at the first of them).
                    last = number == batches - 1
                    until = datetime.max.replace(tzinfo=since.tzinfo) if last else since + step
                    if number not in candidates and check in CALL_CANDIDATE_CHECKS:
                        candidates[number] = _call_candidates(conn, since, until)
                    arm_pass_timeout(conn)
                    ran = conn.execute(
                        queries.RUN_CHECKS_BETWEEN,
                        (since, until, check, candidates.get(number, {}).get(check)),
                    ).fetchall()
                    found = 0
                    for check_id, rule_id, offending, opened, repeated, status, error in ran:
                        found += offending or 0
                        total = totals.setdefault((check_id, rule_id), [0, 0, 0, 0])
                        total[0] += offending or 0
                        total[1] += opened
                        total[2] += repeated
                        if status != "ok":
                            # the first batch that did not run it through says why
                            failures.setdefault(check_id, (status, f"{error} (batch {number + 1})"))
                    conn.commit()
                    done = position * batches + number + 1
                    progress(BatchChecked(done, len(checks) * batches, check, since, found))
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
