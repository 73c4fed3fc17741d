"""Accounts, the audit log and the HTTP service: ``users``, ``audit verify``, ``serve``."""

from __future__ import annotations

import sys

import click

from engine.cli import Context, friendly, pass_ctx
from engine.cli.output import format_option, print_json, print_table


@click.group()
def users() -> None:
    """Accounts (账号) and their roles scoped to the org tree.

    \b
    Roles (ROLE or ROLE@ORG; without @ORG the whole tree):
      secretary@b1   writes b1's facts, reads b1's facts and violations
      inspector@o1   reads the subtree of o1, works its violations (ack/assign/resolve/waive)
      rule_admin     rule packs: upload, diff, backtest, approve (approver ≠ uploader)
      admin          accounts, and everything else in its subtree
    """


def _password(ctx_password: str | None, stdin: bool, none: bool) -> str | None:
    if none:
        return None
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    return ctx_password or click.prompt("password", hide_input=True, confirmation_prompt=True)


@users.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="ROLE or ROLE@ORG (repeatable).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of standard input."
)
@click.option("--no-password", is_flag=True, help="No password login (API tokens only).")
@pass_ctx
@friendly
def users_add(
    ctx: Context, name: str, roles: tuple[str, ...], password_stdin: bool, no_password: bool
) -> None:
    """Create an account (asks for its password unless --password-stdin or --no-password).

    \b
    Examples:
      partyrules users add admin --role admin
      partyrules users add 王书记 --role secretary@b1
      partyrules users add 李纪检 --role inspector@o1 --role inspector@o2
    """
    from engine.auth import accounts
    from engine.auth.principal import parse_grants

    ctx.app.init()
    who = ctx.principal()
    who.require("account.manage")
    parse_grants(roles)  # a bad role is refused before asking for a password
    info = accounts.add_user(ctx.app.db, who, name, list(roles), _password(None, password_stdin, no_password))
    click.echo(f"account {info.name} created: {', '.join(str(g) for g in info.grants)}")


@users.command("list")
@format_option()
@pass_ctx
@friendly
def users_list(ctx: Context, fmt: str) -> None:
    """List the accounts, their roles and whether they are disabled.

    \b
    Example:
      partyrules users list --format json
    """
    from engine.auth import accounts

    ctx.app.init()
    rows = accounts.list_users(ctx.app.db, ctx.principal())
    if fmt == "json":
        print_json(
            [{"name": r.name, "roles": [str(g) for g in r.grants], "disabled": r.disabled} for r in rows]
        )
        return
    print_table(
        "账号",
        ["name", "roles", "status"],
        [(r.name, ", ".join(str(g) for g in r.grants), "停用" if r.disabled else "启用") for r in rows],
    )


@users.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Enable it again instead.")
@pass_ctx
@friendly
def users_disable(ctx: Context, name: str, enable: bool) -> None:
    """Disable an account (its sessions end, its tokens stop working), or --enable it again.

    \b
    Example:
      partyrules users disable 王书记
    """
    from engine.auth import accounts

    ctx.app.init()
    accounts.set_disabled(ctx.app.db, ctx.principal(), name, disabled=not enable)
    click.echo(f"account {name} {'enabled' if enable else 'disabled'}")


@users.command("passwd")
@click.argument("name")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of standard input."
)
@pass_ctx
@friendly
def users_passwd(ctx: Context, name: str, password_stdin: bool) -> None:
    """Set an account's password (its open sessions end).

    \b
    Example:
      partyrules users passwd admin
    """
    from engine.auth import accounts

    ctx.app.init()
    accounts.set_password(ctx.app.db, ctx.principal(), name, _password(None, password_stdin, False) or "")
    click.echo(f"password of {name} changed")


@users.command("token")
@click.argument("name")
@click.option("--label", default="", help="What the token is for.")
@pass_ctx
@friendly
def users_token(ctx: Context, name: str, label: str) -> None:
    """Create an API token for an account; it is printed once and stored only as a hash.

    \b
    Example:
      partyrules users token 王书记 --label 手机端
      curl -H "Authorization: Bearer prt_…" http://127.0.0.1:8000/api/violations
    """
    from engine.auth import accounts

    ctx.app.init()
    click.echo(accounts.create_token(ctx.app.db, ctx.principal(), name, label))


@click.group()
def audit() -> None:
    """The tamper-evident audit log (审计日志)."""


@audit.command("verify")
@pass_ctx
@friendly
def audit_verify(ctx: Context) -> None:
    """Recompute the hash chain, every stored fact's content hash and every audited workflow event.

    Names the first tampered row of each kind; exit status 1 if anything was tampered with.

    \b
    Example:
      partyrules audit verify
    """
    from engine.audit.verify import verify

    ctx.app.init()
    ctx.principal().require("audit.verify")
    report = verify(ctx.app.db)
    click.echo(report.summary())
    for problem in report.problems:
        click.echo(f"TAMPERED: {problem}", err=True)
    if not report.ok:
        sys.exit(1)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--insecure-cookies", is_flag=True, help="Session cookies without the Secure flag (plain HTTP on a LAN)."
)
@pass_ctx
@friendly
def serve(ctx: Context, host: str, port: int, insecure_cookies: bool) -> None:
    """Run the HTTP API (OpenAPI at /docs and /openapi.json) with uvicorn.

    \b
    Example:
      partyrules users add admin --role admin
      partyrules serve --host 127.0.0.1 --port 8000
    """
    import uvicorn

    from engine.web.api import create_api, prepare_to_serve

    ctx.app.init()
    api = create_api(ctx.app, secure_cookies=not insecure_cookies)
    prepare_to_serve(ctx.app)
    uvicorn.run(api, host=host, port=port, log_level="info")


def register(main: click.Group) -> None:
    main.add_command(users)
    main.add_command(audit)
    main.add_command(serve)
