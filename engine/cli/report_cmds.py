"""``partyrules report``: compliance by org and by rule, the trend, and the rectification ledger (整改台账)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from engine.cli import Context, friendly, pass_ctx

FORMATS = ("table", "md", "xlsx", "html")


def default_name(period: str, org: str | None, fmt: str) -> str:
    """``report-2017.xlsx``, ``report-2017-Q2-b1.html``: the file a report is written to without --out."""
    safe_org = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in org) if org else ""
    return f"report-{period}{'-' + safe_org if safe_org else ''}.{fmt}"


def _write_text(content: str, out: str | None) -> None:
    from engine.report.model import ReportError

    if out is None:
        click.echo(content, nl=False)
        return
    try:
        Path(out).write_text(content, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write the report: {exc.strerror or exc}", out) from exc
    click.echo(f"已写入 {out}")


@click.command()
@click.option("--period", required=True, help="The report period: YYYY-MM, YYYY-Qn or YYYY.")
@click.option("--org", help="Only this org and the orgs under it (an org id, as in the org table).")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Output format."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="File to write (xlsx/html default: report-PERIOD[-ORG].xlsx|html; table/md default: stdout).",
)
@click.option(
    "--trend",
    "trend_periods",
    type=click.IntRange(1, 60),
    default=4,
    show_default=True,
    help="Periods in the trend, the report period included.",
)
@click.option(
    "--wide", is_flag=True, help="Table format: show every column, not a selection that fits a screen."
)
@pass_ctx
@friendly
def report(
    ctx: Context, period: str, org: str | None, fmt: str, out: str | None, trend_periods: int, wide: bool
) -> None:
    """Report compliance for PERIOD: by org and by rule, the trend, and the rectification ledger (整改台账).

    Counts come from the stored violations; rates from the periods that
    successful check runs judged (see the notes under the report).  XLSX is
    print-ready (landscape, fitted to the page width, header row on every
    page); HTML is one self-contained file with charts.

    \b
    Examples:
      partyrules report --period 2017
      partyrules report --period 2017-Q2 --org b1 --format md > b1-2017Q2.md
      partyrules report --period 2017 --format xlsx --out 整改台账-2017.xlsx
      partyrules report --period 2017 --format html --trend 6
    """
    from engine.periods import parse_period
    from engine.report.data import build_report
    from engine.report.render_html import write_html
    from engine.report.render_text import render_markdown, render_table
    from engine.report.render_xlsx import write_xlsx

    parse_period(period)  # a bad period is said before the database is opened
    app = ctx.app
    app.init()
    rep = build_report(app.db, period, org, trend_periods=trend_periods, as_of=app.today())
    if fmt == "table":
        tty = sys.stdout.isatty()
        width = shutil.get_terminal_size().columns if tty else 160
        _write_text(render_table(rep, width=width, wide=wide), out)
    elif fmt == "md":
        _write_text(render_markdown(rep), out)
    else:
        target = out or default_name(rep.period.label, org, fmt)
        written = write_xlsx(rep, target) if fmt == "xlsx" else write_html(rep, target)
        click.echo(
            f"已写入 {written}（{rep.title}：问题 {rep.totals.violations} 项，台账 {len(rep.ledger)} 行）"
        )


def register(group: click.Group) -> None:
    group.add_command(report)
