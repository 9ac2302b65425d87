"""`guard check`, `guard reconcile`, `guard review` from the command line."""

from __future__ import annotations

import json
import os
import re

import psycopg
import pytest
from click.testing import CliRunner

from tests.support.cli import all_commands, cli
from tests.support.seeds import seed_phantom


def _seed(url: str) -> None:
    """Two phantom bookings as a legacy load left them, and one call without a direction."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        conn.execute("ALTER TABLE calls DROP CONSTRAINT guard_calls_direction_check")
        conn.execute("ALTER TABLE calls ALTER COLUMN direction DROP NOT NULL")
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute(
                "INSERT INTO calls (id, company_id, retell_call_id, direction,"
                " customer_link_status, session_outcome, appointment_made, created_at, updated_at)"
                " VALUES (1, 1, 'c1', 'inbound', 'unlinked', 'appointment_booked', TRUE,"
                "         now() - interval '10 minutes', now() - interval '10 minutes'),"
                "        (2, 1, 'c2', 'inbound', 'unlinked', 'appointment_booked', TRUE,"
                "         now() - interval '10 minutes', now() - interval '10 minutes'),"
                "        (3, 1, 'c3', NULL, 'unlinked', 'information_only', FALSE,"
                "         now() - interval '10 minutes', now() - interval '10 minutes')"
            )


def test_check_reconcile_review_story(db_url: str) -> None:
    _seed(db_url)
    code, out, _ = cli(db_url, "check", "--json")
    assert code == 1, "something offends: exit 1"
    found = {row["check"]: row["offending"] for row in json.loads(out)}
    assert found["booked_without_appointment"] == 2
    assert found["call_without_direction"] == 1
    rules = {row["check"]: row["rule"] for row in json.loads(out)}
    assert rules["booked_without_appointment"] == "I4_booked_outcome", "each check names its rule"

    code, out, _ = cli(db_url, "reconcile", "--dry-run", "--json")
    assert code == 0
    dry = json.loads(out)
    assert dry["dry_run"] is True and dry["actions"]["rollback_phantom_booking"] == 2

    code, out, _ = cli(db_url, "reconcile")
    assert code == 0 and "rollback_phantom_booking" in out

    # The phantoms are fixed and the direction filled; what remains are the two rolled-back
    # bookings, now visible as booking failures (I7: failures must not go unnoticed).
    code, out, _ = cli(db_url, "check", "--json")
    summary = {row["check"]: row for row in json.loads(out)}
    assert code == 1
    assert {check for check, row in summary.items() if row["offending"]} == {
        "recent_booking_failure"
    }
    assert summary["booked_without_appointment"]["resolved"] == 2
    assert summary["call_without_direction"]["resolved"] == 1

    code, out, _ = cli(db_url, "review", "list", "--json")
    items = json.loads(out)
    assert [(i["call_id"], i["reason"], i["priority"]) for i in items] == [
        (1, "calendar_booking_failure", 2),
        (2, "calendar_booking_failure", 2),
    ]
    code, out, _ = cli(db_url, "review", "claim", "--actor", "ann", "--json")
    [claimed] = json.loads(out)
    assert (claimed["call_id"], claimed["status"], claimed["claimed_by"]) == (1, "claimed", "ann")

    code, out, _ = cli(db_url, "review", "resolve", str(claimed["id"]), "--note", "rebooked")
    assert code == 0 and "resolved" in out
    code, _, err = cli(db_url, "review", "resolve", str(claimed["id"]), "--note", "again")
    assert code == 1
    assert (
        err
        == f"guard: error: review item {claimed['id']} is not open (unknown or already closed)\n"
    )

    other = items[1]["id"]
    code, out, _ = cli(
        db_url, "review", "dismiss", str(other), "--note", "test call", "--false-positive", "--json"
    )
    assert code == 0 and json.loads(out)[0]["status"] == "dismissed"
    code, out, _ = cli(db_url, "review", "claim")
    assert out.strip() == "Nothing to claim: the queue is empty."


def _set_thresholds(url: str, check: str, warn: int | None, error: int | None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE guard.checks SET warn_above = %s, error_above = %s WHERE id = %s",
            (warn, error, check),
        )


def test_check_prints_each_checks_outcome_against_its_thresholds(db_url: str) -> None:
    _seed(db_url)  # 2 phantom bookings, 1 call without a direction
    _set_thresholds(db_url, "booked_without_appointment", warn=1, error=5)
    _set_thresholds(db_url, "call_without_direction", warn=None, error=0)
    _set_thresholds(db_url, "cross_tenant_link", warn=10, error=None)

    code, out, _ = cli(db_url, "check", "--json")

    assert code == 1, "something offends: exit 1, as without thresholds"
    rows = {row["check"]: row for row in json.loads(out)}
    assert {check: row["outcome"] for check, row in rows.items() if row["outcome"]} == {
        "booked_without_appointment": "warn",
        "call_without_direction": "fail",
        "cross_tenant_link": "pass",
    }
    assert rows["booked_without_appointment"]["thresholds"] == {
        "warn_above": 1.0,
        "error_above": 5.0,
        "unit": "count",
    }
    assert rows["recent_booking_failure"]["thresholds"] is None
    with psycopg.connect(db_url) as conn:
        recorded: dict[str, str] = dict(
            conn.execute(
                "SELECT check_id, outcome FROM guard.detection_runs WHERE outcome IS NOT NULL"
            ).fetchall()
        )
    assert recorded == {check: row["outcome"] for check, row in rows.items() if row["outcome"]}

    # the same pass in a table: each judged check with its outcome and its thresholds
    _set_thresholds(db_url, "booked_without_appointment", warn=5, error=None)
    code, out, _ = cli(db_url, "check")
    assert code == 1
    [line] = [line for line in out.splitlines() if "booked_without_appointment" in line]
    assert re.search(r"\bok\W+pass\W+warn above 5 rows", line), out
    [line] = [line for line in out.splitlines() if "call_without_direction" in line]
    assert re.search(r"\bok\W+fail\W+error above 0 rows", line), out

    # --all's batches judge no thresholds, and say so
    code, out, err = cli(db_url, "check", "--all", "--json")
    assert {row["outcome"] for row in json.loads(out)} == {None}
    assert "thresholds judge the windowed pass only" in err


def test_check_one_call(db_url: str) -> None:
    _seed(db_url)
    code, out, _ = cli(db_url, "check", "--call", "3", "--json")
    assert code == 1
    offending = {row["check"] for row in json.loads(out) if row["offending"]}
    assert offending == {"call_without_direction"}


def test_check_on_a_database_without_guard(empty_db_url: str) -> None:
    code, _, err = cli(empty_db_url, "check")
    assert code == 1
    database = empty_db_url.rsplit("/", 1)[1]
    assert re.fullmatch(
        rf"guard: error: database 127\.0\.0\.1:\d+/{database} has no Booking Guard schema:"
        r" run `guard db apply`\n",
        err,
    ), err


def _seed_old_phantoms(url: str, count: int, days_old: int) -> None:
    """Phantom bookings loaded from an old system: far older than the detection window."""
    for g in range(1, count + 1):
        seed_phantom(url, 1000 + g, minutes_ago=(days_old + g) * 24 * 60)


def test_check_all_finds_what_the_window_misses(db_url: str) -> None:
    _seed_old_phantoms(db_url, count=12, days_old=30)
    code, out, err = cli(db_url, "check", "--json")
    found = {row["check"]: row["offending"] for row in json.loads(out)}
    assert (code, found["booked_without_appointment"]) == (0, 0), "older than the window"
    assert "last 60 minutes only" in err and "guard check --all" in err

    code, out, err = cli(db_url, "check", "--all", "--batch-days", "5", "--json")
    summary = {row["check"]: row for row in json.loads(out)}
    assert code == 1
    assert summary["booked_without_appointment"]["offending"] == 12
    assert summary["booked_without_appointment"]["opened"] == 12
    progress = [line for line in err.splitlines() if line.startswith("batch ")]
    assert len(progress) >= 3 and progress[-1].startswith(f"batch {len(progress)}/{len(progress)}:")
    batch_line = re.compile(
        r"batch \d+/\d+: [a-z_]+, \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z onwards, (\d+) offending"
    )
    assert all(batch_line.fullmatch(line) for line in progress), progress
    per_batch = [int(m[1]) for line in progress if (m := batch_line.fullmatch(line))]
    assert sum(per_batch) >= 12, progress
    rechecks = [line for line in err.splitlines() if line.startswith("open alerts ")]
    assert rechecks and re.fullmatch(
        r"open alerts 1/\d+: \d+ re-checked, 0 resolved", rechecks[0]
    ), rechecks
    with psycopg.connect(db_url) as conn:
        [(open_alerts,)] = conn.execute(
            "SELECT count(*) FROM guard.alerts"
            " WHERE check_id = 'booked_without_appointment' AND status = 'open'"
        ).fetchall()
    assert open_alerts == 12

    # Fixed meanwhile: the next plain check resolves the old alerts (it re-checks open alerts).
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "UPDATE calls SET appointment_made = FALSE, session_outcome = 'information_only'"
            " WHERE id > 1000"
        )
    code, out, err = cli(db_url, "check", "--all", "--json")
    summary = {row["check"]: row for row in json.loads(out)}
    assert summary["booked_without_appointment"]["offending"] == 0
    assert summary["booked_without_appointment"]["resolved"] == 12
    resolved = [
        int(m[1])
        for line in err.splitlines()
        if (m := re.fullmatch(r"open alerts \d+/\d+: \d+ re-checked, (\d+) resolved", line))
    ]
    assert sum(resolved) == 12, err


def test_check_all_and_call_exclude_each_other(db_url: str) -> None:
    code, _, err = cli(db_url, "check", "--all", "--call", "1")
    assert code == 2 and err.startswith("guard: error: --all and --call exclude each other")


def test_reconcile_says_when_it_hit_its_cap(db_url: str) -> None:
    _seed_old_phantoms(db_url, count=5, days_old=1)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE guard.settings SET value = '3' WHERE key = 'reconcile_batch_limit'")
    code, out, err = cli(db_url, "reconcile", "--json")
    result = json.loads(out)
    assert code == 0 and (result["cap"], result["capped"]) == (3, True)
    assert sum(result["actions"].values()) == 3
    assert err == (
        "guard: note: stopped at the cap of 3 rows (reconcile_batch_limit); more may remain:"
        " run `guard reconcile` again to continue\n"
    )
    code, out, err = cli(db_url, "reconcile", "--json")
    assert json.loads(out)["actions"]["rollback_phantom_booking"] == 2
    assert json.loads(out)["capped"] is False and err == ""


def _claim_as_nameless_user(url: str) -> tuple[int, str, str]:
    """`guard review claim --json` in a forked child that has become uid 54321, a user with no
    name (no passwd entry, no USER or LOGNAME), as in many containers. Every module the command
    needs is loaded before the fork: the child may not read this interpreter's files."""
    main = all_commands()
    cli(url, "review", "list")
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        try:
            os.setuid(54321)
            for name in ("USER", "LOGNAME", "LNAME", "USERNAME"):
                os.environ.pop(name, None)
            result = CliRunner().invoke(main, ["--database-url", url, "review", "claim", "--json"])
            answer = [result.exit_code, result.stdout, result.stderr]
            os.write(writing, json.dumps(answer).encode())
        finally:
            os._exit(0)
    os.close(writing)
    with os.fdopen(reading) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    code, out, err = json.loads(text)
    return code, out, err


def test_review_claims_as_uid_n_when_the_os_user_has_no_name(db_url: str) -> None:
    """--actor's default is the OS user, `uid<n>` when it has no name (getpass raises there)."""
    if os.geteuid() != 0:
        pytest.fail("this test becomes another uid: run it as root (CI does)")
    _seed(db_url)
    assert cli(db_url, "reconcile")[0] == 0
    code, out, err = _claim_as_nameless_user(db_url)
    assert (code, err) == (0, "")
    [claimed] = json.loads(out)
    assert (claimed["status"], claimed["claimed_by"]) == ("claimed", "uid54321")
