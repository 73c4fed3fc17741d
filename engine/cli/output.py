"""Printing: tables that align Chinese text (rich measures wide characters), and JSON."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from engine.pack.model import SEVERITY_CN
from engine.safe_text import for_terminal, json_for_terminal


def console(err: bool = False) -> Console:
    # a fixed width when not on a terminal keeps piped output stable and unwrapped
    return Console(stderr=err, width=None if sys.stdout.isatty() else 160, soft_wrap=False)


def print_table(title: str | None, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table of user text: control characters shown as escapes, never rich markup (``[link=…]``)."""
    table = Table(title=escape(for_terminal(title)) if title else None, show_lines=False, header_style="bold")
    for h in headers:
        table.add_column(escape(for_terminal(h)), overflow="fold")
    for row in rows:
        table.add_row(*[Text(for_terminal(v)) for v in row])
    console().print(table)


def print_json(data: Any) -> None:
    click.echo(json_for_terminal(data))


def severity_cn(severity: str) -> str:
    return SEVERITY_CN.get(severity, severity)


def format_option(default: str = "table") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json"]),
        default=default,
        show_default=True,
        help="Output as a table for people or JSON for programs.",
    )
