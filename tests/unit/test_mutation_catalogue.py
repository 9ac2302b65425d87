"""The mutation catalogues stay applicable as the code changes: every SQL mutant's text is found
once in its canonical file (and, for a versioned object, inside the definition in the migration
that last creates it), every Python mutant's once in its module, and every test a mutant names
exists.
(`make mutate` runs the mutants; this only keeps them valid.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from guard.schema.definitions import is_definition
from mutation.mutate import (
    ROOT,
    _annotation_spans,
    _inside,
    _keep_every_nth,
    _node_id,
    apply_mutant,
    load_catalogue,
    tree_copy,
)


def test_every_mutant_applies_to_its_canonical_file_and_migration() -> None:
    """A definition (applied from sql/) changes its file only; a versioned object its file and
    the migration that creates it."""
    mutants = load_catalogue()
    assert len(mutants) >= 60
    with tree_copy() as tree:
        for mutant in mutants:
            originals = apply_mutant(tree, mutant)
            try:
                changed = [path for path, _ in originals]
                assert mutant.replace in changed[0].read_text(), mutant.id
                versioned = mutant.file.endswith(".sql") and not is_definition(
                    mutant.file.removeprefix("sql/")
                )
                if versioned:
                    assert [p.parent.name for p in changed[1:]] == ["migrations"], mutant.id
                else:  # a definition or a Python module: its file only
                    assert len(changed) == 1, mutant.id
            finally:
                for path, content in originals:
                    path.write_bytes(content)


def test_every_covering_test_exists() -> None:
    for mutant in load_catalogue():
        for test in mutant.tests:
            path = test.split("::", 1)[0]
            assert (ROOT / path).exists(), f"{mutant.id}: {path} does not exist"
            if "::" in test:
                name = test.split("::", 1)[1]
                assert f"def {name}(" in (ROOT / path).read_text(), f"{mutant.id}: {test}"


def test_the_readme_gives_the_catalogues_sizes() -> None:
    mutants = load_catalogue()
    sql_count = sum(1 for mutant in mutants if mutant.file.endswith(".sql"))
    python_count = len(mutants) - sql_count
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"The catalogues hold {sql_count} SQL and {python_count} Python mutants" in readme


def test_a_python_mutant_inside_an_annotation_is_found_by_where_it_is(tmp_path: Path) -> None:
    """cosmic-ray's `X | None` -> `X * None` in an annotation is never evaluated: equivalent.
    The same operator in code is not."""
    module = tmp_path / "example.py"
    module.write_text(
        "from __future__ import annotations\n"
        "def f(a: int | None, *rest: str | bytes) -> dict[str, int] | None:\n"
        "    flags = 1 | 2\n"
        "    value: float | None = None\n"
        "    return None\n"
    )
    spans = _annotation_spans(module)
    line = module.read_text().splitlines()
    assert _inside(spans, 2, line[1].index("| None"))
    assert _inside(spans, 2, line[1].index("| bytes"))
    assert _inside(spans, 2, line[1].rindex("| None"))
    assert _inside(spans, 4, line[3].index("| None"))
    assert not _inside(spans, 3, line[2].index("|"))
    assert not _inside(spans, 2, 0)


def test_a_junit_name_becomes_the_node_id_to_deselect() -> None:
    assert (
        _node_id(ROOT, "tests.db.test_definitions::test_a_removed_file_drops_its_object")
        == "tests/db/test_definitions.py::test_a_removed_file_drops_its_object"
    )
    assert (
        _node_id(ROOT, "tests.pgtap.test_pgtap::test_pgtap_file[schema/schema_objects.sql]")
        == "tests/pgtap/test_pgtap.py::test_pgtap_file[schema/schema_objects.sql]"
    )
    assert _node_id(ROOT, "no.such.module::test_x") == "no.such.module::test_x"


@pytest.mark.parametrize(("n", "offset", "kept"), [(3, 0, [0, 3, 6, 9]), (3, 1, [1, 4, 7])])
def test_a_python_sample_keeps_every_nth_mutation_from_its_offset(
    tmp_path: Path, n: int, offset: int, kept: list[int]
) -> None:
    """The mutations a sample leaves out are marked skipped in cosmic-ray's session; another
    offset draws others of the same size."""
    session = tmp_path / "session.sqlite"
    with sqlite3.connect(session) as db:
        db.execute("CREATE TABLE work_items (job_id TEXT)")
        db.execute(
            "CREATE TABLE work_results "
            "(job_id TEXT, worker_outcome TEXT, output TEXT, test_outcome TEXT, diff TEXT)"
        )
        db.executemany("INSERT INTO work_items VALUES (?)", [(f"{i:02}",) for i in range(10)])
    _keep_every_nth(session, n, offset)
    with sqlite3.connect(session) as db:
        skipped = {row[0] for row in db.execute("SELECT job_id FROM work_results")}
    assert sorted(int(j) for j in {f"{i:02}" for i in range(10)} - skipped) == kept
