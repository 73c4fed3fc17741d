"""``partyrules runs``: the recorded check runs, after marking those whose process died as abandoned."""

from __future__ import annotations

import click

from engine.cli import Context, friendly, pass_ctx
from engine.cli.output import format_option, print_json, print_table

STATUS_CN = {"running": "运行中", "ok": "完成", "failed": "失败", "abandoned": "已放弃（进程已终止）", "stopped": "已中断"}


@click.command()
@click.option(
    "--status",
    type=click.Choice(sorted(STATUS_CN)),
    help="Only runs with this status.",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=20,
    show_default=True,
    help="How many recent runs to list.",
)
@format_option()
@pass_ctx
@friendly
def runs(ctx: Context, status: str | None, limit: int, fmt: str) -> None:
    """List the latest check runs (newest first), with the process that ran each.

    A run still marked running whose process is gone (killed with -9, a
    crash, a power cut) is marked abandoned first, and alerted once.

    \b
    Examples:
      partyrules runs
      partyrules runs --status abandoned --format json
    """
    from engine.violations.runs import list_runs, reap_abandoned

    app = ctx.app
    app.init()
    reaped = reap_abandoned(app.db, app.config.alerts)
    for run in reaped:
        click.echo(f"检查运行 #{run.run_id}（{run.period}）已标记为放弃：{run.reason}", err=True)
    rows = list_runs(app.db, status, limit)
    if fmt == "json":
        print_json(
            [
                {
                    "id": r.id,
                    "started_at": r.started_at.isoformat(),
                    "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                    "period": r.period,
                    "as_of": r.as_of.isoformat(),
                    "trigger": r.trigger,
                    "status": r.status,
                    "findings": r.findings,
                    "new": r.new,
                    "resolved": r.resolved,
                    "owner": r.owner,
                    "error": r.error,
                }
                for r in rows
            ]
        )
        return
    print_table(
        "检查运行记录",
        ["编号", "开始", "期间", "判定日", "触发", "状态", "发现", "新增", "进程", "错误"],
        [
            (
                r.id,
                r.started_at.isoformat(sep=" ", timespec="seconds"),
                r.period,
                r.as_of,
                r.trigger,
                STATUS_CN.get(r.status, r.status),
                r.findings,
                r.new,
                r.owner or "",
                (r.error or "")[:120],
            )
            for r in rows
        ],
    )


def register(group: click.Group) -> None:
    group.add_command(runs)
