"""The rule admin's pages: pack versions, one upload's diff in Chinese, its backtest, approval by another account.

* ``/packs`` — the pack in use, what waits for approval, every version (who uploaded it and when,
  its hash, who approved it);
* ``/packs/{hash}`` — an uploaded version: what changed against the pack in use, field by field,
  the backtest form and the approve button (disabled, with the reason, for the uploader);
* ``/packs/{hash}/backtest?period=&as_of=`` — findings the change adds and removes, by rule and by
  org, with samples;
* ``POST /packs/{hash}/approve`` — approval by a second account; the pack then becomes the one in use.

Uploading and editing live in :mod:`engine.pages.packs_upload`; both call :mod:`engine.service.packs_ops`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from engine.app import App
from engine.auth.principal import AuthError, Forbidden, NotAuthenticated, NotFound
from engine.pack.model import SEVERITY_CN
from engine.pack.rollout import guard_window
from engine.pages import packs_upload
from engine.pages.render import PageSession, PageWho, page, redirect
from engine.service import packs_ops
from facts.errors import PartyrulesError

SAMPLE = 20  # findings listed on the backtest page for each of added / removed


def _app(request: Request) -> App:
    return request.app.state.partyrules  # type: ignore[no-any-return]


def local_time(app: App, at: dt.datetime | None) -> str:
    """A stored UTC time in the configured time zone (naive values from SQLite are UTC)."""
    if at is None:
        return ""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(ZoneInfo(app.config.check.timezone)).strftime("%Y-%m-%d %H:%M")


def versions(app: App, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Uploads and recorded configured versions merged by hash, newest first, with a Chinese status."""
    in_use = data["in_use"]["hash"]
    uploads = {u["hash"]: u for u in data["uploads"]}
    recorded = {v["hash"]: v for v in data["versions"]}
    rows = []
    for h in set(uploads) | set(recorded):
        u, v = uploads.get(h), recorded.get(h)
        if h == in_use:
            status, tone = "生效中", "done"
        elif u is not None and u["approved_at"] is None:
            status, tone = "待批准", "warning"
        elif v is not None and v["status"] == "held":
            status, tone = "暂停启用，待批准", "warning"
        elif v is not None and v["status"] == "invalid":
            status, tone = "校验失败", "serious"
        else:
            status, tone = "历史版本", ""
        approved_by = (u or {}).get("approved_by") or (v or {}).get("decided_by") or ""
        approved_at = (u or {}).get("approved_at") or ((v or {}).get("at") if approved_by else None)
        first = (u or {}).get("uploaded_at") or (v or {}).get("at")
        rows.append(
            {
                "hash": h,
                "status": status,
                "tone": tone,
                "pending": status == "待批准",
                "source": "上传" if u is not None else f"配置目录（{v['root'] if v else ''}）",
                "uploaded": u is not None,
                "uploaded_by": (u or {}).get("uploaded_by", ""),
                "uploaded_at": local_time(app, first),
                "approved_by": approved_by,
                "approved_at": local_time(app, approved_at),
                "rules": (u or {}).get("rules") or (data["in_use"]["versions"] if h == in_use else None),
                "reason": (v or {}).get("reason") or "",
                "sort": max(_naive(t) for t in (first, approved_at) if t is not None) if first else dt.datetime.min,
            }
        )
    current = [r for r in rows if r["hash"] == in_use]
    rest = sorted((r for r in rows if r["hash"] != in_use), key=lambda r: r["sort"], reverse=True)
    return current + rest


def _naive(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at


def _value(field: str, value: Any) -> str:
    if value is None:
        return "（无）"
    if field.startswith("级别") and isinstance(value, str):
        return f"{SEVERITY_CN.get(value, value)}（{value}）"
    if isinstance(value, list):
        return "、".join(_value("", v) for v in value) or "（空）"
    if isinstance(value, dict):
        return "；".join(f"{k}: {_value('', v)}" for k, v in value.items()) or "（空）"
    return str(value)


def diff_view(diff: dict[str, Any]) -> dict[str, Any]:
    """The diff JSON with old/new values as text a policy officer reads (级别 警告 → 严重)."""
    changed = [
        {
            "id": d["id"],
            "title": d["title"],
            "changes": [
                {"field": c["field"], "old": _value(c["field"], c["old"]), "new": _value(c["field"], c["new"])}
                for c in d["changes"]
            ],
        }
        for d in diff["changed"]
    ]
    empty = not (diff["added"] or diff["removed"] or diff["changed"])
    return {"added": diff["added"], "removed": diff["removed"], "changed": changed, "empty": empty}


def _upload(app: App, who: PageSession, pack_hash: str) -> dict[str, Any]:
    data = packs_ops.list_packs(app, who.principal)
    rows = {r["hash"]: r for r in versions(app, data)}
    row = rows.get(pack_hash)
    if row is None or not row["uploaded"]:
        raise NotFound(f"没有上传的规则包版本 {pack_hash}")
    row["own"] = next(u for u in data["uploads"] if u["hash"] == pack_hash)["uploaded_by_id"] == (
        who.principal.account_id
    )
    row["in_use"] = pack_hash == data["in_use"]["hash"]
    return row


def _window(app: App) -> tuple[str, str]:
    period, as_of = guard_window(app)
    return period, as_of.isoformat()


def backtest_view(result: dict[str, Any]) -> dict[str, Any]:
    """Counts, the by-rule and by-org tables (with rule titles) and the first findings of each side."""
    titles = {f["rule"]: f["title"] for f in [*result["added"], *result["removed"]]}
    by_rule = [
        {"rule": r, "title": titles.get(r, ""), "added": c.get("added", 0), "removed": c.get("removed", 0)}
        for r, c in result["by_rule"].items()
    ]
    by_org = [
        {"org": o, "added": c.get("added", 0), "removed": c.get("removed", 0)} for o, c in result["by_org"].items()
    ]
    by_org.sort(key=lambda r: (-(r["added"] + r["removed"]), r["org"]))
    return {
        "added": len(result["added"]),
        "removed": len(result["removed"]),
        "unchanged": result["unchanged"],
        "subjects": result["subjects"],
        "share": f"{result['flipped_share']:.2%}",
        "by_rule": by_rule,
        "by_org": by_org,
        "sample_added": result["added"][:SAMPLE],
        "sample_removed": result["removed"][:SAMPLE],
    }


def register(api: FastAPI) -> None:
    packs_upload.register(api)  # /packs/upload and /packs/edit before /packs/{pack_hash}

    @api.get("/packs", include_in_schema=False, response_class=HTMLResponse)
    def packs_home(request: Request, who: PageWho) -> HTMLResponse:
        app = _app(request)
        data = packs_ops.list_packs(app, who.principal)
        rows = versions(app, data)
        return page(
            request,
            "packs_list.html",
            who,
            title="规则包版本",
            current=rows[0] if rows and rows[0]["hash"] == data["in_use"]["hash"] else None,
            in_use=data["in_use"],
            pending=[r for r in rows if r["tone"] == "warning"],
            rows=rows,
            tz=app.config.check.timezone,
        )

    @api.get("/packs/{pack_hash}", include_in_schema=False, response_class=HTMLResponse)
    def pack_show(request: Request, who: PageWho, pack_hash: str) -> HTMLResponse:
        app = _app(request)
        row = _upload(app, who, pack_hash)
        diff = diff_view(packs_ops.diff(app, who.principal, pack_hash))
        period, as_of = _window(app)
        return page(
            request, "packs_show.html", who, title=f"规则包 {pack_hash}", v=row, diff=diff, period=period, as_of=as_of
        )

    @api.get("/packs/{pack_hash}/backtest", include_in_schema=False, response_class=HTMLResponse)
    async def pack_backtest(
        request: Request, who: PageWho, pack_hash: str, period: str = "", as_of: str = ""
    ) -> HTMLResponse:
        app = _app(request)
        row = await run_in_threadpool(_upload, app, who, pack_hash)
        default_period, default_as_of = _window(app)
        period, as_of = period.strip() or default_period, as_of.strip() or default_as_of
        error, result = "", None
        try:
            day = dt.date.fromisoformat(as_of)
        except ValueError:
            error = f"判定日 {as_of!r} 不是日期，请写成 2018-03-01 的形式"
        else:
            try:
                raw = await run_in_threadpool(packs_ops.backtest, app, who.principal, pack_hash, period, day)
                result = backtest_view(raw)
            except AuthError:
                raise  # the error page: not a problem with the period
            except PartyrulesError as exc:  # nothing to compare, a bad period: said on the form
                error = str(exc)
        return page(
            request,
            "packs_backtest.html",
            who,
            status=422 if error else 200,
            title=f"回测 {pack_hash}",
            v=row,
            period=period,
            as_of=as_of,
            error=error,
            r=result,
        )

    @api.post("/packs/{pack_hash}/approve", include_in_schema=False)
    def pack_approve(request: Request, who: PageWho, pack_hash: str) -> RedirectResponse:
        app = _app(request)
        try:
            done = packs_ops.approve(app, who.principal, pack_hash, str(request.state.request_id))
        except AuthError as exc:
            if isinstance(exc, NotAuthenticated | Forbidden | NotFound):
                raise  # the Chinese error page
            return redirect(f"/packs/{pack_hash}", err=f"未批准：{exc}")
        if done["in_use"]:
            return redirect("/packs", ok=f"已批准规则包 {done['hash']}，现为生效版本（批准人 {done['approved_by']}）")
        return redirect(
            "/packs",
            ok=f"已批准规则包 {done['hash']}；配置目录中有尚未启用的新内容，下次检查先判定那一版本",
        )

