"""The facts commands as a user runs them: init, import (good and broken files), export, history, orgs, members."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main

REGISTRY = [
    {"type": "org", "id": "pg", "name": "省文联党组", "kind": "party_group"},
    {"type": "org", "id": "oc", "name": "省文联机关党委", "kind": "organ_committee", "term_years": 5},
    {"type": "org", "id": "b1", "name": "机关第一党支部", "kind": "branch", "parent": "oc", "term_years": 3},
    {"type": "member", "id": "m01", "name": "张三", "org": "b1", "roles": ["party_group_member", "leader"], "extra_orgs": ["pg"]},
    {"type": "member", "id": "m02", "name": "李四", "org": "b1", "roles": ["branch_secretary"]},
]


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "cli.db"

    def invoke(*args: str, **kw):
        return CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False, **kw)

    return invoke


def jsonl(path: Path, objs, extra_lines=()):
    lines = [json.dumps(o, ensure_ascii=False) for o in objs] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_init_is_safe_to_repeat(run):
    assert run("init").exit_code == 0
    assert run("init").exit_code == 0


def test_import_counts_then_reimport_is_unchanged(run, tmp_path):
    f = jsonl(tmp_path / "f.jsonl", REGISTRY)
    first = run("import", f)
    assert first.exit_code == 0 and "added 5, unchanged 0, corrected 0, rejected 0" in first.output
    second = run("import", f)
    assert "added 0, unchanged 5, corrected 0, rejected 0" in second.output


def test_broken_lines_are_named_on_stderr_the_rest_is_kept_and_exit_is_1(run, tmp_path):
    good_dues = {"type": "dues", "member": "m01", "month": "2017-06", "amount": 45, "paid_on": "2017-06-20", "base": 4500}
    f = jsonl(
        tmp_path / "mixed.jsonl",
        REGISTRY,
        extra_lines=[
            "# a comment",
            "",
            "{not json",
            json.dumps({"type": "meeting", "id": "x", "org": "b1", "kind": "committee_meeting", "date": "2017-02-30"}),
            json.dumps({"type": "dues", "member": "m99", "month": "2017-06", "amount": 1, "paid_on": "2017-06-01"}),
            json.dumps(good_dues),
        ],
    )
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "cli.db"), "import", f])
    assert result.exit_code == 1
    assert "added 6, unchanged 0, corrected 0, rejected 3" in result.stdout
    err = result.stderr
    assert "mixed.jsonl:8: invalid JSON" in err
    assert 'mixed.jsonl:9: meeting.date: "2017-02-30" is not a valid date' in err
    assert 'mixed.jsonl:10: dues.member: unknown member "m99"' in err


def test_export_round_trips_exactly(run, tmp_path):
    f = jsonl(tmp_path / "f.jsonl", REGISTRY)
    run("import", f)
    exported = run("export").output
    out = tmp_path / "again.jsonl"
    out.write_text(exported, encoding="utf-8")
    fresh = CliRunner().invoke(main, ["--db", str(tmp_path / "other.db"), "import", str(out)])
    assert "added 5" in fresh.output
    again = CliRunner().invoke(main, ["--db", str(tmp_path / "other.db"), "export"]).output
    assert again == exported
    assert {json.loads(line)["id"] for line in exported.splitlines()} == {o["id"] for o in REGISTRY}


def test_export_csv_round_trips(run, tmp_path):
    run("import", jsonl(tmp_path / "f.jsonl", REGISTRY))
    out = tmp_path / "csv"
    result = run("export", "--format", "csv", "--out", str(out))
    assert result.exit_code == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["members.csv", "orgs.csv"]
    fresh = CliRunner().invoke(main, ["--db", str(tmp_path / "o.db"), "import", str(out / "orgs.csv"), str(out / "members.csv")])
    assert "added 5, unchanged 0, corrected 0, rejected 0" in fresh.output


def test_history_shows_a_correction(run, tmp_path):
    run("import", jsonl(tmp_path / "f.jsonl", REGISTRY))
    changed = [dict(REGISTRY[4], name="李四（更正）")]
    result = run("import", jsonl(tmp_path / "g.jsonl", changed))
    assert "corrected 1" in result.output
    hist = json.loads(run("history", "member", "m02", "--format", "json").output)
    assert [v["version"] for v in hist] == [1, 2]
    assert hist[0]["content"]["name"] == "李四" and not hist[0]["current"]
    assert hist[1]["content"]["name"] == "李四（更正）" and hist[1]["current"]
    table = run("history", "member", "m02").output
    assert "已被更正" in table and "当前" in table


def test_orgs_and_members_listings(run, tmp_path):
    run("import", jsonl(tmp_path / "f.jsonl", REGISTRY))
    assert "机关第一党支部" in run("orgs").output
    branch_only = json.loads(run("orgs", "--kind", "branch", "--format", "json").output)
    assert [o["id"] for o in branch_only] == ["b1"]
    members = json.loads(run("members", "--org", "b1", "--format", "json").output)
    assert [m["id"] for m in members] == ["m01", "m02"]


def test_empty_file_is_a_clear_error(run, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "cli.db"), "import", str(empty)])
    assert result.exit_code == 1 and "empty" in result.stderr


def test_gbk_file_is_read_and_the_encoding_is_reported(run, tmp_path):
    path = tmp_path / "gbk.jsonl"
    path.write_bytes("\n".join(json.dumps(o, ensure_ascii=False) for o in REGISTRY).encode("gbk"))
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "cli.db"), "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "added 5" in result.stdout and "GB18030" in result.stderr


def test_every_command_has_help_with_an_example():
    def walk(cmd, path):
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, [*path, name])

    for path, cmd in walk(main, []):
        assert cmd.help and cmd.help.strip(), f"partyrules {' '.join(path)} has no help"
        if not getattr(cmd, "commands", None):
            assert "Example" in cmd.help, f"partyrules {' '.join(path)} --help has no example"
