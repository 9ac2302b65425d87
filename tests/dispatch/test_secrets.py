"""No secret in any log line, on stderr or in a stored last_error: fresh secrets are generated in
every form they take (the token path of a Slack-style webhook URL, `user:password@` userinfo, a
token in a query string, Redis' `?password=` URL form, a database password with a space, an SMTP
password) and run through real receivers that fail in the ways that print errors; then every
line `guard` printed and every stored error is searched for them. A malformed configuration is
refused at start: one line, exit 2, nothing sent."""

from __future__ import annotations

import logging
import os
import secrets
import string
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
import redis

from guard.breaker import BreakerConfig, BreakerRegistry
from guard.demo.embedded import free_port
from guard.ops.metrics import GuardCollector
from guard.redact import redact_text, redact_url
from tests.dispatch.conftest import insert_alerts
from tests.dispatch.endpoints import Received, Reply, endpoint
from tests.support.redis_server import RedisServer


def _secret(prefix: str) -> str:
    """A fresh secret; letters and digits, as tokens are."""
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(20))


def _guard(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GUARD_")}
    return subprocess.run(
        [sys.executable, "-m", "guard.cli", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _stored_errors(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT coalesce(last_error, '') FROM guard.deliveries WHERE kind = 'alert'"
        ).fetchall()
    return [str(r[0]) for r in rows]


def _leaks(texts: list[str], found_in: dict[str, str]) -> list[str]:
    return [
        f"{name} in {where}"
        for where, text in found_in.items()
        for name in texts
        if name and name in text
    ]


# -- the dispatcher: webhook, Alertmanager and SMTP failing -----


def test_no_secret_of_a_failing_channel_is_printed_or_stored(
    db_url: str, smtp_server: object
) -> None:
    team, channel, token, query_token = (_secret(p) for p in ("T", "B", "tok", "q"))
    am_user, am_password = _secret("user"), _secret("pw")
    smtp_password = _secret("smtp") + " " + _secret("pw2")  # a password with a space
    secret_values = [team, channel, token, query_token, am_user, am_password, smtp_password]
    secret_values += smtp_password.split()
    insert_alerts(db_url, 3)

    def redirect_echoing_the_token(request: Received) -> Reply:
        # Where it points repeats the secrets: the error names it redacted.
        return Reply(302, {"Location": f"http://127.0.0.1:1{request.path}"})

    with (
        endpoint(redirect_echoing_the_token) as hook,
        endpoint(lambda _request: Reply(500)) as am,
    ):
        env = {
            "GUARD_SLACK_WEBHOOK_URL": hook.url(
                f"/services/{team}/{channel}/{token}?token={query_token}"
            ),
            "GUARD_ALERTMANAGER_URL": f"http://{am_user}:{am_password}@127.0.0.1:{am.port}/",
            "GUARD_SMTP_USER": "guard",
            "GUARD_SMTP_PASSWORD": smtp_password,
        }
        port = smtp_server.port  # type: ignore[attr-defined]
        args = [
            "--database-url",
            db_url,
            "watch",
            "--once",
            "--log-level",
            "debug",
            "--channel",
            "webhook",
            "--channel",
            "alertmanager",
            "--channel",
            "email",
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            str(port),
            "--smtp-from",
            "guard@example.org",
            "--smtp-to",
            "ops@example.org",
            # Run 2 must fall inside run 1's backoff however slowly the machine starts it.
            "--retry-base",
            "600",
        ]
        first = _guard(*args, env=env)
        received = len(hook.posts()) + len(am.posts())
    # Both receivers are gone now: the second run meets refused connections.
    second = _guard(*args, env=env)
    assert received == 2, "each receiver was reached once (and failed)"
    assert first.returncode == 1 and "send(s) failed" in first.stderr, first.stderr
    assert "redirect to http://127.0.0.1:1/services/***/***/***?token=***" in first.stderr
    assert "Alertmanager answered HTTP 500" in first.stderr
    assert "unreachable" in second.stderr, second.stderr
    errors = _stored_errors(db_url)
    # Per channel: the first alert failed in run 1, the next one in run 2 (the rest waits).
    assert len(errors) == 9 and sum(map(bool, errors)) == 6, errors
    found_in = {
        "stderr (run 1)": first.stderr,
        "stdout (run 1)": first.stdout,
        "stderr (run 2)": second.stderr,
        "last_error": "\n".join(errors),
    }
    assert _leaks(secret_values, found_in) == []


# -- configuration checked at start -----


def _bad_configurations(
    port: int, token: str, password: str
) -> Iterator[tuple[str, dict[str, str], list[str]]]:
    webhook = f"http://127.0.0.1:{port}/services/T0/B0/{token}"
    yield "webhook URL with a space", {"GUARD_SLACK_WEBHOOK_URL": webhook + " x"}, ["webhook"]
    yield "webhook URL with a newline", {"GUARD_SLACK_WEBHOOK_URL": webhook + "\n"}, ["webhook"]
    yield "webhook URL not http", {"GUARD_SLACK_WEBHOOK_URL": f"ftp://h/{token}"}, ["webhook"]
    yield (
        "Alertmanager URL with a bad port",
        {"GUARD_ALERTMANAGER_URL": f"http://ops:{password}@127.0.0.1:99999/"},
        ["alertmanager"],
    )
    yield (
        "Alertmanager URL without host",
        {"GUARD_ALERTMANAGER_URL": f"http://ops:{password}@/"},
        ["alertmanager"],
    )
    smtp = ["--smtp-host", "127.0.0.1", "--smtp-port", str(port), "--smtp-from", "g@example.org"]
    yield "SMTP recipient not an address", {}, ["email", *smtp, "--smtp-to", "ops at example"]
    yield (
        "SMTP port out of range",
        {},
        ["email", *smtp[:2], "--smtp-port", "0", *smtp[4:], "--smtp-to", "o@example.org"],
    )
    yield (
        "SMTP user without password",
        {"GUARD_SMTP_USER": "guard"},
        ["email", *smtp, "--smtp-to", "o@example.org"],
    )
    yield (
        "SMTP host with a space",
        {},
        ["email", "--smtp-host", "mail example", *smtp[2:], "--smtp-to", "o@example.org"],
    )


def test_a_malformed_configuration_is_refused_at_start(db_url: str) -> None:
    token, password = _secret("tok"), _secret("pw")
    insert_alerts(db_url, 2)
    with endpoint(lambda _request: Reply(200)) as hook:
        cases = list(_bad_configurations(hook.port, token, password))
        outcomes = {}
        for name, env, extra in cases:
            channel, *options = extra
            result = _guard(
                "--database-url", db_url, "watch", "--once", "--channel", channel, *options, env=env
            )
            outcomes[name] = result
        received = len(hook.requests)
    for name, result in outcomes.items():
        lines = result.stderr.splitlines()
        assert result.returncode == 2, (name, result.stderr)
        assert len(lines) == 1 and lines[0].startswith("guard: error: "), (name, lines)
        assert "Traceback" not in result.stderr and result.stdout == "", name
        assert token not in result.stderr and password not in result.stderr, (name, lines)
    assert received == 0, "nothing is sent with a malformed configuration"
    assert _stored_errors(db_url) == [], "nothing was even queued"
    space = outcomes["webhook URL with a space"].stderr
    assert "GUARD_SLACK_WEBHOOK_URL: the URL contains a space" in space
    assert f"http://127.0.0.1:{hook.port}/services/***/***/***" in space


# -- Redis: the ?password= URL form in the breaker's eviction warning -----


def test_the_redis_password_of_the_query_form_is_not_printed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    password = _secret("redis")
    with RedisServer(extra_args=("--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru")) as srv:
        client = redis.Redis.from_url(srv.url)
        client.config_set("requirepass", password)
        client.close()
        url = f"redis://127.0.0.1:{srv.port}/0?password={password}"
        with caplog.at_level(logging.WARNING, logger="guard.breaker"):
            registry = BreakerRegistry(url, default=BreakerConfig(call_timeout_seconds=None))
            try:
                registry.get(f"secret-test-{os.getpid()}").call(lambda: "booked")
            finally:
                registry.close()
    warnings = [r.getMessage() for r in caplog.records if "maxmemory-policy" in r.getMessage()]
    assert len(warnings) == 1, caplog.text  # the warning was given: Redis was reached
    assert f"redis://127.0.0.1:{srv.port}/0?password=***" in warnings[0]
    assert password not in caplog.text


# -- PostgreSQL: a password with a space, on every failed scrape -----


@pytest.mark.parametrize("form", ["url", "keyword"])
def test_a_database_password_with_a_space_is_never_echoed(
    form: str, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = _secret("pgA"), _secret("pgB")
    port = free_port()
    if form == "url":
        url = f"postgresql://guard:{first} {second}@127.0.0.1:{port}/app"
    else:
        url = f"host=127.0.0.1 port={port} dbname=app password={first} {second}"
    collector = GuardCollector(url)
    with caplog.at_level(logging.WARNING, logger="guard.metrics"):
        for _ in range(3):  # every failed scrape logs a line
            list(collector.collect())
    collector.close()
    failures = [r.getMessage() for r in caplog.records if "scrape failed" in r.getMessage()]
    assert len(failures) == 3, caplog.text
    once = _guard("--database-url", url, "metrics", "--once", env={})
    # An unquoted space makes the URL malformed: a usage error, refused before connecting.
    assert once.returncode == 2, once.stderr
    assert once.stderr.splitlines()[-1].startswith("guard: error: "), once.stderr
    found_in = {"log": caplog.text, "stderr": once.stderr, "stdout": once.stdout}
    assert _leaks([first, second], found_in) == []


# -- the helper itself -----


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://hooks.slack.com/services/T0A/B0B/XyZ123",
            "https://hooks.slack.com/services/***/***/***",
        ),
        ("https://discord.com/api/webhooks/123/abc", "https://discord.com/api/webhooks/***/***"),
        ("http://user:pw@am:9093/", "http://***@am:9093/"),
        (
            "http://am:9093/api/v2/alerts?token=abc&x=1",
            "http://am:9093/api/v2/alerts?token=***&x=***",
        ),
        ("https://h/x#frag", "https://h/***#***"),
        ("http://h:99999/path", "http://***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_finds_urls_and_connection_passwords() -> None:
    text = "a https://h/services/T1/B2/c3? b host=x password='p w' c redis://:pw@h:1/0?password=q."
    assert redact_text(text) == (
        "a https://h/services/***/***/***? b host=x password=*** c redis://:***@h:1/0?password=***."
    )


@pytest.mark.parametrize("keyword", ["password", "PASSWORD", "Password", "pAssWord"])
def test_a_connection_password_is_found_whatever_the_keywords_case(keyword: str) -> None:
    assert redact_text(f"host=x {keyword}=s3cr3t port=1") == f"host=x {keyword}=*** port=1"
    assert redact_text(f"host=x {keyword} = 'p w'") == f"host=x {keyword} = ***"
