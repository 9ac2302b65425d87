"""A realistic booking data set with the original incident's kinds of bad rows mixed in, drawn in
the database by queries.SAMPLE_SERVICES to SAMPLE_APPOINTMENTS (seeded: every load the same)."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg

from guard import queries
from guard.connection import scalar

COMPANIES = ("Praxis Dr. Weber", "Salon Bella", "AutoService Nord")
SERVICES = ("Erstberatung", "Kontrolltermin", "Behandlung", "Nachsorge")
CUSTOMERS_PER_COMPANY = 150
CALLS_PER_COMPANY = 1200
# Appointments a receptionist entered by hand: no call, and that is fine.
MANUAL_APPOINTMENTS_PER_COMPANY = 40
DAYS = 30
SEED = 0.20261121

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


@dataclass
class LoadSummary:
    companies: int = 0
    calls: int = 0
    appointments: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    legitimate_lookalikes: Counter[str] = field(default_factory=Counter)


def load(conn: psycopg.Connection[Any]) -> LoadSummary:
    """Insert the data set in one transaction. Refuses to load twice."""
    with conn.transaction(), conn.cursor() as cur:
        if scalar(conn, queries.CALL_COUNT):
            raise ValueError("the database already holds calls; sample data is loaded only once")
        if scalar(conn, queries.IS_SUPERUSER):  # the old application's rows, as it wrote them
            cur.execute(queries.SET_REPLICA_ROLE)
        cur.execute(queries.SET_SEED, (SEED,))
        companies = [
            row[0] for row in cur.execute(queries.INSERT_SAMPLE_COMPANIES, (list(COMPANIES),))
        ]
        params = {
            "companies": companies,
            "services": list(SERVICES),
            "customers": CUSTOMERS_PER_COMPANY,
            "calls": CALLS_PER_COMPANY,
            "manual": MANUAL_APPOINTMENTS_PER_COMPANY,
            "days": DAYS,
            "problems": list(PROBLEM_RATES),
            # each problem's upper bound of a uniform draw in [0, 1)
            "uppers": [round(upper, 8) for upper in itertools.accumulate(PROBLEM_RATES.values())],
        }
        for statement in (
            queries.SAMPLE_SERVICES,
            queries.SAMPLE_CUSTOMERS,
            queries.SAMPLE_COMPANY_TABLE,
            queries.SAMPLE_CALL_TABLE,
            queries.CALLS_INSERT_HEAD + queries.SAMPLE_CALLS,
            queries.SAMPLE_APPOINTMENTS,
        ):
            cur.execute(statement, params)
        counts = dict(cur.execute(queries.SAMPLE_KINDS).fetchall())
    summary = LoadSummary(len(companies), counts.pop("calls"), counts.pop("appointments"))
    for kind, count in counts.items():
        found = summary.problems if kind in PROBLEM_RATES else summary.legitimate_lookalikes
        found[kind] = count
    return summary
