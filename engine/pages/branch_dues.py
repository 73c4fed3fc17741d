"""Party dues for a month as one table (党费录入): a row per member of the org that month, typed in and
submitted together; the findings of the dues rules shown at once; a row corrected by typing it again or
retracted with a reason."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from engine.pages.branch_common import FIX_HINTS, app_of, chosen_org, parse_day, today, with_org
from engine.pages.render import PageSession, PageWho, page
from engine.periods import PeriodError, month_of, parse_period
from engine.service import facts_ops
from engine.service.roster_ops import OrgView, Person, month_dues
from facts.errors import Location

MAX_AMOUNT = Decimal("100000")


def _month(text: str, fallback: dt.date) -> tuple[str, str | None]:
    """(YYYY-MM, error): a bad month falls back to ``fallback``'s, with a Chinese message."""
    if not text:
        return month_of(fallback).label, None
    try:
        period = parse_period(text.strip())
    except PeriodError:
        period = None
    if period is None or period.granularity != "month":
        return month_of(fallback).label, f"月份“{text}”无效，请按 年-月 填写，例如 2017-06"
    return period.label, None


def _people(view: OrgView, month: str) -> list[Person]:
    """Everyone who belongs to the org at some point of the month (on its first or last day)."""
    period = parse_period(month)
    seen: dict[str, Person] = {}
    for day in (period.start, period.end):
        for p in view.people(day):
            seen.setdefault(p.id, p)
    return [p for p in seen.values() if p.status in ("full", "probationary")]


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.replace(",", "").replace("，", "").strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _rows(
    data: Any, people: list[Person], month: str, day: dt.date, stored: dict[str, dict[str, str]]
) -> tuple[dict[str, dict[str, str]], list[Any], list[str]]:
    """(what was typed per member, dues facts, Chinese errors) from the posted table; rows left as
    stored are not checked or submitted again."""
    typed: dict[str, dict[str, str]] = {}
    facts: list[dict[str, Any]] = []
    errors: list[str] = []
    for p in people:
        row = {k: str(data.get(f"{k}_{p.id}") or "").strip() for k in ("base", "amount", "paid")}
        typed[p.id] = row
        if not any(row.values()) or row == stored.get(p.id):
            continue
        amount = _decimal(row["amount"]) if row["amount"] else None
        paid = parse_day(row["paid"]) if row["paid"] else None
        base = _decimal(row["base"]) if row["base"] else None
        if not row["amount"]:
            errors.append(f"{p.name}：请填写党费金额")
        elif amount is None or amount < 0 or amount > MAX_AMOUNT:
            errors.append(f"{p.name}：党费金额“{row['amount']}”不是有效金额（元，例如 45 或 45.50）")
        if not row["paid"]:
            errors.append(f"{p.name}：请填写缴纳日期")
        elif paid is None:
            errors.append(f"{p.name}：缴纳日期“{row['paid']}”不是有效日期，请按 年-月-日 填写")
        elif paid > day:
            errors.append(f"{p.name}：缴纳日期 {row['paid']} 晚于今天，只能录入已缴纳的党费")
        if row["base"] and (base is None or base < 0):
            errors.append(f"{p.name}：工资收入基数“{row['base']}”不是有效金额")
        if amount is not None and paid is not None and (not row["base"] or base is not None):
            fact: dict[str, Any] = {
                "type": "dues",
                "member": p.id,
                "month": month,
                "amount": str(amount),
                "paid_on": paid.isoformat(),
                "source": "网页录入",
            }
            if base is not None:
                fact["base"] = str(base)
            facts.append(fact)
    return typed, facts, errors


def _stored_rows(app: Any, people: list[Person], month: str) -> dict[str, dict[str, str]]:
    stored = month_dues(app, [p.id for p in people], month)

    def money(value: object) -> str:
        return "" if value is None else f"{Decimal(str(value)).normalize():f}"

    return {
        m: {
            "base": money(r.get("base")),
            "amount": money(r.get("amount")),
            "paid": str(r.get("paid_on") or ""),
        }
        for m, r in stored.items()
    }


def _dues_page(request: Request, who: PageSession, view: OrgView, month: str, **ctx: Any) -> HTMLResponse:
    app = app_of(request)
    people = _people(view, month)
    stored = _stored_rows(app, people, month)
    rows = ctx.pop("typed", None) or stored
    return page(
        request,
        "branch_dues.html",
        who,
        status=ctx.pop("status", 200),
        title="党费录入",
        view=view,
        month=month,
        people=people,
        rows=rows,
        stored=stored,
        hints=FIX_HINTS,
        url=lambda u: with_org(u, view, who),
        **ctx,
    )


def register(api: FastAPI) -> None:
    @api.get("/branch/dues", include_in_schema=False, response_class=HTMLResponse)
    def dues_form(request: Request, who: PageWho, month: str = "") -> HTMLResponse:
        view = chosen_org(request, who)
        chosen, error = _month(month, today(request))
        return _dues_page(request, who, view, chosen, errors=[error] if error else [])

    @api.post("/branch/dues", include_in_schema=False, response_class=HTMLResponse)
    async def dues_post(request: Request, who: PageWho) -> HTMLResponse:
        data = await request.form()
        return await run_in_threadpool(_post, request, who, data)


def _post(request: Request, who: PageSession, data: Any) -> HTMLResponse:
    given = data.get("org")
    view = chosen_org(request, who, given if isinstance(given, str) else None)
    month, error = _month(str(data.get("month") or ""), today(request))
    if error:
        return _dues_page(request, who, view, month, errors=[error], status=422)
    people = _people(view, month)
    stored = _stored_rows(app_of(request), people, month)
    typed, facts, errors = _rows(data, people, month, today(request), stored)
    if errors:
        return _dues_page(request, who, view, month, typed=typed, errors=errors, status=422)
    if not facts:
        return _dues_page(
            request,
            who,
            view,
            month,
            typed=typed,
            errors=["没有新填或改动的党费：请填写或修改后再保存"],
            status=422,
        )
    got = facts_ops.submit_facts(
        app_of(request),
        who.principal,
        [(Location("网页", i + 1), f) for i, f in enumerate(facts)],
        source="web",
        request_id=str(request.state.request_id),
    )
    r, j = got.report, got.judgement
    names = {p.id: p.name for p in people}
    problems = [f"第{p.location.line}行 {p.field}：{p.message}" for p in r.problems]
    summary = f"已保存 {r.added} 条，更正 {r.corrected} 条，未变 {r.unchanged} 条"
    return _dues_page(
        request,
        who,
        view,
        month,
        errors=problems,
        summary=summary,
        findings=j.findings if j else [],
        resolved=len(j.stored.resolved) if j and j.stored else 0,
        names=names,
        status=422 if problems and not (r.added or r.corrected or r.unchanged) else 200,
    )
