"""``partyrules alerts``: deliver the alert outbox, and enqueue a day's digest, by hand."""

from __future__ import annotations

import datetime as dt
import threading

import click

from engine.cli import Context, friendly, pass_ctx
from engine.cli.output import format_option, print_json, print_table
from engine.cli.schedule_cmds import configure_logging, describe


def _day(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f'"{value}" is not a date (expected YYYY-MM-DD)') from None


@click.group()
def alerts() -> None:
    """Deliver alerts to their channels and enqueue daily digests."""


@alerts.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@pass_ctx
@friendly
def dispatch(ctx: Context, once: bool) -> None:
    """Deliver due alerts to their channels (console, file, SMTP, webhook), retrying failures.

    Without --once it keeps polling until SIGTERM or Ctrl-C; `schedule run`
    does this too, so run this only when the schedule is not running.

    \b
    Examples:
      partyrules alerts dispatch --once
      partyrules --config partyrules.toml alerts dispatch
    """
    from engine.alerts.dispatcher import Dispatcher
    from engine.schedule.jobs import dispatch_job
    from engine.schedule.signals import install_stop_signals

    configure_logging()
    app = ctx.app
    app.init()
    if once:
        report = dispatch_job(app, max_batches=100)
        click.echo(f"告警投递：{describe('dispatch', report)}")
        for error in report.errors:
            click.echo(f"  {error}", err=True)
        return
    stop = threading.Event()
    restore = install_stop_signals(stop)
    try:
        Dispatcher(app.db, app.config.alerts).run_forever(stop)
    finally:
        restore()


@alerts.command()
@click.option(
    "--day",
    callback=_day,
    help="The digest of this day, YYYY-MM-DD (default: today); it covers the day before.",
)
@pass_ctx
@friendly
def digest(ctx: Context, day: dt.date | None) -> None:
    """Enqueue the daily digest for every channel with `digest = true`.

    The digest of a day summarises the new and escalated alerts of the day
    before; a day without any says 今日无新增违规.  Repeating it adds nothing.

    \b
    Examples:
      partyrules alerts digest
      partyrules alerts digest --day 2018-03-02
    """
    from engine.schedule.jobs import digest_job

    app = ctx.app
    app.init()
    chosen = day or dt.datetime.now(app.config.alerts.zone()).date()
    result = digest_job(app, chosen)
    click.echo(f"{chosen} 每日汇总：{describe('digest', result)}")


def register(group: click.Group) -> None:
    group.add_command(alerts)


STATUS_CN = {"pending": "待投递", "failed": "失败待重试", "quarantined": "已隔离", "delivered": "已送达"}


@alerts.command(name="list")
@click.option(
    "--status",
    type=click.Choice(["pending", "failed", "quarantined", "delivered"]),
    help="pending (includes failed), failed (waiting for a retry), quarantined, delivered.",
)
@click.option("--channel", help="Only this channel.")
@click.option(
    "--limit", type=click.IntRange(1, 100_000), default=100, show_default=True, help="At most this many, newest first."
)
@format_option()
@pass_ctx
@friendly
def list_(ctx: Context, status: str | None, channel: str | None, limit: int, fmt: str) -> None:
    """List alert deliveries, newest first, with their attempts and last error.

    \b
    Examples:
      partyrules alerts list --status quarantined
      partyrules alerts list --status failed --channel jiwei_group --format json
    """
    from engine.alerts.admin import list_deliveries

    app = ctx.app
    app.init()
    rows = list_deliveries(app.db, status, channel, limit)
    if fmt == "json":
        print_json(
            [
                {
                    "id": r.id,
                    "alert_id": r.outbox_id,
                    "channel": r.channel,
                    "status": r.status,
                    "attempts": r.attempts,
                    "next_attempt_at": r.next_attempt_at.isoformat(),
                    "delivered_at": r.delivered_at.isoformat() if r.delivered_at else None,
                    "last_error": r.last_error,
                    "kind": r.kind,
                    "title": r.title,
                    "created_at": r.created_at.isoformat(),
                }
                for r in rows
            ]
        )
        return
    print_table(
        "告警投递",
        ["投递", "告警", "通道", "状态", "次数", "标题", "最近错误"],
        [
            (
                r.id,
                r.outbox_id,
                r.channel,
                STATUS_CN.get(r.status, r.status),
                r.attempts,
                r.title[:60],
                (r.last_error or "")[:160],
            )
            for r in rows
        ],
    )


@alerts.command()
@click.argument("ids", nargs=-1, type=int, required=True)
@pass_ctx
@friendly
def retry(ctx: Context, ids: tuple[int, ...]) -> None:
    """Put quarantined (or waiting) deliveries back in the queue, due now, with a fresh attempt count.

    IDS are delivery ids, as `alerts list` shows them.

    \b
    Examples:
      partyrules alerts retry 42
      partyrules alerts retry 42 43 44
    """
    from engine.alerts.admin import retry as retry_deliveries

    app = ctx.app
    app.init()
    report = retry_deliveries(app.db, list(ids))
    if report.reset:
        click.echo(f"已重新排队：{'、'.join(map(str, report.reset))}（下次投递时发送）")
    if report.delivered:
        click.echo(f"已送达，未重发：{'、'.join(map(str, report.delivered))}", err=True)
    if report.unknown:
        raise click.ClickException(f"没有这些投递：{'、'.join(map(str, report.unknown))}")


@alerts.command()
@click.option("--before", "before", required=True, callback=_day, help="Purge what is older than this day.")
@click.option("--dry-run", is_flag=True, help="Only count what would be purged.")
@pass_ctx
@friendly
def purge(ctx: Context, before: dt.date, dry_run: bool) -> None:
    """Delete delivered and quarantined deliveries older than a day, and alerts left without any.

    Pending deliveries are never purged.  The day starts at midnight in the
    alerts' time zone ([alerts] timezone, Asia/Shanghai).

    \b
    Examples:
      partyrules alerts purge --before 2025-01-01 --dry-run
      partyrules alerts purge --before 2025-01-01
    """
    from engine.alerts.admin import purge as purge_outbox

    app = ctx.app
    app.init()
    moment = dt.datetime.combine(before, dt.time(), tzinfo=app.config.alerts.zone())
    report = purge_outbox(app.db, moment, dry_run)
    what = "将清除" if dry_run else "已清除"
    click.echo(
        f"{what} {before} 之前的投递：已送达 {report.delivered}，已隔离 {report.quarantined}；"
        f"告警 {report.alerts}" + ("（试运行，未删除）" if dry_run else "")
    )
