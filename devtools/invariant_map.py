"""docs/invariant-map.md: everything about one invariant, found in one place, never written by hand.

The contract it rests on: the first line of a canonical SQL file that serves an invariant starts
with its tag, `-- I3:` or `-- I1, I2, ...` (the invariants are the `invariant` column of
guard.rules); tests/db/test_invariant_map.py holds the files to it. The map is generated from the
tags, guard.rules and guard.checks in a migrated database, the migrations (which of them create,
replace, alter or drop each object: comments do not count) and the tests that name an object, a
rule or a check."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.database import Databases
from guard.connection import open_connection
from guard.resources import canonical_files, migrations_dir, sql_dir

ROOT = Path(__file__).resolve().parents[1]
PATH = "docs/invariant-map.md"
# It names nearly every object as test data: it would be listed under every invariant.
THE_MAPS_OWN_TESTS = "tests/db/test_invariant_map.py"
TAG = re.compile(r"^-- (I\d+(?:, I\d+)*)[:,]")
COMMENT = re.compile(r"--[^\n]*")

# One rule per invariant (tests/db/test_rule_ids.py holds that), with its checks.
RULES = """
SELECT r.id, r.invariant, r.description, r.remedy, r.mode, r.stage,
       coalesce(r.constraint_names, '{}')
FROM guard.rules AS r
WHERE r.invariant IS NOT NULL
ORDER BY r.invariant
"""
CHECKS = """
SELECT k.id, r.invariant, k.description, k.remedy, k.check_view
FROM guard.checks AS k
INNER JOIN guard.rules AS r ON k.rule_id = r.id
WHERE r.invariant IS NOT NULL
ORDER BY r.invariant, k.check_view IS NULL, k.id
"""


@dataclass(frozen=True)
class SqlObject:
    kind: str  # function, trigger, constraint, view, table, policy, data
    name: str  # the name the migrations use (schema-qualified where they qualify it)
    file: str  # under sql/
    tags: tuple[str, ...]

    @property
    def bare(self) -> str:
        return self.name.rsplit(".", 1)[-1]


# an object tagged with more invariants than this does not pick tests by its name (see render)
SPECIFIC_TAGS = 3

# folder under sql/ -> (kind, whether the migrations name the object schema-qualified)
KINDS = {
    "functions": ("function", True),
    "triggers": ("trigger", False),
    "constraints": ("constraint", False),
    "checks": ("detection view", True),
    "views": ("view", True),
    "tables": ("table", True),
    "policies": ("policy", False),
    "types": ("type", True),
}


def _object_of(relative: str, first_line: str) -> SqlObject:
    folder, filename = relative.split("/", 1)
    stem = filename.removesuffix(".sql")
    match = TAG.match(first_line)
    tags = tuple(match.group(1).split(", ")) if match else ()
    kind, qualified = KINDS.get(folder, (folder.rstrip("s"), True))
    return SqlObject(kind, stem if qualified else stem.rsplit(".", 1)[-1], relative, tags)


def sql_objects() -> list[SqlObject]:
    root = sql_dir()
    out = []
    for path in canonical_files():
        first = path.read_text().split("\n", 1)[0]
        out.append(_object_of(str(path.relative_to(root)), first))
    return out


def _ddl_patterns(obj: SqlObject) -> list[tuple[str, re.Pattern[str]]]:
    name = re.escape(obj.name)
    bare = re.escape(obj.bare)
    replace = r"(?:OR\s+REPLACE\s+)?"
    exists = r"(?:IF\s+EXISTS\s+)?"
    view = [
        ("defines", rf"\bCREATE\s+{replace}VIEW\s+{name}\b"),
        ("drops", rf"\bDROP\s+VIEW\s+{exists}{name}\b"),
    ]
    by_kind = {
        "function": [
            ("defines", rf"\bCREATE\s+{replace}FUNCTION\s+{name}\s*\("),
            ("alters", rf"\bALTER\s+FUNCTION\s+{name}\b"),
            ("drops", rf"\bDROP\s+FUNCTION\s+{exists}{name}\b"),
        ],
        "trigger": [
            ("defines", rf"\bCREATE\s+{replace}(?:CONSTRAINT\s+)?TRIGGER\s+{bare}\b"),
            ("drops", rf"\bDROP\s+TRIGGER\s+{exists}{bare}\b"),
        ],
        "constraint": [
            ("defines", rf"\bADD\s+CONSTRAINT\s+{bare}\b"),
            ("validates", rf"\bVALIDATE\s+CONSTRAINT\s+{bare}\b"),
            ("drops", rf"\bDROP\s+CONSTRAINT\s+{exists}{bare}\b"),
        ],
        "view": view,
        "detection view": view,
        "table": [
            ("defines", rf"\bCREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{name}\b"),
            ("alters", rf"\bALTER\s+TABLE\s+{exists}(?:ONLY\s+)?{name}\b"),
        ],
        "type": [
            ("defines", rf"\bCREATE\s+(?:DOMAIN|TYPE)\s+{name}\b"),
            ("alters", rf"\bALTER\s+(?:DOMAIN|TYPE)\s+{name}\b"),
            ("drops", rf"\bDROP\s+(?:DOMAIN|TYPE)\s+{exists}{name}\b"),
        ],
    }
    return [(verb, re.compile(text, re.IGNORECASE)) for verb, text in by_kind.get(obj.kind, [])]


def migration_history(obj: SqlObject, migrations: list[tuple[str, str]]) -> list[str]:
    """`0006 created, 0012 replaced, 0013 altered` for one object (comments stripped)."""
    history = []
    defined = False
    past = {"alters": "altered", "validates": "validated", "drops": "dropped"}
    patterns = _ddl_patterns(obj)
    # Every pattern names the object: a migration that does not cannot match, and skipping it
    # saves most of the case-insensitive searches, the bulk of the map's time.
    named = obj.bare.casefold()
    for name, text in migrations:
        if not patterns or named not in text.casefold():
            continue
        found = sorted(
            (match.start(), verb)
            for verb, pattern in patterns
            for match in [pattern.search(text)]
            if match
        )
        verbs: list[str] = []
        for _, verb in found:
            if verb == "defines":
                word = "replaced" if defined else "created"
                defined = True
            else:
                word = past[verb]
                defined = defined and verb != "drops"
            if word not in verbs:
                verbs.append(word)
        if verbs:
            history.append(f"{name.split('_', 1)[0]} {'+'.join(verbs)}")
    return history


def forward_migrations() -> list[tuple[str, str]]:
    return [
        (path.stem, COMMENT.sub("", path.read_text()))
        for path in sorted(migrations_dir().glob("*.sql"))
        if not path.name.endswith(".rollback.sql")
    ]


WORD = re.compile(r"\w+")


def files_naming(
    words: set[str], paths: list[Path], words_of: dict[Path, set[str]] | None = None
) -> list[tuple[str, list[str]]]:
    """(file, the words it names) for each file that names any of them. `words_of` keeps each
    file's words for the next call."""
    if not words:
        return []
    words_of = {} if words_of is None else words_of
    if all(WORD.fullmatch(w) for w in words):
        # a word a file names as a whole (\b on both sides) is one of its runs of \w
        for path in paths:
            if path not in words_of:
                words_of[path] = set(WORD.findall(path.read_text()))
        found = [(p, sorted(words & words_of[p])) for p in paths]
    else:
        pattern = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in sorted(words)) + r")\b")
        found = [(p, sorted(set(pattern.findall(p.read_text())))) for p in paths]
    return [(str(p.relative_to(ROOT)), named) for p, named in found if named]


def render(
    rules: list[tuple[Any, ...]], checks: list[tuple[Any, ...]], objects: list[SqlObject]
) -> str:
    migrations = forward_migrations()
    pgtap_files = sorted((ROOT / "pgtests").rglob("*.sql"))
    pytest_files = sorted(
        p
        for p in (ROOT / "tests").rglob("test_*.py")
        if p.relative_to(ROOT).as_posix() != THE_MAPS_OWN_TESTS
    )
    words_of: dict[Path, set[str]] = {}
    rule_of = {row[1]: row for row in rules}
    checks_of: dict[str, list[tuple[Any, ...]]] = {}
    for row in checks:
        checks_of.setdefault(row[1], []).append(row)
    lines = [
        "# Invariant map",
        "",
        "<!-- generated by devtools/invariant_map.py: `make generated` rewrites it -->",
        "",
        "Everything about one invariant: its rule, its checks, the SQL objects that keep it (the",
        "canonical file under `sql/`, and the migrations that created, replaced, altered,",
        "validated or dropped it), the tests that name them, and how an operator sees and acts",
        "on it. The invariants and",
        "their mechanisms are explained in docs/invariants.md. A file belongs to an invariant when",
        "its first line carries the tag (`-- I3:`, `-- I1, I2, ...`); a test holds the files the",
        "catalog ties to an invariant to it. Migration numbers are the prefixes of the files in",
        "`migrations/`. An invariant has one rule, a row of `guard.rules`",
        "(`sql/data/guard.rules.sql`): its id is the one alerts, corrections, metrics and reports",
        "carry. A check is one way a breach of the rule is found, a row of `guard.checks`",
        "(`sql/data/guard.checks.*.sql`): a detection view, or code that raises the alert itself;",
        "an alert names its check (the Alertmanager `alertname`) and its rule. Tests are found by",
        "the names of the invariant's rule, checks and objects; an object tagged with more than",
        "three invariants (`guard.reconcile`) is listed but its name does not pick tests.",
        "",
        "| invariant | rule | checks | SQL objects | pgTAP files | pytest files |",
        "|---|---|---|---|---|---|",
    ]
    sections: list[str] = []
    for invariant in sorted(rule_of, key=lambda i: int(i[1:])):
        rule_id, _, description, remedy, mode, stage, constraints = rule_of[invariant]
        found_by = checks_of.get(invariant, [])
        members = [o for o in objects if invariant in o.tags]
        # an object that serves most invariants (guard.reconcile) is named by nearly every
        # test; its name would list them all under each invariant
        words = (
            {rule_id}
            | {c[0] for c in found_by}
            | {o.bare for o in members if o.kind != "data" and len(o.tags) <= SPECIFIC_TAGS}
        )
        pgtap = files_naming(words, pgtap_files, words_of)
        pytests = files_naming(words, pytest_files, words_of)
        lines.append(
            f"| [{invariant}](#{invariant.lower()}) | `{rule_id}` | {len(found_by)}"
            f" | {len(members)} | {len(pgtap)} | {len(pytests)} |"
        )
        names = ", ".join(f"`{c}`" for c in constraints) or "-"
        sections += ["", f"## {invariant}", ""]
        sections += [
            f"Rule `{rule_id}`: {description} Mode {mode}, stage {stage}; remedy {remedy};"
            f" constraints {names}.",
            "",
            "| check | what it finds | remedy | detection view |",
            "|---|---|---|---|",
        ]
        for check_id, _, check_description, check_remedy, check_view in found_by:
            view = f"`guard.{check_view}`" if check_view else "- (raised by the code)"
            sections.append(f"| `{check_id}` | {check_description} | {check_remedy} | {view} |")
        sections += ["", "| SQL object | kind | file | migrations |", "|---|---|---|---|"]
        for obj in sorted(members, key=lambda o: (o.kind, o.name)):
            history = ", ".join(migration_history(obj, migrations)) or "-"
            sections.append(f"| `{obj.name}` | {obj.kind} | `sql/{obj.file}` | {history} |")
        sections += [""]
        tests = [f"`{p}`" for p, _ in pgtap + pytests]
        sections.append("Tests: " + (", ".join(tests) or "none") + ".")
        sections += [""]
        operate = []
        detection = [c[0] for c in found_by if c[4]]
        if detection:
            operate.append(
                "`guard check` runs "
                + ", ".join(f"`{c}`" for c in detection)
                + " (alerts, `guard watch` delivers them)"
            )
        raised = [c[0] for c in found_by if not c[4]]
        if raised:
            operate.append(
                "the code raises "
                + ", ".join(f"`{c}`" for c in raised)
                + " when it happens (alerts, `guard watch` delivers them)"
            )
        if remedy in ("auto_fix", "review") or any(
            c[3] in ("auto_fix", "review") for c in found_by
        ):
            operate.append(
                "`guard reconcile` corrects what is safe and queues the rest (`guard review`)"
            )
        if constraints:
            operate.append("`guard db validate` validates its constraints on an adopted database")
        sections.append("Operate: " + "; ".join(operate) + "." if operate else "Operate: -.")
        sections += [""]
        metrics = []
        if found_by:
            metrics.append(
                f'`guard_alerts_open{{rule_id="{rule_id}"}}` (label `check_id` per check)'
            )
        # the rule id a function of the invariant writes into the correction audit
        writers = [
            text
            for o in members
            if o.kind == "function"
            and "INSERT INTO guard.correction_audit" in (text := (sql_dir() / o.file).read_text())
        ]
        if any(f"'{rule_id}'" in text for text in writers):
            metrics.append(f'`guard_corrections_total{{rule_id="{rule_id}"}}`')
        sections.append("Metrics: " + (", ".join(metrics) or "-") + ".")
    return "\n".join(lines + sections) + "\n"


def generate(migrated_url: str) -> str:
    with open_connection(migrated_url) as conn:
        rules = conn.execute(RULES).fetchall()
        checks = conn.execute(CHECKS).fetchall()
    return render(rules, checks, sql_objects())


def build(databases: Databases, current: dict[str, str]) -> dict[str, str]:
    del current  # written whole
    return {PATH: generate(databases.migrated())}
