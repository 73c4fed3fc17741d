"""The secretary's home (本支部): where the org stands this month/quarter/year, what is still due before
each period closes, its open findings, and its latest meetings."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from engine.pages.branch_common import app_of, chosen_org, secretary_orgs, today, with_org
from engine.pages.render import PageWho, page
from engine.service import violations_ops
from engine.service.roster_ops import recent_meetings
from engine.service.standing_ops import org_standing
from engine.subjects.single import MEETING_KIND_CN
from engine.violations.tables import ACTIVE


def register(api: FastAPI) -> None:
    @api.get("/branch", include_in_schema=False, response_class=HTMLResponse)
    def branch_home(request: Request, who: PageWho) -> HTMLResponse:
        app = app_of(request)
        view = chosen_org(request, who)
        day = today(request)
        standing = org_standing(app, who.principal, view.id, day)
        violations = violations_ops.list_violations(app, who.principal, org=view.id)
        active = [v for v in violations if v.status in ACTIVE]
        active.sort(key=lambda v: (v.status == "rectifying", v.period), reverse=False)
        names = view.everyone()
        return page(
            request,
            "branch_home.html",
            who,
            title=view.name,
            view=view,
            today=day,
            due=[r for r in standing if not r.done],
            done=[r for r in standing if r.done],
            active=active,
            resolved=sum(1 for v in violations if v.status == "resolved"),
            meetings=recent_meetings(app, view, day),
            kind_cn=MEETING_KIND_CN,
            names=names,
            other_orgs=[o for o in secretary_orgs(who) if o != view.id],
            url=lambda u: with_org(u, view, who),
        )
