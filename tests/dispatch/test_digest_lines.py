"""A digest's text lists its first DIGEST_MAX_LINES alerts, then says how many more there are
(guard.ops.dispatch.message.digest_message). No database needed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from guard.ops.dispatch.message import DIGEST_MAX_LINES, AlertRow, digest_message


def _row(alert_id: int) -> AlertRow:
    return AlertRow(alert_id, "check", "rule", 1, "call", 1, "high", "m", {}, "open", 1, None, None)


@pytest.mark.parametrize(
    ("count", "more"),
    [(DIGEST_MAX_LINES, None), (DIGEST_MAX_LINES + 1, 1), (DIGEST_MAX_LINES + 3, 3)],
)
def test_a_digest_lists_the_first_alerts_and_counts_the_rest(count: int, more: int | None) -> None:
    rows = [_row(n) for n in range(1, count + 1)]
    message = digest_message(rows, datetime(2026, 11, 26, tzinfo=UTC), 24, "email")
    listed = [line for line in message.text.splitlines() if line.startswith("#")]
    assert len(listed) == DIGEST_MAX_LINES
    assert listed[-1].startswith(f"#{DIGEST_MAX_LINES} ")
    last = message.text.splitlines()[-1]
    if more is None:
        assert not last.startswith("and ")
    else:
        assert last.startswith(f"and {more} more alert(s) (guard.alerts has the rest; email")
    assert message.payload["alerts"] == count
