"""A year of meetings of one generated department: 三会一课, party-group meetings, their minutes.

Clean by default: every regular meeting is held, every member who belongs on
the day attends (now and then one is on recorded leave at a 主题党日 and still
attends that month's 党小组会), the minutes are complete.  The lapse plan
removes meetings, thins attendance, drops a minutes field or copies minutes.
Meeting days are the 11th–28th; people join and leave on the 1st–10th, so
nobody joins or leaves on a meeting day.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from engine.sample.lapses import BRANCH_MONTHLY, BRANCH_QUARTERLY, LapsePlan, Slot
from engine.sample.registry import YEAR, Branch, Department, Person
from engine.sample.text import jaccard, minutes_text
from facts.errors import PartyrulesError

_ABBR = {
    "party_group_meeting": "pgm",
    "central_group_study": "cgs",
    "member_assembly": "ma",
    "committee_meeting": "cm",
    "group_meeting": "gm",
    "party_lecture": "pl",
    "theme_day": "td",
    "org_life_meeting": "olm",
    "democratic_life_meeting": "dlm",
    "member_appraisal": "ap",
    "topic_discussion": "tpd",
}
_TOPICS = {
    "committee_meeting": ["party_building"],
    "theme_day": ["party_building"],
    "group_meeting": ["study"],
    "member_assembly": ["party_building"],
    "party_lecture": ["study"],
    "topic_discussion": ["study", "ideology"],
    "org_life_meeting": ["party_building", "integrity"],
    "member_appraisal": ["party_building"],
    "central_group_study": ["study", "ideology"],
    "democratic_life_meeting": ["party_building", "integrity"],
}
_LEAVE_REASONS = ("因公出差", "参加省委党校培训", "病假", "下基层调研", "陪同外宾")
#: Month of each quarterly meeting within its quarter: 党课 the 2nd month, 党员大会 and 专题研讨 the 3rd.
_QUARTER_MONTH = {"party_lecture": 2, "member_assembly": 3, "topic_discussion": 3, "central_group_study": 2}


class GenerationError(PartyrulesError):
    """The generator could not honour its lapse plan (a bug in a plan or a shape)."""


@dataclass
class _Ctx:
    dept: Department
    plan: LapsePlan
    rng: random.Random
    names: dict[str, str]


def department_meetings(
    dept: Department, plan: LapsePlan, rng: random.Random
) -> tuple[list[dict[str, Any]], list[str]]:
    """All meetings of ``dept`` in the year, and the ids of the meetings whose minutes were copied."""
    ctx = _Ctx(dept, plan, rng, dept.org_names)
    meetings = _party_group_meetings(ctx)
    by_slot: dict[Slot, dict[str, Any]] = {}
    for branch in dept.branches:
        for slot, meeting in _branch_meetings(ctx, branch):
            by_slot[slot] = meeting
    copied = _apply_copies(ctx, by_slot)
    meetings.extend(by_slot.values())
    return meetings, copied


def _meeting(
    ctx: _Ctx,
    slot: Slot,
    day: date,
    *,
    eligible: list[Person],
    present: list[Person],
    on_leave: Sequence[Person] = (),
    absent: Sequence[Person] = (),
    host: Person | None = None,
    lecturer: Person | None = None,
    topics: list[str] | None = None,
    recorder: Person | None = None,
) -> dict[str, Any]:
    org, kind, idx = slot
    host = host if host is not None and host in present else present[0]
    if recorder is None:
        recorder = next((p for p in present if p is not host), host)
    text = minutes_text(
        ctx.rng,
        kind=kind,
        org_name=ctx.names[org],
        day=day,
        host_name=host.name,
        names=[p.name for p in present[:12]],
        expected=len(eligible),
        present=len(present),
    )
    minutes: dict[str, Any] = {
        "time": text["time"],
        "place": text["place"],
        "recorder": recorder.id,
        "agenda": text["agenda"],
        "content": text["content"],
        "outcome": text["outcome"],
    }
    gap = ctx.plan.minutes_gap.get(slot)
    if gap:
        del minutes[gap]
    out: dict[str, Any] = {
        "type": "meeting",
        "id": f"{org}-{YEAR}-{_ABBR[kind]}{idx:02d}",
        "org": org,
        "kind": kind,
        "date": day.isoformat(),
        "topics": topics or _TOPICS.get(kind, []),
        "host": host.id,
    }
    if lecturer is not None:
        out["lecturer"] = lecturer.id
    out["attendees"] = [p.id for p in present]
    if on_leave:
        out["on_leave"] = [
            {"member": p.id, "reason": ctx.rng.choice(_LEAVE_REASONS), "opinion_given": True}
            for p in on_leave
        ]
    if absent:
        out["absent"] = [p.id for p in absent]
    out["minutes"] = minutes
    return out


def _day(rng: random.Random, month: int, lo: int = 11, hi: int = 28) -> date:
    return date(YEAR, month, rng.randint(lo, hi))


def _party_group_meetings(ctx: _Ctx) -> list[dict[str, Any]]:
    dept, plan, rng = ctx.dept, ctx.plan, ctx.rng
    pg = dept.pg
    members = dept.pg_members
    secretary = next(p for p in members if "party_group_secretary" in p.roles)
    others = [p for p in members if p is not secretary]
    recorder = dept.branches[0].committee[1]
    out = []
    for month in range(1, 13):
        for n in (1, 2):
            slot = (pg, "party_group_meeting", month * 10 + n)
            if n == 1:
                topics = ["ideology"] if slot in plan.no_party_building else ["party_building"]
            else:
                topics = ["appointment"] if month % 3 == 0 else [rng.choice(("integrity", "ideology"))]
            lapse = plan.pg_lapse.get(slot)
            away = (
                0
                if lapse is None
                else (1 if lapse != "personnel" else len(members) - (len(members) // 2 + 1))
            )
            missing = rng.sample(others, away)
            present = [p for p in members if p not in missing]
            out.append(
                _meeting(
                    ctx,
                    slot,
                    _day(rng, month, 11 if n == 1 else 20, 19 if n == 1 else 28),
                    eligible=members,
                    present=present,
                    host=secretary,
                    topics=topics,
                    recorder=recorder,
                    on_leave=missing if lapse != "absent" else [],
                    absent=missing if lapse == "absent" else [],
                )
            )
    leaders = dept.leaders
    for quarter in range(1, 5):
        slot = (pg, "central_group_study", quarter)
        if slot not in plan.skipped:
            month = 3 * quarter - 3 + _QUARTER_MONTH["central_group_study"]
            out.append(
                _meeting(
                    ctx,
                    slot,
                    _day(rng, month),
                    eligible=leaders,
                    present=leaders,
                    host=secretary,
                    recorder=recorder,
                )
            )
    slot = (pg, "democratic_life_meeting", 1)
    if slot not in plan.skipped:
        out.append(
            _meeting(
                ctx, slot, _day(rng, 12), eligible=leaders, present=leaders, host=secretary, recorder=recorder
            )
        )
    return out


def _attendance(
    ctx: _Ctx, people: list[Person], day: date
) -> tuple[list[Person], list[Person], list[Person]]:
    """(eligible, present, absent without leave) among ``people`` on ``day``."""
    eligible = [p for p in people if p.pays_dues and p.belongs_on(day)]
    absent = [p for p in eligible if day.month in ctx.plan.absent.get(p.id, ())]
    return eligible, [p for p in eligible if p not in absent], absent


def _branch_meetings(ctx: _Ctx, branch: Branch) -> list[tuple[Slot, dict[str, Any]]]:
    plan, rng = ctx.plan, ctx.rng
    silent = plan.silent.get(branch.id, frozenset())
    secretary = branch.secretary
    out: list[tuple[Slot, dict[str, Any]]] = []

    def held(slot: Slot, month: int) -> bool:
        return slot not in plan.skipped and month not in silent

    for month in range(1, 13):
        for kind in BRANCH_MONTHLY:
            slot = (branch.id, kind, month)
            if not held(slot, month):
                continue
            day = _day(rng, month)
            people = branch.committee if kind == "committee_meeting" else branch.members
            eligible, present, absent = _attendance(ctx, people, day)
            on_leave = []
            if kind == "theme_day" and rng.random() < 0.05:
                plain = [p for p in present if not p.roles and p.id not in plan.absent]
                if plain:
                    on_leave = [rng.choice(plain)]
                    present = [p for p in present if p not in on_leave]
            out.append(
                (
                    slot,
                    _meeting(
                        ctx,
                        slot,
                        day,
                        eligible=eligible,
                        present=present,
                        on_leave=on_leave,
                        absent=absent,
                        host=secretary,
                    ),
                )
            )
        for gid in branch.groups:
            slot = (gid, "group_meeting", month)
            if not held(slot, month):
                continue
            day = _day(rng, month)
            eligible, present, absent = _attendance(ctx, [p for p in branch.members if p.group == gid], day)
            if present:  # a group whose members have all left or are away holds no meeting
                out.append(
                    (slot, _meeting(ctx, slot, day, eligible=eligible, present=present, absent=absent))
                )
    for quarter in range(1, 5):
        for kind in BRANCH_QUARTERLY:
            month = 3 * quarter - 3 + _QUARTER_MONTH[kind]
            slot = (branch.id, kind, quarter)
            if held(slot, month):
                out.append((slot, _quarterly(ctx, branch, slot, _day(rng, month))))
    for kind in ("org_life_meeting", "member_appraisal"):
        slot = (branch.id, kind, 1)
        if not held(slot, 12):
            continue
        lo, hi = 11, 28
        if kind == "org_life_meeting" and branch.id in plan.copies:
            lo = 20  # a copy is dated after its source
        elif kind == "org_life_meeting" and branch.id in plan.copies.values():
            hi = 17
        day = _day(rng, 12, lo, hi)
        eligible, present, absent = _attendance(ctx, branch.members, day)
        on_leave = [p for p in present if p.id in plan.dual_skip] if kind == "org_life_meeting" else []
        present = [p for p in present if p not in on_leave]
        out.append(
            (
                slot,
                _meeting(
                    ctx,
                    slot,
                    day,
                    eligible=eligible,
                    present=present,
                    on_leave=on_leave,
                    absent=absent,
                    host=secretary,
                ),
            )
        )
    return out


def _quarterly(ctx: _Ctx, branch: Branch, slot: Slot, day: date) -> dict[str, Any]:
    _, kind, quarter = slot
    eligible, present, absent = _attendance(ctx, branch.members, day)
    on_leave: list[Person] = []
    if kind == "member_assembly" and slot in ctx.plan.short_assembly:
        full = [p for p in present if p.status == "full"]
        full_eligible = [p for p in eligible if p.status == "full"]
        keep = full[: len(full_eligible) // 2]
        on_leave = [p for p in present if p not in keep]
        present = keep
    lecturer = None
    if kind == "party_lecture":
        lecturer = _lecturer(ctx, branch, quarter, present)
    return _meeting(
        ctx,
        slot,
        day,
        eligible=eligible,
        present=present,
        on_leave=on_leave,
        absent=absent,
        host=branch.secretary,
        lecturer=lecturer,
    )


def _lecturer(ctx: _Ctx, branch: Branch, quarter: int, present: list[Person]) -> Person:
    """The branch secretary lectures in Q3 (unless the plan says not); the party-group secretary in Q4."""
    secretary = branch.secretary
    if quarter == 4:
        pg_secretary = next((p for p in present if "party_group_secretary" in p.roles), None)
        if pg_secretary is not None:
            return pg_secretary
    if quarter == 3 and branch.id not in ctx.plan.secretary_no_lecture:
        return secretary
    others = [
        p for p in present if p is not secretary and ("committee_member" in p.roles or "leader" in p.roles)
    ]
    if not others:
        raise GenerationError(f"branch {branch.id} has no one but its secretary to give a 党课")
    return ctx.rng.choice(others)


def _apply_copies(ctx: _Ctx, by_slot: dict[Slot, dict[str, Any]]) -> list[str]:
    """Make each copier's 组织生活会 content a near-copy of its source's; return the copiers' meeting ids."""
    copied = []
    for copier, source in ctx.plan.copies.items():
        a = by_slot.get((source, "org_life_meeting", 1))
        b = by_slot.get((copier, "org_life_meeting", 1))
        if a is None or b is None or "content" not in a["minutes"] or "content" not in b["minutes"]:
            continue  # the plan also skipped one of the meetings or dropped its content
        if not a["date"] < b["date"]:
            raise GenerationError(f"copy {copier} of {source}: the copy is not dated after its source")
        text = a["minutes"]["content"].replace(ctx.names[source], ctx.names[copier])
        if jaccard(text, a["minutes"]["content"]) < 0.9:
            text = a["minutes"]["content"]
        b["minutes"]["content"] = text
        copied.append(b["id"])
    return copied
