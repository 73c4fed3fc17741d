"""Printing: tables that align Chinese text (rich measures wide characters), and JSON."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from engine.safe_text import for_terminal, json_for_terminal

if TYPE_CHECKING:
    from rich.console import Console


def console(err: bool = False) -> Console:
    from rich.console import Console

    # a fixed width when not on a terminal keeps piped output stable and unwrapped
    return Console(stderr=err, width=None if sys.stdout.isatty() else 160, soft_wrap=False)


def print_table(title: str | None, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table of user text: control characters shown as escapes, never rich markup (``[link=…]``)."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    table = Table(title=escape(for_terminal(title)) if title else None, show_lines=False, header_style="bold")
    for h in headers:
        table.add_column(escape(for_terminal(h)), overflow="fold")
    for row in rows:
        table.add_row(*[Text(for_terminal(v)) for v in row])
    console().print(table)


def print_json(data: Any) -> None:
    click.echo(json_for_terminal(data))


def severity_cn(severity: str) -> str:
    from engine.pack.model import SEVERITY_CN

    return SEVERITY_CN.get(severity, severity)


class LazyChoice(click.Choice):  # type: ignore[type-arg]
    """A :class:`click.Choice` whose choices come from the library when first needed (to check a value
    or show a command's help), so that defining the command does not import the library."""

    def __init__(self, load: Callable[[], Sequence[str]]) -> None:
        self._load = load
        self._loaded: tuple[str, ...] | None = None
        super().__init__([])

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        if self._loaded is None:
            self._loaded = tuple(self._load())
        return self._loaded

    @choices.setter
    def choices(self, _value: Sequence[str]) -> None:
        """Ignored: the choices are loaded."""


def format_option(default: str = "table") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json"]),
        default=default,
        show_default=True,
        help="Output as a table for people or JSON for programs.",
    )
