"""I4_booked_outcome rolled out company by company from the command line: `guard rules stage
I4_booked_outcome observe --percent N` (10 % then 50 %, and the rule's own stage with
--all-companies) decides which companies' phantom bookings `guard reconcile` rolls back; a mode
for I4 is refused in one line and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from tests.support.cli import cli
from tests.support.queries import fetch_all
from tests.support.rollout import bucket, with_companies

RULE = "I4_booked_outcome"
COMPANIES = 200


@pytest.fixture
def url(db_url: str) -> str:
    return with_companies(db_url, COMPANIES)


def _phantoms(url: str) -> None:
    """One call per company claiming a booking an hour ago, with no appointment (an adopted
    row: written with the triggers off)."""
    with psycopg.connect(url) as conn:
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(
            "INSERT INTO calls (company_id, retell_call_id, direction, customer_link_status,"
            " session_outcome, appointment_made, appointment_link_status, booking_id,"
            " created_at, updated_at)"
            " SELECT id, 'phantom-' || id || '-' || clock_timestamp(), 'inbound', 'unlinked',"
            " 'appointment_booked', TRUE, 'linked', 'uid-' || id,"
            " now() - interval '1 hour', now() - interval '1 hour' FROM companies"
        )


def _booked_companies(url: str) -> set[int]:
    rows = fetch_all(
        url, "SELECT DISTINCT company_id FROM calls WHERE session_outcome = 'appointment_booked'"
    )
    return {company for (company,) in rows}


def _state(url: str) -> list[Any]:
    return fetch_all(
        url,
        "SELECT rule_id, company_id, stage, mode FROM guard.rule_company_stages"
        " UNION ALL SELECT id, NULL, stage, mode FROM guard.rules ORDER BY 1, 2",
    )


def _reconcile(url: str) -> int:
    code, out, err = cli(url, "reconcile", "--json")
    assert code == 0, err
    rolled_back: int = json.loads(out)["actions"]["rollback_phantom_booking"]
    return rolled_back


def test_percent_rollout_of_observe_leaves_those_companies_phantoms(url: str) -> None:
    everyone = set(range(1, COMPANIES + 1))
    ten = {c for c in everyone if bucket(c) < 10}
    fifty = {c for c in everyone if bucket(c) < 50}
    assert ten and ten < fifty < everyone

    code, out, err = cli(url, "rules", "stage", RULE, "observe", "--percent", "10")
    assert code == 0, err
    assert out.startswith(f"set  {RULE}: stage observe for {len(ten)} company(ies): ")
    _phantoms(url)
    assert _reconcile(url) == COMPANIES - len(ten)
    assert _booked_companies(url) == ten, "observed companies keep their calls as written"

    assert cli(url, "rules", "stage", RULE, "observe", "--percent", "50")[0] == 0
    _phantoms(url)
    assert _reconcile(url) == COMPANIES - len(fifty)
    assert _booked_companies(url) == fifty, "the 10 % are in the 50 %"

    code, out, _ = cli(url, "rules", "show", RULE, "--json")
    shown = json.loads(out)
    assert code == 0
    assert (shown["stage"], shown["rollout_by_company"], shown["stage_overridden"]) == (
        "correct",
        True,
        len(fifty),
    )

    # Everyone observes, then the overrides go: the companies follow the rule's observe.
    assert cli(url, "rules", "stage", RULE, "observe", "--all-companies")[0] == 0
    assert cli(url, "rules", "stage", RULE, "--clear")[0] == 0
    _phantoms(url)
    assert _reconcile(url) == 0
    assert _booked_companies(url) == everyone
    # And back to correct for every company: each one's phantoms are rolled back.
    assert cli(url, "rules", "stage", RULE, "correct", "--all-companies")[0] == 0
    assert _reconcile(url) == len(ten) + len(fifty) + COMPANIES
    assert _booked_companies(url) == set()


@pytest.mark.parametrize(
    "args",
    [
        ["mode", RULE, "reject", "--company", "1"],
        ["mode", RULE, "reject", "--percent", "10"],
        ["mode", RULE, "correct", "--all-companies"],
        ["mode", RULE, "--clear"],
    ],
)
def test_a_mode_for_i4_is_refused_in_one_line(url: str, args: list[str]) -> None:
    assert cli(url, "rules", "stage", RULE, "observe", "--company", "2")[0] == 0
    before = _state(url)
    code, out, err = cli(url, "rules", *args)
    assert (code, out) == (1, "")
    assert err.startswith(f"guard: error: rule {RULE} has no mode: "), err
    assert err.count("\n") == 1, err
    assert _state(url) == before
