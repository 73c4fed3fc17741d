"""What the secretary's pages share: which org is being worked on, today, and how a finding is fixed."""

from __future__ import annotations

import datetime as dt

from fastapi import Request

from engine.app import App
from engine.auth.principal import Forbidden
from engine.pages.render import PageSession
from engine.service.roster_ops import OrgView, org_view

# what a secretary can do about a finding of a single-fact rule, by rule id (shown with the finding)
FIX_HINTS: dict[str, str] = {
    "party_group.meeting.quorum": "核对出席名单：如记录有误，点“更正记录”改正到会情况；如确实到会不足，应补开会议或说明情况。",
    "party_group.meeting.leave": "缺席人员须事先请假并书面征求其意见：更正记录时为缺席者选择“请假”，填写事由并勾选“已书面征求意见”。",
    "party_group.meeting.majority": "核对出席名单；到会成员须超过半数，会议决定方为有效。",
    "party_group.meeting.personnel_quorum": "讨论干部任免、处分党员须三分之二以上成员到会：核对出席名单或择期重新讨论。",
    "branch.member_assembly.quorum": "有表决权的正式党员到会须超过半数：核对出席名单，必要时重新召开党员大会表决。",
    "branch.committee_meeting.quorum": "支部委员须半数以上到会：核对出席名单。",
    "meeting.minutes.complete": "补全会议记录：时间、出席人员、内容、成效和记录人都要填写（“四个到位”）。",
    "meeting.minutes.copied": "会议记录内容与其他组织的记录高度雷同：请如实记录本组织会议的实际内容。",
    "dues.amount.full": "按工资收入基数对应的比例足额缴纳：核对基数和金额，如录入有误请更正，少缴的应补缴。",
}


def app_of(request: Request) -> App:
    return request.app.state.partyrules  # type: ignore[no-any-return]


def today(request: Request) -> dt.date:
    """Today in the configured time zone (the app's clock: tests set ``App.today``)."""
    return app_of(request).today()


def secretary_orgs(who: PageSession) -> list[str]:
    """The orgs the user is secretary of, in grant order."""
    return [g.org for g in who.principal.grants if g.role == "secretary" and g.org]


def chosen_org(request: Request, who: PageSession, org: str | None = None) -> OrgView:
    """The org these pages work on: ``org`` (from the form or ``?org=``), else the user's first secretary
    grant; the service decides whether the user may write its facts (an org outside is "not found")."""
    org = org or request.query_params.get("org") or None
    if not org:
        mine = secretary_orgs(who)
        if not mine:
            raise Forbidden(
                "本页面供党支部书记使用：您的账号没有支部书记权限（可在地址后加 ?org=组织编号 查看有权管理的组织）"
            )
        org = mine[0]
    return org_view(app_of(request), who.principal, org)


def with_org(url: str, view: OrgView, who: PageSession) -> str:
    """``url`` keeping ``?org=`` when the org is not the user's default one."""
    mine = secretary_orgs(who)
    if mine and mine[0] == view.id:
        return url
    return url + ("&" if "?" in url else "?") + f"org={view.id}"


def parse_day(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        return None
