"""Build a database from the canonical sql/ files instead of the migrations (guard.schema.canonical,
which `make migration` uses too)."""

from guard.schema.canonical import build_from_canonical

__all__ = ["build_from_canonical"]
