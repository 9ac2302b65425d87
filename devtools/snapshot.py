"""guard/schema/canonical_snapshot.json: the catalog of a database built from the canonical sql/
files, which `guard db verify` and `guard db apply` compare a database with, and the digest of
the definitions it was made from (`guard db apply` trusts the snapshot only for those)."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from devtools.database import Databases
from guard.connection import open_connection
from guard.errors import GuardError
from guard.schema import catalog, definitions

PATH = "guard/schema/canonical_snapshot.json"
# The stored view texts are as this version prints them; another version reprints them
# (guard.schema.catalog.as_printed_by) before comparing.
SERVER_VERSION = 15


def take(canonical_url: str) -> catalog.Snapshot:
    """The catalog snapshot of a database the canonical files built."""
    with open_connection(canonical_url) as conn:
        major = conn.info.server_version // 10000
        if major != SERVER_VERSION:
            raise GuardError(
                f"the snapshot is taken on PostgreSQL {SERVER_VERSION}, this server is {major}"
            )
        return catalog.take(conn)


def definitions_digest() -> str:
    return definitions.digest(definitions.checkout_definitions())


def rows_from_migrations(migrated_url: str) -> list[tuple[str, str]]:
    """What an install from sql/ must not record as created by a data file."""
    with open_connection(migrated_url) as conn:
        return registry_rows_of_migrations(conn)


def registry_rows_of_migrations(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """In a database the migrations built: the registry rows no data file recorded."""
    return sorted(definitions.registry_keys(conn) - catalog.rows_created_by_data(conn))


def render(
    snapshot: catalog.Snapshot, made_from: str, from_migrations: list[tuple[str, str]]
) -> str:
    stored = {
        **snapshot,
        "definitions_sha256": made_from,
        definitions.ROWS_FROM_MIGRATIONS: [list(row) for row in from_migrations],
    }
    return json.dumps(stored, indent=1, sort_keys=True) + "\n"


def build(databases: Databases, current: dict[str, str]) -> dict[str, str]:
    del current  # written whole
    return {
        PATH: render(
            take(databases.canonical()),
            definitions_digest(),
            rows_from_migrations(databases.migrated()),
        )
    }
