"""build_report: counts, rates, trend and ledger from hand-made violations, on SQLite and PostgreSQL.

``seed`` is imported by the other report tests (render, CLI, screenshot).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from conftest import _pg_engine_in_fresh_schema

from engine.finding import Finding
from engine.periods import parse_period
from engine.report.coverage import rule_judges
from engine.report.data import build_report
from engine.report.model import ReportError
from engine.schema import init_schema
from engine.violations import workflow as wf
from engine.violations.store import Scope, ViolationStore
from engine.violations.tables import CheckRun, PackVersion
from facts.db import make_engine
from facts.errors import Location
from facts.store import FactStore
from rules import STANDARD_PACK

AS_OF = dt.date(2018, 3, 15)
ORGS = [
    {"type": "org", "id": "oc", "name": "机关党委", "kind": "organ_committee", "established": "1990-01-01"},
    {
        "type": "org",
        "id": "b1",
        "name": "第一党支部",
        "kind": "branch",
        "parent": "oc",
        "established": "1995-01-01",
    },
    {"type": "org", "id": "b1-g1", "name": "第一党支部第一党小组", "kind": "group", "parent": "b1"},
    {
        "type": "org",
        "id": "b2",
        "name": "第二党支部",
        "kind": "branch",
        "parent": "oc",
        "established": "1995-01-01",
    },
    {"type": "org", "id": "u1", "name": "作家协会", "kind": "unit", "established": "2000-01-01"},
]
ORG_NAMES = {o["id"]: o["name"] for o in ORGS}


def standard_rules() -> dict[str, dict[str, Any]]:
    """The standard pack's rule texts as a run stores them (``id@version`` → JSON)."""
    out = {}
    for path in sorted(Path(STANDARD_PACK).glob("*.yaml")):
        for rule in yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]:
            # the earliest version of each id (2017's facts are judged by it)
            out.setdefault(f"{rule['id']}@v1", json.loads(json.dumps(rule, default=str)))
    return out


def finding(
    rule: str, subject: str, org: str | None, period: str, rules: dict[str, dict[str, Any]]
) -> Finding:
    r = rules[f"{rule}@v1"]
    subject_type, subject_id = subject.split(":", 1)
    name = ORG_NAMES.get(org or "")
    return Finding(
        rule, "v1", r["title"], r["basis"], r["severity"], subject_type, subject_id, org, name, None, period,
        f"{name or ''}{period}{r['title']}", {"observed": {}}, ["oc", org] if org and org != "oc" else [],
    )  # fmt: skip


def add_run(store: ViolationStore, period: str, as_of: dt.date, ok: bool = True, pack: str = "h1") -> int:
    run = store.start_run(pack, "std", period, as_of, 10)
    if ok:
        store.finish_run(run)
    else:
        store.fail_run(run, RuntimeError("测试：检查失败"))
    return run


def seed(db: sa.Engine) -> dict[str, str]:
    """Orgs, a pack version, runs for 2016 and 2017 (and a failed one for 2015), and ten violations.

    Returns the keys of the violations moved through the workflow, by what happened to them.
    """
    init_schema(db)
    imported = FactStore(db).import_items([(Location("orgs.jsonl", i), o) for i, o in enumerate(ORGS, 1)])
    assert imported.rejected == 0
    rules = standard_rules()
    with db.begin() as conn:
        conn.execute(
            sa.insert(PackVersion.__table__).values(  # type: ignore[attr-defined]
                hash="h1", root="std", first_used=dt.datetime(2018, 3, 1, tzinfo=dt.UTC), rules=rules
            )
        )
    store = ViolationStore(db)
    add_run(store, "2015", dt.date(2016, 3, 1), ok=False)
    add_run(store, "2016", dt.date(2017, 3, 1))
    run = add_run(store, "2017", dt.date(2018, 3, 1))
    found = [
        finding("branch.committee_meeting.monthly", "org:b1", "b1", "2016-05", rules),
        finding("dues.monthly.paid", "member:m1", "b1", "2016-07", rules),
        finding("branch.committee_meeting.monthly", "org:b1", "b1", "2017-01", rules),
        finding("branch.committee_meeting.monthly", "org:b1", "b1", "2017-02", rules),
        finding("dues.monthly.paid", "member:m1", "b1", "2017-02", rules),
        finding("dues.monthly.paid", "member:m2", "b1", "2017-02", rules),
        finding("branch.group_meeting.monthly", "org:b1-g1", "b1-g1", "2017-03", rules),
        finding("branch.member_assembly.quarterly", "org:b2", "b2", "2017-Q1", rules),
        finding("org.election.overdue", "org:b2", "b2", "2017", rules),
        finding("petition.registered.in_time", "petition:p1", None, "2017-04", rules),
    ]
    store.record(found, Scope(set()), "h1", run)
    keys = {
        "assigned": found[2].key,
        "resolved": found[3].key,
        "waived": found[5].key,
        "acknowledged": found[7].key,
    }
    wf.assign(store, keys["assigned"], "纪委张三", "李四", dt.date(2018, 1, 31), "补开支委会并完善记录")
    wf.resolve(store, keys["resolved"], "纪委张三", "已于3月5日补开支委会，记录已上传")
    wf.waive(store, keys["waived"], "纪委张三", "该党员长期病休，经批准缓交", "机关党委王五")
    wf.acknowledge(store, keys["acknowledged"], "支部书记")
    return keys


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(request, tmp_path_factory) -> Iterator[tuple[sa.Engine, dict[str, str]]]:
    """One seeded database per backend for the read-only tests of this module."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('report') / 'test.db'}")
        yield engine, seed(engine)
        engine.dispose()
    else:
        for engine in _pg_engine_in_fresh_schema():
            yield engine, seed(engine)


def test_totals_and_rectification_rate(seeded):
    db, _ = seeded
    r = build_report(db, "2017", as_of=AS_OF, trend_periods=3)
    t = r.totals
    assert (t.violations, t.active, t.resolved, t.waived, t.overdue, t.serious) == (8, 6, 1, 1, 1, 1)
    assert t.rectification_rate == pytest.approx(1 / 7)
    assert r.title == "全部组织2017年度党建合规情况报告"
    assert len(r.judged) == 17 and "2017-Q4" in r.judged and "2016-12" not in r.judged
    assert r.notes == [] and r.runs == [3]  # the 2016 run judged only the trend


def test_by_org_follows_the_tree_and_counts_clean_periods(seeded):
    db, _ = seeded
    r = build_report(db, "2017", as_of=AS_OF)
    rows = {s.org: s for s in r.by_org}
    assert [(s.org, s.depth) for s in r.by_org] == [
        ("oc", 0), ("b1", 1), ("b1-g1", 2), ("b2", 1), ("u1", 0), (None, 0)
    ]  # fmt: skip
    b1 = rows["b1"]
    assert b1.counts.violations == 4 and b1.counts.overdue == 1
    assert (b1.clean, b1.judged) == (15, 17)  # 2017-01 and 2017-02 had violations
    assert rows["b2"].clean == 15  # 2017-Q1 and 2017
    assert rows["oc"].compliance_rate == 1.0 and rows["oc"].counts.rectification_rate is None
    assert rows[None].name == "（未归属组织）" and rows[None].counts.violations == 1


def test_by_rule_rates_use_the_rules_own_granularity(seeded):
    db, _ = seeded
    r = build_report(db, "2017", as_of=AS_OF)
    rules = {s.rule: s for s in r.by_rule}
    dues = rules["dues.monthly.paid"]
    assert (dues.counts.violations, dues.subjects, dues.orgs, dues.judged, dues.clean) == (2, 2, 1, 12, 11)
    assembly = rules["branch.member_assembly.quarterly"]
    assert (assembly.granularity, assembly.judged, assembly.clean) == ("quarter", 4, 3)
    assert rules["org.election.overdue"].compliance_rate == 0.0
    theme = rules["branch.theme_day.monthly"]  # judged, never violated
    assert theme.counts.violations == 0 and theme.compliance_rate == 1.0
    assert r.by_rule[0].rule == "branch.committee_meeting.monthly"  # most violations first


def test_org_scope_is_the_subtree(seeded):
    db, _ = seeded
    r = build_report(db, "2017", org="b1", as_of=AS_OF)
    assert [(s.org, s.depth) for s in r.by_org] == [("b1", 0), ("b1-g1", 1)]
    assert r.totals.violations == 5
    assert r.org_name == "第一党支部" and r.title.startswith("第一党支部2017年度")
    assert {e.org_name for e in r.ledger} == {"第一党支部", "第一党支部第一党小组"}


def test_unknown_org_suggests_close_ids(seeded):
    db, _ = seeded
    with pytest.raises(ReportError) as err:
        build_report(db, "2017", org="b3", as_of=AS_OF)
    assert err.value.where == "--org" and "b1" in str(err.value)


def test_trend_marks_unjudged_periods(seeded):
    db, _ = seeded
    r = build_report(db, "2017", as_of=AS_OF, trend_periods=3)
    assert [(p.period, p.counts.violations, p.judged) for p in r.trend] == [
        ("2015", 0, False),  # its only run failed
        ("2016", 2, True),
        ("2017", 8, True),
    ]
    q = build_report(db, "2017-Q1", as_of=AS_OF, trend_periods=2)
    assert [(p.period, p.counts.violations) for p in q.trend] == [("2016-Q4", 0), ("2017-Q1", 6)]


def test_by_month_puts_quarter_and_year_violations_in_their_last_month(seeded):
    db, _ = seeded
    r = build_report(db, "2017", as_of=AS_OF, trend_periods=2)
    cells = {(m.month, m.rule): m.count for m in r.by_month}
    assert cells[("2017-03", "branch.member_assembly.quarterly")] == 1
    assert cells[("2017-12", "org.election.overdue")] == 1
    assert cells[("2016-05", "branch.committee_meeting.monthly")] == 1
    assert r.months[0] == "2016-01" and r.months[-1] == "2017-12" and len(r.months) == 24


def test_ledger_lines(seeded):
    db, keys = seeded
    r = build_report(db, "2017", as_of=AS_OF)
    by_key = {e.key: e for e in r.ledger}
    assert [e.no for e in r.ledger] == list(range(1, 9))
    assert r.ledger[-1].org_name == "（未归属组织）"
    assigned = by_key[keys["assigned"]]
    assert (assigned.owner, assigned.deadline, assigned.status, assigned.overdue) == (
        "李四", dt.date(2018, 1, 31), "rectifying", True
    )  # fmt: skip
    assert "已于3月5日补开支委会" in by_key[keys["resolved"]].evidence
    assert by_key[keys["resolved"]].closed is not None
    waived = by_key[keys["waived"]].evidence
    assert "长期病休" in waived and "机关党委王五" in waived
    assert by_key[keys["acknowledged"]].evidence == ""
    not_yet = build_report(db, "2017", as_of=dt.date(2018, 1, 31))
    assert not any(e.overdue for e in not_yet.ledger)  # the deadline day itself is not overdue


def test_without_check_runs_rates_are_unknown(sqlite_engine):
    init_schema(sqlite_engine)
    FactStore(sqlite_engine).import_items([(Location("o", 1), ORGS[0])])
    r = build_report(sqlite_engine, "2017-06", as_of=AS_OF)
    assert r.judged == [] and r.by_rule == []
    assert r.by_org[0].compliance_rate is None
    assert any("没有成功的检查运行" in n for n in r.notes)


def test_unreadable_run_and_unknown_pack_are_noted(sqlite_engine):
    seed(sqlite_engine)
    store = ViolationStore(sqlite_engine)
    add_run(store, "2018-06", dt.date(2018, 8, 1), pack="unknown")
    with sqlite_engine.begin() as conn:
        conn.execute(sa.insert(CheckRun.__table__).values(  # type: ignore[attr-defined]
            started_at=dt.datetime(2018, 8, 1, tzinfo=dt.UTC), pack_hash="h1", period="2018-13", as_of=dt.date(2018, 8, 1),
            status="ok",
        ))  # fmt: skip
    r = build_report(sqlite_engine, "2018-06", as_of=AS_OF)
    assert any("2018-13" in n for n in r.notes)
    assert any("unknown" in n and "未存档" in n for n in r.notes)
    assert r.judged == ["2018-06"]


def test_bad_arguments():
    with pytest.raises(ReportError):
        build_report(sa.create_engine("sqlite://"), "2017", trend_periods=0)
    from engine.periods import PeriodError

    with pytest.raises(PeriodError):
        build_report(sa.create_engine("sqlite://"), "2017-13")


def test_rule_timing():
    rules = standard_rules()
    year = parse_period("2017")
    letter = rules["integrity.responsibility_letter.signed@v1"]
    visits = rules["leader.field_visit.yearly@v1"]
    election = rules["org.election.overdue@v1"]
    assert rule_judges(letter, year, dt.date(2017, 5, 10), 10)  # its deadline (30 April) has passed
    assert not rule_judges(letter, year, dt.date(2017, 4, 30), 10)
    assert not rule_judges(visits, year, dt.date(2017, 5, 10), 10)  # the year has not closed
    assert rule_judges(visits, year, dt.date(2018, 1, 11), 10)
    assert not rule_judges(visits, year, dt.date(2018, 1, 10), 10)  # grace not over
    assert rule_judges(election, year, dt.date(2017, 2, 1), 10)  # judged at the as-of date
    assert not rule_judges(visits, parse_period("2017-06"), dt.date(2018, 1, 11), 10)  # wrong granularity
    old = {**visits, "effective": {"from": "2010-01-01", "to": "2012-12-31"}}
    assert not rule_judges(old, year, dt.date(2018, 3, 1), 10)  # no longer in force
