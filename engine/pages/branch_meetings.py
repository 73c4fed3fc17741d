"""Recording a meeting: the attendance checklist from the registry on the meeting's date, the minutes
typed or read from a .docx, submit and see the findings at once; correct a stored meeting."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from starlette.datastructures import UploadFile

from engine.auth.principal import NotFound
from engine.pages.branch_common import FIX_HINTS, app_of, chosen_org, today, with_org
from engine.pages.branch_meeting_form import ATTENDANCE, TOPICS, MeetingForm, kinds_for, new_meeting_id
from engine.pages.render import PageSession, PageWho, page
from engine.service import facts_ops, violations_ops
from engine.service.minutes_docx import MinutesFileError, parse_minutes_docx
from engine.service.roster_ops import OrgView, Person
from engine.subjects.single import MEETING_KIND_CN
from facts.errors import Location


def _people(view: OrgView, form: MeetingForm, fallback: dt.date) -> list[Person]:
    """The roster on the meeting's date (``fallback`` while the date is not valid), plus anyone the stored
    record names who is not on it (so a correction never drops a person silently)."""
    day = form.day() or fallback
    people = view.people(day, form.kind or None)
    known = {p.id for p in people}
    names = view.everyone()
    extra = [Person(m, names.get(m, m), "", ()) for m in form.attendance if m not in known and m in names]
    return people + extra


def _form_page(
    request: Request,
    who: PageSession,
    view: OrgView,
    form: MeetingForm,
    status: int = 200,
    notice: str = "",
) -> HTMLResponse:
    people = _people(view, form, today(request))
    for p in people:
        form.attendance.setdefault(p.id, "present" if not form.existing else "")
    return page(
        request,
        "branch_meeting_form.html",
        who,
        status=status,
        title="更正会议记录" if form.existing else "录入会议",
        view=view,
        form=form,
        people=people,
        kinds=kinds_for(view.kind),
        topics=TOPICS,
        attendance=ATTENDANCE,
        info=notice,
        url=lambda u: with_org(u, view, who),
    )


def register(api: FastAPI) -> None:
    @api.get("/branch/meetings/new", include_in_schema=False, response_class=HTMLResponse)
    def meeting_new(request: Request, who: PageWho, date: str = "", kind: str = "") -> HTMLResponse:
        view = chosen_org(request, who)
        kinds = [k for k, _ in kinds_for(view.kind)]
        form = MeetingForm(
            id=new_meeting_id(view.id),
            org=view.id,
            kind=kind if kind in kinds else kinds[0],
            date=date or today(request).isoformat(),
        )
        return _form_page(request, who, view, form)

    @api.get("/branch/meetings/edit", include_in_schema=False, response_class=HTMLResponse)
    def meeting_edit(request: Request, who: PageWho, id: str) -> HTMLResponse:
        app = app_of(request)
        facts_ops.fact_history(app, who.principal, "meeting", id)  # 404 alike for unknown and out of scope
        fact = app.facts.current_version("meeting", id)
        if fact is None:
            raise NotFound(f"会议记录 {id} 已撤回或不存在")
        view = chosen_org(request, who, fact["org"])
        form = MeetingForm.from_fact(fact)
        return _form_page(request, who, view, form)

    @api.post("/branch/meetings", include_in_schema=False, response_class=HTMLResponse)
    async def meeting_post(request: Request, who: PageWho) -> HTMLResponse:
        data = await request.form()
        action = data.get("action") if isinstance(data.get("action"), str) else "submit"
        given = data.get("org")
        org = given if isinstance(given, str) else None
        upload = data.get("minutes_file")
        blob = await upload.read() if isinstance(upload, UploadFile) and upload.filename else None
        name = upload.filename if isinstance(upload, UploadFile) else ""
        return await run_in_threadpool(_post, request, who, data, str(action), org, blob, name or "")


def _post(
    request: Request, who: PageSession, data: Any, action: str, org: str | None, blob: bytes | None, name: str
) -> HTMLResponse:
    view = chosen_org(request, who, org)
    form = MeetingForm.from_post(data, view.id)
    if action == "roster":
        return _form_page(request, who, view, form, notice="已按会议日期载入名册，请核对出席情况")
    if action == "parse":
        if blob is None:
            form.errors.append("请先选择会议记录文件（.docx）")
            return _form_page(request, who, view, form, status=422)
        try:
            parsed = parse_minutes_docx(blob, name)
        except MinutesFileError as exc:
            form.errors.append(str(exc))
            return _form_page(request, who, view, form, status=422)
        people = _people(view, form, today(request))
        filled = form.fill_from(parsed, people)
        if not filled:
            form.errors.append(
                f"{name}：没有找到“时间：”“地点：”“内容：”等栏目，请对照模板填写或直接在下方录入"
            )
            return _form_page(request, who, view, form, status=422)
        return _form_page(
            request, who, view, form, notice=f"已从 {name} 读取：{'、'.join(filled)}。请核对后提交"
        )
    people = _people(view, form, today(request))
    form.errors = form.check(people, [k for k, _ in kinds_for(view.kind)], today(request))
    if form.errors:
        return _form_page(request, who, view, form, status=422)
    app = app_of(request)
    got = facts_ops.submit_facts(
        app,
        who.principal,
        [(Location("网页", 1), form.fact(people))],
        source="web",
        request_id=str(request.state.request_id),
    )
    report = got.report
    if report.problems:
        form.errors = [f"记录未保存：{p.field} {p.message}" for p in report.problems]
        return _form_page(request, who, view, form, status=422)
    judgement = got.judgement
    resolved = []
    for key in judgement.stored.resolved if judgement and judgement.stored else []:
        try:
            resolved.append(violations_ops.show_violation(app, who.principal, key)[0])
        except NotFound:
            continue
    status = report.stored[0].status if report.stored else "unchanged"
    return page(
        request,
        "branch_meeting_result.html",
        who,
        title="提交结果",
        view=view,
        form=form,
        kind_cn=MEETING_KIND_CN.get(form.kind, form.kind),
        stored=status,
        present=len([m for m, s in form.attendance.items() if s == "present"]),
        findings=judgement.findings if judgement else [],
        judge_errors=judgement.errors if judgement else [],
        standing=judgement.standing if judgement else [],
        resolved=resolved,
        hints=FIX_HINTS,
        url=lambda u: with_org(u, view, who),
    )
