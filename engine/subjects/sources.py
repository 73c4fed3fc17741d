"""Derived values over periods, computed in SQL per (subject, month) and summed per period.

Each ``derive`` source of the pack format maps to one function here that runs
one query for the whole span being judged, so judging a year of months costs
the same queries as judging one month.  Zeros are implicit: a subject with no
row has done nothing, and that is what most rules catch.
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from engine.pack.model import (
    CommitteeTalks,
    Derive,
    DuesPaid,
    FieldVisits,
    Interviews,
    LecturesGiven,
    MeetingsAttended,
    MeetingsHeld,
    MonthsWithout,
    SignoffsMade,
    TermOverdue,
)
from engine.periods import Period, month_of, quarter_of
from engine.subjects.base import BuildContext, StoreFirsts, month_col
from engine.subjects.dues import dues_table
from engine.subjects.registry import MemberInfo
from engine.subjects.single import COMMITTEE_ROLES, MeetingData, memoised_meetings
from facts import tables as t

# value(subject_id, period) -> (value, companion fields, fact ids)
Value = tuple[float | int, dict[str, Any], list[str]]
ValueFn = Callable[[str, Period], Value]
NumberFn = Callable[[str, Period], float | int]


@dataclass(frozen=True, slots=True)
class Source:
    """One derived value of the subjects of a span: ``value`` with its companion fields and fact ids (for a
    subject's record), ``number`` the value alone (for the pre-filter's column of every subject)."""

    value: ValueFn
    number: NumberFn
    numbers: Callable[[Sequence[str], Period], list[float | int]] | None = None  # the number of many at once

    def column(self, ids: Sequence[str], period: Period) -> list[float | int]:
        """The number of each of ``ids`` in ``period`` (the pre-filter's column), in order."""
        if self.numbers is not None:
            return self.numbers(ids, period)
        number = self.number
        return [number(sid, period) for sid in ids]

    @classmethod
    def of(cls, value: ValueFn) -> Source:
        """A source whose number costs as much as its value (no companions worth skipping)."""
        return cls(value, lambda sid, period: value(sid, period)[0])

_M = t.MeetingRow.__table__  # type: ignore[attr-defined]
_TOPIC = t.MeetingTopicRow.__table__  # type: ignore[attr-defined]
_ATT = t.AttendanceRow.__table__  # type: ignore[attr-defined]
_DUES = t.DuesRow.__table__  # type: ignore[attr-defined]
_FV = t.FieldVisitRow.__table__  # type: ignore[attr-defined]
_INT = t.InterviewRow.__table__  # type: ignore[attr-defined]
_SIGN = t.SignoffRow.__table__  # type: ignore[attr-defined]
_ELEC = t.ElectionRow.__table__  # type: ignore[attr-defined]


def _sum_months(counts: dict[tuple[str, str], int], subject_id: str, period: Period) -> int:
    return sum(counts.get((subject_id, m), 0) for m in period.month_labels)


def _summed(counts: dict[tuple[str, str], int]) -> Source:
    """The source summing per-(subject, month) counts over a period's months."""
    by_month: dict[str, dict[str, int]] = {}  # month -> subject -> count, made for the first column

    def numbers(ids: Sequence[str], period: Period) -> list[float | int]:
        if counts and not by_month:
            for (sid, mon), n in counts.items():
                by_month.setdefault(mon, {})[sid] = n
        labels = period.month_labels
        total: dict[str, int]
        if len(labels) == 1:
            total = by_month.get(labels[0], {})
        else:
            total = Counter()
            for mon in labels:
                total.update(by_month.get(mon, {}))
        return [total.get(sid, 0) for sid in ids]

    return Source(
        lambda sid, period: (_sum_months(counts, sid, period), {}, []),
        lambda sid, period: _sum_months(counts, sid, period),
        numbers,
    )


def _meetings_held(ctx: BuildContext, spec: MeetingsHeld, start: date, end: date) -> Source:
    if spec.topics_any:
        return _summed(_held_with_topics(ctx, spec, start, end))
    by_kind = _held_by_kind(ctx, start, end)
    if len(spec.kinds) == 1:
        return _summed(by_kind.get(spec.kinds[0], {}))
    counts: Counter[tuple[str, str]] = Counter()
    for kind in spec.kinds:
        counts.update(by_kind.get(kind, {}))
    return _summed(counts)


def _held_by_kind(ctx: BuildContext, start: date, end: date) -> dict[str, dict[tuple[str, str], int]]:
    """kind -> (org, month) -> meetings held in [start, end] by the as-of date: one query per span shared
    by every ``meetings_held`` rule (it was one query per rule, each reading ~1 s of meeting rows)."""
    key = (start, end)
    found = ctx.memo.held.get(key)
    if found is not None:
        return found
    month = month_col(_M.c.date)
    day: Any = _M.c.date
    if ctx.conn.dialect.name == "sqlite":
        # SQLite would seek the date index and then read each meeting's wide row (minutes and all); with
        # the date behind a function it scans the (org, kind, date) index instead, which holds all the
        # query reads: ~2x faster
        day = sa.func.date(_M.c.date, type_=sa.Date)
    query = (
        sa.select(_M.c.kind, _M.c.org, month, sa.func.count())
        .where(day >= start, day <= end, day <= ctx.as_of)
        .where(ctx.in_part(_M.c.org, "org"))
        .group_by(_M.c.kind, _M.c.org, month)
    )
    if ctx.only_orgs is not None:
        query = query.where(_M.c.org.in_(sorted(ctx.only_orgs)))
    found = defaultdict(dict)
    for kind, org, mon, n in ctx.conn.execute(query):
        found[kind][(org, mon)] = int(n)
    ctx.memo.held[key] = found = dict(found)
    return found


def _held_with_topics(ctx: BuildContext, spec: MeetingsHeld, start: date, end: date) -> dict[tuple[str, str], int]:
    """(org, month) -> meetings of the spec's kinds with one of its topics (a few meetings: one query a rule)."""
    if ctx.only_orgs is not None and not ctx.partitioned:
        return _few_orgs_held_with_topics(ctx, spec, start, end)
    month = month_col(_M.c.date)
    query = (
        sa.select(_M.c.org, month, sa.func.count())
        .where(_M.c.kind.in_(spec.kinds), _M.c.date >= start, _M.c.date <= end, _M.c.date <= ctx.as_of)
        .where(ctx.in_part(_M.c.org, "org"))
        .group_by(_M.c.org, month)
    )
    if ctx.only_orgs is None and not ctx.partitioned:
        # the whole province: from the topic index to the meetings (a meeting once, however many of the
        # topics it has): ~2x faster on SQLite than checking every meeting of the span for a topic
        query = query.where(_M.c.id.in_(sa.select(_TOPIC.c.meeting).where(_TOPIC.c.topic.in_(spec.topics_any))))
    else:
        # a partition's or a few orgs' (a submitted fact's) meetings, through the (org, kind, date) index,
        # each checked for its own topics: the topic index lists the whole province's meetings with the
        # topic, which each of a scale-10 check's 57 partitions read (5.7 s of its 47), and a submission
        # three times
        has_topic = sa.exists().where(_TOPIC.c.meeting == _M.c.id, _TOPIC.c.topic.in_(spec.topics_any))
        query = query.where(has_topic)
        if ctx.only_orgs is not None:
            query = query.where(_M.c.org.in_(sorted(ctx.only_orgs)))
    return {(org, mon): int(n) for org, mon, n in ctx.conn.execute(query)}


def _few_orgs_held_with_topics(
    ctx: BuildContext, spec: MeetingsHeld, start: date, end: date
) -> dict[tuple[str, str], int]:
    """:func:`_held_with_topics` for a few orgs (a submitted fact's, an org's standing): their meetings of the
    spec's kinds in the calendar years of the span, with all their topics, read once and counted here for
    each rule.  A submitted Party-group meeting's month, quarter and year study rules (each of its own
    topic) asked a statement each; they now share one."""
    assert ctx.only_orgs is not None
    first, last = date(start.year, 1, 1), min(date(end.year, 12, 31), ctx.as_of)
    kinds = tuple(sorted(set(spec.kinds)))
    key = (kinds, first, last)
    meetings = ctx.memo.held_topics.get(key)
    if meetings is None:
        found: dict[str, tuple[str, date, set[str]]] = {}
        if first <= last:
            params = {"kinds": list(kinds), "first": first, "last": last, "orgs": sorted(ctx.only_orgs)}
            for meeting, org, day, topic in ctx.conn.execute(_meeting_topics_query(), params):
                held = found.get(meeting)
                if held is None:
                    held = found[meeting] = (org, day, set())
                held[2].add(topic)
        meetings = ctx.memo.held_topics[key] = [(org, day, frozenset(topics)) for org, day, topics in found.values()]
    wanted = frozenset(spec.topics_any)
    until = min(end, ctx.as_of)
    counts: Counter[tuple[str, str]] = Counter()
    for org, day, topics in meetings:
        if start <= day <= until and not wanted.isdisjoint(topics):
            counts[(org, day.isoformat()[:7])] += 1  # the month as month_col gives it
    return dict(counts)


@functools.lru_cache(maxsize=1)
def _meeting_topics_query() -> sa.Select[Any]:
    """(meeting, org, date, topic) of the meetings of ``kinds`` held by ``orgs`` in [``first``, ``last``] that
    have a topic; prebuilt, the lists expanding parameters (compiled once)."""
    return (
        sa.select(_M.c.id, _M.c.org, _M.c.date, _TOPIC.c.topic)
        .select_from(_M.join(_TOPIC, _TOPIC.c.meeting == _M.c.id))
        .where(
            _M.c.kind.in_(sa.bindparam("kinds", expanding=True)),
            _M.c.org.in_(sa.bindparam("orgs", expanding=True)),
            _M.c.date >= sa.bindparam("first"),
            _M.c.date <= sa.bindparam("last"),
        )
    )


def _attended_by_org(
    ctx: BuildContext, kinds: list[str], start: date, end: date, with_leave: bool = False
) -> dict[str, dict[str, dict[str, int]]]:
    """member -> org -> month -> meetings attended (present; or on recorded leave too, ``with_leave``)."""
    key = (tuple(kinds), start, end, with_leave)
    known = ctx.memo.attended.get(key)
    if known is not None:
        return known
    statuses = ["present", "leave"] if with_leave else ["present"]
    loaded = memoised_meetings(ctx, start, end)
    if loaded is not None:  # the meeting rules hold every meeting of the span with who was present
        found = _attended_from(loaded, set(kinds), start, min(end, ctx.as_of), with_leave)
    else:
        # attendance only ever counts at the member's own org and its groups, which are in the member's
        # partition: so the partition's meetings hold all that counts for its members, and starting from
        # them is ~25% faster than starting from the members (rows of visitors from elsewhere are unused)
        query = _attendance_counts(kinds, start, min(end, ctx.as_of), statuses).where(ctx.in_part(_M.c.org, "org"))
        found = defaultdict(lambda: defaultdict(dict))
        for member, org, mon, n in ctx.conn.execute(query):
            found[member][org][mon] = int(n)
    ctx.memo.attended[key] = _with_wanderers(ctx, found, kinds, start, end, statuses)
    return ctx.memo.attended[key]


def _attendance_counts(kinds: list[str], start: date, end: date, statuses: list[str]) -> sa.Select[Any]:
    """(member, org, month, meetings) of attendance with ``statuses`` at meetings of ``kinds`` (all when
    empty) held in [start, end]; the caller says whose."""
    month = month_col(_M.c.date)
    query = (
        sa.select(_ATT.c.member, _M.c.org, month, sa.func.count())
        .select_from(_ATT.join(_M, _M.c.id == _ATT.c.meeting))
        .where(_ATT.c.status.in_(statuses), _M.c.date >= start, _M.c.date <= end)
        .group_by(_ATT.c.member, _M.c.org, month)
    )
    return query.where(_M.c.kind.in_(kinds)) if kinds else query


def _with_wanderers(
    ctx: BuildContext,
    out: dict[str, dict[str, dict[str, int]]],
    kinds: list[str],
    start: date,
    end: date,
    statuses: list[str],
) -> dict[str, dict[str, dict[str, int]]]:
    """``out`` with the attendance of this partition's members who were transferred to or from an org of
    another partition counted at every org (what was read above is the partition's own meetings only).

    A member is judged in the partition of the org the registry first gives them, so one transferred
    across top-level subtrees attended, before or after the transfer, meetings that another partition
    holds; without this, a partitioned check would see months without attendance that a single process
    does not (tests/test_partition.py)."""
    wanderers = _wanderers(ctx)
    if not wanderers:
        return out
    for part in range(0, len(wanderers), 500):
        ids = wanderers[part : part + 500]
        query = _attendance_counts(kinds, start, min(end, ctx.as_of), statuses).where(_ATT.c.member.in_(ids))
        for member in ids:
            out.pop(member, None)
        for member, org, mon, n in ctx.conn.execute(query):
            out.setdefault(member, defaultdict(dict))[org][mon] = int(n)
    return out



def _wanderers(ctx: BuildContext) -> list[str]:
    """This partition's members transferred to or from an org of another partition (none unpartitioned),
    whose attendance the partition's own meetings do not all hold (:func:`_with_wanderers`)."""
    if ctx.part is None and ctx.roots is None:
        return []
    return sorted(
        m.id for m in ctx.registry.members.values()
        if m.changes and ctx.mine(m.org) and any(c.org is not None and not ctx.mine(c.org) for c in m.changes)
    )

def _attended_from(
    data: MeetingData, kinds: set[str], start: date, end: date, with_leave: bool = False
) -> dict[str, dict[str, dict[str, int]]]:
    """member -> org -> month -> meetings attended, counted from memoised meetings (as the SQL would)."""
    # the attendance sets grouped by (org, month) first, then counted set-wise (a Counter over each group's
    # members, in C) instead of one Python update per attendance row
    groups: dict[tuple[str, str], list[set[str]]] = defaultdict(list)
    labels: dict[tuple[int, int], str] = {}
    for m in data.of_kinds(kinds):
        if not (start <= m.date <= end):
            continue
        present = data.present.get(m.id)
        if with_leave and m.id in data.on_leave:
            present = (present or set()) | data.on_leave[m.id]
        if not present:
            continue
        ym = (m.date.year, m.date.month)
        mon = labels.get(ym)
        if mon is None:
            mon = labels[ym] = f"{ym[0]:04d}-{ym[1]:02d}"
        groups[(m.org, mon)].append(present)
    out: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for (org, mon), sets in groups.items():
        for member, n in Counter(itertools.chain.from_iterable(sets)).items():
            out[member][org][mon] = n
    return out


def _own_orgs(ctx: BuildContext, member_id: str, include_groups: bool, period: Period | None = None) -> frozenset[str]:
    """The member's org, with its groups when asked (shared per org: never to be mutated); for a member
    with dated changes, every org the member was in during ``period`` (both branches in a month of transfer)."""
    info = ctx.registry.members.get(member_id)
    if info is None:
        return frozenset()
    if info.changes and period is not None:
        return frozenset().union(
            *(_own_orgs_of(ctx, st.org, include_groups) for st in info.states_during(period.start, period.end))
        )
    return _own_orgs_of(ctx, info.org if not info.changes else info.latest.org, include_groups)


def _own_orgs_of(ctx: BuildContext, org: str, include_groups: bool) -> frozenset[str]:
    known = ctx.memo.own_orgs
    found = known.get((org, include_groups))
    if found is None:
        found = known[(org, include_groups)] = frozenset(
            ctx.registry.org_and_groups(org) if include_groups else {org}
        )
    return found


def _meetings_attended(ctx: BuildContext, spec: MeetingsAttended, start: date, end: date) -> ValueFn:
    data = _attended_by_org(ctx, list(spec.kinds), start, end)

    def value(sid: str, period: Period) -> Value:
        orgs = _own_orgs(ctx, sid, spec.include_groups, period)
        by_org = data.get(sid, {})
        months = set(period.month_labels)
        n = sum(c for org in orgs for mon, c in by_org.get(org, {}).items() if mon in months)
        return n, {}, []

    return value


def _per_member_month(ctx: BuildContext, query: sa.Select[Any]) -> Source:
    counts = {(who, mon): int(n) for who, mon, n in ctx.conn.execute(query)}
    return _summed(counts)


def _lectures_given(ctx: BuildContext, _spec: LecturesGiven, start: date, end: date) -> Source:
    month = month_col(_M.c.date)
    return _per_member_month(
        ctx,
        sa.select(_M.c.lecturer, month, sa.func.count())
        .where(
            _M.c.kind == "party_lecture",
            _M.c.lecturer.is_not(None),
            _M.c.date >= start,
            _M.c.date <= end,
            _M.c.date <= ctx.as_of,
            ctx.in_part(_M.c.lecturer, "member"),
        )
        .group_by(_M.c.lecturer, month),
    )


def _field_visits(ctx: BuildContext, _spec: FieldVisits, start: date, end: date) -> Source:
    month = month_col(_FV.c.date)
    return _per_member_month(
        ctx,
        sa.select(_FV.c.member, month, sa.func.count())
        .where(_FV.c.date >= start, _FV.c.date <= end, _FV.c.date <= ctx.as_of)
        .where(ctx.in_part(_FV.c.member, "member"))
        .group_by(_FV.c.member, month),
    )


def _interview_rows(ctx: BuildContext, kinds: Sequence[str], start: date, end: date) -> sa.Select[Any]:
    """(interviewer, interviewee, date) of the interviews of ``kinds`` in [start, end] by the as-of date that
    involve a member of this context's partition (either side: a subject counts both).

    Both interview sources judge members, and a member's count needs only the talks they took part in;
    reading the whole province's interviews in every partition made a scale-10 partition (1/57th of it)
    fetch 2.8 M rows (11 s of its 47)."""
    return sa.select(_INT.c.interviewer, _INT.c.interviewee, _INT.c.date).where(
        _INT.c.kind.in_(kinds),
        _INT.c.date >= start,
        _INT.c.date <= end,
        _INT.c.date <= ctx.as_of,
        sa.or_(ctx.in_part(_INT.c.interviewer, "member"), ctx.in_part(_INT.c.interviewee, "member")),
    )


def _interviews(ctx: BuildContext, spec: Interviews, start: date, end: date) -> Source:
    reg = ctx.registry
    counts: dict[tuple[str, str], int] = defaultdict(int)
    rows = ctx.conn.execute(_interview_rows(ctx, spec.kinds, start, end))
    for a, b, day in rows:
        for me, other in ((a, b), (b, a)):
            mine, theirs = reg.members.get(me), reg.members.get(other)
            if mine is None or theirs is None:
                continue
            mine, theirs = mine.at(day), theirs.at(day)  # roles and orgs on the day of the talk
            if spec.with_roles and not (theirs.roles & set(spec.with_roles)):
                continue
            if spec.same_org and mine.org != theirs.org:
                continue
            counts[(me, month_of(day).label)] += 1
    return _summed(counts)


def _committee_talks(ctx: BuildContext, spec: CommitteeTalks, start: date, end: date) -> ValueFn:
    reg = ctx.registry
    talked: dict[tuple[str, str], set[str]] = defaultdict(set)  # (member, other) -> months they talked
    rows = ctx.conn.execute(_interview_rows(ctx, spec.kinds, start, end))
    for a, b, day in rows:
        mon = month_of(day).label
        talked[(a, b)].add(mon)
        talked[(b, a)].add(mon)

    def value(sid: str, period: Period) -> Value:
        info = reg.members.get(sid)
        if info is None:
            return 0, {"missing": "无", "peers": 0}, []
        day = min(period.end, info.left) if info.left else period.end
        me = info.at(day)
        months = set(period.month_labels)
        peers = []
        for other in reg.members_of.get(me.org, []):
            if other.id == sid or not other.belongs_on(day):
                continue
            st = other.at(day)
            if st.org == me.org and st.roles & COMMITTEE_ROLES:
                peers.append(st)
        missing = sorted((p for p in peers if not (talked.get((sid, p.id), set()) & months)), key=lambda p: p.id)
        return (
            len(missing),
            {"missing": "、".join(p.name for p in missing) or "无", "peers": len(peers)},
            [],
        )

    return value


def _dues_rows(ctx: BuildContext, start: date, end: date) -> dict[str, dict[str, str]]:
    """dues month -> member -> the day paid (ISO), for dues months in [start, end] paid by the as-of date
    (from the span's dues read once, :func:`engine.subjects.dues.dues_table`)."""
    key = (start, end)
    found = ctx.memo.dues.get(key)
    if found is None:
        first, last = month_of(start).label, month_of(end).label
        found = ctx.memo.dues[key] = dues_table(ctx, first, last).paid_by(ctx.as_of, first, last)
    return found


def _dues_paid(ctx: BuildContext, spec: DuesPaid, start: date, end: date) -> Source:
    data = _dues_rows(ctx, start, end)
    reg = ctx.registry
    nothing: dict[str, str] = {}
    as_of = ctx.as_of
    special = {m.id for m in reg.members.values() if m.dues_quarterly or m.changes}  # counted month by month

    def number(sid: str, period: Period, dates: list[str] | None = None) -> int:
        """Months of ``period`` paid (on time with ``on_time``); the dates paid appended to ``dates``."""
        n = 0
        mem = reg.members.get(sid)
        quarterly = mem is not None and bool(mem.dues_quarterly or mem.changes)
        for m in period.month_periods:
            day = data.get(m.label, nothing).get(sid)
            due = m.end
            if (
                quarterly
                and mem is not None
                and mem.at(max(m.start, mem.joined) if mem.joined else m.start).dues_quarterly
            ):
                due = quarter_of(m.start).end  # paid quarterly with the branch's approval: due by quarter end
            if day is not None:
                if dates is not None:
                    dates.append(day)
                if not spec.on_time or day <= due.isoformat():  # ISO days compare as the days
                    n += 1
            elif due > m.end and as_of <= due:
                n += 1  # a quarterly payer's month whose quarter has not yet ended is not yet due
        return n

    def value(sid: str, period: Period) -> Value:
        dates: list[str] = []
        n = number(sid, period, dates)
        return n, {"paid_on": "、".join(dates) if dates else "未交纳"}, []

    def numbers(ids: Sequence[str], period: Period) -> list[float | int]:
        """:func:`number` of each of ``ids``; a month's for a member paying monthly, without dated changes,
        inline (most of a province's member-months): paid, and on time when asked, by the month's end."""
        if len(period.month_periods) != 1:
            return [number(sid, period) for sid in ids]
        label, due = period.month_labels[0], period.month_periods[0].end.isoformat()
        paid = data.get(label, nothing)
        ok = {sid for sid, day in paid.items() if day <= due} if spec.on_time else paid.keys()
        return [number(sid, period) if sid in special else (1 if sid in ok else 0) for sid in ids]

    return Source(value, number, numbers)


def _signoffs(ctx: BuildContext, spec: SignoffsMade, start: date, end: date) -> ValueFn:
    years = range(start.year, end.year + 1)
    docs = {spec.document.format(year=y): y for y in years}
    first: dict[tuple[str, int], date] = {}
    for unit, doc, day in ctx.conn.execute(
        sa.select(_SIGN.c.unit, _SIGN.c.document, _SIGN.c.date).where(
            _SIGN.c.document.in_(list(docs)),
            _SIGN.c.unit.is_not(None),
            _SIGN.c.date <= ctx.as_of,
            ctx.in_part(_SIGN.c.unit, "org"),  # the units this partition judges, not the province's
        )
    ):
        k = (unit, docs[doc])
        if k not in first or day < first[k]:
            first[k] = day

    def value(sid: str, period: Period) -> Value:
        day = first.get((sid, period.start.year))
        if day is None:
            return 0, {}, []
        limit = date.fromisoformat(f"{period.start.year}-{spec.by}") if spec.by else period.end
        return (1 if day <= limit else 0), {}, []

    return value


def _months_without(ctx: BuildContext, spec: MonthsWithout, start: date, end: date) -> Source:
    # the streak walks back to the member's joining or to the store's first record of the thing,
    # so the data is read from that first record on: the count never depends on the range asked for
    if spec.of == "dues":
        horizon = (ctx.firsts or store_firsts(ctx.conn)).dues_month
        if horizon:
            first_day = date.fromisoformat(horizon + "-01")
            paid_at = {_month_index(label): who for label, who in _dues_rows(ctx, first_day, end).items()}
            return _streaks(ctx, first_day, paid_at)
    else:
        horizon_day = ctx.conn.execute(sa.select(sa.func.min(_M.c.date))).scalar()
        if horizon_day:
            return _attendance_streaks(ctx, date.fromisoformat(str(horizon_day)[:7] + "-01"), end)
    no_extra: dict[str, Any] = {}
    no_facts: list[str] = []
    return Source(lambda sid, period: (0, no_extra, no_facts), lambda sid, period: 0)


def store_firsts(conn: sa.Connection) -> StoreFirsts:
    """The store's first records (:class:`~engine.subjects.base.StoreFirsts`): a scan of the dues table."""
    return StoreFirsts(conn.execute(sa.select(sa.func.min(_DUES.c.month))).scalar())


def _streaks(ctx: BuildContext, first_day: date, active: Mapping[int, Container[str]]) -> Source:
    """The months back from a month, down to the member's joining or ``first_day`` (the store's first
    record), in which the member was not active: ``active[i]`` holds the members active in running month
    ``i`` (:func:`_month_index`)."""
    first = _month_index(first_day.isoformat()[:7])
    joined_at = {m.id: m.joined.year * 12 + m.joined.month - 1 for m in ctx.registry.members.values() if m.joined}
    at: dict[str, int] = {}  # period label -> its running month number
    empty: frozenset[str] = frozenset()
    no_extra: dict[str, Any] = {}
    no_facts: list[str] = []

    def streak(sid: str, period: Period) -> int:
        i = at.get(period.label)
        if i is None:
            i = at[period.label] = _month_index(period.label)
        stop = max(first, joined_at.get(sid, first))  # the streak counts back to here at most
        run = 0
        while i >= stop and sid not in active.get(i, empty):
            run += 1
            i -= 1
        return run

    def numbers(ids: Sequence[str], period: Period) -> list[float | int]:
        now = active.get(_month_index(period.label), empty)  # active in the month itself: most members
        return [0 if sid in now else streak(sid, period) for sid in ids]

    return Source(lambda sid, period: (streak(sid, period), no_extra, no_facts), streak, numbers)


def _attendance_streaks(ctx: BuildContext, first_day: date, end: date) -> Source:
    """``months_without`` of attendance: the months back from a month, down to the member's joining or the
    store's first meeting (``first_day``), in which the member attended (present, or on recorded leave:
    请假, 党章第九条) no meeting of their own org or its groups and was not excused (年老体弱、长期患病).

    Counted set-wise (it was member by member, from member → org → month counts): who attended anything at
    each (org, month) is one set (from the meetings the meeting rules memoised, else one SQL query); a
    member without dated changes or excusals is active in a month when in one of those sets of their org
    and its groups, found by intersecting each set with the org's members; members with dated changes
    (their orgs by month), excusals, or attendance in another partition (transferred across top-level
    orgs: read again in SQL) are looked up one by one.  A streak is then one set look-up a month."""
    reg = ctx.registry
    last = min(end, ctx.as_of)
    first = _month_index(first_day.isoformat()[:7])
    statuses = ["present", "leave"]
    attended: dict[tuple[str, int], set[str]] = defaultdict(set)  # (org, month number) -> present or on leave
    loaded = memoised_meetings(ctx, first_day, end)
    if loaded is not None:  # the meeting rules hold every meeting of the span with who was there
        present, on_leave = loaded.present, loaded.on_leave
        for m in loaded.rows:
            if not (first_day <= m.date <= last):
                continue
            here = present.get(m.id)
            away = on_leave.get(m.id)
            if here or away:
                who = attended[(m.org, m.date.year * 12 + m.date.month - 1)]
                if here:
                    who.update(here)
                if away:
                    who.update(away)
    else:
        query = _attendance_counts([], first_day, last, statuses).where(ctx.in_part(_M.c.org, "org"))
        for member, org, mon, _n in ctx.conn.execute(query):
            attended[(org, _month_index(mon))].add(member)
    elsewhere: dict[str, set[tuple[str, int]]] = defaultdict(set)  # a wanderer -> (org, month) attended
    wanderers = _wanderers(ctx)
    for part in range(0, len(wanderers), 500):
        query = _attendance_counts([], first_day, last, statuses)
        query = query.where(_ATT.c.member.in_(wanderers[part : part + 500]))
        for member, org, mon, _n in ctx.conn.execute(query):
            elsewhere[member].add((org, _month_index(mon)))
    span = list(range(first, _month_index(last.isoformat()[:7]) + 1)) if last >= first_day else []

    # who was active in each month: a member without dated changes or excusals when in the union of the
    # sets of their org and its groups (intersected with the org's members, in C); the others one by one
    active: dict[int, set[str]] = defaultdict(set)
    wandering = set(wanderers)
    home: dict[str, set[str]] = defaultdict(set)  # org -> its members without changes or excusals
    for info in reg.members.values():
        if not ctx.mine(info.org):
            continue
        if not (info.changes or info.excused):
            home[info.org].add(info.id)
            continue
        seen = elsewhere.get(info.id, set()) if info.id in wandering else None
        for i in span:
            orgs = _own_orgs(ctx, info.id, True, _month(_month_label(i)) if info.changes else None)
            if seen is not None:
                hit = any((org, i) in seen for org in orgs)
            else:
                hit = any(info.id in attended.get((org, i), ()) for org in orgs)
            if hit:
                active[i].add(info.id)
        if info.excused or any(c.excused is not None for c in info.changes):
            for m in _excused_months(info, first_day, end):
                active[_month_index(m)].add(info.id)
    for org, people in home.items():
        own = _own_orgs_of(ctx, org, True)
        for i in span:
            for o in own:
                there = attended.get((o, i))
                if there:
                    active[i] |= people & there
    return _streaks(ctx, first_day, active)


def _month_label(index: int) -> str:
    """A running month number (:func:`_month_index`) as ``YYYY-MM``."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _month(label: str) -> Period:
    return month_of(date.fromisoformat(label + "-01"))


def _excused_months(info: MemberInfo, start: date, end: date) -> list[str]:
    """``YYYY-MM`` of each month in [start, end] during which the member was excused at some point."""
    out = []
    m = month_of(start)
    while m.start <= end:
        if any(st.excused for st in info.states_during(m.start, m.end)):
            out.append(m.label)
        m = month_of(m.end + timedelta(days=1))
    return out


def _month_index(label: str) -> int:
    """``YYYY-MM`` as a running month number, for stepping back month by month cheaply."""
    return int(label[:4]) * 12 + int(label[5:7]) - 1


def _term_overdue(ctx: BuildContext, _spec: TermOverdue, start: date, end: date) -> ValueFn:
    elections: dict[str, list[tuple[date, int | None]]] = defaultdict(list)
    query = sa.select(_ELEC.c.org, _ELEC.c.date, _ELEC.c.term_years).where(ctx.in_part(_ELEC.c.org, "org"))
    for org, day, term in ctx.conn.execute(query):
        elections[org].append((day, term))

    def value(sid: str, period: Period) -> Value:
        judge = min(ctx.as_of, period.end)
        org = ctx.registry.orgs[sid]
        past = sorted(e for e in elections.get(sid, []) if e[0] <= judge)
        base = past[-1][0] if past else org.established
        term = (past[-1][1] if past and past[-1][1] else None) or org.term_years
        if base is None or term is None:
            return -1, {"term_years": term or 0, "last_election": "无记录", "due_date": "无法判断"}, []
        due = _add_years(base, term)
        facts = [f"election:{sid}|{past[-1][0].isoformat()}"] if past else []
        return (
            (judge - due).days,
            {"term_years": term, "last_election": base.isoformat(), "due_date": due.isoformat()},
            facts,
        )

    return value


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28) + timedelta(days=1)


BUILDERS: dict[type, Callable[..., ValueFn | Source]] = {
    MeetingsHeld: _meetings_held,
    MeetingsAttended: _meetings_attended,
    LecturesGiven: _lectures_given,
    FieldVisits: _field_visits,
    Interviews: _interviews,
    CommitteeTalks: _committee_talks,
    DuesPaid: _dues_paid,
    SignoffsMade: _signoffs,
    MonthsWithout: _months_without,
    TermOverdue: _term_overdue,
}


def value_function(ctx: BuildContext, spec: Derive, start: date, end: date) -> Source:
    """The functions giving one derived value of a subject over a period within [start, end]."""
    built = BUILDERS[type(spec)](ctx, spec, start, end)
    return built if isinstance(built, Source) else Source.of(built)
