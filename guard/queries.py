"""Every SQL statement the runtime sends, by name: the fixed ones from queries.sql beside this
file, the ones with a part chosen at run time built here."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
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


def _load() -> dict[str, LiteralString]:
    with open(FILE, encoding="utf-8") as file:
        return parse(file.read())


_QUERIES = _load()


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

# One element of an array, drawn at random.
_PICK = "({0})[1 + floor(random() * cardinality({0}))::integer]"


def sample_rows(problem_rates: Mapping[str, float]) -> tuple[str, ...]:
    """The statements that draw the demo's data set in order (their %(name)s parameters: those of
    guard/demo/sample_data.py): each company's services and customers, then its calls, each with
    at most one problem of `problem_rates` (the newest two hours none: a booking failure there
    would be a finding of its own), and their appointments."""
    uppers = itertools.accumulate(problem_rates.values())
    problem = " ".join(
        f"WHEN x.r < {upper:.8f} THEN '{name}'"
        for name, upper in zip(problem_rates, uppers, strict=True)
    )
    return (
        "INSERT INTO public.services (company_id, name, duration_minutes)"
        f" SELECT c, s, {_PICK.format('ARRAY[15, 30, 45, 60]')}"
        " FROM unnest(%(companies)s::bigint[]) AS c CROSS JOIN unnest(%(services)s::text[]) AS s",
        "INSERT INTO public.customers (company_id, name, phone)"
        " SELECT c, 'Kunde ' || c || '-' || g, '+49 30 ' || (1000000 + floor(random() * 8999999))"
        " FROM unnest(%(companies)s::bigint[]) AS c"
        " CROSS JOIN generate_series(0, %(customers)s - 1) AS g",
        """
CREATE TEMP TABLE sample_company ON COMMIT DROP AS
SELECT
    c.id AS company_id,
    c.n,
    (SELECT array_agg(u.id ORDER BY u.id) FROM public.customers AS u WHERE u.company_id = c.id)
        AS customers,
    (SELECT array_agg(s.id ORDER BY s.id) FROM public.services AS s WHERE s.company_id = c.id)
        AS services
FROM unnest(%(companies)s::bigint[]) WITH ORDINALITY AS c (id, n)""",
        f"""
CREATE TEMP TABLE sample_call ON COMMIT DROP AS
SELECT
    d.*,
    'bk_' || substr(d.call_ref, 6) AS uid,
    d.customer_id IS NOT NULL AND d.problem <> 'incomplete_customer_link' AS linked,
    CASE
        WHEN d.problem IN ('phantom_booking', 'flag_mismatch', 'contradicting_flags',
            'orphaned_appointment') OR d.shape < 0.45 THEN 'appointment_booked'
        WHEN d.problem = 'booking_failure' THEN 'creation_failed'
        WHEN d.shape < 0.50 THEN 'appointment_cancelled'
        ELSE (ARRAY['information_only', 'no_availability', 'caller_hung_up', 'callback'])
            [1 + floor(random() * 4)::integer]
    END AS session_outcome,
    d.problem IN ('phantom_booking', 'contradicting_flags') OR d.shape < 0.45 AS booked,
    d.problem IN ('contradicting_flags', 'booking_failure') AS failed,
    CASE
        WHEN d.problem IN ('flag_mismatch', 'contradicting_flags') OR d.shape < 0.50 THEN 'linked'
        WHEN d.problem = 'orphaned_appointment' THEN 'orphaned'
    END AS appointment
FROM (
    SELECT
        nextval(pg_get_serial_sequence('public.calls', 'id')) AS id,
        k.company_id,
        'call_' || k.company_id || '_' || lpad(g::text, 5, '0') AS call_ref,
        -- the newest 10 minutes old (no booking claimed inside its grace period); a company's
        -- calls 36 minutes apart, so that their 30-minute appointments 3 days on never overlap
        date_trunc('second', now()) - make_interval(secs => 600 + (%(days)s * 86400 - 600)
            * (g * cardinality(%(companies)s::bigint[]) + k.n - 1)
            / (%(calls)s * cardinality(%(companies)s::bigint[]))) AS created,
        p.problem,
        CASE WHEN p.problem = 'incomplete_customer_link' OR random() < 0.85
            THEN {_PICK.format("k.customers")} END AS customer_id,
        {_PICK.format("k.services")} AS service_id,
        CASE WHEN p.problem = 'none' THEN random() ELSE 1 END AS shape,
        CASE WHEN p.problem = 'missing_direction' THEN NULL
            WHEN random() < 0.9 THEN 'inbound' ELSE 'outbound' END AS direction,
        make_interval(secs => 5 + floor(random() * 85)) AS booked_after
    FROM sample_company AS k
    CROSS JOIN generate_series(0, %(calls)s - 1) AS g
    CROSS JOIN LATERAL (
        SELECT CASE {problem} ELSE 'none' END AS problem
        FROM (SELECT CASE WHEN g >= 4 THEN random() ELSE 1 END AS r) AS x
    ) AS p
    ORDER BY k.n, g
) AS d""",
        CALLS_INSERT_HEAD
        + """SELECT
    c.id, c.company_id, c.call_ref, '+49 30 ' || (1000000 + floor(random() * 8999999)),
    '+49 30 5550000', 'ended', c.direction, c.customer_id,
    CASE WHEN c.linked THEN 'linked' WHEN c.customer_id IS NULL THEN 'unlinked' END,
    CASE WHEN c.linked THEN 'phone_match' END,
    CASE WHEN c.linked THEN 100.0 END,
    CASE WHEN c.linked THEN c.created END,
    c.session_outcome, c.booked,
    CASE WHEN c.booked THEN 'linked' END,
    CASE WHEN c.booked THEN c.created + interval '30 seconds' END,
    CASE WHEN c.booked OR c.appointment IS NOT NULL THEN c.uid END,
    c.booked AND NOT c.failed, c.failed,
    CASE WHEN c.failed THEN 'calendar_error: slot no longer available' END,
    c.failed, c.created, c.created
FROM sample_call AS c
ORDER BY c.id""",
        """
INSERT INTO public.appointments (
    company_id, call_id, customer_id, service_id, calcom_v2_booking_id, source, status,
    starts_at, ends_at, created_at, updated_at
)
SELECT
    c.company_id, CASE WHEN c.appointment = 'linked' THEN c.id END, c.customer_id,
    c.service_id, c.uid, 'retell_webhook',
    CASE WHEN c.session_outcome = 'appointment_cancelled' THEN 'cancelled' ELSE 'scheduled' END,
    c.created + interval '3 days', c.created + interval '3 days 30 minutes',
    c.created + c.booked_after, c.created + c.booked_after
FROM sample_call AS c
WHERE c.appointment IS NOT NULL
UNION ALL
-- entered by hand at the desk, after every booked one: no call, and that is fine
SELECT
    k.company_id, NULL, """
        + _PICK.format("k.customers")
        + ", "
        + _PICK.format("k.services")
        + """, NULL, 'manual', 'scheduled',
    date_trunc('day', now()) + make_interval(days => 4 + m / 8, hours => 8 + m %% 8),
    date_trunc('day', now()) + make_interval(days => 4 + m / 8, hours => 8 + m %% 8, mins => 30),
    date_trunc('second', now()) - make_interval(days => 1 + m %% 19),
    date_trunc('second', now()) - make_interval(days => 1 + m %% 19)
FROM sample_company AS k
CROSS JOIN generate_series(0, %(manual)s - 1) AS m""",
    )


# --- guard/cli (lists and show): bounded output, computed in PostgreSQL
# The largest JSON document (details) printed whole by a list or show command, in bytes of its
# text; a larger one is printed as an excerpt (the dispatcher's bound, guard.alert_details_excerpt).
MAX_JSON_BYTES = 16384
# An excerpt keeps at most this many top-level scalar values, strings cut to this many characters.
EXCERPT_KEYS = 64
EXCERPT_STRING_CHARS = 200
# The longest text (a message, a note, a label) printed whole by a list or show command: the same
# 16 k as for a document, in characters.
MAX_TEXT_CHARS = 16384
TRUNCATED_KEY = "details_truncated"


def bounded_json_sql(value: str, read_more: str) -> str:
    """An SQL expression for the JSON document `value` as a list prints it: whole up to
    MAX_JSON_BYTES, else its top-level scalar values (strings cut, at most EXCERPT_KEYS keys, nested
    objects and arrays left out) and `details_truncated`: `{"bytes": full size, "read_more":
    <read_more>}`."""
    size = f"octet_length(({value})::text)"
    return f"""(CASE
    WHEN pg_column_size({value}) <= {MAX_JSON_BYTES} AND {size} <= {MAX_JSON_BYTES}
        THEN {value}
    ELSE coalesce((
        SELECT jsonb_object_agg(e.key, e.value)
        FROM (
            SELECT f.key,
                CASE WHEN jsonb_typeof(f.value) = 'string'
                    THEN to_jsonb(left(f.value #>> '{{}}', {EXCERPT_STRING_CHARS}))
                    ELSE f.value END AS value
            FROM jsonb_each(
                CASE WHEN jsonb_typeof({value}) = 'object' THEN {value} ELSE '{{}}'::jsonb END
            ) AS f
            WHERE jsonb_typeof(f.value) IN ('string', 'number', 'boolean', 'null')
                AND length(f.key) <= 64 AND f.key <> '{TRUNCATED_KEY}'
            ORDER BY f.key
            LIMIT {EXCERPT_KEYS}
        ) AS e
    ), '{{}}'::jsonb) || jsonb_build_object(
        '{TRUNCATED_KEY}', jsonb_build_object('bytes', {size}, 'read_more', {read_more})
    )
END)"""


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
    masked = _ALERT_MASKED.format(details="guard.mask_phone_numbers_json(a.details)")
    if full:
        return _QUERIES["ALERT_SHOW"].format(
            alerts=alerts, message="m.message", details="m.details", masked=masked
        )
    return _QUERIES["ALERT_SHOW"].format(
        alerts=alerts,
        message=bounded_text_sql("m.message", _ALERT_READ_MORE),
        details=bounded_json_sql("m.details", _ALERT_READ_MORE),
        masked=masked,
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
    if full:
        return f"r.{name}"
    if name == "details":
        return f"{bounded_json_sql('r.details', _REVIEW_READ_MORE)} AS details"
    if name in REVIEW_TEXTS:
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
