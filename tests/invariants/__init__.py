"""Property-based soundness tests of the database invariants (docs/invariants.md)."""
