"""A realistic booking data set with the original incident's kinds of bad rows mixed in."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from guard import queries

COMPANIES = ("Praxis Dr. Weber", "Salon Bella", "AutoService Nord")
SERVICES = ("Erstberatung", "Kontrolltermin", "Behandlung", "Nachsorge")
CALLS_PER_COMPANY = 1200
DAYS = 30

# Share of calls given each kind of problem (the rest are consistent).
PROBLEM_RATES = {
    "phantom_booking": 0.04,  # says booked and appointment_made, no appointment exists
    "flag_mismatch": 0.03,  # appointment exists, flags say nothing was made
    "contradicting_flags": 0.02,  # appointment_made and booking_failed at once
    "missing_direction": 0.07,
    "incomplete_customer_link": 0.04,  # customer set, no link status / confidence
    "orphaned_appointment": 0.03,  # voice-agent appointment with call_id NULL, uid matches call
    "booking_failure": 0.03,  # creation_failed: visible only if someone looks
}


# How each flag problem looks: (session_outcome, appointment_made, booking_failed, appointment)
# where appointment is None (none exists), "linked" (to the call) or "orphaned" (call_id NULL).
_PROBLEM_SHAPES: dict[str, tuple[str, bool, bool, str | None]] = {
    "phantom_booking": ("appointment_booked", True, False, None),
    "flag_mismatch": ("appointment_booked", False, False, "linked"),
    "contradicting_flags": ("appointment_booked", True, True, "linked"),
    "orphaned_appointment": ("appointment_booked", False, False, "orphaned"),
    "booking_failure": ("creation_failed", False, True, None),
}


@dataclass
class LoadSummary:
    companies: int = 0
    customers: int = 0
    services: int = 0
    calls: int = 0
    appointments: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    legitimate_lookalikes: Counter[str] = field(default_factory=Counter)


def load(conn: psycopg.Connection[Any], *, seed: int = 20261121) -> LoadSummary:
    """Insert the data set in one transaction. Refuses to load twice."""
    rng = random.Random(seed)  # noqa: S311 - sample data, not security
    now = datetime.now(UTC).replace(microsecond=0)
    summary = LoadSummary()
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(queries.CALL_COUNT)
        existing = cur.fetchone()
        if existing and existing[0]:
            raise ValueError("the database already holds calls; sample data is loaded only once")
        cur.execute(queries.IS_SUPERUSER)
        superuser = cur.fetchone()
        if superuser and superuser[0]:
            cur.execute(queries.SET_REPLICA_ROLE)
        for company_name in COMPANIES:
            _load_company(cur, rng, now, company_name, summary)
    return summary


def _phone(rng: random.Random) -> str:
    return f"+49 30 {rng.randrange(1000000, 9999999)}"


def _load_company(
    cur: psycopg.Cursor[Any],
    rng: random.Random,
    now: datetime,
    name: str,
    summary: LoadSummary,
) -> None:
    cur.execute(queries.INSERT_SAMPLE_COMPANY, (name,))
    company_id = _one(cur)
    summary.companies += 1
    service_ids = []
    for service in SERVICES:
        cur.execute(
            queries.INSERT_SAMPLE_SERVICE,
            (company_id, service, rng.choice((15, 30, 45, 60))),
        )
        service_ids.append(_one(cur))
        summary.services += 1
    customer_ids = []
    for number in range(150):
        cur.execute(
            queries.INSERT_SAMPLE_CUSTOMER,
            (company_id, f"Kunde {company_id}-{number}", _phone(rng)),
        )
        customer_ids.append(_one(cur))
        summary.customers += 1

    calls: list[tuple[Any, ...]] = []
    appointments: list[tuple[Any, ...]] = []
    for number in range(CALLS_PER_COMPANY):
        created = now - timedelta(seconds=rng.randrange(600, DAYS * 86400))
        call_ref = f"call_{company_id}_{number:05d}"
        problem = _draw_problem(rng)
        if problem:
            summary.problems[problem] += 1
        call, appointment = _call_with_outcome(
            rng, company_id, call_ref, created, problem, customer_ids, service_ids, summary
        )
        calls.append(call)
        if appointment is not None:
            appointments.append(appointment)
    # No booking claimed in the last seconds: inside its grace period it would look legitimate
    # to the detection right after the load and become a phantom minutes later, so the demo's
    # look-alikes would not stay unflagged however long its database lives.
    # Appointments a receptionist entered by hand: no call, and that is fine.
    for _ in range(40):
        start = now + timedelta(days=rng.randrange(1, 20), hours=rng.randrange(8, 17))
        appointments.append(
            _appointment_row(
                company_id,
                None,
                rng.choice(customer_ids),
                rng.choice(service_ids),
                None,
                "manual",
                "scheduled",
                start,
                now - timedelta(days=rng.randrange(1, 20)),
            )
        )
        summary.legitimate_lookalikes["manual_appointment_without_call"] += 1

    with cur.copy(queries.COPY_SAMPLE_CALLS) as copy:
        for row in calls:
            copy.write_row(row)
    summary.calls += len(calls)
    appointments = _no_customer_twice_at_once(appointments)
    cur.execute(queries.SAMPLE_CALL_IDS, (company_id,))
    call_ids = dict(cur.fetchall())
    with cur.copy(queries.COPY_SAMPLE_APPOINTMENTS) as copy:
        for row in appointments:
            call_ref = row[1]
            copy.write_row((row[0], call_ids.get(call_ref) if call_ref else None, *row[2:]))
    summary.appointments += len(appointments)


def _no_customer_twice_at_once(appointments: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The appointments with each one that would overlap an earlier active appointment of its
    customer moved to the next free half hour: a double booking is no look-alike (check
    customer_double_booked, I10), and random slots would make a few by chance."""
    taken: dict[Any, list[tuple[datetime, datetime]]] = {}
    placed = []
    for given in appointments:
        row = given
        customer, status, start, end = row[2], row[6], row[7], row[8]
        if customer is not None and status != "cancelled":
            busy = taken.setdefault(customer, [])
            while any(
                (start < b_end and b_start < end) or start == b_start for b_start, b_end in busy
            ):
                start, end = start + timedelta(minutes=30), end + timedelta(minutes=30)
            busy.append((start, end))
            row = (*row[:7], start, end, *row[9:])
        placed.append(row)
    return placed


def _draw_problem(rng: random.Random) -> str | None:
    roll = rng.random()
    for problem, rate in PROBLEM_RATES.items():
        if roll < rate:
            return problem
        roll -= rate
    return None


def _call_with_outcome(
    rng: random.Random,
    company_id: int,
    call_ref: str,
    created: datetime,
    problem: str | None,
    customer_ids: list[int],
    service_ids: list[int],
    summary: LoadSummary,
) -> tuple[tuple[Any, ...], tuple[Any, ...] | None]:
    customer = rng.choice(customer_ids) if rng.random() < 0.85 else None
    direction = (
        None if problem == "missing_direction" else rng.choice(("inbound",) * 9 + ("outbound",))
    )
    booking_uid = f"bk_{company_id}_{call_ref[-5:]}_{rng.randrange(10**6):06d}"
    start = created + timedelta(days=rng.randrange(1, 14), hours=rng.randrange(1, 8))
    service = rng.choice(service_ids)

    def appointment(status: str = "scheduled", linked: bool = True) -> tuple[Any, ...]:
        return _appointment_row(
            company_id,
            call_ref if linked else None,
            customer,
            service,
            booking_uid,
            "retell_webhook",
            status,
            start,
            created + timedelta(seconds=rng.randrange(5, 90)),
        )

    incomplete_link = problem == "incomplete_customer_link"

    def call(outcome: str, made: bool, uid: str | None, failed: bool = False) -> tuple[Any, ...]:
        linked = customer is not None and not incomplete_link
        booked = outcome == "appointment_booked" and made
        return (
            company_id,
            call_ref,
            _phone(rng),
            "+49 30 5550000",
            "ended",
            direction,
            customer,
            "linked" if linked else (None if customer is not None else "unlinked"),
            "phone_match" if linked else None,
            100.0 if linked else None,
            created if linked else None,
            outcome,
            made,
            "linked" if booked else None,
            created + timedelta(seconds=30) if booked else None,
            uid,
            None,
            booked and not failed,
            failed,
            "calendar_error: slot no longer available" if failed else None,
            failed,
            created,
            created,
        )

    shape = _PROBLEM_SHAPES.get(problem or "")
    if shape is not None:
        outcome, made, failed, appointment_kind = shape
        made_call = call(outcome, made, booking_uid if appointment_kind or made else None, failed)
        if appointment_kind is None:
            return made_call, None
        return made_call, appointment(linked=appointment_kind == "linked")
    if incomplete_link and customer is None:
        customer = rng.choice(customer_ids)
    roll = rng.random()
    if roll < 0.45:  # booked, consistent
        return call("appointment_booked", True, booking_uid), appointment()
    if roll < 0.50:  # booked then cancelled, consistent
        summary.legitimate_lookalikes["cancelled_appointment"] += 1
        return call("appointment_cancelled", False, booking_uid), appointment(status="cancelled")
    outcome = rng.choice(("information_only", "no_availability", "caller_hung_up", "callback"))
    return call(outcome, False, None), None


def _appointment_row(
    company_id: int,
    call_ref: str | None,
    customer: int | None,
    service: int,
    booking_uid: str | None,
    source: str,
    status: str,
    start: datetime,
    created: datetime,
) -> tuple[Any, ...]:
    return (
        company_id,
        call_ref,
        customer,
        service,
        booking_uid,
        source,
        status,
        start,
        start + timedelta(minutes=30),
        created,
        created,
    )


def _one(cur: psycopg.Cursor[Any]) -> int:
    row = cur.fetchone()
    assert row is not None
    value: int = row[0]
    return value
