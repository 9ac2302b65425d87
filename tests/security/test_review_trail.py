"""The review trail holds against any SQL a reviewer login can run: a direct UPDATE of
guard.review_items that back-dates, post-dates, contradicts, reopens or closes without a note is
refused with one error and changes nothing (the threat model: a reviewer with a SQL box)."""

from __future__ import annotations

import pytest
from psycopg import errors

from tests.security.conftest import COMPANY_A, connect_as
from tests.support.queries import fetch_one

# (state the item is brought to through the review functions first, the forging statement)
FORGERIES = {
    "back-dated closed_at": (
        "claimed",
        "UPDATE guard.review_items SET status = 'resolved', closed_by = 'ann',"
        " closed_at = now() - interval '30 days', note = 'done long ago' WHERE id = %(id)s",
    ),
    "claimed_at in 2099": (
        "open",
        "UPDATE guard.review_items SET status = 'claimed', claimed_by = 'ann',"
        " claimed_at = '2099-01-01' WHERE id = %(id)s",
    ),
    "resolved and false positive together": (
        "claimed",
        "UPDATE guard.review_items SET status = 'resolved', closed_by = 'ann', closed_at = now(),"
        " note = 'fixed', false_positive = TRUE WHERE id = %(id)s",
    ),
    "reopening a closed item": (
        "resolved",
        "UPDATE guard.review_items SET status = 'open', closed_by = NULL, closed_at = NULL,"
        " note = NULL, claimed_by = NULL, claimed_at = NULL WHERE id = %(id)s",
    ),
    "closing without a note": (
        "claimed",
        "UPDATE guard.review_items SET status = 'dismissed', closed_by = 'ann', closed_at = now()"
        " WHERE id = %(id)s",
    ),
    "rewriting a closed item's outcome": (
        "resolved",
        "UPDATE guard.review_items SET status = 'dismissed', false_positive = TRUE,"
        " note = 'it was nothing' WHERE id = %(id)s",
    ),
    "closing with a blank note": (
        "claimed",
        "UPDATE guard.review_items SET status = 'resolved', closed_by = 'ann', closed_at = now(),"
        " note = '   ' WHERE id = %(id)s",
    ),
    "handing a claim back to the queue": (
        "claimed",
        "UPDATE guard.review_items SET status = 'open', claimed_by = NULL, claimed_at = NULL"
        " WHERE id = %(id)s",
    ),
    "moving a claim's time": (
        "claimed",
        "UPDATE guard.review_items SET claimed_at = claimed_at - interval '2 days'"
        " WHERE id = %(id)s",
    ),
}

_TRAIL = (
    "SELECT status, claimed_by, claimed_at, claimed_by_role, closed_by, closed_at,"
    " closed_by_role, note, false_positive FROM guard.review_items WHERE id = %s"
)


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_reviewer_cannot_forge_the_review_trail_with_sql(
    seeded_url: str, login_roles: dict[str, str], forgery: str
) -> None:
    state, statement = FORGERIES[forgery]
    with connect_as(seeded_url, login_roles["reviewer"], tenant=COMPANY_A) as reviewer:
        item = reviewer.execute(
            "SELECT id FROM guard.review_items WHERE company_id = %s AND status = 'open'",
            (COMPANY_A,),
        ).fetchone()
        assert item is not None
        if state != "open":
            reviewer.execute("SELECT guard.review_claim('ann', 1)")
        if state == "resolved":
            reviewer.execute("SELECT guard.review_close(%s, 'ann', 'resolved', 'fixed')", item)
        before = reviewer.execute(_TRAIL, item).fetchone()
        assert before is not None and before[0] == state
        with pytest.raises(errors.CheckViolation) as refused:
            reviewer.execute(statement, {"id": item[0]})
        assert "review item" in str(refused.value)
    assert fetch_one(seeded_url, _TRAIL, item) == before


def test_the_review_functions_still_claim_and_close(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    login = login_roles["reviewer"]
    with connect_as(seeded_url, login, tenant=COMPANY_A) as reviewer:
        item, claimed_at, now = reviewer.execute(
            "SELECT id, claimed_at, now() FROM guard.review_claim('ann', 1)"
        ).fetchone() or (None, None, None)
        assert claimed_at == now
        # a claim's label may be corrected; the database records who did it
        reviewer.execute("UPDATE guard.review_items SET claimed_by = 'bob' WHERE id = %s", (item,))
        closed = reviewer.execute(
            "SELECT status, closed_by_role, note, false_positive, closed_at = now()"
            " FROM guard.review_close(%s, 'ann', 'dismissed', 'a duplicate', TRUE)",
            (item,),
        ).fetchone()
    assert closed == ("dismissed", login, "a duplicate", True, True)


def test_a_direct_close_gets_the_databases_time(
    seeded_url: str, login_roles: dict[str, str]
) -> None:
    with (
        connect_as(seeded_url, login_roles["reviewer"], tenant=COMPANY_A) as reviewer,
        reviewer.transaction(),
    ):
        item = reviewer.execute("SELECT id FROM guard.review_claim('ann', 1)").fetchone()
        assert item is not None
        reviewer.execute(
            "UPDATE guard.review_items SET status = 'resolved', closed_by = 'ann', note = 'done'"
            " WHERE id = %s",
            item,
        )
        stamped = reviewer.execute(
            "SELECT closed_at = now(), closed_by_role FROM guard.review_items WHERE id = %s", item
        ).fetchone()
    assert stamped == (True, login_roles["reviewer"])
