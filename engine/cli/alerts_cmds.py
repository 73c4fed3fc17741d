"""``partyrules alerts``: deliver the alert outbox, and enqueue a day's digest, by hand."""

from __future__ import annotations

import datetime as dt
import threading

import click

from engine.cli import Context, friendly, pass_ctx
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
    from engine.schedule.runner import install_stop_signals

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
