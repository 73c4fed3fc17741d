"""Rectification by the org (整改): the secretary writes what was done and attaches evidence files; the
violation goes to 整改中 for an inspector to resolve (``engine.service.rectify_ops``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from engine.pages.branch_common import app_of, chosen_org, with_org
from engine.pages.render import PageSession, PageWho, page, redirect
from engine.service import violations_ops
from engine.service.rectify_ops import (
    MAX_FILE_BYTES,
    MAX_FILES,
    EvidenceFile,
    RectifyError,
    list_evidence,
    read_evidence,
    report_rectification,
)

ACTION_CN = {
    "detected": "发现",
    "recurred": "再次发现",
    "auto_resolved": "自动解决",
    "ack": "确认",
    "assign": "布置整改",
    "report": "提交整改报告",
    "resolve": "解决",
    "waive": "豁免",
    "reopen": "重新打开",
    "escalate": "升级提醒",
    "waiver_expired": "豁免到期",
}


def _local(app_tz: str) -> Callable[[dt.datetime | None], dt.datetime | None]:
    """Times are stored in UTC (naive on SQLite): shown in the configured time zone."""
    zone = ZoneInfo(app_tz)

    def local(when: dt.datetime | None) -> dt.datetime | None:
        if when is None:
            return None
        return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(zone)

    return local


def _rectify_page(
    request: Request, who: PageSession, key: str, status: int = 200, text: str = "", error: str = ""
) -> HTMLResponse:
    app = app_of(request)
    v, events = violations_ops.show_violation(app, who.principal, key)
    view = chosen_org(request, who, v.org)
    return page(
        request,
        "branch_rectify.html",
        who,
        status=status,
        title="整改报告",
        view=view,
        v=v,
        events=events,
        evidence=list_evidence(app, who.principal, key),
        action_cn=ACTION_CN,
        text=text,
        error=error,
        max_mb=MAX_FILE_BYTES // (1024 * 1024),
        max_files=MAX_FILES,
        local=_local(app.config.check.timezone),
        url=lambda u: with_org(u, view, who),
    )


def register(api: FastAPI) -> None:
    @api.get("/branch/rectify", include_in_schema=False, response_class=HTMLResponse)
    def rectify_form(request: Request, who: PageWho, key: str) -> HTMLResponse:
        return _rectify_page(request, who, key)

    @api.post("/branch/rectify", include_in_schema=False)
    async def rectify_post(request: Request, who: PageWho) -> Response:
        data = await request.form()
        files: list[EvidenceFile] = []
        for item in data.getlist("files"):
            if isinstance(item, UploadFile) and item.filename:
                # read at most one byte past the limit: the service refuses it with the size in the message
                blob = await item.read(MAX_FILE_BYTES + 1)
                files.append(EvidenceFile(item.filename, item.content_type or "", blob))
        key = str(data.get("key") or "")
        text = str(data.get("text") or "")
        return await run_in_threadpool(_post, request, who, key, text, files)

    @api.get("/branch/evidence/{evidence_id}", include_in_schema=False)
    def evidence_file(request: Request, who: PageWho, evidence_id: int) -> Response:
        info, data = read_evidence(app_of(request), who.principal, evidence_id)
        disposition = f"attachment; filename*=UTF-8''{quote(info.filename)}"
        return Response(
            data,
            media_type="application/octet-stream",
            headers={
                "Content-Disposition": disposition,
                "X-Content-Type-Options": "nosniff",
                "X-Evidence-SHA256": info.sha256,
            },
        )


def _post(request: Request, who: PageSession, key: str, text: str, files: list[EvidenceFile]) -> Response:
    app = app_of(request)
    try:
        done = report_rectification(app, who.principal, key, text, files, str(request.state.request_id))
    except RectifyError as exc:
        note = "（所选文件需重新选择）" if files else ""
        return _rectify_page(request, who, key, status=422, text=text, error=f"{exc}{note}")
    shown = "；".join(f"{e.filename} SHA-256 {e.sha256[:12]}…" for e in done.evidence)
    ok = "已提交整改报告，状态：整改中，待纪检人员审核" + (f"。佐证材料：{shown}" if shown else "")
    return redirect(f"/branch/rectify?key={quote(key, safe='')}", ok=ok)
