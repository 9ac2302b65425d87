"""What a new user meets after `make demo`, command by command, on a real PostgreSQL with real
logins: `guard alerts`, `guard review list` (what it leaves out, the closing fields, details as
JSON text), `guard report` of a day that has not ended, `guard jobs status`'s next due time, and
README's demo section against migrations/."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from guard.ops.cron import next_fire
from tests.security.conftest import bind, login_roles, seeded_url  # noqa: F401 (fixtures)
from tests.support.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def _alerts(url: str, company: int, count: int, check: str = "booking_rolled_back") -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type,"
            " entity_id, severity, message, details)"
            " SELECT %s || ':call:' || g, %s, %s, 'call', g, 'high',"
            " 'customer +49 30 1234567 called back', '{\"caller\": \"+49 30 1234567\"}'"
            " FROM generate_series(1, %s) AS g",
            (check, check, company, count),
        )


def test_alerts_list_filters_limits_and_says_what_it_left_out(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B')")
    _alerts(db_url, 1, 7)
    _alerts(db_url, 2, 3, check="call_without_direction")

    code, out, err = cli(db_url, "alerts", "list", "--limit", "5")
    assert code == 0, err
    assert "showing 5 of 10 (use --limit N or --all for more)" in out
    assert out.count("booking_rolled_back") + out.count("call_without_direction") == 5
    assert "1234567" not in out and "****567" in out, "phone numbers are masked"

    code, out, _ = cli(db_url, "alerts", "list", "--all")
    assert code == 0 and "showing" not in out
    code, out, _ = cli(db_url, "alerts", "list", "--company", "2", "--json")
    listed = json.loads(out)
    assert {a["company_id"] for a in listed} == {2} and len(listed) == 3
    assert {a["rule_id"] for a in listed} == {"I1_call_direction"}, "each alert names its rule"
    code, out, err = cli(db_url, "alerts", "list", "--check", "booking_rolled_back", "--json")
    assert code == 0 and len(json.loads(out)) == 7 and err == ""
    code, out, err = cli(
        db_url, "alerts", "list", "--check", "booking_rolled_back", "--limit", "2", "--json"
    )
    assert len(json.loads(out)) == 2, "JSON stays a list"
    assert err == "guard: note: showing 2 of 7 (use --limit N or --all for more)\n"

    # resolved and all
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(
            "UPDATE guard.alerts SET status = 'resolved', resolved_at = now(),"
            " resolution = 'fixed' WHERE company_id = 2"
        )
    assert json.loads(cli(db_url, "alerts", "list", "--json")[1]).__len__() == 7
    resolved = json.loads(cli(db_url, "alerts", "list", "--status", "resolved", "--json")[1])
    assert len(resolved) == 3 and all(a["resolved_at"] for a in resolved)
    assert len(json.loads(cli(db_url, "alerts", "list", "--status", "all", "--json")[1])) == 10

    code, _, err = cli(db_url, "alerts", "list", "--check", "no_such_check")
    assert code == 2 and "no check 'no_such_check'" in err


def test_alerts_show_one_alert(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("INSERT INTO companies (id, name) VALUES (1, 'Praxis A')")
    _alerts(db_url, 1, 1)
    with psycopg.connect(db_url, autocommit=True) as admin:
        (alert_id,) = admin.execute("SELECT id FROM guard.alerts").fetchone() or (0,)
    code, out, _ = cli(db_url, "alerts", "show", str(alert_id), "--json")
    shown = json.loads(out)
    assert code == 0
    assert shown["check_id"] == "booking_rolled_back" and shown["rule_id"] == "I7_booking_failures"
    assert shown["company_name"] == "Praxis A" and shown["check_description"]
    assert shown["details"] == {"caller": "+49 30 ****567"}
    code, out, _ = cli(db_url, "alerts", "show", str(alert_id))
    assert code == 0 and '{"caller":"+49 30 ****567"}' in out, "details as compact JSON text"
    code, _, err = cli(db_url, "alerts", "show", str(alert_id + 1000))
    assert code == 1 and "does not exist or is not visible" in err


def test_alerts_of_another_company_stay_invisible(
    seeded_url: str,  # noqa: F811
    login_roles: dict[str, str],  # noqa: F811
) -> None:
    login = login_roles["reporting"]
    bind(seeded_url, login, 1)
    url = make_conninfo(seeded_url, user=login)
    code, out, err = cli(url, "alerts", "list", "--status", "all", "--json")
    assert code == 0, err
    assert {a["company_id"] for a in json.loads(out)} == {1}
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        other = admin.execute("SELECT min(id) FROM guard.alerts WHERE company_id = 2").fetchone()
    assert other and other[0]
    code, _, err = cli(url, "alerts", "show", str(other[0]))
    assert code == 1 and "not visible to this login" in err


def test_review_list_says_what_it_leaves_out_and_shows_closing(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        admin.execute(
            "INSERT INTO calls (id, company_id, retell_call_id)"
            " SELECT g, 1, 'c' || g FROM generate_series(1, 60) AS g"
        )
        for call in range(1, 61):
            admin.execute(
                "SELECT guard.enqueue_review(1, %s, NULL, 'other', %s::jsonb)",
                (call, json.dumps({"reason": "calendar returned 503", "n": call})),
            )
    code, out, _ = cli(db_url, "review", "list")
    assert code == 0
    assert "showing 50 of 60 (use --limit N or --all for more)" in out
    assert '{"n":1,"reason":"calendar returned 503"}' in out, "details as compact JSON"
    assert "{'reason'" not in out, "never a Python dict"
    code, out, _ = cli(db_url, "review", "list", "--all")
    assert "showing" not in out and '{"n":60,' in out

    item = json.loads(cli(db_url, "review", "list", "--limit", "1", "--json")[1])[0]["id"]
    code, _, err = cli(
        db_url,
        "review",
        "dismiss",
        str(item),
        "--note",
        "not a problem",
        "--false-positive",
        "--actor",
        "ann",
    )
    assert code == 0, err
    code, out, _ = cli(db_url, "review", "list", "--status", "dismissed", "--json")
    [closed] = json.loads(out)
    assert closed["note"] == "not a problem" and closed["false_positive"] is True
    assert closed["closed_by"] == "ann" and closed["closed_at"]
    code, out, _ = cli(db_url, "review", "list", "--status", "dismissed")
    header = next(line for line in out.splitlines() if "closed_at" in line)
    for column in ("closed_at", "closed_by", "false_positive", "note"):
        assert column in header
    assert "not a problem" in out and "ann" in out
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z", out), "closed_at in the one format"


def _utc_today(url: str) -> date:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT (now() AT TIME ZONE 'UTC')::date").fetchone()
    assert row is not None
    today: date = row[0]
    return today


def _stored_days(url: str) -> list[date]:
    with psycopg.connect(url) as conn:
        return [
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT report_date FROM guard.daily_reports ORDER BY 1"
            ).fetchall()
        ]


def test_report_of_a_day_that_has_not_ended_is_printed_never_stored(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        admin.execute("INSERT INTO calls (id, company_id, retell_call_id) VALUES (1, 1, 'a')")
    today = _utc_today(db_url)
    for day in (today, date(2030, 1, 1)):
        code, out, err = cli(db_url, "report", "--date", day.isoformat())
        assert code == 0, err
        assert f"daily report for {day} (UTC)" in out
        assert err == (
            f"guard: note: {day} (UTC) has not ended: this report is computed now and not"
            " stored (stored reports cover whole days)\n"
        )
        assert _stored_days(db_url) == []
    code, out, _ = cli(db_url, "report", "--date", today.isoformat(), "--json")
    printed = json.loads(out)
    assert printed["stored"] is False and printed["total"]["total_calls"] == 1, "today's call"
    assert _stored_days(db_url) == []

    yesterday = today - timedelta(days=1)
    code, out, err = cli(db_url, "report", "--date", yesterday.isoformat(), "--json")
    assert code == 0 and err == "" and json.loads(out)["stored"] is True
    assert _stored_days(db_url) == [yesterday]

    # and the database itself refuses to store an unfinished day, whoever calls it
    with psycopg.connect(db_url, autocommit=True) as admin:
        try:
            admin.execute("SELECT count(*) FROM guard.daily_report('2030-01-01')")
        except psycopg.errors.InvalidParameterValue as error:
            assert "has not ended" in str(error)
        else:
            raise AssertionError("guard.daily_report stored a day that has not ended")


def test_jobs_status_next_due_follows_the_cron_schedule(db_url: str) -> None:
    code, out, err = cli(db_url, "jobs", "status", "--json")
    assert code == 0, err
    jobs = {job["job_name"]: job for job in json.loads(out)}
    with psycopg.connect(db_url) as conn:
        now: datetime = (conn.execute("SELECT now()").fetchone() or (None,))[0]
    report = jobs["daily_report"]
    assert report["last_started_at"] is None
    due = datetime.fromisoformat(report["next_due_at"])
    # never run: the next 02:00 UTC, not "now"
    assert due.astimezone(UTC).time().isoformat() == "02:00:00"
    assert now < due <= now + timedelta(days=1)
    assert due == next_fire("0 2 * * *", now)
    detect = datetime.fromisoformat(jobs["detect"]["next_due_at"])
    assert detect.minute % 5 == 0 and now < detect <= now + timedelta(minutes=5)

    # after a run, the next time of the schedule after that run
    code, _, err = cli(db_url, "jobs", "run", "--once", "--job", "retention")
    assert code == 0, err
    retention = {j["job_name"]: j for j in json.loads(cli(db_url, "jobs", "status", "--json")[1])}[
        "retention"
    ]
    started = datetime.fromisoformat(retention["last_started_at"])
    assert datetime.fromisoformat(retention["next_due_at"]) == next_fire("30 3 * * *", started)
    code, out, _ = cli(db_url, "jobs", "status")
    line = next(line for line in out.splitlines() if "daily_report" in line)
    assert due.astimezone(UTC).strftime("%Y-%m-%d 02:00:00Z") in line


def test_readme_demo_section_matches_migrations() -> None:
    """README's demo section names no migration that does not exist and states no count of
    them that would go stale."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## What `make demo` shows") : text.index("## The `guard` command")]
    existing = {
        p.name.removesuffix(".sql")
        for p in (ROOT / "migrations").glob("*.sql")
        if not p.name.endswith(".rollback.sql")
    }
    named = set(re.findall(r"\b\d{4}[a-z]?_[a-z0-9_]+", section))
    assert named <= existing, named - existing
    assert not re.search(r"\b\d+ migrations\b|applied \d+\b", section), "a count goes stale"
    assert "<every migration in migrations/" in section
    assert ".venv/bin/guard" in section and "source .venv/bin/activate" in section
