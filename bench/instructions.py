"""Server instructions per trigger workload (valgrind callgrind): deterministic, unlike wall time.

    python -m bench.instructions [--generic-plans] [--json] [--as application|superuser]
                                 [--workloads single,insert,delete,delete1,...]
                                 [--variants a,b,c,c*,d] [--insert-rows N]

Why: on a shared 2-core virtual machine the wall-clock figures of bench/triggers.py swing by
30 % and more from one sample to the next, so a ratio target of 1.1x is decided by noise. The
number of instructions a backend executes for the same statements on the same data does not
swing: two runs give the same counts to a fraction of a percent.

Method: one throwaway cluster (jit off: compiled code is not comparable), the template of
bench/triggers.py (250 000 calls, 10 001 booked), the same variants (a), (b), (c), (c*), (d) and
the same statements. For every (variant, workload) two fresh clones are made; the cluster is
stopped and each clone is driven by a single-user backend (``postgres --single``) under
callgrind. On one clone the backend runs the warm-up statement only, on the other the warm-up
and then the measured statements; the difference is the measured work, without process start,
catalog loading and the first compilation of the trigger functions (the warm case). There is no
client, protocol or network in a single-user backend: those costs are equal for every variant
and would only pull the wall-clock ratios towards 1, so these ratios are the stricter ones.

Workloads: the bulk statements of bench/triggers.py (single, insert, delete) and the everyday
one-row paths of a booking application, each 1 000 one-row statements: delete1, cancel1, soft1
and move1 of an appointment; call1 (the application's update of a call's status), callins1 (a
new call), flags1 (the application writes a booked call's flags after its appointment exists)
and callfirst1 (the call's flags first, then its appointment, one transaction per booking: the
write contradicts the appointments until the second statement and is judged at commit). For the
one-row paths of calls, variant (a) has every user trigger of the booking tables disabled.

Statements run as the application role (row-level security applies), as the booking
application's login does; `--as superuser` runs them as the bootstrap superuser (no RLS).

Takes about 12 minutes on 2 cores for every workload (callgrind runs a backend about 50x slower).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._cluster import bench_cluster
from bench.triggers import (
    DELETE_RANGE,
    DELETE_ROWS,
    FLOOR_AFTER_DELETE,
    FLOOR_AFTER_INSERT,
    FLOOR_AFTER_INSERT_ONE,
    INSERT_FIRST_CALL,
    INSERT_MANY,
    INSERT_ONE,
    PRE_APPOINTMENTS,
    SINGLE_ROWS,
    VARIANTS,
    WARM_DELETE_ID,
    Bench,
    company_of,
    uses_floor,
)
from guard.embedded import EmbeddedCluster, as_server_user, pg_bindir

INSERT_ROWS = 10_000  # the one-statement insert; --insert-rows 100000 takes about 30 minutes
COLLECTED = re.compile(r"Collected : (\d+)")


def literal(value: Any) -> str:
    """A SQL literal for the benchmark's own values (ints, strings, lists of ints)."""
    if isinstance(value, bool) or not isinstance(value, int | str | list):
        raise TypeError(f"no literal for {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "'{" + ",".join(str(int(v)) for v in value) + "}'"
    return "'" + value.replace("'", "''") + "'"


def statement(template: str, **params: Any) -> str:
    return template % {name: literal(value) for name, value in params.items()}


@dataclass(frozen=True)
class Workload:
    key: str
    label: str
    rows: int  # what "per row" divides by
    warmup: list[str]
    measured: list[str]
    # statements run on both clones after the variant's own set-up (e.g. calls' triggers off)
    setup: tuple[str, ...] = ()


def single_inserts(variant: str, rows: int) -> Workload:
    def one(call: int) -> list[str]:
        out = [statement(INSERT_ONE, company=company_of(call), call=call, uid=f"bk-{call}")]
        if uses_floor(variant):
            out.append(statement(FLOOR_AFTER_INSERT_ONE, call=call))
        return out

    measured = ["BEGIN"]
    for call in range(INSERT_FIRST_CALL + 1, INSERT_FIRST_CALL + 1 + SINGLE_ROWS):
        measured += one(call)
    return Workload(
        "single",
        "insert, 1 row/statement, 1 tx",
        SINGLE_ROWS,
        one(INSERT_FIRST_CALL),
        [*measured, "COMMIT"],
    )


def insert_statement(variant: str, rows: int) -> Workload:
    # identity values are deterministic in every clone: the warm-up row gets PRE_APPOINTMENTS + 1
    warmup = [statement(INSERT_MANY, lo=INSERT_FIRST_CALL, hi=INSERT_FIRST_CALL)]
    lo = INSERT_FIRST_CALL + 1
    measured = ["BEGIN", statement(INSERT_MANY, lo=lo, hi=lo + rows - 1)]
    if uses_floor(variant):
        warmup.append(statement(FLOOR_AFTER_INSERT, first_id=PRE_APPOINTMENTS + 1))
        measured.append(statement(FLOOR_AFTER_INSERT, first_id=PRE_APPOINTMENTS + 2))
    return Workload("insert", "insert, one statement", rows, warmup, [*measured, "COMMIT"])


def delete_statement(variant: str, rows: int) -> Workload:
    warmup = [statement(DELETE_RANGE, lo=WARM_DELETE_ID, hi=WARM_DELETE_ID)]
    measured = ["BEGIN", statement(DELETE_RANGE, lo=1, hi=DELETE_ROWS)]
    if uses_floor(variant):  # appointment i belongs to call i (template)
        warmup.append(statement(FLOOR_AFTER_DELETE, calls=[WARM_DELETE_ID]))
        measured.append(statement(FLOOR_AFTER_DELETE, calls=list(range(1, DELETE_ROWS + 1))))
    return Workload("delete", "delete, one statement", DELETE_ROWS, warmup, [*measured, "COMMIT"])


# -- the everyday one-row paths of a booking application -------------------------------------------
# Each runs SINGLE_ROWS one-row statements in one transaction on the template's booked
# appointments 1 .. SINGLE_ROWS (appointment i belongs to call i); the warm-up runs the same
# statement once on appointment SINGLE_ROWS + 1.

DELETE_ONE = "DELETE FROM public.appointments WHERE id = %(id)s"
CANCEL_ONE = (
    "UPDATE public.appointments SET status = 'cancelled', updated_at = now() WHERE id = %(id)s"
)
SOFT_DELETE_ONE = (
    "UPDATE public.appointments SET deleted_at = now(), updated_at = now() WHERE id = %(id)s"
)
MOVE_ONE = (
    "UPDATE public.appointments SET starts_at = starts_at + interval '1 hour',"
    " ends_at = ends_at + interval '1 hour', updated_at = now() WHERE id = %(id)s"
)
CALL_STATUS_ONE = (
    "UPDATE public.calls SET status = 'completed', updated_at = now() WHERE id = %(id)s"
)
# The application records a new call (no customer yet: unlinked).
CALL_INSERT_ONE = (
    "INSERT INTO public.calls (company_id, retell_call_id, from_number, to_number, status,"
    " direction, customer_link_status) VALUES (1, 'bench-' || %(id)s, '+4930000000',"
    " '+4930111111', 'ongoing', 'inbound', 'unlinked')"
)
# The application writes a booked call's flags after its appointment exists (the write agrees
# with the appointments: checked, nothing to correct). The template's calls 1 .. 10 001 are booked.
BOOKED_FLAGS_ONE = (
    "UPDATE public.calls SET session_outcome = 'appointment_booked', appointment_made = TRUE,"
    " appointment_link_status = 'linked', appointment_linked_at = now(),"
    " booking_confirmed = TRUE, updated_at = now() WHERE id = %(id)s"
)
# The other order, each booking its own transaction: the call's flags first (they contradict the
# appointments until the next statement), then the appointment; judged at commit. Calls from
# CALL_FIRST_CALL on are unbooked in the template.
CALL_FIRST_CALL = 40_001
CALL_FIRST_ONE = (
    "BEGIN",
    BOOKED_FLAGS_ONE,
    "INSERT INTO public.appointments (company_id, call_id, calcom_v2_booking_id, source, status,"
    " starts_at, ends_at) SELECT company_id, id, 'bk-' || id, 'retell_webhook', 'scheduled',"
    " now() + interval '1 day', now() + interval '1 day 30 minutes'"
    " FROM public.calls WHERE id = %(id)s",
    "COMMIT",
)
# Variant (a) of the call update: no trigger of Booking Guard's on calls either (FKs stay).
CALLS_BARE = ("ALTER TABLE public.calls DISABLE TRIGGER USER",)
BOOKING_BARE = (*CALLS_BARE, "ALTER TABLE public.appointments DISABLE TRIGGER USER")


def one_row(
    key: str,
    label: str,
    template: str | tuple[str, ...],
    setup: tuple[str, ...] = (),
    first_row: int = 1,
) -> Any:
    """SINGLE_ROWS one-row statements on rows first_row .., in one transaction (a template of
    several statements that opens and commits its own transaction: one per row)."""
    statements = (template,) if isinstance(template, str) else template
    own_transactions = statements[0] == "BEGIN"

    def build(variant: str, rows: int) -> Workload:
        def one(row: int) -> list[str]:
            out = [
                text if text in ("BEGIN", "COMMIT") else statement(text, id=row)
                for text in statements
            ]
            if key == "delete1" and uses_floor(variant):
                out.append(statement(FLOOR_AFTER_DELETE, calls=[row]))
            return out

        measured = [] if own_transactions else ["BEGIN"]
        for row in range(first_row, first_row + SINGLE_ROWS):
            measured += one(row)
        return Workload(
            key,
            label,
            SINGLE_ROWS,
            one(first_row + SINGLE_ROWS),
            measured if own_transactions else [*measured, "COMMIT"],
            setup if variant == "a" else (),
        )

    return build


# key -> builder(variant, insert_rows); the other workloads have the sizes of bench/triggers.py
WORKLOADS = {
    "single": single_inserts,
    "insert": insert_statement,
    "delete": delete_statement,
    "delete1": one_row("delete1", "delete, 1 row/statement, 1 tx", DELETE_ONE),
    "cancel1": one_row("cancel1", "cancel (status), 1 row/stmt", CANCEL_ONE),
    "soft1": one_row("soft1", "soft delete, 1 row/stmt", SOFT_DELETE_ONE),
    "move1": one_row("move1", "move (starts_at), 1 row/stmt", MOVE_ONE),
    "call1": one_row("call1", "call status update, 1 row/stmt", CALL_STATUS_ONE, CALLS_BARE),
    "callins1": one_row("callins1", "call insert, 1 row/stmt", CALL_INSERT_ONE, CALLS_BARE),
    "flags1": one_row("flags1", "booked flags written, 1 row/stmt", BOOKED_FLAGS_ONE, CALLS_BARE),
    "callfirst1": one_row(
        "callfirst1",
        "flags then appointment, 1 tx each",
        CALL_FIRST_ONE,
        BOOKING_BARE,
        first_row=CALL_FIRST_CALL,
    ),
}
# The row-level design had no update trigger: (b) equals (a) there, and the floor is defined for
# inserts and deletes only.
VARIANTS_OF = {
    "cancel1": ("a", "d"),
    "soft1": ("a", "d"),
    "move1": ("a", "d"),
    "call1": ("a", "d"),
    "callins1": ("a", "d"),
    "flags1": ("a", "d"),
    "callfirst1": ("a", "d"),
}


def count_instructions(
    cluster: EmbeddedCluster, database: str, statements: Iterable[str], settings: dict[str, str]
) -> int:
    """Instructions a single-user backend executes for `statements` (start-up included)."""
    options = [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
    command = as_server_user(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            str(pg_bindir() / "postgres"),
            "--single",
            "-j",  # a statement ends with a semicolon and an empty line
            "-D",
            str(cluster.data_dir),
            *options,
            database,
        ]
    )
    script = "".join(f"{text.strip()};\n\n" for text in statements)
    done = subprocess.run(command, input=script, capture_output=True, text=True, check=False)
    found = COLLECTED.search(done.stderr)
    output = done.stdout + done.stderr  # a single-user backend logs to stderr
    errors = [line for line in output.splitlines() if "ERROR:" in line or "FATAL:" in line]
    if done.returncode != 0 or found is None or errors:
        detail = "\n".join(errors[:3]) or done.stderr[-2000:]
        raise RuntimeError(f"single-user backend on {database} failed:\n{detail}")
    return int(found.group(1))


# The session's role for every statement of a run: what the booking application runs as (a member
# of the application role: row-level security applies), or the bootstrap superuser (no RLS).
AS_ROLE = {
    "application": "SELECT set_config('role', guard.role('application'), false)",
    "superuser": None,
}


def run(
    generic_plans: bool,
    workloads: list[str],
    variants: list[str],
    insert_rows: int,
    progress: Any,
    as_role: str = "application",
) -> dict[str, Any]:
    settings = {"shared_buffers": "256MB", "jit": "off"}
    set_role = [text for text in (AS_ROLE[as_role],) if text]
    if generic_plans:
        settings["plan_cache_mode"] = "force_generic_plan"
    rows = []
    with bench_cluster({"jit": "off"}) as cluster:
        bench = Bench(cluster)
        try:
            progress("building the template (250 000 calls)")
            bench.build_template("tmpl", 100)
            for key in workloads:
                for variant in variants:
                    if variant not in VARIANTS_OF.get(key, (variant,)):
                        continue
                    workload = WORKLOADS[key](variant, insert_rows)
                    base_db = bench.clone("tmpl", variant)
                    full_db = bench.clone("tmpl", variant)
                    for database in (base_db, full_db):
                        bench.run_in(database, workload.setup)
                    bench.close()
                    cluster.stop()  # a single-user backend needs the data directory to itself
                    try:
                        base = count_instructions(
                            cluster, base_db, set_role + workload.warmup, settings
                        )
                        full = count_instructions(
                            cluster,
                            full_db,
                            set_role + workload.warmup + workload.measured,
                            settings,
                        )
                    finally:
                        cluster.start()
                        bench = Bench(cluster)
                        bench.drop(base_db)
                        bench.drop(full_db)
                    rows.append(
                        {
                            "workload": workload.key,
                            "label": workload.label,
                            "rows": workload.rows,
                            "variant": variant,
                            "variant_label": VARIANTS[variant],
                            "instructions": full - base,
                        }
                    )
                    progress(f"{workload.label}, {VARIANTS[variant]}: {full - base:,}")
        finally:
            bench.close()
    for row in rows:
        for ref in ("a", "b", "c", "c*"):
            other = find(rows, row["workload"], ref)
            row[f"vs_{ref}"] = (
                None if other is None else row["instructions"] / other["instructions"]
            )
    return {"settings": settings, "insert_rows": insert_rows, "rows": rows, "as_role": as_role}


def find(rows: list[dict[str, Any]], workload: str, variant: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["workload"] == workload and r["variant"] == variant), None)


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets this workload set covers, on instructions: (d) against a reference variant."""
    goals = []
    for name, workload, ref, limit in (
        ("1 000 single-row inserts: (d) <= 1.1x (b)", "single", "b", 1.10),
        ("delete 10 000: (d) <= 0.7x (b)", "delete", "b", 0.70),
        ("100 000-row insert: (d) <= 0.55x (b)", "insert", "b", 0.55),
        ("single-row delete: (d) <= 1.2x (b)", "delete1", "b", 1.20),
        ("single-row cancel: (d) <= 1.5x (a)", "cancel1", "a", 1.50),
        ("single-row soft delete: (d) <= 1.5x (a)", "soft1", "a", 1.50),
        # Not in the list; kept so that the paths made cheap stay cheap.
        ("single-row move: (d) <= 1.6x (a)", "move1", "a", 1.60),
        ("call status update: (d) <= 1.15x (a)", "call1", "a", 1.15),
        ("call insert: (d) <= 1.3x (a)", "callins1", "a", 1.30),
        ("booked flags written: (d) <= 1.5x (a)", "flags1", "a", 1.50),
    ):
        row = find(rows, workload, "d")
        if row is None or row[f"vs_{ref}"] is None:
            continue
        label = name
        if workload == "insert" and row["rows"] != 100_000:
            label = f"{row['rows']:,}-row insert (the target is for 100 000): (d) <= 0.55x (b)"
        goals.append(
            {
                "target": label,
                "result": "PASS" if row[f"vs_{ref}"] <= limit else "FAIL",
                "ratio": row[f"vs_{ref}"],
            }
        )
    return goals


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_table(report: dict[str, Any]) -> None:
    print("Booking Guard: server instructions per workload (valgrind callgrind, warm backend)")
    print(
        "Settings: "
        + ", ".join(f"{name} = {value}" for name, value in report["settings"].items())
        + f"; statements run as the {report['as_role']} role."
        + " Deterministic: no wall clock involved."
    )
    header: tuple[str, ...] = ("workload", "variant", "instructions", "per row", "vs (a)")
    header += ("vs (b)", "vs (c)", "vs (c*)")
    widths = (30, 27, 15, 10, 7, 7, 7, 7)

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            f"{c:<{w}}" if i < 2 else f"{c:>{w}}"
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print()
    print(line(header))
    print("-" * len(line(header)))
    previous = None
    for row in report["rows"]:
        if previous is not None and row["workload"] != previous:
            print()
        previous = row["workload"]
        print(
            line(
                (
                    row["label"],
                    row["variant_label"],
                    f"{row['instructions']:,}",
                    f"{row['instructions'] / row['rows'] / 1000:,.1f}k",
                    *(ratio(row[f"vs_{ref}"]) for ref in ("a", "b", "c", "c*")),
                )
            )
        )
    print()
    print("Targets of bench/triggers.py, on instructions:")
    for goal in report["targets"]:
        print(f"  {goal['result']:<5} {goal['target']}: {goal['ratio']:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--generic-plans",
        action="store_true",
        help="backends run with plan_cache_mode = force_generic_plan",
    )
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="comma-separated: " + ",".join(WORKLOADS)
    )
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument(
        "--insert-rows", type=int, default=INSERT_ROWS, help="rows of the one-statement insert"
    )
    parser.add_argument(
        "--as",
        dest="as_role",
        choices=sorted(AS_ROLE),
        default="application",
        help="the role the statements run as (default: the application role, under RLS)",
    )
    args = parser.parse_args(argv)
    workloads = args.workloads.split(",")
    variants = args.variants.split(",")
    unknown = sorted(set(workloads) - set(WORKLOADS)) + sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown workload or variant: {', '.join(unknown)}")
    if not 1 <= args.insert_rows <= 200_000:
        parser.error("--insert-rows must be between 1 and 200000 (the template's free calls)")
    if shutil.which("valgrind") is None:
        print("error: valgrind is not installed (make setup installs it)", file=sys.stderr)
        return 2

    def progress(message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    report = run(args.generic_plans, workloads, variants, args.insert_rows, progress, args.as_role)
    report["targets"] = targets(report["rows"])
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
