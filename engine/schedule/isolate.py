"""Running a scheduled check in a clean child process.

The scheduler is threaded (APScheduler's executors: the dispatcher may be inside SQLite at any moment).
A check forks its workers; a process forked while another thread holds a lock — SQLite's, the
allocator's, logging's — inherits that lock held forever: the worker blocked in
``sqlite3WalBeginReadTransaction`` and ignored SIGTERM (issue 11).  So the scheduler never forks: each
check job runs in a child started with ``spawn`` (fork + exec of a fresh interpreter, safe from any
thread), which has no thread of its own and may fork its workers safely.

The child dies with the scheduler (PR_SET_PDEATHSIG, and a watchdog on the parent's sentinel pipe).
When the scheduler stops, :func:`stop_children` sends each child SIGTERM, which it takes as an
interruption (its check run is recorded ``stopped``, the period is judged again next time), and
SIGKILL if it has not finished ``grace`` seconds later.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from engine.matching.lifeline import set_parent_death_signal, start_watchdog
from engine.schedule.errors import ScheduleJobError

_log = logging.getLogger(__name__)
CHILD_NAME = "partyrules-job"


# ``run_named(app, name, now, backfill=...)`` of engine.schedule.jobs, handed in by the caller (this module
# is below the jobs: it must not import them), pickled by reference into the child
JobRunner = Callable[..., Any]


def _child_main(
    run_named: JobRunner,
    name: str,
    db_url: str | None,
    config_path: str | None,
    level: int,
    backfill: bool,
    conn: Connection,
) -> None:
    set_parent_death_signal()
    parent = mp.parent_process()
    if parent is not None and parent.sentinel is not None:
        start_watchdog(parent.sentinel)
    # SIGTERM -> KeyboardInterrupt: the check's workers are killed and its run is recorded ``stopped``
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from engine.app import build_app

    try:
        app = build_app(db_url, config_path)
        try:
            result = run_named(app, name, dt.datetime.now(dt.UTC), backfill=backfill)
        finally:
            app.db.dispose()
        conn.send(("ok", result))
    except KeyboardInterrupt:
        conn.send(("stopped", None))
    except ScheduleJobError as exc:
        conn.send(("error", exc.failures))
    except Exception as exc:  # noqa: BLE001 - logged here with its traceback, raised again in the parent
        logging.getLogger(__name__).exception("任务 %s 失败", name)
        conn.send(("error", [f"{type(exc).__name__}: {exc}"]))
    finally:
        conn.close()


# Job children of this process by pid -> when to SIGKILL them once asked to stop (None: not asked).
# Only ever holds children that are running; nothing to reset.
_RUNNING: dict[int, float | None] = {}
_LOCK = threading.Lock()


def run_isolated(
    run_named: JobRunner,
    name: str,
    db_url: str | None,
    config_path: str | None,
    backfill: bool = False,
    tick: Callable[[], bool] | None = None,
) -> Any:
    """Run job ``name`` in a spawned child (``run_named`` there); its result, or :class:`ScheduleJobError` with its failures.

    ``tick`` is called while waiting (the leader keeping its lease); when it returns False the child is
    stopped.  A refused backlog is raised again as :class:`BacklogRefused`'s message.
    """
    ctx = mp.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    level = logging.getLogger().getEffectiveLevel()
    proc = ctx.Process(
        target=_child_main,
        args=(run_named, name, db_url, config_path, level, backfill, sender),
        name=f"{CHILD_NAME}-{name}",
        daemon=False,  # it forks the check's workers; it dies with us by PDEATHSIG and the watchdog
    )
    proc.start()
    sender.close()
    with _LOCK:
        _RUNNING[proc.pid] = None  # type: ignore[index]
    answer = None
    try:
        while not receiver.poll(0.2):
            if not proc.is_alive():
                break
            with _LOCK:
                kill_at = _RUNNING.get(proc.pid)  # type: ignore[arg-type]
            if tick is not None and not tick() and kill_at is None:
                with _LOCK:
                    _RUNNING[proc.pid] = kill_at = time.monotonic() + 10.0  # type: ignore[index]
                proc.terminate()
            if kill_at is not None and time.monotonic() > kill_at:
                _log.warning("任务子进程 %s 未在停止宽限内退出，强制结束", proc.pid)
                proc.kill()
                break
        if receiver.poll(0):
            answer = receiver.recv()
    except EOFError:
        answer = None
    finally:
        receiver.close()
        proc.join()
        with _LOCK:
            _RUNNING.pop(proc.pid, None)  # type: ignore[arg-type]
    if answer is None:
        raise ScheduleJobError(name, [f"子进程退出而未作答（退出码 {proc.exitcode}）"])
    status, payload = answer
    if status == "ok":
        return payload
    if status == "stopped":
        raise ScheduleJobError(name, ["调度停止，任务被中断，下次运行将重做"])
    raise ScheduleJobError(name, list(payload))


def stop_children(grace: float = 10.0) -> int:
    """Ask every running job child to stop (SIGTERM; SIGKILL ``grace`` seconds later); how many there were.

    Called when the scheduler stops; the threads waiting for the children reap them.
    """
    with _LOCK:
        pids = list(_RUNNING)
        for pid in pids:
            _RUNNING[pid] = time.monotonic() + grace
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    return len(pids)
