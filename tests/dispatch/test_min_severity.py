"""`guard watch --min-severity CHANNEL=SEVERITY`: an alert of that severity or more serious is sent
to the channel, one just below it is not, and is recorded skipped (guard.deliveries and
guard.delivery_skips) so nothing looks lost; other channels are not affected. Hostile values of
--report, --digest and --min-severity are one usage error, never a traceback. Real PostgreSQL, a
real webhook receiver."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from guard.cli import main
from tests.dispatch.conftest import Webhook


def _alert(db_url: str, severity: str) -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id,"
            " severity, message, details) VALUES ('sev:' || %s, 'booked_without_appointment', 7,"
            " 'call', 1, %s, 'booked', '{}'::jsonb) RETURNING id",
            (severity, severity),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _query(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def _watch(db_url: str, hook: Webhook, *extra: str) -> Any:
    argv = ["--database-url", db_url, "watch", "--once", "--channel", "webhook"]
    env = {"GUARD_SLACK_WEBHOOK_URL": hook.url}
    return CliRunner(env=env).invoke(main, [*argv, "--webhook-rate", "0", *extra])


def test_below_the_minimum_is_skipped_and_recorded(db_url: str, webhook: Webhook) -> None:
    ids = {severity: _alert(db_url, severity) for severity in ("critical", "high", "medium", "low")}
    result = _watch(db_url, webhook, "--channel", "stdout", "--min-severity", "webhook=high")
    assert result.exit_code == 0, result.output
    # the boundary: high (the minimum) is sent, medium (just below) is not
    assert sorted(webhook.delivered_ids()) == [ids["critical"], ids["high"]]
    # stdout has no minimum: every alert
    sent = sorted(json.loads(line)["alert_id"] for line in result.stdout.splitlines())
    assert sent == sorted(ids.values())
    statuses = dict(
        _query(
            db_url,
            "SELECT subject, status FROM guard.deliveries"
            " WHERE kind = 'alert' AND channel = 'webhook'",
        )
    )
    assert statuses == {
        ids["critical"]: "delivered",
        ids["high"]: "delivered",
        ids["medium"]: "skipped",
        ids["low"]: "skipped",
    }
    [(channels, deliveries, below, seen_before)] = _query(
        db_url, "SELECT channels, deliveries, below_severity, seen_before FROM guard.delivery_skips"
    )
    assert (channels, deliveries, below) == (["webhook"], 2, "high") and seen_before is not None
    # delivered on stdout and skipped on the webhook: nothing left to send anywhere
    undelivered = _query(db_url, "SELECT count(*) FROM guard.alerts WHERE delivered_at IS NULL")
    assert undelivered == [(0,)]

    again = _watch(db_url, webhook, "--min-severity", "webhook=high")
    assert again.exit_code == 0 and len(webhook.bodies) == 2
    assert _query(db_url, "SELECT count(*) FROM guard.delivery_skips") == [(1,)]


def test_low_lets_everything_through(db_url: str, webhook: Webhook) -> None:
    ids = [_alert(db_url, severity) for severity in ("critical", "low")]
    assert _watch(db_url, webhook, "--min-severity", "webhook=low").exit_code == 0
    assert sorted(webhook.delivered_ids()) == ids
    assert _query(db_url, "SELECT count(*) FROM guard.delivery_skips") == [(0,)]


def test_critical_on_a_digest_channel(db_url: str, webhook: Webhook) -> None:
    """A minimum and a digest on one channel: the digest holds only what is serious enough."""
    critical = _alert(db_url, "critical")
    high = _alert(db_url, "high")
    with psycopg.connect(db_url, autocommit=True) as conn:  # opened in an ended period
        conn.execute("UPDATE guard.alerts SET first_seen_at = now() - interval '2 days'")
    result = _watch(db_url, webhook, "--digest", "webhook=1", "--min-severity", "webhook=critical")
    assert result.exit_code == 0, result.output
    [body] = webhook.bodies
    assert f"#{critical} " in body["text"] and f"#{high} " not in body["text"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--digest", "email"], "is not CHANNEL=VALUE"),
        (["--digest", "email=0"], "is not a digest period"),
        (["--digest", "email=169"], "is not a digest period"),
        (["--digest", "email=1.5"], "is not a digest period"),
        (["--digest", "email=-3"], "is not a digest period"),
        (["--digest", "email=\u0663"], "is not a digest period"),  # an Arabic-Indic three
        (["--digest", "pager=2"], "is not a channel here"),
        (["--digest", "alertmanager=2"], "is not a channel here"),
        (["--digest", "stdout=2", "--digest", "stdout=3"], "given twice"),
        (["--digest", "=2"], "is not a channel here"),
        (["--min-severity", "stdout=urgent"], "is not a severity"),
        (["--min-severity", "stdout=HIGH"], "is not a severity"),
        (["--min-severity", "stdout="], "is not a severity"),
        (["--min-severity", "std\x1bout=high"], "is not a channel here"),
        (["--report", "alertmanager"], "Invalid value for '--report'"),
        (["--report", "pager"], "Invalid value for '--report'"),
        (["--report", "webhook"], "reports for channel(s) not delivered to: webhook"),
        (["--digest", "webhook=2"], "digests for channel(s) not delivered to: webhook"),
        (["--min-severity", "email=low"], "a minimum severity for channel(s) not delivered to"),
    ],
)
def test_a_bad_value_is_one_usage_error(db_url: str, argv: list[str], says: str) -> None:
    result = CliRunner().invoke(
        main, ["--database-url", db_url, "watch", "--once", "--channel", "stdout", *argv]
    )
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert "Traceback" not in result.output and "\x1b" not in result.output
    assert _query(db_url, "SELECT count(*) FROM guard.deliveries WHERE kind = 'alert'") == [(0,)]


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--report", "webhook"], "channel webhook needs GUARD_SLACK_WEBHOOK_URL"),
        (["--digest", "webhook=2"], "channel webhook needs GUARD_SLACK_WEBHOOK_URL"),
        (["--resolved", "alertmanager"], "channel alertmanager needs GUARD_ALERTMANAGER_URL"),
        # docs/alerts.md's own example, with nothing configured
        (
            ["--report", "email", "--digest", "email=24", "--min-severity", "webhook=high"],
            "(or GUARD_SMTP_HOST, GUARD_SMTP_FROM and GUARD_SMTP_TO)",
        ),
    ],
)
def test_a_channel_named_but_not_configured_names_its_setting(
    db_url: str, argv: list[str], names: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("GUARD_SLACK_WEBHOOK_URL", "GUARD_SMTP_HOST", "GUARD_ALERTMANAGER_URL"):
        monkeypatch.delenv(variable, raising=False)
    result = CliRunner().invoke(main, ["--database-url", db_url, "watch", "--once", *argv])
    assert result.exit_code == 2, result.output
    assert names in result.output
    assert "not delivered to" not in result.output


def test_a_channel_left_out_of_an_explicit_list_says_how_to_add_it(db_url: str) -> None:
    argv = ["watch", "--once", "--channel", "stdout", "--report", "webhook", "--digest", "email=2"]
    result = CliRunner().invoke(main, ["--database-url", db_url, *argv])
    assert result.exit_code == 2, result.output
    assert "deliver to them too: --channel webhook" in result.output
