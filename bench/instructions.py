"""Server instructions per write path (valgrind callgrind): deterministic, unlike wall time.

    python -m bench.instructions [--json] [--workloads single,insert,delete,delete1,...]
                                 [--variants z,a,fz,fa,rz,ra,d,l,b] [--insert-rows N]
                                 [--text] [--one-transaction] [--generic-plans]

Why: on a shared 2-core virtual machine wall-clock figures swing by 30 % and more from one
sample to the next, so a ratio target of 1.2x is decided by noise. The number of instructions a
backend executes for the same statements on the same data does not swing: two runs give the
same counts to a fraction of a percent.

What is measured is what a booking application runs: by default every statement is prepared
once (PREPARE, then EXECUTE: the plan cache works as it does for a driver's prepared statements,
custom plans for five executions, then the generic one where it is not dearer) and each step is
its own transaction, committed (a statement alone, or the statement and the application's own
write of the call together). `--text` sends the statements as text (parsed and planned each
time); `--one-transaction` runs all the rows of a workload in one transaction.

Variants: two schemas, each bare, with the application keeping the flags by hand, and with the
original row-level design; and Booking Guard.
- z: the application's schema (migrations up to 0003_booking_indexes: the booking tables and
  their indexes, no CHECK, no trigger, no row-level security), the statement only;
- a: Booking Guard's schema with every user trigger of calls and appointments disabled: its
  CHECKs, its composite foreign key and row-level security stay;
- fz, fa (floors): z and a with the application's own write of the call in the same
  transaction (a blind UPDATE of the call after a one-row insert, cancel, soft delete or delete
  of its appointment; the set-based UPDATE after the bulk statements), as an application keeps
  the flags right without any trigger. Where the application has nothing to write (a move, a
  write of a call) the floor is the bare statement and is not run twice;
- rz, ra: the original row-level design (bench/triggers.py's AFTER ROW triggers: an insert sets
  the call booked, a delete recomputes it) on z and on a. It has no update trigger: on cancel,
  soft delete and move it does nothing (and leaves the flags stale), so it is not run there;
- d: Booking Guard, every migration and definition applied;
- l (not run unless named): the lower bound of Booking Guard's appointment triggers. d with the
  appointment triggers replaced by row triggers that derive each row's call at once, with the
  same functions, locks and reads (guard.sync_one_call_flags; the insert's UPDATE of the call),
  and no notes and no statement trigger. It is not a design that could ship: a multi-row
  statement would lock its calls in scan order, not id order (two such statements can
  deadlock). What it costs is what any correct trigger pays at least, keeping the lock before
  the read and the check of the application's flag writes (the calls triggers are d's).
- b (not run unless named): d with the application login a member of the bound application role
  and bound to every company (`guard tenant grant`): what the policy guard_bound_login costs a
  login that serves some companies only (bound/d).

Method: one throwaway cluster (jit off: compiled code is not comparable), two templates (the
schemas z and Booking Guard's) of 250 000 calls with 10 001 booked, calls at fillfactor 100 (an
update of a call is not HOT). For every (variant, workload) two fresh clones are made; the
cluster is stopped and each clone is driven by a single-user backend (``postgres --single``)
under callgrind, logged in as the application (a LOGIN role with plain grants on z, a member of
Booking Guard's application role on a and d: row-level security applies). On one clone the
backend prepares and runs the warm-up rows only, on the other the warm-up and then the measured
rows; the difference is the measured work, without process start, catalog loading and the first
compilation of the trigger functions. There is no client, protocol or network in a single-user
backend: those costs are equal for every variant and would only pull the ratios towards 1.

Workloads: the bulk statements (single: 1 000 one-row inserts; insert: one INSERT of
--insert-rows rows; delete: one DELETE of 10 000 booked appointments) and the everyday one-row
paths, 1 000 each: delete1, cancel1, soft1 and move1 of an appointment; call1 (the application's
update of a call's status), callins1 (a new call), flags1 (the application writes a booked call's
flags after its appointment exists) callfirst1 (the call's flags first, then its appointment,
one transaction per booking: the write contradicts the appointments until the second statement
and is judged at commit) and end1 (the end of a call that did not book: its status and outcome
written; queued for detection at commit).

Takes about 25 minutes on 2 cores for every workload and variant (callgrind runs a backend about
50x slower).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._cluster import bench_cluster, print_report, progress
from bench.triggers import (
    AT_ONCE_SQL,
    COMPANIES,
    DELETE_RANGE,
    DELETE_ROWS,
    FLOOR_AFTER_DELETE,
    FLOOR_AFTER_INSERT,
    FLOOR_AFTER_INSERT_ONE,
    INSERT_FIRST_CALL,
    INSERT_MANY,
    INSERT_ONE,
    LOAD_SQL,
    PRE_APPOINTMENTS,
    ROW_LEVEL_SQL,
    SINGLE_ROWS,
    WARM_DELETE_ID,
    company_of,
)
from bench.triggers import CALLS as TEMPLATE_CALLS
from bench.workload import APP_LOGIN, BARE_GRANTS, BARE_MIGRATION
from guard.demo.embedded import EmbeddedCluster, as_server_user, pg_bindir
from guard.schema.migrate import Migrator

INSERT_ROWS = 10_000  # the one-statement insert; --insert-rows 100000 takes about 30 minutes
WARMUP_ROWS = 6  # past the five custom plans the plan cache makes before choosing
COLLECTED = re.compile(r"Collected : (\d+)")
PLACEHOLDER = re.compile(r"%\((\w+)\)s")

VARIANTS = {
    "z": "bare z",
    "a": "bare a",
    "fz": "floor z",
    "fa": "floor a",
    "rz": "row-level z",
    "ra": "row-level a",
    "d": "Booking Guard",
    "l": "lower bound",
    "b": "Booking Guard, bound login",
}
DEFAULT_VARIANTS = ("z", "a", "fz", "fa", "rz", "ra", "d")
# The template each variant is cloned from: the application's schema or Booking Guard's.
TEMPLATE_OF = {"z": "tmpl_z", "fz": "tmpl_z", "rz": "tmpl_z"} | dict.fromkeys(
    ("a", "fa", "ra", "d", "l", "b"), "tmpl_g"
)
TRIGGERS_OFF = (
    "ALTER TABLE public.calls DISABLE TRIGGER USER",
    "ALTER TABLE public.appointments DISABLE TRIGGER USER",
)
ROW_LEVEL = (ROW_LEVEL_SQL, f"GRANT USAGE ON SCHEMA bench TO {APP_LOGIN}")
# Role memberships belong to the cluster, not to a clone: b's membership of the bound
# application role is taken back before every other variant of Booking Guard's schema runs.
UNBOUND = (
    f"DO $$BEGIN EXECUTE format('REVOKE %I FROM {APP_LOGIN}', guard.bound_application_role());"
    " END$$",
)
VARIANT_SETUP: dict[str, tuple[str, ...]] = {
    "z": (),
    "fz": (),
    "rz": ROW_LEVEL,
    "a": (*UNBOUND, *TRIGGERS_OFF),
    "fa": (*UNBOUND, *TRIGGERS_OFF),
    "ra": (*UNBOUND, *TRIGGERS_OFF, *ROW_LEVEL),
    "d": UNBOUND,
    "l": (*UNBOUND, AT_ONCE_SQL, f"GRANT USAGE ON SCHEMA bench TO {APP_LOGIN}"),
    # d, its login a member of the bound application role and bound to every company
    "b": (
        f"SELECT guard.tenant_grant('{APP_LOGIN}', g) FROM generate_series(1, {COMPANIES}) AS g",
        f"DO $$BEGIN EXECUTE format('GRANT %I TO {APP_LOGIN}', guard.bound_application_role());"
        " END$$",
    ),
}


def by_hand(variant: str) -> bool:
    """The floors: the application writes the call's flags itself."""
    return variant in ("fz", "fa")


# -- statements: prepared (PREPARE once, EXECUTE per row) or text ----------------------------------


class Statements:
    """Renders a %(name)s template with its values: as text, or as EXECUTE of a statement
    prepared once per template (prepares() lists the PREPAREs, in first-use order)."""

    def __init__(self, prepared: bool) -> None:
        self.prepared = prepared
        self._names: dict[str, str] = {}

    def __call__(self, template: str, **params: Any) -> str:
        if template in ("BEGIN", "COMMIT"):
            return template
        order = list(dict.fromkeys(PLACEHOLDER.findall(template)))
        if not self.prepared:
            return PLACEHOLDER.sub(lambda m: literal(params[m.group(1)]), template).replace(
                "%%", "%"
            )
        name = self._names.setdefault(template, f"p{len(self._names) + 1}")
        # quoted: an untyped literal takes the parameter's type, whatever PostgreSQL inferred
        args = ", ".join(quoted(params[key]) for key in order)
        return f"EXECUTE {name}({args})" if order else f"EXECUTE {name}"

    def prepares(self) -> list[str]:
        out = []
        for template, name in self._names.items():
            out.append(f"PREPARE {name} AS {numbered(template).strip()}")
        return out


def numbered(template: str) -> str:
    """%(name)s placeholders as $1, $2, ... in order of first appearance."""
    order = list(dict.fromkeys(PLACEHOLDER.findall(template)))
    text = PLACEHOLDER.sub(lambda m: f"${order.index(m.group(1)) + 1}", template)
    return text.replace("%%", "%")  # the templates are written for psycopg's % formatting


def literal(value: Any) -> str:
    """A SQL literal for the benchmark's own values (ints, strings, lists of ints)."""
    if isinstance(value, bool) or not isinstance(value, int | str | list):
        raise TypeError(f"no literal for {value!r}")
    if isinstance(value, int):
        return str(value)
    return quoted(value)


def quoted(value: Any) -> str:
    if isinstance(value, list):
        return "'{" + ",".join(str(int(v)) for v in value) + "}'"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"no literal for {value!r}")
    return "'" + str(value).replace("'", "''") + "'"


# -- workloads -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    key: str
    label: str
    rows: int  # what "per row" divides by
    warmup: list[str]
    measured: list[str]


@dataclass(frozen=True)
class Mode:
    prepared: bool
    one_transaction: bool  # every measured row in one transaction (else one per row)


def transactions(mode: Mode, steps: list[list[str]]) -> list[str]:
    """The rows' statements as transactions: one per step (a step of one statement runs alone,
    committed at its end), or all steps in one."""
    if mode.one_transaction:
        return ["BEGIN", *(text for step in steps for text in step), "COMMIT"]
    out: list[str] = []
    for step in steps:
        out += ["BEGIN", *step, "COMMIT"] if len(step) > 1 and step[0] != "BEGIN" else step
    return out


# The application's blind write after an appointment it removed (appointment i is call i's only
# one in the templates): what an application that keeps its flags by hand runs.
UNBOOK_ONE = """
UPDATE public.calls
SET session_outcome = 'appointment_cancelled', appointment_made = FALSE,
    appointment_link_status = 'unlinked', appointment_linked_at = NULL, updated_at = now()
WHERE id = %(call)s
"""
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
# with the appointments: checked, nothing to correct). The templates' calls 1 .. 10 001 are booked.
BOOKED_FLAGS_ONE = (
    "UPDATE public.calls SET session_outcome = 'appointment_booked', appointment_made = TRUE,"
    " appointment_link_status = 'linked', appointment_linked_at = now(),"
    " booking_confirmed = TRUE, updated_at = now() WHERE id = %(id)s"
)
# The end of a call that did not book: the application writes its status and outcome (the call
# has no appointment; the templates' outcome is information_only). Calls from CALL_END_CALL on are
# unbooked in the templates.
CALL_END_CALL = 60_001
CALL_END_ONE = (
    "UPDATE public.calls SET status = 'ended', session_outcome = 'no_booking',"
    " updated_at = now() WHERE id = %(id)s"
)
# The other order, each booking its own transaction: the call's flags first (they contradict the
# appointments until the next statement), then the appointment; judged at commit. Calls from
# CALL_FIRST_CALL on are unbooked in the templates.
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

Builder = Callable[[str, int, Mode, Statements], Workload]


def single_inserts(variant: str, insert_rows: int, mode: Mode, render: Statements) -> Workload:
    """A booking: one appointment inserted (and, by hand, its call marked booked)."""

    def one(call: int) -> list[str]:
        out = [render(INSERT_ONE, company=company_of(call), call=call, uid=f"bk-{call}")]
        if by_hand(variant):
            out.append(render(FLOOR_AFTER_INSERT_ONE, call=call))
        return out

    # the warm-up's calls lie just below the measured ones; both are unbooked in the templates
    first = INSERT_FIRST_CALL + 1
    warmup = [one(call) for call in range(first - WARMUP_ROWS, first)]
    measured = [one(call) for call in range(first, first + SINGLE_ROWS)]
    return Workload(
        "single",
        "booking: insert of an appointment",
        SINGLE_ROWS,
        transactions(Mode(mode.prepared, False), warmup),
        transactions(mode, measured),
    )


def insert_statement(variant: str, insert_rows: int, mode: Mode, render: Statements) -> Workload:
    # identity values are deterministic in every clone: the warm-up row gets PRE_APPOINTMENTS + 1
    warmup = [render(INSERT_MANY, lo=INSERT_FIRST_CALL, hi=INSERT_FIRST_CALL)]
    lo = INSERT_FIRST_CALL + 1
    measured = [render(INSERT_MANY, lo=lo, hi=lo + insert_rows - 1)]
    if by_hand(variant):
        warmup.append(render(FLOOR_AFTER_INSERT, first_id=PRE_APPOINTMENTS + 1))
        measured.append(render(FLOOR_AFTER_INSERT, first_id=PRE_APPOINTMENTS + 2))
    return Workload(
        "insert",
        f"insert of {insert_rows:,} appointments",
        insert_rows,
        transactions(mode, [warmup]),
        transactions(mode, [measured]),
    )


def delete_statement(variant: str, insert_rows: int, mode: Mode, render: Statements) -> Workload:
    warmup = [render(DELETE_RANGE, lo=WARM_DELETE_ID, hi=WARM_DELETE_ID)]
    measured = [render(DELETE_RANGE, lo=1, hi=DELETE_ROWS)]
    if by_hand(variant):  # appointment i belongs to call i (templates)
        warmup.append(render(FLOOR_AFTER_DELETE, calls=[WARM_DELETE_ID]))
        measured.append(render(FLOOR_AFTER_DELETE, calls=list(range(1, DELETE_ROWS + 1))))
    return Workload(
        "delete",
        f"delete of {DELETE_ROWS:,} appointments",
        DELETE_ROWS,
        transactions(mode, [warmup]),
        transactions(mode, [measured]),
    )


def one_row(
    key: str,
    label: str,
    template: str | tuple[str, ...],
    unbooks: bool = False,
    first_row: int = 1,
) -> Builder:
    """SINGLE_ROWS one-row steps on rows first_row ..; the warm-up runs the next WARMUP_ROWS.
    unbooks: the step removes call i's only appointment i (the floors write the call by hand)."""
    statements = (template,) if isinstance(template, str) else template

    def build(variant: str, insert_rows: int, mode: Mode, render: Statements) -> Workload:
        def one(row: int) -> list[str]:
            out = [render(text, id=row) for text in statements]
            if unbooks and by_hand(variant):
                out.append(render(UNBOOK_ONE, call=row))
            return out

        last = first_row + SINGLE_ROWS
        return Workload(
            key,
            label,
            SINGLE_ROWS,
            transactions(
                Mode(mode.prepared, False), [one(row) for row in range(last, last + WARMUP_ROWS)]
            ),
            transactions(mode, [one(row) for row in range(first_row, last)]),
        )

    return build


WORKLOADS: dict[str, Builder] = {
    "single": single_inserts,
    "insert": insert_statement,
    "delete": delete_statement,
    "delete1": one_row("delete1", "delete of an appointment", DELETE_ONE, unbooks=True),
    "cancel1": one_row("cancel1", "cancel (status)", CANCEL_ONE, unbooks=True),
    "soft1": one_row("soft1", "soft delete", SOFT_DELETE_ONE, unbooks=True),
    "move1": one_row("move1", "move (starts_at, ends_at)", MOVE_ONE),
    "call1": one_row("call1", "status update of a call", CALL_STATUS_ONE),
    "callins1": one_row("callins1", "new call", CALL_INSERT_ONE),
    "flags1": one_row("flags1", "application's flag write", BOOKED_FLAGS_ONE),
    "callfirst1": one_row(
        "callfirst1", "flags, then appointment (1 tx)", CALL_FIRST_ONE, first_row=CALL_FIRST_CALL
    ),
    "end1": one_row(
        "end1", "end of a call that did not book", CALL_END_ONE, first_row=CALL_END_CALL
    ),
}
# What is run per workload: floors only where the application writes the call by hand, the
# row-level design only where it has a trigger (insert and delete).
EVERY_VARIANT = tuple(VARIANTS)
VARIANTS_OF = {
    "cancel1": ("z", "a", "fz", "fa", "d", "l", "b"),
    "soft1": ("z", "a", "fz", "fa", "d", "l", "b"),
} | dict.fromkeys(
    ("move1", "call1", "callins1", "flags1", "callfirst1", "end1"), ("z", "a", "d", "l", "b")
)


# -- the cluster: templates, clones, callgrind -----------------------------------------------------


def build_templates(cluster: EmbeddedCluster, progress: Callable[[str], None]) -> None:
    """tmpl_z (the application's schema) and tmpl_g (Booking Guard's), the same rows in both,
    calls at fillfactor 100; the application login may write both."""
    params = {"companies": COMPANIES, "calls": TEMPLATE_CALLS, "pre": PRE_APPOINTMENTS}
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(APP_LOGIN)))
        for name, to in (("tmpl_z", BARE_MIGRATION), ("tmpl_g", None)):
            progress(f"building {name} ({TEMPLATE_CALLS:,} calls)")
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            url = cluster.url(name)
            with Migrator(url) as migrator:
                migrator.apply(to=to)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ALTER TABLE public.calls SET (fillfactor = 100)")
                for text in LOAD_SQL:
                    conn.execute(text.format(**params).encode())
                if to is None:
                    conn.execute(
                        sql.SQL("GRANT {} TO {}").format(
                            sql.Identifier(_one(conn, "SELECT guard.role('application')")),
                            sql.Identifier(APP_LOGIN),
                        )
                    )
                else:  # no trigger booked the calls: the application did it by hand
                    conn.execute(FLOOR_AFTER_INSERT.replace("%(first_id)s", "1").encode())
                    conn.execute(sql.SQL(BARE_GRANTS).format(login=sql.Identifier(APP_LOGIN)))
                booked = _one(
                    conn,
                    "SELECT count(*) FROM public.calls WHERE appointment_made"
                    " AND session_outcome = 'appointment_booked'",
                )
                if booked != PRE_APPOINTMENTS:
                    raise RuntimeError(f"{name}: {booked} booked calls, {PRE_APPOINTMENTS} meant")
                conn.execute("VACUUM (ANALYZE, FREEZE)")
            # no connections may remain on a template
            admin.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(
                    sql.Identifier(name)
                )
            )


def _one(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute(query.encode()).fetchone()
    if row is None:
        raise RuntimeError(f"no row from {query}")
    return row[0]


def clone(cluster: EmbeddedCluster, name: str, variant: str) -> None:
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(name), sql.Identifier(TEMPLATE_OF[variant])
            )
        )
    with psycopg.connect(cluster.url(name), autocommit=True) as conn:
        for text in VARIANT_SETUP[variant]:
            conn.execute(text.encode())


def drop(cluster: EmbeddedCluster, name: str) -> None:
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def count_instructions(
    cluster: EmbeddedCluster,
    database: str,
    statements: Iterable[str],
    settings: dict[str, str],
    per_statement: list[int] | None = None,
) -> int:
    """Instructions a single-user backend executes for `statements` (start-up included).

    per_statement: when given, filled with each statement's own instructions, in order. Every
    statement a single-user backend runs ends in CommitTransactionCommand (inside a transaction
    block too; a COMMIT's deferred triggers run in it), so callgrind dumps its counters after each
    call: the dumps before the statements' are the start-up's; the shut-down's goes to the file
    without a part number, which the glob of the numbered parts leaves out."""
    statements = list(statements)
    options = [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
    with tempfile.TemporaryDirectory(prefix="guard-callgrind-") as dumps:
        if per_statement is None:
            output = ["--callgrind-out-file=/dev/null"]
        else:
            Path(dumps).chmod(0o777)  # the server user writes the dumps
            output = [
                f"--callgrind-out-file={dumps}/out",
                "--dump-after=CommitTransactionCommand",
                "--dump-line=no",
            ]
        collected = _run_callgrind(cluster, database, statements, output, options)
        if per_statement is not None:
            parts = sorted(Path(dumps).glob("out.*"), key=lambda path: int(path.suffix[1:]))
            if len(parts) < len(statements):
                raise RuntimeError(f"{len(parts)} callgrind dumps for {len(statements)} statements")
            per_statement[:] = [_dumped(path) for path in parts[-len(statements) :]]
    return collected


def _dumped(path: Path) -> int:
    """The instructions one callgrind dump counted (its `totals:` line)."""
    for line in path.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def _run_callgrind(
    cluster: EmbeddedCluster,
    database: str,
    statements: list[str],
    tool: list[str],
    server: list[str],
) -> int:
    """The instructions callgrind collected; tool: callgrind's options, server: the backend's."""
    command = as_server_user(
        [
            "valgrind",
            "--tool=callgrind",
            *tool,
            str(pg_bindir() / "postgres"),
            "--single",
            "-j",  # a statement ends with a semicolon and an empty line
            "-D",
            str(cluster.data_dir),
            *server,
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


def flags_wrong(cluster: EmbeddedCluster, database: str) -> int:
    """Calls whose appointment_made contradicts their appointments (0 for every variant that
    keeps the flags: the floors, the row-level design on insert and delete, Booking Guard)."""
    with psycopg.connect(cluster.url(database), autocommit=True) as conn:
        return int(
            _one(
                conn,
                """
                SELECT count(*) FROM public.calls AS c
                WHERE c.appointment_made IS DISTINCT FROM EXISTS (
                    SELECT FROM public.appointments AS a
                    WHERE a.call_id = c.id AND a.deleted_at IS NULL
                        AND a.status IS DISTINCT FROM 'cancelled'
                )
                """,
            )
        )


def keeps_flags(key: str, variant: str) -> bool:
    if variant in ("fz", "fa", "d", "l", "b"):
        return key != "callfirst1" or variant in ("d", "l", "b")
    return variant in ("rz", "ra") and key in ("single", "insert", "delete", "delete1")


def run(
    workloads: list[str],
    variants: list[str],
    insert_rows: int,
    mode: Mode,
    generic_plans: bool,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    settings = {"shared_buffers": "256MB", "jit": "off"}
    if generic_plans:
        settings["plan_cache_mode"] = "force_generic_plan"
    login = f"SET SESSION AUTHORIZATION {APP_LOGIN}"
    rows = []
    serial = 0
    with bench_cluster({"jit": "off"}) as cluster:
        build_templates(cluster, progress)
        for key in workloads:
            for variant in variants:
                if variant not in VARIANTS_OF.get(key, EVERY_VARIANT):
                    continue
                render = Statements(mode.prepared)
                workload = WORKLOADS[key](variant, insert_rows, mode, render)
                serial += 2
                base_db, full_db = f"m{serial - 1}", f"m{serial}"
                for database in (base_db, full_db):
                    clone(cluster, database, variant)
                start = [login, *render.prepares()]
                cluster.stop()  # a single-user backend needs the data directory to itself
                try:
                    base = count_instructions(cluster, base_db, start + workload.warmup, settings)
                    full = count_instructions(
                        cluster, full_db, start + workload.warmup + workload.measured, settings
                    )
                finally:
                    cluster.start()
                try:
                    wrong = flags_wrong(cluster, full_db) if keeps_flags(key, variant) else 0
                finally:
                    drop(cluster, base_db)
                    drop(cluster, full_db)
                if wrong:
                    raise RuntimeError(f"{key}, {variant}: {wrong} calls with wrong flags")
                rows.append(
                    {
                        "workload": workload.key,
                        "label": workload.label,
                        "rows": workload.rows,
                        "variant": variant,
                        "instructions": full - base,
                    }
                )
                progress(f"{workload.label}, {VARIANTS[variant]}: {full - base:,}")
    return {
        "settings": settings,
        "prepared": mode.prepared,
        "one_transaction": mode.one_transaction,
        "insert_rows": insert_rows,
        "rows": rows,
    }


# -- the report ------------------------------------------------------------------------------------


def per_row(rows: list[dict[str, Any]], workload: str, variant: str) -> float | None:
    """Instructions per row; a floor not run is its bare variant (nothing written by hand)."""
    for name in (variant, {"fz": "z", "fa": "a"}.get(variant)):
        row = next((r for r in rows if r["workload"] == workload and r["variant"] == name), None)
        if row is not None:
            return float(row["instructions"]) / float(row["rows"])
    return None


# The targets of the everyday paths: (workloads, reference variant, limit). Booking Guard's
# figure divided by the reference's, both per row.
TARGETS = (
    (("delete1", "cancel1", "soft1"), "fa", 1.35),
    (("move1", "call1", "callins1", "flags1"), "fa", 1.20),
    (("single",), "ra", 1.00),
    (("delete",), "ra", 0.70),
    (("insert",), "fa", 1.00),
)


def target_of(workload: str) -> tuple[str, float] | None:
    return next(((ref, lim) for keys, ref, lim in TARGETS if workload in keys), None)


def summary(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One line per workload: per-row figures of every variant, Booking Guard's ratios."""
    rows = report["rows"]
    lines = []
    for key in dict.fromkeys(r["workload"] for r in rows):
        figures = {v: per_row(rows, key, v) for v in VARIANTS}
        guard = figures["d"]
        line: dict[str, Any] = {
            "workload": key,
            "label": next(r["label"] for r in rows if r["workload"] == key),
            "per_row": figures,
        }
        for ref in ("fz", "fa", "ra"):
            other = figures[ref]
            line[f"d_vs_{ref}"] = None if guard is None or not other else guard / other
        login = figures["b"]
        line["b_vs_d"] = None if login is None or not guard else login / guard
        bound = figures["l"]
        for ref in ("fa", "ra"):
            other = figures[ref]
            line[f"l_vs_{ref}"] = None if bound is None or not other else bound / other
        goal = target_of(key)
        if goal is not None and line[f"d_vs_{goal[0]}"] is not None:
            ref, limit = goal
            line["target"] = {
                "reference": ref,
                "limit": limit,
                "ratio": line[f"d_vs_{ref}"],
                "pass": line[f"d_vs_{ref}"] <= limit,
            }
        lines.append(line)
    return lines


def print_table(report: dict[str, Any]) -> None:
    how = "prepared statements" if report["prepared"] else "text statements"
    tx = "all rows in one transaction" if report["one_transaction"] else "one transaction per row"
    print("Booking Guard: server instructions per row (valgrind callgrind, warm backend)")
    print(
        f"{how}, {tx}, the application login; "
        + ", ".join(f"{name} = {value}" for name, value in report["settings"].items())
        + ". Deterministic: no wall clock involved. A floor shown for a path the application"
        " writes nothing more for is its bare figure."
    )
    print()
    lines = summary(report)
    bound = any(line["per_row"]["l"] is not None for line in lines)
    login = any(line["per_row"]["b"] is not None for line in lines)
    names = ("z", "a", "fz", "fa", "rz", "ra", "d", *(("l",) if bound else ()))
    names += ("b",) if login else ()
    header = ["path", *(VARIANTS[v] for v in names), "d/floor z", "d/floor a", "d/row-level a"]
    header += ["l/floor a", "l/row-level a"] if bound else []
    header += ["bound/d"] if login else []
    print("| " + " | ".join([*header, "target"]) + " |")
    print("|" + "---|" * (len(header) + 1))
    for line in lines:
        cells = [line["label"]]
        cells += [
            "-" if line["per_row"][v] is None else f"{line['per_row'][v] / 1000:,.1f}k"
            for v in names
        ]
        cells += [
            "-" if line[f"d_vs_{r}"] is None else f"{line[f'd_vs_{r}']:.2f}x"
            for r in ("fz", "fa", "ra")
        ]
        if bound:
            cells += [
                "-" if line[f"l_vs_{r}"] is None else f"{line[f'l_vs_{r}']:.2f}x"
                for r in ("fa", "ra")
            ]
        if login:
            cells.append("-" if line["b_vs_d"] is None else f"{line['b_vs_d']:.3f}x")
        goal = line.get("target")
        cells.append(
            "-"
            if goal is None
            else f"<= {goal['limit']:.2f}x {VARIANTS[goal['reference']]}: "
            + ("PASS" if goal["pass"] else "FAIL")
        )
        print("| " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="comma-separated: " + ",".join(WORKLOADS)
    )
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help="comma-separated: " + ",".join(VARIANTS) + " (l only when named)",
    )
    parser.add_argument(
        "--insert-rows", type=int, default=INSERT_ROWS, help="rows of the one-statement insert"
    )
    parser.add_argument("--text", action="store_true", help="send statements as text, not prepared")
    parser.add_argument(
        "--one-transaction",
        action="store_true",
        help="run a workload's rows in one transaction, not one transaction per row",
    )
    parser.add_argument(
        "--generic-plans",
        action="store_true",
        help="backends run with plan_cache_mode = force_generic_plan",
    )
    args = parser.parse_args(argv)
    workloads = args.workloads.split(",")
    variants = args.variants.split(",")
    unknown = sorted(set(workloads) - set(WORKLOADS)) + sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown workload or variant: {', '.join(unknown)}")
    if not 1 <= args.insert_rows <= 200_000:
        parser.error("--insert-rows must be between 1 and 200000 (the templates' free calls)")
    if shutil.which("valgrind") is None:
        print("error: valgrind is not installed (make setup installs it)", file=sys.stderr)
        return 2

    mode = Mode(prepared=not args.text, one_transaction=args.one_transaction)
    report = run(workloads, variants, args.insert_rows, mode, args.generic_plans, progress)
    report["summary"] = summary(report)
    print_report(args.json, report, lambda: print_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
