"""The administrator's account pages (账号管理): list, add with roles, disable or enable, reset a password.

Every change goes through :mod:`engine.auth.accounts` (which requires ``account.manage`` and
writes the audit log).  The forms are checked here first so that a mistake is told in Chinese
and names the field: a taken name, a short password, an unknown role or org.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from engine.app import App
from engine.auth import accounts
from engine.auth.principal import ROLE_CN, ROLES, AuthError, Grant, NotFound
from engine.pages.render import PageSession, PageWho, page, redirect
from facts.tables import OrgRow

_ORG = OrgRow.__table__  # type: ignore[attr-defined]
MAX_ORG_OPTIONS = 500
Name = Annotated[str, Form(max_length=200)]
Password = Annotated[str, Form(max_length=1000)]
# roles whose grant must name an org: a secretary writes the facts of one branch
NEEDS_ORG = {"secretary"}


@dataclass(frozen=True)
class RoleText:
    role: str
    org: str | None
    text: str  # 支部书记 · 第一支部（b1）


def _app(request: Request) -> App:
    return request.app.state.partyrules  # type: ignore[no-any-return]


def org_names(app: App) -> dict[str, str]:
    with app.db.connect() as conn:
        return {r.id: r.name for r in conn.execute(sa.select(_ORG.c.id, _ORG.c.name).order_by(_ORG.c.id))}


def role_text(g: Grant, names: dict[str, str]) -> RoleText:
    where = "全部组织" if g.org is None else f"{names.get(g.org, '未知组织')}（{g.org}）"
    return RoleText(g.role, g.org, f"{ROLE_CN.get(g.role, g.role)} · {where}")


def user_url(name: str) -> str:
    return f"/admin/user?name={quote(name, safe='')}"


def role_specs(role: str, org: str, more: str, names: dict[str, str]) -> tuple[list[str], str | None]:
    """The ``role@org`` specs of the add form, or the problem with them (in Chinese, naming the field)."""
    specs = []
    if role:
        specs.append(f"{role}@{org.strip()}" if org.strip() else role)
    specs += [s.strip() for s in re.split(r"[,，;；\s]+", more) if s.strip()]
    if not specs:
        return [], "请选择角色"
    for spec in specs:
        r, _, o = spec.partition("@")
        if r not in ROLES:
            allowed = "、".join(f"{x}（{ROLE_CN[x]}）" for x in ROLES)
            return [], f"角色“{r}”无效，可选：{allowed}"
        if o and o not in names:
            return [], f"组织“{o}”不存在：请填写组织编号（如 b1），可从列表中选择"
        if not o and r in NEEDS_ORG:
            return [], f"{ROLE_CN[r]}须指定所在组织（如 {r}@b1）"
    return list(dict.fromkeys(specs)), None


def password_problem(password: str, again: str) -> str | None:
    if len(password) < accounts.MIN_PASSWORD:
        return f"密码至少 {accounts.MIN_PASSWORD} 个字符"
    if password != again:
        return "两次输入的密码不一致"
    return None


def _find(app: App, who: PageSession, name: str) -> accounts.AccountInfo:
    key = accounts.name_key(name)
    for info in accounts.list_users(app.db, who.principal):
        if accounts.name_key(info.name) == key:
            return info
    raise NotFound("没有这个账号")


def register(api: FastAPI) -> None:  # noqa: C901 (the account pages in one place)
    @api.get("/admin/users", include_in_schema=False, response_class=HTMLResponse)
    def users_page(request: Request, who: PageWho) -> HTMLResponse:
        app = _app(request)
        users = accounts.list_users(app.db, who.principal)
        names = org_names(app)
        return page(
            request,
            "admin_users.html",
            who,
            title="账号管理",
            users=[(u, [role_text(g, names) for g in u.grants]) for u in users],
            roles=ROLE_CN,
            orgs=list(names.items())[:MAX_ORG_OPTIONS],
            me=accounts.name_key(who.name),
            name_key=accounts.name_key,
            user_url=user_url,
            min_password=accounts.MIN_PASSWORD,
        )

    @api.get("/admin/user", include_in_schema=False, response_class=HTMLResponse)
    def user_page(
        request: Request, who: PageWho, name: Annotated[str, Query(max_length=200)]
    ) -> HTMLResponse:
        app = _app(request)
        info = _find(app, who, name)
        names = org_names(app)
        return page(
            request,
            "admin_user.html",
            who,
            title=f"账号 {info.name}",
            u=info,
            roles=[role_text(g, names) for g in info.grants],
            is_me=accounts.name_key(info.name) == accounts.name_key(who.name),
            min_password=accounts.MIN_PASSWORD,
        )

    @api.post("/admin/users/add", include_in_schema=False)
    def user_add(
        request: Request,
        who: PageWho,
        name: Name = "",
        role: Annotated[str, Form(max_length=40)] = "",
        org: Name = "",
        more: Annotated[str, Form(max_length=2000)] = "",
        password: Password = "",
        password2: Password = "",
    ) -> RedirectResponse:
        app = _app(request)
        who.principal.require("account.manage")
        name = name.strip()
        names = org_names(app)
        specs, problem = role_specs(role, org, more, names)
        taken = {accounts.name_key(u.name) for u in accounts.list_users(app.db, who.principal)}
        problem = (
            ("请填写用户名" if not name else None)
            or (f"用户名“{name}”已被使用（不区分大小写）" if accounts.name_key(name) in taken else None)
            or problem
            or password_problem(password, password2)
        )
        if problem:
            return redirect("/admin/users", err=f"未添加账号：{problem}")
        try:
            info = accounts.add_user(
                app.db, who.principal, name, specs, password, str(request.state.request_id)
            )
        except AuthError as exc:
            return redirect("/admin/users", err=f"未添加账号：{exc}")
        roles = "、".join(role_text(g, names).text for g in info.grants)
        return redirect("/admin/users", ok=f"已添加账号 {info.name}（{roles}）")

    @api.post("/admin/users/disable", include_in_schema=False)
    def user_disable(
        request: Request,
        who: PageWho,
        name: Name,
        disabled: Annotated[bool, Form()],
        back: Annotated[str, Form(max_length=20)] = "list",
    ) -> RedirectResponse:
        app = _app(request)
        info = _find(app, who, name)
        target = user_url(info.name) if back == "user" else "/admin/users"
        if disabled and accounts.name_key(info.name) == accounts.name_key(who.name):
            return redirect(target, err="不能停用当前登录的账号（请用另一个管理员账号操作）")
        accounts.set_disabled(app.db, who.principal, info.name, disabled, str(request.state.request_id))
        if disabled:
            return redirect(target, ok=f"已停用账号 {info.name}：其登录会话已全部失效")
        return redirect(target, ok=f"已启用账号 {info.name}")

    @api.post("/admin/users/password", include_in_schema=False)
    def user_password(
        request: Request, who: PageWho, name: Name, password: Password = "", password2: Password = ""
    ) -> RedirectResponse:
        app = _app(request)
        info = _find(app, who, name)
        problem = password_problem(password, password2)
        if problem:
            return redirect(user_url(info.name), err=f"密码未重置：{problem}")
        accounts.set_password(app.db, who.principal, info.name, password, str(request.state.request_id))
        return redirect(user_url(info.name), ok=f"已重置 {info.name} 的密码：其登录会话已全部失效")
