"""The application's login may read a circuit's state (issue 72, row 6): `guard breaker list`
and `guard breaker show` work for a member of the application role, from Redis and from
PostgreSQL's record, while changing a circuit stays the owner's."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from guard.cli import main
from tests.support.logins import application_login

KEY = "appointment_booking:service:7"
APP_LOGIN = "guard_test_breaker_reader_app"


@pytest.fixture
def app_url(db_url: str) -> str:
    return application_login(db_url, APP_LOGIN)


def _guard(url: str, redis_url: str, *argv: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["--database-url", url, *argv], env={"GUARD_REDIS_URL": redis_url}
    )
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def test_the_application_reads_a_circuit_the_owner_tripped(
    db_url: str, app_url: str, redis_url: str
) -> None:
    code, _, err = _guard(
        db_url, redis_url, "breaker", "trip", KEY, "--reason", "calendar down", "--create"
    )
    assert code == 0, err
    code, out, err = _guard(app_url, redis_url, "breaker", "show", KEY, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["state"] == "forced_open"
    assert [e["reason"] for e in shown["events"]][:1] == ["force_open: calendar down"]
    code, out, err = _guard(app_url, redis_url, "breaker", "list", "--json")
    assert code == 0, err
    assert {c["key"]: c["state"] for c in json.loads(out)}[KEY] == "forced_open"


def test_the_application_may_not_change_a_circuit(
    db_url: str, app_url: str, redis_url: str
) -> None:
    code, _, err = _guard(
        app_url, redis_url, "breaker", "trip", KEY, "--reason", "not mine", "--create"
    )
    assert code == 1
    assert "owner role" in err
