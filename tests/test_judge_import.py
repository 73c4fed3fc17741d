"""A big import is judged in bulk, as a check of the single-fact rules over the months it touched, and
stores the same violations as judging every fact on its own — without holding what it stored."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine import judge_import as bulk_module
from engine.app import App, build_app
from engine.auth.principal import Principal
from engine.cli import main
from engine.sample import sample_facts
from engine.service.facts_ops import submit_facts
from engine.violations.tables import Violation
from facts.errors import Location

_V = Violation.__table__  # type: ignore[attr-defined]


def _violations(app: App) -> list[tuple[str, str, str]]:
    with app.db.connect() as conn:
        rows = conn.execute(sa.select(_V.c.key, _V.c.status, _V.c.message)).all()
    return sorted((r.key, r.status, r.message) for r in rows)


def _imported(tmp_path, name: str, bulk_from: int | None, today: dt.date | None, monkeypatch):  # type: ignore[no-untyped-def]
    app = build_app(str(tmp_path / f"{name}.db"))
    app.init()
    if today is not None:
        monkeypatch.setattr(app, "today", lambda: today)
    items = [(Location("sample.jsonl", i), o) for i, o in enumerate(sample_facts(), 1)]
    got = submit_facts(app, Principal.local("test"), items, source="sample.jsonl", bulk_from=bulk_from)
    return app, got


@pytest.mark.parametrize("today", [None, dt.date(2017, 7, 5)], ids=["all-closed", "june-and-july-open"])
def test_bulk_judging_stores_what_judging_each_fact_stores(tmp_path, monkeypatch, today):
    one, by_fact = _imported(tmp_path, "by_fact", None, today, monkeypatch)
    many, in_bulk = _imported(tmp_path, "bulk", 100, today, monkeypatch)
    assert by_fact.report.stored and by_fact.judgement is not None and not by_fact.judgement.bulk_months
    # the big import kept none of its facts, and was judged from the store
    assert in_bulk.report.stored == [] and not in_bulk.report.stored_complete
    assert in_bulk.report.added == by_fact.report.added > 100
    j = in_bulk.judgement
    assert j is not None and not j.errors and j.bulk_months
    if today is not None:  # June (within the grace) and July (this month) are judged fact by fact
        assert j.bulk_months[-1] == "2017-05"
    stored = _violations(one)
    assert len(stored) >= 10 and _violations(many) == stored
    assert sorted(f.key for f in j.findings) == sorted(f.key for f in by_fact.judgement.findings)


def test_the_cli_counts_a_big_imports_findings_by_rule(tmp_path, monkeypatch):
    monkeypatch.setattr(bulk_module, "BULK_FROM", 100)
    path = tmp_path / "sample.jsonl"
    path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in sample_facts()), encoding="utf-8")
    db = str(tmp_path / "cli.db")
    result = CliRunner().invoke(main, ["--db", db, "import", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "批量判定：按月检查了本次导入涉及的" in result.output
    assert "  meeting.minutes.complete：" in result.output  # counted by rule, not listed one by one
    assert "逐项查看：partyrules violations list" in result.output
    listed = CliRunner().invoke(main, ["--db", db, "violations", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    stored = json.loads(listed.output)
    found = int(result.output.split("发现 ")[1].split(" 项问题")[0])
    assert found == len(stored) > 0
