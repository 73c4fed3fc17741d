"""The ``partyrules`` command: a thin layer over the library (``engine`` and ``facts``).

Each command builds the app from ``--db`` / ``--config``, calls one library
function, and prints.  A :class:`~facts.errors.PartyrulesError` becomes a
clear message and exit status 1; anything else is a bug and shows its traceback.

Start-up is kept short (``partyrules --help`` in well under 0.3 s): the commands are found through
a lazy group (a command's module is imported when it is run or its help is shown), and those modules
import the library (sqlalchemy, durable_rules, pydantic models, plotly, openpyxl…) inside the commands'
bodies.  ``tests/test_cli_startup.py`` checks that none of these is imported by ``--help``.
"""

from __future__ import annotations

import functools
import getpass
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from engine import __version__
from engine.safe_text import for_terminal  # re and json only: cheap at start-up
from facts.errors import PartyrulesError

if TYPE_CHECKING:
    from engine.app import App
    from engine.auth.principal import Principal

F = TypeVar("F", bound=Callable[..., Any])
CREATES = {"init", "import"}  # the commands that may create a database; every other needs an existing one


class Context:
    def __init__(self, db: str | None, config: str | None, as_user: str | None = None) -> None:
        self.db_url = db
        self.config_path = config
        self.as_user = as_user
        self._app: App | None = None

    @property
    def app(self) -> App:
        if self._app is None:
            from engine.app import build_app

            current = click.get_current_context(silent=True)
            creating = current is None or current.info_name in CREATES
            self._app = build_app(self.db_url, self.config_path, must_exist=not creating)
        return self._app

    def pack_app(self) -> App:
        """An app for what needs only the configuration and the rule pack, not the database."""
        from engine.app import build_app

        return self._app or build_app(self.db_url, self.config_path)

    def principal(self, by: str | None = None) -> Principal:
        """Who acts: the account named by ``--by`` or ``--as``, else the local administrator (login name)."""
        from engine.auth.principal import Principal

        name = by or self.as_user
        if name:
            from engine.auth.accounts import principal_for

            self.app.init()
            return principal_for(self.app.db, name)
        return Principal.local(getpass.getuser())


def _connection_lost(exc: BaseException) -> bool:
    from sqlalchemy.exc import InterfaceError, OperationalError  # imported already if this can be true

    return isinstance(exc, OperationalError | InterfaceError)


def friendly(func: F) -> F:
    """Turn library errors into ``click.ClickException`` with the library's message."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PartyrulesError as exc:
            raise click.ClickException(for_terminal(exc)) from exc
        except Exception as exc:  # the database went away, a locked file…: one line, not a traceback
            ctx = click.get_current_context(silent=True)
            context = ctx.find_object(Context) if ctx else None
            if context is None or context._app is None or not _connection_lost(exc):
                raise
            from engine.app import connection_error

            raise click.ClickException(for_terminal(connection_error(context._app.db, exc))) from exc

    return wrapper  # type: ignore[return-value]


pass_ctx = click.make_pass_decorator(Context)

_FACTS = "engine.cli.facts_cmds"
COMMANDS: dict[str, str] = {
    "init": f"{_FACTS}:init",
    "import": f"{_FACTS}:import_",
    "export": f"{_FACTS}:export",
    "history": f"{_FACTS}:history",
    "orgs": f"{_FACTS}:orgs",
    "members": f"{_FACTS}:members",
    "sample": f"{_FACTS}:sample",
    "add": "engine.cli.add_cmds:add",
    "check": "engine.cli.check_cmds:check",
    "runs": "engine.cli.runs_cmds:runs",
    "rules": "engine.cli.rules_cmds:rules",
    "violations": "engine.cli.violations_cmds:violations",
    "report": "engine.cli.report_cmds:report",
    "schedule": "engine.cli.schedule_cmds:schedule",
    "alerts": "engine.cli.alerts_cmds:alerts",
    "users": "engine.cli.service_cmds:users",
    "audit": "engine.cli.service_cmds:audit",
    "serve": "engine.cli.service_cmds:serve",
}
"""Every top-level command and where it lives (``module:attribute``), imported when first asked for."""


class LazyGroup(click.Group):
    """A group whose commands are imported on first use (click's documented lazy-loading pattern)."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = self.lazy[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
        return command


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.option("--db", envvar="PARTYRULES_DB", help="Database URL or SQLite file (default: ./partyrules.db).")
@click.option(
    "--config",
    "config",
    envvar="PARTYRULES_CONFIG",
    type=click.Path(dir_okay=False),
    help="partyrules.toml to use.",
)
@click.option(
    "--as",
    "as_user",
    envvar="PARTYRULES_AS",
    help="Act as this account (its roles apply); default: the local administrator.",
)
@click.version_option(__version__, package_name="partyrules")  # no importlib.metadata at start-up
@click.pass_context
def main(ctx: click.Context, db: str | None, config: str | None, as_user: str | None) -> None:
    """partyrules — 党务合规规则引擎: facts in, rules judged, violations followed to rectification.

    \b
    Example:
      partyrules init
      partyrules import sample.jsonl
      partyrules check --period 2017 --as-of 2018-03-01
      partyrules violations list --status open
    """
    ctx.obj = Context(db, config, as_user)

