"""NULL in every nullable column a check reads, generated from the catalog.

For each shipped check view (guard.shipped_check_views()) the columns it reads are walked from
pg_depend (the view's rewrite rule depends on each column it names), together with the columns
its per-call, commit-time implementation reads where there is one (the column list of the
trigger guard_calls_check_flag_write, for flags_contradict_appointments); every one of them that
pg_attribute says may be NULL is set NULL, in turn, on every row of small worlds that the check
finds (offending) and does not find (clean). The rows are stored as an adopted database holds
them: written with Booking Guard's triggers off and the calls' and appointments' CHECKs added
back NOT VALID afterwards (old rows); the journal's CHECKs stay, and a row they refuse is the
documented outcome (23514).

Each generated row is then judged three ways, which must agree: the check view (it must never
error), check_call for a call (the per-call path), and the invariant's documented rule written
here in Python from docs/invariants.md, whose comments say which rule decides a NULL; for
flags_contradict_appointments that rule is guard.call_flags_contradict, the commit-time check's.

Run on a fresh database and on an adopted one (the legacy schema: more columns may be NULL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

Row = dict[str, Any]
Conn = psycopg.Connection[Row]

TABLES = {
    "calls": "public.calls",
    "appointments": "public.appointments",
    "booking_attempts": "guard.booking_attempts",
}

# The nullable columns of the booking tables each shipped check view reads.
VIEW_COLUMNS = """
SELECT DISTINCT v.relname AS view, t.relname AS tab, a.attname AS col
FROM pg_rewrite AS r
JOIN pg_class AS v ON r.ev_class = v.oid
JOIN pg_depend AS d
    ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
    AND d.refclassid = 'pg_class'::regclass
JOIN pg_class AS t ON d.refobjid = t.oid
JOIN pg_attribute AS a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE v.relnamespace = 'guard'::regnamespace
    AND v.relname = ANY (guard.shipped_check_views())
    AND t.oid = ANY (
        ARRAY['public.calls', 'public.appointments', 'guard.booking_attempts']::regclass[]
    )
    AND NOT a.attnotnull
"""

# The nullable columns the commit-time check of an application's flag write reads (the column
# list its trigger fires on): judged by guard.call_flags_contradict, the second implementation of
# flags_contradict_appointments.
COMMIT_TIME_COLUMNS = """
SELECT 'check_flags_contradict_appointments' AS view, 'calls' AS tab, a.attname AS col
FROM pg_trigger AS g
JOIN pg_attribute AS a ON a.attrelid = g.tgrelid AND a.attnum = ANY (g.tgattr::int2[])
WHERE g.tgrelid = 'public.calls'::regclass AND g.tgname = 'guard_calls_check_flag_write'
    AND NOT a.attnotnull
"""

KNOWN_STATUSES = {"scheduled", "confirmed", "completed", "no_show", "cancelled"}
KNOWN_SOURCES = {"retell_webhook", "calcom_webhook", "manual", "import"}
KNOWN_OUTCOMES = {
    "appointment_booked",
    "appointment_cancelled",
    "creation_failed",
    "no_booking",
    "no_availability",
    "information_only",
    "caller_hung_up",
    "callback",
}
GRACE = dt.timedelta(seconds=30)  # grace_period_seconds
FAILURE_WINDOW = dt.timedelta(minutes=60)  # failure_window_minutes
A, B = 990001, 990002  # companies


@dataclass(frozen=True)
class World:
    """Rows of one case and the entity a check is asked about."""

    label: str
    entity_type: str
    entity_id: int
    calls: tuple[Row, ...] = ()
    appointments: tuple[Row, ...] = ()
    booking_attempts: tuple[Row, ...] = ()


@dataclass(frozen=True)
class Stored:
    """The rows as the database holds them, read back after the write."""

    now: dt.datetime
    calls: list[Row]
    appointments: list[Row]
    booking_attempts: list[Row]


def _call(cid: int, at: dt.datetime, **values: Any) -> Row:
    row: Row = {
        "id": cid,
        "company_id": A,
        "direction": "inbound",
        "customer_link_status": "unlinked",
        "session_outcome": "information_only",
        "appointment_made": False,
        "appointment_link_status": None,
        "appointment_linked_at": None,
        "booking_id": f"uid-{cid}",
        "booking_failed": False,
        "booking_failure_reason": None,
        "created_at": at,
        "updated_at": at,
    }
    row.update(values)
    return row


def _booked_call(cid: int, at: dt.datetime, **values: Any) -> Row:
    return _call(
        cid,
        at,
        appointment_made=True,
        appointment_link_status="linked",
        appointment_linked_at=at,
        session_outcome="appointment_booked",
        **values,
    )


def _appointment(aid: int, call_id: int | None, at: dt.datetime, **values: Any) -> Row:
    row: Row = {
        "id": aid,
        "company_id": A,
        "call_id": call_id,
        "calcom_v2_booking_id": f"uid-{aid}",
        "source": "retell_webhook",
        "status": "scheduled",
        "created_at": at,
        "updated_at": at,
        "deleted_at": None,
    }
    row.update(values)
    return row


def worlds(now: dt.datetime, nullable: set[tuple[str, str]]) -> dict[str, list[World]]:
    """Per check view, worlds it finds and worlds it does not (before any column is NULL).
    nullable: the (table, column) pairs that may be NULL here, for worlds only an adopted table
    can hold."""
    old = now - dt.timedelta(days=2)
    minute = now - dt.timedelta(minutes=1)
    # appointment times of the double-booking worlds: 10:00, 10:15, 10:30, 10:45, 11:00 tomorrow
    ten = (now + dt.timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    quarter, half, three_q, eleven = (ten + dt.timedelta(minutes=m) for m in (15, 30, 45, 60))
    c, a = 990100, 990100
    return {
        "check_call_without_direction": [
            World(
                "unknown direction", "call", c + 1, calls=(_call(c + 1, old, direction="sideways"),)
            ),
            World("outbound", "call", c + 2, calls=(_call(c + 2, old, direction="outbound"),)),
        ],
        "check_booked_without_appointment": [
            World(
                "claim; its appointments cancelled and soft-deleted",
                "call",
                c + 10,
                calls=(_booked_call(c + 10, old),),
                appointments=(
                    _appointment(a + 10, c + 10, old, status="cancelled"),
                    _appointment(a + 11, c + 10, old, deleted_at=old),
                ),
            ),
            World(
                "claim by outcome only",
                "call",
                c + 11,
                calls=(_call(c + 11, old, session_outcome="appointment_booked"),),
            ),
            World(
                "booked with its appointment",
                "call",
                c + 12,
                calls=(_booked_call(c + 12, old),),
                appointments=(_appointment(a + 12, c + 12, old),),
            ),
            World(
                "claim inside the grace period", "call", c + 13, calls=(_booked_call(c + 13, now),)
            ),
            World("no claim", "call", c + 14, calls=(_call(c + 14, old),)),
            *(
                # Its created_at NULL too, the claim's time is unknown.
                [
                    World(
                        "claim, last write's time unknown",
                        "call",
                        c + 15,
                        calls=(_booked_call(c + 15, old, updated_at=None),),
                    )
                ]
                if ("calls", "updated_at") in nullable
                else []
            ),
        ],
        "check_flags_contradict_appointments": [
            World(
                "active appointment, flags unbooked",
                "call",
                c + 20,
                calls=(_call(c + 20, old),),
                appointments=(_appointment(a + 20, c + 20, old),),
            ),
            World(
                "active appointment, booking failed",
                "call",
                c + 21,
                calls=(_booked_call(c + 21, old, booking_failed=True),),
                appointments=(_appointment(a + 21, c + 21, old),),
            ),
            World(
                "booked with its appointment",
                "call",
                c + 22,
                calls=(_booked_call(c + 22, old),),
                appointments=(_appointment(a + 22, c + 22, old),),
            ),
            World(
                "unbooked, its appointment cancelled",
                "call",
                c + 23,
                calls=(
                    _call(
                        c + 23,
                        old,
                        appointment_link_status="unlinked",
                        session_outcome="appointment_cancelled",
                    ),
                ),
                appointments=(_appointment(a + 23, c + 23, old, status="cancelled"),),
            ),
        ],
        "check_cross_tenant_link": [
            World(
                "appointment of another company",
                "appointment",
                a + 30,
                calls=(_call(c + 30, old),),
                appointments=(_appointment(a + 30, c + 30, old, company_id=B),),
            ),
            World(
                "appointment of its call's company",
                "appointment",
                a + 31,
                calls=(_booked_call(c + 31, old),),
                appointments=(_appointment(a + 31, c + 31, old),),
            ),
        ],
        "check_orphaned_voice_appointment": [
            World(
                "voice appointment without a call",
                "appointment",
                a + 40,
                calls=(_call(c + 40, old, booking_id=f"uid-{a + 40}"),),
                appointments=(_appointment(a + 40, None, old),),
            ),
            World(
                "manual appointment without a call",
                "appointment",
                a + 41,
                appointments=(_appointment(a + 41, None, old, source="manual"),),
            ),
            World(
                "voice appointment with its call",
                "appointment",
                a + 42,
                calls=(_booked_call(c + 42, old),),
                appointments=(_appointment(a + 42, c + 42, old),),
            ),
        ],
        "check_recent_booking_failure": [
            World(
                "failed a minute ago",
                "call",
                c + 50,
                calls=(
                    _call(
                        c + 50,
                        minute,
                        session_outcome="creation_failed",
                        booking_failed=True,
                        booking_failure_reason="calendar down",
                    ),
                ),
            ),
            World(
                "an old call whose attempt failed a minute ago",
                "call",
                c + 51,
                calls=(_call(c + 51, old, booking_failed=True),),
                booking_attempts=(
                    {
                        "company_id": A,
                        "call_id": c + 51,
                        "service_id": 1,
                        "idempotency_key": f"key-{c + 51}",
                        "state": "failed",
                        "created_at": minute,
                        "finished_at": minute,
                    },
                ),
            ),
            World(
                "failed two days ago",
                "call",
                c + 52,
                calls=(_call(c + 52, old, session_outcome="creation_failed", booking_failed=True),),
            ),
            World(
                "a recent call that did not fail", "call", c + 53, calls=(_call(c + 53, minute),)
            ),
        ],
        "check_booking_failure_anomaly": [
            World(
                "every recent call failed",
                "company",
                A,
                calls=tuple(
                    _call(c + 60 + n, minute, session_outcome="creation_failed") for n in range(6)
                ),
            ),
            World(
                "recent calls, none failed",
                "company",
                A,
                calls=tuple(_call(c + 70 + n, minute) for n in range(6)),
            ),
        ],
        "check_double_booked_call": [
            World(
                "booked twice",
                "appointment",
                a + 91,
                calls=(_booked_call(c + 90, old),),
                appointments=(_appointment(a + 90, c + 90, old), _appointment(a + 91, c + 90, old)),
            ),
            World(
                "booked once, the repeat cancelled",
                "appointment",
                a + 93,
                calls=(_booked_call(c + 92, old),),
                appointments=(
                    _appointment(a + 92, c + 92, old),
                    _appointment(a + 93, c + 92, old, status="cancelled"),
                ),
            ),
        ],
        "check_customer_double_booked": [
            World(
                "one customer at overlapping times",
                "appointment",
                a + 95,
                appointments=(
                    _appointment(a + 94, None, old, customer_id=1, starts_at=ten, ends_at=half),
                    _appointment(
                        a + 95, None, old, customer_id=1, starts_at=quarter, ends_at=three_q
                    ),
                ),
            ),
            World(
                "one customer at touching times",
                "appointment",
                a + 97,
                appointments=(
                    _appointment(a + 96, None, old, customer_id=2, starts_at=ten, ends_at=half),
                    _appointment(a + 97, None, old, customer_id=2, starts_at=half, ends_at=eleven),
                ),
            ),
        ],
        "check_unknown_value": [
            World(
                "unknown outcome",
                "call",
                c + 80,
                calls=(_call(c + 80, old, session_outcome="Appointment_Booked"),),
            ),
            World(
                "known outcome",
                "call",
                c + 81,
                calls=(_call(c + 81, old, session_outcome="callback"),),
            ),
            World(
                "unknown status and source",
                "appointment",
                a + 82,
                appointments=(
                    _appointment(a + 82, None, old, status="canceled", source="Retell_Webhook"),
                ),
            ),
            World(
                "known status and source",
                "appointment",
                a + 83,
                appointments=(_appointment(a + 83, None, old, source="manual"),),
            ),
        ],
    }


# The documented rules (docs/invariants.md), over the stored rows; each says how a NULL is read.


def _active(appointment: Row, call: Row) -> bool:
    # "An appointment is active unless status = 'cancelled' or deleted_at is set": a NULL status
    # is not 'cancelled' (and "an unknown status counts as active"); it counts only for a call of
    # its own company (I5: a cross-tenant link books nothing).
    return (
        appointment["call_id"] == call["id"]
        and appointment["company_id"] == call["company_id"]
        and appointment["deleted_at"] is None
        and appointment["status"] != "cancelled"
    )


def _has_active(s: Stored, call: Row) -> bool:
    return any(_active(a, call) for a in s.appointments)


def _at(value: Any) -> dt.datetime | None:
    # An adopted table keeps timestamp without time zone, stored in the session's zone (UTC).
    if value is None:
        return None
    assert isinstance(value, dt.datetime)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def rule_call_without_direction(s: Stored, w: World) -> bool:
    # I1: every call has direction inbound or outbound; a NULL direction is a call without one.
    (call,) = [c for c in s.calls if c["id"] == w.entity_id]
    return call["direction"] not in ("inbound", "outbound")


def rule_booked_without_appointment(s: Stored, w: World) -> bool:
    # I4: a claimed booking (appointment_made, or the outcome appointment_booked; a NULL claims
    # nothing) without an active appointment, past the grace period counted from the claim.
    (call,) = [c for c in s.calls if c["id"] == w.entity_id]
    claims = call["appointment_made"] is True or call["session_outcome"] == "appointment_booked"
    times = [t for t in (_at(call["created_at"]), _at(call["updated_at"])) if t is not None]
    # The grace period exempts a booking known to be in progress ("what the booking path needs",
    # docs/jobs.md); a claim whose time is unknown (NULL created_at and updated_at, as only an
    # adopted table holds them) is not known to be in progress: it is past the grace period.
    past_grace = not times or max(times) < s.now - GRACE
    return claims and past_grace and not _has_active(s, call)


def rule_flags_contradict(s: Stored, w: World) -> bool:
    # I3: flags that deny the call's active appointment. The rule is the commit-time check's,
    # guard.call_flags_contradict with has_active (asked of the database below); detection finds
    # the calls that have an active appointment (one without is booked_without_appointment's).
    (call,) = [c for c in s.calls if c["id"] == w.entity_id]
    if not _has_active(s, call):
        return False
    return (
        call["appointment_made"] is not True
        or call["appointment_link_status"] != "linked"
        or call["appointment_linked_at"] is None
        or call["session_outcome"] != "appointment_booked"
        or call["booking_failed"] is not False
    )


def rule_cross_tenant_link(s: Stored, w: World) -> bool:
    # I5: an appointment linked to a call of another company; a NULL call_id links to none.
    (appointment,) = [a for a in s.appointments if a["id"] == w.entity_id]
    return any(
        c["id"] == appointment["call_id"] and c["company_id"] != appointment["company_id"]
        for c in s.calls
    )


def rule_orphaned_voice_appointment(s: Stored, w: World) -> bool:
    # I6: an active voice-agent appointment (source retell_webhook, any case, blanks around it;
    # a NULL source is no voice agent's) without a call, past the grace period (a NULL
    # created_at: as for I4, not known to be in progress).
    (appointment,) = [a for a in s.appointments if a["id"] == w.entity_id]
    source = appointment["source"]
    created = _at(appointment["created_at"])
    return (
        source is not None
        and source.strip().lower() == "retell_webhook"
        and appointment["call_id"] is None
        and appointment["deleted_at"] is None
        and appointment["status"] != "cancelled"
        and (created is None or created < s.now - GRACE)
    )


def _failed(call: Row) -> bool:
    return call["session_outcome"] == "creation_failed" or call["booking_failed"] is True


def rule_recent_booking_failure(s: Stored, w: World) -> bool:
    # I7: a booking that failed in the last hour, by when it failed: the call's creation, or its
    # latest failed attempt's finish; a NULL time is not known to be in the last hour.
    (call,) = [c for c in s.calls if c["id"] == w.entity_id]
    since = s.now - FAILURE_WINDOW
    failed_attempts = [
        b for b in s.booking_attempts if b["call_id"] == call["id"] and b["state"] == "failed"
    ]
    created = _at(call["created_at"])
    by_creation = not failed_attempts and created is not None and created >= since
    by_attempt = any(
        (at := _at(b["finished_at"])) is not None and at >= since for b in failed_attempts
    )
    return _failed(call) and (by_creation or by_attempt)


def rule_booking_failure_anomaly(s: Stored, w: World) -> bool:
    # I7: at least anomaly_min_failures (5) failures among the company's calls of the last
    # failure_window_minutes, at a rate above anomaly_factor times the usual (none here: 0); a
    # call with a NULL created_at is in no window.
    since = s.now - FAILURE_WINDOW
    recent = [
        c
        for c in s.calls
        if c["company_id"] == w.entity_id
        and (t := _at(c["created_at"])) is not None
        and since <= t < s.now
    ]
    return sum(_failed(c) for c in recent) >= 5


def rule_unknown_value(s: Stored, w: World) -> bool:
    # I8: a status, source or outcome outside its known set. "NULL is not an unknown value".
    if w.entity_type == "call":
        (call,) = [c for c in s.calls if c["id"] == w.entity_id]
        return call["session_outcome"] is not None and call["session_outcome"] not in KNOWN_OUTCOMES
    (appointment,) = [a for a in s.appointments if a["id"] == w.entity_id]
    status, source = appointment["status"], appointment["source"]
    return (status is not None and status not in KNOWN_STATUSES) or (
        source is not None and source not in KNOWN_SOURCES
    )


def rule_double_booked_call(s: Stored, w: World) -> bool:
    # I10: an active appointment of a call that has an active appointment of a lower id. NULL:
    # no call (call_id NULL) books no call twice; a NULL status is active, as for I3.
    (appointment,) = [a for a in s.appointments if a["id"] == w.entity_id]
    if appointment["call_id"] is None or not _is_active(appointment):
        return False
    return any(
        b["call_id"] == appointment["call_id"] and b["id"] < appointment["id"] and _is_active(b)
        for b in s.appointments
    )


def _is_active(appointment: Row) -> bool:
    return appointment["deleted_at"] is None and appointment["status"] != "cancelled"


def rule_customer_double_booked(s: Stored, w: World) -> bool:
    # I10: an active appointment of a customer who has an active appointment of a lower id, in the
    # same company, at an overlapping time: [starts_at, ends_at), the instant starts_at without an
    # end; the same start always overlaps. A NULL customer, start or company is no double booking.
    (a,) = [x for x in s.appointments if x["id"] == w.entity_id]
    if a["customer_id"] is None or a["starts_at"] is None or a["company_id"] is None:
        return False
    if not _is_active(a):
        return False
    a_start, a_end = _at(a["starts_at"]), _at(a.get("ends_at") or a["starts_at"])
    for b in s.appointments:
        if b["id"] >= a["id"] or not _is_active(b) or b["starts_at"] is None:
            continue
        if b["customer_id"] != a["customer_id"] or b["company_id"] != a["company_id"]:
            continue
        b_start, b_end = _at(b["starts_at"]), _at(b.get("ends_at") or b["starts_at"])
        assert a_start and a_end and b_start and b_end
        if b_start == a_start or (b_start < a_end and a_start < b_end):
            return True
    return False


# Disagreements found and not fixed yet, each with the column whose NULL shows it. Each must still
# show (where its column may be NULL), so that the fix removes it from here.
KNOWN_GAPS: dict[str, tuple[str, str]] = {}

RULES: dict[str, Callable[[Stored, World], bool]] = {
    "check_call_without_direction": rule_call_without_direction,
    "check_booked_without_appointment": rule_booked_without_appointment,
    "check_flags_contradict_appointments": rule_flags_contradict,
    "check_cross_tenant_link": rule_cross_tenant_link,
    "check_orphaned_voice_appointment": rule_orphaned_voice_appointment,
    "check_recent_booking_failure": rule_recent_booking_failure,
    "check_booking_failure_anomaly": rule_booking_failure_anomaly,
    "check_unknown_value": rule_unknown_value,
    "check_double_booked_call": rule_double_booked_call,
    "check_customer_double_booked": rule_customer_double_booked,
}


def _columns_read(conn: Conn) -> dict[str, set[tuple[str, str]]]:
    read: dict[str, set[tuple[str, str]]] = {}
    for query in (VIEW_COLUMNS, COMMIT_TIME_COLUMNS):
        for row in conn.execute(query):
            read.setdefault(row["view"], set()).add((row["tab"], row["col"]))
    return read


def _write(conn: Conn, table: str, rows: tuple[Row, ...]) -> None:
    for row in rows:
        conn.execute(
            sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES ({})").format(
                sql.SQL(TABLES[table]),
                sql.SQL(", ").join(sql.Identifier(k) for k in row),
                sql.SQL(", ").join(sql.Placeholder() for _ in row),
            ),
            list(row.values()),
        )


def _adopt(conn: Conn, w: World) -> None:
    """Store the world's rows as old rows of an adopted database: triggers (and foreign keys)
    off, the booking tables' CHECKs added back NOT VALID."""
    checks = conn.execute(
        "SELECT conrelid::regclass::text AS tab, conname, pg_get_constraintdef(oid) AS def"
        " FROM pg_constraint WHERE contype = 'c'"
        " AND conrelid = ANY (ARRAY['public.calls', 'public.appointments']::regclass[])"
    ).fetchall()
    for c in checks:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.SQL(c["tab"]), sql.Identifier(c["conname"])
            )
        )
    conn.execute("SET LOCAL session_replication_role = replica")
    conn.execute(
        "INSERT INTO public.companies (id, name) VALUES (%s, 'null-a'), (%s, 'null-b')"
        " ON CONFLICT DO NOTHING",
        [A, B],
    )
    _write(conn, "calls", w.calls)
    _write(conn, "appointments", w.appointments)
    _write(conn, "booking_attempts", w.booking_attempts)
    conn.execute("SET LOCAL session_replication_role = origin")
    for c in checks:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} NOT VALID").format(
                sql.SQL(c["tab"]), sql.Identifier(c["conname"]), sql.SQL(c["def"])
            )
        )


def _stored(conn: Conn, now: dt.datetime, w: World) -> Stored:
    def rows(table: str, ids: list[int], key: str = "id") -> list[Row]:
        return conn.execute(
            sql.SQL("SELECT * FROM {} WHERE {} = ANY (%s)").format(
                sql.SQL(TABLES[table]), sql.Identifier(key)
            ),
            [ids],
        ).fetchall()

    return Stored(
        now,
        rows("calls", [r["id"] for r in w.calls]),
        rows("appointments", [r["id"] for r in w.appointments]),
        rows("booking_attempts", [r["call_id"] for r in w.booking_attempts], "call_id"),
    )


def _with_null(w: World, table: str, column: str) -> World:
    def nulled(rows: tuple[Row, ...]) -> tuple[Row, ...]:
        return tuple({**r, column: None} for r in rows)

    return World(
        f"{w.label}, {table}.{column} NULL",
        w.entity_type,
        w.entity_id,
        nulled(w.calls) if table == "calls" else w.calls,
        nulled(w.appointments) if table == "appointments" else w.appointments,
        nulled(w.booking_attempts) if table == "booking_attempts" else w.booking_attempts,
    )


def _judge(conn: Conn, view: str, w: World) -> list[str]:
    """Write the world, ask the view, check_call and the rule; what disagrees."""
    problems: list[str] = []
    try:
        with conn.transaction(force_rollback=True):
            now = conn.execute("SELECT now() AS now").fetchone()["now"]  # type: ignore[index]
            try:
                with conn.transaction():
                    _adopt(conn, w)
            except psycopg.errors.CheckViolation as refused:
                # Booking Guard's own journal keeps its CHECKs: refusing such a row is the rule.
                if not w.booking_attempts:
                    problems.append(f"{view}: {w.label}: refused: {refused}")
                return problems
            s = _stored(conn, now, w)
            found = conn.execute(
                sql.SQL(
                    "SELECT count(*) AS n FROM guard.{} WHERE entity_type = %s AND entity_id = %s"
                ).format(sql.Identifier(view)),
                [w.entity_type, w.entity_id],
            ).fetchone()
            assert found is not None
            by_view = found["n"] > 0
            by_rule = RULES[view](s, w)
            if by_view != by_rule:
                problems.append(
                    f"{view}: {w.label}: view finds {by_view}, documented rule {by_rule}"
                )
            if view == "check_flags_contradict_appointments":
                (call,) = s.calls
                agreed = conn.execute(
                    "SELECT guard.call_flags_contradict(appointment_made, appointment_link_status,"
                    " appointment_linked_at, session_outcome, booking_failed, %s) AS x"
                    " FROM public.calls WHERE id = %s",
                    [_has_active(s, call), call["id"]],
                ).fetchone()
                assert agreed is not None
                if _has_active(s, call) and bool(agreed["x"]) != by_view:
                    problems.append(
                        f"{view}: {w.label}: view finds {by_view},"
                        f" commit-time rule call_flags_contradict {agreed['x']}"
                    )
            if w.entity_type == "call":
                per_call = conn.execute(
                    "SELECT offending FROM guard.check_call(%s) WHERE check_id = %s",
                    [w.entity_id, view.removeprefix("check_")],
                ).fetchone()
                offending = per_call is not None and (per_call["offending"] or 0) > 0
                if offending != by_view:
                    problems.append(
                        f"{view}: {w.label}: view finds {by_view}, check_call {per_call}"
                    )
    except psycopg.Error as error:
        problems.append(f"{view}: {w.label}: error {error.sqlstate}: {error}")
    return problems


@pytest.fixture(params=["fresh", "adopted"])
def target(request: pytest.FixtureRequest) -> Iterator[Conn]:
    url: str = request.getfixturevalue("db_url" if request.param == "fresh" else "legacy_db_url")
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        yield conn


def test_every_nullable_column_a_check_reads_is_null_on_offending_and_clean_rows(
    target: Conn,
) -> None:
    read = _columns_read(target)
    now = target.execute("SELECT now() AS now").fetchone()["now"]  # type: ignore[index]
    nullable = {
        (r["tab"], r["col"])
        for r in target.execute(
            "SELECT c.relname AS tab, a.attname AS col FROM pg_attribute AS a"
            " JOIN pg_class AS c ON a.attrelid = c.oid"
            " WHERE a.attrelid = ANY (ARRAY['public.calls', 'public.appointments']::regclass[])"
            " AND a.attnum > 0 AND NOT a.attisdropped AND NOT a.attnotnull"
        )
    }
    cases = worlds(now, nullable)
    assert read, "the catalog walk found no nullable column any check reads"
    # Every check reading a nullable column has worlds, both found and not found.
    assert sorted(set(read) - set(cases)) == [], (
        "a check view reads nullable columns but has no worlds"
    )
    problems: list[str] = []
    generated = 0
    for view, columns in sorted(read.items()):
        found_both = set()
        for base in cases[view]:
            # The world as it is: the rule and the view agree before anything is NULL.
            problems += _judge(target, view, base)
            for table, column in sorted(columns):
                problems += _judge(target, view, _with_null(base, table, column))
                generated += 1
            with target.transaction(force_rollback=True):
                _adopt(target, base)
                found_both.add(RULES[view](_stored(target, now, base), base))
        assert found_both == {True, False}, f"{view}: the worlds are not both offending and clean"
    expected_gaps = {gap for gap, column in KNOWN_GAPS.items() if column in nullable}
    assert expected_gaps <= set(problems), (
        f"fixed, remove from KNOWN_GAPS: {sorted(expected_gaps - set(problems))}"
    )
    problems = [p for p in problems if p not in expected_gaps]
    assert not problems, f"{len(problems)} of {generated} generated rows disagree:\n" + "\n".join(
        problems
    )
