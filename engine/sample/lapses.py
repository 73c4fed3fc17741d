"""Where a generated department departs from the rules: the lapse plan.

A :class:`LapsePlan` lists every injected lapse explicitly.  The sample
organisation writes its plan by hand (the seed report's findings); the
synthetic province draws one per department at known rates
(:func:`draw_lapses`).  Everything not in the plan is generated clean, so the
findings a correct engine reports are exactly those the plan implies (see
:mod:`engine.sample.expect`, which derives them from the generated facts).

Meetings are addressed by *slot*: ``(org id, meeting kind, index)`` where the
index is the month (monthly kinds), the quarter (quarterly kinds), 1 (yearly
kinds) or ``month * 10 + n`` for the n-th party-group meeting of a month.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from engine.sample.registry import Department

Slot = tuple[str, str, int]
DuesLapse = Literal["late", "short", "missing"]
PetitionLapse = Literal["late_register", "late_close", "open"]
PgLapse = Literal["leave", "absent", "personnel"]
MinutesField = Literal["time", "outcome", "recorder", "content"]

#: Meeting kinds of a branch, with how often they are held.
BRANCH_MONTHLY = ("committee_meeting", "theme_day")
BRANCH_QUARTERLY = ("member_assembly", "party_lecture", "topic_discussion")
BRANCH_YEARLY = ("org_life_meeting", "member_appraisal")


@dataclass
class LapsePlan:
    silent: dict[str, frozenset[int]] = field(
        default_factory=dict
    )  # branch -> months with no meetings at all
    skipped: set[Slot] = field(default_factory=set)  # regular meetings not held
    minutes_gap: dict[Slot, MinutesField] = field(default_factory=dict)  # a field left out of the minutes
    short_assembly: set[Slot] = field(default_factory=set)  # member assemblies at half the full members
    pg_lapse: dict[Slot, PgLapse] = field(default_factory=dict)  # party-group meeting attendance lapses
    no_party_building: set[Slot] = field(default_factory=set)  # monthly party-group meeting not on 党建
    copies: dict[str, str] = field(
        default_factory=dict
    )  # branch -> branch whose 组织生活会 minutes it copied
    absent: dict[str, frozenset[int]] = field(default_factory=dict)  # member -> months attending nothing
    dual_skip: set[str] = field(default_factory=set)  # leaders missing their branch's 组织生活会
    secretary_no_lecture: set[str] = field(default_factory=set)  # branches whose secretary gave no 党课
    dues: dict[tuple[str, int], DuesLapse] = field(default_factory=dict)
    arrears_from: dict[str, int] = field(default_factory=dict)  # member -> first month never paid
    no_heart_to_heart: set[str] = field(default_factory=set)
    field_visits: dict[str, int] = field(default_factory=dict)  # leader -> fewer than 4 visits
    signoff: dict[str, Literal["late", "missing"]] = field(default_factory=dict)
    petitions: dict[int, PetitionLapse] = field(default_factory=dict)  # petition number -> lapse
    promotions: dict[str, bool] = field(default_factory=dict)  # promoted member -> without declaration
    overdue: set[str] = field(default_factory=set)  # orgs whose last election is past its term


@dataclass(frozen=True)
class LapseRates:
    """Probability of each lapse per subject (branch, meeting, member-month…)."""

    silent_branch: float = 0.02  # a branch that records nothing from February to May
    skip_monthly: float = 0.01  # per branch or group and month
    skip_quarterly: float = 0.02  # per branch, kind and quarter
    skip_yearly: float = 0.02  # per branch and kind
    minutes_gap: float = 0.01  # per meeting slot
    short_assembly: float = 0.02
    pg_lapse: float = 0.12  # per party-group meeting
    no_party_building: float = 0.05
    pg_skip: float = 0.05  # central-group study per quarter, democratic life per year
    copy: float = 0.02  # per branch
    absent_member: float = 0.01
    dual_skip: float = 0.1
    secretary_no_lecture: float = 0.03
    dues_late: float = 0.01
    dues_short: float = 0.005
    dues_missing: float = 0.003
    arrears: float = 0.003  # per member
    no_heart_to_heart: float = 0.02
    few_visits: float = 0.15
    signoff_late: float = 0.05
    signoff_missing: float = 0.02
    petition_late_register: float = 0.03
    petition_late_close: float = 0.03
    petition_open: float = 0.02
    promotion: float = 0.01  # share of members promoted in the year
    promotion_undeclared: float = 0.25
    overdue: float = 0.04


def draw_lapses(dept: Department, rng: random.Random, rates: LapseRates, n_petitions: int) -> LapsePlan:
    """Draw a lapse plan for ``dept`` at ``rates`` (deterministic for ``rng``'s state)."""
    plan = LapsePlan()
    r = rates
    for branch in dept.branches:
        b = branch.id
        if rng.random() < r.silent_branch:
            plan.silent[b] = frozenset(range(2, 6))
        for month in range(1, 13):
            for kind in BRANCH_MONTHLY:
                _maybe(rng, r.skip_monthly, plan.skipped, (b, kind, month))
            for g in branch.groups:
                _maybe(rng, r.skip_monthly, plan.skipped, (g, "group_meeting", month))
                _gap(rng, r.minutes_gap, plan, (g, "group_meeting", month))
            for kind in BRANCH_MONTHLY:
                _gap(rng, r.minutes_gap, plan, (b, kind, month))
        for quarter in range(1, 5):
            for kind in BRANCH_QUARTERLY:
                _maybe(rng, r.skip_quarterly, plan.skipped, (b, kind, quarter))
                _gap(rng, r.minutes_gap, plan, (b, kind, quarter))
            _maybe(rng, r.short_assembly, plan.short_assembly, (b, "member_assembly", quarter))
        for kind in BRANCH_YEARLY:
            _maybe(rng, r.skip_yearly, plan.skipped, (b, kind, 1))
            _gap(rng, r.minutes_gap, plan, (b, kind, 1))
        if rng.random() < r.secretary_no_lecture:
            plan.secretary_no_lecture.add(b)
        if rng.random() < r.overdue:
            plan.overdue.add(b)
    _draw_copies(dept, rng, r, plan)
    _draw_party_group(dept, rng, r, plan)
    _draw_people(dept, rng, r, plan)
    for uid, _ in dept.units:
        roll = rng.random()
        if roll < r.signoff_late:
            plan.signoff[uid] = "late"
        elif roll < r.signoff_late + r.signoff_missing:
            plan.signoff[uid] = "missing"
    for n in range(1, n_petitions + 1):
        roll = rng.random()
        if roll < r.petition_late_register:
            plan.petitions[n] = "late_register"
        elif roll < r.petition_late_register + r.petition_late_close:
            plan.petitions[n] = "late_close"
        elif roll < r.petition_late_register + r.petition_late_close + r.petition_open:
            plan.petitions[n] = "open"
    if rng.random() < r.overdue:
        plan.overdue.add(f"{dept.prefix}oc")
    return plan


def _maybe(rng: random.Random, rate: float, into: set[Slot], slot: Slot) -> None:
    if rng.random() < rate:
        into.add(slot)


def _gap(rng: random.Random, rate: float, plan: LapsePlan, slot: Slot) -> None:
    if rng.random() < rate:
        plan.minutes_gap[slot] = rng.choice(("time", "outcome", "recorder", "content"))


def _draw_copies(dept: Department, rng: random.Random, r: LapseRates, plan: LapsePlan) -> None:
    """Pairs of distinct branches; the copier's 组织生活会 is dated after its source's."""
    used: set[str] = set()
    ids = [b.id for b in dept.branches]
    for b in ids:
        if b in used or rng.random() >= r.copy:
            continue
        sources = [s for s in ids if s != b and s not in used]
        if not sources:
            continue
        source = rng.choice(sources)
        plan.copies[b] = source
        used.update((b, source))


def _draw_party_group(dept: Department, rng: random.Random, r: LapseRates, plan: LapsePlan) -> None:
    pg = dept.pg
    for month in range(1, 13):
        if rng.random() < r.no_party_building:
            plan.no_party_building.add((pg, "party_group_meeting", month * 10 + 1))
        for n in (1, 2):
            slot = (pg, "party_group_meeting", month * 10 + n)
            if rng.random() < r.pg_lapse:
                personnel = n == 2 and month % 3 == 0  # the quarter's appointment meeting
                plan.pg_lapse[slot] = rng.choice(
                    ("leave", "absent", "personnel") if personnel else ("leave", "absent")
                )
            _gap(rng, r.minutes_gap, plan, slot)
    for quarter in range(1, 5):
        _maybe(rng, r.pg_skip, plan.skipped, (pg, "central_group_study", quarter))
    _maybe(rng, r.pg_skip, plan.skipped, (pg, "democratic_life_meeting", 1))


def _draw_people(dept: Department, rng: random.Random, r: LapseRates, plan: LapsePlan) -> None:
    leaders = {p.id for p in dept.leaders}
    for person in dept.people:
        if not person.pays_dues:
            continue
        plain = not person.roles and person.joined is None and person.left is None
        if plain and rng.random() < r.absent_member:
            start = rng.randint(3, 6)
            plan.absent[person.id] = frozenset(range(start, start + rng.randint(5, 7)))
        if plain and rng.random() < r.arrears:
            plan.arrears_from[person.id] = rng.randint(2, 7)
        for month in range(1, 13):
            roll = rng.random()
            if roll < r.dues_late:
                plan.dues[(person.id, month)] = "late"
            elif roll < r.dues_late + r.dues_short:
                plan.dues[(person.id, month)] = "short"
            elif roll < r.dues_late + r.dues_short + r.dues_missing:
                # paid, late, until the arrears begin: a month missed before them could start the six-month
                # streak in January, whose length depends on the year before (not generated)
                before_arrears = month < plan.arrears_from.get(person.id, 13)
                plan.dues[(person.id, month)] = "late" if before_arrears else "missing"
        if plain and person.status == "full" and rng.random() < r.no_heart_to_heart:
            plan.no_heart_to_heart.add(person.id)
        if plain and person.category == "in_service" and rng.random() < r.promotion:
            plan.promotions[person.id] = rng.random() < r.promotion_undeclared
        if person.id in leaders:
            if rng.random() < r.dual_skip:
                plan.dual_skip.add(person.id)
            if rng.random() < r.few_visits:
                plan.field_visits[person.id] = rng.randint(1, 3)
