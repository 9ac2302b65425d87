"""Benchmark of Booking Guard's appointment -> call flag sync: one run, one table (``--json``).

    python bench/triggers.py [--repeat N] [--quick] [--json] [--json-file PATH] [--no-jit]
                             [--generic-plans]

Runs as root or as any user (PostgreSQL itself runs as the ``postgres`` OS user when we are root,
see guard/demo/embedded.py). One throwaway cluster under /tmp; one template database per fillfactor
block, migrated with guard's Migrator and loaded with 3 companies and 250 000 calls; every single
measurement clones a fresh database from that template (``CREATE DATABASE ... TEMPLATE``), so all
of them start from the same state, and drops it afterwards.

Workloads on ``public.appointments`` (each appointment references a distinct existing call of the
same company; calls stay with all their guard_calls_* triggers enabled in every variant):
- insert N rows in ONE statement (INSERT ... SELECT ... FROM generate_series), N = 1 .. 100 000;
- 1 000 single-row INSERT statements, all in ONE transaction (one commit at the end);
- DELETE of 10 000 appointments (whose calls are flagged booked) in one statement.

Variants:
- (a) bare: the guard sync triggers on appointments disabled (FK triggers stay);
- (b) row-level: the original design, a plpgsql AFTER ROW trigger per appointment (schema bench,
  created in the benchmark database only);
- (c) floor: bare, plus the application's own set-based UPDATE of calls, same transaction;
- (c*) floor as (c) but with guard_calls_check_flag_write disabled: in (c) the application's
  own UPDATE of calls is verified by guard's calls-side correction trigger (it is a write at
  trigger depth 0), which (b) and (d) never pay; (c*) is the floor without that check;
- (d) Booking Guard: all triggers as migrated.

Blocks: calls at the default fillfactor (all of the above), and calls at fillfactor 50 (set before
the calls are loaded; HOT updates) with (a), (b), (c), (d) and the 10 000 / 100 000-row, single-row
and delete workloads. Ratios within a block are against that block's variants.

Cold: a fresh connection runs the measured statement. Warm: a fresh connection first runs (and
commits) a 1-row statement of the same kind, then the measured one: a plan cached from a 1-row
firing must not make a big statement slow. Timed: the measured statement(s) plus the commit.
Figures are medians over --repeat rounds; the rounds are interleaved (round 1 of every row, then
round 2, ...) so that load from elsewhere on the machine hits all rows alike.

The cluster: fsync off (guard.demo.embedded), shared_buffers 1GB, autovacuum off; each clone's
tables and indexes are loaded into shared_buffers (pg_prewarm) before the measurement. jit stays at
the server default (on) unless --no-jit. --generic-plans sets plan_cache_mode = force_generic_plan:
what a long-lived connection's triggers run with once PostgreSQL has switched their cached plans to
generic ones (parameters instead of constants). A default run takes about 10-12 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._cluster import bench_cluster, progress
from guard.demo.embedded import EmbeddedCluster
from guard.schema.migrate import Migrator

CALLS = 250_000
COMPANIES = 3
DELETE_ROWS = 10_000  # appointments 1..10 000 on calls 1..10 000, booked in the template
WARM_DELETE_ID = DELETE_ROWS + 1  # one more booked appointment, deleted by the warm-up
PRE_APPOINTMENTS = DELETE_ROWS + 1
INSERT_FIRST_CALL = 20_001  # the warm-up insert uses this call; measured inserts start after it
SINGLE_ROWS = 1_000
SIZES = (1, 100, 10_000, 100_000)
QUICK_SIZES = (1, 100, 10_000)

VARIANTS = {
    "a": "(a) bare",
    "b": "(b) row-level",
    "c": "(c) floor",
    "c*": "(c*) floor, no calls check",
    "d": "(d) guard",
}
BLOCKS = {100: "calls fillfactor 100 (default)", 50: "calls fillfactor 50"}

# -- the original row-level design (variant b), created in the clone only -----------------------

ROW_LEVEL_SQL = """
CREATE SCHEMA bench;

CREATE FUNCTION bench.rowlevel_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE public.calls
    SET appointment_made = true, appointment_link_status = 'linked',
        appointment_linked_at = now(), session_outcome = 'appointment_booked'
    WHERE id = NEW.call_id;
    RETURN NULL;
END;
$$;

CREATE FUNCTION bench.rowlevel_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    active boolean;
BEGIN
    active := EXISTS (
        SELECT FROM public.appointments
        WHERE call_id = OLD.call_id AND deleted_at IS NULL AND status IS DISTINCT FROM 'cancelled'
    );
    UPDATE public.calls
    SET appointment_made = active,
        appointment_link_status = CASE WHEN active THEN 'linked' ELSE 'unlinked' END,
        session_outcome = CASE
            WHEN active THEN 'appointment_booked'
            WHEN session_outcome = 'appointment_booked' THEN 'appointment_cancelled'
            ELSE session_outcome
        END
    WHERE id = OLD.call_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER bench_rowlevel_insert AFTER INSERT ON public.appointments
FOR EACH ROW EXECUTE FUNCTION bench.rowlevel_after_insert();

CREATE TRIGGER bench_rowlevel_delete AFTER DELETE ON public.appointments
FOR EACH ROW EXECUTE FUNCTION bench.rowlevel_after_delete();
"""

# The lower bound of Booking Guard's appointment triggers (bench/instructions.py's variant l,
# bench/workload.py's (l)), applied over Booking Guard: each appointment row derives its call at
# once, through what Booking Guard's own triggers run for a one-row statement, with no notes and
# no statement trigger. Not a shippable design: a multi-row statement locks its calls in scan
# order, not id order. Trigger functions get no EXECUTE check at firing. The insert's UPDATE
# and the update's change test are copies of the shipped ones: tests/unit/test_bench_lower_bound.py
# fails when they part.
AT_ONCE_SQL = """
CREATE SCHEMA bench;

CREATE FUNCTION bench.at_once_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.call_id IS NOT NULL AND guard.is_active_appointment(NEW.status, NEW.deleted_at) THEN
        UPDATE public.calls AS c
        SET
            appointment_made = TRUE,
            appointment_link_status = 'linked',
            appointment_linked_at = coalesce(
                c.appointment_linked_at,
                guard.to_app_time(pg_catalog.now(), c.appointment_linked_at, guard.app_time_zone())
            ),
            session_outcome = 'appointment_booked',
            booking_failed = FALSE,
            updated_at = guard.to_app_time(pg_catalog.now(), c.updated_at, guard.app_time_zone())
        WHERE c.id = NEW.call_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION bench.at_once_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF
        (NEW.call_id, NEW.company_id, guard.is_active_appointment(NEW.status, NEW.deleted_at))
        IS NOT DISTINCT FROM
        (OLD.call_id, OLD.company_id, guard.is_active_appointment(OLD.status, OLD.deleted_at))
    THEN
        RETURN NULL;
    END IF;
    IF guard.sync_one_call_flags(
        OLD.call_id, guard.is_active_appointment(OLD.status, OLD.deleted_at)
    ) THEN
    END IF;
    IF
        NEW.call_id IS DISTINCT FROM OLD.call_id
        AND guard.sync_one_call_flags(NEW.call_id, FALSE)
    THEN
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION bench.at_once_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF
        guard.is_active_appointment(OLD.status, OLD.deleted_at)
        AND guard.sync_one_call_flags(OLD.call_id, TRUE)
    THEN
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER guard_appointments_sync_insert ON public.appointments;
DROP TRIGGER guard_appointments_sync_update ON public.appointments;
DROP TRIGGER guard_appointments_note_change ON public.appointments;
DROP TRIGGER guard_appointments_sync_delete ON public.appointments;

CREATE TRIGGER bench_at_once_insert AFTER INSERT ON public.appointments
FOR EACH ROW EXECUTE FUNCTION bench.at_once_after_insert();

CREATE TRIGGER bench_at_once_update
AFTER UPDATE OF call_id, company_id, status, deleted_at ON public.appointments
FOR EACH ROW EXECUTE FUNCTION bench.at_once_after_update();

CREATE TRIGGER bench_at_once_delete AFTER DELETE ON public.appointments
FOR EACH ROW EXECUTE FUNCTION bench.at_once_after_delete();
"""

VARIANT_SETUP = {
    "a": ["ALTER TABLE public.appointments DISABLE TRIGGER USER"],
    "b": ["ALTER TABLE public.appointments DISABLE TRIGGER USER", ROW_LEVEL_SQL],
    "c": ["ALTER TABLE public.appointments DISABLE TRIGGER USER"],
    "c*": [
        "ALTER TABLE public.appointments DISABLE TRIGGER USER",
        "ALTER TABLE public.calls DISABLE TRIGGER guard_calls_check_flag_write",
    ],
    "d": [],
}

# -- the measured statements ----------------------------------------------------------------------

INSERT_MANY = """
INSERT INTO public.appointments
    (company_id, call_id, calcom_v2_booking_id, source, status, starts_at, ends_at)
SELECT 1 + g %% 3, g, 'bk-' || g, 'retell_webhook', 'scheduled',
       now() + interval '1 day', now() + interval '1 day 30 minutes'
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g
"""

INSERT_ONE = """
INSERT INTO public.appointments
    (company_id, call_id, calcom_v2_booking_id, source, status, starts_at, ends_at)
VALUES (%(company)s, %(call)s, %(uid)s, 'retell_webhook', 'scheduled',
        now() + interval '1 day', now() + interval '1 day 30 minutes')
"""

# the application's own write after inserting appointments (variant c): set-based
FLOOR_AFTER_INSERT = """
UPDATE public.calls
SET appointment_made = true, appointment_link_status = 'linked',
    appointment_linked_at = now(), session_outcome = 'appointment_booked'
FROM (SELECT DISTINCT call_id FROM public.appointments WHERE id >= %(first_id)s) AS n
WHERE calls.id = n.call_id
"""

FLOOR_AFTER_INSERT_ONE = """
UPDATE public.calls
SET appointment_made = true, appointment_link_status = 'linked',
    appointment_linked_at = now(), session_outcome = 'appointment_booked'
WHERE id = %(call)s
"""

DELETE_RANGE = "DELETE FROM public.appointments WHERE id BETWEEN %(lo)s AND %(hi)s"

# the application's own recompute after deleting appointments of known calls (variant c)
FLOOR_AFTER_DELETE = """
UPDATE public.calls AS c
SET appointment_made = n.active,
    appointment_link_status = CASE WHEN n.active THEN 'linked' ELSE 'unlinked' END,
    session_outcome = CASE
        WHEN n.active THEN 'appointment_booked'
        WHEN c.session_outcome = 'appointment_booked' THEN 'appointment_cancelled'
        ELSE c.session_outcome
    END
FROM (
    SELECT u.call_id, EXISTS (
        SELECT FROM public.appointments AS a
        WHERE a.call_id = u.call_id AND a.deleted_at IS NULL
            AND a.status IS DISTINCT FROM 'cancelled'
    ) AS active
    FROM (SELECT DISTINCT x AS call_id FROM unnest(%(calls)s::bigint[]) AS x) AS u
) AS n
WHERE c.id = n.call_id
"""


def company_of(call_id: int) -> int:
    return 1 + call_id % COMPANIES


# -- workloads: (warm-up, measured); each gets a connection in a transaction ---------------------


@dataclass(frozen=True)
class Workload:
    key: str
    label: str
    size: int
    warmup: Callable[[psycopg.Connection[Any], str], None]
    measured: Callable[[psycopg.Connection[Any], str, bool], None]


def uses_floor(variant: str) -> bool:
    """The floor variants run the application's own UPDATE of calls after the statement."""
    return variant in ("c", "c*")


def insert_many(size: int) -> Workload:
    first_id_cold = PRE_APPOINTMENTS + 1  # identity values are deterministic in each clone

    def warmup(conn: psycopg.Connection[Any], variant: str) -> None:
        lo = INSERT_FIRST_CALL
        conn.execute(INSERT_MANY, {"lo": lo, "hi": lo})
        if uses_floor(variant):
            conn.execute(FLOOR_AFTER_INSERT, {"first_id": first_id_cold})

    def measured(conn: psycopg.Connection[Any], variant: str, warm: bool) -> None:
        lo = INSERT_FIRST_CALL + 1
        conn.execute(INSERT_MANY, {"lo": lo, "hi": lo + size - 1})
        if uses_floor(variant):
            conn.execute(FLOOR_AFTER_INSERT, {"first_id": first_id_cold + int(warm)})

    return Workload("insert", "insert, one statement", size, warmup, measured)


def insert_single() -> Workload:
    def one(conn: psycopg.Connection[Any], variant: str, call: int) -> None:
        conn.execute(INSERT_ONE, {"company": company_of(call), "call": call, "uid": f"bk-{call}"})
        if uses_floor(variant):
            conn.execute(FLOOR_AFTER_INSERT_ONE, {"call": call})

    def warmup(conn: psycopg.Connection[Any], variant: str) -> None:
        one(conn, variant, INSERT_FIRST_CALL)

    def measured(conn: psycopg.Connection[Any], variant: str, warm: bool) -> None:
        for call in range(INSERT_FIRST_CALL + 1, INSERT_FIRST_CALL + 1 + SINGLE_ROWS):
            one(conn, variant, call)

    return Workload("single", "insert, 1 row/statement, 1 tx", SINGLE_ROWS, warmup, measured)


def delete_many() -> Workload:
    def run(conn: psycopg.Connection[Any], variant: str, lo: int, hi: int) -> None:
        conn.execute(DELETE_RANGE, {"lo": lo, "hi": hi})
        if uses_floor(variant):  # appointment i belongs to call i (template)
            conn.execute(FLOOR_AFTER_DELETE, {"calls": list(range(lo, hi + 1))})

    def warmup(conn: psycopg.Connection[Any], variant: str) -> None:
        run(conn, variant, WARM_DELETE_ID, WARM_DELETE_ID)

    def measured(conn: psycopg.Connection[Any], variant: str, warm: bool) -> None:
        run(conn, variant, 1, DELETE_ROWS)

    return Workload("delete", "delete, one statement", DELETE_ROWS, warmup, measured)


# -- the cluster and the databases ---------------------------------------------------------------

LOAD_SQL = [
    """
    INSERT INTO public.companies (id, name)
    SELECT i, 'Company ' || i FROM generate_series(1, {companies}) AS i
    """,
    """
    INSERT INTO public.calls (
        id, company_id, retell_call_id, from_number, to_number, status, direction,
        customer_link_status, session_outcome, created_at, updated_at
    )
    SELECT g, 1 + g % {companies}, 'call_' || g, '+4930' || lpad(g::text, 8, '0'),
           '+4940100200', 'ended', CASE WHEN g % 5 = 0 THEN 'outbound' ELSE 'inbound' END,
           'unlinked', 'information_only',
           now() - g * interval '10 seconds', now() - g * interval '10 seconds'
    FROM generate_series(1, {calls}) AS g
    """,
    # the booked calls the delete workload starts from: inserted with guard's triggers on
    """
    INSERT INTO public.appointments
        (company_id, call_id, calcom_v2_booking_id, source, status, starts_at, ends_at)
    SELECT 1 + g % {companies}, g, 'bk-' || g, 'retell_webhook', 'scheduled',
           now() + interval '1 day', now() + interval '1 day 30 minutes'
    FROM generate_series(1, {pre}) AS g ORDER BY g
    """,
    "SELECT setval(pg_get_serial_sequence('public.calls', 'id'), {calls})",
    "SELECT setval(pg_get_serial_sequence('public.companies', 'id'), {companies})",
]


class Bench:
    def __init__(self, cluster: EmbeddedCluster) -> None:
        self.cluster = cluster
        self.admin = psycopg.connect(cluster.url("postgres"), autocommit=True)
        self._serial = 0

    def close(self) -> None:
        self.admin.close()

    def build_template(self, name: str, fillfactor: int) -> None:
        self.admin.execute(f"CREATE DATABASE {name}")
        url = self.cluster.url(name)
        with Migrator(url) as migrator:
            migrator.apply()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE public.calls SET (fillfactor = {fillfactor})")
            params = {"companies": COMPANIES, "calls": CALLS, "pre": PRE_APPOINTMENTS}
            for statement in LOAD_SQL:
                conn.execute(statement.format(**params).encode())
            booked = conn.execute(
                "SELECT count(*) FROM public.calls WHERE appointment_made"
                " AND session_outcome = 'appointment_booked'"
            ).fetchone()
            assert booked is not None and booked[0] == PRE_APPOINTMENTS, booked
            top = conn.execute("SELECT max(id) FROM public.appointments").fetchone()
            assert top is not None and top[0] == PRE_APPOINTMENTS, top
            conn.execute("VACUUM (ANALYZE, FREEZE)")
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        # no connections may remain on a template
        self.admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")

    def clone(self, template: str, variant: str) -> str:
        self._serial += 1
        name = f"m{self._serial}"
        self.admin.execute(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
        with psycopg.connect(self.cluster.url(name), autocommit=True) as conn:
            for statement in VARIANT_SETUP[variant]:
                conn.execute(statement.encode())
            # the clone's pages are new to shared_buffers: load them so that no variant pays it
            conn.execute(
                """
                SELECT pg_prewarm(c.oid) FROM pg_class AS c
                WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'i')
                """
            )
            conn.execute("CHECKPOINT")
        return name

    def drop(self, name: str) -> None:
        self.admin.execute(f"DROP DATABASE {name} WITH (FORCE)")

    def run_in(self, name: str, statements: Iterable[str]) -> None:
        with psycopg.connect(self.cluster.url(name), autocommit=True) as conn:
            for text in statements:
                conn.execute(text.encode())

    def measure(self, template: str, variant: str, workload: Workload, warm: bool) -> float:
        name = self.clone(template, variant)
        try:
            with psycopg.connect(self.cluster.url(name)) as conn:
                if warm:
                    workload.warmup(conn, variant)
                    conn.commit()
                started = time.perf_counter()
                workload.measured(conn, variant, warm)
                conn.commit()
                elapsed = time.perf_counter() - started
            self._check(name, variant, workload, warm)
        finally:
            self.drop(name)
        return elapsed * 1000

    def _check(self, name: str, variant: str, workload: Workload, warm: bool) -> None:
        """The variants that sync flags left the calls right (untimed)."""
        if variant == "a":
            return
        with psycopg.connect(self.cluster.url(name), autocommit=True) as conn:
            wrong = conn.execute(
                """
                SELECT count(*) FROM public.calls AS c
                WHERE c.appointment_made IS DISTINCT FROM EXISTS (
                    SELECT FROM public.appointments AS a
                    WHERE a.call_id = c.id AND a.deleted_at IS NULL
                        AND a.status IS DISTINCT FROM 'cancelled'
                )
                """
            ).fetchone()
        assert wrong is not None and wrong[0] == 0, (variant, workload.key, warm, wrong)


def variants_of(fillfactor: int) -> list[str]:
    """(c*) only in the default block: it explains (c), and the run must stay under ~10 min."""
    return [v for v in VARIANTS if v != "c*" or fillfactor == 100]


def workloads_of(fillfactor: int, workloads: list[Workload]) -> list[Workload]:
    """The fillfactor 50 block skips the 1- and 100-row statements: HOT does not matter there."""
    return [w for w in workloads if fillfactor == 100 or w.key != "insert" or w.size >= 10_000]


# -- running and reporting -----------------------------------------------------------------------

Key = tuple[int, str, int, str]  # fillfactor, workload key, size, variant


def run(args: argparse.Namespace, bench: Bench, progress: Callable[[str], None]) -> dict[str, Any]:
    sizes = QUICK_SIZES if args.quick else SIZES
    workloads = [insert_many(size) for size in sizes] + [insert_single(), delete_many()]
    templates = {}
    for fillfactor in BLOCKS:
        templates[fillfactor] = f"tmpl_ff{fillfactor}"
        progress(f"building template {templates[fillfactor]} ({CALLS} calls)")
        bench.build_template(templates[fillfactor], fillfactor)

    samples: dict[tuple[Key, str], list[float]] = {}
    started = time.monotonic()
    # interleaved round by round, so that load from elsewhere on the machine hits all rows alike
    for round_ in range(args.repeat):
        for fillfactor, template in templates.items():
            for workload in workloads_of(fillfactor, workloads):
                for variant in variants_of(fillfactor):
                    for mode in ("cold", "warm"):
                        ms = bench.measure(template, variant, workload, mode == "warm")
                        key = (fillfactor, workload.key, workload.size, variant)
                        samples.setdefault((key, mode), []).append(ms)
            progress(
                f"round {round_ + 1}/{args.repeat}, fillfactor {fillfactor} done"
                f" ({time.monotonic() - started:.0f} s)"
            )

    labels = {(w.key, w.size): w.label for w in workloads}
    rows = []
    for fillfactor in templates:
        for workload in workloads_of(fillfactor, workloads):
            base = (fillfactor, workload.key, workload.size)
            for variant in variants_of(fillfactor):
                key = (*base, variant)
                row: dict[str, Any] = {
                    "fillfactor": fillfactor,
                    "workload": workload.key,
                    "label": labels[(workload.key, workload.size)],
                    "size": workload.size,
                    "variant": variant,
                    "variant_label": VARIANTS[variant],
                }
                for mode in ("cold", "warm"):
                    row[f"{mode}_ms"] = statistics.median(samples[(key, mode)])
                    row[f"{mode}_samples_ms"] = samples[(key, mode)]
                row["warm_over_cold"] = row["warm_ms"] / row["cold_ms"]
                for ref in ("a", "b", "c", "c*"):
                    for mode in ("cold", "warm"):
                        ref_samples = samples.get(((*base, ref), mode))
                        row[f"{mode}_vs_{ref}"] = (
                            row[f"{mode}_ms"] / statistics.median(ref_samples)
                            if ref_samples
                            else None
                        )
                rows.append(row)
    return {"rows": rows, "seconds": time.monotonic() - started}


def find(rows: list[dict[str, Any]], ff: int, workload: str, size: int, variant: str) -> Any:
    for row in rows:
        if (row["fillfactor"], row["workload"], row["size"], row["variant"]) == (
            ff,
            workload,
            size,
            variant,
        ):
            return row
    return None


def targets(rows: list[dict[str, Any]], quick: bool) -> list[dict[str, Any]]:
    """The issue's targets, on the default fillfactor block, each for cold and warm."""
    out = []

    def ratio_target(name: str, workload: str, size: int, ref: str, limit: float) -> None:
        row = find(rows, 100, workload, size, "d")
        if row is None:
            out.append({"target": name, "result": "SKIPPED (--quick)", "detail": ""})
            return
        cold, warm = row[f"cold_vs_{ref}"], row[f"warm_vs_{ref}"]
        ok = cold <= limit and warm <= limit
        out.append(
            {
                "target": name,
                "result": "PASS" if ok else "FAIL",
                "detail": f"cold {cold:.2f}x, warm {warm:.2f}x",
                "cold": cold,
                "warm": warm,
            }
        )

    ratio_target("100 000-row insert: (d) <= 1.15x (c) floor", "insert", 100_000, "c", 1.15)
    ratio_target("100 000-row insert: (d) <= 0.55x (b) row-level", "insert", 100_000, "b", 0.55)
    worst = [
        (row["warm_over_cold"], row["label"], row["size"])
        for row in rows
        if row["fillfactor"] == 100 and row["variant"] == "d"
    ]
    slowest = max(worst)
    ok = all(ratio <= 1.10 for ratio, _, _ in worst)
    out.append(
        {
            "target": "(d) warm no slower than cold by more than 10 %, every size",
            "result": "PASS" if ok else "FAIL",
            "detail": f"worst warm/cold {slowest[0]:.2f} ({slowest[1]}, {slowest[2]})",
            "worst": slowest[0],
        }
    )
    ratio_target("1 000 single-row inserts: (d) <= 1.1x (b)", "single", SINGLE_ROWS, "b", 1.10)
    ratio_target("delete 10 000: (d) <= 0.7x (b)", "delete", DELETE_ROWS, "b", 0.70)
    ratio_target("(extra) 100 000-row insert: (d) <= 1.15x (c*)", "insert", 100_000, "c*", 1.15)
    if quick:
        for target in out:
            target["target"] += " [--quick]"
    return out


def print_table(
    header: dict[str, Any], result: dict[str, Any], goals: list[dict[str, Any]]
) -> None:
    print(f"Booking Guard trigger benchmark - {header['server']}")
    print(
        f"{header['cores']} cores; {CALLS} calls, {COMPANIES} companies; median of"
        f" {header['repeat']} run(s); {header['seconds']:.0f} s measuring"
    )
    print(
        "cold: fresh connection; warm: same connection just ran and committed a 1-row statement"
        " of the same kind. Ratios: cold / warm. Timed: the statement(s) + COMMIT."
    )
    print(
        "1 000 single-row inserts: one transaction, one COMMIT at the end. Every figure on a fresh"
        " clone of the template."
    )
    columns: tuple[str, ...] = ("workload", "size", "variant", "cold ms", "warm ms", "w/c")
    columns += ("vs (a)", "vs (b)", "vs (c)", "vs (c*)")
    widths = (30, 7, 27, 10, 10, 5, 11, 11, 11, 11)
    line = "  ".join(
        f"{c:<{w}}" if i < 3 else f"{c:>{w}}"
        for i, (c, w) in enumerate(zip(columns, widths, strict=True))
    )
    for fillfactor, title in BLOCKS.items():
        print()
        print(f"== {title}")
        print(line)
        print("-" * len(line))
        previous = None
        for row in result["rows"]:
            if row["fillfactor"] != fillfactor:
                continue
            group = (row["workload"], row["size"])
            if previous is not None and group != previous:
                print()
            previous = group

            def pair(ref: str, row: dict[str, Any] = row) -> str:
                if row[f"cold_vs_{ref}"] is None:
                    return "-"
                return f"{row[f'cold_vs_{ref}']:.2f}/{row[f'warm_vs_{ref}']:.2f}"

            cells = (
                row["label"],
                f"{row['size']:,}",
                row["variant_label"],
                f"{row['cold_ms']:.1f}",
                f"{row['warm_ms']:.1f}",
                f"{row['warm_over_cold']:.2f}",
                pair("a"),
                pair("b"),
                pair("c"),
                pair("c*"),
            )
            print(
                "  ".join(
                    f"{c:<{w}}" if i < 3 else f"{c:>{w}}"
                    for i, (c, w) in enumerate(zip(cells, widths, strict=True))
                )
            )
    print()
    print("Targets (calls fillfactor 100; a ratio target must hold cold and warm):")
    for goal in goals:
        print(f"  {goal['result']:<5} {goal['target']}: {goal['detail']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--quick", action="store_true", help="smoke run: skip 100 000 rows")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--json-file", type=Path, help="also write the figures as JSON to this file"
    )
    parser.add_argument(
        "--no-jit", action="store_true", help="run the cluster with jit = off (default: on)"
    )
    parser.add_argument(
        "--generic-plans",
        action="store_true",
        help="run the cluster with plan_cache_mode = force_generic_plan",
    )
    args = parser.parse_args(argv)
    settings = {}
    if args.no_jit:
        settings["jit"] = "off"
    if args.generic_plans:
        settings["plan_cache_mode"] = "force_generic_plan"

    progress("starting a throwaway cluster")
    with bench_cluster(settings) as cluster:
        bench = Bench(cluster)
        try:
            server = bench.admin.execute(
                "SELECT version() || ', jit ' || current_setting('jit')"
                " || ', plan_cache_mode ' || current_setting('plan_cache_mode')"
                " || ', shared_buffers ' || current_setting('shared_buffers')"
            ).fetchone()
            result = run(args, bench, progress)
        finally:
            bench.close()

    header = {
        "server": server[0] if server else "?",
        "cores": os.cpu_count(),
        "repeat": args.repeat,
        "quick": args.quick,
        "seconds": result["seconds"],
        "single_row_inserts": "one transaction, one commit at the end",
    }
    goals = targets(result["rows"], args.quick)
    figures = json.dumps({"header": header, "rows": result["rows"], "targets": goals}, indent=2)
    if args.json_file:
        args.json_file.write_text(figures + "\n")
    if args.json:
        print(figures)
    else:
        print_table(header, result, goals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
