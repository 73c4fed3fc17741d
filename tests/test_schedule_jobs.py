"""The scheduled jobs: which periods fall due, catch-up, idempotency after failures, the daily as-of run."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.app import App, build_app
from engine.config import parse_config
from engine.finding import Finding
from engine.pack.load import Pack, load_pack
from engine.periods import parse_period, parse_range
from engine.schedule.jobs import (
    ScheduleJobError,
    as_of_rules,
    check_closed_periods,
    daily_as_of,
    due_periods,
    group_by_widest,
    period_outlook,
    run_named,
)
from engine.schedule.runner import run_once
from engine.schedule.state import all_done
from engine.violations.packs import pack_history
from engine.violations.store import Scope, ViolationStore
from engine.violations.tables import Violation
from facts.db import make_engine
from facts.store import FactStore
from rules import STANDARD_PACK

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def at(day: str, hour: int = 3) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), tzinfo=SHANGHAI)


def make_config(tmp_path: Path, schedule: dict[str, Any] | None = None) -> Any:
    alerts = {
        "channels": {"log": {"type": "file", "path": str(tmp_path / "alerts.jsonl"), "digest": True}},
        "routes": [{"channel": "log"}],
    }
    schedule = {"since": "2024-01-01"} if schedule is None else schedule
    # these tests catch up months at once; the backlog gate has tests of its own (test_schedule_backfill.py)
    return parse_config({"alerts": alerts, "schedule": {"max_backlog": 100, **schedule}}, "test.toml")


@pytest.fixture
def app(tmp_path: Path) -> App:
    a = build_app(f"sqlite:///{tmp_path / 't.db'}", config=make_config(tmp_path))
    a.init()
    return a


def finding(org: str, period: str) -> Finding:
    return Finding(
        rule="test.rule",
        rule_version="v1",
        title="测试规则",
        basis="测试依据",
        severity="serious",
        subject_type="org",
        subject_id=org,
        org=org,
        org_name=f"组织{org}",
        member=None,
        period=period,
        message=f"{org} {period} 不合规",
        evidence={},
        org_path=[org],
    )


@dataclass
class FakeCheck:
    """A check that really stores a finding per org and judged period; it can die once after partial work."""

    orgs: tuple[str, ...] = ("o1", "o2", "o3")
    fail_once_at: str | None = None
    calls: list[tuple[str, dt.date, Pack | None]] = field(default_factory=list)

    def __call__(self, app: App, period: str, as_of: dt.date, pack: Pack | None) -> int:
        self.calls.append((period, as_of, pack))
        labels = [p.label for p in parse_range(period).all_periods()]
        findings = [finding(o, label) for label in labels for o in self.orgs]
        run_id = app.violations.start_run("h", "root", period, as_of, 10, "schedule")
        if period == self.fail_once_at:
            self.fail_once_at = None
            app.violations.record(findings[:2], Scope({("test.rule", labels[0])}), "h", run_id)  # committed
            raise RuntimeError("killed mid-run")
        app.violations.record(findings, Scope({("test.rule", label) for label in labels}), "h", run_id)
        app.violations.finish_run(run_id)
        return run_id

    @property
    def periods(self) -> list[str]:
        return [c[0] for c in self.calls]


def counts(app: App) -> dict[str, int]:
    with app.db.connect() as conn:
        q = lambda sql: int(conn.execute(sa.text(sql)).scalar_one())  # noqa: E731
        return {
            "violations": q("SELECT count(*) FROM violation"),
            "detected": q("SELECT count(*) FROM violation_event WHERE action = 'detected'"),
            "new_alerts": q("SELECT count(*) FROM alert_outbox WHERE kind = 'new'"),
            "distinct_new": q("SELECT count(DISTINCT key) FROM alert_outbox WHERE kind = 'new'"),
            "deliveries": q("SELECT count(*) FROM alert_delivery"),
        }


# -- which periods are due --------------------------------------------------------------


def test_due_periods_follow_the_grace() -> None:
    due = due_periods(dt.date(2024, 1, 1), dt.date(2024, 4, 10), 10, ["month", "quarter", "year"])
    labels = {p.label: d for p, d in due}
    assert labels == {
        "2023-12": dt.date(2024, 1, 11),
        "2023-Q4": dt.date(2024, 1, 11),
        "2023": dt.date(2024, 1, 11),
        "2024-01": dt.date(2024, 2, 11),
        "2024-02": dt.date(2024, 3, 11),
    }
    assert "2024-03" in {
        p.label for p, _ in due_periods(dt.date(2024, 1, 1), dt.date(2024, 4, 11), 10, ["month"])
    }
    assert due_periods(dt.date(2024, 1, 1), dt.date(2024, 4, 11), 0, ["year"]) == [
        (parse_period("2023"), dt.date(2024, 1, 1))
    ]


def test_group_by_widest_runs_a_quarter_once_for_its_months() -> None:
    due = due_periods(dt.date(2024, 1, 1), dt.date(2024, 4, 11), 10, ["month", "quarter", "year"])
    groups = {w.label: sorted(p.label for p, _ in g) for w, g in group_by_widest(due)}
    assert groups == {
        "2023": ["2023", "2023-12", "2023-Q4"],
        "2024-Q1": ["2024-01", "2024-02", "2024-03", "2024-Q1"],
    }


# -- catch-up and idempotency -----------------------------------------------------------


def test_day_by_day_each_period_is_checked_once(app: App) -> None:
    check = FakeCheck()
    for day in (
        "2024-01-10",
        "2024-01-11",
        "2024-01-12",
        "2024-02-11",
        "2024-03-11",
        "2024-03-12",
        "2024-04-11",
    ):
        check_closed_periods(app, at(day), check)
    assert check.periods == ["2023", "2024-01", "2024-02", "2024-Q1"]
    assert [c[1] for c in check.calls] == [
        dt.date(2024, 1, 11),
        dt.date(2024, 2, 11),
        dt.date(2024, 3, 11),
        dt.date(2024, 4, 11),
    ]
    assert {d.period for d in all_done(app.db)} == {
        "2023",
        "2023-Q4",
        "2023-12",
        "2024-01",
        "2024-02",
        "2024-03",
        "2024-Q1",
    }


def test_catch_up_twice_checks_each_period_once_without_duplicates(app: App) -> None:
    check = FakeCheck()
    report = check_closed_periods(app, at("2024-04-11"), check)
    assert list(report.checked) == ["2023", "2024-Q1"]
    first = counts(app)
    # 2023: 12 months + 4 quarters + the year; 2024-Q1: 3 months + the quarter
    assert first["violations"] == 3 * (17 + 4)
    again = check_closed_periods(app, at("2024-04-11", 23), check)
    assert again.checked == {}
    assert check.periods == ["2023", "2024-Q1"]
    assert counts(app) == first
    assert first["new_alerts"] == first["distinct_new"] == first["violations"] == first["detected"]


def test_the_local_day_decides(app: App) -> None:
    check = FakeCheck()
    # 23:59 on 10 February in Shanghai
    check_closed_periods(app, dt.datetime(2024, 2, 10, 15, 59, tzinfo=dt.UTC), check)
    assert check.periods == ["2023"]
    check_closed_periods(app, dt.datetime(2024, 2, 10, 16, 0, tzinfo=dt.UTC), check)  # 00:00 on 11 Feb
    assert check.periods == ["2023", "2024-01"]


def test_period_outlook_reads_without_recording(tmp_path: Path) -> None:
    app = build_app(f"sqlite:///{tmp_path / 'w.db'}", config=make_config(tmp_path, schedule={}))
    app.init()
    before = period_outlook(app, at("2024-02-20"))
    assert before.since is None and before.pending == []
    assert before.upcoming == [
        ("2024-02", dt.date(2024, 3, 11)),
        ("2024-Q1", dt.date(2024, 4, 11)),
        ("2024", dt.date(2025, 1, 11)),
    ]
    check_closed_periods(app, at("2024-02-20"), FakeCheck())  # records the epoch
    later = period_outlook(app, at("2024-04-11"))
    assert later.since == dt.date(2024, 2, 20)
    assert [p for p, _ in later.pending] == ["2024-02", "2024-Q1", "2024-03"]


def test_without_since_the_first_day_is_the_epoch(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, schedule={"periods": {"granularities": ["month"]}})
    app = build_app(f"sqlite:///{tmp_path / 'e.db'}", config=cfg)
    app.init()
    check = FakeCheck()
    check_closed_periods(app, at("2024-02-05"), check)  # first run: December (due 11 Jan) is history
    assert check.periods == []
    check_closed_periods(app, at("2024-03-20"), check)
    assert check.periods == ["2024-01", "2024-02"]


def test_killed_mid_run_then_rerun_completes_without_duplicates(app: App) -> None:
    check = FakeCheck(fail_once_at="2024-Q1")
    with pytest.raises(ScheduleJobError) as info:
        check_closed_periods(app, at("2024-04-11"), check)
    assert info.value.job == "periods"
    assert "2024-Q1" in info.value.failures[0] and "killed mid-run" in info.value.failures[0]
    # the failed group is not marked
    assert {d.period for d in all_done(app.db)} == {"2023", "2023-Q4", "2023-12"}
    check_closed_periods(app, at("2024-04-12"), check)
    assert check.periods == ["2023", "2024-Q1", "2024-Q1"]
    c = counts(app)
    assert c["violations"] == 3 * 21
    assert c["new_alerts"] == c["distinct_new"] == c["violations"] == c["detected"]
    assert {d.period for d in all_done(app.db)} >= {"2024-01", "2024-02", "2024-03", "2024-Q1"}
    check_closed_periods(app, at("2024-04-13"), check)
    assert len(check.calls) == 3


def test_locked_database_fails_the_run_and_loses_nothing(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    url = f"sqlite:///{tmp_path / 'lock.db'}"
    build_app(url, config=cfg).init()
    db = make_engine(url, connect_args={"timeout": 0.2})
    app = App(cfg, db, FactStore(db), ViolationStore(db, cfg.alerts))
    check_closed_periods(app, at("2024-01-01"), FakeCheck())  # creates the schedule tables
    locker = sqlite3.connect(tmp_path / "lock.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    check = FakeCheck()
    try:
        with pytest.raises(ScheduleJobError) as info:
            check_closed_periods(app, at("2024-04-11"), check)
        assert "locked" in " ".join(info.value.failures)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert all_done(app.db) == []
    check_closed_periods(app, at("2024-04-11"), check)
    c = counts(app)
    assert c["violations"] == c["new_alerts"] == c["distinct_new"] == 3 * 21
    report = run_named(app, "dispatch", at("2024-04-11"), dispatch_batches=100)
    lines = (tmp_path / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    assert report.delivered == len(lines) == c["deliveries"]  # type: ignore[attr-defined]
    assert len({json.loads(line)["alert_id"] for line in lines}) == len(lines)


# -- the daily as-of run ----------------------------------------------------------------


@pytest.fixture(scope="module")
def standard_pack() -> Pack:
    return load_pack(STANDARD_PACK)


def test_as_of_rules_are_deadlines_terms_and_petitions(standard_pack: Pack) -> None:
    pack = standard_pack
    chosen = {r.id for r in as_of_rules(pack)}
    assert {
        "petition.registered.in_time",
        "petition.closed.in_time",
        "integrity.responsibility_letter.signed",
    } <= chosen
    # the term-of-office rule
    assert any(r.rule.deadline is None and r.rule.subject.type == "org" for r in as_of_rules(pack))
    assert all(r.rule.period != "month" for r in as_of_rules(pack))
    assert len(chosen) < len(pack.ids())


def test_daily_as_of_judges_only_those_rules_and_remembers_the_whole_pack(
    app: App, monkeypatch: pytest.MonkeyPatch, standard_pack: Pack
) -> None:
    pack = standard_pack
    monkeypatch.setattr(App, "pack", lambda self, rules_dir=None: pack)
    check = FakeCheck(orgs=())
    daily_as_of(app, dt.date(2024, 5, 2), check)
    ((period, as_of, sub),) = check.calls
    assert (period, as_of) == ("2023..2024", dt.date(2024, 5, 2))
    assert sub is not None and sub.hash == pack.hash
    assert {r.id for r in sub.rules} == {r.id for r in as_of_rules(pack)}
    (stored,) = pack_history(app.db)
    assert stored["hash"] == pack.hash and stored["rules"] == len(pack.rules)


# -- escalation, digest, dispatch, run_once ---------------------------------------------


def test_escalate_and_digest_jobs_are_idempotent(app: App) -> None:
    check_closed_periods(app, at("2024-02-11"), FakeCheck(orgs=("o1",)))
    with app.db.begin() as conn:
        conn.execute(sa.update(Violation.__table__).values(first_seen=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)))
    changes = run_named(app, "escalate", at("2024-02-12"))
    assert isinstance(changes, list) and len(changes) == counts(app)["violations"] > 0
    assert run_named(app, "escalate", at("2024-02-13")) == []
    assert run_named(app, "digest", at("2024-02-12"))["log"] is not None  # type: ignore[index]
    assert run_named(app, "digest", at("2024-02-12", 9)) == {"log": None}


def test_run_once_runs_every_job_and_delivers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, standard_pack: Pack
) -> None:
    cfg = make_config(tmp_path, schedule={"since": "2024-01-01", "periods": {"granularities": ["month"]}})
    app = build_app(f"sqlite:///{tmp_path / 'o.db'}", config=cfg)
    monkeypatch.setattr(App, "pack", lambda self, rules_dir=None: standard_pack)
    check = FakeCheck(orgs=("o1",))
    report = run_once(app, at("2024-02-11"), check)
    assert report.failures == {}
    assert list(report.results) == ["periods", "daily", "escalate", "digest", "dispatch"]
    assert check.periods == ["2023-12", "2024-01", "2023..2024"]
    lines = (tmp_path / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    kinds = [json.loads(line)["kind"] for line in lines]
    assert kinds.count("new") == counts(app)["violations"] and "digest" in kinds


def test_run_once_reports_a_failing_job_and_still_runs_the_rest(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, schedule={"since": "2024-01-01", "daily": {"enabled": False}})
    app = build_app(f"sqlite:///{tmp_path / 'f.db'}", config=cfg)
    report = run_once(app, at("2024-02-11"), FakeCheck(fail_once_at="2024-01"))
    assert set(report.failures) == {"periods"}
    assert set(report.results) == {"escalate", "digest", "dispatch"}
    assert report.results["dispatch"].delivered > 0


# -- integration: the real check ---------------------------------------------------------

TINY = [
    {
        "type": "org",
        "id": "oc",
        "name": "机关党委",
        "kind": "organ_committee",
        "established": "1990-01-01",
        "term_years": 5,
    },
    {
        "type": "org",
        "id": "b1",
        "name": "第一党支部",
        "kind": "branch",
        "parent": "oc",
        "established": "1995-09-01",
        "term_years": 3,
    },
    {
        "type": "member",
        "id": "m1",
        "name": "张三",
        "org": "b1",
        "joined": "2000-01-01",
        "roles": ["branch_secretary"],
    },
    {"type": "member", "id": "m2", "name": "李四", "org": "b1", "joined": "2001-01-01"},
    {"type": "member", "id": "m3", "name": "王五", "org": "b1", "joined": "2002-01-01"},
]


def test_real_check_catch_up_is_idempotent(app: App, tmp_path: Path) -> None:
    """Runs the real ``run_check`` (needs engine.condition and engine.matcher)."""
    from facts.readers import read_file

    src = tmp_path / "tiny.jsonl"
    src.write_text("\n".join(json.dumps(f, ensure_ascii=False) for f in TINY), encoding="utf-8")
    app.facts.import_items(read_file(src), files=str(src))
    report = check_closed_periods(app, at("2024-03-11"))
    assert list(report.checked) == ["2023", "2024-01", "2024-02"]
    first = counts(app)
    assert first["violations"] > 0  # a branch that held no meeting at all
    assert check_closed_periods(app, at("2024-03-12")).checked == {}
    assert counts(app) == first
    with app.db.connect() as conn:
        runs = conn.execute(sa.text("SELECT period, trigger, status FROM check_run ORDER BY id")).all()
    assert [tuple(r) for r in runs] == [
        ("2023", "schedule", "ok"),
        ("2024-01", "schedule", "ok"),
        ("2024-02", "schedule", "ok"),
    ]
