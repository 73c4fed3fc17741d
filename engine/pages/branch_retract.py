"""Retracting one of the org's records (a meeting or a month's dues) with a reason: the record is
withdrawn by an append-only tombstone, its history kept (see ``facts_ops.retract_fact``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, Response

from engine.auth.principal import NotFound
from engine.pages.branch_common import app_of, chosen_org, with_org
from engine.pages.render import PageSession, PageWho, page, redirect
from engine.service import facts_ops
from engine.subjects.single import MEETING_KIND_CN

RETRACTABLE = {"meeting": "会议记录", "dues": "党费记录"}


def _describe(fact: dict[str, object], names: dict[str, str]) -> str:
    if fact.get("type") == "meeting":
        return f"{fact.get('date')} {MEETING_KIND_CN.get(str(fact.get('kind')), fact.get('kind'))}"
    member = str(fact.get("member"))
    amount = f"{Decimal(str(fact.get('amount'))).normalize():f}"
    return f"{names.get(member, member)} {fact.get('month')} 党费 {amount} 元"


def _back(type_name: str, fact: dict[str, object]) -> str:
    return f"/branch/dues?month={fact.get('month')}" if type_name == "dues" else "/branch"


def register(api: FastAPI) -> None:
    @api.get("/branch/retract", include_in_schema=False, response_class=HTMLResponse)
    def retract_form(request: Request, who: PageWho, type: str, key: str) -> HTMLResponse:
        if type not in RETRACTABLE:
            raise NotFound(f"不能撤回 {type} 类记录")
        app = app_of(request)
        facts_ops.fact_history(app, who.principal, type, key)  # 404 alike for unknown and out of scope
        fact = app.facts.current_version(type, key)
        if fact is None:
            raise NotFound(f"{RETRACTABLE[type]} {key} 已撤回或不存在")
        view = chosen_org(request, who, str(fact["org"]) if type == "meeting" else None)
        return page(
            request,
            "branch_retract.html",
            who,
            title=f"撤回{RETRACTABLE[type]}",
            type=type,
            key=key,
            what=_describe(fact, view.everyone()),
            back=with_org(_back(type, fact), view, who),
        )

    @api.post("/branch/retract", include_in_schema=False)
    def retract_post(
        request: Request,
        who: PageWho,
        type: Annotated[str, Form(max_length=20)],
        key: Annotated[str, Form(max_length=600)],
        reason: Annotated[str, Form(max_length=4000)] = "",
        back: Annotated[str, Form(max_length=2000)] = "/branch",
    ) -> Response:
        if type not in RETRACTABLE:
            raise NotFound(f"不能撤回 {type} 类记录")
        app = app_of(request)
        target = back if back.startswith("/branch") else "/branch"
        if not reason.strip():
            return _again(request, who, type, key, target)
        fact = app.facts.current_version(type, key)
        facts_ops.retract_fact(app, who.principal, type, key, reason.strip(), str(request.state.request_id))
        what = _describe(fact, chosen_org(request, who).everyone()) if fact else key
        return redirect(target, ok=f"已撤回{RETRACTABLE[type]}：{what}（原因：{reason.strip()}）")


def _again(request: Request, who: PageSession, type_name: str, key: str, back: str) -> HTMLResponse:
    """The confirmation page again, saying that a reason is needed."""
    app = app_of(request)
    fact = app.facts.current_version(type_name, key)
    if fact is None:
        raise NotFound(f"{RETRACTABLE[type_name]} {key} 已撤回或不存在")
    view = chosen_org(request, who, str(fact["org"]) if type_name == "meeting" else None)
    return page(
        request,
        "branch_retract.html",
        who,
        status=422,
        title=f"撤回{RETRACTABLE[type_name]}",
        type=type_name,
        key=key,
        what=_describe(fact, view.everyone()),
        back=back,
        error="撤回须说明原因，请填写撤回原因",
    )
