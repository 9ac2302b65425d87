"""Every SQL statement the runtime sends, by name: the fixed ones from queries.sql beside this
file, the ones with a part chosen at run time built here."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, LiteralString

_HEADER = "\n-- name: "


def parse(text: str) -> dict[str, LiteralString]:
    """The statements of a queries file by name: a block is its `-- name: NAME` line, comment lines,
    then the statement up to the first blank line."""
    statements: dict[str, LiteralString] = {}
    for block in text.split(_HEADER)[1:]:
        name, _, body = block.partition("\n")
        statement = body.split("\n\n", 1)[0]
        while statement.startswith("--"):
            statement = statement.partition("\n")[2]
        if name in statements or not statement.strip():
            raise ValueError(f"queries.sql: {name} is named twice or has no statement")
        # LiteralString, as psycopg asks of a query: the file ships inside the package, written
        # by the project, not outside input (mypy reads LiteralString as str: no cast needed).
        statements[name] = statement.strip()
    return statements


# os.path, not pathlib: `guard --help` imports this module and would load pathlib for it alone.
FILE = os.path.join(os.path.dirname(__file__), "queries.sql")
with open(FILE, encoding="utf-8") as _file:
    _QUERIES = parse(_file.read())


def __getattr__(name: str) -> LiteralString:
    """A fixed statement as `queries.NAME`, named once: by its `-- name:` line in queries.sql.

    mypy types every such name as LiteralString without checking that it exists; the test
    tests/lint/test_sql_in_one_file.py does (every `queries.NAME` written is in the file, every
    statement of the file is read), which a list of `NAME = _QUERIES["NAME"]` lines repeated.
    """
    try:
        return _QUERIES[name]
    except KeyError:
        raise AttributeError(f"guard.queries has no statement {name}") from None


# Ends with a newline: the caller appends its SELECT.
CALLS_INSERT_HEAD = _QUERIES["CALLS_INSERT_HEAD"] + "\n"

# --- guard/cli (lists and show): bounded output, computed in PostgreSQL
# A JSON document (details) is cut by guard.json_excerpt, as the dispatcher's are. The longest
# text (a message, a note, a label) printed whole by a list or show command: 16 k characters.
MAX_TEXT_CHARS = 16384


def bounded_text_sql(value: str, read_more: str) -> str:
    """An SQL expression for the text `value` as a list prints it: whole up to MAX_TEXT_CHARS,
    else its first MAX_TEXT_CHARS characters and `… (N characters; the rest: <read_more>)`."""
    return (
        f"(CASE WHEN length({value}) <= {MAX_TEXT_CHARS} THEN {value}"
        f" ELSE left({value}, {MAX_TEXT_CHARS})"
        f" || '… (' || length({value}) || ' characters; the rest: ' || {read_more} || ')' END)"
    )


# --- guard/cli/alerts.py: lists and show
_ALERT_READ_MORE = "'guard alerts show ' || a.id || ' --full'"
# Masked once per row (OFFSET 0 keeps the planner from copying the call into every use), then
# cut: what is printed is what `guard alerts show ID --full` prints, shortened.
_ALERT_MASKED = """
CROSS JOIN LATERAL (
    SELECT guard.mask_phone_numbers(a.message) AS message,
           {details} AS details
    OFFSET 0
) AS m
"""
ALERT_LIST_SELECT = (
    """
SELECT a.id, a.severity, a.status, a.check_id, k.rule_id, a.company_id,
       a.entity_type || coalesce(':' || a.entity_id, '') AS entity, a.occurrences,
       a.first_seen_at, a.last_seen_at, a.resolved_at,
       """
    + bounded_text_sql("m.message", _ALERT_READ_MORE)
    + """ AS message
FROM guard.alerts AS a
LEFT JOIN guard.checks AS k ON a.check_id = k.id
"""
    + _ALERT_MASKED.format(details="NULL::jsonb")
)


def alert_show(alerts: str, full: bool) -> str:
    """One alert from `alerts` (guard.alerts, or the reporting view guard.alerts_report), phone
    numbers masked: whole with `full`, else bounded as lists are."""
    message, details = "m.message", "m.details"
    if not full:
        message = bounded_text_sql(message, _ALERT_READ_MORE)
        details = f"guard.json_excerpt({details}, {_ALERT_READ_MORE})"
    masked = _ALERT_MASKED.format(details="guard.mask_phone_numbers_json(a.details)")
    return _QUERIES["ALERT_SHOW"].format(
        alerts=alerts, message=message, details=details, masked=masked
    )


# critical first, then the most recently seen
ALERT_LIST_ORDER = (
    " ORDER BY array_position(ARRAY['critical', 'high', 'medium', 'low'], a.severity),"
    " a.last_seen_at DESC, a.id DESC"
)


def alert_where(status: str, check_id: str | None, company_id: int | None) -> tuple[str, list[Any]]:
    """The WHERE of an alert list (status "all": any status) and its parameters."""
    filters = [
        ("a.status = %s", None if status == "all" else status),
        ("a.check_id = %s", check_id),
        ("a.company_id = %s", company_id),
    ]
    conditions = [condition for condition, value in filters if value is not None]
    params = [value for _, value in filters if value is not None]
    return (" WHERE " + " AND ".join(conditions)) if conditions else "", params


def alert_count(where: str) -> str:
    return "SELECT count(*) FROM guard.alerts AS a" + where


def alert_list(where: str, limited: bool) -> str:
    return ALERT_LIST_SELECT + where + ALERT_LIST_ORDER + (" LIMIT %s" if limited else "")


# --- guard/cli/review.py
# Free texts of an item: cut when long (a label or note written through SQL can be anything).
REVIEW_TEXTS = ("claimed_by", "closed_by", "note", "claimed_by_role", "closed_by_role")
_REVIEW_READ_MORE = "'guard review show ' || r.id || ' --full'"


def _review_column(name: str, full: bool) -> str:
    if not full and name == "details":
        return f"guard.json_excerpt(r.details, {_REVIEW_READ_MORE}) AS details"
    if not full and name in REVIEW_TEXTS:
        return f"{bounded_text_sql(f'r.{name}', _REVIEW_READ_MORE)} AS {name}"
    return f"r.{name}"


def review_items_select(columns: Sequence[str], full: bool = False) -> str:
    """SELECT of the item columns over `..."""
    return "SELECT " + ", ".join(_review_column(c, full) for c in columns)


def review_item_count(items: str) -> str:
    return f"SELECT count(*) FROM {items} AS r WHERE r.status = ANY(%s)"


def review_item_list(columns: Sequence[str], items: str, limited: bool) -> str:
    return (
        f"{review_items_select(columns)} FROM {items} AS r WHERE r.status = ANY(%s)"
        " ORDER BY r.priority, r.created_at, r.id" + (" LIMIT %s" if limited else "")
    )


def review_item(columns: Sequence[str], items: str, full: bool) -> str:
    return f"{review_items_select(columns, full)} FROM {items} AS r WHERE r.id = %s"


def review_claim(columns: Sequence[str]) -> str:
    return (
        f"{review_items_select(columns)} FROM guard.review_claim(%s, %s) AS r"
        " ORDER BY r.priority, r.created_at"
    )


def review_close(columns: Sequence[str]) -> str:
    return f"{review_items_select(columns)} FROM guard.review_close(%s, %s, %s, %s, %s) AS r"


# --- guard/cli/tenant.py
def tenant_list(columns: Sequence[str]) -> str:
    return "SELECT " + ", ".join(columns) + " FROM guard.tenant_list()"


# --- guard/ops/breaker_operator.py (the operator's reads of PostgreSQL)


def _loadable_time(column: str) -> str:
    """A timestamptz column as psycopg can load it: NULL for infinity and for dates outside
    years 1 to 9999 (which no writer of Booking Guard produces, but a row may hold)."""
    return (
        f"CASE WHEN {column} BETWEEN '0001-01-02 00:00:00+00' AND '9999-12-30 00:00:00+00'"
        f" THEN {column} END AS {column}"
    )


BREAKER_STATES = (
    "SELECT key, state, generation, failure_count, success_count,"
    f" {_loadable_time('opened_at')}, {_loadable_time('changed_at')}"
    " FROM guard.breaker_state ORDER BY key"
)
BREAKER_EVENTS = (
    "SELECT generation, from_state, to_state, reason, failure_count, success_count,"
    f" actor, host, pid, {_loadable_time('occurred_at')} FROM guard.breaker_events"
    " WHERE key = %s ORDER BY generation DESC LIMIT %s"
)


# --- guard/ops/dispatch/message.py (a statement shown to a person, not sent)


def read_alert_details(alert_id: int) -> str:
    """What a person runs to read an alert's whole details."""
    return f"SELECT details FROM guard.alerts WHERE id = {int(alert_id)}"
