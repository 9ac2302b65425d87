"""A rollback leaves the application able to write: the definitions the rolled-back migration's
tables served go back with it, not only at the next release.

Rolling back 0095_detection_queue dropped the queue while the calls trigger's function still
wrote to it: every write of a call's outcome or flags failed until the next `guard db apply`.
"""

from __future__ import annotations

import psycopg

from guard.db.migrate import Migrator

BELOW_THE_QUEUE = "0090_rule_company_stages"
WITH_THE_QUEUE = "0095_detection_queue"


def _end_a_call_without_an_appointment(url: str) -> None:
    """What the application does when a call ends without a booking: the write the calls
    trigger queues for detection."""
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO public.companies (id, name) VALUES (1, 'A')")
        conn.execute(
            "INSERT INTO public.calls (id, company_id, retell_call_id, direction,"
            " customer_link_status, status) VALUES (1, 1, 'c1', 'inbound', 'unlinked', 'ongoing')"
        )
        conn.execute(
            "UPDATE public.calls SET status = 'ended', session_outcome = 'no_booking' WHERE id = 1"
        )


def test_the_calls_trigger_works_after_the_queue_is_rolled_back(db_url: str) -> None:
    with Migrator(db_url) as migrator:
        undone = migrator.rollback(to=BELOW_THE_QUEUE)
    assert WITH_THE_QUEUE in undone
    _end_a_call_without_an_appointment(db_url)  # raised UndefinedTable before the fix
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT to_regclass('guard.detection_queue')").fetchone() == (None,)
        assert conn.execute("SELECT status FROM public.calls WHERE id = 1").fetchone() == ("ended",)


def test_the_queue_fills_again_after_apply(db_url: str) -> None:
    with Migrator(db_url) as migrator:
        migrator.rollback(to=BELOW_THE_QUEUE)
        migrator.apply()
    _end_a_call_without_an_appointment(db_url)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT call_id FROM guard.detection_queue").fetchall() == [(1,)]
