"""``partyrules rules``: validate, list and test a rule pack; its history, diff, backtest and approval."""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

import click

from engine.cli import Context, friendly, pass_ctx
from engine.cli.check_cmds import _date, print_findings
from engine.cli.output import format_option, print_json, print_table, severity_cn

if TYPE_CHECKING:
    from engine.pack.model import Effective


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
    from engine.pack.errors import PackError
    from engine.pack.load import load_pack
    from rules import STANDARD_PACK

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
@click.option(
    "--rules",
    "rules_dir",
    type=click.Path(exists=True, file_okay=False),
    help="Pack folder (default: in use).",
)
@format_option()
@pass_ctx
@friendly
def list_(ctx: Context, rules_dir: str | None, fmt: str) -> None:
    """List the rules of the pack in use.

    \b
    Example:
      partyrules rules list --format json
    """
    pack = ctx.pack_app().pack(rules_dir)
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
                    effective={
                        "from": str(r.rule.effective.from_),
                        "to": str(r.rule.effective.to) if r.rule.effective.to else None,
                    },
                    when=r.rule.when,
                    params=r.rule.params,
                )
                for r in pack.rules
            ]
        )
        return
    rows = [
        (r.id, r.rule.title, severity_cn(r.rule.severity), r.rule.period, r.rule.effective.from_)
        for r in pack.rules
    ]
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
    from engine.pack.errors import PackError
    from engine.pack.load import load_pack
    from engine.pack.testing import run_pack_tests, untested
    from rules import STANDARD_PACK

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


@rules.command(name="history")
@format_option()
@pass_ctx
@friendly
def history_(ctx: Context, fmt: str) -> None:
    """List the pack versions that checks have used, with when each was first used.

    \b
    Example:
      partyrules rules history
    """
    from engine.pack.rollout import approvals
    from engine.violations.packs import pack_history

    ctx.app.init()
    items = pack_history(ctx.app.db)
    decided = approvals(ctx.app.db)
    for i in items:
        d = decided.get(i["hash"], {})
        i.update(status=d.get("status"), reason=d.get("reason"), decided_by=d.get("decided_by"))
    seen = {i["hash"] for i in items}
    waiting = [d for h, d in decided.items() if h not in seen]  # held, invalid, or not run yet
    if fmt == "json":
        print_json({"used": items, "not_used": waiting})
        return
    print_table(
        "规则包版本",
        ["版本", "来源", "首次使用", "规则数", "状态"],
        [(i["hash"], i["root"], i["first_used"], i["rules"], _status(i)) for i in items],
    )
    if waiting:
        print_table(
            "尚未用于检查的规则包版本",
            ["版本", "来源", "登记时间", "状态", "原因"],
            [(d["hash"], d["root"], d["at"], _status(d), d["reason"] or "") for d in waiting],
        )


def _status(item: dict[str, Any]) -> str:
    from engine.pack.rollout import STATUS_CN

    status = item.get("status")
    text = STATUS_CN.get(status, "-") if status else "-"
    return f"{text}（{item['decided_by']}）" if item.get("decided_by") else text


@rules.command()
@click.argument("pack_hash", metavar="HASH")
@click.option("--by", "by", required=True, help="Who confirms the change (recorded).")
@pass_ctx
@friendly
def approve(ctx: Context, pack_hash: str, by: str) -> None:
    """Release a pack version held by the blast-radius guard; the next run uses it.

    A new pack whose backtest changes the verdict on more than `[check]
    blast_radius` of the judged subjects is held (and alerted); the last good
    pack keeps running until someone who has read the backtest approves it.
    HASH may be a unique prefix of at least 6 characters.

    \b
    Example:
      partyrules rules history
      partyrules rules approve 3f2a9c01d4e5b6a7 --by 王书记
    """
    from engine.audit.log import record
    from engine.pack.rollout import STATUS_CN
    from engine.pack.rollout import approve as approve_pack

    ctx.app.init()
    row = approve_pack(ctx.app.db, pack_hash, by)
    if row.get("decided_by") == by and row["status"] == "approved":
        record(ctx.app.db, ctx.principal().name, "pack.approve", row["hash"], {"by": by, "held": True})
    if row.get("decided_by") == by and row["status"] == "approved":
        click.echo(f"规则包 {row['hash']}（{row['root']}）已由 {by} 批准，下次运行起启用。")
    else:
        click.echo(f"规则包 {row['hash']} 无需批准：{STATUS_CN.get(row['status'], row['status'])}。")


@rules.command()
@click.argument("old", type=click.Path(exists=True, file_okay=False))
@click.argument("new", required=False, type=click.Path(exists=True, file_okay=False))
@format_option()
@pass_ctx
@friendly
def diff(ctx: Context, old: str, new: str | None, fmt: str) -> None:
    """Show what changed between two packs: rules added, removed, and changed field by field.

    With one folder, compares the pack in use (OLD side) with that folder.

    \b
    Examples:
      partyrules rules diff rules-2017/ rules-2018/
      partyrules rules diff my-draft/
    """
    from engine.pack.diff import diff_packs
    from engine.pack.load import load_pack
    from engine.pack.rollout import pack_in_use

    if new is None:
        ctx.app.init()
        a, b = pack_in_use(ctx.app), load_pack(old)
    else:
        a, b = load_pack(old), load_pack(new)
    result = diff_packs(a, b)
    if fmt == "json":
        print_json(result.to_json())
        return
    if result.empty:
        click.echo("两个规则包的规则内容相同。")
        return
    click.echo(f"规则包 {a.hash}（{a.root}）→ {b.hash}（{b.root}）")
    for r in result.added:
        click.echo(f"新增  {r.id}  {r.rule.title}（{_effective(r.rule.effective)}）")
    for r in result.removed:
        click.echo(f"删除  {r.id}  {r.rule.title}（{_effective(r.rule.effective)}）")
    for d in result.changed:
        click.echo(f"修改  {d.id}  {d.title}")
        for c in d.changes:
            click.echo(f"      {c.describe()}")


def _effective(effective: Effective) -> str:
    to = f"至 {effective.to}" if effective.to else "起"
    return f"{effective.from_} {to}"


@rules.command()
@click.option(
    "--rules",
    "rules_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The candidate pack.",
)
@click.option("--period", required=True, help="YYYY-MM, YYYY-Qn, YYYY, or A..B.")
@click.option("--as-of", "as_of", callback=_date, help="Judge as of this date (default: today).")
@format_option()
@pass_ctx
@friendly
def backtest(ctx: Context, rules_dir: str, period: str, as_of: dt.date | None, fmt: str) -> None:
    """Evaluate a candidate pack over stored history and compare it with the pack in use; store nothing.

    Shows what the change would newly flag, no longer flag, and leave unchanged, by rule and by org.

    \b
    Example:
      partyrules rules backtest --rules my-draft/ --period 2017 --as-of 2018-03-01 --format json
    """
    from engine.backtest import backtest as run_backtest
    from engine.pack.load import load_pack
    from engine.pack.rollout import pack_in_use

    ctx.app.init()
    result = run_backtest(ctx.app, load_pack(rules_dir), period, as_of, baseline=pack_in_use(ctx.app))
    if fmt == "json":
        print_json(result.to_json())
        return
    click.echo(
        f"回测 {period}：新增 {len(result.added)} 项，不再违规 {len(result.removed)} 项，不变 {result.unchanged} 项（{result.seconds:.2f} 秒）"
    )
    if result.added:
        print_findings(result.added, "候选规则将新增的违规")
    if result.removed:
        print_findings(result.removed, "候选规则下不再违规")
    rows = [(k, v.get("added", 0), v.get("removed", 0)) for k, v in result.by_rule().items()]
    if rows:
        print_table("按规则", ["规则", "新增", "不再违规"], rows)
    rows = [(k, v.get("added", 0), v.get("removed", 0)) for k, v in result.by_org().items()]
    if rows:
        print_table("按组织", ["组织", "新增", "不再违规"], rows)


def register(group: click.Group) -> None:
    group.add_command(rules)


@rules.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "md", "json"]),
    default="table",
    show_default=True,
    help="table for the terminal, md for docs/rule-packs.md, json for tools.",
)
@click.option(
    "--update",
    type=click.Path(exists=True, dir_okay=False),
    help="Rewrite the generated part of this Markdown file (between its markers) instead of printing.",
)
def fields(fmt: str, update: str | None) -> None:
    """The field reference: every subject type's fields and options, and the derive sources.

    Generated from the code, so it is what a condition or message may use.

    \b
    Examples:
      partyrules rules fields
      partyrules rules fields --format md --update docs/rule-packs.md
    """
    from pathlib import Path

    from engine.subjects import reference

    if update:
        path = Path(update)
        try:
            text = reference.replace_generated(path.read_text(encoding="utf-8"), reference.markdown())
        except ValueError as exc:
            raise click.ClickException(f"{update}: {exc}") from None
        path.write_text(text, encoding="utf-8")
        click.echo(f"{update}: field reference rewritten")
        return
    if fmt == "md":
        click.echo(reference.markdown(), nl=False)
        return
    data = reference.reference()
    if fmt == "json":
        print_json(data)
        return
    for kind, subject in data["subjects"].items():
        rows = [(f["name"], f["type"], f["meaning"] or "") for f in subject["fields"]]
        print_table(f"subject: {kind}", ["字段", "类型", "含义"], rows)
    for source, spec in data["derive"].items():
        rows = [(f["name"], f["type"], f["meaning"] or "") for f in spec["fields"]]
        print_table(f"derive source: {source}", ["字段", "类型", "含义"], rows)
