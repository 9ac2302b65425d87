"""The daily report as a message for `guard watch --report`: the Markdown `guard report
--markdown` prints (the same rendering), phone numbers masked by Booking Guard's one rule and
every line made inert for chat tools and mail clients, as alert texts are."""

from __future__ import annotations

from datetime import date
from typing import Any

from guard.masking import mask_phone_numbers
from guard.ops.daily_report import render_markdown
from guard.ops.dispatch.message import Message, neutralise


def report_message(day: date, rows: list[dict[str, Any]]) -> Message:
    """The message delivering the stored report of `day` (rows: guard.daily_report_view's, one
    per company; none when retention deleted the day since it was queued)."""
    subject = f"Booking Guard daily report, {day} (UTC)"
    if not rows:
        text = f"The daily report of {day} (UTC) is no longer stored (deleted by retention)."
        payload = {"type": "report", "report_date": day.isoformat(), "missing": True}
        return Message("report", (), payload, subject, text)
    # masked and inert line by line: the table stays one row per line
    markdown = render_markdown(day, rows).splitlines()
    text = "\n".join(neutralise(mask_phone_numbers(line)) for line in markdown)
    payload = {
        "type": "report",
        "report_date": day.isoformat(),
        "companies": len(rows),
        "markdown": text,
    }
    return Message("report", (), payload, subject, text)
