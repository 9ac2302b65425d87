"""The original incident's mix of bad rows, end to end: every injected problem is detected, no
legitimate row is flagged, reconcile fixes what is fixable, the rest waits in the review queue,
the constraints can then be validated, and no row is lost."""

from __future__ import annotations

import psycopg

from guard.demo import sample_data
from guard.schema.migrate import Migrator
from guard.schema.validate import validate

LEGACY_UNTIL = "0004_guard_tables"


def _offending(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, int]:
    rows = conn.execute(
        "SELECT check_id, offending FROM guard.run_detection('-infinity', NULL) WHERE offending > 0"
    ).fetchall()
    conn.commit()
    return {str(rule): int(str(n)) for rule, n in rows}


def test_incident_mix_is_detected_fixed_or_queued(empty_db_url: str) -> None:
    with Migrator(empty_db_url) as migrator:
        migrator.apply(to=LEGACY_UNTIL)
        with psycopg.connect(empty_db_url) as conn:
            loaded = sample_data.load(conn)
        migrator.apply()
    problems = loaded.problems

    with psycopg.connect(empty_db_url) as conn:
        calls, appointments = conn.execute(
            "SELECT (SELECT count(*) FROM calls), (SELECT count(*) FROM appointments)"
        ).fetchone() or (0, 0)
        found = _offending(conn)
        # Every injected problem is found, and nothing else: an orphaned appointment also makes
        # its call look like a phantom booking until the two are linked.
        assert found == {
            "booked_without_appointment": problems["phantom_booking"]
            + problems["orphaned_appointment"],
            "call_without_direction": problems["missing_direction"],
            "flags_contradict_appointments": problems["flag_mismatch"]
            + problems["contradicting_flags"],
            "orphaned_voice_appointment": problems["orphaned_appointment"],
        }
        # Legitimate look-alikes carry no alert.
        flagged_lookalikes = conn.execute(
            "SELECT count(*) FROM guard.alerts AS al"
            " JOIN appointments AS a ON al.entity_type = 'appointment' AND al.entity_id = a.id"
            " WHERE a.source = 'manual' OR a.status = 'cancelled'"
        ).fetchone()
        assert flagged_lookalikes == (0,)
        # The look-alikes stay unflagged however long the database lives: with no grace period
        # left (every claim as old as it will ever need to be) the findings are the same.
        conn.execute("UPDATE guard.settings SET value = '0' WHERE key = 'grace_period_seconds'")
        conn.commit()
        assert _offending(conn) == found, "time passing turns no look-alike into a finding"
        conn.execute("UPDATE guard.settings SET value = '30' WHERE key = 'grace_period_seconds'")
        conn.commit()

        for _ in range(20):
            done = conn.execute("SELECT sum(affected) FROM guard.reconcile()").fetchone()
            conn.commit()
            if not done or not done[0]:
                break
        queued = conn.execute(
            "SELECT reason, count(*) FROM guard.review_items GROUP BY reason"
        ).fetchall()
        assert dict(queued) == {"calendar_booking_failure": problems["phantom_booking"]}

    report = validate(empty_db_url, pause_ratio=0)
    assert report.complete, report.constraints
    assert report.corrected["I2_customer_link"] == problems["incomplete_customer_link"]

    with psycopg.connect(empty_db_url) as conn:
        assert _offending(conn) == {}, "nothing offends any more"
        after = conn.execute(
            "SELECT (SELECT count(*) FROM calls), (SELECT count(*) FROM appointments)"
        ).fetchone()
        assert after == (calls, appointments), "no row is lost"
        audited = conn.execute("SELECT count(*) FROM guard.correction_audit").fetchone()
        assert audited and audited[0] >= sum(problems.values()) - problems["booking_failure"]
