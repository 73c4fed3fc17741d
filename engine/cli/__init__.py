"""The ``partyrules`` command: a thin layer over the library (``engine`` and ``facts``).

Each command builds the app from ``--db`` / ``--config``, calls one library
function, and prints.  A :class:`~facts.errors.PartyrulesError` becomes a
clear message and exit status 1; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import functools
import getpass
from collections.abc import Callable
from typing import Any, TypeVar

import click
import sqlalchemy as sa

from engine.app import App, build_app, connection_error
from engine.auth.accounts import principal_for
from engine.auth.principal import Principal
from engine.safe_text import for_terminal
from facts.errors import PartyrulesError

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
            current = click.get_current_context(silent=True)
            creating = current is None or current.info_name in CREATES
            self._app = build_app(self.db_url, self.config_path, must_exist=not creating)
        return self._app

    def pack_app(self) -> App:
        """An app for what needs only the configuration and the rule pack, not the database."""
        return self._app or build_app(self.db_url, self.config_path)

    def principal(self, by: str | None = None) -> Principal:
        """Who acts: the account named by ``--by`` or ``--as``, else the local administrator (login name)."""
        name = by or self.as_user
        if name:
            self.app.init()
            return principal_for(self.app.db, name)
        return Principal.local(getpass.getuser())


def friendly(func: F) -> F:
    """Turn library errors into ``click.ClickException`` with the library's message."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PartyrulesError as exc:
            raise click.ClickException(for_terminal(exc)) from exc
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:  # the server went away, a locked file…
            ctx = click.get_current_context(silent=True)
            context = ctx.find_object(Context) if ctx else None
            if context is None or context._app is None:
                raise
            raise click.ClickException(str(connection_error(context._app.db, exc))) from exc

    return wrapper  # type: ignore[return-value]


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
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
@click.version_option(package_name="partyrules")
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


def _register() -> None:
    from engine.cli import (
        alerts_cmds,
        check_cmds,
        facts_cmds,
        report_cmds,
        rules_cmds,
        runs_cmds,
        schedule_cmds,
        service_cmds,
        violations_cmds,
    )

    for module in (
        facts_cmds,
        check_cmds,
        runs_cmds,
        rules_cmds,
        violations_cmds,
        report_cmds,
        schedule_cmds,
        alerts_cmds,
        service_cmds,
    ):
        module.register(main)


_register()
