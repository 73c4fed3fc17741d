"""The facts store, for real on a SQLite file and on PostgreSQL: history, corrections, references."""

from __future__ import annotations

import json

import sqlalchemy as sa

from facts.errors import FieldProblem, Location
from facts.store import FactStore

REGISTRY = [
    {"type": "org", "id": "pg", "name": "省文联党组", "kind": "party_group"},
    {"type": "member", "id": "m01", "name": "张三", "org": "b1", "roles": ["party_group_member"], "extra_orgs": ["pg"]},
    {"type": "org", "id": "b1", "name": "机关第一党支部", "kind": "branch", "parent": "oc", "term_years": 3},
    {"type": "org", "id": "oc", "name": "省文联机关党委", "kind": "organ_committee", "term_years": 5},
]
DUES = {"type": "dues", "member": "m01", "month": "2017-06", "amount": 45.0, "paid_on": "2017-06-20", "base": 4500}


def items(objs, file="f.jsonl"):
    return [(Location(file, i + 1), o) for i, o in enumerate(objs)]


def store(engine):
    s = FactStore(engine)
    s.create_schema()
    return s


def test_references_resolve_whatever_the_order_within_the_file(db_engine):
    s = store(db_engine)
    report = s.import_items(items(REGISTRY + [DUES]))
    assert (report.added, report.rejected) == (5, 0)
    assert s.counts()["org"] == 3


def test_reimporting_identical_content_is_a_no_op(db_engine):
    s = store(db_engine)
    s.import_items(items(REGISTRY + [DUES]))
    again = s.import_items(items(REGISTRY + [DUES]))
    assert (again.added, again.unchanged, again.corrected) == (0, 5, 0)
    assert len(s.history("dues", "m01|2017-06")) == 1


def test_a_correction_supersedes_and_keeps_the_old_version(db_engine):
    s = store(db_engine)
    s.import_items(items(REGISTRY + [DUES]))
    report = s.import_items(items([dict(DUES, amount=40)]))
    assert (report.corrected, report.added) == (1, 0)
    versions = s.history("dues", "m01|2017-06")
    assert [v.version for v in versions] == [1, 2]
    assert [v.current for v in versions] == [False, True]
    assert versions[0].content["amount"] == 45.0 and versions[1].content["amount"] == 40.0
    assert versions[0].superseded_at is not None
    assert list(s.current("dues")) == [dict(versions[1].content)]
    with db_engine.connect() as conn:  # the projection holds only the current version
        assert conn.execute(sa.text("select amount from dues")).scalars().all() == [40.0]


def test_unknown_references_are_rejected_with_a_suggestion_and_the_rest_is_kept(db_engine):
    s = store(db_engine)
    bad = dict(DUES, member="m02")
    report = s.import_items(items(REGISTRY + [bad, dict(DUES, month="2017-07")]))
    assert report.added == 5 and report.rejected == 1
    (problem,) = report.problems
    assert str(problem) == "f.jsonl:5: dues.member: unknown member \"m02\" (did you mean 'm01'?)"


def test_a_rejected_org_takes_its_dependants_with_it_and_says_why(db_engine):
    s = store(db_engine)
    objs = [
        {"type": "org", "id": "b9", "name": "x", "kind": "branch", "parent": "nowhere"},
        {"type": "member", "id": "m9", "name": "y", "org": "b9"},
    ]
    report = s.import_items(items(objs))
    assert report.added == 0 and report.rejected == 2
    assert [p.field for p in report.problems] == ["org.parent", "member.org"]


def test_duplicate_ids_in_one_import_keep_the_first(db_engine):
    s = store(db_engine)
    objs = REGISTRY + [dict(REGISTRY[0], name="别的名字")]
    report = s.import_items(items(objs))
    assert report.added == 4 and report.rejected == 1
    assert "appears twice" in report.problems[0].message and "f.jsonl:1" in report.problems[0].message
    assert next(s.current("org"))["name"] == "省文联党组"


def test_reader_problems_pass_through_and_count_as_rejected(db_engine):
    s = store(db_engine)
    problem = FieldProblem(Location("f.jsonl", 3), "", "invalid JSON")
    report = s.import_items([problem, *items(REGISTRY)])
    assert report.rejected == 1 and report.added == 4


def test_meeting_projection_keeps_attendance_topics_and_minutes(db_engine):
    s = store(db_engine)
    meeting = {
        "type": "meeting", "id": "pg-1", "org": "pg", "kind": "party_group_meeting", "date": "2017-06-02",
        "topics": ["party_building"], "attendees": ["m01"], "minutes": {"content": "传达学习", "time": "9:00-10:00"},
    }
    s.import_items(items(REGISTRY + [meeting]))
    with db_engine.connect() as conn:
        row = conn.execute(sa.text("select org, kind, minutes_content, minutes_time from meeting")).one()
        assert tuple(row) == ("pg", "party_group_meeting", "传达学习", "9:00-10:00")
        assert conn.execute(sa.text("select member, status from meeting_attendance")).all() == [("m01", "present")]
        assert conn.execute(sa.text("select topic from meeting_topic")).scalars().all() == ["party_building"]
    # a correction rewrites the projection rows of that meeting only
    s.import_items(items([dict(meeting, attendees=[], absent=["m01"])]))
    with db_engine.connect() as conn:
        assert conn.execute(sa.text("select member, status from meeting_attendance")).all() == [("m01", "absent")]


def test_export_order_is_registry_first_and_content_is_canonical(db_engine):
    s = store(db_engine)
    s.import_items(items(REGISTRY + [DUES]))
    types = [f["type"] for f in s.current()]
    assert types == ["org", "org", "org", "member", "dues"]
    assert json.dumps(next(s.current("member")), ensure_ascii=False).startswith('{"extra_orgs": ["pg"]')
