"""Rows a test starts from, written the way the application or a legacy load wrote them."""

from __future__ import annotations

from typing import Any

import psycopg


def seed_phantom(url: str, call_id: int = 1, *, minutes_ago: int = 10) -> None:
    """Company 1 (unless there) and a call that claims a booking it has no appointment for,
    `minutes_ago` old (past the grace period: detection raises an alert for it), written as a
    legacy application wrote it: the write-time checks, which would refuse it, bypassed."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A') ON CONFLICT DO NOTHING")
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute(
                "INSERT INTO calls (id, company_id, retell_call_id, direction,"
                " customer_link_status, session_outcome, appointment_made,"
                " appointment_link_status, created_at, updated_at)"
                " VALUES (%s, 1, %s, 'inbound', 'unlinked', 'appointment_booked', TRUE, 'linked',"
                " now() - make_interval(mins => %s), now() - make_interval(mins => %s))",
                (call_id, f"c{call_id}", minutes_ago, minutes_ago),
            )


def seed_calls_to_book(url: str, service_id: int, calls: int, *, customer: bool = False) -> None:
    """Company 1 with service `service_id` and calls 1 to `calls` in progress; with `customer`,
    customer 1, whom every call is linked to."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        if customer:
            conn.execute("INSERT INTO customers (id, company_id, name) VALUES (1, 1, 'Ann')")
        conn.execute(
            "INSERT INTO services (id, company_id, name) VALUES (%s, 1, 'Beratung')", (service_id,)
        )
        conn.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, customer_id, session_outcome)"
            " SELECT g, 1, 'c' || g, %s, 'in_progress' FROM generate_series(1, %s) AS g",
            (1 if customer else None, calls),
        )


def register_own_check(conn: psycopg.Connection[Any], name: str) -> None:
    """The view guard.check_`name` registered as a low-severity check `name` of the DBA's rule
    own_rule (which the test has inserted)."""
    conn.execute(
        "SELECT guard.register_check(%s, 'own_rule', %s, 'low', 'An own check.')",
        (name, f"check_{name}"),
    )
