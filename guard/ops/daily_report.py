"""The daily report of one UTC day: read, generated or computed, and rendered as text or Markdown,
for `guard report` and for `guard watch --report`."""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, LiteralString

import psycopg
from psycopg.rows import dict_row

from guard import queries
from guard.connection import scalar, standby_address
from guard.errors import GuardError, PermissionDenied, first_line
from guard.redact import visible


@dataclass(frozen=True)
class DayReport:
    """The report of one UTC day, and how it was had."""

    rows: list[dict[str, Any]]
    ended: bool  # the day is over: only such a day is stored (stored reports cover whole days)
    generated: bool  # computed by this call
    stored: bool
    standby: str | None = None  # the hot standby it was computed on (host:port/dbname)


@contextlib.contextmanager
def _failing(doing: str, day: date) -> Iterator[None]:
    """A refused privilege or a failed statement as one line naming the report."""
    try:
        yield
    except psycopg.Error as error:
        refused = isinstance(error, psycopg.errors.InsufficientPrivilege)
        line = f"could not {doing} the report of {day}: {first_line(error)}"
        raise (PermissionDenied if refused else GuardError)(line) from None


def daily_report(conn: psycopg.Connection[Any], day: date) -> DayReport:
    """The report of `day`: an ended day's stored rows, generated and stored first when there are
    none; a day not ended, or on a hot standby (which stores nothing) a day not stored, computed
    by reading only (guard.compute_daily_report: the same rows and columns, nothing stored)."""
    ended: bool = day < scalar(conn, queries.UTC_TODAY)
    standby = standby_address(conn)
    rows = stored_report(conn, day) if ended else []
    if rows:
        return DayReport(rows, ended, generated=False, stored=True)
    if ended and standby is None:
        with _failing("generate", day), conn.transaction():
            conn.execute(queries.DAILY_REPORT_ROW_COUNT, (day,))
        rows = stored_report(conn, day)
        return DayReport(rows, ended, generated=True, stored=bool(rows))
    with _failing("compute", day):
        rows = _rows(conn, queries.COMPUTED_DAILY_REPORT_ROWS, day)
    return DayReport(rows, ended, generated=True, stored=False, standby=standby)


def stored_report(conn: psycopg.Connection[Any], day: date) -> list[dict[str, Any]]:
    """The stored rows of `day` (guard.daily_report_view), one per company."""
    return _rows(conn, queries.DAILY_REPORT_ROWS, day)


def _rows(conn: psycopg.Connection[Any], query: LiteralString, day: date) -> list[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row).execute(query, (day,)).fetchall()


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    calls = sum(r["total_calls"] for r in rows)
    inconsistent = sum(r["inconsistent_calls"] for r in rows)
    fixed = sum(r["auto_corrected"] for r in rows)
    reviews = sum(r["manual_reviews"] for r in rows)
    by_rule: Counter[str] = Counter()  # update, not +: a count of 0 stays listed
    by_check: Counter[str] = Counter()
    for r in rows:
        by_rule.update(r["by_rule"])
        by_check.update(r["by_check"])
    alerts = {r["company_id"]: sum(r["by_rule"].values()) for r in rows}
    recovered = sum(
        r["recovery_rate_pct"] * alerts[r["company_id"]]
        for r in rows
        if r["recovery_rate_pct"] is not None
    )
    latencies = [
        r["detection_latency_p95_seconds"]
        for r in rows
        if r["detection_latency_p95_seconds"] is not None
    ]
    return {
        "total_calls": calls,
        "total_appointments": sum(r["total_appointments"] for r in rows),
        "inconsistent_calls": inconsistent,
        "inconsistency_rate_pct": _pct(inconsistent, calls),
        "auto_corrected": fixed,
        "manual_reviews": reviews,
        "auto_correction_rate_pct": _pct(fixed, fixed + reviews),
        "open_review_items": sum(r["open_review_items"] for r in rows),
        # weighted by each company's alerts: the share of all the day's alerts resolved
        "recovery_rate_pct": (
            (Decimal(recovered) / sum(alerts.values())).quantize(Decimal("0.01"))
            if sum(alerts.values())
            else None
        ),
        # percentiles do not add up across companies: the worst company's
        "worst_detection_latency_p95_seconds": max(latencies) if latencies else None,
        "by_rule": dict(sorted(by_rule.items(), key=lambda item: (-item[1], item[0]))),
        "by_check": dict(sorted(by_check.items(), key=lambda item: (-item[1], item[0]))),
    }


def _pct(part: int, whole: int) -> Decimal | None:
    if whole == 0:
        return None
    return (Decimal(100) * part / whole).quantize(Decimal("0.01"))


# Characters that mean something inside a Markdown table cell (GFM): the cell separator, inline
# emphasis, code, links and images, HTML and entities (an entity such as &#x202e; would bring
# back the bidi override escaped below), and the backslash that escapes them all.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def markdown_cell(value: Any) -> str:
    """A value from data as the literal text of one Markdown table cell: special characters
    backslash-escaped, line breaks as <br> (a raw newline would end the row), other control and
    bidi characters as visible escapes, as in the text output."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", str(value))
    return "<br>".join(visible(line) for line in _LINE_BREAK.split(escaped))


def _num(value: Any, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value}{suffix}"


def _trend(row: dict[str, Any]) -> str:
    if row["trend_direction"] == "no_data":
        return "no earlier reports"
    delta = row["trend_delta_pct_points"]
    sign = "+" if delta > 0 else ""
    return (
        f"{sign}{delta} pts vs {row['previous_7_days_rate_pct']} % (7-day mean):"
        f" {row['trend_direction']}"
    )


def _against(row: dict[str, Any], delta: str, previous: str, unit: str) -> str:
    """`(+3.5 pts vs 90.0 % 7-day mean)` for a measure with a 7-day mean to compare with."""
    if row[delta] is None:
        return ""
    sign = "+" if row[delta] > 0 else ""
    return f" ({sign}{row[delta]}{unit} vs {row[previous]} 7-day mean)"


def render_text(day: date, rows: list[dict[str, Any]]) -> str:
    total = totals(rows)
    lines = [
        f"Booking Guard daily report for {day} (UTC)",
        "",
        f"Calls: {total['total_calls']}, inconsistent: {total['inconsistent_calls']}"
        f" ({_num(total['inconsistency_rate_pct'], ' %')})",
        f"Appointments: {total['total_appointments']}",
        f"Auto-corrected: {total['auto_corrected']}, sent to review: {total['manual_reviews']}"
        f" (auto-correction rate {_num(total['auto_correction_rate_pct'], ' %')}),"
        f" open review items: {total['open_review_items']}",
        f"Recovered: {_num(total['recovery_rate_pct'], ' %')} of the day's alerts resolved;"
        f" detection latency p95 {_num(total['worst_detection_latency_p95_seconds'], ' s')}"
        " (worst company)",
    ]
    if total["by_rule"]:
        for by in ("rule", "check"):
            lines += ["", f"Issues by {by}:"]
            lines += [f"  {visible(name):<32} {n:>6}" for name, n in total[f"by_{by}"].items()]
    for row in rows:
        lines += [
            "",
            f"{visible(row['company_name'] or 'company')} (company {row['company_id']})",
            f"  calls                {row['total_calls']:>6}",
            f"  appointments         {row['total_appointments']:>6}",
            f"  inconsistent         {row['inconsistent_calls']:>6}"
            f"  ({row['inconsistency_rate_pct']} %)",
            f"  trend                {_trend(row)}",
            f"  recovered            {_num(row['recovery_rate_pct'], ' %')} of the day's alerts"
            + _against(
                row, "recovery_delta_pct_points", "previous_7_days_recovery_rate_pct", " pts"
            ),
            f"  detection latency    p95 {_num(row['detection_latency_p95_seconds'], ' s')}"
            + _against(
                row,
                "detection_latency_delta_seconds",
                "previous_7_days_detection_latency_p95_seconds",
                " s",
            ),
            f"  auto-corrected       {row['auto_corrected']:>6}",
            f"  sent to review       {row['manual_reviews']:>6}",
            f"  open review items    {row['open_review_items']:>6}",
        ]
        if row["top_issues"]:
            lines.append("  top issues:")
            for i, issue in enumerate(row["top_issues"], 1):
                lines.append(
                    f"    {i}. {visible(issue['rule_id'])} ({issue['severity']}): {issue['count']}"
                )
                if issue.get("likely_cause"):
                    lines.append(f"       cause:  {visible(issue['likely_cause'])}")
                if issue.get("action"):
                    lines.append(f"       action: {visible(issue['action'])}")
        if row["action_items"]:
            lines.append("  action items:")
            lines += [f"    - {_action(item)}" for item in row["action_items"]]
    return "\n".join(lines)


def _action(item: dict[str, Any]) -> str:
    """One action item as a line: what is waiting, and what to do about it."""
    if item.get("kind") == "review_queue":
        what = f"review queue: {item.get('count')} items open"
    else:
        what = (
            f"{item.get('rule_id')}: {item.get('count')} of the day's alerts still open"
            f" ({item.get('severity')})"
        )
    action = item.get("action")
    return visible(f"{what}. {action}" if action else what)


def render_markdown(day: date, rows: list[dict[str, Any]]) -> str:
    total = totals(rows)
    lines = [
        f"# Booking Guard daily report, {day} (UTC)",
        "",
        f"- Calls: **{total['total_calls']}**, inconsistent: **{total['inconsistent_calls']}**"
        f" ({_num(total['inconsistency_rate_pct'], ' %')})",
        f"- Auto-corrected: {total['auto_corrected']}, sent to review: {total['manual_reviews']}"
        f" (auto-correction rate {_num(total['auto_correction_rate_pct'], ' %')})",
        f"- Open review items: {total['open_review_items']}",
        f"- Appointments: {total['total_appointments']}",
        f"- Recovered: {_num(total['recovery_rate_pct'], ' %')} of the day's alerts resolved;"
        f" detection latency p95 {_num(total['worst_detection_latency_p95_seconds'], ' s')}"
        " (worst company)",
        "",
        "| company | calls | appointments | inconsistent | rate % | trend | recovered %"
        " | latency p95 s | auto-corrected | to review | open items | top issue |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {markdown_cell(row['company_name'] or row['company_id'])} | {row['total_calls']}"
            f" | {row['total_appointments']}"
            f" | {row['inconsistent_calls']} | {row['inconsistency_rate_pct']}"
            f" | {_trend(row)} | {_num(row['recovery_rate_pct'])}"
            f" | {_num(row['detection_latency_p95_seconds'])}"
            f" | {row['auto_corrected']} | {row['manual_reviews']}"
            f" | {row['open_review_items']} | {markdown_cell(row['top_rule'] or '')} |"
        )
    issues = [(row, issue) for row in rows for issue in row["top_issues"]]
    if issues:
        lines += [
            "",
            "## Top issues",
            "",
            "| company | rule | severity | alerts | likely cause | action |",
            "|---|---|---|---:|---|---|",
        ]
        lines += [
            f"| {markdown_cell(row['company_name'] or row['company_id'])}"
            f" | {markdown_cell(issue['rule_id'])} | {markdown_cell(issue['severity'])}"
            f" | {issue['count']} | {markdown_cell(issue.get('likely_cause') or '')}"
            f" | {markdown_cell(issue.get('action') or '')} |"
            for row, issue in issues
        ]
    actions = [(row, item) for row in rows for item in row["action_items"]]
    if actions:
        lines += ["", "## Action items", ""]
        lines += [
            f"- {markdown_cell(row['company_name'] or row['company_id'])}:"
            f" {markdown_cell(_action(item))}"
            for row, item in actions
        ]
    if total["by_rule"]:
        for by in ("rule", "check"):
            lines += ["", f"## Issues by {by}", "", f"| {by} | alerts |", "|---|---:|"]
            lines += [f"| {markdown_cell(name)} | {n} |" for name, n in total[f"by_{by}"].items()]
    return "\n".join(lines)
