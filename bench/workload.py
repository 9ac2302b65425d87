"""A booking application's concurrent load, with and without Booking Guard: one run, one table.

    python -m bench.workload [--workers 8] [--seconds 20] [--rounds 3] [--think-ms 10]
                             [--saturated] [--variants a,b,g] [--json-file PATH]

What the simulated application does (each numbered step is its own short transaction, as a
voice agent's backend writes them; a random think time of 0..--think-ms ms lies between steps):

1. insert the call (direction, customer link and status set by the application);
2. update the call's status to `in_progress`;
3. for 70 % of the calls, book: insert the appointment and set the call's booking flags, in one
   of three orders chosen in turn: appointment then call in one transaction, call then appointment
   in one transaction, or appointment and call in two transactions; the other 30 % end with
   `session_outcome = 'no_booking'`;
4. update the call's status to `completed`;
5. for a booked call, one follow-up drawn at random: nothing (40 %), cancel (status
   `cancelled`, flags cleared; 15 %), soft delete (`deleted_at`, flags cleared; 10 %), move
   (new `starts_at`/`ends_at`; 15 %), reschedule (cancel and insert a new appointment in one
   transaction, the call stays booked; 10 %), delete (row deleted, flags cleared; 10 %).

The application keeps the call's flags right itself in every variant: the statements are the
same everywhere, only what the database does around them differs.

Variants, each a database in one throwaway cluster, loaded with the same 100 000 calls and
60 000 appointments before the first round:
- (a) without Booking Guard: the booking tables and their indexes only (migrations up to
  0003_booking_indexes), no triggers, no row-level security;
- (b) row-level: (a) plus the original design's AFTER ROW triggers on appointments (insert sets
  the call booked, delete recomputes it), as in bench/triggers.py;
- (s) Booking Guard's schema alone (not run unless named): (g) with every user trigger of calls
  and appointments disabled after the preload; its CHECKs, composite foreign key and row-level
  security stay. What the schema costs before any trigger runs;
- (l) the lower bound of Booking Guard's appointment triggers (not run unless named): (g) with
  them replaced by row triggers that derive each row's call at once (bench/triggers.py's
  AT_ONCE_SQL, no notes, no statement trigger). Not shippable: a multi-row statement would lock
  its calls in scan order. What any correct trigger set costs at least;
- (g) Booking Guard: every migration applied; the application login is a member of the
  application role, so row-level security, the normalisers, the flag triggers and the
  correction path all run as they do in production.

Durable commits: fsync, synchronous_commit and full_page_writes on (unlike the other benches).
The application connects as a LOGIN role that is not a superuser. Rounds are interleaved
(round 1 of every variant, then round 2, ...; the order rotates each round) so that load from
elsewhere on the machine hits every variant alike. Figures are medians over rounds.

Printed per variant: lifecycles/s, write transactions/s, p50 and p99 latency of a write
transaction (first statement to commit), deadlocks and serialization failures (each retried),
and the checks made after the last round: calls whose flags contradict their appointments
(0 expected everywhere, since the application keeps them right) and rows lost (every committed
call and appointment is read back in the state its worker last committed: 0 expected).
A second table gives the median latency of each kind of write transaction (a new call, a status
update, each booking order, each follow-up) per variant, with its share of the transactions:
which transactions the added latency lands on. On a machine whose cores the workers share, a
transaction also waits longer when the others cost more: compare each kind with its own
instructions (`--instructions` counts them per kind too) before blaming the statement itself.
A third table says what the p99 is made of: each kind's share of the variant's slowest 2 % of
write transactions, next to its share of all of them, and each kind's own p99.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors, sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._cluster import bench_cluster
from bench.triggers import AT_ONCE_SQL, ROW_LEVEL_SQL
from guard.demo.embedded import EmbeddedCluster
from guard.schema.migrate import Migrator

COMPANIES = 3
SERVICES_PER_COMPANY = 2
CUSTOMERS_PER_COMPANY = 20
PRELOAD_CALLS = 100_000
PRELOAD_APPOINTMENTS = 60_000  # on the first calls, one each, active: those calls are booked
APP_LOGIN = "bench_app"
BARE_MIGRATION = "0003_booking_indexes"

VARIANTS = {
    "a": "(a) without Booking Guard",
    "b": "(b) row-level design",
    "s": "(s) Booking Guard's schema, triggers off",
    "l": "(l) lower bound of the appointment triggers",
    "g": "(g) Booking Guard",
}

# -- the application's statements (identical in every variant) ----------------------------------

INSERT_CALL = """
INSERT INTO public.calls (company_id, retell_call_id, from_number, to_number, status, direction,
    customer_id, customer_link_status, customer_link_method, customer_link_confidence,
    customer_linked_at, session_outcome)
VALUES (%(company)s, %(retell)s, '+4930000000', '+4930111111', 'ongoing', 'inbound',
    %(customer)s, 'linked', 'phone_match', 100, now(), NULL)
RETURNING id
"""
SET_STATUS = "UPDATE public.calls SET status = %(status)s, updated_at = now() WHERE id = %(call)s"
NO_BOOKING = (
    "UPDATE public.calls SET session_outcome = 'no_booking', updated_at = now() WHERE id = %(call)s"
)
INSERT_APPOINTMENT = """
INSERT INTO public.appointments (company_id, call_id, customer_id, service_id,
    calcom_v2_booking_id, source, status, starts_at, ends_at)
VALUES (%(company)s, %(call)s, %(customer)s, %(service)s, %(uid)s, 'retell_webhook', 'scheduled',
    now() + interval '2 days', now() + interval '2 days 30 minutes')
RETURNING id
"""
MARK_BOOKED = """
UPDATE public.calls
SET session_outcome = 'appointment_booked', appointment_made = TRUE,
    appointment_link_status = 'linked', appointment_linked_at = now(), booking_id = %(uid)s,
    booking_confirmed = TRUE, updated_at = now()
WHERE id = %(call)s
"""
MARK_UNBOOKED = """
UPDATE public.calls
SET session_outcome = 'appointment_cancelled', appointment_made = FALSE,
    appointment_link_status = 'unlinked', appointment_linked_at = NULL, updated_at = now()
WHERE id = %(call)s
"""
CANCEL = (
    "UPDATE public.appointments SET status = 'cancelled', updated_at = now()"
    " WHERE id = %(appointment)s"
)
SOFT_DELETE = (
    "UPDATE public.appointments SET deleted_at = now(), updated_at = now()"
    " WHERE id = %(appointment)s"
)
MOVE = (
    "UPDATE public.appointments SET starts_at = starts_at + interval '1 hour',"
    " ends_at = ends_at + interval '1 hour', updated_at = now() WHERE id = %(appointment)s"
)
DELETE = "DELETE FROM public.appointments WHERE id = %(appointment)s"

FOLLOW_UPS = (
    ("none", 40),
    ("cancel", 15),
    ("soft_delete", 10),
    ("move", 15),
    ("reschedule", 10),
    ("delete", 10),
)
# the follow-ups after which the application unbooks the call
UNBOOKING = ("cancel", "soft_delete", "delete")

# -- loading ---------------------------------------------------------------------------------------

PRELOAD = [
    """INSERT INTO public.companies (name)
       SELECT 'company ' || g FROM generate_series(1, {companies}) g""",
    """INSERT INTO public.services (company_id, name, duration_minutes)
       SELECT c, 'service ' || s, 30 FROM generate_series(1, {companies}) c,
       generate_series(1, {services}) s""",
    """INSERT INTO public.customers (company_id, name)
       SELECT c, 'customer ' || s FROM generate_series(1, {companies}) c,
       generate_series(1, {customers}) s""",
    # Calls first, unbooked; then their appointments; then the flags the application writes for
    # them: every state along the way is consistent, so Booking Guard corrects nothing here.
    """INSERT INTO public.calls (company_id, retell_call_id, status, direction, customer_id,
           customer_link_status, customer_link_method, customer_link_confidence,
           customer_linked_at, session_outcome, created_at, updated_at)
       SELECT 1 + g % {companies}, 'preload-' || g, 'completed', 'inbound',
           (g % {companies}) * {customers} + 1, 'linked', 'phone_match', 100, now(),
           'no_booking', now() - interval '30 days', now() - interval '30 days'
       FROM generate_series(1, {calls}) g""",
    """INSERT INTO public.appointments (company_id, call_id, customer_id, service_id,
           calcom_v2_booking_id, source, status, starts_at, ends_at, created_at, updated_at)
       SELECT 1 + g % {companies}, g, (g % {companies}) * {customers} + 1,
           (g % {companies}) * {services} + 1, 'preload-bk-' || g, 'retell_webhook', 'scheduled',
           now() + interval '1 day', now() + interval '1 day 30 minutes',
           now() - interval '30 days', now() - interval '30 days'
       FROM generate_series(1, {appointments}) g""",
    """UPDATE public.calls SET session_outcome = 'appointment_booked', appointment_made = TRUE,
           appointment_link_status = 'linked', appointment_linked_at = now(),
           booking_id = 'preload-bk-' || id, booking_confirmed = TRUE
       WHERE id <= {appointments}""",
    "VACUUM",
    "ANALYZE",
]

BARE_GRANTS = """
GRANT SELECT, INSERT, UPDATE, DELETE ON public.companies, public.customers, public.services,
    public.calls, public.appointments TO {login}
"""


def build_database(url: str, variant: str) -> None:
    """One variant's database: schema, the application login's rights, the preloaded rows."""
    with Migrator(url) as migrator:
        migrator.apply(to=BARE_MIGRATION if variant in ("a", "b") else None)
    with psycopg.connect(url, autocommit=True) as conn:
        if variant in ("b", "l"):
            conn.execute(ROW_LEVEL_SQL if variant == "b" else AT_ONCE_SQL)
            conn.execute(
                sql.SQL("GRANT USAGE ON SCHEMA bench TO {}").format(sql.Identifier(APP_LOGIN))
            )
        if variant in ("a", "b"):
            conn.execute(sql.SQL(BARE_GRANTS).format(login=sql.Identifier(APP_LOGIN)))
        else:
            (app_role,) = _row(conn.execute("SELECT guard.role('application')"))
            conn.execute(
                sql.SQL("GRANT {} TO {}").format(
                    sql.Identifier(app_role), sql.Identifier(APP_LOGIN)
                )
            )
        sizes = {
            "companies": COMPANIES,
            "services": SERVICES_PER_COMPANY,
            "customers": CUSTOMERS_PER_COMPANY,
            "calls": PRELOAD_CALLS,
            "appointments": PRELOAD_APPOINTMENTS,
        }
        for statement in PRELOAD:
            conn.execute(statement.format(**sizes))
        if variant == "s":
            for table in ("calls", "appointments"):
                conn.execute(f"ALTER TABLE public.{table} DISABLE TRIGGER USER".encode())


# -- one lifecycle, as a plan -----------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """The id an earlier statement of the lifecycle returned (INSERT ... RETURNING id)."""

    name: str


@dataclass(frozen=True)
class Statement:
    sql: str
    params: dict[str, Any]  # values, or a Ref
    returns: str | None = None  # the name its RETURNING id is kept under


@dataclass
class Lifecycle:
    """One call's lifecycle: its transactions in order (each a list of statements), and the
    state each row is left in (what the read-back after the run expects)."""

    steps: list[list[Statement]]
    kinds: list[str]  # what each transaction is, for the latency by kind
    booked: bool
    appointments: dict[str, str]  # ref name -> active | cancelled | soft | gone


def plan_lifecycle(rng: random.Random, sequence: int, tag: str) -> Lifecycle:
    """The mix of the module docstring: the load workers run it, and `--instructions` writes
    it out as a script."""
    company = rng.randint(1, COMPANIES)
    customer = (company - 1) * CUSTOMERS_PER_COMPANY + rng.randint(1, CUSTOMERS_PER_COMPANY)
    service = (company - 1) * SERVICES_PER_COMPANY + rng.randint(1, SERVICES_PER_COMPANY)
    call = Ref("call")
    steps = [
        [Statement(INSERT_CALL, {"company": company, "retell": tag, "customer": customer}, "call")],
        [Statement(SET_STATUS, {"status": "in_progress", "call": call})],
    ]
    kinds = ["new call", "call status"]
    completed = [Statement(SET_STATUS, {"status": "completed", "call": call})]
    if rng.random() >= 0.7:
        steps += [[Statement(NO_BOOKING, {"call": call})], completed]
        kinds += ["no booking", "call status"]
        return Lifecycle(steps, kinds, booked=False, appointments={})
    booking = {
        "company": company,
        "call": call,
        "customer": customer,
        "service": service,
        "uid": f"bk-{tag}",
    }
    insert = Statement(INSERT_APPOINTMENT, booking, "appointment")
    mark = Statement(MARK_BOOKED, booking)
    order = sequence % 3
    if order == 0:  # appointment, then the call's flags, one transaction
        steps.append([insert, mark])
        kinds.append("book: appointment, then flags")
    elif order == 1:  # the call's flags, then the appointment, one transaction
        steps.append([mark, insert])
        kinds.append("book: flags, then appointment")
    else:  # appointment and call in two transactions (a webhook, then the agent's own update)
        steps += [[insert], [mark]]
        kinds += ["book: appointment alone", "book: flags alone"]
    steps.append(completed)
    kinds.append("call status")
    appointments = {"appointment": "active"}
    booked = True
    kind = rng.choices([k for k, _ in FOLLOW_UPS], [w for _, w in FOLLOW_UPS])[0]
    keys = booking | {"appointment": Ref("appointment")}
    if kind != "none":
        kinds.append(kind.replace("_", " ") + (" and unbook" if kind in UNBOOKING else ""))
    if kind == "move":
        steps.append([Statement(MOVE, keys)])
    elif kind in UNBOOKING:
        statement = {"cancel": CANCEL, "soft_delete": SOFT_DELETE, "delete": DELETE}[kind]
        steps.append([Statement(statement, keys), Statement(MARK_UNBOOKED, keys)])
        booked = False
        appointments["appointment"] = {
            "cancel": "cancelled",
            "soft_delete": "soft",
            "delete": "gone",
        }[kind]
    elif kind == "reschedule":
        moved = booking | {"uid": f"bk-{tag}-r"}
        steps.append(
            [
                Statement(CANCEL, keys),
                Statement(INSERT_APPOINTMENT, moved, "rescheduled"),
                Statement(MARK_BOOKED, moved),
            ]
        )
        appointments |= {"appointment": "cancelled", "rescheduled": "active"}
    return Lifecycle(steps, kinds, booked, appointments)


# -- one worker process --------------------------------------------------------------------------


@dataclass
class WorkerResult:
    lifecycles: int = 0
    transactions: int = 0
    deadlocks: int = 0
    serialization_failures: int = 0
    # microseconds per committed write transaction, by its kind (Lifecycle.kinds)
    latencies_us: dict[str, list[int]] = field(default_factory=dict)
    # what this worker committed last, to read back after the run
    calls: dict[int, bool] = field(default_factory=dict)  # call id -> booked
    appointments: dict[int, str] = field(default_factory=dict)  # id -> active|cancelled|soft|gone


class Worker:
    def __init__(self, url: str, seed: int, think_ms: float) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.rng = random.Random(seed)
        self.think_ms = think_ms
        self.result = WorkerResult()
        self.seed = seed
        self.sequence = 0

    def transaction(self, kind: str, body: Callable[[psycopg.Connection[Any]], Any]) -> Any:
        """Run body in one transaction, timed; deadlocks and serialization failures retried."""
        while True:
            started = time.perf_counter_ns()
            try:
                with self.conn.transaction():
                    value = body(self.conn)
            except errors.DeadlockDetected:
                self.result.deadlocks += 1
                continue
            except errors.SerializationFailure:
                self.result.serialization_failures += 1
                continue
            latency_us = (time.perf_counter_ns() - started) // 1000
            self.result.latencies_us.setdefault(kind, []).append(latency_us)
            self.result.transactions += 1
            self.think()
            return value

    def think(self) -> None:
        if self.think_ms > 0:
            time.sleep(self.rng.uniform(0, self.think_ms) / 1000)

    def lifecycle(self) -> None:
        self.sequence += 1
        plan = plan_lifecycle(self.rng, self.sequence, f"w{self.seed}-{self.sequence}")
        ids: dict[str, int] = {}
        for kind, step in zip(plan.kinds, plan.steps, strict=True):
            self.transaction(kind, partial(_run_step, step=step, ids=ids))
        self.result.calls[ids["call"]] = plan.booked
        for name, state in plan.appointments.items():
            self.result.appointments[ids[name]] = state
        self.result.lifecycles += 1


def _run_step(conn: psycopg.Connection[Any], *, step: list[Statement], ids: dict[str, int]) -> None:
    """One transaction's statements; a retried step runs again whole and keeps the new ids."""
    for statement in step:
        params = {k: ids[v.name] if isinstance(v, Ref) else v for k, v in statement.params.items()}
        cursor = conn.execute(statement.sql, params)
        if statement.returns:
            ids[statement.returns] = int(_row(cursor)[0])


def run_worker(url: str, seed: int, think_ms: float, seconds: float, out: str) -> None:
    worker = Worker(url, seed, think_ms)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        worker.lifecycle()
    worker.conn.close()
    Path(out).write_text(json.dumps(asdict(worker.result)))


# -- one measurement -------------------------------------------------------------------------------


@dataclass
class Measurement:
    lifecycles_per_s: float
    transactions_per_s: float
    p50_ms: float
    p99_ms: float
    deadlocks: int
    serialization_failures: int
    # transaction kind -> (share of the write transactions, p50 ms)
    by_kind: dict[str, tuple[float, float]] = field(default_factory=dict)
    # transaction kind -> (share of the slowest TAIL of the write transactions, its own p99 ms):
    # what the p99 is made of
    tail_by_kind: dict[str, tuple[float, float]] = field(default_factory=dict)


# The slowest share of the write transactions that print_tail splits by kind: 2 %, the p99 and
# what lies just below it (about 500 transactions per round at the default settings), so that a
# kind of 1 % of the writes shows in the split by more than a handful of them.
TAIL = 0.02


def measure(
    url: str, workers: int, seconds: float, think_ms: float, seed: int, ledger: WorkerResult
) -> Measurement:
    """Run the workers against one database; fold what they committed into `ledger`."""
    with tempfile.TemporaryDirectory(prefix="guard-workload-") as tmp:
        outs = [str(Path(tmp) / f"{i}.json") for i in range(workers)]
        context = multiprocessing.get_context("fork")
        processes = [
            context.Process(target=run_worker, args=(url, seed * 100 + i, think_ms, seconds, out))
            for i, out in enumerate(outs)
        ]
        started = time.monotonic()
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        elapsed = time.monotonic() - started
        if any(process.exitcode != 0 for process in processes):
            raise SystemExit(f"a worker failed against {url} (see its traceback above)")
        results = [WorkerResult(**json.loads(Path(out).read_text())) for out in outs]
    by_kind: dict[str, list[int]] = {}
    for result in results:
        for kind, values in result.latencies_us.items():
            by_kind.setdefault(kind, []).extend(values)
    latencies = sorted(us for values in by_kind.values() for us in values)
    # the slowest TAIL: every transaction at or above its lower bound, ties included
    bound = _quantile(latencies, 1 - TAIL)
    slow = {kind: sum(us >= bound for us in values) for kind, values in by_kind.items()}
    slow_total = sum(slow.values()) or 1
    for result in results:
        ledger.calls.update({int(k): v for k, v in result.calls.items()})
        ledger.appointments.update({int(k): v for k, v in result.appointments.items()})
    return Measurement(
        lifecycles_per_s=sum(r.lifecycles for r in results) / elapsed,
        transactions_per_s=sum(r.transactions for r in results) / elapsed,
        p50_ms=_quantile(latencies, 0.50) / 1000,
        p99_ms=_quantile(latencies, 0.99) / 1000,
        deadlocks=sum(r.deadlocks for r in results),
        serialization_failures=sum(r.serialization_failures for r in results),
        by_kind={
            kind: (len(values) / len(latencies), _quantile(sorted(values), 0.50) / 1000)
            for kind, values in by_kind.items()
        },
        tail_by_kind={
            kind: (slow[kind] / slow_total, _quantile(sorted(values), 0.99) / 1000)
            for kind, values in by_kind.items()
        },
    )


# -- the checks after the run ----------------------------------------------------------------------

CONTRADICTING_FLAGS = """
SELECT count(*) FROM public.calls AS c
WHERE c.appointment_made IS DISTINCT FROM EXISTS (
    SELECT FROM public.appointments AS a
    WHERE a.call_id = c.id AND a.deleted_at IS NULL AND a.status IS DISTINCT FROM 'cancelled')
"""
READ_BACK_CALLS = """
SELECT count(*) FILTER (WHERE c.id IS NULL), count(*) FILTER (WHERE c.appointment_made <> w.booked)
FROM unnest(%(ids)s::bigint[], %(booked)s::boolean[]) AS w (id, booked)
LEFT JOIN public.calls AS c ON c.id = w.id
"""
READ_BACK_APPOINTMENTS = """
SELECT count(*) FILTER (WHERE (a.id IS NULL) <> (w.state = 'gone')),
       count(*) FILTER (WHERE a.id IS NOT NULL AND w.state <> CASE
           WHEN a.deleted_at IS NOT NULL THEN 'soft'
           WHEN a.status = 'cancelled' THEN 'cancelled'
           ELSE 'active' END)
FROM unnest(%(ids)s::bigint[], %(states)s::text[]) AS w (id, state)
LEFT JOIN public.appointments AS a ON a.id = w.id
"""


@dataclass
class Checks:
    contradicting_flags: int
    calls_lost: int
    calls_wrong: int
    appointments_lost: int
    appointments_wrong: int
    # Booking Guard only: corrections it audited during the run. The application keeps the flags
    # right at every commit, so each one corrected a state that was transient inside a
    # transaction (the call's flags written before its appointment): work, and an alert, for
    # nothing.
    corrections: int | None = None


CORRECTIONS = "SELECT count(*) FROM guard.correction_audit WHERE actor = %(login)s"


def check(url: str, ledger: WorkerResult) -> Checks:
    with psycopg.connect(url, autocommit=True) as conn:
        (contradicting,) = _row(conn.execute(CONTRADICTING_FLAGS))
        calls = list(ledger.calls.items())
        calls_lost, calls_wrong = _row(
            conn.execute(
                READ_BACK_CALLS, {"ids": [k for k, _ in calls], "booked": [v for _, v in calls]}
            )
        )
        appointments = list(ledger.appointments.items())
        appointments_lost, appointments_wrong = _row(
            conn.execute(
                READ_BACK_APPOINTMENTS,
                {"ids": [k for k, _ in appointments], "states": [v for _, v in appointments]},
            )
        )
        corrections = None
        if _row(conn.execute("SELECT to_regclass('guard.correction_audit') IS NOT NULL"))[0]:
            (corrections,) = _row(conn.execute(CORRECTIONS, {"login": APP_LOGIN}))
    return Checks(
        contradicting, calls_lost, calls_wrong, appointments_lost, appointments_wrong, corrections
    )


# -- instructions per lifecycle (--instructions) --------------------------------------------------

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# Statements whose RETURNING id comes from an identity column, by the table it is numbered in.
_NUMBERED_IN = {INSERT_CALL: "calls", INSERT_APPOINTMENT: "appointments"}


def _literal(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"no literal for {value!r}")
    return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"


# Every statement of the mix, prepared once under a fixed name (the name is its index).
_MIX = (
    INSERT_CALL,
    SET_STATUS,
    NO_BOOKING,
    INSERT_APPOINTMENT,
    MARK_BOOKED,
    MARK_UNBOOKED,
    CANCEL,
    SOFT_DELETE,
    MOVE,
    DELETE,
)


def _parameters(text: str) -> list[str]:
    """The statement's %(name)s parameters in order of first appearance ($1, $2, ...)."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(text)))


def prepare_statements() -> list[str]:
    """PREPARE stepN AS ... for every statement of the mix, %(name)s turned into $n."""
    from bench.instructions import numbered

    return [f"PREPARE step{number} AS {numbered(text).strip()}" for number, text in enumerate(_MIX)]


def lifecycle_script(
    count: int, seed: int, next_ids: dict[str, int], kinds: list[str] | None = None
) -> list[str]:
    """`count` lifecycles of plan_lifecycle as EXECUTE statements of prepare_statements(), each
    step its own transaction as the application runs it, with the ids the identity columns will
    hand out (next_ids: table -> next id, advanced here). kinds, when given, gets the kind of the
    transaction each statement of the script belongs to."""
    rng = random.Random(seed)
    script: list[str] = []
    for sequence in range(1, count + 1):
        plan = plan_lifecycle(rng, sequence, f"i{seed}-{sequence}")
        ids: dict[str, int] = {}
        for kind, step in zip(plan.kinds, plan.steps, strict=True):
            executes = []
            for statement in step:
                values = [statement.params[key] for key in _parameters(statement.sql)]
                args = ", ".join(_literal(ids[v.name] if isinstance(v, Ref) else v) for v in values)
                executes.append(f"EXECUTE step{_MIX.index(statement.sql)}({args})")
                if statement.returns:
                    table = _NUMBERED_IN[statement.sql]
                    ids[statement.returns] = next_ids[table]
                    next_ids[table] += 1
            transaction = ["BEGIN", *executes, "COMMIT"] if len(executes) > 1 else executes
            script += transaction
            if kinds is not None:
                kinds += [kind] * len(transaction)
    return script


@dataclass
class Instructions:
    per_lifecycle: dict[str, float]  # variant -> instructions per lifecycle
    # variant -> transaction kind -> (transactions of the kind, instructions per transaction)
    by_kind: dict[str, dict[str, tuple[int, float]]]


def count_lifecycles(variants: list[str], count: int, warmup: int) -> Instructions:
    """Server instructions per lifecycle for each variant: valgrind callgrind on a single-user
    backend (as bench/instructions.py counts them) running `warmup` lifecycles on one clone of
    the variant's database and `warmup` + `count` on another, as the application login; the
    difference divided by `count`. One transaction per step and prepared statements, as the load
    runs them: what a one-statement transaction costs (trigger functions set up their state per
    transaction) is in the figure, unlike in bench/instructions.py's one-transaction workloads.
    By kind: the second clone's measured statements, each counted on its own (callgrind dumps
    after every statement), summed per transaction (its BEGIN and COMMIT included)."""
    from bench.instructions import count_instructions

    settings = {"shared_buffers": "256MB", "jit": "off"}
    figures: dict[str, float] = {}
    by_kind: dict[str, dict[str, tuple[int, float]]] = {}
    with databases(variants) as (cluster, _urls):
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            for variant in variants:
                for clone in ("base", "full"):
                    admin.execute(
                        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                            sql.Identifier(f"{clone}_{variant}"),
                            sql.Identifier(f"workload_{variant}"),
                        )
                    )
        cluster.stop()  # a single-user backend needs the data directory to itself
        try:
            for variant in variants:
                next_ids = {"calls": PRELOAD_CALLS + 1, "appointments": PRELOAD_APPOINTMENTS + 1}
                warm = lifecycle_script(warmup, 1, next_ids)
                kinds: list[str] = []
                measured = lifecycle_script(count, 2, next_ids, kinds)
                start = [
                    # ids as lifecycle_script numbered them, whatever a restart did to the
                    # sequences' cached values
                    f"SELECT setval(pg_get_serial_sequence('public.{table}', 'id'), {last})"
                    for table, last in (
                        ("calls", PRELOAD_CALLS),
                        ("appointments", PRELOAD_APPOINTMENTS),
                    )
                ] + [f"SET SESSION AUTHORIZATION {APP_LOGIN}", *prepare_statements()]
                base = count_instructions(cluster, f"base_{variant}", start + warm, settings)
                each: list[int] = []
                full = count_instructions(
                    cluster, f"full_{variant}", start + warm + measured, settings, each
                )
                figures[variant] = (full - base) / count
                by_kind[variant] = _per_kind(kinds, measured, each[len(each) - len(measured) :])
                # the statements counted one by one add up to about the difference of the clones
                summed = sum(each[len(each) - len(measured) :]) / count
                print(
                    f"{VARIANTS[variant]}: {figures[variant] / 1000:,.0f}k per lifecycle"
                    f" ({summed / 1000:,.0f}k statement by statement)",
                    file=sys.stderr,
                )
        finally:
            cluster.start()
    return Instructions(figures, by_kind)


def _per_kind(
    kinds: list[str], script: list[str], instructions: list[int]
) -> dict[str, tuple[int, float]]:
    """Transactions and instructions per transaction of each kind; a transaction starts with a
    BEGIN or is a statement alone."""
    totals: dict[str, list[int]] = {}
    inside = False
    for kind, text, counted in zip(kinds, script, instructions, strict=True):
        if not inside:
            totals.setdefault(kind, [0, 0])[0] += 1
        inside = text == "BEGIN" or (inside and text != "COMMIT")
        totals[kind][1] += counted
    return {kind: (n, total / n) for kind, (n, total) in totals.items()}


def print_instructions(report: Instructions, count: int, warmup: int) -> None:
    figures = report.per_lifecycle
    print(
        f"\nbench/workload.py --instructions: server instructions per lifecycle, {count} lifecycles"
        f" after {warmup} warm-up ones (valgrind callgrind, single-user backend, the"
        " application login, one transaction per step, prepared statements)\n"
    )
    print("| variant | instructions per lifecycle | x (a) |")
    print("|---|---|---|")
    for variant, value in figures.items():
        print(f"| {VARIANTS[variant]} | {value / 1000:,.0f}k | {value / figures['a']:.2f} |")
    base = report.by_kind["a"]
    total = sum(n for n, _ in base.values())
    print("\nInstructions per write transaction, by kind (each statement counted on its own):\n")
    header = " | ".join(VARIANTS[v] + (" | x (a)" if v != "a" else "") for v in figures)
    print(f"| transaction | share | {header} |")
    print("|---|---|" + "---|" * (2 * len(figures) - 1))
    for kind in sorted(base, key=lambda kind: -base[kind][0]):
        cells = []
        for variant in figures:
            value = report.by_kind[variant].get(kind, (0, float("nan")))[1]
            cells.append(f"{value / 1000:,.0f}k")
            if variant != "a":
                cells.append(f"{value / base[kind][1]:.2f}")
        print(f"| {kind} | {base[kind][0] / total:.0%} | {' | '.join(cells)} |")


# -- the run --------------------------------------------------------------------------------------


def _row(cursor: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("no row where one was expected")
    return tuple(row)


def _quantile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return float(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])


@contextmanager
def databases(variants: list[str]) -> Iterator[tuple[EmbeddedCluster, dict[str, str]]]:
    """The cluster (durable commits) and each variant's database URL for the application login."""
    durable = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
    with bench_cluster(
        durable=True, extra_settings=durable | {"max_connections": "100"}
    ) as cluster:
        admin_url = cluster.url("postgres")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            settings: dict[str, str] = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings"
                    " WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')"
                ).fetchall()
            )
            if set(settings.values()) != {"on"}:
                raise SystemExit(f"commits are not durable in the bench cluster: {settings}")
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(APP_LOGIN)))
        urls: dict[str, str] = {}
        for variant in variants:
            name = f"workload_{variant}"
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            build_database(cluster.url(name), variant)
            urls[variant] = f"postgresql://{APP_LOGIN}@127.0.0.1:{cluster.port}/{name}"
        yield cluster, urls


def run(args: argparse.Namespace) -> dict[str, Any]:
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown or "a" not in variants:
        raise SystemExit(f"--variants: choose from {', '.join(VARIANTS)}; (a) is the baseline")
    think_ms = 0.0 if args.saturated else args.think_ms
    rounds: dict[str, list[Measurement]] = {v: [] for v in variants}
    ledgers = {v: WorkerResult() for v in variants}
    checks: dict[str, Checks] = {}
    with databases(variants) as (cluster, urls):
        for number in range(args.rounds):
            order = variants[number % len(variants) :] + variants[: number % len(variants)]
            for variant in order:
                m = measure(
                    urls[variant], args.workers, args.seconds, think_ms, number, ledgers[variant]
                )
                rounds[variant].append(m)
                print(
                    f"round {number + 1} {VARIANTS[variant]}:"
                    f" {m.lifecycles_per_s:.1f} lifecycles/s,"
                    f" p50 {m.p50_ms:.2f} ms, p99 {m.p99_ms:.2f} ms",
                    file=sys.stderr,
                )
        for variant in variants:
            checks[variant] = check(cluster.url(f"workload_{variant}"), ledgers[variant])
    return {"rounds": rounds, "checks": checks, "think_ms": think_ms, "args": vars(args)}


# The throughput targets (x the same load without Booking Guard).
THROUGHPUT_WITH_THINK_TIME = 0.95
THROUGHPUT_SATURATED = 0.85


def median_of(measurements: list[Measurement], name: str) -> float:
    return float(statistics.median(getattr(m, name) for m in measurements))


def print_table(report: dict[str, Any]) -> bool:
    rounds: dict[str, list[Measurement]] = report["rounds"]
    checks: dict[str, Checks] = report["checks"]
    base = rounds["a"]
    mode = (
        "saturated (no think time)"
        if report["think_ms"] == 0
        else f"think time 0-{report['think_ms']:g} ms"
    )
    args = report["args"]
    print(
        f"\nbench/workload.py: {args['workers']} workers, {args['rounds']} rounds of"
        f" {args['seconds']:g} s per variant, {mode}, durable commits, application login\n"
    )
    print(
        "| variant | lifecycles/s | x (a) | write tx/s | p50 ms | x (a) | p99 ms | x (a) |"
        " deadlocks | serialization failures | contradicting flags | rows lost | rows wrong |"
        " guard corrections |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    ok = True
    for variant, measurements in rounds.items():
        life = median_of(measurements, "lifecycles_per_s")
        p50 = median_of(measurements, "p50_ms")
        p99 = median_of(measurements, "p99_ms")
        c = checks[variant]
        lost = c.calls_lost + c.appointments_lost
        wrong = c.calls_wrong + c.appointments_wrong
        print(
            f"| {VARIANTS[variant]} | {life:.1f} | {life / median_of(base, 'lifecycles_per_s'):.2f}"
            f" | {median_of(measurements, 'transactions_per_s'):.1f}"
            f" | {p50:.2f} | {p50 / median_of(base, 'p50_ms'):.2f}"
            f" | {p99:.2f} | {p99 / median_of(base, 'p99_ms'):.2f}"
            f" | {sum(m.deadlocks for m in measurements)}"
            f" | {sum(m.serialization_failures for m in measurements)}"
            f" | {c.contradicting_flags} | {lost} | {wrong}"
            f" | {'-' if c.corrections is None else c.corrections} |"
        )
        ok = ok and c.contradicting_flags == 0 and lost == 0 and wrong == 0
    if "g" in rounds:
        g = rounds["g"]
        # Saturated, the two cores are the limit and throughput follows the instructions per
        # lifecycle; with think time the application's own waits hide most of them.
        floor = THROUGHPUT_SATURATED if report["think_ms"] == 0 else THROUGHPUT_WITH_THINK_TIME
        targets = [
            (
                f"throughput (g) >= {floor:.2f}x (a)",
                median_of(g, "lifecycles_per_s") / median_of(base, "lifecycles_per_s") >= floor,
            ),
            (
                "median write latency (g) <= 1.3x (a)",
                median_of(g, "p50_ms") / median_of(base, "p50_ms") <= 1.3,
            ),
            (
                "p99 write latency (g) <= 1.5x (a)",
                median_of(g, "p99_ms") / median_of(base, "p99_ms") <= 1.5,
            ),
            (
                "deadlocks (g) <= (a)",
                sum(m.deadlocks for m in g) <= sum(m.deadlocks for m in base),
            ),
        ]
        print()
        for name, met in targets:
            print(f"- {name}: {'PASS' if met else 'FAIL'}")
    print(
        f"- invariants and read-back: {'PASS' if ok else 'FAIL'}"
        " (0 contradicting flags, 0 rows lost or wrong)"
    )
    return ok


def print_by_kind(report: dict[str, Any]) -> None:
    """The median latency of each kind of write transaction, per variant: where the added
    latency goes. "weighted" is the kind's share of the write transactions times what Booking
    Guard adds to its median (a rough split of the added median, not an exact one)."""
    rounds: dict[str, list[Measurement]] = report["rounds"]
    variants = list(rounds)
    kinds = sorted(
        {kind for measurements in rounds.values() for m in measurements for kind in m.by_kind},
        key=lambda kind: (
            -statistics.median(m.by_kind[kind][0] for m in rounds["a"] if kind in m.by_kind)
        ),
    )

    def p50(variant: str, kind: str) -> float:
        values = [m.by_kind[kind][1] for m in rounds[variant] if kind in m.by_kind]
        return float(statistics.median(values)) if values else float("nan")

    print("\nMedian latency by kind of write transaction (ms; medians over rounds):\n")
    header = " | ".join(f"{VARIANTS[v]} | x (a)" if v != "a" else VARIANTS[v] for v in variants)
    weighted = "g" in variants
    print(f"| transaction | share | {header} |" + (" weighted (g) - (a) |" if weighted else ""))
    print("|---|---|" + "---|" * (2 * len(variants) - 1) + ("---|" if weighted else ""))
    for kind in kinds:
        share = statistics.median(m.by_kind[kind][0] for m in rounds["a"] if kind in m.by_kind)
        cells = []
        for variant in variants:
            cells.append(f"{p50(variant, kind):.2f}")
            if variant != "a":
                cells.append(f"{p50(variant, kind) / p50('a', kind):.2f}")
        extra = f" {share * (p50('g', kind) - p50('a', kind)):+.3f} |" if weighted else ""
        print(f"| {kind} | {share:.0%} | {' | '.join(cells)} |{extra}")


def print_tail(report: dict[str, Any]) -> None:
    """What each variant's slowest write transactions are: each kind's share of the slowest
    TAIL (the transactions at or above the variant's own 1 - TAIL quantile; ties included), next
    to its share of all of them, and each kind's own p99. A kind whose share of the tail is well
    above its share of the transactions is what the p99 is made of; medians over rounds."""
    rounds: dict[str, list[Measurement]] = report["rounds"]
    variants = list(rounds)

    def median(variant: str, kind: str, index: int, table: str) -> float:
        values = [
            getattr(m, table)[kind][index] for m in rounds[variant] if kind in getattr(m, table)
        ]
        return float(statistics.median(values)) if values else float("nan")

    kinds = sorted(
        {kind for measurements in rounds.values() for m in measurements for kind in m.by_kind},
        key=lambda kind: -median("a", kind, 0, "by_kind"),
    )
    print(
        f"\nThe slowest {TAIL:.0%} of write transactions by kind (share of the slowest {TAIL:.0%};"
        " each kind's own p99 in ms; medians over rounds):\n"
    )
    header = " | ".join(
        f"{VARIANTS[v]}: slowest | p99 ms" + (" | x (a)" if v != "a" else "") for v in variants
    )
    print(f"| transaction | share | {header} |")
    print("|---|---|" + "---|---|" * len(variants) + "---|" * (len(variants) - 1))
    for kind in kinds:
        cells = []
        for variant in variants:
            p99 = median(variant, kind, 1, "tail_by_kind")
            cells += [f"{median(variant, kind, 0, 'tail_by_kind'):.0%}", f"{p99:.2f}"]
            if variant != "a":
                cells.append(f"{p99 / median('a', kind, 1, 'tail_by_kind'):.2f}")
        print(f"| {kind} | {median('a', kind, 0, 'by_kind'):.0%} | {' | '.join(cells)} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--think-ms", type=float, default=10.0, help="upper bound of the think time"
    )
    parser.add_argument("--saturated", action="store_true", help="no think time")
    parser.add_argument("--variants", default="a,b,g")
    parser.add_argument("--json-file", type=Path)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count server instructions per lifecycle and per kind of write transaction"
        " (valgrind) instead of running the load",
    )
    parser.add_argument("--lifecycles", type=int, default=200, help="with --instructions")
    args = parser.parse_args(argv)
    if args.instructions:
        variants = [v for v in args.variants.split(",") if v]
        if set(variants) - set(VARIANTS) or "a" not in variants:
            raise SystemExit(f"--variants: choose from {', '.join(VARIANTS)}; (a) is the baseline")
        warmup = 30
        counted = count_lifecycles(variants, args.lifecycles, warmup)
        print_instructions(counted, args.lifecycles, warmup)
        return
    report = run(args)
    ok = print_table(report)
    print_by_kind(report)
    print_tail(report)
    if args.json_file:
        args.json_file.write_text(
            json.dumps(
                {
                    "rounds": {v: [asdict(m) for m in ms] for v, ms in report["rounds"].items()},
                    "checks": {v: asdict(c) for v, c in report["checks"].items()},
                    "think_ms": report["think_ms"],
                },
                indent=2,
            )
        )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
