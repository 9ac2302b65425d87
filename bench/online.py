"""Online schema change: `guard db apply` then `guard db validate` on a live legacy database.

A legacy database (as an old application left it: no Booking Guard yet, the kinds of bad rows
guard/demo/sample_data.py has) of 2 million calls and 1.2 million appointments at --scale 1. While
an application writer inserts and updates at a steady rate, a BI reader holds a 25-second
transaction on calls (a 25 s query: it holds a snapshot and an ACCESS SHARE lock), and then `guard
db apply` runs, as a separate process; then a new 25 s reader and `guard db validate`. Besides its
recent calls the writer updates one old (legacy) call every tick, a random one: the rows `guard db
validate` reconciles, so a reconcile batch that holds their row locks long shows. `--writer oldest`
is the application of a live adoption instead: every 50 ms it inserts a call and then updates one of
the 5,000 oldest calls, in id order, round and round, each statement in its own transaction, the two
measured as one write (the oldest calls are the rows validate's first batches lock and apply's
migrations reach first). `--fixture adopt` loads that adoption's share of bad rows: 5 % of calls
without direction, 0.05 % with a customer and no link status (the others have a valid one), every
call with an appointment with flags that contradict it (1.2 million), and one appointment of another
company than its call, so the company foreign key stays NOT VALID (validate exits 1 naming only it,
which the target accepts). Every run counts the fixture's bad rows per kind right after loading and
prints them next to the expected count and to what `guard db validate` corrected; an adopt fixture
more than 10 % off the tracker's counts stops the run before it starts (FixtureSharesOff). Printed
per step: its total time and the writer's p50, p99 and worst latency, next to the same figures over
a window with no migration running (measured in the same run, reader open too). A third session
samples every 10 ms what the writer waits for: a lock (pg_blocking_pids: the blocker, the lock asked
for, the blocker's statement, and whether the blocker itself waits) or anything else (an IO or
LWLock wait event: the disk, a buffer, not a lock); per step the waits seen most often are printed,
and under each of the step's slowest writes what was seen during that write, so a stall names its
cause. The guard command's progress lines are timed as they come: each step's slowest writes are
printed with the line that was last printed before them (what the command was doing), and with the
kernel's dirty and writeback pages at that moment (/proc/vmstat, where there is one): a write that
waited on no lock mostly waited for the kernel to write back pages.

Targets: worst write during apply and during validate <= 150 ms with the reader open, and apply
completes (after the reader ends). `make bench-online` runs it at --scale 1 with --check (exit 1
when a target is missed), with each writer: the regression run for migrations and `guard db
validate` at volume.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

from bench._cluster import bench_cluster, progress

TARGET_WORST_MS = 150.0
CALLS_AT_SCALE_1 = 2_000_000
# 60 % of calls have an appointment: 1.2 million at scale 1.
LEGACY_SCHEMA = """
CREATE TABLE companies (
    id bigserial PRIMARY KEY, name varchar(255) NOT NULL,
    created_at timestamp(0) without time zone, updated_at timestamp(0) without time zone
);
CREATE TABLE customers (
    id bigserial PRIMARY KEY, company_id bigint NOT NULL REFERENCES companies (id),
    name varchar(255), phone varchar(255),
    created_at timestamp(0) without time zone, updated_at timestamp(0) without time zone
);
CREATE TABLE calls (
    id bigserial PRIMARY KEY,
    company_id bigint NOT NULL REFERENCES companies (id),
    retell_call_id varchar(255) UNIQUE,
    from_number varchar(255), to_number varchar(255), status varchar(255),
    direction varchar(255),
    customer_id bigint REFERENCES customers (id),
    session_outcome varchar(255),
    appointment_made boolean DEFAULT false,
    booking_id varchar(255),
    booking_failed boolean DEFAULT false,
    booking_details json,
    transcript text,
    created_at timestamp(0) without time zone, updated_at timestamp(0) without time zone
);
CREATE TABLE appointments (
    id bigserial PRIMARY KEY,
    company_id bigint NOT NULL REFERENCES companies (id),
    call_id bigint REFERENCES calls (id),
    customer_id bigint REFERENCES customers (id),
    calcom_v2_booking_id varchar(255), source varchar(255),
    status varchar(255) DEFAULT 'scheduled',
    starts_at timestamp(0) without time zone,
    created_at timestamp(0) without time zone, updated_at timestamp(0) without time zone,
    deleted_at timestamp(0) without time zone
);
INSERT INTO companies (name, created_at)
SELECT 'Company ' || g, now() FROM generate_series(1, 3) AS g;
INSERT INTO customers (company_id, name, phone)
SELECT 1 + g % 3, 'Kunde ' || g, '+49 30 ' || (1000000 + g) FROM generate_series(1, 30000) AS g;
"""
# Customer c belongs to company 1 + c % 3, call g to company 1 + g % 3: a call's customer is
# 3 * (1 + g % 9999) + g % 3 (3 to 29,999), one of its own company's. A link to another company's
# customer is a kind of bad row of its own, which no fixture means to load.
# The adopted application kept a customer link status of its own: calls without a customer are
# 'unlinked', so only the calls linked without a status break I2 (the sample's legacy schema has
# none of these columns: validate corrects every call's link there).
LEGACY_LINK_COLUMNS = """
ALTER TABLE calls
ADD COLUMN customer_link_status text, ADD COLUMN customer_link_method text,
ADD COLUMN customer_link_confidence numeric(5, 2), ADD COLUMN customer_linked_at timestamptz
"""

# Each call falls in a bucket 0-99 (a fixed hash of its number) that decides its shape, at the
# rates of guard/demo/sample_data.py: 4 % phantom bookings, 3 % flags that deny an existing
# appointment, 2 % contradicting flags, 3 % voice-agent appointments linked to no call, 3 %
# booking failures, 52 % consistent bookings, the rest information only. Independently 7 % have
# no direction and 30 % a customer (of their own company) linked without any link status (the
# legacy schema has none, so validate corrects the link of every call, linked or not).
LOAD_CALLS = """
INSERT INTO calls (company_id, retell_call_id, from_number, to_number, status, direction,
                   customer_id, session_outcome, appointment_made, booking_id, booking_failed,
                   booking_details, transcript, created_at, updated_at)
SELECT 1 + g %% 3, 'legacy_' || g, '+49 30 ' || (1000000 + g %% 900000), '+49 30 999',
       'ended',
       CASE WHEN (g * 53) %% 100 < 7 THEN NULL WHEN g %% 2 = 0 THEN 'inbound' ELSE 'outbound' END,
       CASE WHEN (g * 71) %% 100 < 30 THEN 3 * (1 + g %% 9999) + g %% 3 END,
       CASE WHEN b < 12 OR b BETWEEN 15 AND 66 THEN 'appointment_booked'
            WHEN b BETWEEN 12 AND 14 THEN 'creation_failed' ELSE 'information_only' END,
       b < 4 OR b BETWEEN 7 AND 8 OR b BETWEEN 15 AND 66,
       CASE WHEN b < 12 OR b BETWEEN 15 AND 66 THEN 'bk_' || g END,
       b BETWEEN 7 AND 8 OR b BETWEEN 12 AND 14,
       json_build_object('slot', g), 'transcript ' || g,
       now() - make_interval(secs => %(n)s - g), now() - make_interval(secs => %(n)s - g)
FROM (SELECT g, (g * 37) %% 100 AS b FROM generate_series(1, %(n)s) AS g) AS s
"""
# --fixture adopt: the shares of a database adopted live (the tracker's report): 5 % of calls with
# no direction (100,000 at scale 1), 0.05 % with a customer linked without link status (1,000),
# (the other calls have no customer and link status 'unlinked'), and the legacy application
# never set appointment_made, so every call with an appointment (1.2 million: each appointment
# has its call, LOAD_APPOINTMENTS_ADOPT) carries flags that contradict it. One appointment names
# another company than its call (FOREIGN_KEY_BREACH): the company foreign key stays NOT VALID,
# as it must.
LOAD_CALLS_ADOPT = """
INSERT INTO calls (company_id, retell_call_id, from_number, to_number, status, direction,
                   customer_id, customer_link_status, session_outcome, appointment_made,
                   booking_id, booking_failed, booking_details, transcript, created_at, updated_at)
SELECT 1 + g %% 3, 'legacy_' || g, '+49 30 ' || (1000000 + g %% 900000), '+49 30 999',
       'ended',
       CASE WHEN (g * 53) %% 100 < 5 THEN NULL WHEN g %% 2 = 0 THEN 'inbound' ELSE 'outbound' END,
       CASE WHEN (g * 71) %% 2000 = 0 THEN 3 * (1 + g %% 9999) + g %% 3 END,
       CASE WHEN (g * 71) %% 2000 <> 0 THEN 'unlinked' END,
       CASE WHEN b < 12 OR b BETWEEN 15 AND 66 THEN 'appointment_booked'
            WHEN b BETWEEN 12 AND 14 THEN 'creation_failed' ELSE 'information_only' END,
       false,
       CASE WHEN b < 12 OR b BETWEEN 15 AND 66 THEN 'bk_' || g END,
       b BETWEEN 12 AND 14,
       json_build_object('slot', g), 'transcript ' || g,
       now() - make_interval(secs => %(n)s - g), now() - make_interval(secs => %(n)s - g)
FROM (SELECT g, (g * 37) %% 100 AS b FROM generate_series(1, %(n)s) AS g) AS s
"""
FOREIGN_KEY_BREACH = """
UPDATE appointments SET company_id = 1 + company_id % 3
WHERE id = (SELECT min(id) FROM appointments WHERE call_id IS NOT NULL)
"""
FIXTURES = ("sample", "adopt")
# The application's new call. The adopted application (--fixture adopt) writes its link status,
# as it did for its old calls; without it the calls it inserts before `guard db apply` installs
# the normaliser would be bad customer links the fixture did not mean (about 1,000 at scale 1).
INSERT_CALL = (
    "INSERT INTO calls (company_id, retell_call_id, direction, status, created_at)"
    " VALUES (1, 'live_' || %s, 'inbound', 'ongoing', now())"
)
INSERT_CALL_WITH_LINK_STATUS = (
    "INSERT INTO calls (company_id, retell_call_id, direction, status, customer_link_status,"
    " created_at) VALUES (1, 'live_' || %s, 'inbound', 'ongoing', 'unlinked', now())"
)
EXPECTED_NOT_VALID = "appointments.guard_appointments_call_company_fkey"
LOAD_APPOINTMENTS = """
INSERT INTO appointments (company_id, call_id, customer_id, calcom_v2_booking_id, source,
                          status, starts_at, created_at, updated_at)
SELECT c.company_id,
       CASE WHEN (c.id * 37) % 100 BETWEEN 9 AND 11 THEN NULL ELSE c.id END,
       c.customer_id, c.booking_id, 'retell_webhook', 'scheduled',
       c.created_at + interval '3 days', c.created_at, c.created_at
FROM calls AS c
WHERE (c.id * 37) % 100 BETWEEN 4 AND 11 OR (c.id * 37) % 100 BETWEEN 15 AND 66
"""
# The adoption's appointments all have their call: 60 % of calls, 1.2 million at scale 1.
LOAD_APPOINTMENTS_ADOPT = LOAD_APPOINTMENTS.replace(
    "CASE WHEN (c.id * 37) % 100 BETWEEN 9 AND 11 THEN NULL ELSE c.id END", "c.id"
)
# What guard db validate corrected at 2,000,000 calls on the database the adopt fixture models
# (the tracker's report), per kind; the fixture's counts scale with the number of calls.
ADOPT_CORRECTED_AT_SCALE_1 = {"direction": 100_400, "customer link": 931, "flags": 1_200_760}
SHARES_TOLERANCE = 0.10
# The fixture's bad rows per kind, counted on the legacy tables as validate will judge them once
# `guard db apply` has added the missing columns (a missing column is NULL): I1 a direction that
# is not inbound or outbound, I2 an incomplete customer link (guard.is_valid_customer_link), I3
# flags that contradict the appointments (guard.call_flags_contradict: without an appointment
# link status a call with an active appointment always contradicts, one without contradicts when
# it claims one). Also the calls linked to another company's customer, which should be none.
COUNT_BAD_ROWS = """
SELECT
    count(*) FILTER (WHERE c.direction IS NULL OR c.direction NOT IN ('inbound', 'outbound')),
    count(*) FILTER (WHERE NOT coalesce(CASE
        WHEN c.customer_id IS NOT NULL THEN {status} = 'linked' AND {linked_at} IS NOT NULL
            AND {method} IS NOT NULL AND {confidence} IS NOT NULL
        ELSE {status} IN ('unlinked', 'anonymous') END, FALSE)),
    count(*) FILTER (WHERE c.appointment_made OR a.call_id IS NOT NULL),
    count(*) FILTER (WHERE cu.company_id <> c.company_id)
FROM calls AS c LEFT JOIN customers AS cu ON cu.id = c.customer_id
-- the calls with an active appointment, once each: a join, because an EXISTS in a FILTER is
-- run once per call, and the legacy tables have no index on appointments.call_id
LEFT JOIN (
    SELECT DISTINCT call_id FROM appointments WHERE deleted_at IS NULL AND status <> 'cancelled'
) AS a ON a.call_id = c.id
"""
LINK_COLUMNS = ("status", "linked_at", "method", "confidence")


WRITERS = ("random", "oldest")


class _ApplicationWriter(threading.Thread):
    """A writer thread's record: each write's latency and each failure, with the time it
    started, until stop_event is set."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float]] = []
        self.errors: list[tuple[float, str]] = []
        self.stop_event = threading.Event()

    def window(self, start: float, end: float) -> list[float]:
        return [latency for at, latency in self.samples if start <= at < end]

    def failures(self, start: float, end: float) -> dict[str, int]:
        counts: dict[str, int] = {}
        for at, message in self.errors:
            if start <= at < end:
                counts[message] = counts.get(message, 0) + 1
        return counts


class OldestWriter(_ApplicationWriter):
    """The application of the tracker's report (--writer oldest): every `interval_s` it inserts a
    call and then updates one of the oldest `oldest` calls, in id order, round and round; each
    statement in its own transaction. A write is the two together: the oldest calls are the rows
    validate's first reconcile batches lock and apply's migrations touch first."""

    def __init__(
        self, url: str, oldest: int = 5000, interval_s: float = 0.05, insert_call: str = INSERT_CALL
    ) -> None:
        super().__init__()
        self.url = url
        self.insert_call = insert_call
        self.oldest = oldest
        self.interval_s = interval_s

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True, application_name="application") as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM calls ORDER BY id LIMIT %s", (self.oldest,)
                ).fetchall()
            ]
            tick = 0
            next_at = time.monotonic()
            while not self.stop_event.is_set():
                started = time.monotonic()
                try:
                    conn.execute(self.insert_call.encode(), (f"{os.getpid()}_{tick}",))
                    conn.execute(
                        "UPDATE calls SET status = 'ended', updated_at = now() WHERE id = %s",
                        (ids[tick % len(ids)],),
                    )
                except psycopg.Error as error:
                    self.errors.append((started, str(error).splitlines()[0]))
                self.samples.append((started, time.monotonic() - started))
                tick += 1
                next_at += self.interval_s
                time.sleep(max(0.0, next_at - time.monotonic()))


class Writer(_ApplicationWriter):
    """The application (--writer random): every tick inserts a call; every second tick updates a
    recent call; every fourth inserts an appointment for a recent call; and every tick updates a
    random old call (ids 1 to legacy_calls: the rows validate reconciles). Each operation's
    latency is recorded with the time it started."""

    def __init__(
        self, url: str, legacy_calls: int, interval_s: float = 0.02, insert_call: str = INSERT_CALL
    ) -> None:
        super().__init__()
        self.url = url
        self.insert_call = insert_call
        self.legacy_calls = legacy_calls
        self.interval_s = interval_s

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True, application_name="application") as conn:
            tick = 0
            rng = random.Random(7)  # which old call to update: not security
            next_at = time.monotonic()
            recent: list[int] = []
            while not self.stop_event.is_set():
                tick += 1
                started = time.monotonic()
                try:
                    if tick % 4 == 0 and recent:
                        conn.execute(
                            "INSERT INTO appointments (company_id, call_id, calcom_v2_booking_id,"
                            " source, created_at)"
                            " SELECT company_id, id, 'bk_live_' || id, 'retell_webhook', now()"
                            " FROM calls WHERE id = %s",
                            (recent[-1],),
                        )
                    elif tick % 2 == 0 and recent:
                        conn.execute(
                            "UPDATE calls SET status = 'ended', updated_at = now() WHERE id = %s",
                            (recent[len(recent) // 2],),
                        )
                    else:
                        row = conn.execute(
                            f"{self.insert_call} RETURNING id".encode(),
                            (f"{os.getpid()}_{tick}",),
                        ).fetchone()
                        recent = [*recent[-50:], row[0]] if row else recent
                except psycopg.Error as error:
                    self.errors.append((started, str(error).splitlines()[0]))
                self.samples.append((started, time.monotonic() - started))
                started = time.monotonic()
                try:
                    conn.execute(
                        "UPDATE calls SET status = 'ended', updated_at = now() WHERE id = %s",
                        (rng.randint(1, self.legacy_calls),),
                    )
                except psycopg.Error as error:
                    self.errors.append((started, str(error).splitlines()[0]))
                self.samples.append((started, time.monotonic() - started))
                next_at += self.interval_s
                time.sleep(max(0.0, next_at - time.monotonic()))


class BlockSampler(threading.Thread):
    """A third session: every 10 ms, what the writer waits for. A lock wait names its blocker, the
    lock the writer asked for and the blocker's statement (a row lock shows as a wait on the
    holder's transaction id; a blocker that itself waits, e.g. an ALTER queued behind the reader,
    says so). Any other wait (IO, LWLock: the disk, WAL, a buffer) is recorded as such: it is not
    a lock wait."""

    QUERY = """
    SELECT
        a.wait_event_type = 'Lock',
        CASE WHEN a.wait_event_type = 'Lock' THEN
            'lock: ' || coalesce(nullif(b.application_name, ''), '?') || ' ('
            || coalesce(w.locktype, '?') || ' ' || coalesce(w.mode, '?')
            || coalesce(' on ' || w.relation, '') || ')'
            || CASE WHEN b.wait_event_type IS NOT NULL AND b.wait_event_type <> 'Client'
                    THEN ' itself waiting ' || b.wait_event_type || ':' || b.wait_event ELSE '' END
            || ': ' || left(regexp_replace(coalesce(b.query, ''), '\\s+', ' ', 'g'), 110)
        ELSE 'not a lock: ' || a.wait_event_type || ':' || a.wait_event END
    FROM pg_stat_activity AS a
    LEFT JOIN LATERAL unnest(pg_blocking_pids(a.pid)) AS blocker (pid) ON TRUE
    LEFT JOIN pg_stat_activity AS b ON b.pid = blocker.pid
    LEFT JOIN LATERAL (
        SELECT l.locktype, l.mode, l.relation::regclass::text AS relation
        FROM pg_locks AS l WHERE l.pid = a.pid AND NOT l.granted LIMIT 1
    ) AS w ON TRUE
    WHERE a.application_name = 'application' AND a.state = 'active'
      AND a.wait_event_type IS NOT NULL AND a.wait_event_type NOT IN ('Client', 'Activity')
    """

    def __init__(self, url: str, every_s: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.every_s = every_s
        self.seen: list[tuple[float, str]] = []
        # (when, dirty MB, writeback MB) of the whole machine
        self.dirty: list[tuple[float, float, float]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True, application_name="lock sampler") as conn:
            while not self.stop_event.is_set():
                at = time.monotonic()
                for _is_lock, what in conn.execute(self.QUERY).fetchall():
                    self.seen.append((at, what))
                pages = _dirty_pages()
                if pages is not None:
                    self.dirty.append((at, *pages))
                time.sleep(self.every_s)

    def during(self, start: float, end: float) -> list[tuple[str, int]]:
        """What the writer was seen waiting on between start and end, most often first."""
        return Counter(what for at, what in self.seen if start <= at <= end).most_common(3)

    def dirty_at(self, at: float) -> tuple[float, float] | None:
        """The largest dirty and writeback figures sampled within 0.5 s of `at`."""
        near = [(d, w) for when, d, w in self.dirty if abs(when - at) <= 0.5]
        return (max(d for d, _ in near), max(w for _, w in near)) if near else None

    def top(self, start: float, end: float, count: int = 3) -> list[tuple[str, int]]:
        seen = Counter(what for at, what in self.seen if start <= at < end)
        return seen.most_common(count)


class Reader(threading.Thread):
    """A BI query that runs for `seconds` on calls (and appointments), in one transaction."""

    def __init__(self, url: str, seconds: float) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.seconds = seconds
        self.ended_at = 0.0

    def run(self) -> None:
        with psycopg.connect(self.url, application_name="bi-dashboard") as conn:
            conn.execute("SELECT count(*) FROM calls").fetchone()
            conn.execute(
                "SELECT count(*), pg_sleep(%s) FROM appointments WHERE id < 10",
                (self.seconds,),
            ).fetchone()
            conn.commit()
        self.ended_at = time.monotonic()


def _dirty_pages() -> tuple[float, float] | None:
    """The machine's dirty and writeback page cache in MB, or None where /proc/vmstat is not."""
    try:
        fields = dict(
            line.split() for line in Path("/proc/vmstat").read_text().splitlines() if " " in line
        )
    except OSError:
        return None
    page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
    return int(fields["nr_dirty"]) * page_mb, int(fields["nr_writeback"]) * page_mb


def latency_figures(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies) or [0.0]
    return {
        "ops": len(latencies),
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "worst_ms": 1000 * ordered[-1],
    }


def _guard(url: str, *args: str) -> tuple[int, list[tuple[float, str]]]:
    """Run `guard db ARGS`; its exit code and its output lines (progress and report), each with
    when it came."""
    lines: list[tuple[float, str]] = []
    with subprocess.Popen(
        [sys.executable, "-m", "guard.cli", "--database-url", url, "db", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((time.monotonic(), line.rstrip("\n")))
    return process.returncode, lines


def _slowest(
    writer: Writer | OldestWriter,
    sampler: BlockSampler,
    started: float,
    ended: float,
    lines: list[tuple[float, str]],
    count: int = 3,
) -> list[dict[str, Any]]:
    """The step's slowest writes: when (seconds into the step), how long, what the command had
    last said, and the dirty and writeback pages then."""
    slowest = sorted(
        ((at, latency) for at, latency in writer.samples if started <= at < ended),
        key=lambda sample: -sample[1],
    )[:count]
    found = []
    for at, latency in slowest:
        said = [line for when, line in lines if when <= at]
        dirty = sampler.dirty_at(at)
        found.append(
            {
                "at_s": at - started,
                "ms": 1000 * latency,
                "doing": said[-1] if said else "(starting)",
                "dirty_mb": dirty[0] if dirty else None,
                "writeback_mb": dirty[1] if dirty else None,
                "waited_on": sampler.during(at, at + latency),
            }
        )
    return found


def _step(
    name: str,
    url: str,
    writer: Writer | OldestWriter,
    sampler: BlockSampler,
    reader_s: float,
    args: list[str],
    progress: Any,
) -> dict[str, Any]:
    reader = Reader(url, reader_s)
    reader.start()
    time.sleep(1.0)  # the reader holds its locks and snapshot before the migrator starts
    progress(f"{name}: running `guard db {' '.join(args)}` with a {reader_s:g} s reader open")
    started = time.monotonic()
    code, lines = _guard(url, *args)
    ended = time.monotonic()
    reader.join()
    if code not in (0,):
        progress(f"{name} exited {code}: {[line for _, line in lines[-1:]]}")
    waits = [line for _, line in lines if "timed out after" in line]
    return {
        "step": name,
        "exit_code": code,
        # constraints validate left NOT VALID (old rows violate them)
        "not_valid": [
            line.split()[2].rstrip(":") for _, line in lines if line.startswith("NOT VALID ")
        ],
        "seconds": ended - started,
        "completed_after_reader": ended >= reader.ended_at,
        "blocker_reports": len(waits),
        "first_blocker_report": waits[0] if waits else "",
        "failed_writes": writer.failures(started, ended),
        "writer_blocked_by": sampler.top(started, ended),
        "slowest_writes": _slowest(writer, sampler, started, ended, lines),
        **latency_figures(writer.window(started, ended)),
    }


def _quiet(
    name: str, url: str, writer: Writer | OldestWriter, sampler: BlockSampler, seconds: float
) -> dict[str, Any]:
    """The writer's figures over `seconds` with no migration running (a reader open too)."""
    reader = Reader(url, seconds)
    reader.start()
    started = time.monotonic()
    time.sleep(seconds)
    ended = time.monotonic()
    reader.join()
    return {
        "step": name,
        "exit_code": 0,
        "not_valid": [],
        "seconds": ended - started,
        "completed_after_reader": True,
        "blocker_reports": 0,
        "first_blocker_report": "",
        "failed_writes": writer.failures(started, ended),
        "writer_blocked_by": sampler.top(started, ended),
        "slowest_writes": _slowest(writer, sampler, started, ended, []),
        **latency_figures(writer.window(started, ended)),
    }


def run(
    scale: float,
    reader_s: float,
    baseline_s: float,
    progress: Any,
    workdir: Path | None = None,
    *,
    writer_mode: str = "random",
    fixture: str = "sample",
) -> dict[str, Any]:
    """workdir: where the throwaway cluster is made (default /tmp). writer_mode: WRITERS;
    fixture: FIXTURES."""
    calls = max(1000, int(CALLS_AT_SCALE_1 * scale))
    with bench_cluster(parent=workdir) as cluster:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE bench")
        url = cluster.url("bench")
        load_started = time.monotonic()
        with psycopg.connect(url, autocommit=True) as conn:
            load_fixture(conn, fixture, calls, progress)
            conn.execute("VACUUM ANALYZE")
            appointments = conn.execute("SELECT count(*) FROM appointments").fetchone()
            loaded = count_bad_rows(conn, fixture)
        load_s = time.monotonic() - load_started
        progress(f"bad rows loaded: {loaded}")
        off = shares_off(fixture_shares(fixture, calls, loaded, {}))
        if off:
            raise FixtureSharesOff(f"the {fixture} fixture's bad rows are off: {'; '.join(off)}")
        insert_call = INSERT_CALL_WITH_LINK_STATUS if fixture == "adopt" else INSERT_CALL
        writer: Writer | OldestWriter = (
            OldestWriter(url, insert_call=insert_call)
            if writer_mode == "oldest"
            else Writer(url, legacy_calls=calls, insert_call=insert_call)
        )
        writer.start()
        sampler = BlockSampler(url)
        sampler.start()
        time.sleep(2.0)  # warm up
        progress(f"baseline: {baseline_s:g} s of writes, no migration, a reader open")
        steps = [_quiet("no migration (baseline)", url, writer, sampler, baseline_s)]
        steps.append(_step("guard db apply", url, writer, sampler, reader_s, ["apply"], progress))
        steps.append(
            _step("guard db validate", url, writer, sampler, reader_s, ["validate"], progress)
        )
        shares = fixture_shares(fixture, calls, loaded, _corrected(url))
        progress(f"after: {baseline_s:g} s of writes on the migrated, validated database")
        steps.append(_quiet("no migration (after)", url, writer, sampler, baseline_s))
        writer.stop_event.set()
        sampler.stop_event.set()
        writer.join(timeout=10)
        sampler.join(timeout=10)
    return {
        "writer": writer_mode,
        "fixture": fixture,
        "calls": calls,
        "appointments": appointments[0] if appointments else 0,
        "load_seconds": load_s,
        "reader_seconds": reader_s,
        "cores": os.cpu_count(),
        "fixture_shares": shares,
        "steps": steps,
    }


class FixtureSharesOff(RuntimeError):
    """The fixture loaded other shares of bad rows than the database it models."""


def load_fixture(conn: psycopg.Connection[Any], fixture: str, calls: int, progress: Any) -> None:
    """The legacy tables and their rows (FIXTURES), on an empty database."""
    conn.execute(LEGACY_SCHEMA.encode())
    if fixture == "adopt":
        conn.execute(LEGACY_LINK_COLUMNS)
    progress(f"loading {calls:,} legacy calls")
    conn.execute(LOAD_CALLS_ADOPT if fixture == "adopt" else LOAD_CALLS, {"n": calls})
    progress("loading their appointments")
    conn.execute(LOAD_APPOINTMENTS_ADOPT if fixture == "adopt" else LOAD_APPOINTMENTS)
    if fixture == "adopt":
        conn.execute(FOREIGN_KEY_BREACH)


def count_bad_rows(conn: psycopg.Connection[Any], fixture: str) -> dict[str, int]:
    """The loaded fixture's bad rows per kind (COUNT_BAD_ROWS), before `guard db apply`."""
    has_link_columns = fixture == "adopt"
    columns = {
        name: f"c.customer_{'link_' if name in ('status', 'method', 'confidence') else ''}{name}"
        if has_link_columns
        else "NULL"
        for name in LINK_COLUMNS
    }
    row = conn.execute(COUNT_BAD_ROWS.format(**columns).encode()).fetchone()
    assert row is not None
    return dict(zip(("direction", "customer link", "flags", "foreign customer"), row, strict=True))


def _corrected(url: str) -> dict[str, int]:
    """What `guard db validate` corrected per kind (its audit of legacy rows)."""
    kinds = {
        "I1_call_direction": "direction",
        "I2_customer_link": "customer link",
        "I3_appointment_flags": "flags",
    }
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT rule_id, count(*) FROM guard.correction_audit"
            " WHERE reason LIKE 'legacy row:%' GROUP BY rule_id"
        ).fetchall()
    return {kinds[rule]: count for rule, count in rows if rule in kinds}


def fixture_shares(
    fixture: str, calls: int, loaded: dict[str, int], corrected: dict[str, int]
) -> dict[str, dict[str, float | None]]:
    """Per kind: the rows loaded, the rows expected (adopt: the tracker's counts at this scale;
    no calls linked to another company's customer for either fixture) and what validate corrected.
    Calls the application updated before validate reached them are normalised by the legacy-row
    triggers, unaudited: at small scales validate corrects fewer than were loaded."""
    expected: dict[str, float | None] = {"foreign customer": 0}
    if fixture == "adopt":
        for kind, at_scale_1 in ADOPT_CORRECTED_AT_SCALE_1.items():
            expected[kind] = at_scale_1 * calls / CALLS_AT_SCALE_1
    return {
        kind: {"loaded": count, "expected": expected.get(kind), "corrected": corrected.get(kind)}
        for kind, count in loaded.items()
    }


def shares_off(shares: dict[str, dict[str, float | None]]) -> list[str]:
    """The kinds whose loaded count is more than SHARES_TOLERANCE away from the expected one."""
    off = []
    for kind, counts in shares.items():
        loaded, expected = counts["loaded"], counts["expected"]
        if expected is None or loaded is None:
            continue
        if abs(loaded - expected) > SHARES_TOLERANCE * expected:
            off.append(f"{kind}: {loaded:,.0f} loaded, {expected:,.0f} expected")
    return off


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="1 = 2 million calls, 1.2 million appointments"
    )
    parser.add_argument("--reader-seconds", type=float, default=25.0)
    parser.add_argument("--baseline-seconds", type=float, default=20.0)
    parser.add_argument(
        "--writer",
        choices=WRITERS,
        default="random",
        help="random: a call every 20 ms, recent and random old calls updated, each statement"
        " measured; oldest: every 50 ms a call inserted and one of the 5,000 oldest updated in id"
        " order, the two measured as one write",
    )
    parser.add_argument(
        "--fixture",
        choices=FIXTURES,
        default="sample",
        help="sample: guard/demo/sample_data.py's shares of bad rows; adopt: 5 %% without"
        " direction, 0.05 %% with a customer and no link status, 1.2 million contradicting flags,"
        " one foreign-key breach that stays NOT VALID",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the target is missed (the regression run: make bench-online)",
    )
    args = parser.parse_args(argv)
    result = run(
        args.scale,
        args.reader_seconds,
        args.baseline_seconds,
        progress,
        writer_mode=args.writer,
        fixture=args.fixture,
    )
    result["target"] = target(result)
    failed = 1 if args.check and not result["target"]["pass"] else 0
    if args.json:
        print(json.dumps(result, indent=2))
        return failed
    print_table(result)
    return failed


def target(result: dict[str, Any]) -> dict[str, Any]:
    """Worst write of apply and validate within TARGET_WORST_MS, both complete."""
    steps = result["steps"]
    # The adopt fixture's foreign-key breach must stay NOT VALID: validate exits 1 naming it.
    expected = [EXPECTED_NOT_VALID] if result.get("fixture") == "adopt" else []
    return {
        "worst_ms_max": TARGET_WORST_MS,
        "pass": all(
            s["worst_ms"] <= TARGET_WORST_MS
            and s["completed_after_reader"]
            and (s["exit_code"] == 0 or (s["exit_code"] == 1 and s["not_valid"] == expected))
            for s in steps[1:3]
        ),
    }


def print_table(result: dict[str, Any]) -> None:
    steps = result["steps"]
    base = steps[0]
    print(
        f"online migration: {result['calls']:,} calls, {result['appointments']:,} appointments"
        f" (legacy, bad rows mixed in), a {result['reader_seconds']:g} s reader,"
        f" {result['cores']} cores, load {result['load_seconds']:.0f} s"
    )
    print(
        f"{result['fixture']} fixture, bad rows per kind (loaded / expected / validate corrected): "
        + "; ".join(
            f"{kind} {counts['loaded']:,.0f} / "
            + " / ".join(
                "-" if n is None else f"{n:,.0f}" for n in (counts["expected"], counts["corrected"])
            )
            for kind, counts in result["fixture_shares"].items()
        )
    )
    print(
        f"{'step':26} {'exit':>4} {'time s':>8} {'writes':>7} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'worst ms':>9} {'p99 x base':>10} {'worst x base':>12}"
    )
    for s in steps:
        print(
            f"{s['step']:26} {s['exit_code']:>4} {s['seconds']:8.1f} {s['ops']:>7}"
            f" {s['p50_ms']:8.2f} {s['p99_ms']:8.2f} {s['worst_ms']:9.1f}"
            f" {s['p99_ms'] / max(base['p99_ms'], 1e-9):10.2f}"
            f" {s['worst_ms'] / max(base['worst_ms'], 1e-9):12.2f}"
        )
    for s in steps[1:3]:
        if s["first_blocker_report"]:
            print(f"{s['step']}: {s['blocker_reports']} blocker reports, first: ")
            print(f"  {s['first_blocker_report']}")
        print(f"{s['step']}: completed after the reader ended: {s['completed_after_reader']}")
    for s in steps:
        for what, count in s["writer_blocked_by"]:
            print(f"{s['step']}: writer seen waiting {count}x (every 10 ms) on {what}")
    for s in steps:
        for slow in s["slowest_writes"]:
            dirty = (
                f", dirty {slow['dirty_mb']:.0f} MB, writeback {slow['writeback_mb']:.0f} MB"
                if slow["dirty_mb"] is not None
                else ""
            )
            print(
                f"{s['step']}: a {slow['ms']:.1f} ms write at {slow['at_s']:.1f} s{dirty},"
                f" after: {slow['doing'][:90]}"
            )
            for what, count in slow["waited_on"]:
                print(f"    meanwhile waiting {count}x (every 10 ms) on {what[:200]}")
    for s in steps:
        for message, count in s["failed_writes"].items():
            print(f"{s['step']}: {count} application writes failed: {message}")
    verdict = "PASS" if result["target"]["pass"] else "FAIL"
    print(
        f"target: worst write during apply and validate <= {TARGET_WORST_MS:g} ms, both"
        f" complete: {verdict}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
