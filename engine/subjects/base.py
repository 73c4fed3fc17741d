"""What every subject builder shares: the subject record and the build context."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable
from dataclasses import MISSING, dataclass, field, fields
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import sqlalchemy as sa

from engine.subjects.registry import MemberInfo, OrgInfo, Registry

if TYPE_CHECKING:
    from engine.subjects.copy_pairs import CopyPairs
    from engine.subjects.dues import DuesTable
    from engine.subjects.single import Attendance, MeetingData


@dataclass
class Subject:
    """One thing judged by one rule: a fact, or an org or member over a period."""

    type: str  # org | member | meeting | dues | petition | promotion
    id: str
    org: str | None
    member: str | None
    period: str  # YYYY-MM, YYYY-Qn or YYYY
    fields: dict[str, Any]  # every field of the subject schema, never None
    facts: list[str] = field(default_factory=list)  # ids of the facts involved (evidence)


Span = tuple[date, date, frozenset[str] | None]
"""A fact builder's span of days, with the facts it is limited to (judging a few submitted facts)."""


@dataclass
class Memo:
    """What the subject builders of one evaluation share, each under a named, typed field (it was one
    dict keyed by strings and tuples).  Everything but the partition's own bookkeeping (:data:`KEEP`)
    can be forgotten: what is asked for again is rebuilt, so forgetting only ever costs time."""

    # the partition's own bookkeeping (kept for the whole evaluation)
    mine: dict[str | None, bool] = field(default_factory=dict)  # org id -> in this partition
    part_tables: dict[str, sa.Table] | None = None  # "org" / "member" -> temporary table of the ids
    # subjects over periods (engine.subjects.periodic)
    orgs_with_elections: set[str] | None = None
    # the partition's orgs with their place in the registry: without dated changes by kind, and with
    my_orgs: tuple[dict[str, list[tuple[int, OrgInfo]]], list[tuple[int, OrgInfo]]] | None = None
    org_bases: dict[str, dict[str, Any]] = field(default_factory=dict)  # org -> base fields
    # (kinds, with a term, period start, end) -> the orgs a rule judges, with their base fields
    orgs: dict[tuple[tuple[str, ...], bool, date, date], list[tuple[str, dict[str, Any]]]] = field(
        default_factory=dict
    )
    my_members: list[MemberInfo] | None = None
    member_bases: dict[str, dict[str, Any]] = field(default_factory=dict)  # member -> base fields
    # (statuses, roles, period label) -> the members a rule judges, with their base fields
    members: dict[tuple[tuple[str, ...], tuple[str, ...], str], list[tuple[str, dict[str, Any]]]] = field(
        default_factory=dict
    )
    # derived values (engine.subjects.sources)
    # (start, end) -> meeting kind -> (org, month) -> meetings held
    held: dict[tuple[date, date], dict[str, dict[tuple[str, str], int]]] = field(default_factory=dict)
    # (kinds, first, last day) -> (org, day, topics) of the meetings of a few orgs (only_orgs) with topics
    held_topics: dict[tuple[tuple[str, ...], date, date], list[tuple[str, date, frozenset[str]]]] = field(
        default_factory=dict
    )
    # (kinds, start, end, with leave) -> member -> org -> month -> meetings attended
    attended: dict[tuple[tuple[str, ...], date, date, bool], dict[str, dict[str, dict[str, int]]]] = field(
        default_factory=dict
    )
    own_orgs: dict[tuple[str, bool], frozenset[str]] = field(default_factory=dict)  # (org, with groups) -> orgs
    # (start, end) -> dues month -> member -> the day paid (ISO), paid by the as-of date
    dues: dict[tuple[date, date], dict[str, dict[str, str]]] = field(default_factory=dict)
    dues_table: dict[tuple[str, str], DuesTable] = field(default_factory=dict)  # (first, last month) -> rows
    # meetings (engine.subjects.single)
    meetings: dict[Span, MeetingData] = field(default_factory=dict)
    # (party group, committee, statuses, org) -> the pool, the days it changes, who is eligible per stretch
    eligible: dict[
        tuple[bool, bool, tuple[str, ...] | None, str],
        tuple[list[MemberInfo], list[date], dict[int, frozenset[str]]],
    ] = field(default_factory=dict)
    meeting_fields: dict[tuple[Span, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    meeting_attendance: dict[tuple[Span, str], dict[str, Attendance]] = field(default_factory=dict)
    meeting_absent_parts: dict[Span, dict[str, frozenset[str]]] = field(default_factory=dict)
    meeting_org: dict[str, str] = field(default_factory=dict)  # meeting id -> org, of the copy check's texts

    KEEP: ClassVar[frozenset[str]] = frozenset({"mine", "part_tables"})
    #: fields memoised per key (a span, a period…), each key an entry of its own; every other field is one
    #: entry (a per-member or per-org dict filled bit by bit is dropped whole)
    KEYED: ClassVar[frozenset[str]] = frozenset(
        {
            "orgs",
            "members",
            "held",
            "held_topics",
            "attended",
            "dues",
            "dues_table",
            "meetings",
            "meeting_fields",
            "meeting_attendance",
            "meeting_absent_parts",
        }
    )

    def entries(self) -> set[tuple[str, Any]]:
        """What is memoised now: (field, key) for each key of a field of :data:`KEYED`, (field, None) for
        any other field holding something."""
        out: set[tuple[str, Any]] = set()
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in self.KEYED:
                out.update((f.name, key) for key in value)
            elif value:
                out.add((f.name, None))
        return out

    def forget(self, entries: Iterable[tuple[str, Any]]) -> None:
        """Drop these memoised entries (never the partition's own bookkeeping)."""
        defaults = {f.name: f for f in fields(self)}
        for name, key in entries:
            if name in self.KEEP:
                continue
            if name in self.KEYED:
                getattr(self, name).pop(key, None)
                continue
            f = defaults[name]
            setattr(self, name, f.default_factory() if f.default_factory is not MISSING else f.default)


@dataclass(frozen=True)
class StoreFirsts:
    """The store's first records that a partition's subjects depend on: the first dues month (a dues
    streak counts back to it, :func:`engine.subjects.sources._months_without`).  Found once for a planned
    check's partitions (:func:`engine.evaluate.plan_check`): ``min(dues.month)`` has no index and read the
    whole dues table in each of them (at scale 1, ~0.6 s a partition, 57 times)."""

    dues_month: str | None


@dataclass
class BuildContext:
    conn: sa.Connection
    registry: Registry
    as_of: date
    memo: Memo = field(default_factory=Memo)  # per-evaluation memo of shared queries and values
    part: tuple[int, int] | None = None  # (k, n): build only the subjects of partition k of n
    only_orgs: set[str] | None = None  # org-level counts only for these orgs (judging a few submitted facts)
    # a planned partition (engine.cluster): the subjects under these top-level orgs, and with ``orphans``
    # the subjects that have no org; used instead of ``part``
    roots: frozenset[str] | None = None
    orphans: bool = False
    firsts: StoreFirsts | None = None  # the store's first records, when found once for every partition
    copy_pairs: CopyPairs | None = None  # the copy check's candidate pairs, when found once for the check

    @property
    def partitioned(self) -> bool:
        """Whether this context builds one partition's subjects (a hash share or planned subtrees)."""
        return self.part is not None or self.roots is not None

    def mine(self, org_id: str | None) -> bool:
        """Whether a subject of ``org_id`` belongs to this context's partition (by its top-level org)."""
        if self.part is None and self.roots is None:
            return True
        known = self.memo.mine
        answer = known.get(org_id)
        if answer is None and self.roots is not None:
            path = self.registry.path(org_id) if org_id is not None else []
            answer = self.orphans if org_id is None else (path[0] if path else org_id) in self.roots
            known[org_id] = answer
        elif answer is None and self.part is not None:
            k, n = self.part
            if org_id is None:
                answer = k == 0
            else:
                path = self.registry.path(org_id)
                answer = zlib.crc32((path[0] if path else org_id).encode()) % n == k
            known[org_id] = answer
        return bool(answer)

    def forget(self, entries: Iterable[tuple[str, Any]]) -> None:
        """Drop these memoised entries (never the partition's own bookkeeping): what is asked for again is
        rebuilt, so forgetting only ever costs time, never correctness."""
        self.memo.forget(entries)

    def in_part(self, column: Any, of: Literal["org", "member"]) -> Any:
        """A SQL condition keeping the rows of ``column`` (an org or a member id) that belong to this
        context's partition, or ``sa.true()`` without one.

        Each worker of a partitioned evaluation then reads only its own share of the big tables (half
        the rows and half the memory with two workers) instead of reading all and dropping the rest.
        The ids go into two temporary tables of this connection, filled on first use.
        """
        if self.part is None and self.roots is None:
            return sa.true()
        tables = self.memo.part_tables
        if tables is None:
            tables = self.memo.part_tables = self._part_tables()
        return column.in_(sa.select(tables[of].c.id))

    def _part_tables(self) -> dict[str, sa.Table]:
        meta = sa.MetaData()
        suffix = uuid.uuid4().hex[:12]  # unique per context: several may share a connection (tests)
        out: dict[str, sa.Table] = {}
        ids = {
            "org": [o for o in self.registry.orgs if self.mine(o)],
            "member": [m.id for m in self.registry.members.values() if self.mine(m.org)],
        }
        for of, wanted in ids.items():
            table = sa.Table(
                f"part_{of}_{suffix}", meta, sa.Column("id", sa.String, primary_key=True), prefixes=["TEMPORARY"]
            )
            table.create(self.conn)
            if wanted:
                self.conn.execute(sa.insert(table), [{"id": i} for i in wanted])
            out[of] = table
        return out


def month_col(column: Any) -> Any:
    """``YYYY-MM`` of a date column, portable between SQLite and PostgreSQL."""
    return sa.func.substr(sa.cast(column, sa.String), 1, 7)
