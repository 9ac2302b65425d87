"""`guard calendar reconcile` with a calendar client loaded from a module, in-process (CliRunner)
against a real database. The clients are in tests/support/calendar_client.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from guard.booking import CalendarBooking
from guard.cli import main
from guard.cli.params import moment
from tests.support import calendar_client

CLIENT = "tests.support.calendar_client:list_bookings"
SLOT = datetime.now(UTC) + timedelta(days=2)


def _run(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--database-url", url, "calendar", "reconcile", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def calendar_db(db_url: str) -> Iterator[str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        conn.execute(
            "INSERT INTO calls (id, company_id, retell_call_id, session_outcome)"
            " VALUES (1, 1, 'c1', 'in_progress')"
        )
    calendar_client.BOOKINGS[:] = [
        CalendarBooking(uid="uid-1", starts_at=SLOT, call_id=1),
        CalendarBooking(uid="uid-ui", starts_at=SLOT),
    ]
    calendar_client.SEEN_WINDOWS.clear()
    yield db_url
    calendar_client.BOOKINGS.clear()


def test_reconcile_records_queues_and_a_second_run_changes_nothing(calendar_db: str) -> None:
    code, out, err = _run(calendar_db, "--client", CLIENT, "--company", "1")
    assert code == 0, err
    assert "recorded" in out and "uid-ui" in out
    assert out.splitlines()[-1] == (
        "Changed: 1 recorded, 0 cancelled, 0 rescheduled, 1 queued for review; 0 unchanged."
    ), "the last line counts what the run wrote"
    [(since, until)] = calendar_client.SEEN_WINDOWS
    assert timedelta(days=30) < until - since < timedelta(days=32), "24h ago to 30 days ahead"

    code, out, err = _run(calendar_db, "--client", CLIENT, "--company", "1", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["changed"] is False
    assert report["wrote"] == {
        "recorded": 0,
        "cancelled": 0,
        "rescheduled": 0,
        "queued_for_review": 0,
    }
    assert report["unchanged"] == 2 and report["summary"] == "Nothing changed; 2 unchanged."
    assert report["counts"]["in_sync"] == 1 and report["calendar_only"] == ["uid-ui"]
    assert report["company_id"] == 1 and report["since"].endswith("+00:00")


def test_an_async_client_and_the_environment_variable(
    calendar_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARD_CALENDAR_CLIENT", "tests.support.calendar_client:list_bookings_async")
    code, out, err = _run(calendar_db, "--since", "2h", "--until", "7d", "--json")
    assert code == 0, err
    assert json.loads(out)["counts"]["recorded"] == 1


def test_a_module_in_the_current_directory(
    calendar_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_calendar_client.py").write_text(
        "def list_bookings(since, until):\n    return []\n"
    )
    (tmp_path / "broken_calendar_client.py").write_text("raise RuntimeError('no API key')\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(calendar_db, "--client", "my_calendar_client:list_bookings")
    assert code == 0, err
    code, _, err = _run(calendar_db, "--client", "broken_calendar_client:list_bookings")
    assert code == 2
    assert err == (
        "guard: error: --client: cannot import module broken_calendar_client: RuntimeError:"
        " no API key\n"
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--client", "calendar"], 2, "expected MODULE:CALLABLE"),
        (["--client", "no_such_module_here:list_bookings"], 2, "cannot import module"),
        (["--client", "tests.support.calendar_client:nothing"], 2, "has no nothing"),
        (["--client", "tests.support.calendar_client:NOT_CALLABLE"], 2, "not a callable"),
        (["--client", CLIENT, "--since", "yesterday"], 2, "is neither an ISO 8601 time"),
        (["--client", CLIENT, "--since", "99999d"], 2, "longer than"),
        (["--client", CLIENT, "--since", "2030-01-01", "--until", "2029-01-01"], 2, "before"),
        (["--client", "tests.support.calendar_client:failing"], 1, "the calendar client failed"),
        (["--client", "tests.support.calendar_client:not_a_list"], 1, "not a list"),
        (["--client", CLIENT, "--company", "424242"], 1, "company 424242 does not exist"),
    ],
)
def test_hostile_input_is_one_clear_line(
    calendar_db: str, args: list[str], code: int, message: str
) -> None:
    done, _out, err = _run(calendar_db, *args)
    assert done == code, err
    assert err.count("guard: error:") == 1 and err.endswith("\n") and "Traceback" not in err
    assert message in err.replace("'", "")
    assert "1234567" not in err, "the client's error is masked"


def test_nothing_is_written_when_the_client_fails(calendar_db: str) -> None:
    _run(calendar_db, "--client", "tests.support.calendar_client:failing")
    with psycopg.connect(calendar_db) as conn:
        assert conn.execute("SELECT count(*) FROM appointments").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM guard.review_items").fetchone() == (0,)


def test_parse_when() -> None:
    now = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    assert moment("24h", ahead=False, now=now) == now - timedelta(hours=24)
    assert moment("30d", ahead=True, now=now) == now + timedelta(days=30)
    assert moment("2026-11-01T08:00:00Z", ahead=False) == datetime(2026, 11, 1, 8, tzinfo=UTC)
    assert moment("2026-11-01", ahead=True) == datetime(2026, 11, 1, tzinfo=UTC)


def test_after_failover_on_a_server_that_never_replayed_warns_and_goes_on(
    calendar_db: str,
) -> None:
    code, out, err = _run(calendar_db, "--client", CLIENT, "--after-failover")
    assert code == 0, err
    assert "--after-failover: this server replayed nothing since it started" in err
    assert "Calendar reconciliation, bookings starting" in out
    [(since, until)] = calendar_client.SEEN_WINDOWS
    assert timedelta(days=364) < until - since < timedelta(days=367), "24h ago to 365 days ahead"


def _audit(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT c.entity_id, c.rule_id, c.before, c.after ->> 'booking_uid', c.reason"
            " FROM guard.correction_audit AS c WHERE c.entity_type = 'appointment'"
            " ORDER BY c.id"
        ).fetchall()


def test_every_recorded_booking_leaves_an_audit_row_once(calendar_db: str) -> None:
    """Issue 71: a booking the reconciliation recorded (after a failover: one the promoted
    server lost) left no trail but the appointment. Each gets a guard.correction_audit row, once:
    a second run, which records nothing, audits nothing."""
    code, out, err = _run(calendar_db, "--client", CLIENT, "--company", "1", "--json")
    assert code == 0, err
    report = json.loads(out)
    [appointment] = report["recorded"]
    assert report["audited"] == 1
    assert _audit(calendar_db) == [
        (
            appointment,
            "I7_booking_failures",
            None,
            "uid-1",
            "calendar reconciliation: recorded from the calendar (booking uid-1)",
        )
    ]
    code, out, err = _run(calendar_db, "--client", CLIENT, "--company", "1")
    assert code == 0, err
    assert len(_audit(calendar_db)) == 1


def test_a_restoration_after_a_failover_says_so_in_its_audit(calendar_db: str) -> None:
    """What the command writes after a failover (the promoted server's last replayed transaction
    comes from a real promotion in tests/ha/test_lost_bookings.py): the reason names the
    failover and that time; an id given again, an unknown id or a cancelled appointment writes
    nothing."""
    code, _, err = _run(calendar_db, "--client", CLIENT, "--company", "1")
    assert code == 0, err
    with psycopg.connect(calendar_db, autocommit=True) as conn:
        conn.execute("DELETE FROM guard.correction_audit")
        [(appointment,)] = conn.execute("SELECT id FROM appointments").fetchall()
        replayed = datetime(2026, 11, 28, 10, 30, 15, tzinfo=UTC)
        audit = "SELECT guard.audit_calendar_restorations(%s::bigint[], %s)"
        assert conn.execute(audit, ([appointment, appointment, 999], replayed)).fetchone() == (1,)
        assert conn.execute(audit, ([appointment], replayed)).fetchone() == (0,)
        assert conn.execute(audit, ([], None)).fetchone() == (0,)
    [(_, _, _, _, reason)] = _audit(calendar_db)
    assert reason == (
        "calendar reconciliation: recorded from the calendar after a failover (the promoted"
        " server replayed up to 2026-11-28 10:30:15 UTC) (booking uid-1)"
    )
