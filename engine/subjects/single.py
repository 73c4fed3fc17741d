"""Subjects that are single facts: meetings, dues payments, petitions, promotions.

Each carries derived fields computed against the registry on the fact's
date (eligible attendance, the dues standard for the member's bracket, days
to register or close a petition as of the judging date, the declaration a
promotion needed), so a record can never make its own quorum.
"""

from __future__ import annotations

import bisect
import functools
import uuid
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

import numpy as np
import sqlalchemy as sa

from engine.pack.model import DuesSubject, MeetingSubject, PetitionSubject, PromotionSubject, Rule
from engine.pack.params import MINUTES_PARTS, required_parts
from engine.periods import Period, month_of
from engine.subjects.base import BuildContext, Subject
from engine.subjects.columns import Chunk, SubjectColumns
from engine.subjects.copy_pairs import JOIN_SHARE, every_pair, judges_copies, meetings_of_rowids
from engine.subjects.dues import DuesTable, dues_table, pick
from engine.subjects.registry import MemberInfo
from engine.subjects.similarity import MIN_SHARED_BANDS, Text, earlier_copies
from facts import tables as t
from facts.minhash import BANDS

MEETING_KIND_CN = {
    "party_group_meeting": "党组会议",
    "central_group_study": "理论学习中心组学习",
    "member_assembly": "支部党员大会",
    "committee_meeting": "支部委员会会议",
    "group_meeting": "党小组会",
    "party_lecture": "党课",
    "theme_day": "主题党日",
    "org_life_meeting": "组织生活会",
    "democratic_life_meeting": "民主生活会",
    "member_appraisal": "民主评议党员",
    "topic_discussion": "专题研讨",
}
_M = t.MeetingRow.__table__  # type: ignore[attr-defined]
_TOPIC = t.MeetingTopicRow.__table__  # type: ignore[attr-defined]
_ATT = t.AttendanceRow.__table__  # type: ignore[attr-defined]
_PET = t.PetitionRow.__table__  # type: ignore[attr-defined]
_SIG = t.MinutesSigRow.__table__  # type: ignore[attr-defined]
_FEW = 50  # up to this many targets, copy candidates are looked up without counting the stored signatures
_PROMO = t.PromotionRow.__table__  # type: ignore[attr-defined]
_DECL = t.DeclarationRow.__table__  # type: ignore[attr-defined]
_MEMBER = t.MemberRow.__table__  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=4096)
def _month_labels(day: date) -> tuple[str, str]:
    p = month_of(day)
    return p.label, p.label_cn


def _period_fields(day: date) -> dict[str, str]:
    label, label_cn = _month_labels(day)
    return {"period": label, "period_label": label_cn}


def _span(months: list[Period]) -> tuple[date, date]:
    return min(m.start for m in months), max(m.end for m in months)


def _eligible(ctx: BuildContext, spec: MeetingSubject, kind: str, org: str, day: date) -> frozenset[str]:
    """Who should attend a meeting of ``org`` on ``day``, from the registry as it stood that day (never to
    be mutated: it is shared).

    The set only changes on a day somebody joins, the day after somebody leaves, or the day of a dated
    change (conversion, transfer, appointment…) of a member of the pool, so it is computed once per
    stretch between such days (a branch holds ~70 meetings a year and its members rarely change).
    """
    party_group = spec.eligible == "party_group_members" or (
        spec.eligible == "members" and kind == "party_group_meeting"
    )
    committee = spec.eligible == "committee_members"
    statuses = (
        None
        if party_group or committee
        else ("full",) if spec.eligible == "full_members" else ("full", "probationary")
    )
    key = (party_group, committee, statuses, org)
    entry = ctx.memo.eligible.get(key)
    if entry is None:
        reg = ctx.registry
        pool = list((reg.party_group_members_of if party_group else reg.members_of).get(org, []))
        if statuses is not None:  # a member who never had one of these statuses never counts
            pool = [m for m in pool if any(st.status in statuses for st in (m, *(m.at(c.date) for c in m.changes)))]
        changes = sorted(
            {m.joined for m in pool if m.joined}
            | {m.left + timedelta(days=1) for m in pool if m.left}
            | {c.date for m in pool for c in m.changes}
        )
        stretches: dict[int, frozenset[str]] = {}
        entry = ctx.memo.eligible[key] = (pool, changes, stretches)
    pool, changes, by_stretch = entry
    stretch = bisect.bisect_right(changes, day)
    found: frozenset[str] | None = by_stretch.get(stretch)
    if found is None:
        found = by_stretch[stretch] = frozenset(
            m.id
            for m in pool
            if (m.joined is None or m.joined <= day)
            and (m.left is None or m.left >= day)
            and _counts(m.at(day), org, party_group, committee, statuses)
        )
    return found


def _counts(m: MemberInfo, org: str, party_group: bool, committee: bool, statuses: tuple[str, ...] | None) -> bool:
    """Whether the member, as the registry stood on the meeting's day, should attend a meeting of ``org``."""
    if party_group:
        return "party_group_member" in m.roles and (m.org == org or org in m.extra_orgs)
    if m.org != org:
        return False
    if committee:
        return bool(m.roles & COMMITTEE_ROLES)
    return statuses is None or m.status in statuses


#: the roles that make a member of a branch committee (支部委员会): its secretary and its members
COMMITTEE_ROLES = frozenset({"branch_secretary", "committee_member"})


#: each part of the minutes that is a column, with its bit in ``meeting.minutes_parts`` (set when the part
#: holds something besides white space; filled wherever a meeting is written, :func:`facts.tables.minutes_parts`)
_PART_BITS = {col: 1 << t.MINUTES_TEXT_COLUMNS.index(col) for col, _label in MINUTES_PARTS.values() if col}


@dataclass
class MeetingData:
    """Meetings in a span with their topics and attendance sets, loaded once per evaluation."""

    rows: list[Any]
    topics: dict[str, list[str]]
    present: dict[str, set[str]]
    leave_ok: dict[str, set[str]]  # on leave with opinion given in advance
    on_leave: dict[str, set[str]]
    by_kind: dict[str, list[int]] = field(default_factory=dict)  # kind -> indexes of its rows (made on first use)

    def of_kinds(self, kinds: Collection[str]) -> list[Any]:
        """The rows of these kinds (all without any), in the order of :attr:`rows`."""
        if not kinds:
            return self.rows
        if not self.by_kind:
            for i, m in enumerate(self.rows):
                self.by_kind.setdefault(m.kind, []).append(i)
        picked = [self.by_kind.get(k, []) for k in set(kinds)]
        indexes = picked[0] if len(picked) == 1 else sorted(i for part in picked for i in part)
        return [self.rows[i] for i in indexes]


def _meeting_data(ctx: BuildContext, start: date, end: date, only: set[str] | None) -> MeetingData:
    key = (start, end, frozenset(only) if only is not None else None)
    known = ctx.memo.meetings.get(key)
    if known is not None:
        return known
    # whether each part of the minutes has text as bits filled on writing, not the text itself (a province's
    # minutes are hundreds of MB): read from a covering index, as are the ids the topics and attendance follow
    cols = [_M.c.id, _M.c.org, _M.c.kind, _M.c.date, _M.c.minutes_parts]
    in_span = sa.and_(_M.c.date >= start, _M.c.date <= end, ctx.in_part(_M.c.org, "org"))
    if only is not None:
        in_span = sa.and_(in_span, _M.c.id.in_(sorted(only)))
    data = MeetingData(list(ctx.conn.execute(sa.select(*cols).where(in_span)).all()), defaultdict(list),
                        defaultdict(set), defaultdict(set), defaultdict(set))
    _topics_and_attendance(ctx, data, sa.select(_M.c.id).where(in_span))
    ctx.memo.meetings[key] = data
    return data


def _id_table(conn: sa.Connection, ids: list[str]) -> sa.Table:
    """A temporary table of these ids (dropped by the caller)."""
    table = sa.Table(
        f"meeting_ids_{uuid.uuid4().hex[:12]}",
        sa.MetaData(),
        sa.Column("id", sa.String, primary_key=True),
        prefixes=["TEMPORARY"],
    )
    table.create(conn)
    if ids and conn.dialect.name == "sqlite":  # the driver's executemany: ~10x faster than building each row's parameters
        conn.exec_driver_sql(f"INSERT INTO {table.name} (id) VALUES (?)", [(i,) for i in ids])
    elif ids:  # PostgreSQL: SQLAlchemy's batched multi-row VALUES (psycopg2's executemany is a round trip a row)
        conn.execute(sa.insert(table), [{"id": i} for i in ids])
    return table


def _topics_and_attendance(ctx: BuildContext, data: MeetingData, wanted: sa.Select[Any]) -> None:
    # ``IN (SELECT id FROM meeting WHERE …)``: planned as probes of the (meeting, ...) keys for each id read
    # from the covering index ``ix_meeting_date_parts`` (never a scan of all attendance: judging one submitted
    # meeting must not read the province's), and as fast for a whole province's ids
    topics = sa.select(_TOPIC.c.meeting, _TOPIC.c.topic).where(_TOPIC.c.meeting.in_(wanted))
    for meeting, topic in ctx.conn.execute(topics).all():
        data.topics[meeting].append(topic)
    # attendance as one row per (meeting, status, opinion) with the members joined in SQL: a province's
    # ~4 million attendance rows reach Python as ~400,000 strings, split in C.  Every status is read (the
    # absent are ~0.3 % of the rows, and left here): the groups then come in the order of the covering index
    # ``ix_attendance_meeting_status``, one probe a meeting, with no sort
    members = _joined_ids(ctx.conn, _ATT.c.member)
    att = (
        sa.select(_ATT.c.meeting, _ATT.c.status, _ATT.c.opinion_given, members, sa.func.count())
        .where(_ATT.c.meeting.in_(wanted))
        .group_by(_ATT.c.meeting, _ATT.c.status, _ATT.c.opinion_given)
    )
    for meeting, status, opinion, joined_ids, count in ctx.conn.execute(att):
        if status != "present" and status != "leave":
            continue
        found = joined_ids.split(_SEP)
        if len(found) != count:  # an id holding the separator itself: read this meeting's rows one by one
            rows = ctx.conn.execute(
                sa.select(_ATT.c.member).where(
                    _ATT.c.meeting == meeting, _ATT.c.status == status, _ATT.c.opinion_given == opinion
                )
            )
            found = list(rows.scalars())
        if status == "present":
            known = data.present.get(meeting)
            if known is None:
                data.present[meeting] = set(found)
            else:  # present with and without an opinion given: two groups
                known.update(found)
        else:
            data.on_leave[meeting].update(found)
            if opinion:
                data.leave_ok[meeting].update(found)


def memoised_meetings(ctx: BuildContext, start: date, end: date) -> MeetingData | None:
    """The meetings (with who attended) the meeting rules memoised for a span covering [start, end], if any."""
    for (first, last, only), value in ctx.memo.meetings.items():
        if only is None and first <= start and end <= last:
            return value
    return None


_SEP = "\x1f"  # the ASCII unit separator: joins member ids in SQL


def _joined_ids(conn: sa.Connection, column: Any) -> Any:
    """``column``'s values of a group joined by :data:`_SEP` (``group_concat`` / ``string_agg``)."""
    if conn.dialect.name == "postgresql":
        return sa.func.string_agg(column, sa.literal(_SEP))
    return sa.func.group_concat(column, sa.literal(_SEP))


def meeting_subjects(
    ctx: BuildContext, rule: Rule, months: list[Period], only: set[str] | None = None
) -> list[Subject]:
    """Every meeting of ``months`` a rule judges, as a built subject."""
    return list(meeting_columns(ctx, rule, months, only))


def meeting_columns(
    ctx: BuildContext, rule: Rule, months: list[Period], only: set[str] | None = None
) -> MeetingColumns:
    """The meetings of ``months`` a rule judges as columns (attendance counts, parts of the minutes
    missing, copy similarity); a meeting's record — absentees' names and all — built on demand."""
    spec = rule.subject
    assert isinstance(spec, MeetingSubject)
    start, end = _span(months)
    data = _meeting_data(ctx, start, end, only)
    wanted = set(spec.topics_any)
    meetings = [
        m for m in data.of_kinds(spec.kinds)
        if (not wanted or wanted.intersection(data.topics.get(m.id, ()))) and ctx.mine(m.org)
    ]
    copies: dict[str, tuple[float, str]] = {}
    if judges_copies(rule.when):
        copies = _copies(ctx, spec, end, {m.id for m in meetings})
    span = (start, end, frozenset(only) if only is not None else None)
    return MeetingColumns(ctx, spec, data, meetings, copies, required_parts(rule), span)


class MeetingColumns(SubjectColumns):
    """A meeting rule's meetings held as columns.

    What every rule with the same notion of "eligible" shares (attendance counts, a meeting's record
    besides the copy check) and which parts of the minutes are empty are memoised per meeting and
    evaluation (a province-year has ~360,000 meetings and six meeting rules)."""

    _ATTENDANCE = ("eligible", "present", "on_leave", "absent_without_leave", "attendance_ratio")

    def __init__(
        self,
        ctx: BuildContext,
        spec: MeetingSubject,
        data: MeetingData,
        meetings: list[Any],
        copies: dict[str, tuple[float, str]],
        parts: tuple[str, ...],
        span: tuple[date, date, frozenset[str] | None],
    ) -> None:
        self.ctx, self.spec, self.data, self.meetings, self.copies, self.parts = ctx, spec, data, meetings, copies, parts
        memo = ctx.memo
        self.fields_memo = memo.meeting_fields.setdefault((span, spec.eligible), {})
        self.counts_memo = memo.meeting_attendance.setdefault((span, spec.eligible), {})
        self.absent = memo.meeting_absent_parts.setdefault(span, {})
        self.missing_by_absent: dict[frozenset[str], dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self.meetings)

    def values(self, name: str) -> list[Any] | None:
        if name in self._ATTENDANCE:
            return [getattr(self._counts(m), name) for m in self.meetings]
        if name in ("minutes_missing", "minutes_missing_list"):
            return [self._minutes(m)[name] for m in self.meetings]
        if name == "copy_similarity":
            return [round(self.copies.get(m.id, (0.0, ""))[0], 4) for m in self.meetings]
        if name in ("org", "kind"):
            return [getattr(m, name) for m in self.meetings]
        return None

    def _counts(self, m: Any) -> Attendance:
        counts = self.counts_memo.get(m.id)
        if counts is None:
            counts = self.counts_memo[m.id] = _attendance(self.ctx, self.spec, self.data, m)
        return counts

    def _minutes(self, m: Any) -> dict[str, Any]:
        gone = self.absent.get(m.id)
        if gone is None:
            gone = self.absent[m.id] = _absent_parts(self.data, m)
        minutes = self.missing_by_absent.get(gone)
        if minutes is None:
            labels = [MINUTES_PARTS[p][1] for p in self.parts if p in gone]
            minutes = self.missing_by_absent[gone] = {
                "minutes_missing": len(labels),
                "minutes_missing_list": "、".join(labels) if labels else "无",
            }
        return minutes

    def subject(self, i: int) -> Subject:
        m = self.meetings[i]
        base = self.fields_memo.get(m.id)
        if base is None:
            base = self.fields_memo[m.id] = _meeting_fields(self.ctx, self.data, m, self._counts(m))
        sim, source = self.copies.get(m.id, (0.0, ""))
        source_org = ""
        if source:
            source_org = self.ctx.registry.org_name(self.ctx.memo.meeting_org.get(source))
        fields = {
            **base,
            **self._minutes(m),
            "copy_similarity": round(sim, 4),
            "copied_from": source,
            "copied_from_org_name": source_org,
        }
        facts = [f"meeting:{m.id}"] + ([f"meeting:{source}"] if source else [])
        return Subject("meeting", m.id, m.org, None, fields["period"], fields, facts)


_ABSENT: dict[tuple[bool, int], frozenset[str]] = {}  # (anyone present, parts with text) -> the parts left empty


def _absent_parts(data: MeetingData, m: Any) -> frozenset[str]:
    """The parts of a meeting's minutes left empty (attendees: nobody recorded as present); shared per
    combination of parts with text (a few dozen combinations over a province's meetings)."""
    key = (bool(data.present.get(m.id)), m.minutes_parts)
    found = _ABSENT.get(key)
    if found is None:
        present, parts = key
        found = _ABSENT[key] = frozenset(
            name
            for name, (col, _label) in MINUTES_PARTS.items()
            if (not present if col is None else not parts & _PART_BITS[col])
        )
    return found


@dataclass(frozen=True, slots=True)
class Attendance:
    """A meeting's attendance against who should attend (as the registry stood on its day)."""

    eligible: int
    present: int
    on_leave: int
    absent_without_leave: int
    attendance_ratio: float
    absentees: frozenset[str]  # eligible, not present, not on leave with an opinion given


def _attendance(ctx: BuildContext, spec: MeetingSubject, data: MeetingData, m: Any) -> Attendance:
    empty: frozenset[str] = frozenset()
    eligible = _eligible(ctx, spec, m.kind, m.org, m.date)
    present = data.present.get(m.id, empty)
    absentees = eligible - present - data.leave_ok.get(m.id, empty)
    n_present = len(present & eligible)
    return Attendance(
        len(eligible),
        n_present,
        len(data.on_leave.get(m.id, empty) & eligible),
        len(absentees),
        n_present / len(eligible) if eligible else 1.0,
        frozenset(absentees),
    )


def _meeting_fields(ctx: BuildContext, data: MeetingData, m: Any, counts: Attendance) -> dict[str, Any]:
    """A meeting's subject fields, except those of the copy check and of the minutes' parts."""
    reg = ctx.registry
    absentees = sorted(counts.absentees)
    return {
        "meeting": m.id,
        "org": m.org,
        "org_name": reg.org_name(m.org),
        "kind": m.kind,
        "kind_label": MEETING_KIND_CN.get(m.kind, m.kind),
        "date": m.date.isoformat(),
        "topics": sorted(data.topics.get(m.id, [])),
        "eligible": counts.eligible,
        "present": counts.present,
        "on_leave": counts.on_leave,
        "absent_without_leave": counts.absent_without_leave,
        "absentees": "、".join([reg.member_name(a) for a in absentees]) if absentees else "无",
        "attendance_ratio": counts.attendance_ratio,
        "attendance_pct": f"{counts.attendance_ratio * 100:.1f}%",
        **_period_fields(m.date),
    }


def _copies(ctx: BuildContext, spec: MeetingSubject, end: date, targets: set[str]) -> dict[str, tuple[float, str]]:
    """Best earlier near-copy from another org for each target meeting, via the stored band keys."""
    # found once for the whole check (engine.subjects.copy_pairs), or looked up for these targets
    pairs = ctx.copy_pairs.of(targets) if ctx.copy_pairs is not None else copy_candidates(ctx.conn, targets)
    involved = sorted({m for pair in pairs for m in pair})
    texts: list[Text] = []
    for part in range(0, len(involved), 500):
        texts.extend(
            Text(r.id, r.org, (r.date.isoformat(), r.seq), r.minutes_content)
            for r in ctx.conn.execute(
                sa.select(_M.c.id, _M.c.org, _M.c.date, _M.c.seq, _M.c.minutes_content).where(
                    _M.c.id.in_(involved[part : part + 500])
                )
            )
        )
    ctx.memo.meeting_org.update((x.id, x.org) for x in texts)
    best = earlier_copies(texts, targets, spec.copy_floor, pairs)
    ctx.registry.ensure_orgs(ctx.conn, {ctx.memo.meeting_org[src] for _sim, src in best.values()})
    return best


def copy_candidates(conn: sa.Connection, targets: Collection[str]) -> set[tuple[str, str]]:
    """Pairs of meetings (a < b), one of them a target, whose stored signatures share at least
    :data:`~engine.subjects.similarity.MIN_SHARED_BANDS` band keys: what :func:`candidate_pairs` finds over
    every stored signature.

    Every stored signature is a candidate partner whatever its date: a meeting after the judged span is
    never the earlier text of a pair with a target, so it cannot change the answer.  A few targets, or a
    partition's, are looked up from their band keys (:func:`_joined_pairs`: time and memory grow with
    the targets); when the targets are more than 1/:data:`JOIN_SHARE` of the stored signatures (a
    whole-province check, a partition of two) reading every signature once is faster than 16 index
    look-ups a target (:func:`engine.subjects.copy_pairs.every_pair`)."""
    if not targets:
        return set()
    if len(targets) > _FEW:
        stored = conn.execute(sa.select(sa.func.count()).select_from(_SIG)).scalar_one()
        if len(targets) * JOIN_SHARE > stored:
            return every_pair(conn).of(targets)
    return _joined_pairs(conn, targets)


def _joined_pairs(conn: sa.Connection, targets: Collection[str]) -> set[tuple[str, str]]:
    """The candidate pairs of ``targets``, looked up from their band keys in SQL (:func:`_joined_query`).

    Up to :data:`_FEW` targets go as bound values to a statement built once (a submitted meeting: building
    the 16-way join and a temporary table took longer than running it); more go into a temporary table."""
    sqlite = conn.dialect.name == "sqlite"
    ids = _id_table(conn, list(targets)) if len(targets) > _FEW else None
    if ids is None:
        found = conn.execute(_few_query(sqlite), {"targets": sorted(targets)})
    else:
        found = conn.execute(_joined_query(sqlite, sa.select(ids.c.id)))
    rows: list[tuple[str, Any]] = [(a, b) for a, b in found]
    if ids is not None:
        ids.drop(conn)  # (left to the connection's end when reading failed: a failed transaction drops nothing)
    if sqlite:  # the partners' meeting ids, by rowid
        name = meetings_of_rowids(conn, {b for _a, b in rows})
        rows = [(a, name[b]) for a, b in rows]
    # a pair of two targets comes once from each side
    return {(a, b) if a < b else (b, a) for a, b in rows}


@functools.lru_cache(maxsize=2)
def _few_query(sqlite: bool) -> sa.Select[Any]:
    return _joined_query(sqlite, sa.bindparam("targets", expanding=True))


def _joined_query(sqlite: bool, targets: Any) -> sa.Select[Any]:
    """(target, partner) pairs sharing at least :data:`MIN_SHARED_BANDS` band keys, the targets' meeting ids
    given by ``targets`` (a subquery or an expanding bound parameter).

    The targets' signatures (a CTE, materialised once) are joined, band by band, to the signature table
    on that band's indexed key, and the pairs sharing enough bands are counted and kept there.  On
    SQLite the partner is its ``rowid``, which the band's index holds: the look-up never reads the table
    row (2.5× faster than joining on the meeting id); the few pairs found get their ids afterwards."""
    other = _SIG.alias("other")

    def ref(table: Any) -> Any:  # what names a signature row in the join
        return sa.literal_column(f"{table.name}.rowid") if sqlite else table.c.meeting

    mine = (
        sa.select(ref(_SIG).label("ref"), _SIG.c.meeting, *(_SIG.c[f"b{i}"] for i in range(BANDS)))
        .where(_SIG.c.meeting.in_(targets))
        .cte("mine")
    )
    per_band = [
        sa.select(mine.c.meeting.label("a"), ref(other).label("b")).select_from(
            mine.join(other, sa.and_(other.c[f"b{i}"] == mine.c[f"b{i}"], ref(other) != mine.c.ref))
        )
        for i in range(BANDS)
    ]
    shared = sa.union_all(*per_band).subquery()
    return (
        sa.select(shared.c.a, shared.c.b)
        .group_by(shared.c.a, shared.c.b)
        .having(sa.func.count() >= MIN_SHARED_BANDS)
    )


def dues_standard(base: float, category: str, params: dict[str, Any]) -> tuple[Decimal, str]:
    """The monthly standard for a base and category, from the rule's ``brackets`` and ``fixed`` params.

    ``brackets``: category -> list of [upper bound (inclusive) or null, rate]; ``fixed``:
    category -> yuan a month.  Returns (standard rounded to the cent, the rate as text).
    """
    fixed = params.get("fixed", {})
    if category in fixed:
        return Decimal(str(fixed[category])), f"每月{fixed[category]}元"
    brackets = params.get("brackets", {})
    table = brackets.get(category) or brackets.get("in_service", [])
    amount = Decimal(str(base))
    for upper, rate in table:
        if upper is None or amount <= Decimal(str(upper)):
            standard = (amount * Decimal(str(rate))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            return standard, f"{(Decimal(str(rate)) * 100).normalize():f}%"
    return Decimal("0"), "无"


def dues_subjects(
    ctx: BuildContext, rule: Rule, months: list[Period], only: set[str] | None = None
) -> list[Subject]:
    """Every dues payment of ``months`` as a built subject."""
    return list(dues_columns(ctx, rule, months, only))


def dues_columns(
    ctx: BuildContext, rule: Rule, months: list[Period], only: set[str] | None = None
) -> DuesColumns:
    """The dues payments of ``months`` as columns (amount, base, standard…); a record built on demand."""
    spec = rule.subject
    assert isinstance(spec, DuesSubject)
    by_label = {m.label: m for m in months}
    labels = sorted(by_label)
    wanted = None if only is None else sorted({k.split("|")[0] for k in only})
    table = dues_table(ctx, labels[0], labels[-1], wanted)  # the span's rows, read once for the dues rules
    rows = table.rows_of_months(labels, spec.with_base)
    if only is not None:
        chosen = [j for j in rows.tolist() if f"{table.member[j]}|{table.month[j]}" in only]
        rows = np.asarray(chosen, dtype=np.int64)
    return DuesColumns(ctx, rule.numeric_params(), by_label, table, rows)


class DuesColumns(SubjectColumns):
    """Dues payments held as columns: the numbers a condition compares, and what a record needs.

    The payer's category (for the standard) is looked up once a member, and once a month for a member with
    dated changes (the registry on the month's first day they belong, :func:`_dues_day`); the standard is
    computed once per (base, category) and spread over the rows with numpy."""

    def __init__(
        self,
        ctx: BuildContext,
        params: dict[str, Any],
        by_label: dict[str, Period],
        table: DuesTable,
        rows: np.ndarray,
    ) -> None:
        self.ctx, self.params, self.by_label, self.table = ctx, params, by_label, table
        reg = ctx.registry
        members = pick(table.member, rows.tolist())
        codes: dict[str, int] = {}
        who = np.fromiter((codes.setdefault(m, len(codes)) for m in members), np.int64, len(members))
        self.category_names: list[str] = []
        named: dict[str, int] = {}
        mine = np.zeros(len(codes), dtype=bool)
        category = np.full(len(codes), -1, dtype=np.int64)  # -1: dated changes, looked up per month below
        for member, k in codes.items():
            mem = reg.members.get(member)
            mine[k] = ctx.mine(mem.org if mem else None)  # the org the registry first gives the member
            if mem is None or not mem.changes:
                cat = mem.category if mem else "in_service"
                category[k] = named.setdefault(cat, len(named))
        cats = category[who]
        for i in np.flatnonzero(cats < 0).tolist():
            mem = reg.members[members[i]]
            cat = mem.at(_dues_day(mem, by_label[table.month[int(rows[i])]])).category
            cats[i] = named.setdefault(cat, len(named))
        self.category_names = list(named)
        keep = mine[who]
        self.rows, self.cats = rows[keep], cats[keep]
        base = np.nan_to_num(table.base[self.rows], nan=0.0)  # no base recorded: 0
        standard = np.zeros(len(self.rows), dtype=np.float64)
        for cat, k in named.items():
            these = self.cats == k
            bases, at = np.unique(base[these], return_inverse=True)
            values = [float(dues_standard(float(b), cat, params)[0]) for b in bases.tolist()]
            standard[these] = np.asarray(values, dtype=np.float64)[at.reshape(-1)]
        self.amount: list[float] = table.amount[self.rows].tolist()
        self.base: list[float] = base.tolist()
        self.standard: list[float] = standard.tolist()
        self.rates: dict[tuple[float, str], str] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def values(self, name: str) -> list[Any] | None:
        if name in ("amount", "base", "standard"):
            return getattr(self, name)  # type: ignore[no-any-return]
        if name == "category":
            return [self.category_names[k] for k in self.cats.tolist()]
        return None

    def subject(self, i: int) -> Subject:
        j = int(self.rows[i])
        table, reg = self.table, self.ctx.registry
        member, month = table.member[j], table.month[j]
        key = f"{member}|{month}"
        p = self.by_label[month]
        mem = reg.members.get(member)
        if mem is not None and mem.changes:  # the registry on the dues month's first day it belongs
            mem = mem.at(_dues_day(mem, p))
        org = mem.org if mem else ""
        category = self.category_names[int(self.cats[i])]
        rate = self.rates.get((self.base[i], category))
        if rate is None:
            rate = self.rates[(self.base[i], category)] = dues_standard(self.base[i], category, self.params)[1]
        fields = {
            "dues": key,
            "member": member,
            "member_name": reg.member_name(member),
            "org": org,
            "org_name": reg.org_name(org or None),
            "month": month,
            "amount": self.amount[i],
            "base": self.base[i],
            "category": category,
            "standard": self.standard[i],
            "rate_pct": rate,
            "paid_on": table.paid_on[j],
            "period": p.label,
            "period_label": p.label_cn,
        }
        return Subject("dues", key, org or None, member, p.label, fields, [f"dues:{key}"])


def _dues_day(mem: MemberInfo, month: Period) -> date:
    """The day whose registry governs a month's dues: the month's first day, or the joining day if later.

    A conversion, retirement or transfer dated inside a month takes effect for dues from the next month
    (dated the 1st, from that month): the month's dues are owed at the rate, and to the branch, of the
    month's start — as the branch a member transfers out of collects the dues of the month of transfer.
    """
    return max(month.start, mem.joined) if mem.joined else month.start


def petition_subjects(
    ctx: BuildContext, rule: Rule, months: list[Period], only: set[str] | None = None
) -> list[Subject]:
    assert isinstance(rule.subject, PetitionSubject)
    start, end = _span(months)
    out: list[Subject] = []
    query = sa.select(_PET).where(_PET.c.received >= start, _PET.c.received <= end)
    if only is not None:
        query = query.where(_PET.c.id.in_(sorted(only)))
    if not ctx.mine(None):  # petitions belong to no org: the first partition judges them
        return out
    for row in ctx.conn.execute(query):
        registered = row.registered if row.registered and row.registered <= ctx.as_of else None
        closed = row.closed if row.closed and row.closed <= ctx.as_of else None
        # the time limit to conclude runs from acceptance (受理) when recorded, else from receipt
        accepted = row.accepted if row.accepted and row.accepted <= ctx.as_of else None
        fields = {
            "petition": row.id,
            "subject_text": row.subject or "",
            "received": row.received.isoformat(),
            "registered": registered.isoformat() if registered else "未登记",
            "closed": closed.isoformat() if closed else "未办结",
            "is_registered": registered is not None,
            "is_closed": closed is not None,
            "days_to_register": ((registered or ctx.as_of) - row.received).days,
            "accepted": accepted.isoformat() if accepted else "未受理",
            "is_accepted": accepted is not None,
            "days_to_close": ((closed or ctx.as_of) - (accepted or row.received)).days,
            "as_of": ctx.as_of.isoformat(),
            **_period_fields(row.received),
        }
        out.append(Subject("petition", row.id, None, None, fields["period"], fields, [f"petition:{row.id}"]))
    return out


def promotion_subjects(
    ctx: BuildContext, rule: Rule, months: list[Period], only: set[str] | None = None
) -> list[Subject]:
    assert isinstance(rule.subject, PromotionSubject)
    start, end = _span(months)
    query = sa.select(_PROMO).where(_PROMO.c.date >= start, _PROMO.c.date <= end)
    if only is not None:
        query = query.where(_PROMO.c.key.in_(sorted(only)))
    promos = ctx.conn.execute(query).all()
    members = list({p.member for p in promos})
    filed: dict[tuple[str, int], date] = {}
    for part in range(0, len(members), 500):
        for row in ctx.conn.execute(sa.select(_DECL).where(_DECL.c.member.in_(members[part : part + 500]))):
            filed[(row.member, row.year)] = row.filed
    reg = ctx.registry
    elsewhere: set[str] = set()  # members a partial registry (a cluster partition's) lacks but the store has
    if reg.partial:
        lacking = sorted({p.member for p in promos} - reg.members.keys())
        for part in range(0, len(lacking), 500):
            elsewhere.update(
                ctx.conn.execute(sa.select(_MEMBER.c.id).where(_MEMBER.c.id.in_(lacking[part : part + 500]))).scalars()
            )
    out = []
    for p in promos:
        year = p.date.year - 1
        day = filed.get((p.member, year))
        ok = day is not None and day <= p.date
        mem = reg.members.get(p.member)
        if p.member in elsewhere or not ctx.mine(mem.org if mem else None):  # another partition's cadre
            continue
        if mem is not None:
            mem = mem.at(p.date)  # the org the cadre belonged to when promoted
        fields = {
            "promotion": p.key,
            "member": p.member,
            "member_name": reg.member_name(p.member),
            "org": mem.org if mem else "",
            "org_name": reg.org_name(mem.org if mem else None),
            "date": p.date.isoformat(),
            "position": p.position or "",
            "declaration_year": year,
            "has_declaration": ok,
            "declaration_filed": day.isoformat() if day else "未报告",
            **_period_fields(p.date),
        }
        facts = [f"promotion:{p.key}"] + ([f"declaration:{p.member}|{year}"] if day else [])
        out.append(
            Subject("promotion", p.key, fields["org"] or None, p.member, fields["period"], fields, facts)
        )
    return out


class FactBuilder(Protocol):
    """Builds the subjects of a fact rule over months (only the facts of ``only`` when given)."""

    def __call__(
        self, ctx: BuildContext, rule: Rule, months: list[Period], only: set[str] | None = None
    ) -> Chunk: ...


FACT_BUILDERS: dict[str, FactBuilder] = {
    "meeting": meeting_columns,
    "dues": dues_columns,
    "petition": petition_subjects,
    "promotion": promotion_subjects,
}
