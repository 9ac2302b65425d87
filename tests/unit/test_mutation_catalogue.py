"""The mutation catalogue stays applicable as the SQL changes: every mutant's text is found once
in its canonical file and inside the definition in the migration that last creates the object,
and every test it names exists. (`make mutate` runs the mutants; this only keeps them valid.)"""

from __future__ import annotations

from mutation.mutate import ROOT, apply_mutant, load_catalogue, tree_copy


def test_every_mutant_applies_to_its_canonical_file_and_migration() -> None:
    mutants = load_catalogue()
    assert len(mutants) >= 60
    with tree_copy() as tree:
        for mutant in mutants:
            originals = apply_mutant(tree, mutant)
            try:
                (canonical, _), (migration, _) = originals
                assert mutant.replace in canonical.read_text(), mutant.id
                assert migration.parent.name == "migrations", mutant.id
            finally:
                for path, content in originals:
                    path.write_bytes(content)


def test_every_covering_test_exists() -> None:
    for mutant in load_catalogue():
        for test in mutant.tests:
            path = test.split("::", 1)[0]
            assert (ROOT / path).is_file(), f"{mutant.id}: {path} does not exist"
            if "::" in test:
                name = test.split("::", 1)[1]
                assert f"def {name}(" in (ROOT / path).read_text(), f"{mutant.id}: {test}"
