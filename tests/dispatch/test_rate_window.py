"""The per-channel rate limit counts the messages of the last 60 s: one sent exactly 60 s ago
has left the window. Time is the window's own injectable clock (a list the test advances)."""

from __future__ import annotations

from guard.ops.dispatch.loop import WINDOW_S, RateWindow


def test_a_message_leaves_the_window_exactly_a_minute_after_it_was_sent() -> None:
    now = [1000.0]
    window = RateWindow(2, clock=lambda: now[0])
    window.record()
    now[0] += 1.0
    window.record()
    assert window.capacity() == 0
    assert window.seconds_until_room() == WINDOW_S - 1.0
    now[0] += WINDOW_S - 1.0  # the first message is exactly 60 s old
    assert window.capacity() == 1
    assert window.seconds_until_room() == 0.0
    now[0] += 0.5
    assert window.capacity() == 1, "the second message is still inside the window"


def test_zero_means_unlimited() -> None:
    window = RateWindow(0, clock=lambda: 0.0)
    window.record()
    assert window.capacity() is None
    assert window.seconds_until_room() == 0.0
