"""Meeting subjects built from the database (SQLite and PostgreSQL): attendance sets, minutes, partitions."""

from __future__ import annotations

import datetime as dt

from engine.app import STANDARD_PACK
from engine.pack.load import load_pack
from engine.periods import parse_range
from engine.subjects.base import BuildContext
from engine.subjects.registry import Registry
from engine.subjects.single import meeting_subjects
from facts.errors import Location
from facts.store import FactStore

ODD = "m,2; 3"  # an odd id (commas, semicolons, a space); the query's separator \x1f cannot occur: ids refuse control characters
REGISTRY = [
    {"type": "org", "id": "oc", "name": "机关党委", "kind": "organ_committee"},
    {"type": "org", "id": "b1", "name": "机关第一党支部", "kind": "branch", "parent": "oc"},
    *(
        {"type": "member", "id": m, "name": f"成员{i}", "org": "b1", "joined": "2010-01-01"}
        for i, m in enumerate(["m1", ODD, "m3", "m4", "m5"], 1)
    ),
]
MEETING = {
    "type": "meeting", "id": "b1-0606", "org": "b1", "kind": "member_assembly", "date": "2017-06-06",
    "attendees": ["m1", ODD, "m3"],
    "on_leave": [{"member": "m4", "reason": "出差", "opinion_given": True}, {"member": "m5", "reason": "病假"}],
    "minutes": {"time": "9:00", "content": " \u3000\n", "outcome": "形成决议", "recorder": "m1"},
}


def _subjects(engine, part=None):
    store = FactStore(engine)
    store.create_schema()
    store.import_items((Location("f", i), o) for i, o in enumerate([*REGISTRY, MEETING]))
    rule = next(r for r in load_pack(STANDARD_PACK).rules if r.id == "branch.member_assembly.quorum")
    with engine.connect() as conn:
        ctx = BuildContext(conn, Registry.load(conn), dt.date(2017, 8, 1), part=part)
        return meeting_subjects(ctx, rule.rule, parse_range("2017-06").periods("month"))


def test_attendance_and_minutes_reach_the_subject(db_engine):
    (subject,) = _subjects(db_engine)
    f = subject.fields
    assert (f["eligible"], f["present"], f["on_leave"], f["absent_without_leave"]) == (5, 3, 2, 1)
    assert f["absentees"] == "成员5"  # on leave without giving an opinion beforehand
    # content of white space only (a full-width space and a newline) counts as missing, as str.strip() says
    assert f["minutes_missing_list"] == "内容"


def test_each_meeting_is_built_by_exactly_one_partition(db_engine):
    first, second = _subjects(db_engine, part=(0, 2)), _subjects(db_engine, part=(1, 2))
    assert sorted(s.id for s in first + second) == ["b1-0606"]
    (subject,) = first + second
    assert subject.fields["present"] == 3  # the partition's temporary tables select the same rows


def test_a_submitted_copy_is_found_against_the_stored_minutes(db_engine):
    from engine.app import App
    from engine.config import Config
    from engine.submit import judge_facts
    from engine.violations.store import ViolationStore

    app = App(Config(), db_engine, FactStore(db_engine), ViolationStore(db_engine))
    app.init()
    text = "支部召开专题组织生活会，传达学习上级党委关于全面从严治党的部署要求，支部书记代表支委会作对照检查，" * 2
    orgs = [*REGISTRY[:2], {"type": "org", "id": "b2", "name": "机关第二党支部", "kind": "branch", "parent": "oc"}]
    source = {"type": "meeting", "id": "b1-olm", "org": "b1", "kind": "org_life_meeting", "date": "2017-05-20",
              "minutes": {"content": text}}
    others = [  # stored minutes that are not copies, so the band look-up has more than the source to sift
        {"type": "meeting", "id": f"b1-x{i}", "org": "b1", "kind": "theme_day", "date": f"2017-0{i}-02",
         "minutes": {"content": f"第{i}次主题党日，学习讨论了{'党章党规' * i}，安排了志愿服务。"}}
        for i in range(1, 6)
    ]
    app.facts.import_items((Location("f", i), o) for i, o in enumerate([*orgs, source, *others]))
    copy = dict(source, id="b2-olm", org="b2", date="2017-06-20",
                minutes={"content": text.replace("对照检查", "对照检查。")})
    report = app.facts.import_items([(Location("submit", 1), copy)])
    judged = judge_facts(app, [s.fact for s in report.stored], as_of=dt.date(2017, 7, 10))
    found = [f for f in judged.findings if f.rule == "meeting.minutes.copied"]
    assert [(f.subject_id, f.evidence["observed"]["copied_from"]) for f in found] == [("b2-olm", "b1-olm")]
    assert found[0].evidence["observed"]["copy_similarity"] >= 0.9

