"""Bulk assignment (批量分派): one owner, deadline and plan for the violations ticked on the dashboard.

Each violation goes through :func:`engine.service.violations_ops.act` on its own — its own
authorization check, its own workflow step, its own audit entry — so one that fails (out of
scope, already resolved, changed meanwhile) fails alone, and the result page lists every row with
what happened to it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.responses import Response

from engine.app import App
from engine.auth.principal import AuthError, NotFound
from engine.pages.inspect_violation import violation_url
from engine.pages.render import PageSession, PageWho, page, redirect, safe_next
from engine.pages.workflow_text import parse_date, refusal, status_problem
from engine.service import violations_ops
from engine.violations.tables import STATUS_CN
from engine.violations.workflow import WorkflowError

MAX_KEYS = 500


@dataclass(frozen=True)
class RowResult:
    key: str
    ok: bool
    message: str  # what happened, in Chinese
    title: str = ""  # empty for a violation the principal may not see: nothing about it is shown
    org_name: str = ""
    url: str = ""


def assign_one(
    app: App, who: PageSession, key: str, owner: str, deadline: dt.date, plan: str, request_id: str
) -> RowResult:
    """Assign one violation as ``who``; what happened, never an exception for a refused row."""
    try:
        v, _events = violations_ops.show_violation(app, who.principal, key)
    except NotFound:
        return RowResult(key, False, "未找到该问题，或它不在您的查看范围内")
    seen = {"title": v.title, "org_name": v.org_name or v.org or "", "url": violation_url(key)}
    problem = status_problem(v.status, "assign")
    if problem:
        return RowResult(key, False, problem, **seen)
    try:
        change = violations_ops.act(
            app,
            who.principal,
            key,
            "assign",
            owner=owner,
            deadline=deadline,
            plan=plan,
            request_id=request_id,
        )
    except (WorkflowError, AuthError) as exc:
        return RowResult(key, False, refusal(exc, "assign"), **seen)
    moved = f"{STATUS_CN[change.from_status]} → {STATUS_CN[change.to_status]}"
    return RowResult(key, True, f"已分派（{moved}）", **seen)


def register(api: FastAPI) -> None:
    @api.post("/inspect/bulk-assign", include_in_schema=False, response_model=None)
    def bulk_assign(
        request: Request,
        who: PageWho,
        key: Annotated[list[str], Form(max_length=MAX_KEYS)] = [],  # noqa: B006 (FastAPI copies defaults)
        owner: Annotated[str, Form(max_length=200)] = "",
        deadline: Annotated[str, Form(max_length=40)] = "",
        plan: Annotated[str, Form(max_length=4000)] = "",
        back: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        app: App = request.app.state.partyrules
        back = safe_next(back, "/inspect")
        who.principal.require("violation.work")
        keys = list(dict.fromkeys(k for k in key if k.strip()))
        due, due_problem = parse_date(deadline, "整改期限", required=True)
        missing = [label for value, label in ((owner, "责任人"), (plan, "整改措施")) if not value.strip()]
        problem = (
            ("请先勾选要分派的问题" if not keys else None)
            or ("请填写" + "、".join(missing) if missing else None)
            or due_problem
        )
        if problem:
            return redirect(back, err=problem)
        rid = str(request.state.request_id)
        assert due is not None  # parse_date(required=True) gave a date or a problem
        results = [assign_one(app, who, k, owner.strip(), due, plan.strip(), rid) for k in keys]
        done = sum(r.ok for r in results)
        return page(
            request,
            "inspect_bulk.html",
            who,
            title="批量分派结果",
            results=results,
            done=done,
            failed=len(results) - done,
            owner=owner.strip(),
            deadline=due,
            plan=plan.strip(),
            back=back,
        )
