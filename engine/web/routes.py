"""The endpoints.  Each handler parses, calls one service function, and shapes the answer; no decisions here.

Handlers are plain ``def``: FastAPI runs them in its thread pool, so the blocking
database calls of the library never stall the event loop.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, File, Form, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from engine.app import App
from engine.audit.verify import verify
from engine.auth import accounts
from engine.auth.principal import NotAuthenticated, Principal
from engine.cli.violations_cmds import violation_json
from engine.report.render_html import render_html
from engine.report.render_xlsx import build_workbook
from engine.service import facts_ops, packs_ops, rectify_ops, report_ops, violations_ops
from engine.web.security import COOKIE, authenticate, set_session_cookie, xlsx_response
from facts.errors import FieldProblem, Location

Key = Annotated[str, Query(min_length=1, max_length=600)]


async def current(request: Request) -> Principal:
    form_csrf = None
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        value = (await request.form()).get("csrf_token")
        form_csrf = value if isinstance(value, str) else None
    return await run_in_threadpool(authenticate, request, form_csrf)


Who = Annotated[Principal, Depends(current)]


def _app(request: Request) -> App:
    return request.app.state.partyrules  # type: ignore[no-any-return]


def _rid(request: Request) -> str:
    return str(request.state.request_id)


class WorkflowBody(BaseModel):
    key: str = Field(min_length=1, max_length=600)
    note: str | None = Field(default=None, max_length=4000)
    owner: str | None = Field(default=None, max_length=200)
    deadline: dt.date | None = None
    plan: str | None = Field(default=None, max_length=4000)
    evidence: str | None = Field(default=None, max_length=4000)
    reason: str | None = Field(default=None, max_length=4000)
    approver: str | None = Field(default=None, max_length=200)
    expires: dt.date | None = None


class RetractBody(BaseModel):
    key: str = Field(min_length=1, max_length=600)
    reason: str = Field(min_length=1, max_length=4000)


class PackBody(BaseModel):
    files: dict[str, str] = Field(description="file name in the pack -> its text (YAML rules, CSV tables)")


class BacktestBody(BaseModel):
    period: str = Field(min_length=4, max_length=40, examples=["2017"])
    as_of: dt.date | None = None


class UserBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    roles: list[str] = Field(min_length=1, max_length=50, examples=[["secretary@b1"]])
    password: str | None = Field(default=None, max_length=1000)


def _problem(p: FieldProblem) -> dict[str, Any]:
    return {"item": p.location.line, "field": p.field, "message": p.message, "text": str(p)}


def register(api: FastAPI) -> None:  # noqa: C901 (one place lists every endpoint)
    @api.post("/api/login", tags=["session"])
    def login(
        request: Request,
        response: Response,
        username: Annotated[str, Form(max_length=200)],
        password: Annotated[str, Form(max_length=1000)],
    ) -> dict[str, str]:
        """Password login (form fields): sets the session cookie; returns the CSRF token for later requests."""
        limiter = request.app.state.limiter
        client = request.client.host if request.client else "?"
        wait = limiter.retry_after(client, username)
        if wait:
            raise _TooMany(wait)
        try:
            principal = accounts.authenticate(_app(request).db, username, password)
        except NotAuthenticated:
            limiter.failed(client, username)
            raise
        sid, csrf = accounts.open_session(_app(request).db, principal)
        set_session_cookie(response, request, sid)
        return {"name": principal.name, "csrf_token": csrf}

    @api.post("/api/logout", tags=["session"])
    def logout(request: Request, response: Response, who: Who) -> dict[str, str]:
        sid = request.cookies.get(COOKIE)
        if sid:
            accounts.close_session(_app(request).db, sid)
        response.delete_cookie(COOKIE, path="/")
        return {"name": who.name}

    @api.get("/api/me", tags=["session"])
    def me(who: Who) -> dict[str, Any]:
        return {"name": who.name, "roles": [str(g) for g in who.grants]}

    # -- facts --------------------------------------------------------------------------------
    @api.post("/api/facts", tags=["facts"])
    def submit(request: Request, who: Who, body: Annotated[Any, Body()]) -> JSONResponse:
        """Submit one fact (a JSON object) or a batch (a JSON array), in the facts interchange format.

        Each item is validated like a line of an import (same messages, ``item`` is its 1-based
        position); valid items are stored and judged at once; invalid ones are listed.  200 if
        anything was stored or already present; 404 if every item named an org or member that
        is unknown or outside the caller's scope (the two are not told apart); else 422.
        """
        objs = body if isinstance(body, list) else [body]
        items: list[Any] = [
            (Location("request", i + 1), o)
            if isinstance(o, dict)
            else FieldProblem(Location("request", i + 1), "", "expected a JSON object (one fact)")
            for i, o in enumerate(objs)
        ]
        got = facts_ops.submit_facts(_app(request), who, items, source="api", request_id=_rid(request))
        r, j = got.report, got.judgement
        payload = {
            "added": r.added,
            "unchanged": r.unchanged,
            "corrected": r.corrected,
            "rejected": r.rejected,
            "stored": [
                {
                    "item": s.location.line,
                    "type": s.fact.type,  # type: ignore[attr-defined]
                    "key": s.key,
                    "status": s.status,
                    "version": s.version,
                }
                for s in r.stored
            ],
            "problems": [_problem(p) for p in r.problems],
            "findings": [
                {"rule": f.rule, "severity": f.severity, "message": f.message, "period": f.period}
                for f in (j.findings if j else [])
            ],
            "standing": j.standing if j else [],
            "judge_errors": j.errors if j else [],
            "altered": r.altered,
        }
        status = 200
        if r.added + r.unchanged + r.corrected == 0:
            unknown = r.problems and all(p.message.startswith("unknown ") for p in r.problems)
            status = 404 if unknown else 422
        return JSONResponse(jsonable_encoder(payload), status_code=status)

    @api.get("/api/facts/{type_name}", tags=["facts"])
    def facts_list(
        request: Request,
        who: Who,
        type_name: str,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[dict[str, Any]]:
        """Current facts of one type that the caller may read."""
        return facts_ops.read_facts(_app(request), who, type_name, limit, offset)

    @api.get("/api/facts/{type_name}/history", tags=["facts"])
    def facts_history(request: Request, who: Who, type_name: str, key: Key) -> list[dict[str, Any]]:
        """Every version of one fact (corrections and retractions included), oldest first."""
        versions = facts_ops.fact_history(_app(request), who, type_name, key)
        return jsonable_encoder([dataclasses.asdict(v) for v in versions])  # type: ignore[no-any-return]

    @api.post("/api/facts/{type_name}/retract", tags=["facts"])
    def facts_retract(request: Request, who: Who, type_name: str, body: RetractBody) -> dict[str, Any]:
        """Withdraw a fact: an append-only tombstone version with the reason; history keeps everything."""
        version = facts_ops.retract_fact(_app(request), who, type_name, body.key, body.reason, _rid(request))
        return {"type": type_name, "key": body.key, "version": version, "retracted": True}

    # -- violations ---------------------------------------------------------------------------
    @api.get("/api/violations", tags=["violations"])
    def violations_list(
        request: Request,
        who: Who,
        status: str | None = None,
        rule: str | None = None,
        org: str | None = None,
        period: str | None = None,
    ) -> list[dict[str, Any]]:
        rows = violations_ops.list_violations(_app(request), who, status, rule, org, period)
        return [violation_json(v) for v in rows]

    @api.get("/api/violations/show", tags=["violations"])
    def violations_show(request: Request, who: Who, key: Key) -> dict[str, Any]:
        v, events = violations_ops.show_violation(_app(request), who, key)
        log = [
            {
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "from": e.from_status,
                "to": e.to_status,
                "note": e.note,
            }
            for e in events
        ]
        return jsonable_encoder({**violation_json(v), "log": log})  # type: ignore[no-any-return]

    @api.post("/api/violations/{action}", tags=["violations"])
    def violations_act(
        request: Request,
        who: Who,
        action: Literal["ack", "assign", "resolve", "waive", "reopen"],
        body: WorkflowBody,
    ) -> dict[str, Any]:
        """One workflow step (ack, assign, resolve, waive, reopen); a waiver's approver is another account."""
        fields = body.model_dump(exclude={"key"})
        change = violations_ops.act(_app(request), who, body.key, action, request_id=_rid(request), **fields)
        return {
            "key": change.key,
            "action": change.action,
            "from": change.from_status,
            "to": change.to_status,
        }

    @api.post("/api/rectifications", tags=["violations"])
    def violations_report(
        request: Request,
        who: Who,
        key: Annotated[str, Form(min_length=1, max_length=600)],
        text: Annotated[str, Form(min_length=1, max_length=rectify_ops.MAX_TEXT)],
        files: Annotated[list[UploadFile] | None, File()] = None,
    ) -> dict[str, Any]:
        """A rectification report (整改说明) with evidence files, by the org's secretary (or an inspector):
        the violation goes to ``rectifying``; each file is stored with its SHA-256 (at most 10, 10 MB each)."""
        given = [
            rectify_ops.EvidenceFile(
                f.filename or "file", f.content_type or "", f.file.read(rectify_ops.MAX_FILE_BYTES + 1)
            )
            for f in files or []
        ]
        done = rectify_ops.report_rectification(_app(request), who, key, text, given, _rid(request))
        return {
            "key": done.change.key,
            "from": done.change.from_status,
            "to": done.change.to_status,
            "evidence": [
                {"id": e.id, "name": e.filename, "size": e.size, "sha256": e.sha256} for e in done.evidence
            ],
        }

    @api.get("/api/rectifications/evidence", tags=["violations"])
    def violations_evidence(request: Request, who: Who, key: Key) -> list[dict[str, Any]]:
        """The evidence files of one violation's rectification reports (name, size, SHA-256, who, when)."""
        return jsonable_encoder(  # type: ignore[no-any-return]
            [dataclasses.asdict(e) for e in rectify_ops.list_evidence(_app(request), who, key)]
        )

    # -- reports ------------------------------------------------------------------------------
    @api.get("/api/reports", tags=["reports"], response_model=None)
    def reports(
        request: Request,
        who: Who,
        period: Annotated[str, Query(min_length=4, max_length=40)],
        org: str | None = None,
        format: Literal["json", "xlsx", "html"] = "json",
        trend: Annotated[int, Query(ge=1, le=60)] = 4,
    ) -> Response:
        rep = report_ops.report_for(_app(request), who, period, org, trend)
        if format == "html":
            return HTMLResponse(render_html(rep))
        if format == "xlsx":
            return xlsx_response(build_workbook(rep), f"report-{rep.period.label}.xlsx")
        return JSONResponse(
            jsonable_encoder(
                {
                    "title": rep.title,
                    "period": rep.period.label,
                    **{k: v for k, v in dataclasses.asdict(rep).items() if k != "period"},
                }
            )
        )

    # -- rule packs ---------------------------------------------------------------------------
    @api.get("/api/packs", tags=["packs"])
    def packs_list(request: Request, who: Who) -> dict[str, Any]:
        return jsonable_encoder(packs_ops.list_packs(_app(request), who))  # type: ignore[no-any-return]

    @api.post("/api/packs", tags=["packs"])
    def packs_upload(request: Request, who: Who, body: PackBody) -> dict[str, Any]:
        """Upload a candidate pack (validated at once); approve it later from another account."""
        return packs_ops.upload(_app(request), who, body.files, _rid(request))

    @api.get("/api/packs/{pack_hash}/diff", tags=["packs"])
    def packs_diff(request: Request, who: Who, pack_hash: str) -> dict[str, Any]:
        return jsonable_encoder(packs_ops.diff(_app(request), who, pack_hash))  # type: ignore[no-any-return]

    @api.post("/api/packs/{pack_hash}/backtest", tags=["packs"])
    def packs_backtest(request: Request, who: Who, pack_hash: str, body: BacktestBody) -> dict[str, Any]:
        result = packs_ops.backtest(_app(request), who, pack_hash, body.period, body.as_of)
        return jsonable_encoder(result)  # type: ignore[no-any-return]

    @api.post("/api/packs/{pack_hash}/approve", tags=["packs"])
    def packs_approve(request: Request, who: Who, pack_hash: str) -> dict[str, Any]:
        return packs_ops.approve(_app(request), who, pack_hash, _rid(request))

    # -- accounts and audit -------------------------------------------------------------------
    @api.get("/api/users", tags=["accounts"])
    def users_list(request: Request, who: Who) -> list[dict[str, Any]]:
        return [
            {"name": u.name, "roles": [str(g) for g in u.grants], "disabled": u.disabled}
            for u in accounts.list_users(_app(request).db, who)
        ]

    @api.post("/api/users", tags=["accounts"])
    def users_add(request: Request, who: Who, body: UserBody) -> dict[str, Any]:
        info = accounts.add_user(_app(request).db, who, body.name, body.roles, body.password, _rid(request))
        return {"name": info.name, "roles": [str(g) for g in info.grants]}

    @api.get("/api/audit/verify", tags=["accounts"])
    def audit_verify(request: Request, who: Who) -> dict[str, Any]:
        who.require("audit.verify")
        report = verify(_app(request).db)
        return {
            "ok": report.ok,
            "entries": report.entries,
            "facts": report.facts,
            "events": report.events,
            "problems": report.problems,
        }

    @api.exception_handler(_TooMany)
    async def too_many(_request: Request, exc: _TooMany) -> JSONResponse:
        return JSONResponse(
            {"detail": f"登录失败次数过多，请 {exc.wait} 秒后再试"},
            status_code=429,
            headers={"Retry-After": str(exc.wait)},
        )


class _TooMany(Exception):
    def __init__(self, wait: int) -> None:
        super().__init__(wait)
        self.wait = wait
