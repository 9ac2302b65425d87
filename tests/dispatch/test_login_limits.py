"""`guard watch` within its login's limits (docs/alerts.md, "The login's limits"): a DBA gives the
dispatcher's login a statement_timeout, a lock_timeout, an idle_in_transaction_session_timeout.
Every statement works on a batch that fits (halved when statement_timeout cuts one, down to one
item), a lock wait lock_timeout ended is tried again, no transaction is open while a message is
sent, and what cannot fit even for one item is one line naming the setting, exit 1.

Statements are made slow the way a slow disk or a busy server makes them, deterministically: a
trigger of the test's own sleeps for each delivery row written or claimed."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from guard.ops.dispatch.loop import Dispatcher, DispatchSettings
from guard.ops.dispatch.sinks import Sink, StdoutSink
from guard.ops.login_limits import LoginLimit
from tests.dispatch.conftest import insert_alerts
from tests.dispatch.endpoints import Endpoint, Received, Reply, endpoint
from tests.support.locks import lock_held
from tests.support.logins import owner_login

GUARD = str(Path(sys.executable).with_name("guard"))
LOGIN = "watch_login"

# Seconds per delivery row inserted (the enqueue) and per row claimed.
_SLOW_ROWS = """
CREATE FUNCTION public.slow_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR (NEW.claimed_by IS NOT NULL AND OLD.claimed_by IS NULL) THEN
        PERFORM pg_sleep(%(seconds)s);
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER slow_rows BEFORE INSERT OR UPDATE ON guard.deliveries
FOR EACH ROW EXECUTE FUNCTION public.slow_rows();
"""

# A delivery marked delivered takes longer than a statement may.
_SLOW_DELIVERED = """
CREATE FUNCTION public.slow_delivered() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(0.2);
    RETURN NEW;
END;
$$;
CREATE TRIGGER slow_delivered BEFORE UPDATE ON guard.deliveries
FOR EACH ROW WHEN (NEW.status = 'delivered') EXECUTE FUNCTION public.slow_delivered();
"""


@pytest.fixture
def login(db_url: str) -> Callable[..., str]:
    """The dispatcher's login (a member of the owner role) with the given settings."""

    def make(**settings: str) -> str:
        return owner_login(db_url, LOGIN, **settings)

    return make


def _slow_rows(db_url: str, seconds: float) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(_SLOW_ROWS.replace("%(seconds)s", repr(seconds)))


@pytest.fixture
def hook() -> Iterator[Endpoint]:
    with endpoint(lambda _request: Reply(200)) as server:
        yield server


def _watch(url: str, hook: Endpoint, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GUARD_DATABASE_URL": url, "GUARD_SLACK_WEBHOOK_URL": hook.url("/hook")}
    return subprocess.run(
        [GUARD, "watch", "--once", "--channel", "stdout", "--channel", "webhook", *args],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _statuses(db_url: str) -> dict[tuple[str, str], int]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT channel, status, count(*) FROM guard.deliveries"
            " WHERE kind = 'alert' GROUP BY 1, 2"
        ).fetchall()
    return {(str(c), str(s)): int(n) for c, s, n in rows}


def _delivered_everything(
    db_url: str, result: subprocess.CompletedProcess[str], hook: Endpoint, alerts: int
) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr
    assert len(result.stdout.splitlines()) == alerts  # one JSON line per alert
    statuses = _statuses(db_url)
    assert statuses[("stdout", "delivered")] == alerts
    # the webhook's default rate: 20 messages a minute, the last one a summary of its batch
    assert len(hook.posts()) == 20
    assert ("webhook", "failed") not in statuses


def test_watch_fits_its_batches_to_the_logins_statement_timeout(
    db_url: str, login: Callable[..., str], hook: Endpoint
) -> None:
    """A cheap variant of the issue's: 100 alerts on two channels, written and claimed at 1 ms a
    row, statement_timeout 100 ms. One enqueue of them all takes 200 ms, one claim of the
    batch 100 ms: both are cut, then done in batches that fit."""
    url = login(statement_timeout="100ms")
    insert_alerts(db_url, 100)
    _slow_rows(db_url, 0.001)
    result = _watch(url, hook)
    _delivered_everything(db_url, result, hook, 100)


@pytest.mark.slow
def test_watch_delivers_20008_alerts_under_a_300ms_statement_timeout(
    db_url: str, login: Callable[..., str], hook: Endpoint
) -> None:
    """The issue's figures: 20,008 alerts, statement_timeout 300 ms, stdout and a webhook. One
    statement queueing the deliveries of them all takes about half a second."""
    url = login(statement_timeout="300ms")
    insert_alerts(db_url, 20008)
    result = _watch(url, hook)
    _delivered_everything(db_url, result, hook, 20008)


def test_what_cannot_fit_for_one_item_is_one_line_naming_the_setting(
    db_url: str, login: Callable[..., str], hook: Endpoint
) -> None:
    url = login(statement_timeout="100ms")
    insert_alerts(db_url, 2)
    _slow_rows(db_url, 0.2)  # one delivery row takes longer than the whole statement may
    result = _watch(url, hook)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == (
        "guard: error: guard watch: enqueueing the deliveries of 1 alert(s) cannot be done: it"
        " takes longer than this login's statement_timeout = 100ms; raise it for the login that"
        f" runs guard watch (ALTER ROLE \"{LOGIN}\" SET statement_timeout = '...')"
    ), result.stderr
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_notice_that_cannot_be_marked_is_named_by_its_kind(
    db_url: str, login: Callable[..., str]
) -> None:
    url = login(statement_timeout="100ms")
    settings = DispatchSettings(lease_s=3.0, send_timeout_s=1.0, review_priorities=frozenset({0}))
    sinks: list[tuple[Sink, int]] = [(StdoutSink(io.StringIO()), 0)]
    Dispatcher(db_url, sinks, settings).run_once()  # subscribes
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT guard.enqueue_review(7, 1, NULL, 'booking_outcome_unknown')")
        conn.execute(_SLOW_DELIVERED)
    with pytest.raises(LoginLimit, match=r"marking delivered on stdout 1 review notice\(s\)"):
        Dispatcher(url, sinks, settings).run_once()


def test_a_lock_wait_lock_timeout_ends_is_tried_again(
    db_url: str, login: Callable[..., str], hook: Endpoint
) -> None:
    """Another session holds a lock that keeps the dispatcher from writing its deliveries for
    a second; the login's lock_timeout ends each wait after 100 ms."""
    url = login(lock_timeout="100ms")
    insert_alerts(db_url, 5)
    with lock_held(db_url, "LOCK TABLE guard.deliveries IN SHARE ROW EXCLUSIVE MODE", 1.0):
        result = _watch(url, hook)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(result.stdout.splitlines()) == 5
    assert _statuses(db_url)[("stdout", "delivered")] == 5


def test_no_transaction_is_open_while_a_message_is_sent(
    db_url: str, login: Callable[..., str]
) -> None:
    """idle_in_transaction_session_timeout 100 ms, a receiver that answers after 300 ms: the
    session is never idle in a transaction, so the server never ends it."""

    def slow(_request: Received) -> Reply:
        time.sleep(0.3)
        return Reply(200)

    url = login(idle_in_transaction_session_timeout="100ms")
    insert_alerts(db_url, 3)
    with endpoint(slow) as receiver:
        result = _watch(url, receiver, "--webhook-rate", "0")
        assert result.returncode == 0, result.stderr[-3000:]
        assert len(receiver.posts()) == 3
    assert "terminat" not in result.stderr
    assert _statuses(db_url) == {("stdout", "delivered"): 3, ("webhook", "delivered"): 3}
