"""`guard watch --once` from cron: a run that leaves a failed delivery pending (failed now, or in
an earlier run and waiting for its retry) exits as README's table says, naming the channel and
how many, so the cron job never reports success while an alert is stuck. A real `guard watch`
process against a real HTTP endpoint that answers 500, then 200."""

from __future__ import annotations

import subprocess

import psycopg

from tests.cli.test_exit_codes import code_for
from tests.dispatch.conftest import delivery_rows, insert_alerts
from tests.dispatch.endpoints import Reply, endpoint
from tests.support.cli import guard_process

STUCK = "`guard watch --once` leaving a failed delivery pending"


def _watch_once(db_url: str, webhook_url: str) -> subprocess.CompletedProcess[str]:
    argv = ["--database-url", db_url, "watch", "--once", "--channel", "stdout"]
    argv += ["--channel", "webhook", "--send-timeout", "2"]
    return guard_process(*argv, GUARD_SLACK_WEBHOOK_URL=webhook_url)


def _error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("guard: error:")]
    return line


def test_a_failed_delivery_left_pending_fails_every_run_until_it_is_sent(db_url: str) -> None:
    [alert_id] = insert_alerts(db_url, 1)
    status = {"code": 500}
    with endpoint(lambda _request: Reply(status=status["code"])) as hook:
        url = hook.url("/services/T000/B000/secret-token")
        failed = _watch_once(db_url, url)
        assert failed.returncode == code_for(STUCK), failed.stderr
        line = _error_line(failed)
        assert "1 send(s) failed in this run" in line and "webhook 1" in line, line
        assert '"retrying": {"webhook": 1}' in failed.stderr
        assert "secret-token" not in failed.stderr

        # The next cron run comes before the retry is due: nothing is sent, and it still fails.
        waiting = _watch_once(db_url, url)
        assert len(hook.posts()) == 1, "the retry was not due yet"
        assert waiting.returncode == code_for(STUCK), waiting.stderr
        line = _error_line(waiting)
        assert "0 send(s) failed in this run" in line and "webhook 1" in line, line
        assert delivery_rows(db_url, "webhook")[alert_id][:2] == ("pending", 1)

        # The retry is due and the endpoint is back: delivered, exit 0.
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("UPDATE guard.deliveries SET next_attempt_at = now()")
        status["code"] = 200
        done = _watch_once(db_url, url)
    assert done.returncode == 0, done.stderr
    assert '"retrying": {}' in done.stderr
    assert delivery_rows(db_url, "webhook")[alert_id][0] == "delivered"
    assert len(hook.posts()) == 2
