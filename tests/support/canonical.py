"""Build a database from the canonical sql/ files instead of the migrations (guard.db.canonical,
which `make migration` uses too)."""

from guard.db.canonical import build_from_canonical

__all__ = ["build_from_canonical"]
