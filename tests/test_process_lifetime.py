"""Issue 11: a killed ``check`` leaves no worker behind and no run marked ``running`` forever."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.app import build_app
from engine.check import run_check
from engine.matching.lifeline import ProcessIdentity, is_alive, process_identity
from engine.violations.runs import find_abandoned, list_runs, reap_abandoned
from engine.violations.tables import CheckRun, CheckRunOwner

PARTYRULES = str(Path(sys.executable).with_name("partyrules"))
_RUN = CheckRun.__table__  # type: ignore[attr-defined]
_OWNER = CheckRunOwner.__table__  # type: ignore[attr-defined]


def children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return out


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return True
    return state == "Z"  # finished; only waiting to be reaped by init


def wait_for(predicate, timeout: float, step: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_check_killed_with_sigkill_leaves_no_worker_and_its_run_is_marked_abandoned(tmp_path, sample_db):
    db = tmp_path / "c.db"
    shutil.copy(sample_db, db)
    # eight years of the sample: the worker builds and matches for several seconds
    check = subprocess.Popen(
        [PARTYRULES, "--db", str(db), "check", "--period", "2010..2017", "--as-of", "2018-03-01"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        workers = wait_for(lambda: children_of(check.pid), timeout=60)
        assert workers, "the check never forked its worker"
        time.sleep(0.5)  # in the middle of its work
        assert check.poll() is None, "the check finished before it could be killed"
        check.send_signal(signal.SIGKILL)
        check.wait()
        t0 = time.monotonic()
        assert wait_for(lambda: all(gone(w) for w in workers), timeout=5), (
            f"worker(s) {workers} outlived check"
        )
        died_after = time.monotonic() - t0
    finally:
        if check.poll() is None:
            check.kill()
    assert died_after < 5
    listing = subprocess.run(
        [PARTYRULES, "--db", str(db), "runs", "--format", "json"], capture_output=True, text=True, check=True
    )
    (run,) = json.loads(listing.stdout)
    assert run["status"] == "abandoned"
    assert f":{check.pid}" in run["owner"] and str(check.pid) in run["error"]
    assert "已放弃" not in listing.stdout and "已标记为放弃" in listing.stderr  # told once, on stderr
    again = subprocess.run(
        [PARTYRULES, "--db", str(db), "runs", "--format", "json"], capture_output=True, text=True, check=True
    )
    assert "已标记为放弃" not in again.stderr  # marked (and alerted) once
    with sqlite3.connect(db) as conn:
        alerts = conn.execute("SELECT key, kind FROM alert_outbox WHERE kind = 'run_failed'").fetchall()
    assert alerts == [(f"check#{run['id']}", "run_failed")]


def _fake_running_run(app, owner: ProcessIdentity, heartbeat: dt.datetime) -> int:
    with app.db.begin() as conn:
        run_id = conn.execute(
            sa.insert(_RUN)
            .values(
                started_at=heartbeat,
                pack_hash="x",
                period="2017-06",
                as_of=dt.date(2017, 8, 1),
                status="running",
            )
            .returning(_RUN.c.id)
        ).scalar_one()
        conn.execute(
            sa.insert(_OWNER).values(
                run_id=run_id,
                host=owner.host,
                pid=owner.pid,
                pid_started=owner.started,
                heartbeat_at=heartbeat,
            )
        )
    return run_id


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_next_check_marks_a_run_whose_process_died_and_keeps_a_live_ones(tmp_path, sample_db):
    db = tmp_path / "c.db"
    shutil.copy(sample_db, db)
    app = build_app(f"sqlite:///{db}")
    app.init()
    now = dt.datetime.now(dt.UTC)
    me = process_identity()
    dead = _fake_running_run(app, ProcessIdentity(me.host, _dead_pid(), ""), now)
    alive = _fake_running_run(app, me, now)
    reused = _fake_running_run(app, ProcessIdentity(me.host, me.pid, "1"), now)  # same pid, another process
    far_quiet = _fake_running_run(app, ProcessIdentity("elsewhere", 1, ""), now - dt.timedelta(hours=2))
    far_busy = _fake_running_run(app, ProcessIdentity("elsewhere", 2, ""), now - dt.timedelta(minutes=5))
    result = run_check(app, "2017-06", dt.date(2017, 8, 1))
    status = {r.id: r.status for r in list_runs(app.db)}
    assert status[dead] == status[reused] == status[far_quiet] == "abandoned"
    assert status[alive] == status[far_busy] == "running"
    assert status[result.run_id] == "ok"
    assert reap_abandoned(app.db, app.config.alerts) == []  # once only


def test_a_live_process_is_alive_and_a_finished_one_is_not():
    me = process_identity()
    assert is_alive(me) is True
    assert is_alive(ProcessIdentity(me.host, _dead_pid(), "")) is False
    assert is_alive(ProcessIdentity("another-host", me.pid, "")) is None


def test_find_abandoned_reads_only(tmp_path):
    app = build_app(f"sqlite:///{tmp_path / 'a.db'}")
    app.init()
    me = process_identity()
    _fake_running_run(app, ProcessIdentity(me.host, _dead_pid(), ""), dt.datetime.now(dt.UTC))
    assert len(find_abandoned(app.db, dt.datetime.now(dt.UTC))) == 1
    assert {r.status for r in list_runs(app.db)} == {"running"}


WATCHDOG_ONLY = textwrap.dedent(
    """
    import os, time
    import engine.matching.lifeline as lifeline
    from engine.matching import run_forked
    lifeline.set_parent_death_signal = lambda sig=None: False   # as on a system without prctl

    def job(k):
        os.write(1, f"{os.getpid()}\\n".encode())  # one write: the two siblings share the pipe
        time.sleep(60)

    if __name__ == "__main__":
        run_forked(job, [(0,), (1,)], "worker")   # two siblings: neither may keep the other alive
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_without_prctl_the_pipe_watchdog_ends_the_orphan(tmp_path):
    """The runner's workers on a system without ``prctl``: the watchdog alone ends both orphans."""
    script = tmp_path / "w.py"
    script.write_text(WATCHDOG_ONLY)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        children = [int(parent.stdout.readline()), int(parent.stdout.readline())]
        time.sleep(0.3)
        assert not any(gone(c) for c in children)
        parent.kill()
        parent.wait()
        assert wait_for(lambda: all(gone(c) for c in children), timeout=5), "an orphan outlived its parent"
    finally:
        parent.kill()
