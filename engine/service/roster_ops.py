"""Who is expected at a meeting of an org on a day, read from the registry as it stood that day.

The attendance checklist of the secretary's meeting form is built from this, so the record names
the people the rules will count (a party group's members for its own meetings, the org's members
otherwise) and a secretary ticks names, never types ids.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from engine.app import App
from engine.auth.principal import NotFound, OrgTree, Principal, allows
from engine.subjects.registry import MemberInfo, Registry
from facts import tables as ft

STATUS_CN = {"full": "正式党员", "probationary": "预备党员", "non_member": "非党员"}
ROLE_CN = {
    "branch_secretary": "支部书记",
    "committee_member": "支部委员",
    "party_group_secretary": "党组书记",
    "party_group_member": "党组成员",
    "leader": "领导班子成员",
    "unit_head": "单位负责人",
    "discipline_staff": "纪检干部",
}
# the meetings of a party group (党组), where its members (not the org's members) are expected
PARTY_GROUP_KINDS = ("party_group_meeting", "central_group_study", "democratic_life_meeting")


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    status: str
    roles: tuple[str, ...]

    @property
    def label(self) -> str:
        """Status and roles, in Chinese (正式党员 · 支部书记)."""
        return " · ".join([STATUS_CN.get(self.status, self.status), *(ROLE_CN.get(r, r) for r in self.roles)])


@dataclass(frozen=True)
class OrgView:
    id: str
    name: str
    kind: str
    registry: Registry

    def people(self, day: dt.date, kind: str | None = None) -> list[Person]:
        """Who is expected at a ``kind`` meeting of this org on ``day`` (registry order)."""
        reg = self.registry
        if self.kind == "party_group" and (kind is None or kind in PARTY_GROUP_KINDS):
            pool = reg.party_group_members_of.get(self.id, [])
            chosen = [m.at(day) for m in pool if m.belongs_on(day)]
            chosen = [
                m for m in chosen if "party_group_member" in m.roles and self.id in {m.org, *m.extra_orgs}
            ]
        else:
            pool = reg.members_of.get(self.id, [])
            chosen = [m.at(day) for m in pool if m.belongs_on(day)]
            chosen = [m for m in chosen if m.org == self.id and m.status != "non_member"]
        return [_person(m) for m in sorted(chosen, key=lambda m: m.id)]

    def everyone(self) -> dict[str, str]:
        """Member id → name for everyone the registry loaded (to show names of past records)."""
        return {m.id: m.name for m in self.registry.members.values()}


def _person(m: MemberInfo) -> Person:
    return Person(m.id, m.name, m.status, tuple(sorted(m.roles)))


def org_view(app: App, principal: Principal, org: str, action: str = "fact.write") -> OrgView:
    """The org with its registry, if ``principal`` may ``action`` its facts (else :class:`NotFound`)."""
    principal.require(action)
    if not allows(principal, action, org, OrgTree.load(app.db)):
        raise NotFound(f"no org {org!r}")
    with app.db.connect() as conn:
        registry = Registry.load(conn, orgs=[org])
    info = registry.orgs.get(org)
    if info is None:
        raise NotFound(f"no org {org!r}")
    latest = info.latest
    return OrgView(org, latest.name, latest.kind, registry)


def recent_meetings(app: App, view: OrgView, until: dt.date, limit: int = 10) -> list[dict[str, object]]:
    """The org's current meetings held on or before ``until``, latest first: id, kind, date (the caller
    got ``view`` authorized)."""
    m = ft.MeetingRow.__table__  # type: ignore[attr-defined]
    query = (
        sa.select(m.c.id, m.c.kind, m.c.date)
        .where(m.c.org == view.id, m.c.date <= until)
        .order_by(m.c.date.desc(), m.c.seq.desc())
    )
    with app.db.connect() as conn:
        return [dict(r) for r in conn.execute(query.limit(limit)).mappings()]


def month_dues(app: App, members: list[str], month: str) -> dict[str, dict[str, object]]:
    """The current dues of ``members`` for ``month`` (YYYY-MM), by member (the caller authorized them)."""
    d = ft.DuesRow.__table__  # type: ignore[attr-defined]
    query = sa.select(d).where(d.c.month == month, d.c.member.in_(sorted(members)))
    with app.db.connect() as conn:
        return {r["member"]: dict(r) for r in conn.execute(query).mappings()}
