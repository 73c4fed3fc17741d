"""Login, logout and the start page that sends each role to its own home."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from engine.auth import accounts
from engine.auth.principal import NotAuthenticated
from engine.pages.render import PageWho, page, redirect, safe_next
from engine.web.security import COOKIE, set_session_cookie


def register(api: FastAPI) -> None:
    @api.get("/", include_in_schema=False)
    def start(who: PageWho) -> RedirectResponse:
        return RedirectResponse(who.home(), status_code=303)

    @api.get("/login", include_in_schema=False, response_class=HTMLResponse)
    def login_form(request: Request, next: str | None = None) -> HTMLResponse:
        return page(request, "login.html", None, next=safe_next(next, ""), title="登录")

    @api.post("/login", include_in_schema=False)
    async def login_post(
        request: Request,
        username: Annotated[str, Form(max_length=200)] = "",
        password: Annotated[str, Form(max_length=1000)] = "",
        next: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        app = request.app.state.partyrules
        limiter = request.app.state.limiter
        client = request.client.host if request.client else "?"
        username = username.strip()
        if not username or not password:
            return page(
                request,
                "login.html",
                None,
                status=422,
                next=next,
                username=username,
                error="请输入用户名和密码",
                title="登录",
            )
        wait = limiter.retry_after(client, username)
        if wait:
            return page(
                request,
                "login.html",
                None,
                status=429,
                next=next,
                username=username,
                error=f"登录失败次数过多，请 {wait} 秒后再试",
                title="登录",
            )
        try:
            principal = await run_in_threadpool(accounts.authenticate, app.db, username, password)
        except NotAuthenticated:
            limiter.failed(client, username)
            return page(
                request,
                "login.html",
                None,
                status=401,
                next=next,
                username=username,
                error="用户名或密码错误，或账号已停用",
                title="登录",
            )
        sid, _csrf = await run_in_threadpool(accounts.open_session, app.db, principal)
        response = RedirectResponse(safe_next(next, "/"), status_code=303)
        set_session_cookie(response, request, sid)
        return response

    @api.post("/logout", include_in_schema=False)
    def logout_post(request: Request, who: PageWho) -> Response:
        sid = request.cookies.get(COOKIE)
        if sid:
            accounts.close_session(request.app.state.partyrules.db, sid)
        response = redirect("/login", ok="已退出登录")
        response.delete_cookie(COOKIE, path="/")
        return response
