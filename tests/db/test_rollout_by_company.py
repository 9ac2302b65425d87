"""I3 rolled out company by company, with real commits by an application login: a company whose
override puts the rule in reject mode has its contradicting commit refused, another company's is
corrected, and without any override the rule's own row decides as before. Rolling back
0090_rule_company_stages leaves a commit-time check that still judges and a company that can
still be deleted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors

from guard.resources import migrations_dir
from guard.schema.migrate import Migrator
from tests.security.conftest import assert_refused, login_roles  # noqa: F401 (fixture)
from tests.support.postgres import Cluster
from tests.support.queries import execute, fetch_one

ROLLOUT_MIGRATION = "0090_rule_company_stages"
CONTRADICT = "UPDATE calls SET appointment_made = TRUE WHERE id = %s"
OVERRIDE = (
    "INSERT INTO guard.rule_company_stages (rule_id, company_id, mode)"
    " VALUES ('I3_appointment_flags', %s, %s)"
)


def _seed(url: str) -> None:
    """Companies 1 and 2, calls 1 and 3 of company 1, calls 2 and 4 of company 2, none booked."""
    execute(
        url,
        "INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B')",
        (
            "INSERT INTO calls (id, company_id, retell_call_id, session_outcome)"
            " SELECT g, 2 - g % 2, 'c' || g, 'information_only' FROM generate_series(1, 4) AS g"
        ),
    )


@pytest.fixture
def app_url(db_url: str, login_roles: dict[str, str]) -> Iterator[str]:  # noqa: F811
    _seed(db_url)
    yield psycopg.conninfo.make_conninfo(db_url, user=login_roles["application"])


def _made(url: str, call: int) -> tuple[Any, ...]:
    row = fetch_one(
        url,
        "SELECT c.appointment_made, (SELECT count(*) FROM guard.correction_audit AS a"
        " WHERE a.entity_id = c.id) FROM calls AS c WHERE c.id = %s",
        (call,),
    )
    assert row is not None
    return tuple(row)


def _commit(url: str, *calls: int) -> None:
    with psycopg.connect(url) as app:
        for call in calls:
            app.execute(CONTRADICT, (call,))
        app.commit()


def test_a_company_in_reject_mode_is_refused_at_commit_another_corrected(
    app_url: str, db_url: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(OVERRIDE, (2, "reject"))
    with pytest.raises(errors.CheckViolation, match=r"booking flags of 1 call\(s\) contradict"):
        _commit(app_url, 2)
    assert _made(db_url, 2) == (False, 0), "refused: the write never committed"
    _commit(app_url, 1)
    assert _made(db_url, 1) == (False, 1), "company 1 follows the rule: corrected and audited"
    # one transaction over both companies: company 2's call fails the whole commit
    with pytest.raises(errors.CheckViolation):
        _commit(app_url, 3, 4)
    assert _made(db_url, 3) == (False, 0)


def test_an_override_back_to_correct_under_a_rule_in_reject_mode(app_url: str, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("UPDATE guard.rules SET mode = 'reject' WHERE id = 'I3_appointment_flags'")
        admin.execute(OVERRIDE, (1, "correct"))
    _commit(app_url, 1)
    assert _made(db_url, 1) == (False, 1)
    with pytest.raises(errors.CheckViolation):
        _commit(app_url, 2)


def test_without_overrides_the_rule_row_decides_alone(app_url: str, db_url: str) -> None:
    _commit(app_url, 1)
    assert _made(db_url, 1) == (False, 1)
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("UPDATE guard.rules SET mode = 'reject' WHERE id = 'I3_appointment_flags'")
    with pytest.raises(errors.CheckViolation):
        _commit(app_url, 2)


def _counted(url: str) -> tuple[Any, ...]:
    """The rule's counter and its rows in guard.rule_company_stages."""
    row = fetch_one(
        url,
        "SELECT company_overrides, (SELECT count(*)::int FROM guard.rule_company_stages)"
        " FROM guard.rules WHERE id = 'I3_appointment_flags'",
    )
    assert row is not None
    return tuple(row)


def _at_once(url: str, first: str, second: str, *params: tuple[Any, ...]) -> None:
    """Two hand-written statements on guard.rule_company_stages in two transactions at once: the
    second runs while the first is still open, and the first commits while the second waits (or
    has finished, if nothing made it wait); then the second commits."""
    with psycopg.connect(url) as one, psycopg.connect(url) as two:
        one.execute(first, params[0])
        outcome: list[BaseException | None] = []

        def run_second() -> None:
            try:
                two.execute(second, params[1])
                two.commit()
                outcome.append(None)
            except BaseException as error:  # handed to the test's thread
                outcome.append(error)

        worker = threading.Thread(target=run_second)
        worker.start()
        worker.join(timeout=1)  # the second waits for the first's lock (after the fix)
        one.commit()
        worker.join(timeout=30)
        assert outcome == [None], outcome


def test_two_overrides_written_at_once_are_both_counted(db_url: str) -> None:
    """Issue 71: two transactions that each wrote an override counted in their own snapshot,
    without the other's row: the counter ended one short."""
    _seed(db_url)
    _at_once(db_url, OVERRIDE, OVERRIDE, (1, "reject"), (2, "reject"))
    assert _counted(db_url) == (2, 2)


def test_an_override_written_while_another_is_removed_is_not_ignored(
    app_url: str, db_url: str
) -> None:
    """Issue 71: one transaction adds company 1's override while another removes company 2's:
    the counter was left at 0 with company 1's row in the table, and the commit-time check, which
    reads the counter first, ignored it."""
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(OVERRIDE, (2, "reject"))
    remove = "DELETE FROM guard.rule_company_stages WHERE company_id = %s"
    _at_once(db_url, OVERRIDE, remove, (1, "reject"), (2,))
    assert _counted(db_url) == (1, 1)
    with pytest.raises(errors.CheckViolation, match=r"booking flags of 1 call\(s\) contradict"):
        _commit(app_url, 1)


def test_an_override_of_a_company_that_does_not_exist_is_refused(db_url: str) -> None:
    """Issue 71: an override written for a company id nobody has yet applied, unseen, to the
    company created with that id later. Refused at the write, also when an UPDATE moves an
    override to such a company; the counter stays as it was."""
    _seed(db_url)
    with psycopg.connect(db_url, autocommit=True) as admin:
        with pytest.raises(errors.ForeignKeyViolation, match="company 99 does not exist"):
            admin.execute(OVERRIDE, (99, "reject"))
        admin.execute(OVERRIDE, (1, "reject"))
        with pytest.raises(errors.ForeignKeyViolation, match="company 99 does not exist"):
            admin.execute("UPDATE guard.rule_company_stages SET company_id = 99")
        admin.execute("UPDATE guard.rule_company_stages SET mode = 'correct'")  # its company: kept
        admin.execute("INSERT INTO companies (id, name) VALUES (99, 'created later')")
        rows = admin.execute(
            "SELECT company_id, mode FROM guard.rule_company_stages ORDER BY 1"
        ).fetchall()
    assert rows == [(1, "correct")]
    assert _counted(db_url) == (1, 1)


def test_the_application_cannot_change_the_rollout(app_url: str) -> None:
    with psycopg.connect(app_url, autocommit=True) as app:
        assert_refused(
            app,
            "SELECT * FROM guard.rule_company_stages",
            "INSERT INTO guard.rule_company_stages (rule_id, company_id, mode)"
            " VALUES ('I3_appointment_flags', 1, 'correct')",
            "DELETE FROM guard.rule_company_stages",
            "UPDATE guard.rules SET mode = 'correct'",
        )


@pytest.mark.parametrize("kind", ["reporting", "reviewer"])
def test_reading_roles_neither_read_nor_write_the_rollout(
    db_url: str,
    login_roles: dict[str, str],  # noqa: F811
    kind: str,
) -> None:
    url = psycopg.conninfo.make_conninfo(db_url, user=login_roles[kind])
    with psycopg.connect(url, autocommit=True) as reader:
        assert_refused(
            reader,
            "SELECT * FROM guard.rule_company_stages",
            "DELETE FROM guard.rule_company_stages",
        )


def test_the_owner_role_maintains_the_rollout(
    app_url: str,
    db_url: str,
    login_roles: dict[str, str],  # noqa: F811
) -> None:
    owner = psycopg.conninfo.make_conninfo(db_url, user=login_roles["owner"])
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute(OVERRIDE, (2, "reject"))
        stamped = conn.execute(
            "SELECT set_by FROM guard.rule_company_stages WHERE company_id = 2"
        ).fetchone()
        assert stamped == (login_roles["owner"],)
    with pytest.raises(errors.CheckViolation):
        _commit(app_url, 2)
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute("DELETE FROM guard.rule_company_stages")
    _commit(app_url, 2)
    assert _made(db_url, 2) == (False, 1)


def test_the_rollback_keeps_the_commit_check_and_company_deletes(db_url: str) -> None:
    """0090's rollback run on its own (later migrations stay: their rollbacks are theirs): the
    commit-time check and the deleted company's clean-up it puts back still work."""
    _seed(db_url)
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(OVERRIDE, (2, "reject"))
    rollback = (migrations_dir() / f"{ROLLOUT_MIGRATION}.rollback.sql").read_text()
    with psycopg.connect(db_url) as admin:
        admin.execute(rollback.encode())
        admin.commit()
        gone = admin.execute("SELECT to_regclass('guard.rule_company_stages')").fetchone()
    assert gone == (None,)
    # judged as before 0090: the rule's own correct mode, for company 2 too
    _commit(db_url, 2)
    assert _made(db_url, 2) == (False, 1)
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("DELETE FROM calls WHERE company_id = 2")
        admin.execute("DELETE FROM companies WHERE id = 2")
        assert admin.execute("SELECT count(*) FROM companies").fetchone() == (1,)


@pytest.mark.history
def test_rollback_past_0090_and_apply_again(pg_cluster: Cluster) -> None:
    with pg_cluster.database() as url, Migrator(url) as migrator:
        migrator.apply()
        _seed(url)
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(OVERRIDE, (2, "reject"))
        ids = [s.id for s in migrator.states()]
        before = ids[ids.index(ROLLOUT_MIGRATION) - 1]
        assert ROLLOUT_MIGRATION in migrator.rollback(to=before)
        with psycopg.connect(url, autocommit=True) as admin:
            for name in ("guard.rule_company_stages", "guard.effective_rule_setting(text, bigint)"):
                kind = "to_regclass" if "(" not in name else "to_regprocedure"
                assert admin.execute(f"SELECT {kind}(%s)", (name,)).fetchone() == (None,)
        assert ROLLOUT_MIGRATION in migrator.apply()
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(OVERRIDE, (1, "reject"))
        with pytest.raises(errors.CheckViolation):
            _commit(url, 1)
        _commit(url, 2)
        assert _made(url, 2) == (False, 1), "the override went with the table"
