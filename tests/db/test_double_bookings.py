"""Double bookings written the way the design's code writes them, with real concurrent commits
and no lock in the client: six writers book one call for one customer at once. Every repeat is
found by the call's check (guard.check_call, which the booking path runs after a booking) and by
a detection pass, with nothing hard-coded: the expected alerts are the active appointments the
writers committed, less the first."""

from __future__ import annotations

import threading

import psycopg

from tests.support.queries import execute

WRITERS = 6


def _book_at_once(url: str) -> None:
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def book(n: int) -> None:
        try:
            with psycopg.connect(url) as conn:
                start.wait(timeout=30)
                conn.execute(
                    "INSERT INTO appointments (company_id, call_id, customer_id,"
                    " calcom_v2_booking_id, source, status, starts_at, ends_at)"
                    " VALUES (1, 1, 1, %s, 'retell_webhook', 'scheduled',"
                    " '2026-12-01 10:00Z'::timestamptz + %s * interval '1 minute',"
                    " '2026-12-01 10:30Z'::timestamptz + %s * interval '1 minute')",
                    (f"uid-{n}", n, n),
                )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=book, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []


def _repeats(conn: psycopg.Connection[tuple[object, ...]]) -> set[int]:
    """The committed active appointments of call 1 but the first: the double bookings."""
    rows = conn.execute(
        "SELECT id FROM appointments WHERE call_id = 1"
        " AND guard.is_active_appointment(status, deleted_at) ORDER BY id OFFSET 1"
    ).fetchall()
    return {int(str(r[0])) for r in rows}


def _open(conn: psycopg.Connection[tuple[object, ...]], check: str) -> set[int]:
    rows = conn.execute(
        "SELECT entity_id FROM guard.alerts WHERE check_id = %s AND status = 'open'", (check,)
    ).fetchall()
    return {int(str(r[0])) for r in rows}


def test_concurrent_writers_double_booking_a_call_are_all_found(db_url: str) -> None:
    execute(
        db_url,
        "INSERT INTO companies (id, name) VALUES (1, 'A')",
        "INSERT INTO customers (id, company_id, name) VALUES (1, 1, 'Ann')",
        (
            "INSERT INTO calls (id, company_id, retell_call_id, direction)"
            " VALUES (1, 1, 'c1', 'inbound')"
        ),
    )
    _book_at_once(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        repeats = _repeats(conn)
        assert len(repeats) == WRITERS - 1, "every writer committed: no lock stopped any"
        found = {
            r[0]: r[1]
            for r in conn.execute("SELECT check_id, offending FROM guard.check_call(1)").fetchall()
        }
        assert found["double_booked_call"] == len(repeats)
        assert found["customer_double_booked"] == len(repeats)  # 30-minute slots a minute apart
        assert _open(conn, "double_booked_call") == repeats
        assert _open(conn, "customer_double_booked") == repeats
        conn.execute(
            "UPDATE appointments SET status = 'cancelled' WHERE id = ANY(%s)", (list(repeats),)
        )
        passed: dict[str, int] = dict(
            conn.execute(
                "SELECT check_id, offending FROM guard.run_detection('-infinity', NULL)"
                " WHERE check_id IN ('double_booked_call', 'customer_double_booked')"
            ).fetchall()
        )
        assert passed == {"double_booked_call": 0, "customer_double_booked": 0}
        assert _open(conn, "double_booked_call") == set()
