"""Facts in and out: init, import, export, history, orgs, members, sample."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from engine.cli import Context, friendly, pass_ctx
from engine.cli.output import LazyChoice, format_option, print_json, print_table
from facts.errors import FieldProblem, Location

if TYPE_CHECKING:
    from facts.readers import FileNote


def _fact_types() -> list[str]:
    from facts.models import MODELS

    return list(MODELS)


@click.command()
@pass_ctx
@friendly
def init(ctx: Context) -> None:
    """Create or upgrade the database schema (safe to repeat).

    A new database gets every table; one made by an older partyrules (0.1.0,
    before migrations, or any later version) is upgraded by the migrations
    shipped in the package, keeping its data.

    \b
    Example:
      partyrules --db partyrules.db init
    """
    from engine.migrations import heads

    done = ctx.app.init()
    url = ctx.app.db.url.render_as_string(hide_password=True)
    click.echo(f"schema ready ({done}, revision {', '.join(heads())}): {url}")


def _iter_files(paths: tuple[str, ...], notes: list[FileNote]):  # type: ignore[no-untyped-def]
    """Every object of every file; a file that cannot be read at all is one problem, and the others go on."""
    from facts.readers import UnreadableFileError
    from facts.streaming import read_chunks

    for path in paths:
        try:
            yield from read_chunks(Path(path), notes)  # a big JSON Lines file as chunks of raw lines
        except UnreadableFileError as exc:
            yield FieldProblem(Location(exc.file, 1), "", str(exc).removeprefix(f"{exc.file}: "))


@click.command(name="import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--quiet", is_flag=True, help="Do not print the findings judged on submit.")
@click.option("--no-judge", is_flag=True, help="Store only; do not judge the single-fact rules now.")
@pass_ctx
@friendly
def import_(ctx: Context, files: tuple[str, ...], quiet: bool, no_judge: bool) -> None:
    """Import facts from JSONL, CSV or XLSX files (interchange format v1).

    Prints the counts of added, unchanged, corrected and rejected objects.
    Every rejected line goes to stderr as FILE:LINE: TYPE.FIELD: what is wrong;
    the valid objects around it are kept.  Exit status 1 if anything was rejected.
    The single-fact rules (quorum, minutes, dues amount, petitions, promotions)
    judge what was added or corrected at once; an import of more than 20,000
    facts is judged in bulk, as a check of those rules over the months it
    touched, and prints the findings counted by rule.

    \b
    Examples:
      partyrules import facts.jsonl
      partyrules import meetings.csv dues.csv
      partyrules import 2017年党务台账.xlsx
    """
    from engine.judge_import import BULK_FROM
    from engine.service.facts_ops import submit_facts
    from engine.submit import print_judgement

    app = ctx.app
    app.init()
    notes: list[FileNote] = []
    submitted = submit_facts(
        app,
        ctx.principal(),
        _iter_files(files, notes),
        source=" ".join(files),
        judge=not no_judge,
        bulk_from=BULK_FROM,
    )
    report = submitted.report
    for note in notes:
        click.echo(f"note: {note}", err=True)
    for altered in report.altered:
        click.echo(
            f"warning: the stored text of {altered} had been altered in the database; stored anew", err=True
        )
    for problem in report.problems:
        click.echo(str(problem), err=True)
    click.echo(report.summary())
    if not quiet and submitted.judgement is not None:
        print_judgement(submitted.judgement)
    if report.problems:
        sys.exit(1)


@click.command()
@click.option("--type", "type_name", type=LazyChoice(_fact_types), help="Only this type.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="jsonl: one file on stdout; csv: one file per type in --out.",
)
@click.option("--out", type=click.Path(file_okay=False), help="Folder for CSV files (one per type).")
@pass_ctx
@friendly
def export(ctx: Context, type_name: str | None, fmt: str, out: str | None) -> None:
    """Write the current version of every stored fact in the interchange format.

    JSONL goes to standard output; CSV writes one file per type into --out.
    Export then import round-trips exactly.

    \b
    Examples:
      partyrules export > all.jsonl
      partyrules export --type meeting > meetings.jsonl
      partyrules export --format csv --out export/
    """
    from facts.writers import write_csv, write_jsonl

    facts = ctx.app.facts.current(type_name)
    if fmt == "jsonl":
        write_jsonl(facts, sys.stdout)
        return
    if not out:
        raise click.UsageError("--format csv needs --out FOLDER")
    for path in write_csv(facts, Path(out)):
        click.echo(str(path))


@click.command()
@click.argument("type_name", metavar="TYPE", type=LazyChoice(_fact_types))
@click.argument("key")
@format_option()
@pass_ctx
@friendly
def history(ctx: Context, type_name: str, key: str, fmt: str) -> None:
    """Show every version of one fact, oldest first (corrections never overwrite).

    KEY is the id, or for facts without one the natural key joined by '|'
    (dues: MEMBER|YYYY-MM; signoff: DOCUMENT|UNIT; election: ORG|DATE …).

    \b
    Example:
      partyrules history meeting b1-2017-06-cm
      partyrules history dues 'm01|2017-06'
    """
    from engine.service.facts_ops import fact_history

    versions = fact_history(ctx.app, ctx.principal(), type_name, key)
    if fmt == "json":
        print_json(
            [
                dict(
                    version=v.version,
                    current=v.current,
                    recorded_at=v.recorded_at,
                    superseded_at=v.superseded_at,
                    content=v.content,
                )
                for v in versions
            ]
        )
        return
    rows = [
        (v.version, "当前" if v.current else "已被更正", v.recorded_at, v.superseded_at or "", v.content)
        for v in versions
    ]
    print_table(f"{type_name} {key} 的版本历史", ["版本", "状态", "记录时间", "被更正时间", "内容"], rows)


@click.command()
@click.option("--kind", help="Only orgs of this kind (branch, group, unit, …).")
@format_option()
@pass_ctx
@friendly
def orgs(ctx: Context, kind: str | None, fmt: str) -> None:
    """List the organisations, to find the ids you need.

    \b
    Example:
      partyrules orgs --kind branch
    """
    items = [o for o in ctx.app.facts.current("org") if not kind or o["kind"] == kind]
    if fmt == "json":
        print_json(items)
        return
    print_table(
        "组织",
        ["id", "名称", "类型", "上级"],
        [(o["id"], o["name"], o["kind"], o.get("parent", "")) for o in items],
    )


@click.command()
@click.option("--org", help="Only members of this org.")
@format_option()
@pass_ctx
@friendly
def members(ctx: Context, org: str | None, fmt: str) -> None:
    """List the members, to find the ids you need.

    \b
    Example:
      partyrules members --org b1
    """
    items = [m for m in ctx.app.facts.current("member") if not org or m["org"] == org]
    if fmt == "json":
        print_json(items)
        return
    rows = [
        (
            m["id"],
            m["name"],
            m["org"],
            m.get("status", "full"),
            m.get("category", "in_service"),
            ",".join(m.get("roles", [])),
        )
        for m in items
    ]
    print_table("党员及干部", ["id", "姓名", "所在组织", "身份", "类别", "职务"], rows)


@click.command()
@click.argument("out", type=click.Path(dir_okay=False), default="sample.jsonl")
@friendly
def sample(out: str) -> None:
    """Write the sample organisation (a provincial federation, year 2017) as JSONL.

    \b
    Example:
      partyrules sample sample.jsonl && partyrules import sample.jsonl
    """
    from engine.sample import write_sample

    n = write_sample(Path(out))
    click.echo(f"wrote {n} facts to {out}")


def register(group: click.Group) -> None:
    for cmd in (init, import_, export, history, orgs, members, sample):
        group.add_command(cmd)
    from engine.cli.add_cmds import add

    group.add_command(add)


__all__ = ["register", "FieldProblem"]
