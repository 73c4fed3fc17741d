"""Judging a fact the moment it is submitted (issue 7), as a secretary does it from the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import engine.submit
from engine.app import build_app
from engine.cli import main

ORGS = [
    {"type": "org", "id": "pg", "name": "省文联党组", "kind": "party_group"},
    {"type": "org", "id": "oc", "name": "机关党委", "kind": "organ_committee"},
    {"type": "org", "id": "b1", "name": "机关第一党支部", "kind": "branch", "parent": "oc"},
]
PG = [f"m{i}" for i in range(1, 8)]
MEMBERS = [
    {"type": "member", "id": m, "name": f"成员{i}", "org": "b1", "roles": ["party_group_member"], "extra_orgs": ["pg"]}
    for i, m in enumerate(PG, 1)
]
MINUTES = ["--time", "9:00-11:00", "--recorder", "m1", "--outcome", "形成纪要"]


@pytest.fixture
def cli(tmp_path):
    db = str(tmp_path / "s.db")
    registry = tmp_path / "registry.jsonl"
    registry.write_text("\n".join(json.dumps(o, ensure_ascii=False) for o in ORGS + MEMBERS), encoding="utf-8")
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, ["--db", db, *args], catch_exceptions=False)

    assert run("import", str(registry)).exit_code == 0
    run.db = db  # type: ignore[attr-defined]
    run.tmp = tmp_path  # type: ignore[attr-defined]
    return run


def add_meeting(cli, attendees, *extra):
    minutes = cli.tmp / "minutes.md"
    minutes.write_text("## 内容\n传达学习全省组织工作会议精神，研究部署党建工作。\n", encoding="utf-8")
    return cli(
        "add", "meeting", "--id", "pg-0612", "--org", "pg", "--kind", "party_group_meeting", "--date", "2017-06-12",
        "--attendees", ",".join(attendees), "--topics", "party_building", "--minutes", str(minutes), *MINUTES,
        *extra,
    )


def violations(cli):
    return json.loads(cli("violations", "list", "--format", "json").output)


def test_six_of_seven_is_flagged_at_once_with_the_explanation(cli):
    result = add_meeting(cli, PG[:6], "--leave", "m7:出差:yes")
    assert result.exit_code == 0
    assert "party_group.meeting.quorum" in result.output
    assert "到会6人/应到7人（85.7%），低于90%的要求" in result.output
    assert "party_group.meeting.leave" not in result.output  # on leave with opinion given
    stored = violations(cli)
    assert [v["key"] for v in stored] == ["party_group.meeting.quorum|meeting:pg-0612|2017-06"]
    assert stored[0]["evidence"]["observed"]["present"] == 6 and stored[0]["evidence"]["observed"]["eligible"] == 7


def test_correcting_attendance_to_seven_resolves_the_violation(cli):
    add_meeting(cli, PG[:6])
    result = add_meeting(cli, PG)
    assert "corrected: meeting pg-0612 (version 2)" in result.output
    assert "已自动解决 2 项" in result.output
    assert {v["status"] for v in violations(cli)} == {"resolved"}
    hist = json.loads(cli("history", "meeting", "pg-0612", "--format", "json").output)
    assert [len(v["content"]["attendees"]) for v in hist] == [6, 7]


def test_importing_the_same_file_twice_reports_nothing_new(cli):
    path = cli.tmp / "m.jsonl"
    meeting = {"type": "meeting", "id": "pg-1", "org": "pg", "kind": "party_group_meeting", "date": "2017-05-02",
               "attendees": PG[:5], "minutes": {"time": "9:00", "recorder": "m1", "content": "学习", "outcome": "决议"}}
    path.write_text(json.dumps(meeting, ensure_ascii=False), encoding="utf-8")
    first = cli("import", str(path))
    assert "added 1" in first.output and "party_group.meeting.quorum" in first.output
    second = cli("import", str(path))
    assert "unchanged 1" in second.output and "即时判定" not in second.output
    assert len(violations(cli)) == 2  # quorum and leave, once each


def test_a_later_check_neither_duplicates_nor_contradicts(cli):
    add_meeting(cli, PG[:6])
    before = {v["key"]: v for v in violations(cli)}
    cli("check", "--period", "2017-06", "--as-of", "2017-08-01")
    after = {v["key"]: v for v in violations(cli) if v["rule"].startswith("party_group.meeting")}
    assert set(after) == set(before)
    assert all(v["status"] == "open" and v["first_seen"] == before[k]["first_seen"] for k, v in after.items())


def test_a_rule_that_raises_does_not_lose_the_fact(cli, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("matcher exploded")

    monkeypatch.setattr(engine.submit, "_judge", broken)
    result = add_meeting(cli, PG[:6])
    assert result.exit_code == 0
    assert "added: meeting pg-0612" in result.output
    assert "即时判定失败" in result.stderr and "matcher exploded" in result.stderr
    assert violations(cli) == []
    monkeypatch.undo()
    # the next check judges it
    cli("check", "--period", "2017-06", "--as-of", "2017-08-01")
    assert "party_group.meeting.quorum|meeting:pg-0612|2017-06" in {v["key"] for v in violations(cli)}


def test_library_function_judges_a_batch(cli):
    app = build_app(cli.db)
    from facts.errors import Location

    objs = [
        {"type": "meeting", "id": f"b-{i}", "org": "pg", "kind": "party_group_meeting", "date": "2017-07-03",
         "attendees": PG[: 7 - i]}
        for i in range(3)
    ]
    report = app.facts.import_items([(Location("api", i), o) for i, o in enumerate(objs)])
    judged = engine.submit.judge_facts(app, [s.fact for s in report.stored])
    quorum = sorted(f.subject_id for f in judged.findings if f.rule == "party_group.meeting.quorum")
    assert quorum == ["b-1", "b-2"]
    assert not judged.errors
