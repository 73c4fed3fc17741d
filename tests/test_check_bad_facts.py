"""Issue 11: one stored fact the engine cannot judge never stops a check for everyone else.

The rows are written straight into the database (as an older import or a hand edit could leave them);
each becomes a ``data.quality.unjudgeable`` finding naming the fact, its id and field, what it touches is
left as stored, and every other subject is judged exactly as before.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine.app import App
from engine.check import run_check
from engine.cli import main
from engine.config import CheckSettings, Config
from engine.sample import sample_facts
from engine.subjects.screen import RULE
from engine.violations.store import ViolationStore
from facts.errors import Location
from facts.store import FactStore

AS_OF = dt.date(2018, 3, 1)


def _member_of(conn: sa.Connection, org: str) -> str:
    return str(conn.execute(sa.text("SELECT min(id) FROM member WHERE org = :o"), {"o": org}).scalar())


def _corrupt(conn: sa.Connection, dialect: str) -> tuple[set[str], set[str], list[tuple[str, str, str]]]:
    """Write the probe's bad facts; return the members and orgs they touch and (type, id, field) of each."""
    far = _member_of(conn, "b5")
    other = _member_of(conn, "b3")
    statements = [
        ("INSERT INTO dues VALUES ('m001', '0000-01', 10, '2017-01-10', 1000)", ("dues", "m001|0000-01", "month")),
        (f"UPDATE dues SET amount = 1e308 WHERE member = '{other}' AND month = '2017-03'",
         ("dues", f"{other}|2017-03", "amount")),
        ("UPDATE org SET term_years = 100000 WHERE id = 'oc'", ("org", "oc", "term_years")),
        (f"UPDATE member SET \"left\" = '9999-12-31' WHERE id = '{far}'", ("member", far, "left")),
        ("UPDATE petition SET closed = '9999-12-31' WHERE id = 'p001'", ("petition", "p001", "closed")),
        ("UPDATE election SET term_years = 100000 WHERE org = 'dc'", ("election", None, "term_years")),
    ]
    if dialect == "sqlite":  # what only a column without types can hold
        statements += [
            ("INSERT INTO org VALUES ('" + "x" * 380 + "', '长', 'branch', 'oc', '2000-01-01', NULL, 3)",
             ("org", None, "id")),
            ("UPDATE dues SET amount = 'abc' WHERE member = 'm002' AND month = '2017-04'",
             ("dues", "m002|2017-04", "amount")),
        ]
    else:
        statements.append(
            ("UPDATE dues SET amount = 'NaN' WHERE member = 'm002' AND month = '2017-04'",
             ("dues", "m002|2017-04", "amount"))
        )
    for sql, _ in statements:
        assert conn.execute(sa.text(sql)).rowcount >= 1, sql
    far_org = str(conn.execute(sa.text(f"SELECT org FROM member WHERE id = '{far}'")).scalar())
    members = {"m001", other, far, "m002"}
    orgs = {"oc", "dc", far_org}
    if dialect == "sqlite":
        orgs.add("x" * 380)
    return members, orgs, [what for _, what in statements]


def _app(engine: sa.Engine, processes: int = 1) -> App:
    return App(Config(check=CheckSettings(processes=processes)), engine, FactStore(engine), ViolationStore(engine))


@pytest.mark.parametrize("processes", [1, 2])
def test_seven_bad_facts_in_the_store_do_not_stop_the_check(db_engine, processes):
    app = _app(db_engine, processes)
    app.init()
    assert app.facts.import_items((Location("s", i), f) for i, f in enumerate(sample_facts())).rejected == 0
    before = run_check(app, "2017", AS_OF)
    with db_engine.begin() as conn:
        members, orgs, bad = _corrupt(conn, db_engine.dialect.name)

    after = run_check(app, "2017", AS_OF)

    problems = [f for f in after.findings if f.rule == RULE]
    assert len(problems) == len(bad)
    for fact, key, field in bad:
        hit = [p for p in problems if p.subject_type == fact and field in p.message and (key is None or p.subject_id == key)]
        assert len(hit) == 1, (fact, key, field, [p.message for p in problems])
        assert "无法判定" in hit[0].message and fact in hit[0].message
    # everyone the bad rows do not touch is judged exactly as before
    untouched = {f.key for f in before.findings if f.member not in members and f.org not in orgs}
    assert {f.key for f in after.findings if f.rule != RULE} == untouched
    assert len(untouched) > 30
    # what they touch is left as stored: nothing auto-resolved, nothing lost
    assert after.stored is not None and after.stored.resolved == []
    assert set(after.stored.new) == {p.key for p in problems}
    with db_engine.connect() as conn:
        statuses = dict(conn.execute(sa.text("SELECT key, status FROM violation")).all())
    assert all(statuses[f.key] == "open" for f in before.findings)
    # the store is fixed: the data-quality findings resolve themselves, nothing else changes
    again = run_check(app, "2017", AS_OF)
    assert {f.key for f in again.findings} == {f.key for f in after.findings}


def test_check_from_the_cli_reports_an_unjudgeable_fact_and_exits_0(tmp_path):
    db = tmp_path / "c.db"
    runner = CliRunner()
    sample = tmp_path / "s.jsonl"
    assert runner.invoke(main, ["sample", str(sample)]).exit_code == 0
    assert runner.invoke(main, ["--db", str(db), "init"]).exit_code == 0
    assert runner.invoke(main, ["--db", str(db), "import", str(sample), "--no-judge"]).exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE member SET joined = '2017-02-30' WHERE id = 'm002'")
        conn.execute("UPDATE dues SET paid_on = '0000-00-00' WHERE member = 'm003' AND month = '2017-05'")
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    result = runner.invoke(main, ["--db", str(db), "check", "--period", "2017", "--as-of", "2018-03-01"])
    assert result.exit_code == 0, result.output
    assert "数据无法判定" in result.output or "data.quality.unjudgeable" in result.output
    assert "2017-02-30" in result.output and "0000-00-00" in result.output
    assert "Traceback" not in result.output


def test_a_subject_durable_rules_refuses_becomes_a_finding_not_a_failure(sqlite_engine, monkeypatch):
    """Defence in depth: what the screen does not foresee (here a value durable_rules cannot read,
    made by a builder) is judged subject by subject, and only that subject is set aside."""
    from engine.subjects import single

    app = _app(sqlite_engine, processes=1)
    app.init()
    app.facts.import_items((Location("s", i), f) for i, f in enumerate(sample_facts()))
    before = run_check(app, "2017", AS_OF, dry_run=True)
    real = single.dues_subjects

    def poisoned(ctx, rule, periods):  # type: ignore[no-untyped-def]
        out = real(ctx, rule, periods)
        for s in out:
            if s.id == "m001|2017-03":
                s.fields.update(amount=float("inf"), standard=float("inf"))
        return out

    monkeypatch.setitem(single.FACT_BUILDERS, "dues", poisoned)
    after = run_check(app, "2017", AS_OF)
    problems = [f for f in after.findings if f.rule == RULE]
    assert problems and all(p.subject_id == "m001|2017-03" for p in problems)
    assert "m001|2017-03" in problems[0].message
    assert {f.key for f in after.findings if f.rule != RULE} == {
        f.key for f in before.findings if f.subject_id != "m001|2017-03"
    }


def test_the_partitions_are_planned_again_on_the_tree_the_workers_see_when_rows_are_set_aside(
    sqlite_engine, monkeypatch
):
    """The screen and the plan of a forked check are made side by side; a screen that sets rows aside
    makes the plan again behind it (the planner must see the tree without them), and the check finds the
    same as when planned that way alone."""
    import engine.evaluate
    from engine.evaluate import evaluate
    from engine.periods import parse_range

    app = _app(sqlite_engine, processes=2)
    app.init()
    assert app.facts.import_items((Location("s", i), f) for i, f in enumerate(sample_facts())).rejected == 0
    with sqlite_engine.begin() as conn:
        _corrupt(conn, "sqlite")
    runs: list[tuple[str, int]] = []
    real = engine.evaluate.run_forked

    def counted(target, jobs, what, heartbeat=None, heartbeat_seconds=30.0, workers=None):
        runs.append((what, len(jobs)))
        return real(target, jobs, what, heartbeat, heartbeat_seconds, workers)

    monkeypatch.setattr(engine.evaluate, "run_forked", counted)
    monkeypatch.setattr(engine.evaluate, "FACTS_PER_PARTITION", 100)  # over the budget: planned partitions
    rng = parse_range("2017")
    with sqlite_engine.connect() as conn:
        planned = evaluate(conn, app.pack(), rng, AS_OF, processes=2)
        one = evaluate(conn, app.pack(), rng, AS_OF, processes=0)
    assert [what for what, _ in runs] == ["check preparation", "partition planner", "evaluation worker"]
    assert runs[-1][1] > 2  # the planned partitions
    assert sorted(f.key for f in planned.findings) == sorted(f.key for f in one.findings)
    assert any(f.rule == RULE for f in planned.findings)
