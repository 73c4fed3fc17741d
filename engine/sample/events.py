"""The non-meeting facts of one generated department's year: dues, talks, visits, petitions, elections…

Clean by default (dues paid in the month at exactly the bracket's standard,
every full member talked with, four or more field visits per leader, letters
signed in March or April, petitions registered within 10 days and closed
within 55, elections within term); the lapse plan says where not.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from engine.sample.lapses import LapsePlan
from engine.sample.registry import YEAR, Department, Person
from engine.sample.text import INTERVIEW_TOPICS, PETITION_SUBJECTS, POSITIONS, VISIT_PLACES, VISIT_TOPICS

LETTER = f"integrity-responsibility-{YEAR}"
#: Monthly dues rates in per mille, by upper bound of the income base (inclusive).
IN_SERVICE_RATES = ((3000, 5), (5000, 10), (10000, 15), (None, 20))
RETIRED_RATES = ((5000, 5), (None, 10))


def standard_cents(base: int, category: str) -> int:
    """The bracket's standard monthly dues, in cents, for a base in whole yuan (exact for even bases)."""
    brackets = RETIRED_RATES if category == "retired" else IN_SERVICE_RATES
    for bound, per_mille in brackets:
        if bound is None or base <= bound:
            return base * per_mille // 10
    raise AssertionError("unreachable: the last bracket is open")


def department_events(
    dept: Department, plan: LapsePlan, rng: random.Random, n_petitions: int
) -> list[dict[str, Any]]:
    """Every non-meeting fact of ``dept`` in the year, in a stable order."""
    out: list[dict[str, Any]] = []
    for person in dept.people:
        if person.pays_dues:
            out.extend(_dues(person, plan, rng))
    out.extend(_interviews(dept, plan, rng))
    out.extend(_visits_and_cadres(dept, plan, rng))
    out.extend(_signoffs(dept, plan, rng))
    out.extend(_petitions(dept, plan, rng, n_petitions))
    out.extend(_elections(dept, plan, rng))
    return out


def _window(person: Person, month: int) -> tuple[int, int]:
    """Days of ``month`` on which ``person`` belongs and can act (for dues and talks)."""
    lo, hi = 11, 28
    if person.joined and person.joined.month == month:
        lo = max(lo, person.joined.day)
    if person.left and person.left.month == month:
        lo, hi = 1, person.left.day - 1 if person.left.day > 1 else 1
    return lo, hi


def _dues(person: Person, plan: LapsePlan, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    arrears = plan.arrears_from.get(person.id, 13)
    cents = standard_cents(person.base, person.category)
    for month in range(1, 13):
        if not person.belongs_in_month(month) or month >= arrears:
            continue
        lapse = plan.dues.get((person.id, month))
        if lapse == "missing":
            continue
        lo, hi = _window(person, month)
        paid = date(YEAR, month, rng.randint(lo, hi))
        amount = cents
        if lapse == "late":
            paid = date(YEAR + (month == 12), month % 12 + 1, rng.randint(3, 15))
        elif lapse == "short":
            amount = cents * 2 // 3
        out.append(
            {
                "type": "dues",
                "member": person.id,
                "month": f"{YEAR}-{month:02d}",
                "amount": amount / 100,
                "paid_on": paid.isoformat(),
                "base": person.base,
            }
        )
    return out


def _some_day(person: Person, rng: random.Random) -> date:
    months = [m for m in range(1, 13) if person.belongs_in_month(m)]
    month = rng.choice(months)
    lo, hi = _window(person, month)
    return date(YEAR, month, rng.randint(lo, hi))


def _interviews(dept: Department, plan: LapsePlan, rng: random.Random) -> list[dict[str, Any]]:
    """谈心谈话: each branch secretary with every other member; 廉政谈话: party-group secretary with unit heads."""
    out = []
    for branch in dept.branches:
        secretary = branch.secretary
        for person in branch.members:
            if person is secretary or not person.pays_dues or person.id in plan.no_heart_to_heart:
                continue
            out.append(
                {
                    "type": "interview",
                    "date": _some_day(person, rng).isoformat(),
                    "interviewer": secretary.id,
                    "interviewee": person.id,
                    "kind": "heart_to_heart",
                    "topic": rng.choice(INTERVIEW_TOPICS),
                }
            )
    for branch in dept.branches:  # 委员之间: each pair of committee members besides the secretary, in November
        committee = [p for p in branch.committee if "branch_secretary" not in p.roles]
        for i, a in enumerate(committee):
            for b in committee[i + 1 :]:
                out.append(
                    {
                        "type": "interview",
                        "date": f"{YEAR}-11-{10 + i:02d}",
                        "interviewer": a.id,
                        "interviewee": b.id,
                        "kind": "heart_to_heart",
                        "topic": "委员之间交流思想、沟通工作",
                    }
                )
    pg_secretary = next(p for p in dept.pg_members if "party_group_secretary" in p.roles)
    for person in dept.people:
        if person.unit:
            out.append(
                {
                    "type": "interview",
                    "date": f"{YEAR}-03-{rng.randint(1, 10):02d}",
                    "interviewer": pg_secretary.id,
                    "interviewee": person.id,
                    "kind": "integrity",
                    "topic": "签订党风廉政建设目标责任书前的廉政谈话",
                }
            )
    return out


def _visits_and_cadres(dept: Department, plan: LapsePlan, rng: random.Random) -> list[dict[str, Any]]:
    """Field visits of leaders; personal-matters reports of leaders, unit heads and the promoted; promotions."""
    out: list[dict[str, Any]] = []
    for leader in dept.leaders:
        n = plan.field_visits.get(leader.id, rng.randint(4, 6))
        for month in sorted(rng.sample(range(2, 12), n)):
            out.append(
                {
                    "type": "field_visit",
                    "member": leader.id,
                    "date": f"{YEAR}-{month:02d}-{rng.randint(11, 28)}",
                    "place": rng.choice(VISIT_PLACES),
                    "topic": rng.choice(VISIT_TOPICS),
                }
            )
    for person in dept.people:
        if "leader" in person.roles or person.unit or person.id in plan.promotions:
            if plan.promotions.get(person.id, False):
                continue  # promoted without the previous year's report
            out.append(
                {
                    "type": "declaration",
                    "member": person.id,
                    "year": YEAR - 1,
                    "filed": f"{YEAR}-01-{rng.randint(5, 31):02d}",
                }
            )
    for member_id in plan.promotions:
        out.append(
            {
                "type": "promotion",
                "member": member_id,
                "date": f"{YEAR}-{rng.randint(3, 11):02d}-{rng.randint(11, 28)}",
                "position": rng.choice(POSITIONS),
            }
        )
    return out


def _signoffs(dept: Department, plan: LapsePlan, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for uid, _ in dept.units:
        lapse = plan.signoff.get(uid)
        if lapse == "missing":
            continue
        day = (
            date(YEAR, 5, rng.randint(5, 31))
            if lapse == "late"
            else date(YEAR, rng.randint(3, 4), rng.randint(11, 28))
        )
        out.append({"type": "signoff", "document": LETTER, "unit": uid, "date": day.isoformat()})
    return out


def _petitions(dept: Department, plan: LapsePlan, rng: random.Random, n: int) -> list[dict[str, Any]]:
    """Received 1 January – 10 December, so an open one is past 60 days by the judging date (1 March)."""
    out = []
    start = date(YEAR, 1, 1)
    for i in range(1, n + 1):
        lapse = plan.petitions.get(i)
        received = start + timedelta(days=rng.randint(0, 333 if lapse != "late_close" else 320))
        registered = received + timedelta(
            days=rng.randint(20, 40) if lapse == "late_register" else rng.randint(0, 10)
        )
        accepted = registered + timedelta(days=rng.randint(0, 5))
        petition: dict[str, Any] = {
            "type": "petition",
            "id": f"{dept.prefix}p{i:03d}",
            "received": received.isoformat(),
            "registered": registered.isoformat(),
            "accepted": accepted.isoformat(),
        }
        if lapse != "open":
            days = (
                rng.randint(70, 90)
                if lapse == "late_close"
                else rng.randint(max(15, (accepted - received).days), 55)
            )
            # the 60 days run from acceptance (受理): a late one is late counted from there
            petition["closed"] = ((accepted if lapse == "late_close" else received) + timedelta(days=days)).isoformat()
        petition["subject"] = rng.choice(PETITION_SUBJECTS)
        out.append(petition)
    return out


def _elections(dept: Department, plan: LapsePlan, rng: random.Random) -> list[dict[str, Any]]:
    """The last election of every org with a term: within term, or (overdue) more than a year past it."""
    out = []
    committee_overdue = f"{dept.prefix}oc" in plan.overdue
    for org in dept.orgs:
        term = org.get("term_years")
        if term is None:
            continue
        if org["kind"] in ("organ_committee", "discipline_committee"):
            # the discipline committee is elected with the organ committee
            year = rng.randint(2008, 2011) if committee_overdue else rng.randint(2014, 2016)
        else:
            year = rng.randint(2011, 2013) if org["id"] in plan.overdue else rng.randint(2016, 2017)
        day = date(year, rng.randint(1, 11 if year == YEAR else 12), rng.randint(1, 28))
        out.append({"type": "election", "org": org["id"], "date": day.isoformat()})
    return out
