"""Backtest on the sample organisation: what a candidate pack would flag or clear, storing nothing.

Also: effective dates keep earlier periods judged by the version then in force,
and a rule removed from the pack leaves its open violations open, marked retired.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from engine.app import App, build_app
from engine.backtest import BacktestError, backtest
from engine.check import run_check
from engine.cli import main
from engine.config import parse_config
from engine.pack.diff import diff_packs
from engine.pack.load import Pack, load_pack
from engine.sample import write_sample
from engine.violations.tables import Violation
from facts.readers import read_file
from rules import STANDARD_PACK

AS_OF = dt.date(2018, 3, 1)
QUORUM = "party_group.meeting.quorum"
QUORUM_PARAMS = "params: {threshold: 0.9}"


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sample")
    src = folder / "sample.jsonl"
    write_sample(src)
    db = folder / "sample.db"
    app = build_app(f"sqlite:///{db}", config=parse_config({}, "test.toml"))
    app.init()
    report = app.facts.import_items(read_file(src), files=str(src))
    assert report.rejected == 0
    app.db.dispose()
    return db


@pytest.fixture
def db_path(sample_db: Path, tmp_path: Path) -> Path:
    """A copy of the sample database for one test (some tests store violations)."""
    path = tmp_path / "sample.db"
    shutil.copy(sample_db, path)
    return path


@pytest.fixture
def app(db_path: Path) -> Iterator[App]:
    a = build_app(f"sqlite:///{db_path}", config=parse_config({}, "test.toml"))
    yield a
    a.db.dispose()


@pytest.fixture(scope="module")
def standard() -> Pack:
    return load_pack(STANDARD_PACK)


def copy_pack(tmp_path: Path, name: str = "candidate") -> Path:
    dst = tmp_path / name
    shutil.copytree(STANDARD_PACK, dst, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return dst


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur exactly once in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def lowered_quorum(tmp_path: Path) -> Path:
    pack = copy_pack(tmp_path)
    edit(pack / "party_group.yaml", QUORUM_PARAMS, "params: {threshold: 0.8}")
    return pack


def test_lowering_the_quorum_clears_exactly_the_meetings_between_80_and_90(
    app: App, tmp_path: Path, standard: Pack
) -> None:
    now = run_check(app, "2017", AS_OF, dry_run=True, pack=standard).findings
    between = {
        f.key for f in now if f.rule == QUORUM and 0.8 <= f.evidence["observed"]["attendance_ratio"] < 0.9
    }
    assert between, "the sample's party group has meetings at 6/7 attendance"

    result = backtest(app, load_pack(lowered_quorum(tmp_path)), "2017", AS_OF, baseline=standard)

    assert {f.key for f in result.removed} == between
    assert result.added == []
    assert result.unchanged == len(now) - len(between)
    assert result.by_rule() == {QUORUM: {"removed": len(between)}}
    assert result.by_org() == {"省文联党组": {"removed": len(between)}}
    assert 0 < result.flipped_share < 0.01
    with app.db.connect() as conn:  # nothing stored
        assert conn.execute(sa.select(sa.func.count()).select_from(Violation.__table__)).scalar() == 0  # type: ignore[attr-defined]


def cli(db_path: Path, *args: str) -> Any:
    out = CliRunner().invoke(main, ["--db", str(db_path), *args])
    return out


def test_cli_json_has_the_findings_of_check(db_path: Path, tmp_path: Path) -> None:
    when = ["--period", "2017-05", "--as-of", "2018-03-01"]
    out = cli(
        db_path, "rules", "backtest", "--rules", str(lowered_quorum(tmp_path)), *when, "--format", "json"
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert {"added", "removed", "unchanged"} <= set(data)
    assert data["added"] == [] and len(data["removed"]) == 1
    checked = cli(db_path, "check", *when, "--dry-run", "--format", "json")
    assert checked.exit_code == 0, checked.output
    by_key = {f["key"]: f for f in json.loads(checked.output)}
    (removed,) = data["removed"]
    assert removed == by_key[removed["key"]]  # same shape and content as `check --format json`
    assert data["unchanged"] == len(by_key) - 1

    table = cli(db_path, "rules", "backtest", "--rules", str(tmp_path / "candidate"), *when)
    assert table.exit_code == 0, table.output
    assert "不再违规 1 项" in table.output and "省文联党组" in table.output


def test_a_period_with_no_facts_says_so(app: App, db_path: Path, tmp_path: Path, standard: Pack) -> None:
    candidate = load_pack(lowered_quorum(tmp_path))
    with pytest.raises(BacktestError) as info:
        backtest(app, candidate, "2030", dt.date(2031, 3, 1), baseline=standard)
    assert info.value.period == "2030" and "没有任何记录" in str(info.value)
    out = cli(
        db_path, "rules", "backtest", "--rules", candidate.root, "--period", "2030", "--as-of", "2031-03-01"
    )
    assert out.exit_code == 1 and "2030" in out.output and "没有任何记录" in out.output
    assert "Traceback" not in out.output


def test_a_period_not_closed_by_the_as_of_date_says_so(app: App, tmp_path: Path, standard: Pack) -> None:
    with pytest.raises(BacktestError, match="尚未结束"):
        backtest(
            app, load_pack(lowered_quorum(tmp_path)), "2017-12", dt.date(2017, 11, 30), baseline=standard
        )


def rewrite(pack: Path, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    path = pack / "party_group.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["rules"] = change(raw["rules"])
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


def later_version(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The quorum rule ends on 2017-12-31; a second version with 0.8 takes over on 2018-01-01."""
    (old,) = [r for r in rules if r["id"] == QUORUM]
    new = dict(old, effective={"from": dt.date(2018, 1, 1)}, params={"threshold": 0.8}, tests=[])
    old["effective"] = {"from": old["effective"]["from"], "to": dt.date(2017, 12, 31)}
    return [*rules, new]


def test_a_later_rule_version_does_not_change_how_2017_is_judged(
    app: App, tmp_path: Path, standard: Pack
) -> None:
    folder = copy_pack(tmp_path, "versions")
    rewrite(folder, later_version)
    candidate = load_pack(folder)
    assert [r.rule.params["threshold"] for r in candidate.by_id(QUORUM)] == [0.9, 0.8]
    assert [r.id for r in candidate.in_force(dt.date(2018, 6, 1)) if r.id == QUORUM] == [QUORUM]

    words = diff_packs(standard, candidate)
    assert [r.id for r in words.added] == [QUORUM] and words.removed == []
    ((changed,),) = [d.changes for d in words.changed]
    assert changed.describe() == "生效至：（无） → 2017-12-31"

    result = backtest(app, candidate, "2017", AS_OF, baseline=standard)
    assert result.added == [] and result.removed == [] and result.unchanged > 0

    before = run_check(app, "2017-05", AS_OF, pack=standard)
    after = run_check(app, "2017-05", AS_OF, rules_dir=folder)
    assert after.stored is not None and before.stored is not None
    assert any(f.rule == QUORUM for f in after.findings)
    assert after.stored.resolved == [] and after.stored.new == []
    assert {f.key for f in after.findings} == {f.key for f in before.findings}


def test_a_removed_rule_keeps_its_open_violations_marked_retired(
    app: App, db_path: Path, tmp_path: Path, standard: Pack
) -> None:
    first = run_check(app, "2017-05..2017-06", AS_OF, pack=standard)
    (key,) = [f.key for f in first.findings if f.rule == QUORUM]
    folder = copy_pack(tmp_path, "without")
    rewrite(folder, lambda rules: [r for r in rules if r["id"] != QUORUM])

    second = run_check(app, "2017-05..2017-06", AS_OF, rules_dir=folder)
    assert second.stored is not None and key not in second.stored.resolved
    v, _events = app.violations.get(key)
    assert v is not None and v.status == "open" and v.rule_retired
    others = [app.violations.get(f.key)[0] for f in second.findings]
    assert others and not any(o is None or o.rule_retired for o in others)

    shown = cli(db_path, "violations", "show", key)
    assert shown.exit_code == 0, shown.output
    assert "规则已停用" in shown.output and first.pack.hash in shown.output
    as_json = json.loads(cli(db_path, "violations", "show", key, "--format", "json").output)
    assert as_json["rule_retired"] is True
    assert as_json["rule_text"]["params"] == {"threshold": 0.9}  # the version that produced it
