"""Submitting by hand: ``partyrules add meeting|dues|signoff`` — no JSON to write."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import click

from engine.cli import Context, friendly, pass_ctx
from facts.errors import Location

_HEADINGS = {
    "时间": "time",
    "time": "time",
    "地点": "place",
    "place": "place",
    "记录人": "recorder",
    "recorder": "recorder",
    "议程": "agenda",
    "agenda": "agenda",
    "内容": "content",
    "content": "content",
    "成效": "outcome",
    "效果": "outcome",
    "outcome": "outcome",
}
_HEADING = re.compile(r"^#{1,6}\s*(.+?)\s*$")


def parse_minutes(text: str) -> dict[str, str]:
    """Minutes from a text or Markdown file.

    With headings (``## 时间``, ``## 地点``, ``## 记录人``, ``## 议程``, ``## 内容``,
    ``## 成效`` — or the English field names) each section fills its field; a
    file without headings is all ``content``.
    """
    sections: dict[str, list[str]] = {}
    current: str | None = None
    loose: list[str] = []
    for line in text.splitlines():
        m = _HEADING.match(line)
        if m and m.group(1).strip().lower() in _HEADINGS:
            current = _HEADINGS[m.group(1).strip().lower()]
            sections.setdefault(current, [])
            continue
        (sections[current] if current else loose).append(line)
    out = {k: "\n".join(v).strip() for k, v in sections.items() if "\n".join(v).strip()}
    if not sections and "\n".join(loose).strip():
        out["content"] = "\n".join(loose).strip()
    return out


def _split(value: str | None) -> list[str]:
    if not value:
        return []
    return [v.strip() for v in re.split(r"[,，;；]", value) if v.strip()]


def _submit(ctx: Context, obj: dict[str, Any], quiet: bool) -> None:
    from engine.service.facts_ops import submit_facts
    from engine.submit import print_judgement

    app = ctx.app
    app.init()
    submitted = submit_facts(app, ctx.principal(), [(Location("<add>", 1), obj)], source="<add>")
    report = submitted.report
    for note in report.altered:
        click.echo(f"warning: the stored text of {note} had been altered in the database; stored anew", err=True)
    for problem in report.problems:
        click.echo(str(problem).replace("<add>:1: ", ""), err=True)
    if report.problems:
        sys.exit(1)
    what = report.stored[0] if report.stored else None
    if what is None:
        click.echo("unchanged: the same record is already stored")
        return
    click.echo(f"{what.status}: {obj['type']} {what.key} (version {what.version})")
    if not quiet and submitted.judgement is not None:
        print_judgement(submitted.judgement)


@click.group()
def add() -> None:
    """Record one fact by hand: a meeting, a dues payment or a sign-off."""


@add.command()
@click.option("--org", required=True, help="Organising org id (see `partyrules orgs`).")
@click.option(
    "--kind", required=True, help="committee_meeting, member_assembly, group_meeting, party_lecture, …"
)
@click.option("--date", "day", required=True, help="YYYY-MM-DD")
@click.option("--id", "meeting_id", help="Meeting id (default: ORG-DATE-KIND).")
@click.option("--attendees", help="Member ids present, comma-separated.")
@click.option("--absent", help="Member ids absent without leave, comma-separated.")
@click.option(
    "--leave",
    multiple=True,
    help="MEMBER[:REASON[:yes]] on leave; ':yes' = opinion given in advance. Repeatable.",
)
@click.option("--topics", help="Tags, comma-separated (party_building, integrity, appointment, …).")
@click.option("--host", help="Member id who chaired.")
@click.option("--lecturer", help="Member id who lectured (party_lecture).")
@click.option(
    "--minutes",
    "minutes_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Minutes file (text or Markdown with ## 时间/地点/记录人/议程/内容/成效).",
)
@click.option("--time", "m_time", help="Minutes: start–end, e.g. 15:00-16:30.")
@click.option("--place", help="Minutes: place.")
@click.option("--recorder", help="Minutes: member id of the recorder.")
@click.option("--outcome", help="Minutes: decisions and follow-up.")
@click.option("--source", help="Who submits this (free text).")
@click.option("--quiet", is_flag=True, help="Do not print the judgement.")
@pass_ctx
@friendly
def meeting(
    ctx: Context,
    org: str,
    kind: str,
    day: str,
    meeting_id: str | None,
    attendees: str | None,
    absent: str | None,
    leave: tuple[str, ...],
    topics: str | None,
    host: str | None,
    lecturer: str | None,
    minutes_file: str | None,
    m_time: str | None,
    place: str | None,
    recorder: str | None,
    outcome: str | None,
    source: str | None,
    quiet: bool,
) -> None:
    """Record a meeting (三会一课) and judge it at once.

    \b
    Example:
      partyrules add meeting --org b1 --kind committee_meeting --date 2017-06-27 \\
          --attendees m01,m02,m03 --leave m04:出差:yes --minutes minutes.md \\
          --time 15:00-16:30 --recorder m02
    """
    minutes: dict[str, Any] = (
        parse_minutes(Path(minutes_file).read_text(encoding="utf-8")) if minutes_file else {}
    )
    for k, v in (("time", m_time), ("place", place), ("recorder", recorder), ("outcome", outcome)):
        if v:
            minutes[k] = v
    obj: dict[str, Any] = {
        "type": "meeting",
        "id": meeting_id or f"{org}-{day}-{kind}",
        "org": org,
        "kind": kind,
        "date": day,
    }
    for k, items in (("attendees", _split(attendees)), ("absent", _split(absent)), ("topics", _split(topics))):
        if items:
            obj[k] = items
    leaves = []
    for item in leave:
        parts = item.split(":")
        entry: dict[str, Any] = {"member": parts[0]}
        if len(parts) > 1 and parts[1]:
            entry["reason"] = parts[1]
        if len(parts) > 2:
            entry["opinion_given"] = parts[2].lower() in {"yes", "y", "true", "1", "是"}
        leaves.append(entry)
    if leaves:
        obj["on_leave"] = leaves
    for k, v in (("host", host), ("lecturer", lecturer), ("source", source)):
        if v:
            obj[k] = v
    if minutes:
        obj["minutes"] = minutes
    _submit(ctx, obj, quiet)


@add.command()
@click.option("--member", required=True, help="Member id.")
@click.option("--month", required=True, help="The month the dues are for, YYYY-MM.")
@click.option("--amount", required=True, help="Yuan.")
@click.option("--paid-on", required=True, help="Date paid, YYYY-MM-DD.")
@click.option("--base", help="Monthly income base (工资收入基数), yuan.")
@click.option("--source", help="Who submits this (free text).")
@click.option("--quiet", is_flag=True, help="Do not print the judgement.")
@pass_ctx
@friendly
def dues(
    ctx: Context,
    member: str,
    month: str,
    amount: str,
    paid_on: str,
    base: str | None,
    source: str | None,
    quiet: bool,
) -> None:
    """Record one month's Party dues of one member and judge the amount at once.

    \b
    Example:
      partyrules add dues --member m01 --month 2017-06 --amount 45 --paid-on 2017-06-20 --base 4500
    """
    obj: dict[str, Any] = {
        "type": "dues",
        "member": member,
        "month": month,
        "amount": amount,
        "paid_on": paid_on,
    }
    if base:
        obj["base"] = base
    if source:
        obj["source"] = source
    _submit(ctx, obj, quiet)


@add.command()
@click.option("--document", required=True, help="Document id, e.g. integrity-responsibility-2017.")
@click.option("--unit", help="Org id of the signing unit.")
@click.option("--signer", help="Member id of the signer (where there is no unit).")
@click.option("--date", "day", required=True, help="YYYY-MM-DD")
@click.option("--source", help="Who submits this (free text).")
@pass_ctx
@friendly
def signoff(
    ctx: Context, document: str, unit: str | None, signer: str | None, day: str, source: str | None
) -> None:
    """Record a signed document (e.g. 党风廉政建设目标责任书).

    \b
    Example:
      partyrules add signoff --document integrity-responsibility-2017 --unit u01 --date 2017-04-20
    """
    obj: dict[str, Any] = {"type": "signoff", "document": document, "date": day}
    for k, v in (("unit", unit), ("signer", signer), ("source", source)):
        if v:
            obj[k] = v
    _submit(ctx, obj, True)
