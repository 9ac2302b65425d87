"""Flag derivation under concurrent writers, with real commits (READ COMMITTED).

Each scenario interleaves two transactions on one call so that one of them decides from a
snapshot that misses the other's uncommitted work. The derived flags must still be right after
both commit: every path locks the call row before deciding."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.support.queries import fetch_one


def _setup(url: str, appointments: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        conn.execute("INSERT INTO calls (id, company_id, retell_call_id) VALUES (1, 1, 'c1')")
        for n in range(1, appointments + 1):
            conn.execute(
                "INSERT INTO appointments (id, company_id, call_id) VALUES (%s, 1, 1)", (n,)
            )


def _made(url: str) -> tuple[bool, int]:
    made, active = fetch_one(
        url,
        "SELECT c.appointment_made, (SELECT count(*) FROM appointments AS a"
        " WHERE a.call_id = 1 AND a.deleted_at IS NULL AND a.status <> 'cancelled')"
        " FROM calls AS c WHERE c.id = 1",
    )
    return bool(made), int(active)


def _in_thread(work: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # reported by the test
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def _finished(thread: threading.Thread, errors: list[BaseException], who: str) -> None:
    """The work `_in_thread` started ends within 10 s, without an error."""
    thread.join(timeout=10)
    assert not thread.is_alive(), f"{who} never finished"
    assert not errors, errors


_LOCK_WAIT = ("active", "Lock")
# the statement ran (its error, if any, is the test's to report)
_RAN = (("idle in transaction", "Client"), ("idle in transaction (aborted)", "Client"))


def _wait_for_backend(url: str, pid: int, *accepted: tuple[str, str]) -> None:
    """Until the backend `pid` is in one of the `accepted` (state, wait event type) pairs: a
    fixed pause could end before a loaded machine has even sent its statement."""
    deadline = time.monotonic() + 30
    with psycopg.connect(url, autocommit=True) as observer:
        while True:
            row = observer.execute(
                # psycopg sends BEGIN first, on its own: idle after it is not the statement run
                "SELECT state, wait_event_type FROM pg_stat_activity"
                " WHERE pid = %s AND query <> 'BEGIN'",
                (pid,),
            ).fetchone()
            if row in accepted:
                return
            assert time.monotonic() < deadline, f"backend {pid} stayed {row}, not {accepted}"
            time.sleep(0.01)


def _interleave(url: str, first: str, second: str) -> None:
    """`first` runs and stays uncommitted; `second` runs in another thread (it may block on the
    call's row lock); then `first` commits, then `second` commits."""
    with psycopg.connect(url) as conn_a:
        conn_a.execute(first)
        conn_b: Any = psycopg.connect(url)
        try:
            thread, errors = _in_thread(lambda: conn_b.execute(second))
            _wait_for_backend(url, conn_b.info.backend_pid, _LOCK_WAIT, *_RAN)
            conn_a.commit()
            _finished(thread, errors, "the second writer")
            conn_b.commit()
        finally:
            conn_b.close()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(
            "DELETE FROM appointments WHERE id = 1",
            "INSERT INTO appointments (id, company_id, call_id) VALUES (9, 1, 1)",
            id="unbook-then-book",
        ),
        pytest.param(
            "INSERT INTO appointments (id, company_id, call_id) VALUES (9, 1, 1)",
            "DELETE FROM appointments WHERE id = 1",
            id="book-then-unbook",
        ),
        pytest.param(
            "UPDATE appointments SET status = 'cancelled' WHERE id = 1",
            "UPDATE appointments SET deleted_at = NULL, status = 'scheduled' WHERE id = 2",
            id="cancel-one-restore-other",
        ),
        pytest.param(
            "DELETE FROM appointments WHERE id = 1",
            "UPDATE calls SET appointment_made = TRUE WHERE id = 1",
            id="unbook-then-application-claims",
        ),
    ],
)
def test_concurrent_writers_leave_correct_flags(db_url: str, first: str, second: str) -> None:
    _setup(db_url, appointments=1)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO appointments (id, company_id, call_id, deleted_at) VALUES (2, 1, 1, now())"
        )
    _interleave(db_url, first, second)
    made, active = _made(db_url)
    assert made == (active > 0), f"appointment_made={made} with {active} active appointment(s)"


def test_two_deletes_of_the_last_two_appointments(db_url: str) -> None:
    _setup(db_url, appointments=2)
    _interleave(
        db_url, "DELETE FROM appointments WHERE id = 1", "DELETE FROM appointments WHERE id = 2"
    )
    assert _made(db_url) == (False, 0)


# The paths that lock the calls of several appointments: calls 1 and 2, one appointment each.
PATHS_LOCKING_SEVERAL_CALLS = [
    pytest.param(
        "SELECT guard.refresh_call_flags(ARRAY[2, 1]::bigint[], 'lock order')",
        id="refresh_call_flags",
    ),
    pytest.param("DELETE FROM appointments WHERE call_id IN (1, 2)", id="appointment-delete"),
    pytest.param(
        "UPDATE appointments SET status = 'cancelled' WHERE call_id IN (1, 2)",
        id="appointment-update",
    ),
]


def _calls_with_an_appointment(url: str, calls: int) -> None:
    """Calls 1 to `calls`; calls 1 and 2 with one appointment each."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        for call_id in range(1, calls + 1):
            conn.execute(
                "INSERT INTO calls (id, company_id, retell_call_id) VALUES (%s, 1, %s)",
                (call_id, f"c{call_id}"),
            )
        conn.execute(
            "INSERT INTO appointments (id, company_id, call_id) VALUES (1, 1, 1), (2, 1, 2)"
        )


@pytest.mark.parametrize("statement", PATHS_LOCKING_SEVERAL_CALLS)
def test_paths_that_lock_several_calls_lock_them_in_id_order(db_url: str, statement: str) -> None:
    """A writer that waits for call 1 holds no lock on call 2 yet: the transaction holding call 1
    can still take call 2 and commit. Locked in another order, the writer would hold call 2 while
    waiting for call 1, and the two transactions would deadlock."""
    _calls_with_an_appointment(db_url, 2)
    with psycopg.connect(db_url) as holder:
        holder.execute("SELECT FROM calls WHERE id = 1 FOR UPDATE")
        writer: Any = psycopg.connect(db_url)
        try:
            thread, errors = _in_thread(lambda: writer.execute(statement))
            _wait_for_backend(db_url, writer.info.backend_pid, _LOCK_WAIT)
            # Longer than deadlock_timeout (1 s): a deadlock is found before this runs out.
            holder.execute("SET LOCAL lock_timeout = '3s'")
            holder.execute("SELECT FROM calls WHERE id = 2 FOR NO KEY UPDATE")
            holder.commit()
            _finished(thread, errors, "the writer")
            writer.commit()
        finally:
            writer.close()


@pytest.mark.parametrize("statement", PATHS_LOCKING_SEVERAL_CALLS)
def test_paths_that_lock_several_calls_lock_no_other_call(db_url: str, statement: str) -> None:
    """The calls of the appointments written are locked, no other: a writer never waits for a
    transaction that holds a call its statement does not touch."""
    _calls_with_an_appointment(db_url, 3)
    with psycopg.connect(db_url) as holder, psycopg.connect(db_url) as writer:
        holder.execute("SELECT FROM calls WHERE id = 3 FOR UPDATE")
        writer.execute("SET LOCAL lock_timeout = '1s'")
        writer.execute(statement)
        writer.commit()
        holder.rollback()
