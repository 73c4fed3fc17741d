"""``partyrules schedule``: run the schedule in the foreground (as a service would) and list its jobs."""

from __future__ import annotations

import datetime as dt
import logging
import sys
import threading
from typing import Any

import click

from engine.cli import Context, friendly, pass_ctx
from engine.cli.output import format_option, print_json, print_table


def configure_logging() -> None:
    """Log to stderr with timestamps (a service's journal), unless logging is already set up."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # "Running job … executed successfully" every few seconds for the dispatcher is noise; failures still show
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)


def describe(name: str, result: Any) -> str:
    """One line in Chinese on what a job did."""
    from engine.alerts.dispatcher import DispatchReport
    from engine.schedule.jobs import PeriodsReport

    if isinstance(result, PeriodsReport):
        if not result.checked:
            return "没有到期未判定的期间"
        runs = "、".join(f"{p}（运行 #{r}）" for p, r in result.checked.items())
        return f"已判定 {runs}；记录期间 {', '.join(result.marked)}"
    if name == "daily":
        return "规则包中没有按判定日计算的规则" if result is None else f"已完成（检查运行 #{result}）"
    if name == "escalate":
        return f"{len(result)} 项升级或豁免到期"
    if name == "digest":
        if not result:
            return "没有设置 digest = true 的通道"
        return "，".join(f"{ch}：{'已加入发送队列' if i else '今日已发送过'}" for ch, i in result.items())
    if isinstance(result, DispatchReport):
        text = f"送达 {result.delivered}，失败待重试 {result.failed}，推迟 {result.deferred}"
        return text + (f"，隔离 {result.quarantined}（alerts list --status quarantined）" if result.quarantined else "")
    return str(result)


@click.group()
def schedule() -> None:
    """Run period checks, daily checks, escalation, digests and alert delivery on a schedule."""


def parse_moment(value: str, zone: dt.tzinfo) -> dt.datetime:
    """``YYYY-MM-DD`` (that day's start) or an ISO date-time; without an offset it is read in ``zone``."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f'"{value}" is not a date or date-time (expected YYYY-MM-DD or YYYY-MM-DDTHH:MM)',
            param_hint="--now",
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


@schedule.command(name="run")
@click.option("--once", is_flag=True, help="Run every enabled job once now, then exit (for cron or a test).")
@click.option(
    "--now",
    "now_text",
    metavar="MOMENT",
    help="With --once: run as if it were this moment (YYYY-MM-DD or an ISO date-time, in the schedule's "
    "time zone), e.g. to judge the sample organisation's 2017 as the schedule would have.",
)
@click.option(
    "--backfill",
    is_flag=True,
    help="Judge a backlog of more than [schedule] max_backlog closed periods (a first run with an old "
    "`since`, a long outage); sends one summary alert per channel instead of one per violation.",
)
@pass_ctx
@friendly
def run(ctx: Context, once: bool, now_text: str | None, backfill: bool) -> None:
    """Run the schedule in the foreground, logging to stderr, until SIGTERM or Ctrl-C.

    On start it judges every period that closed (plus the grace) while it was
    down, and runs once any stored job whose time passed.  Re-running is
    idempotent: nothing is reported twice.  Jobs and times come from
    [schedule] in partyrules.toml; a bad cron expression is refused here.

    More pending periods than [schedule] max_backlog (default 3) are refused
    until you add --backfill.  One scheduler runs per database: a second one
    says who holds the database and waits, taking over when the first stops
    or dies ([schedule] leader_lease_seconds, default 30).

    \b
    Examples:
      partyrules --config partyrules.toml schedule run
      partyrules schedule run --once
      partyrules schedule run --once --now 2018-01-11T01:30
      partyrules schedule run --backfill
    """
    from engine.schedule.config import schedule_settings
    from engine.schedule.runner import run_once, serve
    from engine.schedule.signals import install_stop_signals

    if now_text is not None and not once:
        raise click.UsageError("--now only goes with --once (a running schedule follows the clock)")
    configure_logging()
    if once:  # a bad --now is refused before the database is opened (it needs only the config's zone)
        zone = schedule_settings(ctx.pack_app().config).zone()
        now = parse_moment(now_text, zone) if now_text is not None else None
        report = run_once(ctx.app, now, backfill=backfill)
        for name, result in report.results.items():
            click.echo(f"{name}: {describe(name, result)}")
        for name, error in report.failures.items():
            click.echo(f"{name}: 失败：{error}", err=True)
        if report.failures:
            raise click.ClickException(
                f"{len(report.failures)} 个任务失败（{', '.join(report.failures)}），下次运行将重试"
            )
        return
    app = ctx.app
    stop = threading.Event()
    restore = install_stop_signals(stop)
    try:
        serve(app, stop, ctx.db_url, backfill=backfill)
    finally:
        restore()


@schedule.command(name="list")
@format_option()
@pass_ctx
@friendly
def list_(ctx: Context, fmt: str) -> None:
    """Show the enabled jobs, their trigger and their next run.

    The next run is the one stored by `schedule run` on this database, or,
    before it has ever run, the one the config gives.

    \b
    Examples:
      partyrules schedule list
      partyrules schedule list --format json
    """
    from engine.schedule.jobs import period_outlook
    from engine.schedule.runner import list_jobs

    app = ctx.app
    app.init()
    jobs = list_jobs(app)
    outlook = period_outlook(app, dt.datetime.now(dt.UTC))
    if fmt == "json":
        print_json(
            {
                "jobs": [
                    {
                        "name": j.name,
                        "title": j.title,
                        "trigger": j.trigger,
                        "next_run": j.next_run.isoformat() if j.next_run else None,
                        "stored": j.stored,
                    }
                    for j in jobs
                ],
                "periods": {
                    "since": outlook.since.isoformat() if outlook.since else None,
                    "pending": [{"period": p, "due": d.isoformat()} for p, d in outlook.pending],
                    "upcoming": [{"period": p, "due": d.isoformat()} for p, d in outlook.upcoming],
                },
            }
        )
        return
    rows = [
        (
            j.name,
            j.title,
            j.trigger,
            j.next_run.isoformat(sep=" ", timespec="minutes") if j.next_run else "不再运行",
            "已启动" if j.stored else "尚未启动（按配置推算）",
        )
        for j in jobs
    ]
    print_table("定时任务", ["任务", "说明", "触发", "下次运行", "状态"], rows)
    if outlook.pending:
        click.echo(
            "待判定期间（下次期间检查时判定）：" + "、".join(f"{p}（{d} 起）" for p, d in outlook.pending)
        )
    elif outlook.since is None:
        click.echo(
            "期间检查尚未运行：首次运行之日起到期的期间将被判定（或在 [schedule] since 中指定起始日）。"
        )
    click.echo("下一批到期：" + "、".join(f"{p} 于 {d}" for p, d in outlook.upcoming))


def register(group: click.Group) -> None:
    group.add_command(schedule)
