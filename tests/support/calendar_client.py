"""Calendar clients for `guard calendar reconcile` in tests: what a user's module holds. The
command loads them by MODULE:CALLABLE; in-process tests set BOOKINGS first."""

from __future__ import annotations

from datetime import datetime

from guard.booking import CalendarBooking

BOOKINGS: list[CalendarBooking] = []
SEEN_WINDOWS: list[tuple[datetime, datetime]] = []
NOT_CALLABLE = 42


def list_bookings(since: datetime, until: datetime) -> list[CalendarBooking]:
    SEEN_WINDOWS.append((since, until))
    return list(BOOKINGS)


async def list_bookings_async(since: datetime, until: datetime) -> list[CalendarBooking]:
    SEEN_WINDOWS.append((since, until))
    return list(BOOKINGS)


def failing(since: datetime, until: datetime) -> list[CalendarBooking]:
    # the message quotes a phone number, as a third-party error might
    raise ConnectionError("calendar unreachable while booking for +49 30 1234567")


def not_a_list(since: datetime, until: datetime) -> object:
    return {"uid": "not-a-booking"}
