"""Issue 11: a backlog of more than ``[schedule] max_backlog`` periods is judged only with --backfill,
and a backfill sends one summary alert per channel instead of one per violation."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from engine.app import build_app
from engine.cli import main
from engine.config import parse_config
from engine.sample import sample_expected
from engine.schedule.backfill import BacklogRefused
from engine.schedule.jobs import check_closed_periods

SHANGHAI = ZoneInfo("Asia/Shanghai")


def write_config(folder: Path, db: Path, backlog: str = "") -> Path:
    path = folder / "partyrules.toml"
    path.write_text(
        f"""
database = "sqlite:///{db}"

[check]
grace_days = 40

[alerts.channels.group]
type = "file"
path = "{folder / "group.jsonl"}"

[alerts.channels.mail]
type = "file"
path = "{folder / "mail.jsonl"}"

[alerts.channels.quiet]
type = "file"
path = "{folder / "quiet.jsonl"}"

[[alerts.routes]]
channel = "group"

[[alerts.routes]]
channel = "mail"
min_severity = "serious"

[[alerts.routes]]
channel = "quiet"
orgs = ["no-such-org"]

[schedule]
since = 2017-02-15
{backlog}

[schedule.daily]
enabled = false
""",
        encoding="utf-8",
    )
    return path


def run(config: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(config), *args])


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


def test_a_backlog_over_max_backlog_is_refused_with_the_count_and_how_to_backfill(tmp_path, sample_db):
    db = tmp_path / "s.db"
    shutil.copy(sample_db, db)
    config = write_config(tmp_path, db)
    result = run(config, "schedule", "run", "--once", "--now", "2018-03-01T01:30")
    assert result.exit_code == 1
    assert "有 17 个已结束的期间待判定（2017-01 … 2017-12），超过 [schedule] max_backlog = 3" in result.output
    assert (
        "partyrules schedule run --backfill" in result.output
        and "17 closed periods are pending" in result.output
    )
    assert count(db, "SELECT count(*) FROM check_run") == 0
    assert count(db, "SELECT count(*) FROM alert_outbox") == 0


def test_backfill_judges_everything_and_sends_one_summary_per_channel(tmp_path, sample_db):
    db = tmp_path / "s.db"
    shutil.copy(sample_db, db)
    config = write_config(tmp_path, db)
    result = run(config, "schedule", "run", "--once", "--now", "2018-03-01T01:30", "--backfill")
    assert result.exit_code == 0, result.output
    expected = sample_expected()
    assert count(db, "SELECT count(*) FROM violation") == len(expected) == 50
    assert count(db, "SELECT count(*) FROM alert_outbox WHERE kind = 'new'") == 0
    assert count(db, "SELECT count(*) FROM alert_outbox WHERE kind = 'backfill'") == 2  # group and mail
    assert count(db, "SELECT count(*) FROM alert_delivery") == 2
    group = [json.loads(line) for line in (tmp_path / "group.jsonl").read_text().splitlines()]
    mail = [json.loads(line) for line in (tmp_path / "mail.jsonl").read_text().splitlines()]
    assert not (tmp_path / "quiet.jsonl").exists()
    assert len(group) == len(mail) == 1
    serious = count(db, "SELECT count(*) FROM violation WHERE severity IN ('serious', 'critical')")
    assert 0 < serious < 50
    assert group[0]["payload"]["violations"] == 50 and mail[0]["payload"]["violations"] == serious
    assert group[0]["title"] == "补判 2017-01…2017-12：新增违规 50 项"
    assert group[0]["subject"].startswith("【补判汇总】")
    assert "violations list" in group[0]["message"]
    # the backlog is judged: a later run finds nothing pending and needs no flag
    again = run(config, "schedule", "run", "--once", "--now", "2018-03-02T01:30")
    assert again.exit_code == 0, again.output
    assert "periods: 没有到期未判定的期间" in again.output


def test_max_backlog_is_configurable_and_a_small_backlog_runs_as_usual(tmp_path, sample_db):
    db = tmp_path / "s.db"
    shutil.copy(sample_db, db)
    config = write_config(tmp_path, db, "max_backlog = 17")
    result = run(config, "schedule", "run", "--once", "--now", "2018-03-01T01:30")
    assert result.exit_code == 0, result.output
    assert count(db, "SELECT count(*) FROM alert_outbox WHERE kind = 'new'") == 50  # one per violation
    assert count(db, "SELECT count(*) FROM alert_outbox WHERE kind = 'backfill'") == 0


def test_the_library_refuses_before_judging_anything(tmp_path):
    cfg = parse_config({"schedule": {"since": "2024-01-01", "max_backlog": 2}}, "t.toml")
    app = build_app(f"sqlite:///{tmp_path / 't.db'}", config=cfg)
    app.init()
    called = []
    now = dt.datetime(2024, 4, 11, 3, tzinfo=SHANGHAI)
    with pytest.raises(BacklogRefused) as refused:
        check_closed_periods(app, now, lambda *a: called.append(a) or 1)
    # 2023-12, 2023-Q4 and 2023 (due 2024-01-11), 2024-01, -02, -03 and 2024-Q1
    assert len(refused.value.pending) == 7 and called == []
    report = check_closed_periods(app, now, lambda *a: called.append(a) or 1, backfill=True)
    assert list(report.checked) == ["2023", "2024-Q1"] and len(called) == 2
