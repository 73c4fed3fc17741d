"""A real `dask scheduler` and two `dask worker` processes on loopback: a worker killed mid-check, then the
coordinator killed mid-check; the findings stay exactly those of one process, never duplicated."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from engine.app import build_app
from engine.check import run_check
from engine.cluster.tables import CheckPartition
from engine.sample import sample_facts
from engine.violations.tables import CheckRun, Violation
from facts.errors import Location

AS_OF = dt.date(2018, 3, 1)
DASK = str(Path(sys.executable).parent / "dask")
_CP = CheckPartition.__table__  # type: ignore[attr-defined]
_V = Violation.__table__  # type: ignore[attr-defined]
_RUN = CheckRun.__table__  # type: ignore[attr-defined]


def _wait(what: str, condition, timeout: float = 60.0, every: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.seen: set[int] = set()  # every pid started under us, to prove none is left over
        info = tmp / "scheduler.json"
        common = ["--no-dashboard"]
        self.scheduler = self._start(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file", str(info), *common],
            "scheduler",
        )
        _wait("the scheduler file", lambda: info.exists() and info.read_text().strip(), 60)
        self.address = json.loads(info.read_text())["address"]
        worker = [DASK, "worker", "--scheduler-file", str(info), "--nthreads", "1", "--no-nanny"]
        self.workers = [
            self._start([*worker, "--host", "127.0.0.1", "--name", f"w{i}", *common], f"worker{i}")
            for i in range(2)
        ]
        from distributed import Client

        with Client(self.address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)

    def _start(self, argv: list[str], name: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp)
        log.close()
        self.procs.append(proc)
        return proc

    def job_children(self) -> dict[int, int]:
        """worker pid -> pid of the partition's child process it is running (engine.cluster.job)."""
        out = {}
        for w in self.workers:
            try:
                for child in psutil.Process(w.pid).children(recursive=True):
                    self.seen.add(child.pid)
                    if "engine.cluster.job" in " ".join(child.cmdline()):
                        out[w.pid] = child.pid
            except psutil.NoSuchProcess:
                continue
        return out

    def close(self) -> None:
        for p in self.procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                self.seen.update(c.pid for c in psutil.Process(p.pid).children(recursive=True))
            self.seen.add(p.pid)
        _stop(self.procs)
        _wait("no process left", lambda: not [p for p in self.seen if psutil.pid_exists(p) and _alive(p)], 20)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def real_cluster(tmp_path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.close()


def _keys(app) -> list[str]:  # type: ignore[no-untyped-def]
    with app.db.connect() as conn:
        return sorted(conn.execute(sa.select(_V.c.key)).scalars())


def test_a_worker_killed_mid_check_then_the_coordinator_killed(tmp_path, real_cluster):
    db = tmp_path / "s.db"
    app = build_app(str(db))
    app.init()
    app.facts.import_items((Location("sample", i), f) for i, f in enumerate(sample_facts()))
    expected = sorted(f.key for f in run_check(app, "2017", AS_OF, dry_run=True).findings)
    assert len(expected) == 50

    # 1. a worker is killed (SIGKILL) while it judges a partition: the scheduler runs it on the other one
    outcome: dict[str, object] = {}

    def coordinator() -> None:
        try:
            outcome["result"] = run_check(app, "2017", AS_OF, cluster=real_cluster.address)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test below
            outcome["error"] = exc

    thread = threading.Thread(target=coordinator, daemon=True)
    thread.start()
    busy = _wait("a partition running on a worker", real_cluster.job_children, 120)
    victim, orphan = next(iter(busy.items()))
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=240)
    assert not thread.is_alive(), "the check did not finish after a worker was killed"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    _wait("the killed worker's partition process to die with it", lambda: not _alive(orphan), 10)
    result = outcome["result"]
    assert sorted(f.key for f in result.findings) == expected  # type: ignore[attr-defined]
    assert _keys(app) == expected  # nothing lost, nothing twice
    with app.db.connect() as conn:
        rows = conn.execute(sa.select(_CP).where(_CP.c.run_id == result.run_id)).all()  # type: ignore[attr-defined]
    retried = [r for r in rows if r.retried]
    # the partition it was running, and one the scheduler had already queued on it (up to 1.1 x its threads)
    assert 1 <= len(retried) <= 2 and all(r.lost_workers == 1 for r in retried)
    assert not any(r.worker.endswith(f":{orphan}") for r in rows)  # what counted is the run that finished
    assert sum(r.findings for r in rows) == 50

    # 2. the coordinator (the `partyrules check` command) is killed mid-check; a rerun finishes the check
    app.db.dispose()
    app = build_app(str(tmp_path / "s2.db"))  # the same records, nothing stored yet
    app.init()
    app.facts.import_items((Location("sample", i), f) for i, f in enumerate(sample_facts()))
    argv = [str(Path(sys.executable).parent / "partyrules"), "--db", str(tmp_path / "s2.db"), "check"]
    argv += ["--period", "2017", "--as-of", "2018-03-01", "--cluster", real_cluster.address]
    first = subprocess.Popen(argv, cwd=real_cluster.tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait("a partition of the second check running", real_cluster.job_children, 120)
        first.kill()
    finally:
        first.wait(timeout=30)
    assert _keys(app) == []  # killed before storing: nothing half-stored
    again = subprocess.run(argv, cwd=real_cluster.tmp, capture_output=True, timeout=240)
    assert again.returncode == 0, again.stdout.decode() + again.stderr.decode()
    assert "发现 50 项问题" in again.stdout.decode()
    assert _keys(app) == expected
    with app.db.connect() as conn:
        statuses = conn.execute(sa.select(_RUN.c.status).order_by(_RUN.c.id)).scalars().all()
    assert statuses[-1] == "ok" and statuses[-2] == "abandoned"  # the rerun marked the killed run
    app.db.dispose()
