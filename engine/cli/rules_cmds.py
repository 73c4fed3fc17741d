"""``partyrules rules``: validate, list and test a rule pack."""

from __future__ import annotations

import sys

import click

from engine.cli import Context, friendly, pass_ctx
from engine.cli.output import format_option, print_json, print_table, severity_cn
from engine.pack.errors import PackError
from engine.pack.load import load_pack
from engine.pack.testing import run_pack_tests, untested
from rules import STANDARD_PACK


@click.group()
def rules() -> None:
    """Check, list and test rule packs (the standard pack, or a folder of your own)."""


@rules.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
def validate(directory: str | None) -> None:
    """Validate a pack: YAML, fields, conditions, templates, effective dates.

    Lists every error with file, line, rule and field, and exits 1 if there is any.

    \b
    Example:
      partyrules rules validate my-pack/
    """
    root = directory or str(STANDARD_PACK)
    try:
        pack = load_pack(root)
    except PackError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{root}: {len(exc.problems)} error(s); the pack cannot be used", err=True)
        sys.exit(1)
    click.echo(f"{root}: {len(pack.rules)} rules valid (pack {pack.hash})")


@rules.command(name="list")
@click.option("--rules", "rules_dir", type=click.Path(exists=True, file_okay=False), help="Pack folder (default: in use).")
@format_option()
@pass_ctx
@friendly
def list_(ctx: Context, rules_dir: str | None, fmt: str) -> None:
    """List the rules of the pack in use.

    \b
    Example:
      partyrules rules list --format json
    """
    pack = ctx.app.pack(rules_dir)
    if fmt == "json":
        print_json(
            [
                dict(
                    id=r.id,
                    version=r.version,
                    title=r.rule.title,
                    severity=r.rule.severity,
                    period=r.rule.period,
                    basis=r.rule.basis,
                    effective={"from": str(r.rule.effective.from_), "to": str(r.rule.effective.to) if r.rule.effective.to else None},
                    when=r.rule.when,
                    params=r.rule.params,
                )
                for r in pack.rules
            ]
        )
        return
    rows = [(r.id, r.rule.title, severity_cn(r.rule.severity), r.rule.period, r.rule.effective.from_) for r in pack.rules]
    print_table(f"规则包 {pack.root}（{pack.hash}）", ["规则", "标题", "级别", "周期", "生效"], rows)


@rules.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--rule", "rule_ids", multiple=True, help="Only this rule id (repeatable).")
@click.option("-v", "--verbose", is_flag=True, help="Show passing cases too.")
@friendly
def test(directory: str | None, rule_ids: tuple[str, ...], verbose: bool) -> None:
    """Run the test cases written in the pack's rule files.

    \b
    Example:
      partyrules rules test
      partyrules rules test my-pack/ --rule dues.amount.full
    """
    root = directory or str(STANDARD_PACK)
    try:
        pack = load_pack(root)
    except PackError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(1)
    passed = failed = 0
    for result in run_pack_tests(pack, list(rule_ids) or None):
        if result.ok:
            passed += 1
            if verbose:
                click.echo(str(result))
        else:
            failed += 1
            click.echo(str(result))
    missing = untested(pack) if not rule_ids else []
    for rule_id in missing:
        click.echo(f"warning: {rule_id} has no test cases", err=True)
    click.echo(f"{passed} passed, {failed} failed")
    if failed:
        sys.exit(1)


def register(group: click.Group) -> None:
    group.add_command(rules)
