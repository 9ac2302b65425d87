"""`guard watch --skip-before TIME`: a backlog of old alerts is marked skipped instead of being
sent, on the chosen channels only, recorded in guard.delivery_skips (who, when, how many);
alerts seen since are still delivered."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner

from guard.cli import main
from guard.cli.params import moment
from guard.schema.migrate import Migrator
from tests.dispatch.conftest import delivery_rows, insert_alerts

WATCH_STDOUT = ("watch", "--once", "--channel", "stdout")


def _age(db_url: str, alert_ids: list[int], hours: float) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE guard.alerts SET first_seen_at = now() - make_interval(hours => %s),"
            " last_seen_at = now() - make_interval(hours => %s) WHERE id = ANY(%s)",
            (hours, hours, alert_ids),
        )


def test_skip_before_skips_the_backlog_audits_it_and_delivers_the_rest(db_url: str) -> None:
    old = insert_alerts(db_url, 5)
    _age(db_url, old, 30)
    queued_old = insert_alerts(db_url, 2)
    _age(db_url, queued_old, 30)
    runner = CliRunner()
    base = ["--database-url", db_url, "watch", "--once"]
    # Two old alerts already have pending rows on stdout (queued by an earlier round that could
    # not send); the other three have none yet.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT guard.enqueue_alert_deliveries(ARRAY['stdout'])")
        conn.execute(
            "DELETE FROM guard.deliveries WHERE kind = 'alert' AND subject = ANY(%s)", (old,)
        )
    new = insert_alerts(db_url, 2)

    result = runner.invoke(main, [*base, "--channel", "stdout", "--skip-before", "1d"])
    assert result.exit_code == 0, result.output
    sent = [json.loads(line)["alert_id"] for line in result.stdout.splitlines()]
    assert sent == new, "only alerts seen within the last day are sent"
    rows = delivery_rows(db_url, "stdout")
    assert {i: rows[i][0] for i in old + queued_old} == dict.fromkeys(old + queued_old, "skipped")
    assert {i: rows[i][0] for i in new} == dict.fromkeys(new, "delivered")
    assert "skipped 7 deliveries of alerts last seen before" in result.stderr

    with psycopg.connect(db_url) as conn:
        audit = conn.execute(
            "SELECT skipped_by, database_role, channels, deliveries, now() - skipped_at,"
            " now() - interval '1 day' - seen_before FROM guard.delivery_skips"
        ).fetchall()
    [(who, role, channels, deliveries, age, cutoff_skew)] = audit
    assert who.startswith(getpass.getuser() + "@")
    assert role and channels == ["stdout"] and deliveries == 7
    assert age < timedelta(minutes=1) and abs(cutoff_skew) < timedelta(minutes=1)

    with psycopg.connect(db_url) as conn:
        settled = conn.execute(
            "SELECT count(*) FROM guard.alerts WHERE id = ANY(%s) AND delivered_at IS NOT NULL",
            (old + queued_old,),
        ).fetchone()
    assert settled == (7,), "a skipped backlog is done: the enqueue stops re-reading it"

    # Skipped stays skipped: a later run sends nothing of the backlog.
    again = runner.invoke(main, [*base, "--channel", "stdout"])
    assert again.exit_code == 0 and again.stdout == ""


def test_skip_applies_to_the_chosen_channels_only(db_url: str) -> None:
    old = insert_alerts(db_url, 3)
    _age(db_url, old, 5)
    cutoff = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["--database-url", db_url, *WATCH_STDOUT, "--skip-before", cutoff],
    )
    assert result.exit_code == 0 and result.stdout == ""
    assert {r[0] for r in delivery_rows(db_url, "stdout").values()} == {"skipped"}
    assert delivery_rows(db_url, "webhook") == {}, "another channel's backlog is untouched"
    with psycopg.connect(db_url) as conn:
        count = conn.execute(
            "SELECT count(*) FROM guard.alerts WHERE id = ANY(%s) AND status = 'open'", (old,)
        ).fetchone()
    assert count == (3,), "skipping a delivery does not touch the alert"


def test_an_empty_skip_is_still_recorded(db_url: str) -> None:
    result = CliRunner().invoke(
        main,
        ["--database-url", db_url, *WATCH_STDOUT, "--skip-before", "2h"],
    )
    assert result.exit_code == 0, result.output
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT deliveries FROM guard.delivery_skips").fetchall()
    assert rows == [(0,)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T08:00:00Z", datetime(2026, 11, 22, 8, tzinfo=UTC)),
        ("2026-11-22T09:00:00+01:00", datetime(2026, 11, 22, 8, tzinfo=UTC)),
        ("2026-11-22 08:00", datetime(2026, 11, 22, 8, tzinfo=UTC)),  # no zone: UTC
        ("90m", datetime(2026, 11, 22, 10, 30, tzinfo=UTC)),
        ("2h", datetime(2026, 11, 22, 10, tzinfo=UTC)),
        ("1d", datetime(2026, 11, 21, 12, tzinfo=UTC)),
    ],
)
def test_skip_before_accepts_iso_times_and_ages(text: str, expected: datetime) -> None:
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    assert moment(text, now=now) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("yesterday", "neither an ISO 8601 time"),
        ("2026-13-45", "neither an ISO 8601 time"),
        ("99999999999999999999d", "reaches before year 1"),
        ("", "neither an ISO 8601 time"),
    ],
)
def test_a_bad_time_is_a_usage_error_before_anything_is_skipped(
    db_url: str, text: str, says: str
) -> None:
    insert_alerts(db_url, 1)
    result = CliRunner().invoke(
        main, ["--database-url", db_url, "watch", "--once", "--skip-before", text]
    )
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert delivery_rows(db_url, "stdout") == {}


def test_rolling_back_0022_turns_skipped_deliveries_into_failed_ones(db_url: str) -> None:
    old = insert_alerts(db_url, 2)
    _age(db_url, old, 3)
    result = CliRunner().invoke(
        main, ["--database-url", db_url, *WATCH_STDOUT, "--skip-before", "1h"]
    )
    assert result.exit_code == 0, result.output
    with Migrator(db_url) as migrator:
        rolled_back = migrator.rollback(to="0021_legacy_rows_on_update")
    # later migrations (if any) go first; these three are the last ones rolled back
    assert rolled_back[-3:] == [
        "0022b_operator_alerts_index",
        "0022a_operator_alerts_validate",
        "0022_operator_alerts",
    ]
    with psycopg.connect(db_url) as conn:  # the alerts' own table, at that level
        rows = conn.execute(
            "SELECT alert_id, status, last_error FROM guard.alert_deliveries"
            " WHERE channel = 'stdout' AND alert_id = ANY(%s)",
            (old,),
        ).fetchall()
    assert {r[1:] for r in rows} == {("failed", "skipped by an operator")} and len(rows) == 2
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT to_regclass('guard.delivery_skips')").fetchone() == (None,)
