"""The invariant checker: reads committed data only (its own autocommit connection, one
REPEATABLE READ snapshot for all rules) and returns every offending row per invariant."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

ACTIVE = "(a.deleted_at IS NULL AND a.status IS DISTINCT FROM 'cancelled')"

# One query per invariant; each returns the offending rows (empty = the invariant holds).
CHECKS: dict[str, str] = {
    "I1": """
        SELECT c.id, c.direction
        FROM public.calls AS c
        WHERE c.direction IS NULL OR c.direction NOT IN ('inbound', 'outbound')
        ORDER BY c.id
    """,
    "I2": """
        SELECT c.id, c.customer_id, c.from_number, c.customer_link_status,
               c.customer_linked_at, c.customer_link_method, c.customer_link_confidence
        FROM public.calls AS c
        WHERE NOT coalesce(
                CASE
                    WHEN c.customer_id IS NOT NULL
                        THEN c.customer_link_status = 'linked'
                        AND c.customer_linked_at IS NOT NULL
                        AND c.customer_link_method IS NOT NULL
                        AND c.customer_link_confidence IS NOT NULL
                    ELSE c.customer_link_status IN ('unlinked', 'anonymous')
                END,
                FALSE
            )
            OR coalesce(c.customer_link_confidence NOT BETWEEN 0 AND 100, FALSE)
        ORDER BY c.id
    """,
    "I3": f"""
        WITH active AS (
            SELECT a.call_id, array_agg(a.id ORDER BY a.id) AS active_appointments
            FROM public.appointments AS a
            WHERE a.call_id IS NOT NULL AND {ACTIVE}
            GROUP BY a.call_id
        )
        SELECT c.id, c.appointment_made, c.appointment_link_status, c.appointment_linked_at,
               c.booking_failed, c.session_outcome, act.active_appointments
        FROM public.calls AS c
        LEFT JOIN active AS act ON act.call_id = c.id
        WHERE c.appointment_made <> (act.call_id IS NOT NULL)
            OR coalesce(c.appointment_link_status = 'linked', FALSE) <> c.appointment_made
            OR (c.appointment_made AND (c.appointment_linked_at IS NULL OR c.booking_failed))
        ORDER BY c.id
    """,
    # Only one direction: a booked outcome without an appointment is allowed (grace period).
    "I4": f"""
        SELECT c.id, c.session_outcome, array_agg(a.id ORDER BY a.id) AS active_appointments
        FROM public.calls AS c
        JOIN public.appointments AS a ON a.call_id = c.id AND {ACTIVE}
        WHERE c.session_outcome IS DISTINCT FROM 'appointment_booked'
        GROUP BY c.id, c.session_outcome
        ORDER BY c.id
    """,
    "I5": """
        SELECT a.id AS appointment_id, a.company_id, a.call_id, c.company_id AS call_company_id
        FROM public.appointments AS a
        LEFT JOIN public.calls AS c ON c.id = a.call_id
        WHERE a.company_id IS NULL
            OR (a.call_id IS NOT NULL AND c.company_id IS DISTINCT FROM a.company_id)
        ORDER BY a.id
    """,
}


def check_invariants(conn: psycopg.Connection[Any]) -> dict[str, list[dict[str, Any]]]:
    """Violations per invariant over the whole database, as committed; {} when all hold.

    ``conn`` must be an autocommit connection that never writes: every rule is read in one
    REPEATABLE READ transaction, so all of them judge the same committed state."""
    violations: dict[str, list[dict[str, Any]]] = {}
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for rule, query in CHECKS.items():
            cur.execute(query)
            rows = cur.fetchall()
            if rows:
                violations[rule] = rows
    return violations


def snapshot(conn: psycopg.Connection[Any]) -> dict[str, list[dict[str, Any]]]:
    """The committed calls and appointments, for failure messages."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cur.execute(
            "SELECT id, company_id, direction, customer_id, customer_link_status,"
            " appointment_made, appointment_link_status,"
            " appointment_linked_at IS NOT NULL AS linked_at_set, session_outcome,"
            " booking_failed, booking_confirmed FROM public.calls ORDER BY id"
        )
        calls = cur.fetchall()
        cur.execute(
            "SELECT id, company_id, call_id, status, deleted_at IS NOT NULL AS deleted"
            " FROM public.appointments ORDER BY id"
        )
        appointments = cur.fetchall()
    return {"calls": calls, "appointments": appointments}
