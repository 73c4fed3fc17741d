"""Where an org stands in the periods running today: which of the pack's meeting requirements are met,
which are still due, and how many days are left before each period closes.

Derived from the rule pack in force (the org-level rules counting ``meetings_held`` with an
``at_least`` param), never from requirements written into a page: change the pack and the
secretary's home page follows.  The counts are the ones ``check`` would use, built for the
running period as of ``today``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from engine.app import App
from engine.auth.principal import NotFound, OrgTree, Principal, allows
from engine.pack.model import MeetingsHeld, OrgSubject
from engine.periods import period_of
from engine.subjects.base import BuildContext
from engine.subjects.periodic import build_period_subjects
from engine.subjects.registry import Registry
from engine.subjects.single import MEETING_KIND_CN

# how a period is named when it is the current one
THIS_PERIOD = {"month": "本月", "quarter": "本季度", "year": "本年度"}
# what is done with a kind that is not a meeting one "holds" (召开)
VERB = {
    "theme_day": "开展",
    "member_appraisal": "开展",
    "party_lecture": "举办",
    "central_group_study": "开展",
}


@dataclass(frozen=True)
class Requirement:
    """One periodic meeting requirement of one org (the branch itself or one of its 党小组) today."""

    rule: str
    title: str
    org: str
    org_name: str
    granularity: str  # month | quarter | year
    period: str  # 2017-Q2
    period_cn: str  # 2017年第二季度
    held: int
    at_least: int
    days_left: int  # days after today until the period ends (0 on its last day)
    severity: str
    verb: str  # 召开, or 开展 for a 主题党日 or 民主评议党员
    what: str  # 支部党员大会, or 党组会议（党组每月至少专题研究党建工作1次） where topics count

    @property
    def done(self) -> bool:
        return self.held >= self.at_least

    @property
    def text(self) -> str:
        """One line a secretary reads: 本季度尚未召开支部党员大会，距季度结束还有12天."""
        when = THIS_PERIOD[self.granularity]
        what = self.what
        if self.done:
            return f"{when}已{self.verb}{what}{self.held}次（要求至少{self.at_least}次）"
        if self.held == 0:
            head = f"{when}尚未{self.verb}{what}"
        else:
            head = f"{when}已{self.verb}{what}{self.held}次，还差{self.at_least - self.held}次"
        unit = {"month": "本月", "quarter": "季度", "year": "年度"}[self.granularity]
        tail = "今天是最后一天" if self.days_left == 0 else f"距{unit}结束还有{self.days_left}天"
        return f"{head}，{tail}"


def _what(spec: MeetingsHeld, title: str) -> str:
    kinds = "或".join(MEETING_KIND_CN.get(k, k) for k in spec.kinds)
    return f"{kinds}（{title}）" if spec.topics_any else kinds


def org_standing(app: App, principal: Principal, org: str, today: dt.date | None = None) -> list[Requirement]:
    """The periodic meeting requirements of ``org`` and its 党小组 for the periods containing ``today``.

    The principal must be allowed to read the org's facts (else :class:`NotFound`, like an unknown org).
    Requirements not yet met come first, the period closing soonest first.
    """
    principal.require("fact.read")
    if not allows(principal, "fact.read", org, OrgTree.load(app.db)):
        raise NotFound(f"no org {org!r}")
    today = today or app.today()
    pack = app.pack()
    out: list[Requirement] = []
    with app.db.connect() as conn:
        registry = Registry.load(conn, orgs=[org])
        if org not in registry.orgs:
            raise NotFound(f"no org {org!r}")
        orgs = {org, *(c for c in registry.children.get(org, []) if registry.orgs[c].kind == "group")}
        ctx = BuildContext(conn, registry, today, only_orgs=orgs)
        for compiled in pack.in_force(today):
            rule = compiled.rule
            if rule.period not in THIS_PERIOD or not isinstance(rule.subject, OrgSubject):
                continue
            held = [(n, d) for n, d in rule.derive.items() if isinstance(d, MeetingsHeld)]
            need = compiled.params.get("at_least")
            if not held or need is None:
                continue
            if not any(registry.orgs[o].at(today).kind in rule.subject.org_kinds for o in orgs):
                continue
            period = period_of(today, rule.period)  # type: ignore[arg-type]
            name, spec = held[0]
            for subject in build_period_subjects(ctx, rule, [period]):
                if subject.id not in orgs:
                    continue
                req = Requirement(
                    rule=compiled.id,
                    title=rule.title,
                    org=subject.id,
                    org_name=registry.org_name(subject.id),
                    granularity=rule.period,
                    period=period.label,
                    period_cn=period.label_cn,
                    held=int(subject.fields[name]),
                    at_least=int(need),
                    days_left=(period.end - today).days,
                    severity=rule.severity,
                    verb=VERB.get(spec.kinds[0], "召开") if len(spec.kinds) == 1 else "召开",
                    what=_what(spec, rule.title),
                )
                out.append(req)
    out.sort(key=lambda r: (r.done, r.days_left, r.org != org, r.org, r.rule))
    return out
