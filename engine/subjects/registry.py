"""The registry (orgs and members) loaded once per evaluation, for subject building.

The registry is dated: an org or member is stored as first recorded, with its dated changes
(``org_change``, ``member_change``); :meth:`OrgInfo.at` and :meth:`MemberInfo.at` give the entry as it
stood on a day, so a verdict on a past period reads the registry of that period.  An entry without
changes is its own state on every day (the fast path: almost every member of a province).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

import sqlalchemy as sa

from facts import tables as t


@dataclass(frozen=True)
class OrgChangeInfo:
    date: date
    name: str | None = None
    kind: str | None = None
    parent: str | None = None
    term_years: int | None = None


@dataclass(frozen=True)
class OrgInfo:
    id: str
    name: str
    kind: str
    parent: str | None
    established: date | None
    dissolved: date | None  # the earlier of the recorded date and a dissolving org_change
    term_years: int | None
    changes: tuple[OrgChangeInfo, ...] = ()  # by date
    _states: dict[date, OrgInfo] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def exists_during(self, start: date, end: date) -> bool:
        return (self.established is None or self.established <= end) and (
            self.dissolved is None or self.dissolved >= start
        )

    def at(self, day: date) -> OrgInfo:
        """The org as it stood on ``day`` (name, kind, parent, term after the changes dated up to it)."""
        if not self.changes or day < self.changes[0].date:
            return self
        found = self._states.get(day)
        if found is None:
            values: dict[str, Any] = {}
            for c in self.changes:
                if c.date > day:
                    break
                values.update({k: v for k in ("name", "kind", "parent", "term_years") if (v := getattr(c, k))})
            found = self._states[day] = dataclasses.replace(self, **values, changes=(), _states={})
        return found

    @property
    def latest(self) -> OrgInfo:
        return self.at(date.max) if self.changes else self


@dataclass(frozen=True)
class MemberChangeInfo:
    date: date
    status: str | None = None
    category: str | None = None
    org: str | None = None
    appointed: frozenset[str] = frozenset()
    ended: frozenset[str] = frozenset()
    extra_orgs: frozenset[str] | None = None
    excused: bool | None = None
    dues_quarterly: bool | None = None


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
    excused: bool = False
    dues_quarterly: bool = False
    changes: tuple[MemberChangeInfo, ...] = ()  # by date
    _states: dict[int, MemberInfo] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def belongs_during(self, start: date, end: date) -> bool:
        return (self.joined is None or self.joined <= end) and (self.left is None or self.left >= start)

    def belongs_on(self, day: date) -> bool:
        return self.belongs_during(day, day)

    def at(self, day: date) -> MemberInfo:
        """The member's entry on ``day``: status, category, org, roles… after the changes dated up to it.

        The state returned has no changes of its own (``changes`` is empty), so it is never dated again.
        """
        changes = self.changes
        if not changes or day < changes[0].date:
            return self
        n = 0
        while n < len(changes) and changes[n].date <= day:
            n += 1
        found = self._states.get(n)
        if found is None:
            values: dict[str, Any] = {}
            roles = set(self.roles)
            for c in changes[:n]:
                for name in ("status", "category", "org", "extra_orgs", "excused", "dues_quarterly"):
                    value = getattr(c, name)
                    if value is not None:
                        values[name] = value
                roles = (roles | c.appointed) - c.ended
            found = self._states[n] = dataclasses.replace(
                self, **values, roles=frozenset(roles), changes=(), _states={}
            )
        return found

    def states_during(self, start: date, end: date) -> list[MemberInfo]:
        """Every state the entry takes between ``start`` and ``end`` (one, unless it changes in between)."""
        if not self.changes:
            return [self]
        out = [self.at(start)]
        out += [self.at(c.date) for c in self.changes if start < c.date <= end]
        return out

    @property
    def orgs_ever(self) -> frozenset[str]:
        """Every org the member's organisational life was ever in (several after a transfer)."""
        return frozenset({self.org, *(c.org for c in self.changes if c.org)})

    @property
    def latest(self) -> MemberInfo:
        return self.at(date.max) if self.changes else self


@dataclass
class Registry:
    orgs: dict[str, OrgInfo]
    members: dict[str, MemberInfo]
    children: dict[str, list[str]] = field(default_factory=dict)
    members_of: dict[str, list[MemberInfo]] = field(default_factory=dict)
    party_group_members_of: dict[str, list[MemberInfo]] = field(default_factory=dict)
    partial: bool = False  # loaded for some orgs or members only: one it lacks may still exist

    @classmethod
    def load(
        cls, conn: sa.Connection, orgs: Iterable[str] | None = None, members: Iterable[str] | None = None
    ) -> Registry:
        """The whole registry, or with ``orgs``/``members`` only what judging a few facts needs.

        A partial registry holds the given orgs with their ancestors (for routing) and children, the
        members of those orgs or attached to them through ``extra_orgs``, and the given members.
        """
        o = t.OrgRow.__table__  # type: ignore[attr-defined]
        r = t.MemberRoleRow.__table__  # type: ignore[attr-defined]
        x = t.MemberExtraOrgRow.__table__  # type: ignore[attr-defined]
        role_rows: Sequence[Any]
        extra_rows: Sequence[Any]
        if orgs is None and members is None:
            org_rows = list(conn.execute(sa.select(*o.c)).all())
            member_rows = conn.execute(sa.select(*_member_columns())).all()
            role_rows = conn.execute(sa.select(r.c.member, r.c.role)).all()
            extra_rows = conn.execute(sa.select(x.c.member, x.c.org)).all()
        else:  # prebuilt statements (expanding parameters): SQLAlchemy builds and compiles each once
            q = _partial_queries()
            wanted_members = sorted(set(members or ()))
            member_rows = _rows_for(conn, q.members, wanted_members)
            wanted_orgs = set(orgs or ()) | {row.org for row in member_rows}
            # a member transferred into or out of a wanted org
            transfers = _in_slices(conn, q.moved, members=wanted_members, orgs=sorted(wanted_orgs))
            wanted_members_set = set(wanted_members)
            wanted_orgs |= {org for member, org in transfers if org and member in wanted_members_set}
            moved_in = sorted({member for member, org in transfers if org in wanted_orgs})
            # the members of the wanted orgs, those attached to them (extra_orgs) and those moved in or out
            member_rows += _in_slices(conn, q.members_of, orgs=sorted(wanted_orgs), ids=moved_in)
            # each member once (asked by id and found in its org; or found by two slices)
            member_rows = list({row[0]: row for row in member_rows}.values())
            family = _orgs_with_family(conn, wanted_orgs)
            ids = sorted({row.id for row in member_rows})
            tagged = _rows_for(conn, q.roles_and_extra, ids)
            role_rows = [(member, value) for what, member, value in tagged if what == "role"]
            extra_rows = [(member, value) for what, member, value in tagged if what != "role"]
        changes = _member_changes(conn, [row.id for row in member_rows], orgs is None and members is None)
        if orgs is not None or members is not None:  # the orgs its members moved to or belong to besides
            elsewhere = {c.org for found in changes.values() for c in found if c.org}
            elsewhere |= {org for _, org in extra_rows}
            if elsewhere - set(family):
                for org_id, entry in _orgs_with_family(conn, elsewhere - set(family)).items():
                    family.setdefault(org_id, entry)
            # the flags came with the member rows (their last two columns; NULL without a flag row: neither)
            flags = {row[0]: (bool(row[7]), bool(row[8])) for row in member_rows}
        else:
            flags = _member_flags(conn)
        roles: dict[str, set[str]] = defaultdict(set)
        for member, role in role_rows:
            roles[member].add(role)
        extra: dict[str, set[str]] = defaultdict(set)
        for member, org in extra_rows:
            extra[member].add(org)
        no_flags = (False, False)
        people = {  # by position (a Row's attributes are looked up by name: 3x slower for a few members)
            mid: MemberInfo(
                mid,
                name,
                org,
                status,
                category,
                joined,
                left,
                roles=frozenset(roles.get(mid, ())),
                extra_orgs=frozenset(extra.get(mid, ())),
                excused=(flag := flags.get(mid, no_flags))[0],
                dues_quarterly=flag[1],
                changes=tuple(changes.get(mid, ())),
            )
            for mid, name, org, status, category, joined, left, *_ in member_rows
        }
        if orgs is None and members is None:
            org_changes = _org_changes(conn)
            reg = cls({row.id: _org_info(row, org_changes.get(row.id, [])) for row in org_rows}, people)
        else:  # read with their changes
            reg = cls({org_id: _org_info(row, found) for org_id, (row, found) in family.items()}, people)
        reg.partial = orgs is not None or members is not None
        reg._index()
        return reg

    @classmethod
    def load_orgs(cls, conn: sa.Connection) -> Registry:
        """Every org with its dated changes and no member: enough to walk the tree (planning partitions),
        at a fraction of the whole registry's time and memory."""
        o = t.OrgRow.__table__  # type: ignore[attr-defined]
        org_rows = conn.execute(sa.select(*o.c)).all()
        org_changes = _org_changes(conn)
        reg = cls({row.id: _org_info(row, org_changes.get(row.id, [])) for row in org_rows}, {})
        reg.partial = True  # no members
        reg._index()
        return reg

    def _index(self) -> None:
        children: dict[str, list[str]] = defaultdict(list)
        for org in self.orgs.values():  # an org moved under another parent is a child of each (its groups)
            for parent in dict.fromkeys([org.parent, *(c.parent for c in org.changes)]):
                if parent:
                    children[parent].append(org.id)
        members_of: dict[str, list[MemberInfo]] = defaultdict(list)
        pg_members: dict[str, list[MemberInfo]] = defaultdict(list)
        for mem in self.members.values():
            if not mem.changes:
                members_of[mem.org].append(mem)
                if "party_group_member" in mem.roles:
                    for org_id in {mem.org, *mem.extra_orgs}:
                        pg_members[org_id].append(mem)
                continue
            states = [mem, *(mem.at(c.date) for c in mem.changes)]
            for org_id in mem.orgs_ever:  # every org the member was ever in: the meeting's date decides
                members_of[org_id].append(mem)
            pg_orgs = {o for s in states if "party_group_member" in s.roles for o in (s.org, *s.extra_orgs)}
            for org_id in pg_orgs:
                pg_members[org_id].append(mem)
        self.children = dict(children)
        self.members_of = dict(members_of)
        self.party_group_members_of = dict(pg_members)

    def ensure_orgs(self, conn: sa.Connection, ids: Iterable[str]) -> None:
        """Load orgs a partial registry lacks (e.g. the org of a meeting that was copied)."""
        missing = sorted(set(ids) - set(self.orgs))
        if missing:
            found = _with_changes(_rows_for(conn, _partial_queries().orgs, missing))
            for org_id, (row, changes) in found.items():
                self.orgs[org_id] = _org_info(row, changes)

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
        """Org ids from the root down to ``org_id`` under today's parents (for routing by subtree)."""
        out: list[str] = []
        seen: set[str] = set()
        current = org_id
        while current and current in self.orgs and current not in seen:
            seen.add(current)
            out.append(current)
            current = self.orgs[current].latest.parent
        return list(reversed(out))


def _orgs_with_family(conn: sa.Connection, ids: set[str]) -> dict[str, tuple[Any, list[Any]]]:
    """Rows of ``ids``, their ancestors up to the root, and their direct children, each with its dated
    changes: one statement (a recursive walk up the tree, however deep), where walking level by level
    took one a level, and the changes one more."""
    wanted = sorted(ids)
    found: dict[str, tuple[Any, list[Any]]] = {}
    for part in range(0, len(wanted), _SLICE):
        rows = conn.execute(_partial_queries().family, {"ids": wanted[part : part + _SLICE]}).all()
        for org_id, entry in _with_changes(rows).items():
            found.setdefault(org_id, entry)
    return found


def _with_changes(rows: Iterable[Any]) -> dict[str, tuple[Any, list[Any]]]:
    """Org rows joined to their changes (``c_`` columns; NULL without any): id -> (the org, its changes),
    each change once (an org reached twice, as an ancestor and as a child, comes twice)."""
    out: dict[str, tuple[Any, list[Any]]] = {}
    seen: set[str] = set()
    for row in rows:
        entry = out.get(row.id)
        if entry is None:
            entry = out[row.id] = (row, [])
        if row.c_key is not None and row.c_key not in seen:
            seen.add(row.c_key)
            entry[1].append(_OrgChangeRow(row.c_date, row.c_name, row.c_kind, row.c_parent, row.c_term_years, row.c_dissolved))
    return out


class _OrgChangeRow(NamedTuple):
    date: date
    name: str | None
    kind: str | None
    parent: str | None
    term_years: int | None
    dissolved: bool


_SLICE = 500  # ids bound to one statement at most (SQLite's limit on parameters is 32,766, or 999 before 3.32)


class _PartialQueries:
    """The statements of a partial :meth:`Registry.load`, built once: each binds its ids as an expanding
    parameter, so SQLAlchemy compiles each once and only expands the ids at each execution (a new
    ``.in_(list)`` statement is coerced, keyed and compiled anew every time: most of a submission's
    registry load went there, not to SQLite)."""

    def __init__(self) -> None:
        o = t.OrgRow.__table__  # type: ignore[attr-defined]
        m = t.MemberRow.__table__  # type: ignore[attr-defined]
        r = t.MemberRoleRow.__table__  # type: ignore[attr-defined]
        x = t.MemberExtraOrgRow.__table__  # type: ignore[attr-defined]
        mc = t.MemberChangeRow.__table__  # type: ignore[attr-defined]
        f = t.MemberFlagRow.__table__  # type: ignore[attr-defined]
        oc = t.OrgChangeRow.__table__  # type: ignore[attr-defined]
        ids: Any = sa.bindparam("ids", expanding=True)
        wanted_orgs: Any = sa.bindparam("orgs", expanding=True)
        # a member's flags come with it (a LEFT JOIN: most members have no flag row)
        with_flags = m.outerjoin(f, f.c.member == m.c.id)
        member_columns = [*_member_columns(), f.c.excused, f.c.dues_quarterly]
        self.members = sa.select(*member_columns).select_from(with_flags).where(m.c.id.in_(ids))
        self.moved = sa.select(mc.c.member, mc.c.org).where(
            sa.or_(mc.c.member.in_(sa.bindparam("members", expanding=True)), mc.c.org.in_(wanted_orgs))
        )
        attached = sa.select(x.c.member).where(x.c.org.in_(wanted_orgs))
        self.members_of = sa.select(*member_columns).select_from(with_flags).where(
            sa.or_(m.c.org.in_(wanted_orgs), m.c.id.in_(attached), m.c.id.in_(ids))
        )
        # the roles and the extra orgs of the members, told apart by the first column
        self.roles_and_extra = sa.union_all(
            sa.select(sa.literal_column("'role'"), r.c.member, r.c.role).where(r.c.member.in_(ids)),
            sa.select(sa.literal_column("'extra'"), x.c.member, x.c.org).where(x.c.member.in_(ids)),
        )
        self.member_changes = sa.select(mc).where(mc.c.member.in_(ids)).order_by(mc.c.member, mc.c.date)
        changes = [
            oc.c.key.label("c_key"),
            oc.c.date.label("c_date"),
            oc.c.name.label("c_name"),
            oc.c.kind.label("c_kind"),
            oc.c.parent.label("c_parent"),
            oc.c.term_years.label("c_term_years"),
            oc.c.dissolved.label("c_dissolved"),
        ]
        # orgs by id, each with its changes (a LEFT JOIN: most orgs have none)
        self.orgs = (
            sa.select(*o.c, *changes).select_from(o.outerjoin(oc, oc.c.org == o.c.id)).where(o.c.id.in_(ids))
        )
        # the orgs, their ancestors (walked up recursively: UNION, not UNION ALL, so a cycle ends) and
        # their children, each with its changes
        up = sa.select(o.c.id, o.c.parent).where(o.c.id.in_(ids)).cte("up", recursive=True)
        up = up.union(sa.select(o.c.id, o.c.parent).join(up, o.c.id == up.c.parent))
        family = sa.union_all(
            sa.select(*o.c).where(o.c.id.in_(sa.select(up.c.id))),
            sa.select(*o.c).where(o.c.parent.in_(ids)),
        ).subquery("family")
        self.family = sa.select(*family.c, *changes).select_from(family.outerjoin(oc, oc.c.org == family.c.id))


@functools.lru_cache(maxsize=1)
def _partial_queries() -> _PartialQueries:
    return _PartialQueries()


def _in_slices(conn: sa.Connection, query: Any, **lists: list[str]) -> list[Any]:
    """The rows of ``query`` (prebuilt, each list an expanding parameter of an OR) for ``lists``, asked
    :data:`_SLICE` of each at a time: one statement for a submission, several for a cluster partition's
    thousands of orgs (bound twice in the members' statement: SQLite takes 32,766 parameters at most)."""
    longest = max((len(ids) for ids in lists.values()), default=0)
    rows: list[Any] = []
    for start in range(0, max(longest, 1), _SLICE):
        params = {name: ids[start : start + _SLICE] for name, ids in lists.items()}
        rows += conn.execute(query, params).all()
    return rows


def _member_columns() -> list[Any]:
    m = t.MemberRow.__table__  # type: ignore[attr-defined]
    return [m.c.id, m.c.name, m.c.org, m.c.status, m.c.category, m.c.joined, m.c.left]


def _rows_for(conn: sa.Connection, query: Any, ids: list[str], everyone: Any = None) -> list[Any]:
    """The rows of ``everyone`` (a statement for every id) when given, else of ``query`` (prebuilt, its ids an
    expanding parameter ``ids``) for ``ids``, asked in slices of :data:`_SLICE`."""
    if everyone is not None:
        return list(conn.execute(everyone).all())
    rows: list[Any] = []
    for start in range(0, len(ids), _SLICE):
        rows += conn.execute(query, {"ids": ids[start : start + _SLICE]}).all()
    return rows


def _member_changes(conn: sa.Connection, ids: list[str], everyone: bool) -> dict[str, list[MemberChangeInfo]]:
    table = t.MemberChangeRow.__table__  # type: ignore[attr-defined]
    query = sa.select(table).order_by(table.c.member, table.c.date) if everyone else None
    rows = _rows_for(conn, _partial_queries().member_changes, ids, query)
    out: dict[str, list[MemberChangeInfo]] = defaultdict(list)
    for r in rows:
        out[r.member].append(
            MemberChangeInfo(
                r.date,
                r.status,
                r.category,
                r.org,
                frozenset(filter(None, r.roles_appointed.split(","))),
                frozenset(filter(None, r.roles_ended.split(","))),
                frozenset(json.loads(r.extra_orgs)) if r.extra_orgs is not None else None,
                r.excused,
                r.dues_quarterly,
            )
        )
    for found in out.values():
        found.sort(key=lambda c: c.date)
    return out


def _member_flags(conn: sa.Connection) -> dict[str, tuple[bool, bool]]:
    """Every member's flags (a partial load reads them with the member rows)."""
    table = t.MemberFlagRow.__table__  # type: ignore[attr-defined]
    rows = conn.execute(sa.select(table.c.member, table.c.excused, table.c.dues_quarterly))
    return {r.member: (bool(r.excused), bool(r.dues_quarterly)) for r in rows}


def _org_changes(conn: sa.Connection) -> dict[str, list[Any]]:
    """Every org's dated changes (a partial load reads them with the org rows)."""
    table = t.OrgChangeRow.__table__  # type: ignore[attr-defined]
    out: dict[str, list[Any]] = defaultdict(list)
    for r in conn.execute(sa.select(table).order_by(table.c.org, table.c.date)):
        out[r.org].append(r)
    return out


def _org_info(row: Any, changes: list[Any]) -> OrgInfo:
    """An org row with its changes; a dissolving change moves ``dissolved`` to its date if earlier."""
    dissolved = row.dissolved
    for c in changes:
        if c.dissolved and (dissolved is None or c.date < dissolved):
            dissolved = c.date
    return OrgInfo(
        row.id,
        row.name,
        row.kind,
        row.parent,
        row.established,
        dissolved,
        row.term_years,
        tuple(
            OrgChangeInfo(c.date, c.name, c.kind, c.parent, c.term_years)
            for c in sorted(changes, key=lambda c: c.date)
            if c.name or c.kind or c.parent or c.term_years
        ),
    )
