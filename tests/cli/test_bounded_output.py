"""Bounded CLI output: review items and alerts whose details (a rollback context) weigh megabytes
are listed by real `guard` processes in bounded memory and output. Each large value is cut in
PostgreSQL the way the dispatcher cuts it (top-level scalars, strings to 200 characters, and
`details_truncated` with the full size and the command that prints it whole), rows are streamed
from a server-side cursor, and `guard review show ID --full` / `guard alerts show ID --full`
print one whole. bench/cli_output.py measures the same with 300 items of 2 MB."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.peak_rss import run_measured

GUARD = str(Path(sys.executable).with_name("guard"))

# A rollback context of about `mb` MB: a reason, a long raw answer and nested records of the
# calendar exchange. md5 text: TOAST cannot compress it away.
_CONTEXT = """jsonb_build_object(
    'reason', 'calendar_booking_failure',
    'still_booked', false,
    'raw_response', (SELECT string_agg(md5(a || '/' || r), '')
                     FROM generate_series(1, %(chunks)s) AS r),
    'records', (SELECT jsonb_agg(jsonb_build_object('seq', r, 'body', md5(r || ':' || a)))
                FROM generate_series(1, 1000) AS r)
)"""
ITEMS = 20
ITEM_MB = 2.0
# Alerts' details are masked (guard.mask_phone_numbers_json) before they are cut, which takes
# seconds per megabyte: smaller ones, still far over the 16 kB bound, keep the test short.
ALERT_MB = 0.25


def _seed(url: str) -> tuple[list[int], list[int]]:
    """ITEMS review items with contexts of about ITEM_MB MB, 3 alerts with contexts of about
    ALERT_MB MB, one of them with a message of 1 MB."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO public.companies (id, name) VALUES (1, 'A')")
        items = conn.execute(
            "INSERT INTO guard.review_items (company_id, call_id, reason, details)"
            f" SELECT 1, 9000 + a, 'calendar_booking_failure', {_CONTEXT}"
            " FROM generate_series(1, %(n)s) AS a RETURNING id",
            {"chunks": int(ITEM_MB * 2**20 / 32), "n": ITEMS},
        ).fetchall()
        alerts = conn.execute(
            "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id,"
            " severity, message, details)"
            " SELECT 'big:' || a, 'booking_rolled_back', 1, 'call', 9000 + a, 'high',"
            " CASE WHEN a = 1 THEN repeat('a booking failed; ', 60000) ELSE 'rolled back' END,"
            f" {_CONTEXT} FROM generate_series(1, 3) AS a RETURNING id",
            {"chunks": int(ALERT_MB * 2**20 / 32)},
        ).fetchall()
    return [int(r[0]) for r in items], [int(r[0]) for r in alerts]


def _guard(url: str, *args: str) -> tuple[int, bytes, str, float]:
    """`guard ARGS` as a child: exit code, stdout, stderr and its own peak RSS in MB."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        code, peak = run_measured([GUARD, "--database-url", url, *args], dict(os.environ), out, err)
        out.seek(0)
        err.seek(0)
        return code, out.read(), err.read().decode(errors="replace"), peak


def _cut(details: dict[str, Any], command: str, mb: float = ITEM_MB) -> None:
    """An excerpt as the dispatcher makes it, pointing at `command`."""
    assert details["reason"] == "calendar_booking_failure"
    assert details["still_booked"] is False
    assert len(details["raw_response"]) == 200
    assert "records" not in details, "nested values stay in the database"
    assert details["details_truncated"]["bytes"] > mb * 1_000_000
    assert details["details_truncated"]["read_more"] == command


@pytest.mark.slow
def test_lists_of_multi_mb_details_are_bounded_and_say_where_the_rest_is(db_url: str) -> None:
    items, alerts = _seed(db_url)
    figures: list[str] = []

    def run(*args: str) -> bytes:
        started = time.monotonic()
        code, out, err, peak = _guard(db_url, *args)
        figures.append(
            f"guard {' '.join(args)}: peak RSS {peak:.0f} MB, output {len(out):,} B,"
            f" {time.monotonic() - started:.1f} s"
        )
        assert code == 0, err
        assert peak < 150, f"guard {' '.join(args)}: peak RSS {peak:.0f} MB"
        return out

    out = run("review", "list", "--json", "--all")
    assert len(out) < 1_000_000, f"{len(out):,} bytes for {ITEMS} items"
    listed = json.loads(out)
    assert [item["id"] for item in listed] == items
    for item in listed:
        _cut(item["details"], f"guard review show {item['id']} --full")

    out = run("review", "list", "--all")  # the table, in pages
    assert len(out) < 3_000_000 and out.count(b"guard review show") == ITEMS

    out = run("review", "claim", "--limit", str(ITEMS), "--json")
    assert len(out) < 1_000_000 and len(json.loads(out)) == ITEMS

    out = run("alerts", "list", "--json", "--all")
    listed = json.loads(out)
    assert len(out) < 100_000 and sorted(a["id"] for a in listed) == alerts
    [long] = [a["message"] for a in listed if a["id"] == alerts[0]]
    assert long.endswith(
        f"… (1080000 characters; the rest: guard alerts show {alerts[0]} --full)"
    ), long[-100:]
    assert len(long) < 17_000

    shown = json.loads(run("alerts", "show", str(alerts[0]), "--json"))
    _cut(shown["details"], f"guard alerts show {alerts[0]} --full", ALERT_MB)
    assert len(shown["message"]) < 17_000

    # One whole, on request.
    whole = json.loads(run("review", "show", str(items[0]), "--json", "--full"))
    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "SELECT details FROM guard.review_items WHERE id = %s", (items[0],)
        ).fetchone()
    assert stored is not None and whole["details"] == stored[0]
    whole = json.loads(run("alerts", "show", str(alerts[0]), "--json", "--full"))
    assert len(whole["message"]) == 1_080_000 and len(whole["details"]["records"]) == 1000
    shown = json.loads(run("review", "show", str(items[0]), "--json"))
    _cut(shown["details"], f"guard review show {items[0]} --full")
    print("\n".join(figures))


def test_small_details_are_printed_whole(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO public.companies (id, name) VALUES (1, 'A')")
        [(item,)] = conn.execute(
            "INSERT INTO guard.review_items (company_id, call_id, reason, details)"
            """ VALUES (1, 1, 'other', '{"nested": {"a": [1, 2]}, "x": "y"}') RETURNING id"""
        ).fetchall()
    code, out, err, _ = _guard(db_url, "review", "show", str(item), "--json")
    assert code == 0, err
    assert json.loads(out)["details"] == {"nested": {"a": [1, 2]}, "x": "y"}
