"""The dispatcher loop (docs/alerts.md, "Claiming, leases, at-least-once" and "Connection
poolers"): per channel claim (SKIP LOCKED + lease) -> send -> mark. A claim commits before the
send, so a dispatcher killed in between re-sends after its lease ends: a duplicate, never a loss.
LISTEN (guard_alerts, guard_detection_queue) only wakes it; behind a transaction pooler no NOTIFY
arrives (its own probe at connect says so) and it polls every POLL_WITHOUT_NOTIFY_S seconds."""

# ruff: noqa: B023 (the functions given to _fit and _once run at once, in the loop's iteration)
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from guard import queries, tracing
from guard.backoff import exponential_delay
from guard.connection import connect, reconnect_delay, scalar
from guard.errors import ConfigurationError, GuardError, first_line
from guard.ops.dispatch.message import Message, digest_message, plan_messages
from guard.ops.dispatch.outbox import (
    ALERTS,
    KIND_NAMES,
    REPORTS,
    RESOLVED,
    SENT_STATS,
    DeliveryStore,
    Outbox,
    OutboxKind,
    review_notices,
)
from guard.ops.dispatch.sinks import DeliveryError, Sink
from guard.ops.login_limits import Batch, within_limits
from guard.redact import redact_text

log = logging.getLogger("guard.dispatch")
_T = TypeVar("_T")

CHANNEL_NOTIFY = "guard_alerts"
CHANNEL_DETECTION_QUEUE = "guard_detection_queue"
# At most this many drains (guard.detection_queue_batch calls each) per round, so that a burst
# of queued calls does not hold back the delivery of what they raised.
DETECTION_DRAINS_PER_ROUND = 20
_WAIT_SLICE_S = 0.5
# How long the dispatcher waits for its own NOTIFY at start (a direct connection: milliseconds).
NOTIFY_PROBE_TIMEOUT_S = 2.0
# The poll interval when notifications do not arrive (capped by --poll-interval).
POLL_WITHOUT_NOTIFY_S = 1.0
# Severities from the most serious down (guard.alerts.severity, guard.checks.severity).
SEVERITIES = ("critical", "high", "medium", "low")
# The most alerts one digest message covers; a period with more is sent in several messages.
DIGEST_MAX_ALERTS = 5000
# The most undelivered alerts one enqueue statement looks at (fewer once statement_timeout cut one).
ENQUEUE_BATCH = 1000
# Channels whose receiver takes alerts one by one (Alertmanager), not reports or digests.
ALERTS_ONLY_CHANNELS = frozenset({"alertmanager"})
# The span of a channel's rate limit (--<channel>-rate: messages a minute).
WINDOW_S = 60.0


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


_LONGEST_DURATION_S = 365 * 24 * 3600.0


@dataclass(frozen=True)
class DispatchSettings:
    poll_interval_s: float = 30.0
    batch_size: int = 200
    lease_s: float = 60.0
    send_timeout_s: float = 10.0
    max_attempts: int = 10
    backoff_base_s: float = 5.0
    backoff_max_s: float = 900.0
    # A receiver's Retry-After (429, 503) is honoured up to this many seconds.
    retry_after_max_s: float = 3600.0
    worker_id: str = field(default_factory=default_worker_id)
    # Channels that are told once when an alert they were sent resolves (opt-in).
    resolved_channels: frozenset[str] = frozenset()
    # Review priorities (0 = booking_outcome_unknown, ...) announced on every channel, once per
    # item opened after the channel first subscribed to the priority (opt-in).
    review_priorities: frozenset[int] = frozenset()
    # Channels that are sent each stored daily report once (opt-in).
    report_channels: frozenset[str] = frozenset()
    # Channel -> hours: one digest message per period instead of one message per alert.
    digest_hours: Mapping[str, int] = field(default_factory=dict)
    # Channel -> the least severity it is sent; deliveries below are recorded skipped.
    min_severity: Mapping[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """What the CLI's options cannot say alone: every duration fits PostgreSQL's interval,
        and a send cannot outlive its claim."""
        durations = (self.poll_interval_s, self.lease_s, self.send_timeout_s, self.backoff_max_s)
        # `not <=`: NaN and infinity fail too; PostgreSQL's intervals end long before a float does
        if not all(value <= _LONGEST_DURATION_S for value in durations):
            raise ConfigurationError("poll interval, lease, send timeout, backoff: a year at most")
        if self.lease_s <= 2 * self.send_timeout_s:
            raise ConfigurationError(
                f"the lease ({self.lease_s:g} s) must be more than twice the send timeout"
                f" ({self.send_timeout_s:g} s): a send must never outlive its claim"
            )


@dataclass
class RunStats:
    alerts_delivered: int = 0  # (alert, channel) pairs marked delivered
    messages_sent: int = 0
    summaries_sent: int = 0
    notices_sent: dict[str, int] = field(default_factory=dict)  # outbox kind -> sent
    digests_sent: int = 0
    skipped_below_severity: int = 0  # (alert, channel) pairs below the channel's minimum
    failed_sends: int = 0
    gave_up: int = 0
    unrenderable: int = 0  # (alert, channel) pairs marked failed: the alert cannot be rendered
    reconnects: int = 0
    notify_wakeups: int = 0
    calls_checked: int = 0  # calls of guard.detection_queue checked
    poll_wakeups: int = 0
    notifications_arrive: bool | None = None  # the probe of the newest connection (None: none)
    per_channel: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        flat = dict(self.__dict__)
        sent = flat.pop("notices_sent")
        for kind in (*KIND_NAMES, *sent):
            flat[SENT_STATS.get(kind, f"{kind}s_sent")] = sent.get(kind, 0)
        return flat


class RateWindow:
    """A channel's rate limit: at most `per_minute` messages in any WINDOW_S window (0 =
    unlimited)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._sent: deque[float] = deque()

    def capacity(self) -> int | None:
        """Messages that may still go out now; None when unlimited."""
        if self.per_minute <= 0:
            return None
        cutoff = self._clock() - WINDOW_S
        while self._sent and self._sent[0] <= cutoff:
            self._sent.popleft()
        return max(0, self.per_minute - len(self._sent))

    def record(self) -> None:
        if self.per_minute > 0:
            self._sent.append(self._clock())

    def seconds_until_room(self) -> float:
        capacity = self.capacity()
        if capacity is None or capacity > 0 or not self._sent:
            return 0.0
        return max(0.0, self._sent[0] + WINDOW_S - self._clock())


@dataclass
class _Channel:
    name: str
    sink: Sink
    window: RateWindow
    paused_until: float = 0.0


class Dispatcher:
    def __init__(
        self,
        database_url: str | None,
        channels: Sequence[tuple[Sink, int]],
        settings: DispatchSettings | None = None,
        outboxes: Sequence[Outbox] | None = None,
    ) -> None:
        """outboxes: the once-only kinds this run sends and where (default: what settings
        asks for: review notices on every channel, reports on the report channels, resolved
        notices on the resolved channels)."""
        self.settings = settings or DispatchSettings()
        self.settings.check()
        names = [sink.name for sink, _ in channels]
        for what, chosen in (
            ("resolved notifications", self.settings.resolved_channels),
            ("reports", self.settings.report_channels),
            ("digests", set(self.settings.digest_hours)),
            ("a minimum severity", set(self.settings.min_severity)),
        ):
            unknown = sorted(set(chosen) - set(names))
            if unknown:
                raise ConfigurationError(
                    f"{what} for channel(s) not delivered to: {', '.join(unknown)};"
                    f" deliver to them too: {' '.join(f'--channel {u}' for u in unknown)}"
                )
        self.database_url = database_url
        self._channels = [_Channel(sink.name, sink, RateWindow(rate)) for sink, rate in channels]
        if outboxes is None:
            priorities = self.settings.review_priorities
            outboxes = [
                Outbox(review_notices(priorities), frozenset(names if priorities else ())),
                Outbox(REPORTS, self.settings.report_channels),
                Outbox(RESOLVED, self.settings.resolved_channels),
            ]
        self._outboxes = [o for o in outboxes if o.channels]
        self._stop = threading.Event()
        self._connected = False  # set once _serve has its connections: the outage is over
        self._connected_once = False
        self._enqueued_at = 0.0
        self._poll_s = self.settings.poll_interval_s  # shorter when notifications do not arrive
        # Check the calls commits queued (guard.detection_queue) in every round; off once the
        # database refuses it.
        self._drains_queue = True
        # Per kind of statement, the batch that fits the login's statement_timeout.
        self._batches: dict[str, Batch] = {}
        self.stats = RunStats(notices_sent={o.kind.name: 0 for o in self._outboxes})

    @property
    def channel_names(self) -> list[str]:
        return [c.name for c in self._channels]

    def stop(self) -> None:
        """Finish the message being sent, give back the other claims, return (signal-safe)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _fit(
        self,
        store: DeliveryStore,
        kind: str | None,
        largest: int,
        call: Callable[[int], _T],
        what: Callable[[int], str],
    ) -> _T:
        """call(size) within the login's limits (guard.ops.login_limits), with the batch of this
        kind of statement (None: one item, never smaller)."""
        batch = None if kind is None else self._batches.setdefault(kind, Batch(largest))
        return within_limits(store.conn, batch, call, what, stop=lambda: self.stopping)

    def _once(self, store: DeliveryStore, what: str, call: Callable[[], _T]) -> _T:
        """A statement of one item within the login's limits (what: what it does)."""
        return self._fit(store, None, 1, lambda _: call(), lambda _: what)

    def _chunked(
        self,
        store: DeliveryStore,
        kind: OutboxKind,
        ids: Sequence[int],
        call: Callable[[Sequence[int]], int],
        what: str,
    ) -> int:
        """call over `ids` in statements of the size that fits the login's statement_timeout;
        the sum of what they return. `what`: what a statement does to its deliveries."""
        done, rest = 0, list(ids)
        while rest:
            marked, used = self._fit(
                store,
                what,
                self.settings.batch_size,
                lambda n: (call(rest[:n]), min(n, len(rest))),
                lambda n: f"{what} {min(n, len(rest))} {kind.label}(s)",
            )
            done, rest = done + marked, rest[used:]
        return done

    # -- one pass -----------------------------------------------------------------------------

    def run_once(self) -> RunStats:
        """Deliver what is due now on every channel, then return."""
        with connect(self.database_url, autocommit=True, application_name="guard-watch") as conn:
            store = DeliveryStore(conn)
            try:
                self._round(store)
            finally:
                self._release_all(store)
        return self.stats

    def skip_before(self, seen_before: datetime, actor: str) -> int:
        """Mark skipped, on this dispatcher's channels, the deliveries of alerts last seen before
        `seen_before`; recorded in guard.delivery_skips with `actor`."""
        with connect(self.database_url, autocommit=True, application_name="guard-watch") as conn:
            store = DeliveryStore(conn)
            return self._once(
                store,
                f"skipping the deliveries of alerts last seen before {seen_before}",
                lambda: store.count(
                    queries.SKIP_ALERT_DELIVERIES, seen_before, self.channel_names, actor
                ),
            )

    def pending(self) -> tuple[dict[str, int], dict[str, int]]:
        """This dispatcher's deliveries by status, and per channel those that failed and wait
        for their retry."""
        names = self.channel_names
        with connect(self.database_url, autocommit=True, application_name="guard-watch") as conn:
            store = DeliveryStore(conn)
            return self._once(
                store,
                "counting the deliveries",
                lambda: (store.counts(names), store.retrying(names)),
            )

    # -- forever ------------------------------------------------------------------------------

    def run_forever(self) -> RunStats:
        """Until stop(): LISTEN, deliver, wait for a NOTIFY or the next due time. A lost
        database connection is retried with backoff; nothing is lost meanwhile (the table is
        the outbox)."""
        failures = 0
        while not self.stopping:
            self._connected = False
            try:
                self._serve()
                failures = 0
            except (
                psycopg.OperationalError,
                psycopg.InterfaceError,
                psycopg.errors.ReadOnlySqlTransaction,  # a primary demoted under us
                GuardError,
            ) as error:
                # A failure after a good connection is a new outage: back off from the minimum.
                failures = 1 if self._connected else failures + 1
                delay = reconnect_delay(failures)
                if isinstance(error, psycopg.errors.ReadOnlySqlTransaction):
                    log.warning(
                        "the database is read-only (a standby in recovery, or a demoted primary):"
                        " alerts are delivered from the primary; retrying in %.1f s (a multi-host"
                        " URL with target_session_attrs=read-write finds it, docs/ha.md)",
                        delay,
                    )
                else:
                    log.warning(
                        "database unavailable (%s); retrying in %.1f s", first_line(error), delay
                    )
                self._stop.wait(delay)
        return self.stats

    def _serve(self) -> None:
        listen = connect(self.database_url, autocommit=True, application_name="guard-watch")
        work = connect(self.database_url, autocommit=True, application_name="guard-watch")
        with listen, work:
            self._probe_notifications(listen, work)
            channels = [CHANNEL_NOTIFY, *([CHANNEL_DETECTION_QUEUE] if self._drains_queue else [])]
            for channel in channels:  # before the first pass: no gap
                listen.execute(sql.SQL(queries.LISTEN_CHANNEL).format(sql.Identifier(channel)))
            store = DeliveryStore(work)
            if self._connected_once:
                self.stats.reconnects += 1
            self._connected = self._connected_once = True
            log.info(
                "dispatcher %s watching channels %s",
                self.settings.worker_id,
                ", ".join(self.channel_names),
            )
            try:
                enqueue = True
                while not self.stopping:
                    self._round(store, enqueue=enqueue)
                    if self.stopping:
                        break
                    woke = self._wait(listen, self._next_wait(store))
                    if self.stopping:
                        break
                    # The enqueue reads every undelivered alert: a wake-up that only retries a
                    # channel (its pause is over) has nothing new to queue. New alerts always
                    # send a NOTIFY; the poll interval stays the fallback.
                    enqueue = woke or (time.monotonic() - self._enqueued_at >= self._poll_s)
                    if woke:
                        self.stats.notify_wakeups += 1
                    else:
                        self.stats.poll_wakeups += 1
            finally:
                if not work.closed:
                    self._release_all(store)

    def _probe_notifications(
        self, listen: psycopg.Connection[Any], work: psycopg.Connection[Any]
    ) -> None:
        """Send a NOTIFY to this dispatcher alone and see whether it arrives; poll often when
        not."""
        probe = sql.Identifier(f"guard_watch_probe_{os.getpid()}_{uuid.uuid4().hex[:12]}")
        listen.execute(sql.SQL(queries.LISTEN_CHANNEL).format(probe))
        work.execute(sql.SQL(queries.NOTIFY_CHANNEL).format(probe))
        arrived = any(True for _ in listen.notifies(timeout=NOTIFY_PROBE_TIMEOUT_S, stop_after=1))
        listen.execute(sql.SQL(queries.UNLISTEN_CHANNEL).format(probe))
        self.stats.notifications_arrive = arrived
        if arrived:
            self._poll_s = self.settings.poll_interval_s
            return
        self._poll_s = min(self.settings.poll_interval_s, POLL_WITHOUT_NOTIFY_S)
        log.warning(
            "notifications do not reach this dispatcher (is a transaction pooler such as PgBouncer"
            " between it and PostgreSQL?): polling every %.1f s instead; give guard watch a direct"
            " or session-pooled connection (docs/alerts.md#connection-poolers)",
            self._poll_s,
        )

    def _next_wait(self, store: DeliveryStore) -> float:
        """Until the poll interval, or sooner when a channel has something due (after its own
        pause or throttle window)."""
        wait = self._poll_s
        if self._drains_queue:
            queued = self._once(
                store,
                "reading when the next queued call is due",
                lambda: scalar(store.conn, queries.SECONDS_UNTIL_DETECTION_DUE),
            )
            if queued is not None:  # seconds until the next queued call is due (<= 0: now)
                wait = min(wait, float(queued))
        # A digest channel's pending alerts wait for the end of its period; its notices, and
        # every other channel's deliveries, for their next attempt.
        pending = [
            (kind.name, channel.name)
            for channel in self._channels
            for kind in self._kinds(channel)
            if not (kind is ALERTS and channel.name in self.settings.digest_hours)
        ]
        due = self._once(
            store, "reading when deliveries are next due", lambda: store.seconds_until_due(pending)
        )
        now = time.monotonic()
        for channel in self._channels:
            hours = self.settings.digest_hours.get(channel.name)
            if hours is not None:
                wait = min(wait, _seconds_to_period_end(hours))
            if channel.name in due:
                blocked = max(channel.paused_until - now, channel.window.seconds_until_room())
                wait = min(wait, max(due[channel.name], blocked))
        return max(0.01, wait)

    def _wait(self, listen: psycopg.Connection[Any], timeout_s: float) -> bool:
        """True when a NOTIFY arrived, False on timeout or stop."""
        deadline = time.monotonic() + timeout_s
        while not self.stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            for _ in listen.notifies(timeout=min(remaining, _WAIT_SLICE_S), stop_after=1):
                return True
        return False

    # -- delivery -----------------------------------------------------------------------------

    def _round(self, store: DeliveryStore, *, enqueue: bool = True) -> None:
        if self._drains_queue and self._drain_detection_queue(store):
            enqueue = True  # what the checks raised is delivered in this round
        if enqueue:
            self._enqueue(store)
        for channel in self._channels:
            for kind in self._kinds(channel):
                if self.stopping:
                    return
                hours = self.settings.digest_hours.get(channel.name) if kind is ALERTS else None
                self._pump(store, channel, kind, hours)

    def _kinds(self, channel: _Channel) -> list[OutboxKind]:
        """What this dispatcher sends on the channel: alerts, then its once-only kinds."""
        return [ALERTS, *(o.kind for o in self._outboxes if channel.name in o.channels)]

    def _drain_detection_queue(self, store: DeliveryStore) -> int:
        """Check the due calls commits queued, a bounded number of batches; how many. A database
        without the queue (before 0095) or a login that may not drain it: said once, then
        delivery goes on without it (the detect_queue job drains it)."""
        checked = 0
        for _ in range(DETECTION_DRAINS_PER_ROUND):
            if self.stopping:
                break
            try:
                drained = store.count(queries.DRAIN_DETECTION_QUEUE)
            except (
                psycopg.errors.UndefinedFunction,
                psycopg.errors.UndefinedTable,
                psycopg.errors.InsufficientPrivilege,
            ) as error:
                self._drains_queue = False
                log.warning(
                    "not checking the calls queued at commit (%s): the detect_queue job does",
                    redact_text(first_line(error)),
                )
                break
            except psycopg.DatabaseError as error:
                # The login's statement_timeout or lock_timeout, or another failure: rolled back,
                # the calls stay queued for the next round (or the job). A lost connection is not
                # this round's to absorb.
                cut = isinstance(
                    error, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable
                )
                if isinstance(error, psycopg.OperationalError) and not cut:
                    raise
                log.warning(
                    "checking the calls queued at commit %s (%s); tried again next round"
                    " (the detect_queue job checks them too)",
                    "was cut" if cut else "failed",
                    redact_text(first_line(error)),
                )
                break
            checked += drained
            if drained == 0:
                break
        self.stats.calls_checked += checked
        return checked

    def _enqueue(self, store: DeliveryStore) -> None:
        """Queue what is new for this dispatcher's channels, and skip what is below a channel's
        minimum severity before anything is claimed."""
        added, after = 0, 0
        while not self.stopping:
            some, last = self._fit(
                store,
                "enqueue",
                ENQUEUE_BATCH,
                lambda n: store.enqueue(self.channel_names, after, n),
                lambda n: f"enqueueing the deliveries of {n} alert(s)",
            )
            if last is None:
                break
            added, after = added + some, last
        self._enqueued_at = time.monotonic()
        if added:
            log.debug("queued %d deliveries", added)
        for outbox in self._outboxes:
            kind, enqueue = outbox.kind, outbox.kind.enqueue
            if enqueue is None:
                continue
            queued = self._once(
                store,
                f"enqueueing {kind.label}s",
                lambda: enqueue(store, sorted(outbox.channels)),
            )
            if queued:
                log.debug("queued %d %ss", queued, kind.label)
        actor = f"guard watch --min-severity ({self.settings.worker_id})"
        for name, severity in sorted(self.settings.min_severity.items()):
            skipped = self._once(
                store,
                f"skipping the deliveries below {severity} on {name}",
                lambda: store.count(queries.SKIP_ALERT_DELIVERIES_BELOW, name, severity, actor),
            )
            if skipped:
                log.info("%s: %d alert(s) below %s skipped", name, skipped, severity)
            self.stats.skipped_below_severity += skipped

    def _pump(
        self, store: DeliveryStore, channel: _Channel, kind: OutboxKind, hours: int | None = None
    ) -> None:
        """Send the channel what the kind queued for it, claimed in batches under a lease (SKIP
        LOCKED: no duplicates across dispatchers): a message each (alerts past the rate window's
        room share a summary) or, with `--digest` hours, one message for the alerts opened in
        each ended period. A delivery stays pending until settled: a message that failed is
        retried with backoff, one a dispatcher was killed before settling is sent again when its
        lease ends (at least once); one that cannot be rendered fails and the others go on."""
        s = self.settings
        what = f"{kind.label}(s)" if hours is None else "alert(s) for a digest"
        while not self.stopping and time.monotonic() >= channel.paused_until:
            capacity = channel.window.capacity()
            if capacity == 0:
                return
            # Alerts past the room share a summary; a notice past it would only be given back.
            room = None if kind.summarised else capacity
            claimed_at = time.monotonic()
            (attempts, period_end), limit = self._fit(
                store,
                kind.label if hours is None else "digest",
                s.batch_size if hours is None else DIGEST_MAX_ALERTS,
                lambda n: (
                    store.claim(
                        kind.name, channel.name, s.worker_id, _upto(n, room), s.lease_s, hours
                    ),
                    _upto(n, room),
                ),
                lambda n: f"claiming {_upto(n, room)} {what} on {channel.name}",
            )
            if not attempts:
                return
            loaded = kind.load(store, list(attempts))
            if period_end is not None and hours is not None:
                messages = [digest_message(loaded, period_end, hours, channel.name)]
            else:
                plan = plan_messages(loaded, capacity, channel.name, kind.render, list(attempts))
                self._unrenderable(store, channel, kind, plan.unrenderable)
                messages = plan.messages
            deadline = claimed_at + s.lease_s
            failed = False
            for message in messages:
                if self.stopping or failed or time.monotonic() + s.send_timeout_s > deadline:
                    break
                try:
                    _send(channel, message)
                except Exception as error:  # a DeliveryError, or e.g. a header the sink refuses
                    # Another error's text may quote configuration: redacted. A digest is retried
                    # and counted; a message of its own is not a problem a retry could fix: it
                    # fails, the others go on.
                    if not isinstance(error, DeliveryError):
                        reason = redact_text(f"{type(error).__name__}: {error}")
                        if message.kind != "digest":
                            ids = dict.fromkeys(message.alert_ids, reason)
                            self._unrenderable(store, channel, kind, ids)
                            continue
                        error = DeliveryError(reason)
                    failed = True
                    self._failed(store, channel, kind, message.alert_ids, attempts, error)
                    continue
                self._delivered(store, channel, kind, message, period_end)
            self._once(  # whatever was claimed but not sent
                store,
                f"giving back the claims on {channel.name}",
                lambda: store.release(channel.name, s.worker_id),
            )
            if failed or len(attempts) < limit:
                return

    def _delivered(
        self,
        store: DeliveryStore,
        channel: _Channel,
        kind: OutboxKind,
        message: Message,
        period_end: datetime | None,
    ) -> None:
        """Settle a message sent (a digest: in the period that ends at period_end) and count it."""
        marked = self._chunked(
            store,
            kind,
            message.alert_ids,
            lambda some: (
                store.count(queries.COMPLETE_ALERT_DIGEST, channel.name, period_end, some)
                if message.kind == "digest" and period_end is not None
                else store.settle(kind.name, channel.name, some)
            ),
            f"marking delivered on {channel.name}",
        )
        channel.window.record()
        self.stats.messages_sent += 1
        self.stats.summaries_sent += message.kind == "summary"
        self.stats.digests_sent += message.kind == "digest"
        if kind is not ALERTS:
            self.stats.notices_sent[kind.name] = self.stats.notices_sent.get(kind.name, 0) + 1
            return
        self.stats.alerts_delivered += marked
        self.stats.per_channel[channel.name] = self.stats.per_channel.get(channel.name, 0) + marked

    def _failed(
        self,
        store: DeliveryStore,
        channel: _Channel,
        kind: OutboxKind,
        subjects: Sequence[int],
        attempts: Mapping[int, int],
        failure: DeliveryError,
    ) -> None:
        """Count the attempt and schedule the next one: exponential backoff, or the receiver's
        Retry-After (capped at retry_after_max_s) when that is later. The delay is stored per
        delivery (next_attempt_at), so every dispatcher honours it, and pauses this channel."""
        s = self.settings
        error = redact_text(str(failure))
        tried = max((attempts.get(subject, 0) for subject in subjects), default=0)
        pause = exponential_delay(tried + 1, s.backoff_base_s, s.backoff_max_s)
        base_s, max_s = s.backoff_base_s, s.backoff_max_s
        if failure.retry_after_s is not None:
            asked = min(failure.retry_after_s, s.retry_after_max_s)
            if asked > pause:
                # base = max = the delay: guard.settle_deliveries's
                # least(max, base * 2^attempts) is then exactly that delay.
                pause = base_s = max_s = asked
        gave_up = self._chunked(
            store,
            kind,
            subjects,
            lambda some: store.settle(
                kind.name,
                channel.name,
                some,
                error,
                backoff_base_s=base_s,
                backoff_max_s=max_s,
                max_attempts=s.max_attempts,
            ),
            f"recording a failed send on {channel.name} of",
        )
        channel.paused_until = time.monotonic() + pause
        self.stats.failed_sends += 1
        self.stats.gave_up += gave_up
        log.warning(
            "%s: %s; %d %s(s) retried in %.1f s%s",
            channel.name,
            error,
            len(subjects),
            kind.label,
            pause,
            f", {gave_up} given up after {s.max_attempts} attempts" if gave_up else "",
        )

    def _unrenderable(
        self, store: DeliveryStore, channel: _Channel, kind: OutboxKind, reasons: dict[int, str]
    ) -> None:
        """Mark these deliveries failed on this channel at once (one attempt), each with its
        reason."""
        for subject, raw in sorted(reasons.items()):
            reason = redact_text(raw)
            self._once(
                store,
                f"marking {kind.label} for {kind.subject} #{subject} failed on {channel.name}",
                lambda: store.settle(
                    kind.name, channel.name, [subject], f"cannot render {kind.label}: {reason}"
                ),
            )
            self.stats.unrenderable += 1
            log.error(
                "%s: %s for %s #%d cannot be rendered (%s); marked failed, delivery goes on",
                channel.name,
                kind.label,
                kind.subject,
                subject,
                reason,
            )

    def _release_all(self, store: DeliveryStore) -> None:
        for channel in self._channels:
            try:
                store.release(channel.name, self.settings.worker_id)
            except psycopg.Error:
                return


def _upto(n: int, room: int | None) -> int:
    return n if room is None else min(n, room)


def _send(channel: _Channel, message: Message) -> None:
    """One message to one channel, in a span of its own when tracing is on (docs/tracing.md):
    the channel, the kind of message and how many alerts it carries; never its text."""
    attributes: dict[str, tracing.AttributeValue] = {
        "guard.dispatch.channel": channel.name,
        "guard.dispatch.kind": message.kind,
        "guard.dispatch.alerts": len(message.alert_ids),
    }
    with tracing.span("guard.dispatch.send", attributes):
        channel.sink.send(message)


def _seconds_to_period_end(hours: int) -> float:
    """Seconds until the current digest period of `hours` ends (periods counted from 1970-01-01
    UTC, as guard.claim_deliveries counts them), plus a second for clocks that disagree a
    little."""
    period_s = hours * 3600
    return period_s - time.time() % period_s + 1.0
