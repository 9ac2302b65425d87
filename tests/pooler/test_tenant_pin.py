"""Issue 49, rows 1 and 2: the tenant pin behind PgBouncer 1.18.

In `pool_mode = transaction` a session setting stays on the server connection, and the next
client served by that connection inherits it: PgBouncer reuses the most recently released server
connection (LIFO), so a company-1 dashboard that ran `SET booking_guard.company_id = 1` and then
queried after a company-2 dashboard's SET read company 2's rows, every time. The fix: a pin is
`SELECT guard.pin_company(ID)` inside each transaction; a setting made for the session (`SET`,
`set_config(..., false)`, `SET LOCAL` without pin_company, the startup `options`) is ignored, with
a WARNING, by every policy and function that reads it (issue 71 row 5: refusing it refused every
later client of the pooled connection), unless it is the login's own default (`ALTER ROLE ...
SET`, bound to the login, so safe behind a pooler). A single-company dashboard uses a login bound
to that company, no setting at all.

Each test prints its counts on one line (`pytest -s`) and asserts on them."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.pooler.conftest import (
    APP,
    COMPANIES,
    DASHBOARD,
    DASHBOARD_DEFAULT,
    DASHBOARD_ONE,
    BouncerFactory,
    dbname,
)

ROUNDS = 20
Conn = psycopg.Connection[tuple[Any, ...]]


def _connect(url: str, **options: Any) -> Conn:
    return psycopg.connect(url, autocommit=True, prepare_threshold=None, **options)


def _companies(conn: Conn) -> set[int]:
    return {int(c) for (c,) in conn.execute("SELECT DISTINCT company_id FROM public.calls")}


def _is_refusal(error: psycopg.Error) -> bool:
    """The fix's refusal of a tenant setting: SQLSTATE 42501, or a message that names it."""
    text = str(error)
    return (
        isinstance(error, psycopg.errors.InsufficientPrivilege)
        or "booking_guard.company_id" in text
        or "pin_company" in text
    )


class _Counted(Exception):
    """A refused query already counted, leaving a transaction block (which rolls it back)."""


def _read(conn: Conn, company: int, counts: Counter[str], *, in_block: bool = False) -> None:
    """One dashboard query of a client meant to see `company` only, counted. In a transaction
    block (`in_block`) an error is counted and raised as _Counted, to roll the block back."""
    counts["queries"] += 1
    try:
        seen = _companies(conn)
    except psycopg.Error as error:
        counts["refused" if _is_refusal(error) else "other errors"] += 1
        if in_block:
            raise _Counted from error
        return
    if seen - {company}:
        counts["saw another company"] += 1
    if company in seen:
        counts["saw its own company"] += 1


def _read_bound(conn: Conn, counts: Counter[str]) -> None:
    """One query of a client of DASHBOARD (bound to every company) under an ignored session
    value, counted: served or not, and whether it saw exactly the login's companies."""
    counts["queries"] += 1
    try:
        seen = _companies(conn)
    except psycopg.Error as error:
        counts["refused" if _is_refusal(error) else "other errors"] += 1
        return
    counts["saw its bound companies" if seen == set(COMPANIES) else f"saw {sorted(seen)}"] += 1


def _warnings(conn: Conn, counts: Counter[str]) -> None:
    """Count the WARNINGs that say a session value was ignored into counts["warned"]."""

    def hear(diagnostic: psycopg.errors.Diagnostic) -> None:
        if diagnostic.severity_nonlocalized == "WARNING" and "is ignored" in (
            diagnostic.message_primary or ""
        ):
            counts["warned"] += 1

    conn.add_notice_handler(hear)


@contextlib.contextmanager
def _four_clients(url: str, counts: Counter[str] | None = None) -> Iterator[list[tuple[Conn, int]]]:
    """Four clients of `url` with the company each acts for (two for 1, two for 2), closed at
    the end; with `counts`, the warnings each hears are counted there."""
    clients = [(_connect(url), company) for company in (1, 1, 2, 2)]
    try:
        for conn, _ in clients:
            if counts is not None:
                _warnings(conn, counts)
        yield clients
    finally:
        for conn, _ in clients:
            conn.close()


def _summary(counts: Counter[str]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counts.items()))


def test_a_session_pin_is_ignored_and_never_shifts_another_clients_view(
    tenants_url: str, bouncer: BouncerFactory
) -> None:
    """Row 1, dashboards: four clients of one login bound to 1, 2 and 3 pin themselves at
    session level (two to company 1, two to company 2; SET, set_config(..., false) and SET LOCAL
    in turn) and query, through a transaction pool of 2. Every value is ignored (issue 71): every
    query is served and sees the login's companies, whichever value the server connection holds,
    never a narrowing to another client's company; the clients are warned."""
    pooler = bouncer("transaction")
    url = pooler.url(DASHBOARD, dbname(tenants_url))
    counts: Counter[str] = Counter()
    with _four_clients(url, counts) as clients:
        for round_ in range(ROUNDS):
            way = round_ % 3
            if way == 2:  # SET LOCAL without guard.pin_company: a transaction of its own
                for conn, company in clients:
                    with conn.transaction():
                        conn.execute(f"SET LOCAL booking_guard.company_id = {company}")
                        _read_bound(conn, counts)
                continue
            for conn, company in clients:
                if way == 0:
                    conn.execute(f"SET booking_guard.company_id = {company}")
                else:
                    conn.execute(
                        "SELECT set_config('booking_guard.company_id', %s, false)", (str(company),)
                    )
            for conn, _ in clients:
                _read_bound(conn, counts)
    print(
        f"row 1: dashboards pinned at session level through a transaction pool: {_summary(counts)}"
    )
    assert counts["saw its bound companies"] == counts["queries"] == 4 * ROUNDS, (
        "a session-level pin must be ignored: neither refused nor applied"
    )
    assert counts["warned"] >= counts["queries"]


def test_check_call_under_a_session_pin_acts_as_unpinned(
    tenants_url: str, bouncer: BouncerFactory
) -> None:
    """Row 1, application: four application clients pin themselves at session level (two to 1,
    two to 2) and call guard.check_call on their own company's call and on the other's, through a
    transaction pool of 2. A session pin is no pin, and it is ignored (issue 71: refusing it
    refused the pooler's next clients too): each call is served as for the unbound, unpinned
    multi-tenant application, whichever company's value the server connection holds, with a
    warning. A service that must be kept to one company pins each transaction or is bound
    (test_check_call_under_a_transaction_pin)."""
    pooler = bouncer("transaction")
    url = pooler.url(APP, dbname(tenants_url))
    counts: Counter[str] = Counter()
    with _four_clients(url, counts) as clients:
        for _ in range(ROUNDS):
            for conn, company in clients:
                conn.execute(f"SET booking_guard.company_id = {company}")
            for conn, company in clients:
                for target, label in ((company, "own"), (3 - company, "other company's")):
                    counts["calls"] += 1
                    try:
                        conn.execute("SELECT guard.check_call(%s)", (100 * target + 1,))
                        counts[f"allowed on the {label} call"] += 1
                    except psycopg.Error as error:
                        counts["refused" if _is_refusal(error) else "other errors"] += 1
    print(f"row 1: check_call under a session pin through a transaction pool: {_summary(counts)}")
    assert counts["refused"] == counts["other errors"] == 0, "a session-level pin is ignored"
    assert (
        counts["allowed on the own call"]
        == counts["allowed on the other company's call"]
        == 4 * ROUNDS
    )
    assert counts["warned"] > 0


def _concurrently(clients: list[tuple[Conn, int]], work: Any) -> None:
    """Each client runs work(conn, company, round) for ROUNDS rounds, all clients in step."""
    barrier = threading.Barrier(len(clients))
    failures: list[BaseException] = []

    def run(conn: Conn, company: int) -> None:
        try:
            for round_ in range(ROUNDS):
                barrier.wait(30)
                work(conn, company, round_)
        except BaseException as error:  # reported by the test, not lost in a thread
            failures.append(error)
            barrier.abort()

    threads = [threading.Thread(target=run, args=client) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if failures:
        raise failures[0]


@pytest.mark.parametrize("pool_mode", ["transaction", "session"])
def test_a_transaction_pin_holds_behind_the_pooler(
    tenants_url: str, bouncer: BouncerFactory, pool_mode: str
) -> None:
    """The fix's pin: BEGIN; SELECT guard.pin_company(ID); queries; COMMIT, by four dashboard
    clients at once (two per company) through a pool of 2, while a fifth client of the same login
    leaves a stale session setting (company 3) on the server connections it is handed. Every
    query sees its own company and no other."""
    pooler = bouncer(pool_mode, pool_size=2 if pool_mode == "transaction" else 5)
    url = pooler.url(DASHBOARD, dbname(tenants_url))
    legacy = _connect(url)
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def pinned_read(conn: Conn, company: int, round_: int) -> None:
        mine: Counter[str] = Counter()
        if company == 1:
            with lock:  # a stale session setting on a server connection the others get next
                legacy.execute("SET booking_guard.company_id = 3")
        with contextlib.suppress(_Counted), conn.transaction():
            conn.execute("SELECT guard.pin_company(%s)", (company,))
            _read(conn, company, mine, in_block=True)
        with lock:
            counts.update(mine)

    with legacy, _four_clients(url) as clients:
        _concurrently(clients, pinned_read)
    print(f"row 1: dashboards pinned per transaction ({pool_mode} pool): {_summary(counts)}")
    assert counts["saw another company"] == 0
    assert counts["saw its own company"] == counts["queries"] == 4 * ROUNDS, (
        "a pinned transaction is served, and sees its company"
    )


@pytest.mark.parametrize("pool_mode", ["transaction", "session"])
def test_check_call_under_a_transaction_pin(
    tenants_url: str, bouncer: BouncerFactory, pool_mode: str
) -> None:
    """Four application clients at once pin each transaction (two to 1, two to 2) and call
    check_call on their own company's call (allowed) and the other's (refused, 42501)."""
    pooler = bouncer(pool_mode, pool_size=2 if pool_mode == "transaction" else 5)
    url = pooler.url(APP, dbname(tenants_url))
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def check(conn: Conn, company: int, round_: int) -> None:
        mine: Counter[str] = Counter()
        for target in (company, 3 - company):
            try:
                with conn.transaction():
                    conn.execute("SELECT guard.pin_company(%s)", (company,))
                    conn.execute("SELECT guard.check_call(%s)", (100 * target + 2,))
                mine["allowed on its own call" if target == company else "wrong decisions"] += 1
            except psycopg.errors.InsufficientPrivilege:
                mine[
                    "refused the other company's call" if target != company else "wrong decisions"
                ] += 1
            except psycopg.Error:
                mine["other errors"] += 1
        with lock:
            counts.update(mine)

    with _four_clients(url) as clients:
        _concurrently(clients, check)
    print(f"row 1: check_call pinned per transaction ({pool_mode} pool): {_summary(counts)}")
    assert counts["wrong decisions"] == counts["other errors"] == 0
    assert (
        counts["allowed on its own call"]
        == counts["refused the other company's call"]
        == (4 * ROUNDS)
    )


def test_a_one_company_login_and_a_login_default_hold_behind_the_pooler(
    tenants_url: str, bouncer: BouncerFactory
) -> None:
    """The documented single-company dashboard: a login bound to company 1 alone, no setting; and
    a login whose default (ALTER ROLE ... IN DATABASE ... SET booking_guard.company_id = '1')
    narrows it to 1 of its 2 companies: bound to the login, so safe behind a pooler and not
    refused. Two clients of each, in step with two clients of another login that pin themselves
    to company 2 at session level."""
    pooler = bouncer("transaction")
    db = dbname(tenants_url)
    clients = [(_connect(pooler.url(login, db)), 1) for login in (DASHBOARD_ONE,) * 2]
    clients += [(_connect(pooler.url(login, db)), 1) for login in (DASHBOARD_DEFAULT,) * 2]
    legacy = [_connect(pooler.url(DASHBOARD, db)) for _ in range(2)]
    counts: Counter[str] = Counter()
    try:
        for _ in range(ROUNDS):
            for conn in legacy:
                conn.execute("SET booking_guard.company_id = 2")
            for conn, company in clients:
                _read(conn, company, counts)
    finally:
        for conn in [*legacy, *(c for c, _ in clients)]:
            conn.close()
    print(
        f"row 1: one-company login and login default through a transaction pool: {_summary(counts)}"
    )
    assert counts["saw another company"] == 0
    assert counts["saw its own company"] == counts["queries"] == 4 * ROUNDS, (
        "a login's own binding or default is served, never refused"
    )


def test_the_options_pin(tenants_url: str, bouncer: BouncerFactory) -> None:
    """Row 2: `options=-c booking_guard.company_id=1`. Direct, the fix ignores it with a warning
    (a startup setting is the client's, like SET): the login's bound companies decide. PgBouncer
    refuses the connection
    (`unsupported startup parameter: options`); with `ignore_startup_parameters = options` it
    drops the setting silently, which no server can notice: there only the login's binding
    protects (a one-company login sees its company alone)."""
    db = dbname(tenants_url)
    counts: Counter[str] = Counter()
    host = tenants_url.split("@", 1)[1].rsplit("/", 1)[0]
    direct = f"postgresql://{DASHBOARD}@{host}/{db}"
    with _connect(direct, options="-c booking_guard.company_id=1") as conn:
        _warnings(conn, counts)
        for _ in range(ROUNDS):
            _read_bound(conn, counts)

    refusing = bouncer("transaction")
    accepted = 0
    for _ in range(3):
        try:
            with _connect(refusing.url(DASHBOARD, db, options="-c booking_guard.company_id=1")):
                accepted += 1
        except psycopg.OperationalError as error:
            assert "unsupported startup parameter" in str(error)

    dropping = bouncer("transaction", ignore_startup_parameters=["options"])
    one: Counter[str] = Counter()
    with _connect(dropping.url(DASHBOARD_ONE, db, options="-c booking_guard.company_id=1")) as conn:
        for _ in range(ROUNDS):
            _read(conn, 1, one)
    with _connect(dropping.url(DASHBOARD, db, options="-c booking_guard.company_id=1")) as conn:
        dropped = sorted(_companies(conn))
    print(
        f"row 2: direct options pin: {_summary(counts)}; PgBouncer accepted {accepted}/3"
        f" connections with options; options dropped by PgBouncer: one-company login"
        f" {_summary(one)}; a login bound to 1, 2, 3 sees {dropped} (not detectable by the server)"
    )
    assert counts["saw its bound companies"] == counts["queries"] == ROUNDS, (
        "a startup-options pin must be ignored: neither refused nor applied"
    )
    assert counts["warned"] >= ROUNDS
    assert accepted == 0
    assert one["saw another company"] == 0 and one["saw its own company"] == ROUNDS
