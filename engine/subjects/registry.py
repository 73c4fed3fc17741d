"""The registry (orgs and members) loaded once per evaluation, for subject building."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

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
    def load(
        cls, conn: sa.Connection, orgs: Iterable[str] | None = None, members: Iterable[str] | None = None
    ) -> Registry:
        """The whole registry, or with ``orgs``/``members`` only what judging a few facts needs.

        A partial registry holds the given orgs with their ancestors (for routing) and children, the
        members of those orgs or attached to them through ``extra_orgs``, and the given members.
        """
        o = t.OrgRow.__table__  # type: ignore[attr-defined]
        m = t.MemberRow.__table__  # type: ignore[attr-defined]
        r = t.MemberRoleRow.__table__  # type: ignore[attr-defined]
        x = t.MemberExtraOrgRow.__table__  # type: ignore[attr-defined]
        member_cols = [m.c.id, m.c.name, m.c.org, m.c.status, m.c.category, m.c.joined, m.c.left]
        if orgs is None and members is None:
            org_rows = conn.execute(sa.select(*o.c)).all()
            member_rows = conn.execute(sa.select(*member_cols)).all()
            role_rows = conn.execute(sa.select(r.c.member, r.c.role)).all()
            extra_rows = conn.execute(sa.select(x.c.member, x.c.org)).all()
        else:
            wanted_members = set(members or ())
            member_rows = list(conn.execute(sa.select(*member_cols).where(m.c.id.in_(sorted(wanted_members)))).all())
            wanted_orgs = set(orgs or ()) | {row.org for row in member_rows}
            attached = conn.execute(sa.select(x.c.member).where(x.c.org.in_(sorted(wanted_orgs)))).scalars().all()
            member_rows += conn.execute(
                sa.select(*member_cols).where(
                    sa.or_(m.c.org.in_(sorted(wanted_orgs)), m.c.id.in_(sorted(set(attached))))
                )
            ).all()
            org_rows = _orgs_with_family(conn, o, wanted_orgs)
            ids = sorted({row.id for row in member_rows})
            role_rows = conn.execute(sa.select(r.c.member, r.c.role).where(r.c.member.in_(ids))).all()
            extra_rows = conn.execute(sa.select(x.c.member, x.c.org).where(x.c.member.in_(ids))).all()
        roles: dict[str, set[str]] = defaultdict(set)
        for member, role in role_rows:
            roles[member].add(role)
        extra: dict[str, set[str]] = defaultdict(set)
        for member, org in extra_rows:
            extra[member].add(org)
        people = {
            row.id: MemberInfo(
                row.id,
                row.name,
                row.org,
                row.status,
                row.category,
                row.joined,
                row.left,
                roles=frozenset(roles.get(row.id, ())),
                extra_orgs=frozenset(extra.get(row.id, ())),
            )
            for row in member_rows
        }
        reg = cls({row.id: OrgInfo(*row) for row in org_rows}, people)
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

    def ensure_orgs(self, conn: sa.Connection, ids: Iterable[str]) -> None:
        """Load orgs a partial registry lacks (e.g. the org of a meeting that was copied)."""
        missing = sorted(set(ids) - set(self.orgs))
        if missing:
            table = t.OrgRow.__table__  # type: ignore[attr-defined]
            for row in conn.execute(sa.select(*table.c).where(table.c.id.in_(missing))).all():
                self.orgs[row.id] = OrgInfo(*row)

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


def _orgs_with_family(conn: sa.Connection, table: sa.Table, ids: set[str]) -> list[Any]:
    """Rows of ``ids``, their ancestors up to the root, and their direct children."""
    found: dict[str, Any] = {}
    todo = set(ids)
    while todo:
        rows = conn.execute(sa.select(*table.c).where(table.c.id.in_(sorted(todo)))).all()
        for row in rows:
            found[row.id] = row
        todo = {row.parent for row in rows if row.parent and row.parent not in found}
    for row in conn.execute(sa.select(*table.c).where(table.c.parent.in_(sorted(ids)))).all():
        found.setdefault(row.id, row)
    return list(found.values())
