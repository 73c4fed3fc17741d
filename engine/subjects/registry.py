"""The registry (orgs and members) loaded once per evaluation, for subject building."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa

from facts import tables as t


@dataclass(frozen=True)
class OrgInfo:
    id: str
    name: str
    kind: str
    parent: str | None
    established: date | None
    dissolved: date | None
    term_years: int | None

    def exists_during(self, start: date, end: date) -> bool:
        return (self.established is None or self.established <= end) and (
            self.dissolved is None or self.dissolved >= start
        )


@dataclass(frozen=True)
class MemberInfo:
    id: str
    name: str
    org: str
    status: str
    category: str
    joined: date | None
    left: date | None
    roles: frozenset[str]
    extra_orgs: frozenset[str]

    def belongs_during(self, start: date, end: date) -> bool:
        return (self.joined is None or self.joined <= end) and (self.left is None or self.left >= start)

    def belongs_on(self, day: date) -> bool:
        return self.belongs_during(day, day)


@dataclass
class Registry:
    orgs: dict[str, OrgInfo]
    members: dict[str, MemberInfo]
    children: dict[str, list[str]] = field(default_factory=dict)
    members_of: dict[str, list[MemberInfo]] = field(default_factory=dict)
    party_group_members_of: dict[str, list[MemberInfo]] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: sa.Connection) -> Registry:
        o = t.OrgRow.__table__  # type: ignore[attr-defined]
        m = t.MemberRow.__table__  # type: ignore[attr-defined]
        r = t.MemberRoleRow.__table__  # type: ignore[attr-defined]
        x = t.MemberExtraOrgRow.__table__  # type: ignore[attr-defined]
        orgs = {row.id: OrgInfo(*row) for row in conn.execute(sa.select(*o.c))}
        roles: dict[str, set[str]] = defaultdict(set)
        for member, role in conn.execute(sa.select(r.c.member, r.c.role)):
            roles[member].add(role)
        extra: dict[str, set[str]] = defaultdict(set)
        for member, org in conn.execute(sa.select(x.c.member, x.c.org)):
            extra[member].add(org)
        members = {}
        for row in conn.execute(
            sa.select(m.c.id, m.c.name, m.c.org, m.c.status, m.c.category, m.c.joined, m.c.left)
        ):
            members[row.id] = MemberInfo(
                *row, roles=frozenset(roles.get(row.id, ())), extra_orgs=frozenset(extra.get(row.id, ()))
            )
        reg = cls(orgs, members)
        reg._index()
        return reg

    def _index(self) -> None:
        children: dict[str, list[str]] = defaultdict(list)
        for org in self.orgs.values():
            if org.parent:
                children[org.parent].append(org.id)
        members_of: dict[str, list[MemberInfo]] = defaultdict(list)
        pg_members: dict[str, list[MemberInfo]] = defaultdict(list)
        for mem in self.members.values():
            members_of[mem.org].append(mem)
            if "party_group_member" in mem.roles:
                for org_id in {mem.org, *mem.extra_orgs}:
                    pg_members[org_id].append(mem)
        self.children = dict(children)
        self.members_of = dict(members_of)
        self.party_group_members_of = dict(pg_members)

    def org_name(self, org_id: str | None) -> str:
        if org_id is None:
            return ""
        info = self.orgs.get(org_id)
        return info.name if info else org_id

    def member_name(self, member_id: str) -> str:
        info = self.members.get(member_id)
        return info.name if info else member_id

    def org_and_groups(self, org_id: str) -> set[str]:
        """The org and the groups (党小组) directly under it."""
        return {org_id, *(c for c in self.children.get(org_id, []) if self.orgs[c].kind == "group")}

    def path(self, org_id: str | None) -> list[str]:
        """Org ids from the root down to ``org_id`` (for routing by subtree)."""
        out: list[str] = []
        seen: set[str] = set()
        current = org_id
        while current and current in self.orgs and current not in seen:
            seen.add(current)
            out.append(current)
            current = self.orgs[current].parent
        return list(reversed(out))
