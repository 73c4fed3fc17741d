"""The findings a correct engine reports for a generated department, derived from its facts.

This is the bookkeeping of the generators, not a rules engine: it reads the
generated interchange dicts of one self-contained department (every reference
inside it) and applies each standard rule's meaning from
``shared/spec/rules.md`` directly, for a check of every month, quarter and
the year ``YEAR`` as of :data:`AS_OF`.  Copied minutes are not searched for
(that needs every pair of meetings): the generator passes the ids it copied
into, and keeps every other pair far below the threshold.

Streak rules (six months without dues or attendance) are ambiguous for a
streak that starts in January (does December of the year before count, when
nothing was recorded then?); the generators never make one, and
:func:`expected_findings` raises :class:`AmbiguousExpectation` if they do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from facts.errors import PartyrulesError

YEAR = 2017
AS_OF = date(2018, 3, 1)
LETTER_DEADLINE = date(YEAR, 4, 30)

#: rule id -> (org kind, meeting kind, period, extra topic the meeting must carry)
PERIOD_RULES: dict[str, tuple[str, str, str, str | None]] = {
    "party_group.party_building_study.monthly": (
        "party_group",
        "party_group_meeting",
        "month",
        "party_building",
    ),
    "party_group.central_group_study.quarterly": ("party_group", "central_group_study", "quarter", None),
    "party_group.democratic_life.yearly": ("party_group", "democratic_life_meeting", "year", None),
    "branch.member_assembly.quarterly": ("branch", "member_assembly", "quarter", None),
    "branch.committee_meeting.monthly": ("branch", "committee_meeting", "month", None),
    "branch.group_meeting.monthly": ("group", "group_meeting", "month", None),
    "branch.party_lecture.quarterly": ("branch", "party_lecture", "quarter", None),
    "branch.theme_day.monthly": ("branch", "theme_day", "month", None),
    "branch.topic_discussion.quarterly": ("branch", "topic_discussion", "quarter", None),
    "branch.org_life_meeting.yearly": ("branch", "org_life_meeting", "year", None),
    "branch.member_appraisal.yearly": ("branch", "member_appraisal", "year", None),
}
OTHER_RULES = (
    "party_group.meeting.quorum",
    "party_group.meeting.leave",
    "party_group.meeting.personnel_quorum",
    "branch.member_assembly.quorum",
    "meeting.minutes.complete",
    "meeting.minutes.copied",
    "leader.dual_org_life.yearly",
    "leader.field_visit.yearly",
    "secretary.party_lecture.yearly",
    "member.absence.six_months",
    "branch.heart_to_heart.yearly",
    "dues.monthly.paid",
    "dues.amount.full",
    "dues.arrears.six_months",
    "org.election.overdue",
    "integrity.responsibility_letter.signed",
    "petition.registered.in_time",
    "petition.closed.in_time",
    "cadre.promotion.declaration",
    # rules added by issue 12 (not in the standard ids of the rules contract)
    "party_group.meeting.majority",
    "branch.committee_meeting.quorum",
    "branch.heart_to_heart.committee_pairs",
    "party_group.integrity_study.yearly",
    "party_group.ideology_study.yearly",
)
#: Every standard rule id (shared/spec/rules.md), in a stable order.
RULE_IDS: tuple[str, ...] = tuple(PERIOD_RULES) + OTHER_RULES

_RATES = {
    "in_service": ((3000, "0.005"), (5000, "0.01"), (10000, "0.015"), (None, "0.02")),
    "retired": ((5000, "0.005"), (None, "0.01")),
}


class AmbiguousExpectation(PartyrulesError):
    """Generated data whose expected finding depends on an unsettled reading of a rule."""


class Finding(NamedTuple):
    rule: str
    subject_type: str
    subject_id: str
    period: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "subject": {"type": self.subject_type, "id": self.subject_id},
            "period": self.period,
        }


def _d(value: str) -> date:
    return date.fromisoformat(value)


def _belongs(m: dict[str, Any], day: date) -> bool:
    joined, left = m.get("joined"), m.get("left")
    return (joined is None or _d(joined) <= day) and (left is None or day < _d(left))


_FIRSTS = [f"{YEAR}-{m:02d}-01" for m in range(1, 13)] + [f"{YEAR + 1}-01-01"]


def _months(m: dict[str, Any]) -> list[int]:
    """Months of the year in which ``m`` belongs at least one day (ISO dates compare as strings)."""
    joined, left = m.get("joined", ""), m.get("left", "9999")
    return [month for month in range(1, 13) if joined < _FIRSTS[month] and left > _FIRSTS[month - 1]]


def _month_end(month: int) -> date:
    return date(YEAR + (month == 12), month % 12 + 1, 1) - timedelta(days=1)


def _add_years(day: date, years: int) -> date:
    """``day`` plus whole years; 29 February becomes 28 February when the target year is not leap."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _periods(kind: str) -> list[tuple[str, set[int]]]:
    if kind == "month":
        return [(f"{YEAR}-{m:02d}", {m}) for m in range(1, 13)]
    if kind == "quarter":
        return [(f"{YEAR}-Q{q}", {3 * q - 2, 3 * q - 1, 3 * q}) for q in range(1, 5)]
    return [(str(YEAR), set(range(1, 13)))]


def expected_findings(facts: Iterable[dict[str, Any]], copied: Iterable[str] = ()) -> list[Finding]:
    """The findings of every standard rule for the year, for one self-contained batch of facts."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for fact in facts:
        by_type[fact["type"]].append(fact)
    out: list[Finding] = [
        Finding("meeting.minutes.copied", "meeting", m, _month_of(by_type, m)) for m in copied
    ]
    out += _period_rules(by_type)
    out += _meeting_rules(by_type)
    out += _member_rules(by_type)
    out += _dues_rules(by_type)
    out += _other_rules(by_type)
    out += _added_rules(by_type)
    return sorted(out)


def _added_rules(by_type: dict[str, list[dict[str, Any]]]) -> list[Finding]:
    """The rules issue 12 added: 委员之间谈心谈话 per pair, 党组专题研究党风廉政建设 / 意识形态工作 twice a year."""
    out = []
    year_end = date(YEAR, 12, 31)
    studied: dict[tuple[str, str], int] = defaultdict(int)
    for m in by_type["meeting"]:
        if m["kind"] == "party_group_meeting" and _d(m["date"]).year == YEAR:
            for topic in {"integrity", "ideology"} & set(m.get("topics", [])):
                studied[(m["org"], topic)] += 1
    for org in by_type["org"]:
        if org["kind"] == "party_group":
            for topic, rule in (("integrity", "party_group.integrity_study.yearly"),
                                ("ideology", "party_group.ideology_study.yearly")):
                if studied[(org["id"], topic)] < 2:
                    out.append(Finding(rule, "org", org["id"], str(YEAR)))
    talked: set[tuple[str, str]] = set()
    for i in by_type["interview"]:
        if i["kind"] == "heart_to_heart" and _d(i["date"]).year == YEAR:
            talked |= {(i["interviewer"], i["interviewee"]), (i["interviewee"], i["interviewer"])}

    def on(p: dict[str, Any], day: date) -> bool:
        return ("joined" not in p or _d(p["joined"]) <= day) and ("left" not in p or _d(p["left"]) >= day)

    committee = [
        p for p in by_type["member"] if {"committee_member", "branch_secretary"} & set(p.get("roles", []))
    ]
    for p in committee:
        day = min(year_end, _d(p["left"])) if "left" in p else year_end
        if p.get("status", "full") != "full" or not _months(p) or not on(p, day):
            continue
        peers = [q for q in committee if q["id"] != p["id"] and q["org"] == p["org"] and on(q, day)]
        if any((p["id"], q["id"]) not in talked for q in peers):
            out.append(Finding("branch.heart_to_heart.committee_pairs", "member", p["id"], str(YEAR)))
    return out


def _month_of(by_type: dict[str, list[dict[str, Any]]], meeting_id: str) -> str:
    return next(m["date"][:7] for m in by_type["meeting"] if m["id"] == meeting_id)


def _period_rules(by_type: dict[str, list[dict[str, Any]]]) -> list[Finding]:
    held: set[tuple[str, str, int, str | None]] = set()
    for m in by_type["meeting"]:
        day = _d(m["date"])
        if day.year == YEAR:
            held.add((m["org"], m["kind"], day.month, None))
            for topic in m.get("topics", []):
                held.add((m["org"], m["kind"], day.month, topic))
    out = []
    for rule, (org_kind, meeting_kind, period, topic) in PERIOD_RULES.items():
        for org in by_type["org"]:
            if org["kind"] != org_kind:
                continue
            for label, months in _periods(period):
                if not any((org["id"], meeting_kind, mo, topic) in held for mo in months):
                    out.append(Finding(rule, "org", org["id"], label))
    return out


def _meeting_rules(by_type: dict[str, list[dict[str, Any]]]) -> list[Finding]:
    members = by_type["member"]
    out = []
    for m in by_type["meeting"]:
        day, period = _d(m["date"]), m["date"][:7]
        present = set(m.get("attendees", []))
        minutes = m.get("minutes") or {}
        if not (present and all(minutes.get(k) for k in ("time", "content", "outcome", "recorder"))):
            out.append(Finding("meeting.minutes.complete", "meeting", m["id"], period))
        if m["kind"] == "party_group_meeting":
            eligible = {
                p["id"]
                for p in members
                if "party_group_member" in p.get("roles", [])
                and m["org"] in [p["org"], *p.get("extra_orgs", [])]
                and _belongs(p, day)
            }
            n = len(present & eligible)
            if n * 10 < 9 * len(eligible):
                out.append(Finding("party_group.meeting.quorum", "meeting", m["id"], period))
            excused = {lv["member"] for lv in m.get("on_leave", []) if lv.get("opinion_given")}
            if eligible - present - excused:
                out.append(Finding("party_group.meeting.leave", "meeting", m["id"], period))
            if {"appointment", "discipline"} & set(m.get("topics", [])) and n * 3 < 2 * len(eligible):
                out.append(Finding("party_group.meeting.personnel_quorum", "meeting", m["id"], period))
            if n * 2 < len(eligible):
                out.append(Finding("party_group.meeting.majority", "meeting", m["id"], period))
        if m["kind"] == "committee_meeting":
            committee = {
                p["id"]
                for p in members
                if p["org"] == m["org"]
                and {"branch_secretary", "committee_member"} & set(p.get("roles", []))
                and _belongs(p, day)
            }
            if len(present & committee) * 2 < len(committee):
                out.append(Finding("branch.committee_meeting.quorum", "meeting", m["id"], period))
        if m["kind"] == "member_assembly":
            full = {
                p["id"]
                for p in members
                if p["org"] == m["org"] and p.get("status", "full") == "full" and _belongs(p, day)
            }
            if len(present & full) * 2 <= len(full):
                out.append(Finding("branch.member_assembly.quorum", "meeting", m["id"], period))
    return out


def _member_rules(by_type: dict[str, list[dict[str, Any]]]) -> list[Finding]:
    parent = {o["id"]: o.get("parent") for o in by_type["org"]}
    attended: dict[str, set[tuple[int, str]]] = defaultdict(set)  # member -> (month, org) attended
    org_life: dict[str, set[str]] = defaultdict(set)  # member -> orgs whose 组织生活会 they attended
    lectured: set[str] = set()
    for m in by_type["meeting"]:
        day = _d(m["date"])
        if day.year != YEAR:
            continue
        for pid in m.get("attendees", []):
            attended[pid].add((day.month, m["org"]))
            if m["kind"] == "org_life_meeting":
                org_life[pid].add(m["org"])
        for leave in m.get("on_leave", []):  # recorded leave is not absence without good reason
            attended[leave["member"]].add((day.month, m["org"]))
        if m["kind"] == "party_lecture" and m.get("lecturer"):
            lectured.add(m["lecturer"])
    visits: dict[str, int] = defaultdict(int)
    for v in by_type["field_visit"]:
        visits[v["member"]] += _d(v["date"]).year == YEAR
    committee = {
        p["id"]: p["org"]
        for p in by_type["member"]
        if {"committee_member", "branch_secretary"} & set(p.get("roles", []))
    }
    talked: set[str] = set()
    for i in by_type["interview"]:
        if i["kind"] == "heart_to_heart" and _d(i["date"]).year == YEAR:
            for me, other in ((i["interviewer"], i["interviewee"]), (i["interviewee"], i["interviewer"])):
                talked.add(f"{me}|{committee.get(other)}")
    out = []
    for p in by_type["member"]:
        roles = set(p.get("roles", []))
        own = p["org"]
        if roles & {"leader", "party_group_member"} and own not in org_life[p["id"]]:
            out.append(Finding("leader.dual_org_life.yearly", "member", p["id"], str(YEAR)))
        if "leader" in roles and visits[p["id"]] < 4:
            out.append(Finding("leader.field_visit.yearly", "member", p["id"], str(YEAR)))
        if roles & {"party_group_secretary", "branch_secretary"} and p["id"] not in lectured:
            out.append(Finding("secretary.party_lecture.yearly", "member", p["id"], str(YEAR)))
        status = p.get("status", "full")
        if status == "full" and _months(p) and f"{p['id']}|{own}" not in talked:
            out.append(Finding("branch.heart_to_heart.yearly", "member", p["id"], str(YEAR)))
        if status in ("full", "probationary"):
            months_in = {mo for mo, org in attended[p["id"]] if org == own or parent.get(org) == own}
            out += _streak("member.absence.six_months", p, months_in)
    return out


def _streak(rule: str, p: dict[str, Any], done: set[int]) -> list[Finding]:
    """Six consecutive months of membership without ``done``: flag the sixth and each after."""
    out = []
    run: list[int] = []
    for month in _months(p):
        run = [] if month in done else [*run, month]
        if len(run) >= 6:
            if run[0] == 1 and ("joined" not in p or _d(p["joined"]).year < YEAR):
                raise AmbiguousExpectation(f"{rule}: {p['id']} has a streak starting in January")
            out.append(Finding(rule, "member", p["id"], f"{YEAR}-{month:02d}"))
    return out


def _standard(base: Decimal, category: str) -> Decimal:
    for bound, rate in _RATES.get(category, _RATES["in_service"]):
        if bound is None or base <= bound:
            return (base * Decimal(rate)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    raise AssertionError("unreachable: the last bracket is open")


def _dues_rules(by_type: dict[str, list[dict[str, Any]]]) -> list[Finding]:
    category = {p["id"]: p.get("category", "in_service") for p in by_type["member"]}
    paid: dict[str, dict[int, date]] = defaultdict(dict)
    out = []
    for d in by_type["dues"]:
        year, month = int(d["month"][:4]), int(d["month"][5:])
        if year != YEAR:
            continue
        paid[d["member"]][month] = _d(d["paid_on"])
        if "base" in d and Decimal(str(d["amount"])) < _standard(
            Decimal(str(d["base"])), category[d["member"]]
        ):
            out.append(Finding("dues.amount.full", "dues", f"{d['member']}|{d['month']}", d["month"]))
    for p in by_type["member"]:
        if p.get("status", "full") not in ("full", "probationary"):
            continue
        mine = paid[p["id"]]
        for month in _months(p):
            if month not in mine or mine[month] > _month_end(month):
                out.append(Finding("dues.monthly.paid", "member", p["id"], f"{YEAR}-{month:02d}"))
        out += _streak("dues.arrears.six_months", p, set(mine))
    return out


def _other_rules(by_type: dict[str, list[dict[str, Any]]]) -> list[Finding]:
    out = []
    last: dict[str, date] = {}
    for e in by_type["election"]:
        day = _d(e["date"])
        if day <= AS_OF and (e["org"] not in last or day > last[e["org"]]):
            last[e["org"]] = day
    signed = {
        s["unit"]: _d(s["date"])
        for s in by_type["signoff"]
        if s["document"] == f"integrity-responsibility-{YEAR}" and "unit" in s
    }
    for org in by_type["org"]:
        term = org.get("term_years")
        start = last.get(org["id"]) or (_d(org["established"]) if "established" in org else None)
        if term and start and _add_years(start, term) < AS_OF:
            out.append(Finding("org.election.overdue", "org", org["id"], str(YEAR)))
        if org["kind"] == "unit" and not (org["id"] in signed and signed[org["id"]] <= LETTER_DEADLINE):
            out.append(Finding("integrity.responsibility_letter.signed", "org", org["id"], str(YEAR)))
    for pt in by_type["petition"]:
        received = _d(pt["received"])
        if "registered" not in pt or (_d(pt["registered"]) - received).days > 15:
            out.append(Finding("petition.registered.in_time", "petition", pt["id"], pt["received"][:7]))
        closed = _d(pt["closed"]) if "closed" in pt else AS_OF
        if (closed - (_d(pt["accepted"]) if "accepted" in pt else received)).days > 60:
            out.append(Finding("petition.closed.in_time", "petition", pt["id"], pt["received"][:7]))
    filed = {(d["member"], d["year"]): _d(d["filed"]) for d in by_type["declaration"]}
    for pr in by_type["promotion"]:
        day = _d(pr["date"])
        report = filed.get((pr["member"], day.year - 1))
        if report is None or report > day:
            out.append(
                Finding(
                    "cadre.promotion.declaration", "promotion", f"{pr['member']}|{pr['date']}", pr["date"][:7]
                )
            )
    return out
