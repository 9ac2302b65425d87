"""guard.ops.cron: the next time a pg_cron schedule fires, against schedules worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from guard.ops.cron import CronError, next_fire, parse


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        # the jobs Booking Guard ships
        ("0 2 * * *", "2026-11-23 22:28:00", "2026-11-24 02:00:00"),
        ("0 2 * * *", "2026-11-24 01:59:59", "2026-11-24 02:00:00"),
        ("0 2 * * *", "2026-11-24 02:00:00", "2026-11-25 02:00:00"),  # strictly after
        ("*/5 * * * *", "2026-11-23 22:28:10", "2026-11-23 22:30:00"),
        ("*/5 * * * *", "2026-11-23 23:59:00", "2026-11-24 00:00:00"),
        ("0 * * * *", "2026-11-23 22:28:00", "2026-11-23 23:00:00"),
        ("10 * * * *", "2026-11-23 22:28:00", "2026-11-23 23:10:00"),
        ("30 3 * * *", "2026-12-31 03:30:00", "2027-01-01 03:30:00"),
        # ranges, steps, lists, names
        ("15,45 9-17 * * mon-fri", "2026-11-27 17:45:00", "2026-11-30 09:15:00"),  # Fri -> Mon
        ("0 9-17/4 * * *", "2026-11-23 13:00:00", "2026-11-23 17:00:00"),
        ("0 9-17/4 * * *", "2026-11-23 17:00:00", "2026-11-24 09:00:00"),
        ("5/20 * * * *", "2026-11-23 10:46:00", "2026-11-23 11:05:00"),
        ("0 0 1 jan,jul *", "2026-11-23 00:00:00", "2027-01-01 00:00:00"),
        ("0 0 * * 7", "2026-11-23 00:00:00", "2026-11-29 00:00:00"),  # 7 is Sunday
        ("0 0 * * 0", "2026-11-23 00:00:00", "2026-11-29 00:00:00"),
        # day of month and day of week both restricted: either matches
        ("0 12 1 * 1", "2026-11-23 13:00:00", "2026-11-30 12:00:00"),  # Monday before the 1st
        ("0 12 1 * 1", "2026-11-30 13:00:00", "2026-12-01 12:00:00"),  # the 1st, a Tuesday
        # one restricted, the other `*`: only the restricted one counts
        ("0 0 13 * *", "2026-11-23 00:00:00", "2026-12-13 00:00:00"),
        # the last day of the month
        ("0 23 $ * *", "2027-02-01 00:00:00", "2027-02-28 23:00:00"),
        ("0 23 $ * *", "2028-02-01 00:00:00", "2028-02-29 23:00:00"),
        # 29 February
        ("0 0 29 2 *", "2026-03-01 00:00:00", "2028-02-29 00:00:00"),
        # macros and intervals
        ("@daily", "2026-11-23 22:28:00", "2026-11-24 00:00:00"),
        ("@midnight", "2026-11-23 22:28:00", "2026-11-24 00:00:00"),
        ("@hourly", "2026-11-23 22:28:00", "2026-11-23 23:00:00"),
        ("@weekly", "2026-11-23 22:28:00", "2026-11-29 00:00:00"),
        ("@monthly", "2026-11-23 22:28:00", "2026-12-01 00:00:00"),
        ("@yearly", "2026-11-23 22:28:00", "2027-01-01 00:00:00"),
        ("@annually", "2026-11-23 22:28:00", "2027-01-01 00:00:00"),
        ("30 seconds", "2026-11-23 22:28:10.5", "2026-11-23 22:28:40"),
    ],
)
def test_next_fire(schedule: str, after: str, expected: str) -> None:
    assert next_fire(schedule, _t(after)) == _t(expected)


def test_a_time_in_another_zone_is_compared_in_utc() -> None:
    after = datetime.fromisoformat("2026-11-24T01:30:00+01:00")  # 00:30 UTC
    assert next_fire("0 2 * * *", after) == _t("2026-11-24 02:00:00")


def test_schedules_that_never_fire() -> None:
    assert next_fire("@reboot", _t("2026-11-23 00:00:00")) is None
    assert next_fire("0 0 30 2 *", _t("2026-11-23 00:00:00")) is None


@pytest.mark.parametrize(
    "schedule",
    [
        "0 2 * *",  # four fields
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * * 8",
        "5-1 * * * *",
        "*/0 * * * *",
        "a * * * *",
        "1,,2 * * * *",
        "$ * * * *",
        "60 seconds",
        "0 seconds",
    ],
)
def test_what_pg_cron_refuses_is_refused(schedule: str) -> None:
    with pytest.raises(CronError):
        parse(schedule)
