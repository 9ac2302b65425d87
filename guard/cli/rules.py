"""`guard rules list|show|stage|mode`: the rules' stage and mode, and their rollout company by
company (guard.ops.rollout; docs/dba.md, "Rollout by company")."""

from __future__ import annotations

import click

from guard.cli.output import echo_text, emit_json, emit_table, json_option, when, wide_option
from guard.cli.params import BIGINT, NON_EMPTY_TEXT, options
from guard.connection import transaction
from guard.ops import rollout

# The options `guard rules stage` and `guard rules mode` share.
_targeting = options(
    click.option(
        "--company", "companies", type=BIGINT, multiple=True, help="A company id (repeatable)."
    ),
    click.option(
        "--percent",
        type=click.IntRange(0, 100),
        default=None,
        help="Every company whose stable rollout bucket (0-99) is below N.",
    ),
    click.option(
        "--all-companies",
        "everyone",
        is_flag=True,
        help="Set the rule's own value, for every company without an override.",
    ),
    click.option(
        "--clear",
        is_flag=True,
        help="Drop the override of these companies (of every company without a target).",
    ),
)


# The most company ids a change names on its line; `guard rules show RULE` lists every one.
_NAMED_COMPANIES = 20


def _companies(ids: list[int], rule: str) -> str:
    """`3 company(ies): 4, 17, 22`: which companies a change reached, not only how many."""
    if not ids:
        return "0 company(ies)"
    named = ", ".join(str(i) for i in ids[:_NAMED_COMPANIES])
    more = len(ids) - _NAMED_COMPANIES
    rest = f" and {more} more (`guard rules show {rule}`)" if more > 0 else ""
    return f"{len(ids)} company(ies): {named}{rest}"


@click.group()
def rules() -> None:
    """The rules' stage and mode, and their rollout company by company."""


@rules.command("list")
@wide_option
@json_option
@click.pass_obj
def list_rules(obj: dict[str, str | None], as_json: bool) -> None:
    """Every rule: its stage and mode, and how many companies override them."""
    with transaction(obj["database_url"]) as conn:
        found = rollout.list_rules(conn)
    if as_json:
        emit_json(found)
        return
    emit_table(
        "Rules",
        rollout.LIST_COLUMNS,
        [
            [
                *(r[c] for c in rollout.LIST_COLUMNS[:3]),
                "yes" if r["enabled"] else "no",
                r["companies_overridden"],
            ]
            for r in found
        ],
    )


@rules.command()
@click.argument("rule", type=NON_EMPTY_TEXT)
@json_option
@click.pass_obj
def show(obj: dict[str, str | None], rule: str, as_json: bool) -> None:
    """One rule: its own stage and mode, and every company that overrides them."""
    with transaction(obj["database_url"]) as conn:
        found = rollout.describe_rule(conn, rule)
    if as_json:
        emit_json(found)
        return
    has_mode = found["mode"] is not None
    mode = f"mode {found['mode']}" if has_mode else "no mode (rolled back by stage)"
    echo_text(
        f"rule {rule}: stage {found['stage']}, {mode},"
        f" {'enabled' if found['enabled'] else 'disabled'}"
    )
    modes = f", mode {found['mode_overridden']}" if has_mode else ""
    echo_text(
        f"companies overridden: {found['companies_overridden']}"
        f" (stage {found['stage_overridden']}{modes})"
    )
    if found["overrides"]:
        emit_table(
            "Company overrides",
            rollout.OVERRIDE_COLUMNS,
            [
                [*(o[c] for c in rollout.OVERRIDE_COLUMNS[:-1]), when(o["set_at"])]
                for o in found["overrides"]
            ],
        )


def _setting_command(setting: rollout.Setting, choices: tuple[str, ...]) -> None:
    """`guard rules stage` and `guard rules mode`: the same change of another setting."""

    @rules.command(
        setting,
        help=f"Set RULE's {setting.upper()} for some companies (or --clear their override).",
    )
    @click.argument("rule", type=NON_EMPTY_TEXT)
    @click.argument(
        setting, type=click.Choice(choices), required=False, metavar=f"[{setting.upper()}]"
    )
    @_targeting
    @click.pass_obj
    def change(
        obj: dict[str, str | None],
        /,
        rule: str,
        companies: tuple[int, ...],
        percent: int | None,
        everyone: bool,
        clear: bool,
        **values: str | None,
    ) -> None:
        value = values[setting]
        chosen = sum((bool(companies), percent is not None, everyone))
        if chosen > 1:
            raise click.UsageError("give one of --company, --percent and --all-companies")
        if chosen == 0 and not clear:
            raise click.UsageError(
                "say which companies: --company ID (repeatable), --percent N or --all-companies"
            )
        if everyone and clear:
            raise click.UsageError(
                "--clear drops company overrides; --all-companies sets the rule's own"
            )
        if clear and value is not None:
            raise click.UsageError(f"--clear takes no {setting.upper()}")
        if not clear and value is None:
            raise click.UsageError(f"missing {setting.upper()} (or --clear)")
        with transaction(obj["database_url"]) as conn:
            ids = rollout.change_override(conn, rule, setting, value, companies, percent)
        if value is None:
            echo_text(f"cleared  {rule}: the {setting} override of {_companies(ids, rule)}")
        elif everyone:
            echo_text(
                f"set  {rule}: {setting} {value} (the rule's own; company overrides still apply)"
            )
        else:
            echo_text(f"set  {rule}: {setting} {value} for {_companies(ids, rule)}")


_setting_command("stage", rollout.STAGES)
_setting_command("mode", rollout.MODES)
