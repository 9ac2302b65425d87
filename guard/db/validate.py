"""`guard db validate`: the staged-enforcement step for a database that had rows before Booking
Guard's constraints arrived (they were added NOT VALID: new writes are checked, old rows not).

1. Reconcile what is safe, in short batches of calls (guard.reconcile_call_batch): missing
   directions, incomplete customer links, booking flags that contradict the appointments. Every
   change is in guard.correction_audit.
2. VALIDATE each constraint still NOT VALID. That takes a SHARE UPDATE EXCLUSIVE lock: reads and
   writes go on while it scans. A constraint that old rows still violate stays NOT VALID and is
   reported; those rows need a person (detection lists them).
3. Once the direction CHECK is valid, SET NOT NULL on calls.direction: PostgreSQL takes the valid
   CHECK as proof and skips the scan, so the exclusive lock is held for a moment only.
4. Drop the legacy-row triggers of the CHECKs that are valid now (guard.sync_legacy_triggers):
   no stored row can break those CHECKs any more, and each such trigger costs every statement
   that updates calls the compilation of its WHEN clause.
5. Record each rule's stage (correct -> enforce) in guard.rules.

Steps 2 to 4 take their locks with short lock timeouts, retried until the deadline
(guard.db.lock_retry), so writers never queue behind them for longer than one attempt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from guard.db.connection import connect
from guard.db.lock_retry import BlockerWatch, LockPolicy, run_with_lock_retries
from guard.errors import first_line

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
    constraints: list[ConstraintResult] = field(default_factory=list)
    stages: dict[str, str] = field(default_factory=dict)
    # legacy-row trigger -> created | dropped (guard.sync_legacy_triggers)
    legacy_triggers: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return all(result.validated for result in self.constraints)

    def as_dict(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "calls_scanned": self.calls_scanned,
            "corrected": dict(self.corrected),
            "constraints": [vars(result) for result in self.constraints],
            "stages": self.stages,
            "legacy_triggers": self.legacy_triggers,
        }


def validate(
    database_url: str | None,
    *,
    batch_size: int = 10_000,
    progress: Callable[[str], None] = lambda _line: None,
    lock_policy: LockPolicy | None = None,
) -> ValidationReport:
    report = ValidationReport()
    policy = lock_policy or LockPolicy()
    with connect(database_url, autocommit=True, application_name="guard db validate") as conn:
        _reconcile(conn, batch_size, progress, report)
        with BlockerWatch(database_url, conn.info.backend_pid) as watch:

            def with_lock_retries(
                what: str, statement_timeout_ms: int, work: Callable[[], Any]
            ) -> Any:
                def attempt(lock_timeout_ms: int) -> Any:
                    conn.execute(
                        "SELECT set_config('lock_timeout', %s, false),"
                        " set_config('statement_timeout', %s, false)",
                        (f"{lock_timeout_ms}ms", f"{statement_timeout_ms}ms"),
                    )
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
) -> None:
    row = conn.execute("SELECT min(id), max(id), count(*) FROM public.calls").fetchone()
    if row is None or row[0] is None:
        progress("calls: none to reconcile")
        return
    low, high, total = row
    batches = (high - low) // batch_size + 1
    every = max(1, batches // 20)  # at most about 20 progress lines, whatever the table size
    for number, start in enumerate(range(low, high + 1, batch_size), start=1):
        with conn.transaction():
            for rule_name, corrected in conn.execute(
                "SELECT rule_name, corrected FROM guard.reconcile_call_batch(%s, %s)",
                (start, start + batch_size),
            ).fetchall():
                report.corrected[rule_name] += corrected
        if number % every == 0 or number == batches:
            done = min(high, start + batch_size - 1) - low + 1
            share = 100 * done / (high - low + 1)
            counts = ", ".join(f"{rule} {n}" for rule, n in sorted(report.corrected.items()))
            progress(
                f"calls: reconciled ids up to {start + batch_size - 1} ({share:.0f} %): {counts}"
            )
    report.calls_scanned = total


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
    row = conn.execute(
        "SELECT k.convalidated AND NOT a.attnotnull"
        " FROM pg_constraint AS k JOIN pg_attribute AS a"
        "   ON a.attrelid = k.conrelid AND a.attname = 'direction'"
        " WHERE k.conrelid = 'public.calls'::regclass AND k.conname = 'guard_calls_direction_check'"
    ).fetchone()
    if row and row[0]:
        conn.execute("ALTER TABLE public.calls ALTER COLUMN direction SET NOT NULL")
