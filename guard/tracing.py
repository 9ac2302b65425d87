"""Optional OpenTelemetry tracing: spans around the booking path, the breaker's decisions and the
dispatcher's sends (docs/tracing.md)."""

from __future__ import annotations

import atexit
import functools
import importlib
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from guard import __version__

AttributeValue = str | int | float | bool


@functools.cache
def _api() -> Any:
    """The opentelemetry.trace module, or None when it cannot be imported (tried once)."""
    try:
        return importlib.import_module("opentelemetry.trace")
    except ImportError:
        return None


_provider_set = False
_unset_until = 0.0  # monotonic time before which "no provider yet" is taken as still true
_RECHECK_SECONDS = 1.0


def active() -> bool:
    """Whether spans are recorded: the API is installed and the application set a provider."""
    global _provider_set, _unset_until  # noqa: PLW0603
    if _provider_set:
        return True
    trace = _api()
    if trace is None:
        return False
    now = time.monotonic()
    if now < _unset_until:
        return False
    _provider_set = not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )
    _unset_until = now + _RECHECK_SECONDS
    return _provider_set


_QUEUE_SIZE = 2048
_EXIT_FLUSH_SECONDS = 1.0
# Spans to end (span, end time in ns), or an Event to set once everything before it has ended.
_ends: queue.Queue[tuple[Any, int] | threading.Event] | None = None
_ends_lock = threading.Lock()
_warned_full = False
_log = logging.getLogger(__name__)


def _ender(ends: queue.Queue[tuple[Any, int] | threading.Event]) -> None:
    while True:
        item = ends.get()
        if isinstance(item, threading.Event):
            item.set()
            continue
        one, end_time = item
        try:
            one.end(end_time=end_time)
        except Exception as error:  # a processor's failure must not end the thread
            _log.warning("guard.tracing: a span processor failed: %s", type(error).__name__)


def _queue() -> queue.Queue[tuple[Any, int] | threading.Event]:
    global _ends  # noqa: PLW0603  (one ending thread per process)
    with _ends_lock:
        if _ends is None:
            _ends = queue.Queue(_QUEUE_SIZE)
            threading.Thread(
                target=_ender, args=(_ends,), name="guard-tracing-end", daemon=True
            ).start()
            # After the provider's own exit handler, so this one runs before it (LIFO).
            atexit.register(flush, _EXIT_FLUSH_SECONDS)
        return _ends


def _forget_after_fork() -> None:
    global _ends, _ends_lock  # (the thread did not survive the fork)
    _ends, _ends_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def _end(one: Any) -> None:
    global _warned_full  # noqa: PLW0603
    try:
        (_ends or _queue()).put_nowait((one, time.time_ns()))
    except queue.Full:
        if not _warned_full:
            _warned_full = True
            _log.warning(
                "guard.tracing: spans dropped: the span processor is %d spans behind"
                " (a synchronous processor with an unreachable collector?)",
                _QUEUE_SIZE,
            )


def flush(timeout_seconds: float) -> bool:
    """Wait until every span ended so far has been handed to the processors, at most
    `timeout_seconds`; whether that happened."""
    ends = _ends
    if ends is None:
        return True
    done = threading.Event()
    try:
        ends.put(done, timeout=timeout_seconds)
    except queue.Full:
        return False
    return done.wait(timeout_seconds)


class Span:
    """The span of a `span()` block, or nothing when tracing is off."""

    def __init__(self, span: Any = None) -> None:
        self._span = span

    def set(self, key: str, value: AttributeValue | None) -> None:
        if self._span is not None and value is not None:
            self._span.set_attribute(key, value)

    def fail(self, description: str) -> None:
        """Mark the span failed (status ERROR): a failure the code handled without raising."""
        if self._span is not None:
            trace = _api()
            self._span.set_status(trace.Status(trace.StatusCode.ERROR, description))


_NOTHING = Span()


@contextmanager
def span(name: str, attributes: Mapping[str, AttributeValue] | None = None) -> Iterator[Span]:
    """A span, the current one inside the block (its children nest under it)."""
    if not active():
        yield _NOTHING
        return
    tracer = _api().get_tracer("guard", __version__)
    with tracer.start_as_current_span(
        name,
        attributes=dict(attributes or {}),
        record_exception=False,  # its message may quote a phone number
        set_status_on_exception=False,
        end_on_exit=False,  # ended by _end, off the caller's thread
    ) as current:
        traced = Span(current)
        try:
            yield traced
        except BaseException as error:
            traced.set("error.type", type(error).__name__)
            traced.fail(type(error).__name__)
            raise
        finally:
            _end(current)


def trace_id() -> str | None:
    """The current trace's id, or None when no span is being recorded."""
    trace = _api()
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}"
