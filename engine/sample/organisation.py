"""The sample organisation: a provincial literature-and-art federation (省文联) in 2017.

A Party group of seven, an organ committee, a discipline committee, eight
branches (the last for retirees) with two or three 党小组 each, fifteen units
(协会, 事业单位, 处室) with their heads, about a hundred people, and a year of
their meetings, dues, talks, petitions, elections, visits, reports and
promotions — deterministic, and clean except for the handful of lapses the
seed report (``shared/domain/requirements.md``) describes, listed in
:func:`sample_plan`.  :func:`sample_expected` gives the findings a correct
engine reports for a check of 2017 as of 2018-03-01.

Usage::

    from engine.sample import sample_facts, write_sample
    facts = sample_facts()            # interchange dicts, registry first
    write_sample("sample.jsonl")      # the same, as JSON Lines
"""

from __future__ import annotations

import json
import random
from datetime import date
from os import PathLike
from pathlib import Path
from typing import Any

from engine.sample.events import department_events
from engine.sample.expect import Finding, expected_findings
from engine.sample.lapses import LapsePlan
from engine.sample.meetings import department_meetings
from engine.sample.registry import Department, DeptShape, Person, build_department

SEED = "partyrules-sample-2017"
N_PETITIONS = 12
SHAPE = DeptShape(
    prefix="",
    name="省文联",
    n_branches=8,
    n_members=100,
    n_units=15,
    pg_size=7,
    extra_leaders=2,
    retiree_branches=1,
    probationary_rate=0.05,
    joiner_rate=0.0,
    leaver_rate=0.0,
    non_members=2,
    unit_names=(
        "作家协会",
        "戏剧家协会",
        "音乐家协会",
        "美术家协会",
        "书法家协会",
        "摄影家协会",
        "舞蹈家协会",
        "民间文艺家协会",
        "文艺创作研究中心",
        "文艺期刊社",
        "文艺信息中心",
        "办公室",
        "组织联络处",
        "研究室",
        "宣传教育处",
    ),
)


def department_facts(
    dept: Department, plan: LapsePlan, rng: random.Random, n_petitions: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every fact of one department (registry first), and the ids of meetings whose minutes were copied."""
    meetings, copied = department_meetings(dept, plan, rng)
    events = department_events(dept, plan, rng, n_petitions)
    return [*dept.orgs, *(p.fact() for p in dept.people), *meetings, *events], copied


def _plain(dept: Department, branch: int, k: int = 0) -> Person:
    """The ``k``-th ordinary full member (no roles, no movement) of branch number ``branch``."""
    plain = [
        p
        for p in dept.branches[branch - 1].members
        if not p.roles and p.status == "full" and p.joined is None and p.left is None
    ]
    return plain[k]


def _sample_department() -> tuple[Department, random.Random]:
    rng = random.Random(SEED)
    dept = build_department(SHAPE, rng)
    # movements during the year: two transfers in, one transfer out
    _plain(dept, 3, 3).joined = date(2017, 4, 10)
    _plain(dept, 5, 3).joined = date(2017, 7, 3)
    _plain(dept, 4, 3).left = date(2017, 9, 8)
    for person in dept.people:
        if person.joined:
            person.established_joined = None
    return dept, rng


def sample_plan(dept: Department) -> LapsePlan:
    """The seed report's lapses, placed in the sample organisation."""
    pg, pg_members = dept.pg, dept.pg_members
    return LapsePlan(
        # 7个支部无召开支委会议记录: the seventh branch held no committee meeting from January to April
        skipped={("b7", "committee_meeting", m) for m in range(1, 5)},
        # 5月之前无支部会议记录: the retirees' branch recorded nothing from February to April
        silent={"b8": frozenset({2, 3, 4})},
        # 党组会议到齐率: 6 of 7 at May's first meeting (on leave); August's second, one absent without leave
        pg_lapse={(pg, "party_group_meeting", 51): "leave", (pg, "party_group_meeting", 82): "absent"},
        # February's party-group meeting (Spring Festival) did not take up 党建
        no_party_building={(pg, "party_group_meeting", 21)},
        # 记录不规范: a committee meeting without its outcome, a 主题党日 without a recorder
        minutes_gap={("b2", "committee_meeting", 3): "outcome", ("b4", "theme_day", 6): "recorder"},
        # 照抄: the sixth branch's 专题组织生活会 minutes copy the second branch's
        copies={"b6": "b2"},
        # 双重组织生活会制度不落实: one party-group member missed his branch's 组织生活会
        dual_skip={pg_members[2].id},
        # a member away from branch life from April to October (seven months)
        absent={_plain(dept, 2, 1).id: frozenset(range(4, 11))},
        # the fifth branch's second-quarter 党员大会 short of half its full members
        short_assembly={("b5", "member_assembly", 2)},
        # the third branch's secretary gave no 党课
        secretary_no_lecture={"b3"},
        # 党费: March paid late, July paid short, a member who stopped paying in June
        dues={(_plain(dept, 1, 1).id, 3): "late", (_plain(dept, 6, 1).id, 7): "short"},
        arrears_from={_plain(dept, 7, 1).id: 6},
        no_heart_to_heart={_plain(dept, 4, 1).id},
        # 下基层调研不少于4次: one leader went twice
        field_visits={pg_members[4].id: 2},
        # 4月底签订责任书: one unit signed in May
        signoff={"u05": "late"},
        # 信访: the third petition registered late, the ninth still open
        petitions={3: "late_register", 9: "open"},
        # 未按规定申报个人事项不予提拔: of two promotions, one without the 2016 report
        promotions={_plain(dept, 2, 2).id: False, _plain(dept, 5, 1).id: True},
        # 机关党委逾期3年才进行换届 (the discipline committee is elected with it)
        overdue={"oc"},
    )


def _dated_changes(dept: Department) -> list[dict[str, Any]]:
    """The registry's dated changes in 2017 (facts format v2): none changes a verdict of the year.

    A member of the first branch retires on 1 October (her dues, paid at the in-service rate, are more
    than the retired standard), and the first branch's first Party group is renamed on 1 July.
    """
    retiree = _plain(dept, 1, 2)
    group = dept.branches[0].groups[0]
    return [
        {"type": "org_change", "org": group, "date": "2017-07-01", "name": "第一党小组（文艺评论）",
         "note": "党小组调整分工后更名"},
        {"type": "member_change", "member": retiree.id, "date": "2017-10-01", "category": "retired",
         "note": "办理退休手续"},
    ]  # fmt: skip


def _build() -> tuple[list[dict[str, Any]], list[str]]:
    dept, rng = _sample_department()
    facts, copied = department_facts(dept, sample_plan(dept), rng, N_PETITIONS)
    n_registry = sum(1 for f in facts if f["type"] in ("org", "member"))
    return [*facts[:n_registry], *_dated_changes(dept), *facts[n_registry:]], copied


def sample_facts() -> list[dict[str, Any]]:
    """The sample organisation's facts for 2017, as interchange-format dicts, registry objects first."""
    return _build()[0]


def sample_expected() -> list[Finding]:
    """The findings a correct engine reports for the sample, checking 2017 as of 2018-03-01."""
    facts, copied = _build()
    return expected_findings(facts, copied)


def write_sample(path: str | PathLike[str]) -> int:
    """Write the sample as JSON Lines to ``path``; return the number of facts written."""
    facts = sample_facts()
    with Path(path).open("w", encoding="utf-8") as out:
        for fact in facts:
            out.write(json.dumps(fact, ensure_ascii=False, separators=(",", ":")) + "\n")
    return len(facts)
