"""What a scrape leaves in its server session: nothing. Behind PgBouncer in transaction mode the
server connection goes to the next client (`guard jobs run`, `guard watch`) after every
transaction, so a session-level setting of the exporter (read-only, its statement_timeout, jit
off, work_mem) or a prepared statement would reach that client. Checked on the exporter's own
connection object after scrapes, a failed series among them, against the server's defaults."""

from __future__ import annotations

from typing import Any

import psycopg
from prometheus_client import generate_latest
from psycopg.pq import TransactionStatus

from guard.ops.metrics import GuardCollector, registry_for
from tests.metrics.test_metrics import DATA
from tests.support.exposition import sample

SETTINGS = (
    "default_transaction_read_only",
    "statement_timeout",
    "jit",
    "transaction_read_only",
    "work_mem",
)


def _settings(conn: psycopg.Connection[Any]) -> dict[str, str]:
    found = {}
    for name in SETTINGS:
        row = conn.execute(f"SHOW {name}").fetchone()
        assert row is not None
        found[name] = str(row[0])
    return found


def test_a_scrape_leaves_its_server_session_as_it_found_it(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(DATA.encode())
        defaults = _settings(conn)
    # every series read at each scrape, more times than psycopg's default prepare threshold (5)
    collector = GuardCollector(db_url, statement_timeout_ms=300, cache_interval_s=0)
    try:
        texts = [generate_latest(registry_for(collector)).decode() for _ in range(7)]
        with psycopg.connect(db_url) as locker:  # one series fails: its transaction rolls back
            locker.execute("LOCK TABLE guard.breaker_state IN ACCESS EXCLUSIVE MODE")
            texts.append(generate_latest(registry_for(collector)).decode())
        session = collector._conn
        assert session is not None and not session.closed
        # what PgBouncer would hand to the next client: no transaction left open ...
        assert session.info.transaction_status == TransactionStatus.IDLE
        session.autocommit = True  # (look as the next client would: outside any transaction)
        # ... every setting at the server's default ...
        assert _settings(session) == defaults
        # ... and no statement prepared in the session
        row = session.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
        assert row == (0,)
    finally:
        collector.close()
    assert defaults["default_transaction_read_only"] == "off"  # (else it proves nothing)
    for text in texts:
        assert sample(text, "guard_up") == 1
        assert sample(text, "guard_in_recovery") == 0
    assert sample(texts[-1], 'guard_series_stale{series="breaker"}') == 1
    assert sample(texts[-1], 'guard_series_stale{series="alerts"}') == 0


def test_each_query_runs_read_only_with_the_scrape_timeout(db_url: str) -> None:
    """The settings are there where they count: inside a scrape's transaction."""
    collector = GuardCollector(db_url, statement_timeout_ms=1234)
    try:
        conn = collector._connection()
        [row] = collector._in_transaction(
            conn,
            "SELECT current_setting('transaction_read_only'), current_setting('statement_timeout'),"
            " current_setting('jit')",
        )
    finally:
        collector.close()
    assert row == ("on", "1234ms", "off")


def test_a_scrape_sorts_in_memory_without_lowering_the_logins_work_mem(db_url: str) -> None:
    """The KPIs' percentiles sort a day of validations: 64 MB for it, or the login's work_mem
    when that is more (a DBA's setting is never lowered), inside the transaction only."""
    collector = GuardCollector(db_url)
    try:
        conn = collector._connection()
        [(scraped,)] = collector._in_transaction(conn, "SELECT current_setting('work_mem')")
        conn.execute("SET work_mem = '256MB'")
        conn.commit()
        [(raised,)] = collector._in_transaction(conn, "SELECT current_setting('work_mem')")
        after = conn.execute("SHOW work_mem").fetchone()
    finally:
        collector.close()
    assert (scraped, raised) == ("64MB", "256MB")
    assert after == ("256MB",)
