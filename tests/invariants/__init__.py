"""Property-based soundness tests of the database invariants (DESIGN.md, "Invariants")."""
