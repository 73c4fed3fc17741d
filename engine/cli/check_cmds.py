"""``partyrules check``: judge a period and store (or with --dry-run, only show) the violations."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import TYPE_CHECKING

import click

from engine.cli import Context, friendly, pass_ctx
from engine.cli.output import format_option, print_json, print_table, severity_cn
from engine.periods import GRANULARITIES, parse_period

if TYPE_CHECKING:
    from engine.finding import Finding


def _date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)  # its range is the library's (run_check): exit status 1
    except ValueError:
        raise click.BadParameter(f'"{value}" is not a date (expected YYYY-MM-DD)') from None


def finding_order(f: Finding) -> tuple[object, ...]:
    """Months, then quarters, then years, in time order; then by rule and subject."""
    p = parse_period(f.period)
    return (GRANULARITIES.index(p.granularity), p.start, f.rule, f.subject_id)


def print_findings(findings: list[Finding], title: str) -> None:
    rows = [
        (severity_cn(f.severity), f.rule, f.period, f.org_name or "", f.message)
        for f in sorted(findings, key=finding_order)
    ]
    print_table(title, ["级别", "规则", "期间", "组织", "问题"], rows)


@click.command()
@click.option("--period", required=True, help="YYYY-MM, YYYY-Qn, YYYY, or a range A..B.")
@click.option(
    "--as-of", "as_of", callback=_date, help="Judge as of this date (default: today, Asia/Shanghai)."
)
@click.option(
    "--rules",
    "rules_dir",
    type=click.Path(exists=True, file_okay=False),
    help="Rule pack folder (default: the standard pack).",
)
@click.option("--dry-run", is_flag=True, help="Show the findings; store nothing.")
@click.option(
    "--cluster",
    metavar="ADDRESS",
    help="Judge the partitions on this Dask scheduler (tcp://HOST:8786; default: [cluster] address).",
)
@format_option()
@pass_ctx
@friendly
def check(
    ctx: Context,
    period: str,
    as_of: dt.date | None,
    rules_dir: str | None,
    dry_run: bool,
    cluster: str | None,
    fmt: str,
) -> None:
    """Judge every closed period in PERIOD against the rule pack and store the violations.

    A period is judged once it has closed plus the grace for late records
    (10 days by default) by the as-of date.  `--period 2017` judges the year
    and every quarter and month in it.  Re-running never double-reports; a
    stored violation that is no longer found is resolved automatically.

    \b
    Examples:
      partyrules check --period 2017 --as-of 2018-03-01
      partyrules check --period 2017-06 --dry-run --format json
      partyrules check --period 2017-01..2017-06 --rules my-pack/
      partyrules check --period 2017 --cluster tcp://10.0.0.5:8786
    """
    from engine.check import run_check
    from engine.periods import check_as_of, parse_range

    parse_range(period)  # a bad period or as-of date is said before the database is opened
    if as_of is not None:
        check_as_of(as_of)
    app = ctx.app
    app.init()
    result = run_check(app, period, as_of, rules_dir, dry_run, cluster=cluster)
    findings = result.evaluation.findings
    if result.choice is not None and result.choice.status == "uploaded":
        click.echo(f"注意：{result.choice.reason}。", err=True)
    elif result.choice is not None and result.choice.fallback:
        click.echo(
            f"注意：配置的规则包（{result.choice.configured}）状态为 {result.choice.status}"
            f"（{result.choice.reason or ''}），本次使用上一个有效版本 {result.pack.hash}。",
            err=True,
        )
    if fmt == "json":
        print_json([f.to_json() for f in findings])
        return
    ev = result.evaluation
    head = f"合规检查 {period}（判定日 {ev.as_of}，规则包 {result.pack.hash}）"
    print_findings(findings, head + ("〔试运行，未保存〕" if dry_run else ""))
    by_sev = Counter(severity_cn(f.severity) for f in findings)
    summary = "，".join(f"{k}{v}项" for k, v in by_sev.items()) or "无"
    click.echo(f"共判定 {sum(ev.subjects.values())} 个对象，发现 {len(findings)} 项问题（{summary}）。")
    if not ev.scope:
        click.echo("注意：所查期间尚未结束（含宽限期），本次未判定任何期间。")
    if result.stored is not None:
        s = result.stored
        click.echo(
            f"已保存：新增 {len(s.new)}，复发 {len(s.recurred)}，更新 {s.updated - len(s.recurred)}，"
            f"自动解决 {len(s.resolved)}（检查运行 #{result.run_id}）。"
        )
    retried = getattr(ev, "retried", None)
    if retried:
        click.echo(f"集群：分区 {', '.join(map(str, retried))} 因工作进程失联或出错而重新执行（结果只计一次）。")


def register(group: click.Group) -> None:
    group.add_command(check)
