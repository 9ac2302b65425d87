"""A rule's rollout by company, as the tests of `guard rules stage --percent` see it."""

from __future__ import annotations

import hashlib

from tests.support.queries import execute


def bucket(company: int) -> int:
    """The rollout bucket computed apart from the database (docs/dba.md, "Rollout by company"):
    md5 of the id's text, its first 32 bits, modulo 100."""
    return int(hashlib.md5(str(company).encode()).hexdigest()[:8], 16) % 100


def with_companies(url: str, count: int) -> str:
    """Companies 1 to `count` in the database at `url`; the url."""
    execute(
        url,
        f"INSERT INTO companies (id, name) SELECT g, 'company ' || g"
        f" FROM generate_series(1, {int(count)}) AS g",
    )
    return url
