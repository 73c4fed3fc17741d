"""The scheduler's leader lock (issue 11), on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import sqlalchemy as sa
from click.testing import CliRunner

from engine.cli import main
from engine.schedule.leader import LeaderLock


def test_one_holder_at_a_time_and_takeover_after_the_lease(db_engine: sa.Engine) -> None:
    a, b = LeaderLock(db_engine, 0.5), LeaderLock(db_engine, 0.5)
    a.ensure_table()
    assert a.acquire() is None  # taken
    holder = b.acquire()
    assert holder is not None and holder.owner == a.owner and "租约还剩" in holder.describe()
    assert a.acquire() is None and a.renew()  # the holder keeps it
    time.sleep(0.6)  # a stopped renewing (it died)
    assert b.acquire() is None
    assert not a.renew()  # it lost the lock and is told so
    b.release()
    assert a.acquire() is None  # released: taken at once


def test_schedule_run_once_refuses_while_another_scheduler_runs(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    assert CliRunner().invoke(main, ["--db", db, "init"]).exit_code == 0
    engine = sa.create_engine(db)
    other = LeaderLock(engine, 60)
    other.ensure_table()
    assert other.acquire() is None
    result = CliRunner().invoke(main, ["--db", db, "schedule", "run", "--once"])
    assert result.exit_code == 1
    assert f"另一个调度进程 {other.owner}" in result.output and "--once 未执行" in result.output
    other.release()
    assert CliRunner().invoke(main, ["--db", db, "schedule", "run", "--once"]).exit_code == 0
    engine.dispose()
