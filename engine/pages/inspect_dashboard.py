"""The inspector's dashboard (纪检看板) of a subtree, and the report downloads (XLSX, HTML).

Everything on the dashboard comes from one report (:func:`engine.service.report_ops.report_for`,
the same data as ``/api/reports`` and ``partyrules report``): the totals, the orgs ranked by
open violations, the rules, the monthly trend, the overdue rectifications and the list of
violations (the report's ledger, filtered here).  The report service checks the org against the
principal's scope, so an org outside it is 未找到.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Annotated, Literal
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response

from engine.app import App
from engine.auth.principal import NotFound, Principal
from engine.pack.model import SEVERITY_CN
from engine.pages.inspect_scope import ALL, default_org, default_period, org_choices
from engine.pages.render import ENV, PageWho, page, redirect
from engine.pages.svg_chart import Bar, bar_chart
from engine.periods import PeriodError, parse_period
from engine.report.model import LedgerEntry, Report, ReportError
from engine.report.render_html import render_html
from engine.report.render_xlsx import build_workbook
from engine.report.sections import pct
from engine.service import report_ops
from engine.violations.tables import ACTIVE, STATUS_CN
from engine.web.security import xlsx_response

PAGE_SIZE = 20  # rows of the violation list on one page
RANK_LIMIT = 10
# the dashboard's months: a year's twelve, a quarter and the three before it, a month and the eleven before
TREND = {"year": 1, "quarter": 4, "month": 12}
STATUS_FILTERS = {
    "active": "未完结（待处理、已确认、整改中）",
    "overdue": "逾期未整改",
    "all": "全部状态",
} | {s: STATUS_CN[s] for s in STATUS_CN}
SEVERITY_ORDER = ("critical", "serious", "warning", "info")
Text = Annotated[str, Query(max_length=200)]
PERIOD_HINT = "请按 2017（年）、2017-Q2（季度）或 2017-06（月）填写"


def _app(request: Request) -> App:
    return request.app.state.partyrules  # type: ignore[no-any-return]


def keep(e: LedgerEntry, status: str, severity: str, rule: str) -> bool:
    """Whether a line of the ledger passes the list's filters."""
    if status == "active" and e.status not in ACTIVE:
        return False
    if status == "overdue" and not e.overdue:
        return False
    if status in STATUS_CN and e.status != status:
        return False
    if severity and e.severity != severity:
        return False
    return not rule or e.rule == rule


def month_bars(rep: Report) -> list[Bar]:
    """Violations per month of the report's window (quarter and year ones count in their last month)."""
    per_month: Counter[str] = Counter()
    for m in rep.by_month:
        per_month[m.month] += m.count
    bars = []
    for month in rep.months:
        p = parse_period(month)
        bars.append(Bar(f"{p.start.month}月", per_month[month], f"{p.label_cn}：{per_month[month]} 个问题"))
    return bars


def severity_counts(ledger: list[LedgerEntry]) -> list[tuple[str, int]]:
    """Open (unfinished) violations by severity, the gravest first."""
    n = Counter(e.severity for e in ledger if e.status in ACTIVE)
    return [(s, n[s]) for s in SEVERITY_ORDER if n[s]] + [
        (s, c) for s, c in n.items() if s not in SEVERITY_ORDER
    ]


def scoped_report(app: App, principal: Principal, period: str, org: str, trend: int) -> Report:
    """The report of ``org``'s subtree ("": the whole tree); an org unknown or outside the scope is 未找到."""
    try:
        return report_ops.report_for(app, principal, period, org or None, trend)
    except (NotFound, ReportError):
        raise NotFound(f"未找到组织“{org}”，或它不在您的查看范围内") from None


def _with_page(request: Request, n: int) -> str:
    """This dashboard's address on page ``n`` of the list (the filters kept)."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "page"] + [("page", str(n))]
    return f"{request.url.path}?{urlencode(query)}#list"


def register(api: FastAPI) -> None:
    ENV.filters.setdefault("pct", pct)

    @api.get("/inspect", include_in_schema=False, response_model=None)
    def dashboard(
        request: Request,
        who: PageWho,
        period: Annotated[str, Query(max_length=40)] = "",
        org: Text = "",
        status: Text = "active",
        severity: Text = "",
        rule: Text = "",
        page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
    ) -> Response:
        app, principal = _app(request), who.principal
        principal.require("violation.read")
        period = period.strip() or default_period(app)
        org = org.strip() if "org" in request.query_params else ALL
        if not org and not principal.is_global("report.read"):
            org = default_org(app, principal)  # "全部组织" is only for a global grant
        try:
            granularity = parse_period(period).granularity
        except PeriodError:
            return redirect(f"/inspect?org={quote(org, safe='')}", err=f"期间“{period}”无效：{PERIOD_HINT}")
        rep = scoped_report(app, principal, period, org, TREND[granularity])
        status = status if status in STATUS_FILTERS else "active"
        rows = [e for e in rep.ledger if keep(e, status, severity, rule)]
        ranking = sorted(
            (s for s in rep.by_org if s.counts.violations),
            key=lambda s: (-s.counts.active, -s.counts.overdue, -s.counts.serious, s.name),
        )[:RANK_LIMIT]
        bars = month_bars(rep)
        by_severity = severity_counts(rep.ledger)
        return page(
            request,
            "inspect_dashboard.html",
            who,
            title="纪检看板",
            rep=rep,
            period=period,
            org=org,
            all_orgs=ALL,
            choices=org_choices(app, principal),
            global_scope=principal.is_global("report.read"),
            state=status,
            severity=severity,
            rule=rule,
            status_filters=STATUS_FILTERS,
            severities=SEVERITY_CN,
            rows=rows[(page_no - 1) * PAGE_SIZE : page_no * PAGE_SIZE],
            total_rows=len(rows),
            page_no=page_no,
            pages=max(1, -(-len(rows) // PAGE_SIZE)),
            first_no=(page_no - 1) * PAGE_SIZE + 1,
            page_url=lambda n: _with_page(request, n),
            ranking=ranking,
            rank_top=max((s.counts.active for s in ranking), default=0),
            rules=[s for s in rep.by_rule if s.counts.violations],
            by_severity=by_severity,
            sev_top=max((n for _s, n in by_severity), default=1),
            overdue=[e for e in rep.ledger if e.overdue],
            chart=bar_chart(bars, f"{rep.org_name or '全部组织'}各月问题数"),
            chart_total=sum(b.value for b in bars),
            can_work=principal.may("violation.work"),
            back=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        )

    @api.get("/inspect/report", include_in_schema=False, response_model=None)
    def report_download(
        request: Request,
        who: PageWho,
        period: Annotated[str, Query(min_length=4, max_length=40)],
        format: Literal["xlsx", "html"],
        org: Text = "",
    ) -> Response:
        """The report of the dashboard's period and org, as the API and the CLI make it."""
        try:
            parse_period(period)
        except PeriodError:
            raise NotFound(f"期间“{period}”无效：{PERIOD_HINT}") from None
        rep = scoped_report(_app(request), who.principal, period, org.strip(), 4)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"report-{rep.org or 'all'}-{rep.period.label}")
        if format == "html":
            return HTMLResponse(
                render_html(rep), headers={"Content-Disposition": f'attachment; filename="{name}.html"'}
            )
        return xlsx_response(build_workbook(rep), f"{name}.xlsx")
