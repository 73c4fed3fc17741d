"""Issue 11: an org parent cycle in the store never loops or crashes a walk of the tree (report
subtrees, routing paths, partitions); it is reported as a data-quality problem and its violations
still appear."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.check import run_check
from engine.config import CheckSettings, Config
from engine.orgtree import parent_cycles
from engine.report.data import build_report
from engine.report.render_text import render_markdown
from engine.sample import sample_facts
from engine.subjects.registry import Registry
from engine.subjects.screen import RULE
from engine.violations.store import ViolationStore
from facts.errors import Location
from facts.store import FactStore

AS_OF = dt.date(2018, 3, 1)


def test_parent_cycles_are_found_once_each():
    parents = {"a": "b", "b": "c", "c": "a", "d": "a", "e": None, "f": "f", "g": "missing"}
    assert parent_cycles(parents) == [["a", "b", "c"], ["f"]]
    assert parent_cycles({"x": None, "y": "x"}) == []


@pytest.mark.parametrize("processes", [2])
def test_report_org_with_a_parent_cycle_keeps_the_violations(db_engine, processes):
    app = App(Config(check=CheckSettings(processes=processes)), db_engine, FactStore(db_engine), ViolationStore(db_engine))
    app.init()
    assert app.facts.import_items((Location("s", i), f) for i, f in enumerate(sample_facts())).rejected == 0
    before = run_check(app, "2017", AS_OF)
    with db_engine.begin() as conn:  # oc is b1's parent: now b1 is oc's as well
        assert conn.execute(sa.text("UPDATE org SET parent = 'b1' WHERE id = 'oc'")).rowcount == 1
        registry = Registry.load(conn)
    assert registry.path("b1") in (["oc", "b1"], ["b1", "oc", "b1"][1:])  # finite, no loop

    after = run_check(app, "2017", AS_OF)

    problems = [f for f in after.findings if f.rule == RULE]
    assert len(problems) == 1 and "b1 → oc → b1" in problems[0].message and "parent" in problems[0].message
    # everything is still judged: the cycle is reported, not set aside
    assert {f.key for f in after.findings if f.rule != RULE} == {f.key for f in before.findings}
    assert after.stored is not None and after.stored.resolved == []

    sub = build_report(db_engine, "2017", org="oc", as_of=AS_OF)
    under_oc = [f for f in before.findings if "oc" in f.org_path]  # the subtree as it was before the cycle
    assert sub.totals.violations == len(under_oc) > 0
    assert any("循环" in note for note in sub.notes)
    whole = build_report(db_engine, "2017", as_of=AS_OF)
    assert whole.totals.violations == len(after.findings)
    assert {s.org for s in whole.by_org} >= {"oc", "b1"}
    assert "b1 → oc → b1" in render_markdown(whole).replace("\\", "")
