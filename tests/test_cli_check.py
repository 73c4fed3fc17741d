"""``partyrules check`` and ``violations`` on the sample organisation, as a user runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from click.testing import CliRunner

from engine.app import App, build_app
from engine.check import run_check
from engine.cli import main
from engine.config import Config
from engine.sample import sample_expected, sample_facts
from engine.violations.store import ViolationStore
from facts.errors import Location
from facts.store import FactStore


@pytest.fixture(scope="module")
def sample_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sample") / "sample.jsonl"
    CliRunner().invoke(main, ["sample", str(path)], catch_exceptions=False)
    return path


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory, sample_file):
    """The sample imported once; each test works on its own copy of the file."""
    db = tmp_path_factory.mktemp("db") / "template.db"
    result = CliRunner().invoke(main, ["--db", str(db), "import", str(sample_file), "--no-judge"])
    assert result.exit_code == 0
    with sqlite3.connect(db) as conn:  # fold the WAL into the file, so a copy of the file is whole
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


@pytest.fixture
def run(tmp_path, sample_db):
    db = tmp_path / "c.db"
    shutil.copy(sample_db, db)

    def invoke(*args: str):
        return CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)

    return invoke


def keys(findings):
    return {(f["rule"], f["subject"]["type"], f["subject"]["id"], f["period"]) for f in findings}


EXPECTED = {(e.rule, e.subject_type, e.subject_id, e.period) for e in sample_expected()}


def test_the_sample_year_gives_exactly_the_planted_lapses(run):
    result = run("check", "--period", "2017", "--as-of", "2018-03-01", "--format", "json")
    assert result.exit_code == 0
    findings = json.loads(result.output)
    assert keys(findings) == EXPECTED
    one = findings[0]
    assert set(one) >= {"rule", "severity", "subject", "org", "member", "period", "message", "evidence"}
    assert set(one["evidence"]) >= {"observed", "threshold", "facts"}


def test_the_table_is_chinese_and_aligned(run):
    out = run("check", "--period", "2017-06", "--as-of", "2017-08-01").output
    assert "合规检查 2017-06" in out and "级别" in out and "已保存：新增" in out


def test_check_twice_leaves_the_same_violations(run):
    run("check", "--period", "2017", "--as-of", "2018-03-01")
    first = json.loads(run("violations", "list", "--format", "json").output)
    second_run = run("check", "--period", "2017", "--as-of", "2018-03-01").output
    assert "新增 0" in second_run
    second = json.loads(run("violations", "list", "--format", "json").output)
    assert [v["key"] for v in first] == [v["key"] for v in second]
    assert {v["status"] for v in second} == {"open"}
    assert len(second) == len(EXPECTED)


def test_dry_run_stores_nothing(run):
    out = run("check", "--period", "2017", "--as-of", "2018-03-01", "--dry-run", "--format", "json").output
    assert json.loads(out)
    assert json.loads(run("violations", "list", "--format", "json").output) == []


def test_an_open_period_is_not_judged(run):
    out = run("check", "--period", "2017-12", "--as-of", "2017-11-30").output
    assert "未判定任何期间" in out
    # within the grace only the status rules (a term of office, judged on the month's last day) are judged
    findings = json.loads(run("check", "--period", "2017-12", "--as-of", "2018-01-05", "--format", "json").output)
    assert findings and {f["rule"] for f in findings} == {"org.election.overdue"}
    assert {f["period"] for f in findings} == {"2017"}


def test_a_period_with_no_facts_still_judges_absence(run):
    findings = json.loads(run("check", "--period", "2019-03", "--as-of", "2019-05-01", "--format", "json").output)
    rules = {f["rule"] for f in findings}
    assert "branch.committee_meeting.monthly" in rules and "dues.monthly.paid" in rules


def test_bad_period_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "x.db"), "check", "--period", "2017-13"])
    assert result.exit_code == 1 and "is not a period" in result.output


def test_a_fact_that_fixes_a_lapse_resolves_its_violation(run, tmp_path):
    run("check", "--period", "2017", "--as-of", "2018-03-01")
    lapse = next(e for e in EXPECTED if e[0] == "branch.committee_meeting.monthly")
    org, period = lapse[2], lapse[3]
    fix = {"type": "meeting", "id": "fix-1", "org": org, "kind": "committee_meeting", "date": f"{period}-20",
           "attendees": [], "minutes": {"content": "补开"}}
    path = tmp_path / "fix.jsonl"
    path.write_text(json.dumps(fix, ensure_ascii=False), encoding="utf-8")
    run("import", str(path), "--quiet")
    out = run("check", "--period", "2017", "--as-of", "2018-03-01").output
    assert "自动解决 1" in out
    key = f"branch.committee_meeting.monthly|org:{org}|{period}"
    shown = json.loads(run("violations", "show", key, "--format", "json").output)
    assert shown["status"] == "resolved" and "复查未再发现" in shown["resolution"]
    assert [e["action"] for e in shown["log"]] == ["detected", "auto_resolved"]
    assert shown["rule_text"]["id"] == "branch.committee_meeting.monthly"


def test_workflow_from_the_cli(run):
    run("check", "--period", "2017", "--as-of", "2018-03-01")
    for name in ("纪检甲", "张三", "李四", "Alice"):  # --by names an account (created by the local administrator)
        assert run("users", "add", name, "--role", "inspector", "--no-password").exit_code == 0
    key = next(v["key"] for v in json.loads(run("violations", "list", "--format", "json").output)
               if v["rule"] == "dues.monthly.paid")
    assert "待处理 → 已确认" in run("violations", "ack", key, "--by", "纪检甲").output
    assert "整改中" in run("violations", "assign", key, "--by", "纪检甲", "--owner", "王书记",
                        "--deadline", "2018-04-30", "--plan", "补缴").output
    refused = run("violations", "ack", key, "--by", "纪检甲")
    assert refused.exit_code == 1 and "is rectifying" in refused.output and "Possible now" in refused.output
    bad = run("violations", "waive", key, "--by", "张三", "--approver", "张三", "--reason", "病假")
    assert bad.exit_code == 1 and "approver" in bad.output
    same = run("violations", "waive", key, "--by", "Alice", "--approver", "alice", "--reason", "病假")
    assert same.exit_code == 1 and "not the requester" in same.output  # one account, whatever the case
    ghost = run("violations", "waive", key, "--by", "张三", "--approver", "王五", "--reason", "病假")
    assert ghost.exit_code == 1 and "enabled account" in ghost.output  # free text no longer approves
    local = run("violations", "waive", key, "--approver", "李四", "--reason", "病假")
    assert local.exit_code == 1 and "requested by an account" in local.output
    assert "已豁免" in run("violations", "waive", key, "--by", "张三", "--approver", "李四", "--reason", "病假").output
    assert "待处理" in run("violations", "reopen", key, "--by", "李四", "--reason", "复核").output
    assert "已解决" in run("violations", "resolve", key, "--by", "李四", "--evidence", "收据0012").output
    shown = json.loads(run("violations", "show", key, "--format", "json").output)
    assert [e["action"] for e in shown["log"]] == ["detected", "ack", "assign", "waive", "reopen", "resolve"]
    assert shown["owner"] == "王书记" and shown["deadline"] == "2018-04-30"
    table = run("violations", "show", key).output
    assert "处理记录" in table and "收据0012" in table


def test_check_on_postgresql(pg_engine):
    app = App(Config(), pg_engine, FactStore(pg_engine), ViolationStore(pg_engine))
    app.init()
    report = app.facts.import_items((Location("sample", i), f) for i, f in enumerate(sample_facts()))
    assert report.rejected == 0
    import datetime as dt

    result = run_check(app, "2017", dt.date(2018, 3, 1))
    assert {(f.rule, f.subject_type, f.subject_id, f.period) for f in result.findings} == EXPECTED
    # rows written by the bulk path (COPY) read back as written: Chinese text, JSON evidence, the log
    for finding in result.findings[:20]:
        row, events = app.violations.get(finding.key)
        assert row is not None and row.message == finding.message and row.status == "open"
        assert row.evidence == json.loads(json.dumps(finding.evidence)) and row.escalation_level == 0
        assert [e.action for e in events] == ["detected"] and events[0].note == finding.message
    again = run_check(app, "2017", dt.date(2018, 3, 1))
    assert again.stored is not None and not again.stored.new and not again.stored.resolved


def test_build_app_defaults_to_a_sqlite_file_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PARTYRULES_DB", raising=False)
    app = build_app()
    assert str(app.db.url) == "sqlite:///partyrules.db"


def test_a_rectified_violation_stays_resolved_and_a_data_correction_reopens_if_still_found(run):
    run("check", "--period", "2017", "--as-of", "2018-03-01")
    assert run("users", "add", "纪检甲", "--role", "inspector", "--no-password").exit_code == 0
    keys = sorted(v["key"] for v in json.loads(run("violations", "list", "--format", "json").output)
                  if v["rule"] == "dues.monthly.paid")
    rectified, corrected = keys[0], keys[1]
    assert "已解决" in run("violations", "resolve", rectified, "--by", "纪检甲", "--evidence", "已补缴，收据0012").output
    assert "已解决" in run("violations", "resolve", corrected, "--by", "纪检甲", "--how", "data-corrected",
                        "--evidence", "交费记录日期录错，已更正").output
    again = run("check", "--period", "2017", "--as-of", "2018-03-01").output
    assert "复发 1" in again  # the correction did not remove the finding: reopened and alerted
    status = {v["key"]: v["status"] for v in json.loads(run("violations", "list", "--format", "json").output)}
    assert status[rectified] == "resolved"  # measures were taken: the past lapse is still seen, still resolved
    assert status[corrected] == "open"
    log = [e["action"] for e in json.loads(run("violations", "show", rectified, "--format", "json").output)["log"]]
    assert log == ["detected", "resolve"]  # no recurrence, no new alert
    log = [e["action"] for e in json.loads(run("violations", "show", corrected, "--format", "json").output)["log"]]
    assert log == ["detected", "resolve", "recurred"]
