"""Rendering pages: the Jinja2 environment, who is asking, and how a page answers.

* :func:`page` renders a template with the principal, the CSRF token and a one-line notice;
* :data:`PageWho` is the principal of a page request: a session cookie only (a browser never
  sends a bearer token), with the CSRF token checked on every POST form;
* an unauthenticated page request is sent to ``/login?next=…``; a forbidden or unknown object
  gets the Chinese error page (see :func:`error_page`), never a JSON body.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from engine.auth import accounts
from engine.auth.principal import ROLE_CN, AuthError, Forbidden, NotAuthenticated, Principal
from engine.pack.model import SEVERITY_CN
from engine.violations.tables import STATUS_CN
from engine.web.security import COOKIE

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"

# Where each role starts (the first of the principal's roles in this order wins).
ROLE_HOME = {"secretary": "/branch", "inspector": "/inspect", "rule_admin": "/packs", "admin": "/admin/users"}


def _date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return "" if value is None else str(value)


def make_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["date"] = _date
    env.filters["severity_cn"] = lambda s: SEVERITY_CN.get(s, s)
    env.filters["status_cn"] = lambda s: STATUS_CN.get(s, s)
    env.filters["role_cn"] = lambda s: ROLE_CN.get(s, s)
    env.filters["urlq"] = lambda s: quote(str(s), safe="")
    return env


ENV = make_env()


class PageSession:
    """The principal of a page request, with the session's CSRF token for the forms it renders."""

    def __init__(self, principal: Principal, csrf: str) -> None:
        self.principal = principal
        self.csrf = csrf

    @property
    def name(self) -> str:
        return self.principal.name

    def has_role(self, role: str) -> bool:
        return any(g.role == role for g in self.principal.grants)

    def home(self) -> str:
        for role, url in ROLE_HOME.items():
            if self.has_role(role):
                return url
        return "/account"


def _session(request: Request, form_csrf: str | None) -> PageSession:
    db = request.app.state.partyrules.db
    sid = request.cookies.get(COOKIE)
    if not sid:
        raise NotAuthenticated("请先登录")
    principal, csrf = accounts.session_principal(db, sid)
    unsafe = request.method not in ("GET", "HEAD")
    if unsafe and (not form_csrf or not secrets.compare_digest(form_csrf, csrf)):
        raise Forbidden("表单已过期或来源不明（CSRF 令牌不符），请刷新页面后重试")
    return PageSession(principal, csrf)


async def page_session(request: Request) -> PageSession:
    form_csrf = None
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get("csrf_token")
        form_csrf = value if isinstance(value, str) else None
    form_csrf = form_csrf or request.headers.get("x-csrf-token")
    return await run_in_threadpool(_session, request, form_csrf)


PageWho = Annotated[PageSession, Depends(page_session)]


def page(
    request: Request, template: str, who: PageSession | None = None, status: int = 200, **ctx: Any
) -> HTMLResponse:
    """Render ``template`` with the principal, its CSRF token, the notice from ``?ok=``/``?err=`` and ``ctx``."""
    html = ENV.get_template(template).render(
        request=request,
        who=who,
        csrf=who.csrf if who else "",
        notice=request.query_params.get("ok", ""),
        alert=request.query_params.get("err", ""),
        **ctx,
    )
    return HTMLResponse(html, status_code=status)


def safe_next(url: str | None, default: str = "/") -> str:
    """A same-site path to go back to after login (never another host: no open redirect)."""
    if not url:
        return default
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return default
    return url


def redirect(url: str, ok: str | None = None, err: str | None = None) -> RedirectResponse:
    """303 to ``url`` with a one-line notice shown on the next page."""
    sep = "&" if "?" in url else "?"
    if ok:
        url += f"{sep}ok={quote(ok)}"
    elif err:
        url += f"{sep}err={quote(err)}"
    return RedirectResponse(url, status_code=303)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """The Chinese error page: 401 goes to the login page instead."""
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)  # type: ignore[return-value]
    titles = {403: "无权访问", 404: "未找到", 422: "输入有误", 429: "操作过于频繁"}
    return page(
        request,
        "error.html",
        _maybe_session(request),
        status=status,
        title=titles.get(status, "出错了"),
        message=message,
    )


def _maybe_session(request: Request) -> PageSession | None:
    """The logged-in user for the error page's navigation, if there is one (the page shows either way)."""
    sid = request.cookies.get(COOKIE)
    if not sid:
        return None
    try:
        principal, csrf = accounts.session_principal(request.app.state.partyrules.db, sid)
    except AuthError:
        return None  # an expired session: the error page shows without the navigation
    return PageSession(principal, csrf)
