"""Compare two catalog snapshots and name every difference in words a DBA reads."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from guard.schema.catalog import GUARD_PREFIX, GUARD_SCHEMA, RELATION_PARTS, Snapshot

_PARTS = ("constraints", "indexes", "triggers", "policies")
# On an adopted database the application's columns may be varchar or timestamp (Laravel's
# `string` and `timestamps()`); PostgreSQL then stores our views, constraints and policies with
# casts around those columns and their literals. Only these casts are ignored, and only where
# tables were adopted.
_COLUMN_TYPE_CAST = re.compile(
    r"\((\w+(?:\.\w+)?|GREATEST\([^()]*\))\)"
    r"::(?:text|character varying|timestamp with time zone|timestamp without time zone)"
)
_VARCHAR_LITERAL = re.compile(r"'((?:[^']|'')*)'::character varying")
_TEXT_ARRAY_CAST = re.compile(r"\((ARRAY\[[^\[\]]*\])\)::text\[\]")


def _type_neutral(definition: str) -> str:
    """`definition` without the casts the application's column types add (above)."""
    definition = _VARCHAR_LITERAL.sub(r"'\1'::text", definition)
    definition = _TEXT_ARRAY_CAST.sub(r"\1", definition)
    return _COLUMN_TYPE_CAST.sub(r"\1", definition)


# The legacy-row triggers and the CHECK each stands in for (guard.sync_legacy_triggers): on an
# adopted database they exist exactly while that CHECK is NOT VALID, until `guard db validate`.
LEGACY_ROW_TRIGGERS = {
    "public.calls": {
        "guard_calls_normalise_legacy_direction": "guard_calls_direction_check",
        "guard_calls_normalise_legacy_link": "guard_calls_customer_link_check",
    }
}
_SYNC_LEGACY = "run SELECT * FROM guard.sync_legacy_triggers()"

_SINGULAR = {
    "constraints": "constraint",
    "indexes": "index",
    "triggers": "trigger",
    "policies": "policy",
}


@dataclass(frozen=True)
class Difference:
    """One drifted object: what kind of drift, which object, and the details."""

    kind: str  # missing | extra | changed | not_valid | disabled | invalid | edited | pending
    subject: str
    detail: str = ""
    diff: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        head = f"{self.kind:<9} {self.subject}"
        if self.detail:
            head += f": {self.detail}"
        return [head, *("          " + line for line in self.diff)]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(expected: Snapshot, actual: Snapshot, adopted: set[str]) -> list[Difference]:
    """Differences of `actual` against `expected` (on adopted booking tables only the columns
    Booking Guard needs and its `guard_*` objects)."""
    found: list[Difference] = []
    for schema in sorted(set(expected["schemas"]) - set(actual["schemas"])):
        found.append(Difference("missing", f"schema {schema}"))
    found += _compare_relations(expected["relations"], actual["relations"], adopted)
    found += _compare_functions(expected["functions"], actual["functions"])
    found += _compare_types(expected.get("types", {}), actual.get("types", {}))
    found += compare_security(expected, actual)
    for noun in ("sequence", "setting"):
        want, have = dict.fromkeys(expected[noun + "s"]), dict.fromkeys(actual[noun + "s"])
        found += _missing_and_extra(want, have, f"{noun} {{}}".format)
    for noun in ("rule", "check"):
        gone = set(expected.get(noun + "s", [])) - set(actual.get(noun + "s", []))
        found += [Difference("missing", f"{noun} {item}") for item in sorted(gone)]
    found += _missing_and_extra(
        dict.fromkeys(expected.get("role_grants", [])),
        dict.fromkeys(actual.get("role_grants", [])),
        lambda grant, _: f"role grant {shown(grant)}",
        "a row of guard.role_grants (what guard.apply_grants grants) is missing",
    )  # an extra one verify explains (verify._explained)
    found += compare_cron_jobs(actual.get("cron_jobs"))
    return found


def shown(text: str, limit: int = 300) -> str:
    """A value from a table as one line of a report: control characters escaped, cut at `limit`."""
    flat = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return flat if len(flat) <= limit else flat[:limit] + f"... ({len(flat)} characters)"


def compare_security(expected: Snapshot, actual: Snapshot) -> list[Difference]:
    """Roles, owners and grants (role names compared as their kinds)."""
    found: list[Difference] = []
    for kind in sorted(set(expected.get("roles", [])) - set(actual.get("roles", []))):
        found.append(
            Difference(
                "missing",
                f"role {kind}",
                "the role guard.role_names names for this kind does not exist",
            )
        )
    objects: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    if expected.get("schema_security") is not None and actual.get("schema_security") is not None:
        objects.append(("schema guard", expected["schema_security"], actual["schema_security"]))
    for part, noun in (("relations", None), ("functions", "function")):
        want_all, have_all = expected[part], actual[part]
        for name in sorted(set(want_all) & set(have_all)):
            label = f"{noun or _kind(want_all[name])} {name}"
            objects.append((label, want_all[name], have_all[name]))
    for label, want, have in objects:
        if "grants" not in want or "grants" not in have:
            continue  # a snapshot from before the security migration
        if want.get("owner") != have.get("owner"):
            found.append(
                Difference(
                    "changed",
                    label,
                    f"owner is {have.get('owner')!r}, expected {want.get('owner')!r}",
                )
            )
        target = label.split(" ", 1)[1] if not label.startswith("schema") else label
        for grant in sorted(set(want["grants"]) - set(have["grants"])):
            found.append(Difference("missing", _grant_subject(grant, target)))
        for grant in sorted(set(have["grants"]) - set(want["grants"])):
            found.append(Difference("extra", _grant_subject(grant, target)))
    return found


def _grant_subject(grant: str, target: str) -> str:
    """'UPDATE to reviewer' on guard.x -> 'grant UPDATE on guard.x to reviewer'."""
    privilege, _, grantee = grant.partition(" to ")
    return f"grant {privilege} on {target} to {grantee}"


def compare_cron_jobs(cron_jobs: dict[str, Any] | None) -> list[Difference]:
    """pg_cron's schedule against guard.jobs (see catalog.cron_jobs); nothing without pg_cron."""
    if not cron_jobs:
        return []
    want, have = cron_jobs["expected"], cron_jobs["scheduled"]
    fix = "run SELECT guard.schedule_jobs()"
    found = _missing_and_extra(
        want,
        have,
        lambda name, _: f"cron job {name}",
        f"not scheduled in pg_cron; {fix}",
        f"not an enabled job; {fix}",
    )
    for name in sorted(set(want) & set(have)):
        attributes = ("schedule", "command", "active")
        found += _changed(f"cron job {name}", want[name], have[name], attributes, f"; {fix}")
    return found


def _compare_relations(
    expected: dict[str, Any], actual: dict[str, Any], adopted: set[str]
) -> list[Difference]:
    found = _missing_and_extra(expected, actual, lambda name, item: f"{_kind(item)} {name}")
    for name in sorted(set(expected) & set(actual)):
        want, have = expected[name], actual[name]
        is_adopted = name in adopted
        subject = f"{_kind(want)} {name}"
        # where tables were adopted a view's text may carry the casts of their column types
        view_defs = [want["view_def"], have["view_def"]]
        if adopted and None not in view_defs:
            view_defs = [_type_neutral(text) for text in view_defs]
        if view_defs[0] != view_defs[1]:
            found.append(_text_changed(subject, "definition", want["view_def"], have["view_def"]))
        found += _changed(
            subject, want, have, ("kind", "rls", "force_rls") + (() if is_adopted else ("options",))
        )
        # A view's columns follow from its definition and the tables' types (which may be the
        # application's own on an adopted database): comparing the definition is enough.
        if want["kind"] not in ("v", "m"):
            found += _compare_columns(name, want["columns"], have["columns"], is_adopted)
        for part in _PARTS:
            ours, theirs = want[part], have[part]
            if is_adopted:
                ours = {k: v for k, v in ours.items() if k.startswith(GUARD_PREFIX)}
                theirs = {k: v for k, v in theirs.items() if k.startswith(GUARD_PREFIX)}
            elif name.split(".", 1)[0] != GUARD_SCHEMA:
                # a booking table Booking Guard created: the application's own index, constraint
                # or trigger on it is the application's business, as on an adopted one
                theirs = {
                    k: v for k, v in theirs.items() if k in ours or k.startswith(GUARD_PREFIX)
                }
            found += _compare_parts(name, part, ours, theirs, is_adopted)
        found = _expect_legacy_triggers(name, have, found)
    return found


def _expect_legacy_triggers(
    table: str, have: dict[str, Any], found: list[Difference]
) -> list[Difference]:
    """A legacy-row trigger belongs while its CHECK is NOT VALID, and is left over after."""
    legacy = LEGACY_ROW_TRIGGERS.get(table, {})
    if not legacy:
        return found
    kept: list[Difference] = []
    for difference in found:
        trigger = difference.subject.removeprefix("trigger ").removesuffix(f" on {table}")
        check = legacy.get(trigger) if difference.subject.startswith("trigger ") else None
        if check is None or difference.kind != "extra":
            kept.append(difference)
        elif have["constraints"].get(check, {}).get("validated", True):
            kept.append(
                Difference(
                    "extra",
                    difference.subject,
                    f"a legacy-row trigger left over: {check} is valid; {_SYNC_LEGACY}",
                )
            )
    for trigger, check in sorted(legacy.items()):
        constraint = have["constraints"].get(check)
        if (
            constraint is not None
            and not constraint["validated"]
            and trigger not in have["triggers"]
        ):
            kept.append(
                Difference(
                    "missing",
                    f"trigger {trigger} on {table}",
                    f"{check} is NOT VALID, so an update of an old row that breaks it fails;"
                    f" {_SYNC_LEGACY}",
                )
            )
    return kept


def _compare_columns(
    table: str, want: dict[str, Any], have: dict[str, Any], is_adopted: bool
) -> list[Difference]:
    found: list[Difference] = []
    for column in sorted(set(want) - set(have)):
        found.append(Difference("missing", f"column {table}.{column}"))
    if is_adopted:  # the application's types and extra columns are its own
        return found
    if table.split(".", 1)[0] == GUARD_SCHEMA:  # on a booking table an extra column is the app's
        for column in sorted(set(have) - set(want)):
            found.append(Difference("extra", f"column {table}.{column}"))
    for column in sorted(set(want) & set(have)):
        subject = f"column {table}.{column}"
        found += _changed(subject, want[column], have[column], tuple(want[column]))
    return found


def _compare_parts(
    table: str, part: str, want: dict[str, Any], have: dict[str, Any], is_adopted: bool
) -> list[Difference]:
    """The constraints, indexes, triggers or policies of a table (or a domain's constraints)."""
    noun = _SINGULAR[part]
    found = _missing_and_extra(want, have, lambda name, _: f"{noun} {name} on {table}")
    for name in sorted(set(want) & set(have)):
        subject = f"{noun} {name} on {table}"
        w, h = want[name], have[name]
        if part == "constraints" and w["validated"] and not h["validated"]:
            found.append(Difference("not_valid", subject, "constraint is NOT VALID"))
        if part == "triggers" and w["enabled"] != h["enabled"]:
            state = "disabled" if h["enabled"] == "D" else f"enabled mode {h['enabled']!r}"
            found.append(Difference("disabled", subject, f"trigger is {state}"))
        if part == "indexes" and w["valid"] and not h["valid"]:
            found.append(Difference("invalid", subject, "index is INVALID (an interrupted build)"))
        for attribute in RELATION_PARTS[part][1]:  # but the states, compared above
            if attribute in ("validated", "enabled", "valid") or attribute not in w:
                continue
            wanted, had = w[attribute], h.get(attribute)
            if is_adopted and isinstance(wanted, str) and isinstance(had, str):
                wanted, had = _type_neutral(wanted), _type_neutral(had)
            if wanted != had:
                found.append(
                    _text_changed(subject, attribute, str(w[attribute]), str(h.get(attribute)))
                )
    return found


def _compare_functions(want: dict[str, Any], have: dict[str, Any]) -> list[Difference]:
    found = _missing_and_extra(want, have, lambda name, _: f"function {name}")
    for name in sorted(set(want) & set(have)):
        wanted, had = want[name]["definition"], have[name]["definition"]
        if wanted != had:
            found.append(_text_changed(f"function {name}", "definition", wanted, had))
    return found


def _changed(
    subject: str,
    want: dict[str, Any],
    have: dict[str, Any],
    attributes: tuple[str, ...],
    fix: str = "",
) -> list[Difference]:
    """A "changed" difference for each of `attributes` that differs, `fix` after its values."""
    return [
        Difference("changed", subject, f"{a} is {have[a]!r}, expected {want[a]!r}{fix}")
        for a in attributes
        if want[a] != have[a]
    ]


def _compare_types(expected: dict[str, Any], actual: dict[str, Any]) -> list[Difference]:
    """Domains and composite types, a domain's CHECK constraints one by one."""
    found = _missing_and_extra(expected, actual, lambda name, item: f"{item['kind']} {name}")
    for name in sorted(set(expected) & set(actual)):
        want, have = expected[name], actual[name]
        subject = f"{want['kind']} {name}"
        found += _changed(
            subject, want, have, ("kind", "base", "not_null", "default", "attributes")
        )
        found += _compare_parts(
            subject, "constraints", want["constraints"], have["constraints"], False
        )
    return found


def _missing_and_extra(
    expected: dict[str, Any],
    actual: dict[str, Any],
    subject: Callable[[str, Any], str],
    missing: str = "",
    extra: str = "",
) -> list[Difference]:
    """ "missing" for each name only expected, "extra" for each only present, with their details."""
    return [
        Difference("missing", subject(name, expected[name]), missing)
        for name in sorted(set(expected) - set(actual))
    ] + [
        Difference("extra", subject(name, actual[name]), extra)
        for name in sorted(set(actual) - set(expected))
    ]


def _kind(relation: dict[str, Any]) -> str:
    return {"v": "view", "m": "materialized view"}.get(relation["kind"], "table")


def _text_changed(
    subject: str, what: str, expected: str | None, actual: str | None, limit: int = 40
) -> Difference:
    """`what` of `subject` differs: a "changed" difference with a unified diff of the texts."""
    lines = list(
        difflib.unified_diff(
            (expected or "").splitlines(),
            (actual or "").splitlines(),
            "canonical",
            "database",
            lineterm="",
            n=1,
        )
    )
    if len(lines) > limit:
        lines = [*lines[:limit], f"... {len(lines) - limit} more lines"]
    return Difference("changed", subject, f"{what} differs", lines)
