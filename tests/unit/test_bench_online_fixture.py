"""bench/online.py's fixtures load the shares of bad rows of the databases they model: the adopt
fixture the tracker's (5 % without direction, 0.05 % with a customer and no link status, every
call with an appointment with contradicting flags), and neither links a call to another
company's customer. Counted on a small load in the session's throwaway cluster."""

from __future__ import annotations

import psycopg
import pytest

from bench.online import (
    INSERT_CALL_WITH_LINK_STATUS,
    count_bad_rows,
    fixture_shares,
    load_fixture,
    shares_off,
)

# The smallest load with bad customer links in it (every 2,000th call has one).
CALLS = 20_000


def _loaded(url: str, fixture: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        load_fixture(conn, fixture, CALLS, lambda _message: None)
        return count_bad_rows(conn, fixture)


def test_the_adopt_fixture_loads_the_trackers_shares(empty_db_url: str) -> None:
    loaded = _loaded(empty_db_url, "adopt")
    assert loaded == {
        "direction": 1_000,
        "customer link": 10,
        "flags": 12_000,
        "foreign customer": 0,
    }
    assert shares_off(fixture_shares("adopt", CALLS, loaded, {})) == []


def test_the_adopted_applications_new_calls_are_no_bad_links(empty_db_url: str) -> None:
    # Before `guard db apply` no normaliser sets the link status of a call the writer inserts.
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        load_fixture(conn, "adopt", CALLS, lambda _message: None)
        conn.execute(INSERT_CALL_WITH_LINK_STATUS.encode(), ("new",))
        assert count_bad_rows(conn, "adopt")["customer link"] == 10


@pytest.mark.parametrize("fixture", ["sample", "adopt"])
def test_linked_customers_are_of_the_calls_own_company(empty_db_url: str, fixture: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        load_fixture(conn, fixture, CALLS, lambda _message: None)
        linked, foreign = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE cu.company_id <> c.company_id)"
            " FROM calls AS c JOIN customers AS cu ON cu.id = c.customer_id"
        ).fetchone() or (0, 0)
    assert linked > 0
    assert foreign == 0


def test_shares_more_than_a_tenth_off_are_reported() -> None:
    # 10 bad customer links where the tracker's share gives 9.31: inside; 11: outside.
    near = {"direction": 1_004, "customer link": 10, "flags": 12_008, "foreign customer": 0}
    assert shares_off(fixture_shares("adopt", CALLS, near, {})) == []
    far = {**near, "customer link": 11, "foreign customer": 1}
    assert shares_off(fixture_shares("adopt", CALLS, far, {})) == [
        "customer link: 11 loaded, 9 expected",
        "foreign customer: 1 loaded, 0 expected",
    ]
