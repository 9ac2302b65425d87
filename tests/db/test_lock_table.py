"""docs/dba.md's table of the locks each migration takes is observed, not written by hand
(devtools/lock_table.py observes it; `make generated` writes it). The slow test observes
it again and compares; the fast one holds the table's fingerprint to the migrations there are,
so a migration added without `make generated` fails the default group too."""

from __future__ import annotations

import pytest

from devtools import lock_table
from devtools.generate import CHECKOUT
from tests.support.postgres import Cluster

DOC = CHECKOUT / lock_table.PATH


def test_the_lock_table_was_observed_from_these_migrations() -> None:
    stored = lock_table.stored_fingerprint(DOC.read_text())
    assert stored == lock_table.fingerprint(), (
        "docs/dba.md's lock table was observed from other migrations than migrations/ holds:"
        " run `make generated`"
    )


@pytest.mark.slow  # about a minute or more: the slow group (docs/testing.md)
def test_lock_table_in_dba_md_is_current(pg_cluster: Cluster) -> None:
    with pg_cluster.database() as new_url, pg_cluster.database() as adopted_url:
        table = lock_table.observe(new_url, adopted_url)
    _, _, stored, _ = lock_table.split(DOC.read_text())
    assert stored == table, (
        "docs/dba.md's lock table is stale: run `make generated` (the observed table is below)\n"
        + table
    )
