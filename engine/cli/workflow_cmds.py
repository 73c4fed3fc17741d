"""``partyrules violations ack|assign|resolve|waive|reopen KEY``: the rectification workflow from the CLI."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from engine.cli import Context, friendly, pass_ctx

if TYPE_CHECKING:
    from engine.violations import workflow


def _by() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--by",
        "actor",
        default=None,
        help="The account doing this (see `partyrules users`); default: --as, else the local administrator.",
    )


def _day(_c: click.Context, _p: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f'"{value}" is not a date (expected YYYY-MM-DD)') from None


def _done(change: workflow.Change) -> None:
    from engine.violations.tables import STATUS_CN

    click.echo(f"{change.key}: {STATUS_CN[change.from_status]} → {STATUS_CN[change.to_status]}")


@click.command()
@click.argument("key")
@_by()
@click.option("--note", help="Anything to add.")
@pass_ctx
@friendly
def ack(ctx: Context, key: str, actor: str | None, note: str | None) -> None:
    """Acknowledge a violation (open → acknowledged).

    \b
    Example:
      partyrules violations ack 'dues.monthly.paid|member:m07|2017-03' --by 李纪检
    """
    from engine.service.violations_ops import act

    _done(act(ctx.app, ctx.principal(actor), key, "ack", note=note))


@click.command()
@click.argument("key")
@_by()
@click.option("--owner", required=True, help="The person responsible for rectification.")
@click.option("--deadline", required=True, callback=_day, help="YYYY-MM-DD")
@click.option("--plan", required=True, help="What will be done.")
@pass_ctx
@friendly
def assign(ctx: Context, key: str, actor: str | None, owner: str, deadline: dt.date, plan: str) -> None:
    """Assign rectification: an owner, a deadline and a plan (→ rectifying).

    \b
    Example:
      partyrules violations assign KEY --owner 王书记 --deadline 2018-04-30 --plan 补开支委会并补记录
    """
    from engine.service.violations_ops import act

    _done(act(ctx.app, ctx.principal(actor), key, "assign", owner=owner, deadline=deadline, plan=plan))


@click.command()
@click.argument("key")
@_by()
@click.option("--evidence", required=True, help="What shows it was fixed (documents, meeting ids).")
@click.option(
    "--how",
    type=click.Choice(["rectified", "data-corrected"]),
    default="rectified",
    show_default=True,
    help="rectified (已整改): measures were taken; later checks that still see the past lapse leave it resolved. "
    "data-corrected (数据已更正): the record was wrong; a later check that still finds it reopens it.",
)
@pass_ctx
@friendly
def resolve(ctx: Context, key: str, actor: str | None, evidence: str, how: str) -> None:
    """Resolve by hand, with evidence (→ resolved).  A later check resolves fixed violations by itself.

    \b
    Example:
      partyrules violations resolve KEY --evidence "2018-04-20 补缴，收据号 0012"
      partyrules violations resolve KEY --how data-corrected --evidence "会议记录补录了到会名单"
    """
    from engine.service.violations_ops import act

    _done(act(ctx.app, ctx.principal(actor), key, "resolve", evidence=evidence, how=how))


@click.command()
@click.argument("key")
@_by()
@click.option("--reason", required=True, help="Why this is waived.")
@click.option("--approver", required=True, help="The approving account (another account than the requester).")
@click.option("--expires", callback=_day, help="YYYY-MM-DD after which the violation reopens.")
@pass_ctx
@friendly
def waive(ctx: Context, key: str, actor: str | None, reason: str, approver: str, expires: dt.date | None) -> None:
    """Waive a violation with a written reason and an approver (→ waived).

    \b
    Example:
      partyrules violations waive KEY --by 张三 --approver 李四 --reason 病假 --expires 2018-06-30
    """
    from engine.service.violations_ops import act

    _done(act(ctx.app, ctx.principal(actor), key, "waive", reason=reason, approver=approver, expires=expires))


@click.command()
@click.argument("key")
@_by()
@click.option("--reason", required=True, help="Why it is reopened.")
@pass_ctx
@friendly
def reopen(ctx: Context, key: str, actor: str | None, reason: str) -> None:
    """Reopen a resolved or waived violation (→ open).

    \b
    Example:
      partyrules violations reopen KEY --reason 复核发现未整改到位
    """
    from engine.service.violations_ops import act

    _done(act(ctx.app, ctx.principal(actor), key, "reopen", reason=reason))


def add_workflow_commands(group: click.Group) -> None:
    for cmd in (ack, assign, resolve, waive, reopen):
        group.add_command(cmd)
