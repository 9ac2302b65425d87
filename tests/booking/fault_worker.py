"""A booking worker for the fault tests, run as its own process:

    python -m tests.booking.fault_worker URL REDIS_URL SERVICE_ID WORKER WORKERS CALLS

It books its share of the calls (call ids WORKER+1, WORKER+1+WORKERS, ...) through
guard.booking.book_appointment, one after the other, against `RedisCalendar`, until the Redis key
`fault:stop` is set. Like an application would, it reconnects after a database error and tries
the same call once more. It counts every answered booking in Redis (`fault:progress:WORKER`), so
that the test can inject a fault when all workers are busy, and prints its counts as one JSON
line at the end.

`RedisCalendar` is the external calendar: not the thing under test, but real enough to count.
Every request is logged (call and idempotency key) in Redis, and a booking is stored by key: a
repeated key returns the booking made the first time, as an idempotent calendar API does.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from typing import Any, cast

import psycopg
import redis

from guard.booking import CalendarBooking, book_appointment
from guard.breaker import BreakerConfig, BreakerRegistry
from guard.retry import RetryPolicy

STOP_KEY = "fault:stop"
PROGRESS_KEY = "fault:progress"  # per worker: bookings answered (the test waits on it)
REQUESTS_KEY = "calendar:requests"
BOOKINGS_KEY = "calendar:bookings"
CALENDAR_LATENCY_SECONDS = 0.003  # a network round trip: the window in which a fault hurts most


class RedisCalendar:
    def __init__(self, redis_url: str) -> None:
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)

    def book(self, idempotency_key: str, call_id: int) -> CalendarBooking:
        self.redis.rpush(REQUESTS_KEY, json.dumps({"call_id": call_id, "key": idempotency_key}))
        time.sleep(CALENDAR_LATENCY_SECONDS)
        record = json.dumps({"uid": f"cal-{call_id}-{idempotency_key[:8]}", "call_id": call_id})
        self.redis.hsetnx(BOOKINGS_KEY, idempotency_key, record)
        return self.lookup(idempotency_key) or CalendarBooking(uid="unreachable")

    def lookup(self, idempotency_key: str) -> CalendarBooking | None:
        stored = self.redis.hget(BOOKINGS_KEY, idempotency_key)
        if stored is None:
            return None
        return CalendarBooking(uid=json.loads(str(stored))["uid"])

    def requests(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.redis.lrange(REQUESTS_KEY, 0, -1)]

    def bookings(self) -> dict[str, dict[str, Any]]:
        # a client with decode_responses: the keys are str (redis-py's types cannot tell)
        stored = cast(dict[str, str], self.redis.hgetall(BOOKINGS_KEY))
        return {key: json.loads(value) for key, value in stored.items()}


def _connect(url: str, deadline_s: float = 60) -> psycopg.Connection[Any]:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return psycopg.connect(url, connect_timeout=2)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main(argv: list[str]) -> int:
    url, redis_url, service, worker, workers, calls = argv
    service_id, worker_no, worker_count = int(service), int(worker), int(workers)
    calendar = RedisCalendar(redis_url)
    breakers = BreakerRegistry(
        in_memory=True, default=BreakerConfig(failure_threshold=1000, call_timeout_seconds=10)
    )
    counts: Counter[str] = Counter()
    conn = _connect(url)
    for call_id in range(worker_no + 1, int(calls) + 1, worker_count):
        if calendar.redis.exists(STOP_KEY):
            break
        for _try in range(2):  # the application's own retry after an error
            try:
                outcome = book_appointment(
                    conn,
                    call_id=call_id,
                    service_id=service_id,
                    book=lambda key, call=call_id: calendar.book(key, call),
                    breakers=breakers,
                    retry_policy=RetryPolicy(max_attempts=1),
                    wait_seconds=0,
                )
                counts[str(outcome.status)] += 1
                calendar.redis.incr(f"{PROGRESS_KEY}:{worker_no}")
                break
            except Exception as error:  # what the application sees
                counts[f"error:{type(error).__name__}"] += 1
                if conn.broken or conn.closed:
                    conn.close()
                    conn = _connect(url)
                    counts["reconnects"] += 1
    conn.close()
    print(json.dumps(dict(counts)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
