"""`guard alerts test --channel CHANNEL` sends one test message through a channel configured as
for `guard watch` and says what happened (issue 74, row 3): delivered (exit 0, where to, secrets
masked), refused by the receiver (exit 1 with its reason), or not configured (exit 2 naming the
setting). A real webhook receiver and a real SMTP server; no database is needed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from guard.cli import main
from tests.dispatch.conftest import Mailbox, Webhook

SETTINGS = (
    "GUARD_SLACK_WEBHOOK_URL",
    "GUARD_SMTP_HOST",
    "GUARD_SMTP_PORT",
    "GUARD_SMTP_FROM",
    "GUARD_SMTP_TO",
    "GUARD_ALERTMANAGER_URL",
)


@pytest.fixture(autouse=True)
def _nothing_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)


def _test(channel: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["alerts", "test", "--channel", channel], env=env)
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def test_a_webhook_gets_one_message_and_the_token_stays_hidden(webhook: Webhook) -> None:
    code, out, err = _test("webhook", {"GUARD_SLACK_WEBHOOK_URL": webhook.url})
    assert code == 0, err
    assert len(webhook.bodies) == 1
    assert "Booking Guard test message for channel webhook" in webhook.bodies[0]["text"]
    assert out == (
        f"sent a test message through webhook: http://127.0.0.1:{webhook.port}/hooks/***/***/***"
        " accepted it\n"
    )
    assert "secret-token" not in out + err


def test_a_refusing_webhook_is_exit_1_with_its_answer(webhook: Webhook) -> None:
    webhook.fail_next = 1
    code, out, err = _test("webhook", {"GUARD_SLACK_WEBHOOK_URL": webhook.url})
    assert (code, out) == (1, "")
    assert err.startswith("guard: error: the test message through webhook was not delivered: ")
    assert "500" in err and "secret-token" not in err
    assert webhook.bodies == []


def test_email_reaches_the_mailbox(smtp_server: Mailbox) -> None:
    env = {
        "GUARD_SMTP_HOST": "127.0.0.1",
        "GUARD_SMTP_PORT": str(smtp_server.port),
        "GUARD_SMTP_FROM": "guard@example.org",
        "GUARD_SMTP_TO": "oncall@example.org",
    }
    code, out, err = _test("email", env)
    assert code == 0, err
    assert (
        out == "sent a test message through email: 127.0.0.1 (to oncall@example.org) accepted it\n"
    )
    assert len(smtp_server.messages) == 1
    assert "Subject: Booking Guard test message" in smtp_server.messages[0]


def test_stdout_prints_the_test_message_as_json() -> None:
    code, out, err = _test("stdout")
    assert code == 0, err
    first, second = out.splitlines()
    assert json.loads(first)["type"] == "test" and json.loads(first)["channel"] == "stdout"
    assert second == "sent a test message through stdout: standard output accepted it"


@pytest.mark.parametrize(
    ("channel", "env", "names"),
    [
        ("webhook", {}, "channel webhook needs GUARD_SLACK_WEBHOOK_URL in the environment"),
        ("alertmanager", {}, "channel alertmanager needs GUARD_ALERTMANAGER_URL"),
        ("email", {}, "(or GUARD_SMTP_HOST, GUARD_SMTP_FROM and GUARD_SMTP_TO)"),
        (
            "email",
            {
                "GUARD_SMTP_HOST": "h",
                "GUARD_SMTP_PORT": "70000",
                "GUARD_SMTP_FROM": "a@b",
                "GUARD_SMTP_TO": "c@d",
            },
            "GUARD_SMTP_PORT '70000' is not a port from 1 to 65535",
        ),
        ("pager", {}, "Invalid value for '--channel'"),
    ],
)
def test_a_channel_not_configured_is_exit_2_naming_its_setting(
    channel: str, env: dict[str, str], names: str
) -> None:
    code, out, err = _test(channel, env)
    assert (code, out) == (2, "")
    assert names in err


# Host names no resolver takes (an empty label, one over 63 characters), besides the values
# every command's parameters get (tests/cli/test_hostile_input.py).
HOSTILE_HOSTS = ["a..b", ".", "x" * 64, "x" * 64 + ".example", "é" * 70 + ".example", "[::1"]


def _hostile_channel_settings() -> list[tuple[str, dict[str, str]]]:
    """Each channel's settings, one at a time, with each hostile value (the others benign)."""
    from tests.cli.test_hostile_input import HOSTILE_VALUES

    mail = {"GUARD_SMTP_HOST": "127.0.0.1", "GUARD_SMTP_FROM": "a@b.c", "GUARD_SMTP_TO": "d@e.f"}
    cases: list[tuple[str, dict[str, str]]] = []
    for value in [*HOSTILE_VALUES, *HOSTILE_HOSTS]:
        for channel, name in (
            ("webhook", "GUARD_SLACK_WEBHOOK_URL"),
            ("alertmanager", "GUARD_ALERTMANAGER_URL"),
        ):
            cases += [(channel, {name: value}), (channel, {name: f"http://{value}:1/x"})]
        cases += [("email", {**mail, name: value}) for name in (*mail, "GUARD_SMTP_PORT")]
    return cases


def test_hostile_channel_settings_are_one_line() -> None:
    """No setting of a channel, however wrong, ends in a traceback or a bug report: exit 2 for
    one no send could work with, exit 1 for a send that failed, one line either way."""
    problems: list[str] = []
    for channel, env in _hostile_channel_settings():
        result = CliRunner().invoke(
            main, ["alerts", "test", "--channel", channel, "--send-timeout", "2"], env=env
        )
        err = result.stderr
        if (
            result.exit_code not in (1, 2)
            or result.stdout
            or err.count("\n") != 1
            or not err.startswith("guard: error: ")
            or "please report it" in err
        ):
            shown = {k: v[:40] for k, v in env.items()}
            problems.append(f"{channel} {shown}: exit {result.exit_code}: {err.strip()[:200]!r}")
    assert not problems, "\n".join(problems)
