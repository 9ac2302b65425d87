"""The generated SQL mutants (mutation/generated.py) are what their operators say, apply to their
files, are sampled reproducibly, and find their covering tests by the rule."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from guard.schema.definitions import is_definition
from mutation import generated
from mutation.generated import _line_mutations
from mutation.mutate import generated_mutants

FUNCTION = "sql/functions/guard.example.sql"


def _mutations(line: str, path: str = FUNCTION) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for operator, mutated in _line_mutations(line, path):
        found.setdefault(operator, []).append(mutated)
    return found


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("    WHERE a.age >= 5", "    WHERE a.age > 5"),
        ("    WHERE a.age > 5", "    WHERE a.age >= 5"),
        ("    WHERE a.age <= 5", "    WHERE a.age < 5"),
        ("    WHERE a.age < 5", "    WHERE a.age <= 5"),
        ("    WHERE a.state = 'open'", "    WHERE a.state <> 'open'"),
        ("    AND a.state <> 'open'", "    AND a.state = 'open'"),
    ],
)
def test_a_boundary_moves_each_comparison_across_its_edge(line: str, expected: str) -> None:
    assert _mutations(line)["boundary"] == [expected]


def test_assignments_arrows_and_json_operators_are_not_comparisons() -> None:
    for line in (
        "    total := total + 1;",
        "    SET state = 'done'",
        "    details ->> 'phone'",
        "    guard.setting(key => 'x')",
        "    x #>> '{}'",
        "            USING ERRCODE = 'undefined_object';",
    ):
        assert "boundary" not in _mutations(line), line


def test_comments_and_string_literals_are_never_mutated() -> None:
    assert _mutations("    -- WHERE a >= 5 AND b") == {}
    assert _mutations("    RAISE 'a >= b AND NOT c';") == {}
    found = _mutations("    WHERE a >= 5 -- AND NOT b")
    assert set(found) == {"boundary"}


def test_and_or_flips_each_way_but_not_a_range_or_create_or_replace() -> None:
    assert _mutations("    WHERE a AND b")["and-or"] == ["    WHERE a OR b"]
    assert _mutations("    WHERE a OR b")["and-or"] == ["    WHERE a AND b"]
    assert "and-or" not in _mutations("    WHERE t BETWEEN 1 AND 5")
    assert "and-or" not in _mutations("CREATE OR REPLACE FUNCTION guard.example()")
    assert _mutations("CREATE OR REPLACE VIEW guard.v WITH (security_invoker = TRUE) AS") == {}


def test_coalesce_not_condition_lines_and_literals() -> None:
    assert _mutations("    AND coalesce(a.status, 'x') = 'y'")["no-coalesce"] == [
        "    AND a.status = 'y'"
    ]
    assert _mutations("    IF NOT found THEN")["no-not"] == ["    IF found THEN"]
    assert _mutations("    AND a IS NOT NULL")["no-not"] == ["    AND a IS NULL"]
    assert "no-not" not in _mutations("    id bigint NOT NULL,")  # a column of RETURNS TABLE
    assert _mutations("    AND a.ok")["drop-condition"] == [""]
    # the statement's end and the IF's THEN stay, or the mutant would not build
    assert _mutations("        AND d.status = 'pending';")["drop-condition"] == ["        ;"]
    assert _mutations("        OR a.ok THEN")["drop-condition"] == ["        THEN"]
    assert "drop-condition" not in _mutations("    AND (a.ok")  # a term over several lines
    assert _mutations("    WHERE s IN ('a', 'b', 'c')")["status-literal"] == [
        "    WHERE s IN ('b', 'c')",
        "    WHERE s IN ('a', 'c')",
        "    WHERE s IN ('a', 'b')",
    ]


def test_a_grant_row_is_dropped_but_not_the_last_of_its_statement() -> None:
    assert _mutations("('owner', 'TABLE', 'public.calls', '{SELECT}', NULL),", generated.GRANTS)
    assert not _mutations("('owner', 'TABLE', 'public.calls', '{SELECT}', NULL);", generated.GRANTS)


def test_every_generated_mutant_applies_to_its_file_once() -> None:
    """What apply_mutant needs of a definition's mutant: its text once in its file (read here
    without copying the tree), and a change."""
    mutants, operators, total = generated_mutants(None, 51)
    assert total == len(mutants) > 1000
    assert set(operators.values()) == set(generated.OPERATORS)
    texts: dict[str, str] = {}
    for mutant in mutants:
        assert is_definition(mutant.file.removeprefix("sql/")), mutant.id
        text = texts.setdefault(mutant.file, (generated.ROOT / mutant.file).read_text())
        assert text.count(mutant.find) == 1, mutant.id
        assert mutant.find != mutant.replace, mutant.id


def test_the_sample_is_the_same_for_a_seed_and_another_for_another() -> None:
    everything = generated.generate()
    first = generated.sample(everything, 40, 51)
    assert first == generated.sample(everything, 40, 51)
    assert first != generated.sample(everything, 40, 52)
    assert len(first) == len({m.id for m in first}) == 40
    assert generated.sample(everything, None, 51) == everything


def test_covering_tests_are_the_files_that_name_the_object() -> None:
    by_id = {m.id: m for m in generated.generate()}
    mutant = next(m for m in by_id.values() if m.file.endswith("guard.check_flags_at_commit.sql"))
    tests = generated.covering_tests(mutant, {})
    assert tests
    assert all("check_flags_at_commit" in (generated.ROOT / t).read_text() for t in tests)
    assert any(t.startswith("pgtests/") for t in tests)


def test_a_function_is_also_covered_by_the_tests_that_executed_it() -> None:
    by_id = {m.id: m for m in generated.generate()}
    function = next(m for m in by_id.values() if m.file.endswith("guard.check_flags_at_commit.sql"))
    view = next(m for m in by_id.values() if m.area == "checks")
    executed = {
        "check_flags_at_commit": frozenset({"tests/x/test_ran_it.py"}),
        Path(view.file).name.removesuffix(".sql").split(".")[-1]: frozenset({"tests/x/t.py"}),
    }
    named = generated.covering_tests(function, {})
    assert "tests/x/test_ran_it.py" not in named
    assert generated.covering_tests(function, {}, executed) == sorted(
        {*named, "tests/x/test_ran_it.py"}
    )
    # only functions run: a view's name in the map (never the case) adds nothing
    assert generated.covering_tests(view, {}, executed) == generated.covering_tests(view, {})


def test_a_grants_row_is_also_covered_by_the_tests_that_name_what_it_grants() -> None:
    rows = [m for m in generated.generate() if m.file == generated.GRANTS]
    queue = next(m for m in rows if "'guard.detection_queue'" in m.find.splitlines()[-1])
    schema = next(m for m in rows if "'SCHEMA', 'guard'" in m.find.splitlines()[-1])
    of_grants = set(generated.covering_tests(schema, {}))
    tests = set(generated.covering_tests(queue, {}))
    # the application's INSERT on the queue is used by its calls trigger, as the application
    assert "tests/jobs/test_detection_queue.py" in tests - of_grants
    assert of_grants < tests
    assert all("detection_queue" in (generated.ROOT / t).read_text() for t in tests - of_grants)
    # a schema's USAGE is used by every test: only the tests of the grants
    assert all("role_grants" in (generated.ROOT / t).read_text() for t in of_grants)


def test_every_explained_generated_survivor_still_exists() -> None:
    ids = {m.id for m in generated.generate()}
    stale = set(generated.equivalents()) - ids
    assert not stale, (
        f"mutation/equivalent_generated.toml names mutants that no longer exist: {stale}"
    )


def test_each_generated_survivor_is_explained_once() -> None:
    """A second entry for the same id would silently replace the first reason."""
    ids = [e["id"] for e in tomllib.loads(generated.EQUIVALENT.read_text())["equivalent"]]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    assert not twice, f"mutation/equivalent_generated.toml explains these more than once: {twice}"


def test_a_sample_s_survivors_run_again_by_id_and_an_unknown_id_is_refused() -> None:
    sample, _, total = generated_mutants(5, 54)
    wanted = [sample[3].id, sample[1].id]
    again, operators, total_again = generated_mutants(None, 54, (), wanted)
    assert sorted(m.id for m in again) == sorted(wanted)
    assert set(operators) == set(wanted)
    assert total_again == total
    with pytest.raises(ValueError, match="no-such-mutant"):
        generated_mutants(None, 54, (), [sample[0].id, "no-such-mutant"])


def test_an_area_or_an_object_narrows_the_population() -> None:
    everything = generated.generate()
    views, _, total = generated_mutants(None, 1, areas=["views"])
    assert total == len(views) == sum(1 for g in everything if g.area == "views") > 0
    assert {m.file.split("/")[1] for m in views} == {"views"}
    kpis, _, _ = generated_mutants(None, 1, areas=["views"], objects=["kpis"])
    assert {m.file for m in kpis} == {"sql/views/guard.kpis.sql"}
    assert 0 < len(kpis) < len(views)
    function, _, _ = generated_mutants(None, 1, objects=["pin_company"])
    assert {m.file for m in function} == {"sql/functions/guard.pin_company.sql"}
    grants, _, _ = generated_mutants(None, 1, objects=["role_grants"])
    assert {m.file for m in grants} == {generated.GRANTS}
    # a sample is drawn from the narrowed population, and nothing is outside both filters
    drawn, _, _ = generated_mutants(3, 7, areas=["checks"])
    assert len(drawn) == 3 and all(m.area == "checks" for m in drawn)
    assert generated_mutants(None, 1, areas=["views"], objects=["run_checks"])[0] == []


def test_the_tools_own_tests_never_cover_a_mutant() -> None:
    """They name objects and ids as text: an explained mutant's id changes with its line, so
    they would fail for any mutant of an object they name."""
    kpis = [m for m in generated.generate() if m.file == "sql/views/guard.kpis.sql"]
    assert kpis and "kpis" in Path(__file__).read_text()
    for mutant in kpis:
        assert not any(
            t.startswith("tests/unit/test_generated") for t in generated.covering_tests(mutant, {})
        )


def test_the_column_an_update_assigns_is_no_comparison() -> None:
    assigned = "        status = CASE WHEN n.error IS NULL THEN 'sent' ELSE 'failed' END,"
    assert "boundary" not in _mutations(assigned)
    assert _mutations("    SET stage = CASE WHEN v.ok = 1 THEN 'a' END")["boundary"] == [
        "    SET stage = CASE WHEN v.ok <> 1 THEN 'a' END"
    ]
    # a qualified column in a condition line is a test
    assert _mutations("        AND a.status = 'open'")["boundary"] == [
        "        AND a.status <> 'open'"
    ]
