"""Application writes as data: what hypothesis draws, how each becomes SQL, and the seed.

Ids are small integers on purpose: the seed creates calls 1..8 (1-4 company 1, 5-8 company 2)
and the tables restart their identities for every example, so the operations keep hitting the
same few calls and appointments from several transactions at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from psycopg import sql

COMPANIES = (1, 2)
CUSTOMERS = {1: (1, 2, 3), 2: (4, 5, 6)}
SEED_CALLS = 8
MAX_CALL_ID = 12  # a few beyond the seed: calls inserted during the sequence
MAX_APPOINTMENT_ID = 14

# 'sideways' is refused by the CHECK and rolls its transaction back: keep it rare
DIRECTIONS = (None, "", "  ", "inbound", "outbound", "OUTBOUND", " Inbound ") * 3 + ("sideways",)
FROM_NUMBERS = (None, "", "anonymous", "Unknown", "+493012345", "+4915112345")
OUTCOMES = (
    None,
    "appointment_booked",
    "creation_failed",
    "appointment_cancelled",
    "no_booking",
)
LINK_STATUSES = (None, "linked", "unlinked")
# (status, soft-deleted): active, cancelled, soft-deleted, both, and an active non-default status
APPOINTMENT_KINDS = {
    "active": ("scheduled", False),
    "confirmed": ("confirmed", False),
    "cancelled": ("cancelled", False),
    "deleted": ("scheduled", True),
    "cancelled+deleted": ("cancelled", True),
}

# What psycopg executes: a literal statement or one composed from parts.
Statement = sql.SQL | sql.Composed


@dataclass(frozen=True)
class Op:
    """One step: connection ``conn`` runs ``kind`` with ``args`` (or commits / rolls back)."""

    conn: int
    kind: str
    args: tuple[Any, ...] = ()

    def __repr__(self) -> str:
        args = ", ".join(repr(a) for a in self.args)
        return f"c{self.conn}:{self.kind}({args})"


def _where(
    target: tuple[Any, ...], alias: str, call_column: str
) -> tuple[sql.Composable, list[Any]]:
    """WHERE clause for a target: ('id', n), ('ids', [..]), ('call', n), ('company', n)."""
    what, value = target
    column = {"id": "id", "ids": "id", "call": call_column, "company": "company_id"}[what]
    ident = sql.Identifier(alias, column)
    if what == "ids":
        return sql.SQL("{} = ANY (%s)").format(ident), [list(value)]
    return sql.SQL("{} = %s").format(ident), [value]


CALL_UPDATES: dict[str, tuple[str, ...]] = {
    # change name -> SET clause (values come from the op's args)
    "customer": ("customer_id",),
    "direction": ("direction",),
    "made": ("appointment_made",),
    "link_status": ("appointment_link_status",),
    "outcome": ("session_outcome",),
    "failed": ("booking_failed",),
    "from_number": ("from_number",),
    "customer_link_status": ("customer_link_status",),
    "claim_booking": (
        "appointment_made",
        "appointment_link_status",
        "session_outcome",
        "booking_failed",
    ),
}


def render(op: Op) -> tuple[Statement, list[Any]]:  # noqa: PLR0911 - one branch per kind
    """The SQL statement and parameters of a write operation."""
    a = op.args
    if op.kind == "insert_call":
        company, direction, customer, from_number, made, link_status, outcome, failed = a
        return (
            sql.SQL(
                "INSERT INTO public.calls (company_id, direction, customer_id, from_number,"
                " appointment_made, appointment_link_status, session_outcome, booking_failed,"
                " booking_confirmed) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            ),
            [company, direction, customer, from_number, made, link_status, outcome, failed, made],
        )
    if op.kind == "bulk_insert_calls":
        company, n, direction, customer, from_number, made, outcome = a
        return (
            sql.SQL(
                "INSERT INTO public.calls (company_id, direction, customer_id, from_number,"
                " appointment_made, session_outcome)"
                " SELECT %s, %s, %s, %s, %s, %s FROM generate_series(1, %s)"
            ),
            [company, direction, customer, from_number, made, outcome, n],
        )
    if op.kind == "update_calls":
        target, change, values = a
        columns = CALL_UPDATES[change]
        sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(col)) for col in columns)
        where, params = _where(target, "c", "id")
        return (
            sql.SQL("UPDATE public.calls AS c SET {} WHERE {}").format(sets, where),
            [*values, *params],
        )
    if op.kind == "delete_calls":
        where, params = _where(a[0], "c", "id")
        return sql.SQL("DELETE FROM public.calls AS c WHERE {}").format(where), params
    if op.kind == "insert_appointments":
        # for existing calls (as this transaction sees them); cross_company tries another tenant
        call_ids, kind, per_call, cross_company = a
        status, deleted = APPOINTMENT_KINDS[kind]
        company = sql.SQL("3 - c.company_id" if cross_company else "c.company_id")
        return (
            sql.SQL(
                "INSERT INTO public.appointments"
                " (company_id, call_id, status, deleted_at, source, calcom_v2_booking_id)"
                " SELECT {}, c.id, %s, CASE WHEN %s THEN now() END, 'retell_webhook',"
                " 'bk-' || c.id || '-' || g"
                " FROM public.calls AS c CROSS JOIN generate_series(1, %s) AS g"
                " WHERE c.id = ANY (%s) ORDER BY c.id, g"
            ).format(company),
            [status, deleted, per_call, list(call_ids)],
        )
    if op.kind == "insert_orphan_appointment":
        company, kind = a
        status, deleted = APPOINTMENT_KINDS[kind]
        return (
            sql.SQL(
                "INSERT INTO public.appointments (company_id, call_id, status, deleted_at, source)"
                " VALUES (%s, NULL, %s, CASE WHEN %s THEN now() END, 'retell_webhook')"
            ),
            [company, status, deleted],
        )
    if op.kind == "update_appointments":
        target, change, value = a
        where, params = _where(target, "a", "call_id")
        if change == "move":  # to another call of the same company (no-op otherwise)
            return (
                sql.SQL(
                    "UPDATE public.appointments AS a SET call_id = c.id, updated_at = now()"
                    " FROM public.calls AS c"
                    " WHERE c.id = %s AND c.company_id = a.company_id AND {}"
                ).format(where),
                [value, *params],
            )
        assignment = {
            "cancel": "status = 'cancelled'",
            "status": "status = %s",
            "soft_delete": "deleted_at = now()",
            "undelete": "deleted_at = NULL",
            "restore": "deleted_at = NULL, status = 'scheduled'",
            "detach": "call_id = NULL",
            "company": "company_id = %s",
            "touch": "updated_at = now()",
        }[change]
        values = [value] if "%s" in assignment else []
        return (
            sql.SQL("UPDATE public.appointments AS a SET {} WHERE {}").format(
                sql.SQL(assignment),
                where,
            ),
            [*values, *params],
        )
    if op.kind == "delete_appointments":
        where, params = _where(a[0], "a", "call_id")
        return sql.SQL("DELETE FROM public.appointments AS a WHERE {}").format(where), params
    raise ValueError(f"not a write: {op!r}")


# -- strategies -------------------------------------------------------------------------------

# Skewed towards the first few ids, so that the connections keep meeting on the same rows.
call_id = st.sampled_from([1] * 6 + [2] * 4 + [3, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
appointment_id = st.sampled_from([1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 6, 7, 8, 10, 12, 14])
company = st.sampled_from(COMPANIES)
call_target = st.one_of(
    st.tuples(st.just("id"), call_id),
    st.tuples(st.just("ids"), st.lists(call_id, min_size=2, max_size=4, unique=True).map(tuple)),
    st.tuples(st.just("company"), company),
)
appointment_target = st.one_of(
    st.tuples(st.just("id"), appointment_id),
    st.tuples(st.just("id"), appointment_id),
    st.tuples(
        st.just("ids"), st.lists(appointment_id, min_size=2, max_size=4, unique=True).map(tuple)
    ),
    st.tuples(st.just("call"), call_id),
    st.tuples(st.just("call"), call_id),
    st.tuples(st.just("company"), company),
)
customer = st.one_of(st.none(), st.sampled_from([c for cs in CUSTOMERS.values() for c in cs]))
kind_of_appointment = st.sampled_from(list(APPOINTMENT_KINDS))


@st.composite
def call_update(draw: st.DrawFn) -> tuple[Any, ...]:
    change = draw(st.sampled_from(list(CALL_UPDATES)))
    value_strategy = {
        "customer": customer.map(lambda v: (v,)),
        "direction": st.sampled_from(DIRECTIONS).map(lambda v: (v,)),
        "made": st.booleans().map(lambda v: (v,)),
        "link_status": st.sampled_from(LINK_STATUSES).map(lambda v: (v,)),
        "outcome": st.sampled_from(OUTCOMES).map(lambda v: (v,)),
        "failed": st.booleans().map(lambda v: (v,)),
        "from_number": st.sampled_from(FROM_NUMBERS).map(lambda v: (v,)),
        "customer_link_status": st.sampled_from(["linked", "anonymous", "unlinked"]).map(
            lambda v: (v,)
        ),
        "claim_booking": st.booleans().map(
            lambda b: (
                (True, "linked", "appointment_booked", False)
                if b
                else (False, "unlinked", "creation_failed", True)
            )
        ),
    }[change]
    return (draw(call_target), change, draw(value_strategy))


@st.composite
def appointment_update(draw: st.DrawFn) -> tuple[Any, ...]:
    change = draw(
        st.sampled_from(
            [
                "move",
                "move",
                "cancel",
                "cancel",
                "status",
                "soft_delete",
                "soft_delete",
                "undelete",
                "restore",
                "detach",
                "company",
                "touch",
            ]
        )
    )
    value: Any = None
    if change == "move":
        value = draw(call_id)
    elif change == "status":
        value = draw(st.sampled_from(["scheduled", "confirmed", "cancelled", "no_show"]))
    elif change == "company":
        value = draw(company)
    return (draw(appointment_target), change, value)


# The kinds, weighted by repetition: appointment writes are where the races are.
KINDS = (
    ["insert_call"] * 2
    + ["bulk_insert_calls"]
    + ["update_calls"] * 3
    + ["delete_calls"]
    + ["insert_appointments"] * 4
    + ["insert_orphan_appointment"]
    + ["update_appointments"] * 4
    + ["delete_appointments"] * 3
    + ["commit"] * 3
    + ["rollback"]
)


@st.composite
def operation(draw: st.DrawFn, n_conns: int) -> Op:
    conn = draw(st.integers(1, n_conns))
    kind = draw(st.sampled_from(KINDS))
    args: tuple[Any, ...]
    if kind == "insert_call":
        args = (
            draw(company),
            draw(st.sampled_from(DIRECTIONS)),
            draw(customer),
            draw(st.sampled_from(FROM_NUMBERS)),
            draw(st.booleans()),
            draw(st.sampled_from(LINK_STATUSES)),
            draw(st.sampled_from(OUTCOMES)),
            draw(st.booleans()),
        )
    elif kind == "bulk_insert_calls":
        args = (
            draw(company),
            draw(st.integers(2, 5)),
            draw(st.sampled_from(DIRECTIONS)),
            draw(customer),
            draw(st.sampled_from(FROM_NUMBERS)),
            draw(st.booleans()),
            draw(st.sampled_from(OUTCOMES)),
        )
    elif kind == "update_calls":
        args = draw(call_update())
    elif kind == "delete_calls":
        args = (draw(st.tuples(st.just("id"), call_id)),)
    elif kind == "insert_appointments":
        args = (
            tuple(draw(st.lists(call_id, min_size=1, max_size=3, unique=True))),
            draw(kind_of_appointment),
            draw(st.sampled_from([1, 1, 1, 2, 3])),
            draw(st.sampled_from([False] * 9 + [True])),
        )
    elif kind == "insert_orphan_appointment":
        args = (draw(company), draw(kind_of_appointment))
    elif kind == "update_appointments":
        args = draw(appointment_update())
    elif kind == "delete_appointments":
        args = (draw(appointment_target),)
    else:
        args = ()
    return Op(conn, kind, args)


@dataclass(frozen=True)
class Scenario:
    """The seed appointments, the number of connections and the operations."""

    seed_appointments: tuple[tuple[int, str], ...]
    n_conns: int
    ops: tuple[Op, ...]


@st.composite
def scenarios(draw: st.DrawFn, min_ops: int = 5, max_ops: int = 15) -> Scenario:
    # calls 1 and 2 always start booked: the hot rows that most operations hit
    extra = draw(
        st.lists(
            st.tuples(st.sampled_from([1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8]), kind_of_appointment),
            min_size=0,
            max_size=6,
        )
    )
    seed = [(1, "active"), (2, "confirmed"), *extra]
    n_conns = draw(st.integers(2, 4))
    ops = draw(st.lists(operation(n_conns), min_size=min_ops, max_size=max_ops))
    return Scenario(tuple(seed), n_conns, tuple(ops))


SEED_SQL = """
INSERT INTO public.companies (id, name) VALUES (1, 'Praxis Nord'), (2, 'Praxis Sued')
    ON CONFLICT (id) DO NOTHING;
INSERT INTO public.customers (company_id, name, phone)
    SELECT CASE WHEN g <= 3 THEN 1 ELSE 2 END, 'customer ' || g, '+49301000' || g
    FROM generate_series(1, 6) AS g;
INSERT INTO public.calls (company_id, direction, customer_id, from_number, session_outcome)
    SELECT CASE WHEN g <= 4 THEN 1 ELSE 2 END,
           (ARRAY['inbound', 'outbound', NULL])[1 + g % 3],
           CASE WHEN g % 2 = 0 THEN CASE WHEN g <= 4 THEN 1 + g % 3 ELSE 4 + g % 3 END END,
           (ARRAY['+493012345', 'anonymous', NULL, '+4915112345'])[1 + g % 4],
           (ARRAY[NULL, 'no_booking', 'creation_failed'])[1 + g % 3]
    FROM generate_series(1, 8) AS g;
"""

RESET_SQL = """
TRUNCATE public.appointments, public.calls, public.customers,
    guard.correction_audit, guard.alerts RESTART IDENTITY CASCADE
"""
