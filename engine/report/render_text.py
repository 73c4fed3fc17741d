"""A report as a terminal table (rich, aligned for Chinese) or as Markdown."""

from __future__ import annotations

import io

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from engine.report.model import Report
from engine.report.sections import RATE_NOTES, Section, matrix, sections, text
from engine.safe_text import for_markdown, for_terminal


def render_table(report: Report, width: int = 160, wide: bool = False) -> str:
    """Every section as a rich table; ``wide`` keeps every column (else a narrow selection where defined)."""
    out = io.StringIO()
    con = Console(file=out, width=width, soft_wrap=False, color_system=None, force_terminal=False)
    con.print(f"[bold]{escape(for_terminal(report.title))}[/bold]", justify="center")
    for section in sections(report):
        cols = list(range(len(section.headers))) if wide or not section.narrow else section.narrow
        table = Table(title=escape(for_terminal(section.title)), header_style="bold", title_justify="left")
        for i in cols:
            table.add_column(escape(for_terminal(section.headers[i])), overflow="fold")
        for row in section.rows:  # user text: never markup, never a control sequence
            table.add_row(*(Text(for_terminal(text(row[i]))) for i in cols))
        if not section.rows:
            table.add_row(*("（无）" if i == cols[0] else "" for i in cols))
        con.print(table)
    for line in [*report.notes, *RATE_NOTES]:
        con.print(f"注：{for_terminal(line)}", markup=False)
    return out.getvalue()


def _md_cell(value: str) -> str:
    return for_markdown(value)


def _md_table(section: Section) -> list[str]:
    lines = [f"## {for_markdown(section.title)}", ""]
    if not section.rows:
        return [*lines, "（无）", ""]
    lines.append("| " + " | ".join(for_markdown(h) for h in section.headers) + " |")
    lines.append("|" + "|".join("---" for _ in section.headers) + "|")
    lines.extend("| " + " | ".join(_md_cell(text(c)) for c in row) + " |" for row in section.rows)
    return [*lines, ""]


def render_markdown(report: Report) -> str:
    """GitHub-flavoured Markdown: a heading, one table per section, the matrix, and the notes."""
    lines = [f"# {for_markdown(report.title)}", "", f"生成时间：{report.generated_at:%Y-%m-%d %H:%M} UTC", ""]
    for section in [*sections(report), matrix(report)]:
        lines.extend(_md_table(section))
    lines.extend(["## 说明", ""])
    lines.extend(f"- {for_markdown(note)}" for note in [*report.notes, *RATE_NOTES])
    return "\n".join(lines) + "\n"
