"""One violation's page: what was found, on what basis, the evidence, its history, and the workflow steps.

The page shows the steps the workflow allows from the current status, and only to a principal
who may work the violation; each step is one form that calls
:func:`engine.service.violations_ops.act` (authorization and audit there) and comes back to the
page with a one-line notice.  A violation outside the principal's scope is 未找到, told the same
way as a key that does not exist.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from engine.app import App
from engine.auth.principal import AuthError, NotFound, OrgTree, allows
from engine.pages.render import PageWho, page, redirect
from engine.pages.workflow_text import (
    ACTION_CN,
    EVENT_CN,
    HOW_CN,
    form_problem,
    parse_date,
    possible,
    refusal,
    status_problem,
)
from engine.service import violations_ops
from engine.violations.tables import STATUS_CN, Violation, ViolationEvent
from engine.violations.workflow import WorkflowError

Key = Annotated[str, Query(min_length=1, max_length=600)]
Field = Annotated[str, Form(max_length=4000)]
NOT_FOUND = "未找到该问题，或它不在您的查看范围内"


def _app(request: Request) -> App:
    return request.app.state.partyrules  # type: ignore[no-any-return]


def violation_url(key: str) -> str:
    return f"/inspect/violation?key={quote(key, safe='')}"


def evidence_rows(evidence: dict[str, Any]) -> list[tuple[str, str]]:
    """The evidence as (name, text) pairs: an object one ``key：value`` per line, anything else as JSON."""

    def one(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)

    out = []
    for name, value in evidence.items():
        if isinstance(value, dict) and value:
            text = "\n".join(f"{k}：{one(v)}" for k, v in value.items())
        elif value in ([], {}, None, ""):
            text = "（无）"
        else:
            text = one(value)
        out.append((str(name), text))
    return out


def shown(app: App, who: PageWho, key: str) -> tuple[Violation, list[ViolationEvent]]:
    try:
        return violations_ops.show_violation(app, who.principal, key)
    except NotFound:
        raise NotFound(NOT_FOUND) from None  # the same words whether the key is unknown or out of scope


def register(api: FastAPI) -> None:
    @api.get("/inspect/violation", include_in_schema=False, response_class=HTMLResponse)
    def violation_page(request: Request, who: PageWho, key: Key) -> HTMLResponse:
        app = _app(request)
        v, events = shown(app, who, key)
        can_work = who.principal.may("violation.work") and allows(
            who.principal, "violation.work", v.org, OrgTree.load(app.db)
        )
        return page(
            request,
            "inspect_violation.html",
            who,
            title=v.title,
            v=v,
            events=list(reversed(events)),  # the newest first
            evidence=evidence_rows(v.evidence or {}),
            actions=possible(v.status) if can_work else [],
            can_work=can_work,
            action_cn=ACTION_CN,
            event_cn=EVENT_CN,
            how_cn=HOW_CN,
            today=app.today(),
        )

    @api.post("/inspect/violation/{action}", include_in_schema=False)
    def violation_act(
        request: Request,
        who: PageWho,
        action: Literal["ack", "assign", "resolve", "waive", "reopen"],
        key: Annotated[str, Form(min_length=1, max_length=600)],
        note: Field = "",
        owner: Annotated[str, Form(max_length=200)] = "",
        deadline: Annotated[str, Form(max_length=40)] = "",
        plan: Field = "",
        evidence: Field = "",
        how: Annotated[str, Form(max_length=40)] = "rectified",
        reason: Field = "",
        approver: Annotated[str, Form(max_length=200)] = "",
        expires: Annotated[str, Form(max_length=40)] = "",
    ) -> RedirectResponse:
        app = _app(request)
        v, _events = shown(app, who, key)
        back = violation_url(key)
        form = {
            "owner": owner,
            "plan": plan,
            "evidence": evidence,
            "how": how,
            "reason": reason,
            "approver": approver,
        }
        due, due_problem = parse_date(deadline, "整改期限", required=action == "assign")
        until, until_problem = parse_date(expires, "豁免截止日期", required=False)
        problem = (
            status_problem(v.status, action)
            or form_problem(action, form)
            or due_problem
            or (until_problem if action == "waive" else None)
        )
        if problem:
            return redirect(back, err=problem)
        try:
            change = violations_ops.act(
                app,
                who.principal,
                key,
                action,
                note=note.strip() or None,
                owner=owner.strip(),
                deadline=due,
                plan=plan.strip(),
                evidence=evidence.strip(),
                how=how,
                reason=reason.strip(),
                approver=approver.strip(),
                expires=until,
                request_id=str(request.state.request_id),
            )
        except NotFound:
            raise NotFound(NOT_FOUND) from None
        except (WorkflowError, AuthError) as exc:
            return redirect(back, err=refusal(exc, action))
        moved = f"状态由“{STATUS_CN[change.from_status]}”变为“{STATUS_CN[change.to_status]}”"
        return redirect(back, ok=f"已{ACTION_CN[action]}：{moved}")
