"""The throwaway PostgreSQL the generators read: one cluster per run, and the databases they
share in it, each built the first time a generator asks for it."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from psycopg import sql

from devtools.throwaway import build_from_canonical, scratch_directory
from guard.connection import open_connection
from guard.demo.embedded import EmbeddedCluster
from guard.schema.migrate import Migrator

# pg_cron (when installed) is preloaded for a database none of the generators use, as in the
# tests: the catalogs they read are those of a database without it.
CRON_DATABASE = "guard_cron"


class Databases:
    """Databases in one cluster, given as `url_of(database name)`: `migrated()` and
    `canonical()` are built once and shared by the generators of a run, `fresh()` gives a
    generator an empty one of its own to change."""

    def __init__(self, url_of: Callable[[str], str], *, migrated: str | None = None) -> None:
        self.url_of = url_of
        self._names = itertools.count(1)
        self._migrated = migrated
        self._canonical: str | None = None

    def fresh(self) -> str:
        """The URL of a new, empty database."""
        name = f"guard_generate_{next(self._names)}"
        with open_connection(self.url_of("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            )
        return self.url_of(name)

    def migrated(self) -> str:
        """Every migration applied, then the definitions of sql/ (what `guard db apply` does)."""
        if self._migrated is None:
            url = self.fresh()
            with Migrator(url) as migrator:
                migrator.apply()
            self._migrated = url
        return self._migrated

    def canonical(self) -> str:
        """Built from the canonical sql/ files alone, in manifest order."""
        if self._canonical is None:
            url = self.fresh()
            build_from_canonical(url)
            self._canonical = url
        return self._canonical


@contextmanager
def throwaway_databases() -> Iterator[Databases]:
    """A cluster that exists for the `with` block only; nothing of it is kept."""
    state_dir = scratch_directory("guard-generate-")
    cluster = EmbeddedCluster(state_dir / "cluster", cron_database=CRON_DATABASE)
    try:
        cluster.start()
        yield Databases(cluster.url)
    finally:
        cluster.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
