"""When a pg_cron schedule fires next: the schedule syntax pg_cron accepts, evaluated in UTC."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_SECONDS = re.compile(r"^\s*(\d+)\s+seconds?\s*$", re.IGNORECASE)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
_DAYS = {
    name: number for number, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])
}
# Enough days to reach any date a valid schedule can name: 29 February on a given weekday
# recurs within 28 years.
_SEARCH_DAYS = 366 * 29


class CronError(ValueError):
    """A schedule pg_cron would not accept."""


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: the values each field allows, or an interval in seconds."""

    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    last_day: bool = False
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()
    day_restricted: bool = False
    weekday_restricted: bool = False
    every_seconds: int | None = None
    never: bool = False

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days or (
            self.last_day and (day + timedelta(days=1)).month != day.month
        )
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return in_month or in_week
        if self.day_restricted:
            return in_month
        if self.weekday_restricted:
            return in_week
        return True


def _value(text: str, low: int, high: int, names: dict[str, int]) -> int:
    lowered = text.lower()
    if lowered in names:
        return names[lowered]
    if not text.isdigit():
        raise CronError(f"{text!r} is not a number")
    number = int(text)
    if not low <= number <= high:
        raise CronError(f"{number} is outside {low}-{high}")
    return number


def _field(
    text: str, low: int, high: int, names: dict[str, int] | None = None
) -> tuple[frozenset[int], bool]:
    """The values one field allows, and whether `$` (last day of the month) was among them."""
    allowed: set[int] = set()
    last = False
    for part in text.split(","):
        if not part:
            raise CronError(f"empty element in {text!r}")
        if part == "$":
            last = True
            continue
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise CronError(f"bad step in {part!r}")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, second = base.partition("-")
            start = _value(first, low, high, names or {})
            end = _value(second, low, high, names or {})
            if end < start:
                raise CronError(f"range {base!r} runs backwards")
        else:
            start = _value(base, low, high, names or {})
            end = high if step_text else start
        allowed.update(range(start, end + 1, step))
    return frozenset(allowed), last


def parse(schedule: str) -> Schedule:
    """A schedule as pg_cron reads it; CronError if pg_cron would refuse it."""
    text = schedule.strip()
    seconds = _SECONDS.match(text)
    if seconds:
        every = int(seconds.group(1))
        if not 1 <= every <= 59:
            raise CronError("an interval in seconds must be 1 to 59 seconds")
        return Schedule(every_seconds=every)
    lowered = text.lower()
    if lowered == "@reboot":
        return Schedule(never=True)
    text = _MACROS.get(lowered, text)
    fields = text.split()
    if len(fields) != 5:
        raise CronError(f"{schedule!r} has {len(fields)} fields, not 5")
    minutes, _ = _field(fields[0], 0, 59)
    hours, _ = _field(fields[1], 0, 23)
    days, last_day = _field(fields[2], 1, 31)
    months, _ = _field(fields[3], 1, 12, _MONTHS)
    weekdays, _ = _field(fields[4], 0, 7, _DAYS)
    if "$" in fields[0] + fields[1] + fields[3] + fields[4]:
        raise CronError("`$` (last day) belongs in the day-of-month field only")
    return Schedule(
        minutes=minutes,
        hours=hours,
        days=days,
        last_day=last_day,
        months=months,
        weekdays=frozenset(0 if d == 7 else d for d in weekdays),
        day_restricted=not fields[2].startswith("*"),
        weekday_restricted=not fields[4].startswith("*"),
    )


def next_fire(schedule: str | Schedule, after: datetime) -> datetime | None:
    """The first time strictly after `after` that the schedule fires (UTC), None if never."""
    parsed = parse(schedule) if isinstance(schedule, str) else schedule
    if after.tzinfo is None:
        after = after.replace(tzinfo=UTC)
    after = after.astimezone(UTC)
    if parsed.never:
        return None
    if parsed.every_seconds is not None:
        return after.replace(microsecond=0) + timedelta(seconds=parsed.every_seconds)
    start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    times = [(hour, minute) for hour in sorted(parsed.hours) for minute in sorted(parsed.minutes)]
    for offset in range(_SEARCH_DAYS):
        day = start.date() + timedelta(days=offset)
        if parsed.matches_day(day):
            for hour, minute in times:
                at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                if at >= start:
                    return at
    return None
