"""Issue 11: the scheduler on a real database in real processes — checks in a clean child while the
dispatcher thread works SQLite (no fork from a threaded process), SIGTERM stops it promptly."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

PARTYRULES = str(Path(sys.executable).with_name("partyrules"))


def env() -> dict[str, str]:
    out = dict(os.environ)
    out.pop("PARTYRULES_CONFIG", None)
    out.pop("PARTYRULES_DB", None)
    return out


def write_config(folder: Path, db_url: str, since: dt.date, extra: str = "") -> Path:
    path = folder / "partyrules.toml"
    path.write_text(
        f"""
database = "{db_url}"

[check]
processes = 2                       # forked workers: the case that deadlocked

[alerts.dispatcher]
poll_seconds = 0.2

[alerts.channels.log]
type = "file"
path = "{folder / "alerts.jsonl"}"

[[alerts.routes]]
channel = "log"

[schedule]
since = {since}
max_backlog = 20

[schedule.dispatch]
every_seconds = 0.1                 # the dispatcher thread is in SQLite all the time

[schedule.daily]
enabled = false
{extra}
""",
        encoding="utf-8",
    )
    return path


def start(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PARTYRULES, "--config", str(config), "schedule", "run", *args],
        env=env(),
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str], timeout: float = 20) -> tuple[float, str]:
    """SIGTERM; (seconds until it exited, its stderr).  Fails the test if it does not exit in ``timeout``."""
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
        pytest.fail(f"schedule run did not stop within {timeout} s of SIGTERM:\n{err[-3000:]}")
    return time.monotonic() - t0, err


def query(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute(sql).fetchall()


def wait_until(predicate, timeout: float, proc: subprocess.Popen[str] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if predicate():
                return True
        except sqlite3.OperationalError:  # the table is not there yet
            pass
        time.sleep(0.2)
    return False


def test_schedule_run_on_sqlite_checks_periods_while_dispatching_and_stops_on_sigterm(tmp_path, sample_db):
    db = tmp_path / "s.db"
    shutil.copy(sample_db, db)
    since = dt.date.today() - dt.timedelta(days=75)  # two or three periods fall due: judged on start
    config = write_config(tmp_path, f"sqlite:///{db}", since)
    proc = start(config)
    try:
        # judged = marked done: the mark follows the run's "ok" in a separate step, and a SIGTERM between the
        # two rightly leaves the period to be judged again (engine.schedule.state), so wait for the mark itself
        judged = wait_until(
            lambda: (
                query(db, "SELECT count(*) FROM schedule_period_done")[0][0] >= 1
                and query(db, "SELECT count(*) FROM alert_delivery WHERE status = 'delivered'")[0][0] >= 1
            ),
            timeout=120,
            proc=proc,
        )
        if not judged:
            _, err = stop(proc)
            pytest.fail("no period was judged and delivered within 120 s:\n" + err[-3000:])
        latency, err = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert latency < 15
    assert "调度已停止" in err
    assert query(db, "SELECT count(*) FROM check_run WHERE status = 'running'") == [(0,)]
    marks = query(db, "SELECT d.run_id, r.status FROM schedule_period_done d JOIN check_run r ON r.id = d.run_id")
    assert marks and all(status == "ok" for _, status in marks)  # a period is marked only by a finished run
    assert "forking" not in err  # no fork happened in a process with other threads


def test_sigterm_interrupts_a_running_check_promptly_and_records_it_stopped(tmp_path, sample_db):
    db = tmp_path / "s.db"
    shutil.copy(sample_db, db)
    # eight years fall due at once: the first check runs for a while
    config = write_config(tmp_path, f"sqlite:///{db}", dt.date(2017, 2, 1), "")
    proc = start(config, "--backfill")
    try:
        running = wait_until(
            lambda: query(db, "SELECT count(*) FROM check_run WHERE status = 'running'")[0][0] == 1,
            timeout=60,
            proc=proc,
        )
        assert running, proc.stderr.read() if proc.poll() is not None and proc.stderr else "no check started"
        time.sleep(1.0)
        latency, err = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert latency < 15
    statuses = [s for (s,) in query(db, "SELECT status FROM check_run ORDER BY id")]
    assert "running" not in statuses
    assert statuses[-1] in ("stopped", "ok")


# -- the leader lock: two schedulers on one database ------------------------------------------


class Scheduler:
    """A ``schedule run`` subprocess whose stderr is read line by line in a thread."""

    def __init__(self, config: Path) -> None:
        import threading

        self.proc = start(config)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def wait_for(self, text: str, timeout: float) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.said(text):
                return time.monotonic() - t0
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"never said {text!r} within {timeout} s:\n" + "".join(self.lines[-40:]))

    def terminate(self, timeout: float = 20) -> float:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("did not stop on SIGTERM:\n" + "".join(self.lines[-40:]))
        self._reader.join(5)
        return time.monotonic() - t0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lead.db'}"
        return
    from conftest import PG_URL

    from facts.db import create_schema_engine

    engine, schema, drop = create_schema_engine(PG_URL, prefix="lead")
    engine.dispose()
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        drop()


def test_a_second_scheduler_waits_and_takes_over_when_the_first_dies_or_stops(tmp_path, db_url):
    since = dt.date.today() + dt.timedelta(days=2)  # nothing falls due: only the lock is exercised
    config = write_config(tmp_path, db_url, since, "[schedule.periods]\nenabled = false\n")
    text = config.read_text().replace("max_backlog = 20", "max_backlog = 20\nleader_lease_seconds = 2")
    config.write_text(text)
    from engine.app import build_app

    app = build_app(db_url)  # only init and import create a database (issue 11)
    app.init()
    app.db.dispose()
    first = Scheduler(config)
    second = third = None
    try:
        first.wait_for("调度已启动", 60)
        second = Scheduler(config)
        second.wait_for("正在本数据库上运行", 60)  # it says who holds the database and waits
        time.sleep(2.5)  # longer than a lease: the first renews it, the second keeps waiting
        assert not second.said("调度已启动")
        first.kill()  # dies without releasing: the second takes over once the lease runs out
        took_over = second.wait_for("调度已启动", 15)
        assert second.said("已接管调度")
        third = Scheduler(config)
        third.wait_for("正在本数据库上运行", 60)
        stopped = second.terminate()  # a clean stop releases the lock at once
        handed_over = third.wait_for("调度已启动", 10)
        third.terminate()
    finally:
        for s in (first, second, third):
            if s is not None:
                s.kill()
    assert second.proc.returncode == 0 and third.proc.returncode == 0
    assert took_over < 10 and handed_over < 5 and stopped < 10
    for s in (first, second, third):
        assert not s.said("IntegrityError") and not s.said("Traceback"), "".join(s.lines)
