"""`guard db validate`: the staged-enforcement step for a database that had rows before Booking
Guard's constraints arrived NOT VALID (docs/dba.md, "Adopting an existing database").

A reconcile batch holds the row locks of its calls until it commits, while the application may
update those rows: a batch is kept short in time, takes its calls with SKIP LOCKED (the skipped
ones are reconciled one by one at the end) and is followed by a pause (--pause-ratio)."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from itertools import groupby
from typing import Any

import psycopg
from psycopg import sql

from guard.connection import connect, require_direct, scalar
from guard.errors import GuardError, first_line
from guard.schema.lock_retry import (
    AttemptOverTime,
    AttemptWatch,
    LockPolicy,
    run_with_lock_retries,
    set_session_timeouts,
)

# A batch holds its calls' row locks until it commits, so batches are sized by time: they grow
# and shrink to take about this long, starting from a size well within it.
RECONCILE_BATCH_BUDGET_S = 0.04
RECONCILE_FIRST_BATCH = 500
RECONCILE_MIN_BATCH = 50
# Sizing follows the last batch's time, but a batch may suddenly be slow (old rows that all need
# correcting, a cold cache): so it is also cut at --lock-timeout, counted from when it locks its
# calls, rolled back and retried at half the size, down to one call; a single call over the bound
# is retried with backoff until --lock-deadline.

# After each batch, a pause of this share of its time: unpaced, reconciling a large table
# dirties pages faster than the kernel writes them back, and application writes wait for that
# I/O with no lock in sight (bench/online.py --scale 10 shows it).
RECONCILE_PAUSE_RATIO = 0.5

# The calls of [from, to) this transaction locks (SKIP LOCKED, but for a call skipped earlier).
_LOCK_BATCH = """
SELECT c.id FROM public.calls AS c
WHERE c.id >= %(from_id)s AND c.id < %(to_id)s
ORDER BY c.id
FOR NO KEY UPDATE
"""
_JITTER = random.Random()  # noqa: S311 - backoff jitter, not security
_BATCH_IDS = "SELECT c.id FROM public.calls AS c WHERE c.id >= %(from_id)s AND c.id < %(to_id)s"

_PENDING_CONSTRAINTS = """
SELECT t.relname, k.conname
FROM pg_constraint AS k JOIN pg_class AS t ON t.oid = k.conrelid
WHERE t.relnamespace = 'public'::regnamespace AND t.relname IN ('calls', 'appointments')
  AND k.conname LIKE 'guard\\_%' AND NOT k.convalidated
ORDER BY t.relname, k.conname
"""


@dataclass
class ConstraintResult:
    table: str
    constraint: str
    validated: bool
    detail: str = ""


@dataclass
class ValidationReport:
    corrected: Counter[str] = field(default_factory=Counter)
    calls_scanned: int = 0
    batches_cut: int = 0  # reconcile batches cut at the lock timeout
    constraints: list[ConstraintResult] = field(default_factory=list)
    stages: dict[str, str] = field(default_factory=dict)
    # legacy-row trigger -> created | dropped (guard.sync_legacy_triggers)
    legacy_triggers: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return all(result.validated for result in self.constraints)

    def as_dict(self) -> dict[str, Any]:
        return {"complete": self.complete, **asdict(self), "corrected": dict(self.corrected)}


def validate(
    database_url: str | None,
    *,
    batch_size: int = 10_000,
    progress: Callable[[str], None] = lambda _line: None,
    lock_policy: LockPolicy | None = None,
    pause_ratio: float = RECONCILE_PAUSE_RATIO,
    sleep: Callable[[float], None] = time.sleep,
) -> ValidationReport:
    """pause_ratio: the pause after each reconcile batch, as a share of its time (0: none)."""
    if not 0 <= pause_ratio <= 10:
        raise ValueError(f"pause_ratio must be between 0 and 10, not {pause_ratio}")
    report = ValidationReport()
    policy = lock_policy or LockPolicy()
    with connect(database_url, autocommit=True, application_name="guard db validate") as conn:
        require_direct(conn, "validating (guard db validate)")
        with AttemptWatch(database_url, conn.info.backend_pid) as watch:
            _reconcile(conn, batch_size, progress, report, policy, watch, pause_ratio, sleep)

            def with_lock_retries(
                what: str, statement_timeout_ms: int, work: Callable[[], Any]
            ) -> Any:
                def attempt(lock_timeout_ms: int) -> Any:
                    set_session_timeouts(conn, lock_timeout_ms, statement_timeout_ms)
                    return work()

                return run_with_lock_retries(
                    attempt, what=what, policy=policy, watch=watch, progress=progress
                )

            for table, constraint in conn.execute(_PENDING_CONSTRAINTS).fetchall():
                # The scan is long, but under SHARE UPDATE EXCLUSIVE: writes go on meanwhile.
                result: ConstraintResult = with_lock_retries(
                    f"validating {table}.{constraint}",
                    0,
                    partial(_validate_one, conn, table, constraint),
                )
                report.constraints.append(result)
                progress(
                    f"{'validated' if result.validated else 'NOT VALID'}  {table}.{constraint}"
                    + (f": {result.detail}" if result.detail else "")
                )
            with_lock_retries(
                "setting calls.direction NOT NULL",
                policy.statement_timeout_ms,
                lambda: _set_direction_not_null(conn),
            )
            report.legacy_triggers = with_lock_retries(
                "dropping the legacy-row triggers of validated CHECKs",
                policy.statement_timeout_ms,
                lambda: dict(
                    conn.execute(
                        "SELECT trigger_name, action FROM guard.sync_legacy_triggers()"
                    ).fetchall()
                ),
            )
            for name, action in report.legacy_triggers.items():
                progress(f"{action:<8} public.calls trigger {name}")
        conn.execute("RESET lock_timeout")
        conn.execute("RESET statement_timeout")
        conn.execute("SELECT guard.refresh_rule_stages()")
        report.stages = dict(
            conn.execute(
                "SELECT id, stage FROM guard.rules WHERE constraint_names <> '{}' ORDER BY id"
            ).fetchall()
        )
    return report


def _reconcile(
    conn: psycopg.Connection[Any],
    batch_size: int,
    progress: Callable[[str], None],
    report: ValidationReport,
    policy: LockPolicy,
    watch: AttemptWatch,
    pause_ratio: float,
    sleep: Callable[[float], None],
) -> None:
    row = conn.execute("SELECT min(id), max(id), count(*) FROM public.calls").fetchone()
    if row is None or row[0] is None:
        progress("calls: none to reconcile")
        return
    low, high, total = row
    started = time.monotonic()
    size = min(batch_size, RECONCILE_FIRST_BATCH)
    skipped: list[int] = []
    next_report = 5.0  # a progress line every 5 % of the ids, whatever the table size
    start = low
    over_time = 0  # batches cut at the bound, in a row
    paused_s = 0.0
    while start <= high:
        end = min(start + size, high + 1)
        began = time.monotonic()
        try:
            skipped += _reconcile_range(
                conn, start, end, policy.lock_timeout_ms, report, hold_ms=policy.lock_timeout_ms
            )
        except AttemptOverTime:
            report.batches_cut += 1
            over_time = over_time + 1 if size == 1 else 0
            if size == 1 and time.monotonic() - started > policy.deadline_s:
                raise GuardError(
                    f"reconciling call {start}: every attempt took longer than"
                    f" {policy.lock_timeout_ms} ms (--lock-timeout) until --lock-deadline"
                    f" {policy.deadline_s:g} s; nothing of it was changed"
                ) from None
            # No pause: the batch rolled back, it left nothing to write back.
            size = max(1, size // 2)
            if over_time:
                time.sleep(policy.sleep_for(over_time, _JITTER))
            continue
        over_time = 0
        took = time.monotonic() - began
        if took > RECONCILE_BATCH_BUDGET_S:
            size = max(RECONCILE_MIN_BATCH, size // 2)
        elif took < RECONCILE_BATCH_BUDGET_S / 3:
            size = min(batch_size, size * 2)
        start = end
        pause = pause_ratio * took if start <= high else 0.0  # none after the last batch
        if pause > 0:
            sleep(pause)
            paused_s += pause
        share = 100 * (end - low) / (high - low + 1)
        if share >= next_report or start > high:
            next_report = share + 5
            counts = ", ".join(f"{rule} {n}" for rule, n in sorted(report.corrected.items()))
            skipped_now = f", {len(skipped)} skipped (locked), for later" if skipped else ""
            paused = f", paused {paused_s:.0f} s so far" if paused_s >= 1 else ""
            cut = (
                f", {report.batches_cut} batches cut at {policy.lock_timeout_ms} ms and retried"
                " smaller"
                if report.batches_cut
                else ""
            )
            progress(
                f"calls: reconciled ids up to {end - 1} ({share:.0f} %): {counts}{skipped_now}"
                f"{paused}{cut}"
            )
    if skipped:
        _reconcile_skipped(conn, skipped, progress, report, policy, watch, started)
    report.calls_scanned = total


def _reconcile_range(
    conn: psycopg.Connection[Any],
    from_id: int,
    to_id: int,
    lock_timeout_ms: int,
    report: ValidationReport,
    *,
    hold_ms: int,
    skip_locked: bool = True,
) -> list[int]:
    """Reconcile, in one transaction, the calls of [from_id, to_id) that no one else holds a row
    lock on; return the ids of the others. A lock it still waits for past lock_timeout_ms makes
    the whole range skipped (without skip_locked: LockNotAvailable). Past hold_ms from locking
    its calls, the transaction rolls back and AttemptOverTime is raised."""
    bounds = {"from_id": from_id, "to_id": to_id}
    lock = _LOCK_BATCH + (" SKIP LOCKED" if skip_locked else "")
    corrected: Counter[str] = Counter()
    clock = _HoldClock(conn, hold_ms)
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{lock_timeout_ms}ms",))
            clock.arm(start=True)
            locked = {r[0] for r in conn.execute(lock, bounds).fetchall()}
            clock.arm()
            ids = sorted(r[0] for r in conn.execute(_BATCH_IDS, bounds).fetchall())
            skipped = [call_id for call_id in ids if call_id not in locked]
            for run_from, run_to in _runs(ids, locked):
                clock.arm()
                for rule_name, count in conn.execute(
                    "SELECT rule_name, corrected FROM guard.reconcile_call_batch(%s, %s)",
                    (run_from, run_to),
                ).fetchall():
                    corrected[rule_name] += count
    except psycopg.errors.LockNotAvailable:
        if not skip_locked:
            raise
        return sorted({r[0] for r in conn.execute(_BATCH_IDS, bounds).fetchall()})
    except psycopg.errors.QueryCanceled:
        if not clock.armed:
            raise
        raise AttemptOverTime(
            f"calls [{from_id}, {to_id}): the batch ran past {hold_ms} ms holding its row locks"
        ) from None
    report.corrected.update(corrected)
    return skipped


class _HoldClock:
    """statement_timeout, statement by statement, from what is left of a transaction's hold_ms."""

    def __init__(self, conn: psycopg.Connection[Any], hold_ms: int) -> None:
        self.conn = conn
        self.hold_ms = hold_ms
        self.started = 0.0
        self.armed = False

    def arm(self, *, start: bool = False) -> None:
        now = time.monotonic()
        if start:
            self.started = now
        left_ms = self.hold_ms - (now - self.started) * 1000
        if left_ms < 1:
            self.armed = True
            raise psycopg.errors.QueryCanceled("the batch's time is up")
        self.conn.execute(
            "SELECT set_config('statement_timeout', %s, true)", (f"{max(1, int(left_ms))}ms",)
        )
        self.armed = True


def _runs(ids: list[int], locked: set[int]) -> list[tuple[int, int]]:
    """[from, to) ranges of consecutive ids (in `ids`, sorted) that are all in `locked`."""
    runs = []
    for is_locked, run in groupby(ids, key=locked.__contains__):
        if is_locked:
            members = list(run)
            runs.append((members[0], members[-1] + 1))
    return runs


def _reconcile_skipped(
    conn: psycopg.Connection[Any],
    skipped: list[int],
    progress: Callable[[str], None],
    report: ValidationReport,
    policy: LockPolicy,
    watch: AttemptWatch,
    started: float,
) -> None:
    """The calls a batch skipped, one transaction each under the lock retries."""
    progress(f"calls: reconciling the {len(skipped)} calls skipped because they were locked")
    for call_id in skipped:
        remaining = policy.deadline_s - (time.monotonic() - started)

        def attempt(lock_timeout_ms: int, call_id: int = call_id) -> None:
            _reconcile_range(
                conn,
                call_id,
                call_id + 1,
                lock_timeout_ms,
                report,
                hold_ms=policy.lock_timeout_ms + lock_timeout_ms,
                skip_locked=False,
            )

        run_with_lock_retries(
            attempt,
            what=f"reconciling call {call_id} (a row lock held by another session)",
            policy=replace(policy, deadline_s=max(remaining, 0.0)),
            watch=watch,
            progress=progress,
        )


def _validate_one(conn: psycopg.Connection[Any], table: str, constraint: str) -> ConstraintResult:
    statement = sql.SQL("ALTER TABLE public.{} VALIDATE CONSTRAINT {}").format(
        sql.Identifier(table), sql.Identifier(constraint)
    )
    try:
        conn.execute(statement)
    except (psycopg.errors.CheckViolation, psycopg.errors.ForeignKeyViolation) as error:
        return ConstraintResult(
            table, constraint, False, f"old rows violate it: {first_line(error)}"
        )
    return ConstraintResult(table, constraint, True)


def _set_direction_not_null(conn: psycopg.Connection[Any]) -> None:
    if scalar(
        conn,
        "SELECT k.convalidated AND NOT a.attnotnull"
        " FROM pg_constraint AS k JOIN pg_attribute AS a"
        "   ON a.attrelid = k.conrelid AND a.attname = 'direction'"
        " WHERE k.conrelid = 'public.calls'::regclass"
        " AND k.conname = 'guard_calls_direction_check'",
    ):
        conn.execute("ALTER TABLE public.calls ALTER COLUMN direction SET NOT NULL")
