"""`guard report` on the sample data: the default day is yesterday (UTC), a day not stored yet is
generated and stored, the JSON adds up to the database's own counts, and the text and Markdown
forms carry the report's parts."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import psycopg
from click.testing import CliRunner

from guard.cli import main
from guard.cli.demo import LEGACY_UNTIL
from guard.demo import sample_data
from guard.schema.migrate import Migrator
from tests.support.queries import fetch_one


def _created_on(url: str, table: str, day: date) -> int:
    """How many rows of public.`table` were created on `day` (UTC)."""
    (count,) = fetch_one(
        url,
        f"SELECT count(*) FROM public.{table} WHERE created_at >= %s::date::timestamp AT TIME"
        " ZONE 'UTC' AND created_at < (%s::date + 1)::timestamp AT TIME ZONE 'UTC'",
        (day, day),
    )
    return int(count)


def test_report_of_the_sample_data(empty_db_url: str) -> None:
    db_url = empty_db_url
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    # the sample data plays a legacy database, loaded before the invariants (as guard demo does)
    with Migrator(db_url) as migrator:
        migrator.apply(to=LEGACY_UNTIL)
        with psycopg.connect(db_url) as conn:
            sample_data.load(conn)
        migrator.apply()
    with psycopg.connect(db_url, autocommit=True) as conn:
        # one detection pass over the whole 30 days (the scheduled pass looks at the last hour)
        conn.execute(
            "UPDATE guard.settings SET value = '50000' WHERE key = 'detection_window_minutes'"
        )
        conn.execute("SELECT count(*) FROM guard.detect()")
    calls = _created_on(db_url, "calls", yesterday)
    assert calls > 0, "the sample data covers yesterday"

    runner = CliRunner()
    first = runner.invoke(main, ["--database-url", db_url, "report", "--json"])
    assert first.exit_code == 0, first.output
    payload = json.loads(first.output)
    assert payload["date"] == str(yesterday)
    assert payload["generated_now"] is True
    assert payload["total"]["total_calls"] == calls
    companies = payload["companies"]
    assert len(companies) == len(sample_data.COMPANIES)
    inconsistent = sum(c["inconsistent_calls"] for c in companies)
    assert payload["total"]["inconsistent_calls"] == inconsistent
    assert inconsistent > 0, "the sample data's bad rows show up in the report"
    # the same alerts counted per rule and per check; every rule is an invariant's
    total = payload["total"]
    assert sum(total["by_rule"].values()) == sum(total["by_check"].values()) > 0
    assert all(rule.startswith("I") for rule in total["by_rule"]), total["by_rule"]
    assert "booked_without_appointment" in total["by_check"], total["by_check"]
    for company in companies:
        assert "from_number" not in company and "to_number" not in company
        assert company["top_issues"] == sorted(
            company["top_issues"], key=lambda issue: (-issue["count"], issue["rule_id"])
        )
        assert all(issue["likely_cause"] and issue["action"] for issue in company["top_issues"])
    appointments = _created_on(db_url, "appointments", yesterday)
    assert appointments > 0, "the sample data books yesterday"
    assert total["total_appointments"] == appointments
    # the whole-history pass opened every alert: some are still open, so there is work to do
    assert any(item["kind"] == "open_alerts" for c in companies for item in c["action_items"])
    assert total["recovery_rate_pct"] is not None

    again = runner.invoke(main, ["--database-url", db_url, "report", "--json"])
    assert json.loads(again.output)["generated_now"] is False, "a stored day is read, not redone"

    text = runner.invoke(main, ["--database-url", db_url, "report"])
    assert text.exit_code == 0, text.output
    assert f"Booking Guard daily report for {yesterday} (UTC)" in text.output
    assert "Issues by rule:" in text.output and "top issues:" in text.output
    assert "Issues by check:" in text.output
    assert f"Appointments: {appointments}" in text.output
    assert "action items:" in text.output and "       cause:  " in text.output
    assert "detection latency    p95" in text.output

    markdown = runner.invoke(
        main, ["--database-url", db_url, "report", "--markdown", "--date", str(yesterday)]
    )
    assert markdown.exit_code == 0, markdown.output
    assert markdown.output.startswith(f"# Booking Guard daily report, {yesterday} (UTC)")
    assert "| company | calls | appointments | inconsistent |" in markdown.output
    assert "## Top issues" in markdown.output and "## Action items" in markdown.output
    assert "## Issues by rule" in markdown.output and "## Issues by check" in markdown.output
    assert sample_data.COMPANIES[0] in markdown.output

    # With a stored day before, recovery and detection latency are set against their 7-day means.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO guard.daily_reports (report_date, company_id, total_calls,"
            " inconsistent_calls, inconsistency_rate_pct, auto_corrected, manual_reviews,"
            " open_review_items, recovery_rate_pct, detection_latency_p95_seconds)"
            " SELECT %s::date - 1, d.company_id, 1, 0, 0, 0, 0, 0, 0, 1"
            " FROM guard.daily_reports AS d WHERE d.report_date = %s",
            (yesterday, yesterday),
        )
        conn.execute("DELETE FROM guard.daily_reports WHERE report_date = %s", (yesterday,))
    trended = runner.invoke(main, ["--database-url", db_url, "report"])
    assert trended.exit_code == 0, trended.output
    assert " pts vs 0.00 7-day mean)" in trended.output, trended.output
    assert " s vs 1.00 7-day mean)" in trended.output, trended.output


def test_report_errors_are_one_line(db_url: str) -> None:
    runner = CliRunner()
    both = runner.invoke(main, ["--database-url", db_url, "report", "--json", "--markdown"])
    assert both.exit_code == 1
    assert "--json and --markdown exclude each other" in both.output
    bad = runner.invoke(main, ["--database-url", db_url, "report", "--date", "yesterday"])
    assert bad.exit_code == 2  # click's usage error


def test_a_day_without_companies_says_nothing_is_stored(db_url: str) -> None:
    """An ended day with no company: nothing is stored, and the JSON says so."""
    runner = CliRunner()
    argv = ["--database-url", db_url, "report", "--json", "--date", "2026-11-01"]
    empty = runner.invoke(main, argv)
    assert empty.exit_code == 0, empty.output
    payload = json.loads(empty.stdout)
    assert payload["companies"] == [] and payload["stored"] is False, payload
    assert "no company has a report of 2026-11-01" in empty.stderr
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
    yesterday = runner.invoke(main, ["--database-url", db_url, "report", "--json"])
    assert yesterday.exit_code == 0, yesterday.output
    assert json.loads(yesterday.stdout)["stored"] is True, "a company: its row is stored"
