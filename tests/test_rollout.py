"""Safe reload: an invalid pack keeps the last good one running, a wide change is held until approved."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine.alerts.outbox import AlertOutbox
from engine.app import App, build_app
from engine.check import run_check
from engine.cli import main
from engine.config import parse_config
from engine.pack.errors import PackError
from engine.pack.load import Pack, load_pack
from engine.pack.rollout import RolloutError, approvals, approve, choose_pack, guard_window, pack_in_use
from engine.sample import write_sample
from engine.schedule.jobs import check_closed_periods, daily_as_of
from facts.readers import read_file
from rules import STANDARD_PACK

AS_OF = dt.date(2018, 3, 1)
NOW = dt.datetime(2018, 3, 1, 3, tzinfo=dt.UTC)
QUORUM_PARAMS = "params: {threshold: 0.9}"


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sample")
    src = folder / "sample.jsonl"
    write_sample(src)
    db = folder / "sample.db"
    app = build_app(f"sqlite:///{db}", config=parse_config({}, "test.toml"))
    app.init()
    app.facts.import_items(read_file(src), files=str(src))
    app.db.dispose()
    return db


@pytest.fixture
def live(tmp_path: Path) -> Path:
    """The configured pack folder that tests edit in place: the standard Party-group rules (small, so fast)."""
    dst = tmp_path / "live"
    dst.mkdir()
    shutil.copy(STANDARD_PACK / "party_group.yaml", dst)
    return dst


@pytest.fixture
def make_app(sample_db: Path, tmp_path: Path, live: Path) -> Iterator[Callable[..., App]]:
    """A fresh App (as each scheduled run builds one) on one copy of the sample database."""
    db = tmp_path / "sample.db"
    shutil.copy(sample_db, db)
    built: list[App] = []

    def make(**check: Any) -> App:
        settings = {"rules": str(live), "backtest_period": "2017-05", "backtest_as_of": AS_OF, **check}
        config = parse_config(
            {
                "check": settings,
                "alerts": {
                    "channels": {"log": {"type": "file", "path": str(tmp_path / "alerts.jsonl")}},
                    "routes": [{"channel": "log"}],
                },
                "schedule": {"since": "2018-01-01", "max_backlog": 10},
            },
            "test.toml",
        )
        app = build_app(f"sqlite:///{db}", config=config)
        app.init()
        built.append(app)
        return app

    yield make
    for app in built:
        app.db.dispose()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path.write_text(text.replace(old, new), encoding="utf-8")


def held_alerts(app: App) -> list[dict[str, Any]]:
    table = AlertOutbox.__table__  # type: ignore[attr-defined]
    with app.db.connect() as conn:
        rows = conn.execute(sa.select(table).where(table.c.kind == "rule_held").order_by(table.c.id))
        return [dict(r) for r in rows.mappings()]


def test_the_first_pack_is_good_and_kept_with_its_files(make_app: Callable[..., App], live: Path) -> None:
    app = make_app()
    choice = choose_pack(app, NOW)
    assert (choice.status, choice.fallback) == ("good", False)
    assert choice.pack.hash == load_pack(live).hash
    row = approvals(app.db)[choice.pack.hash]
    assert row["status"] == "good" and row["root"] == str(live)
    assert pack_in_use(app).hash == choice.pack.hash
    assert held_alerts(app) == []


def test_an_invalid_pack_keeps_the_last_good_one_running_and_alerts_once(
    make_app: Callable[..., App], live: Path
) -> None:
    good = choose_pack(make_app(), NOW).pack
    edit(
        live / "party_group.yaml",
        QUORUM_PARAMS + "\n    when: attendance_ratio < threshold",
        QUORUM_PARAMS + "\n    when: attendance_ratio < threshld",
    )

    app = make_app()
    choice = choose_pack(app, NOW)
    assert choice.status == "invalid" and choice.fallback
    assert choice.pack.hash == good.hash and choice.pack.root == str(live)
    assert len(choice.pack.rules) == len(good.rules)
    (alert,) = held_alerts(app)
    assert alert["severity"] == "critical" and "threshld" in alert["message"]
    assert good.hash in alert["message"]

    app = make_app()  # the next run: still invalid, still the good pack, no second alert
    assert choose_pack(app, NOW).pack.hash == good.hash
    assert len(held_alerts(app)) == 1
    assert run_check(app, "2017-05", AS_OF).pack.hash == good.hash  # `check` honours the choice
    with pytest.raises(PackError):
        run_check(app, "2017-05", AS_OF, rules_dir=live)  # an explicit folder is taken as given

    seen: list[tuple[str, str]] = []

    def capture(app: App, period: str, as_of: dt.date, pack: Pack | None) -> int | None:
        assert pack is not None
        seen.append((period, pack.hash))
        return None

    check_closed_periods(make_app(), NOW, capture)
    daily_as_of(make_app(), AS_OF, capture)
    assert seen and {h for _p, h in seen} == {good.hash}


def test_an_invalid_pack_with_no_good_one_before_it_fails_loudly(
    make_app: Callable[..., App], live: Path
) -> None:
    edit(
        live / "party_group.yaml",
        QUORUM_PARAMS + "\n    when: attendance_ratio < threshold",
        QUORUM_PARAMS + "\n    when: attendance_ratio < threshld",
    )
    app = make_app()
    with pytest.raises(PackError, match="threshld"):
        choose_pack(app, NOW)
    (alert,) = held_alerts(app)
    assert "没有可用的上一版本" in alert["message"]


def test_a_change_over_the_blast_radius_is_held_alerted_once_and_approved(
    make_app: Callable[..., App], live: Path, tmp_path: Path
) -> None:
    good = choose_pack(make_app(blast_radius=0.0001), NOW).pack
    edit(live / "party_group.yaml", QUORUM_PARAMS, "params: {threshold: 0.8}")
    candidate = load_pack(live)

    app = make_app(blast_radius=0.0001)
    choice = choose_pack(app, NOW)
    assert (choice.status, choice.configured, choice.pack.hash) == ("held", candidate.hash, good.hash)
    assert choice.reason is not None and "不再违规 1 项" in choice.reason  # May's 6/7 meeting
    row = approvals(app.db)[candidate.hash]
    assert row["status"] == "held" and row["flipped_share"] > 0.0001
    (alert,) = held_alerts(app)
    assert f"partyrules rules approve {candidate.hash}" in alert["message"]

    app = make_app(blast_radius=0.0001)
    assert choose_pack(app, NOW).pack.hash == good.hash
    assert run_check(app, "2017-05", AS_OF, dry_run=True).pack.hash == good.hash
    assert pack_in_use(app).hash == good.hash
    assert len(held_alerts(app)) == 1  # held once, alerted once

    with pytest.raises(RolloutError, match="未知"):
        approve(app.db, "ffffffffff", "王书记")
    db = str(tmp_path / "sample.db")
    out = CliRunner().invoke(main, ["--db", db, "rules", "approve", candidate.hash[:8], "--by", "王书记"])
    assert out.exit_code == 0, out.output
    assert candidate.hash in out.output and "王书记" in out.output

    app = make_app(blast_radius=0.0001)
    choice = choose_pack(app, NOW)
    assert (choice.status, choice.fallback, choice.pack.hash) == ("approved", False, candidate.hash)
    history = CliRunner().invoke(main, ["--db", db, "rules", "history", "--format", "json"])
    assert history.exit_code == 0, history.output
    decided = {d["hash"]: d for d in json.loads(history.output)["not_used"]}
    assert (
        decided[candidate.hash]["status"] == "approved" and decided[candidate.hash]["decided_by"] == "王书记"
    )

    edit(live / "party_group.yaml", "params: {threshold: 0.8}", QUORUM_PARAMS)  # back to the first one
    assert choose_pack(make_app(blast_radius=0.0001), NOW).pack.hash == good.hash


def test_a_change_within_the_blast_radius_goes_live(make_app: Callable[..., App], live: Path) -> None:
    good = choose_pack(make_app(), NOW).pack
    edit(live / "party_group.yaml", QUORUM_PARAMS, "params: {threshold: 0.8}")
    app = make_app(blast_radius=0.5)  # 1 of the 7 subjects this pack judges in May 2017 flips (with the majority rule)
    choice = choose_pack(app, NOW)
    assert choice.status == "good" and not choice.fallback and choice.pack.hash != good.hash
    assert choice.reason is not None and "回测 2017-05" in choice.reason and "（14.29%）" in choice.reason
    assert held_alerts(app) == []


def test_the_default_guard_window_is_the_last_twelve_closed_months(make_app: Callable[..., App]) -> None:
    app = make_app(backtest_period=None, backtest_as_of=dt.date(2018, 3, 5))
    assert guard_window(app) == ("2017-02..2018-01", dt.date(2018, 3, 5))
    app = make_app(backtest_period=None, backtest_as_of=dt.date(2018, 3, 11))
    assert guard_window(app) == ("2017-03..2018-02", dt.date(2018, 3, 11))


def test_an_approved_upload_runs_until_the_configured_folder_changes(
    make_app: Callable[..., App], live: Path, tmp_path: Path
) -> None:
    """An upload approved in the service (root ``upload``) is the newer decision; a later folder change wins."""
    from engine.pack.rollout import UPLOAD_ROOT, PackApproval, active_upload, pack_sources

    app = make_app()
    good = choose_pack(app, NOW).pack
    upload_dir = tmp_path / "upload"
    shutil.copytree(live, upload_dir)
    edit(upload_dir / "party_group.yaml", QUORUM_PARAMS, "params: {threshold: 0.8}")
    uploaded = load_pack(upload_dir)
    assert active_upload(app) is None
    with app.db.begin() as conn:
        conn.execute(
            sa.insert(PackApproval.__table__).values(  # type: ignore[attr-defined]
                hash=uploaded.hash,
                root=UPLOAD_ROOT,
                status="approved",
                decided_by="rule_admin2",
                at=NOW + dt.timedelta(hours=1),
                files=pack_sources(upload_dir),
            )
        )

    app = make_app()
    assert active_upload(app) is not None and active_upload(app)["hash"] == uploaded.hash  # type: ignore[index]
    assert pack_in_use(app).hash == uploaded.hash
    choice = choose_pack(app, NOW + dt.timedelta(hours=2))
    assert (choice.status, choice.configured, choice.pack.hash) == ("uploaded", good.hash, uploaded.hash)
    assert choice.reason is not None and "rule_admin2" in choice.reason
    assert run_check(app, "2017-05", AS_OF, dry_run=True).pack.hash == uploaded.hash  # `check` uses it too

    edit(live / "party_group.yaml", QUORUM_PARAMS, "params: {threshold: 0.7}")  # the folder is deployed again
    app = make_app()
    assert pack_in_use(app).hash == load_pack(live).hash  # not seen yet: the next run judges it
    choice = choose_pack(app, NOW + dt.timedelta(hours=3))
    assert choice.pack.hash == load_pack(live).hash and choice.status != "uploaded"
    assert active_upload(app) is None
