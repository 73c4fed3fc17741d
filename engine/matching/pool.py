"""The process runner: workers that die with this process, and a crash named rather than suffered.

durable_rules keeps global state per process, holds the GIL in its C calls, leaks what it registers and can
crash its process (SIGSEGV, SIGFPE): matching runs in worker processes, and a worker that dies is reported as
:class:`~engine.matching.errors.MatcherCrashed` naming the job and the signal — the caller lives on.  Two
shapes of work:

- :func:`run_forked` — one job per freshly forked worker, at most ``workers`` at once, each *inheriting*
  what the parent built (a check's partitions: the pack, the database engine; nothing pickled but the
  answer).  A worker lives for one job, so its memory goes back to the system when the job ends;
- :func:`run_chunks` — many chunks shared by ``processes`` workers of a
  :class:`concurrent.futures.ProcessPoolExecutor` started by the fork server (``spawn`` elsewhere), each
  building its matcher once (:func:`engine.matcher.match_all`).

Every worker first holds a lifeline (:mod:`engine.matching.lifeline`: PR_SET_PDEATHSIG and a watchdog on a
pipe, so no worker outlives its parent, even killed with SIGKILL); on an exception or Ctrl-C while waiting,
the workers are killed before it goes on.  :func:`run_forked` starts and reaps its workers itself (a
process and an answer pipe per job: a job's worker and its exit status are known directly).  What
:class:`_Pool` adds to the stdlib executor for :func:`run_chunks`: each job records the pid that runs it, so
a broken pool names the job whose worker died and how (the executor only says *a* process died).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import connection
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from engine.matching.errors import MatcherCrashed, MatcherError
from engine.matching.lifeline import WATCHDOG_THREAD, Lifeline, set_parent_death_signal, start_watchdog
from facts import collector

_log = logging.getLogger(__name__)

# In a worker: what the initializer was handed (inherited when forked, unpickled otherwise).
_WORKER: dict[str, Any] = {}


def describe_exit(code: int | None) -> str:
    """How a process ended, for a person: ``killed by SIGSEGV``, ``exit status 3``."""
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def portable(exc: BaseException) -> MatcherError:
    """``exc`` itself when ours (they pickle), else a MatcherError carrying its type and text."""
    if isinstance(exc, MatcherError):
        return exc
    return MatcherError(f"{type(exc).__name__}: {exc}")


def _start_worker(lifeline: Lifeline | None, slots: Any, state: dict[str, Any]) -> None:
    """First thing in every worker: die with the parent, then keep what the jobs need."""
    if lifeline is not None:  # forked: a pipe only the parent writes (siblings' copies closed)
        lifeline.hold()
    else:  # started by the fork server or spawned: the parent's sentinel pipe
        set_parent_death_signal()
        parent = multiprocessing.parent_process()
        if parent is not None and parent.sentinel is not None:
            start_watchdog(parent.sentinel)
    _WORKER.clear()
    _WORKER.update(state, slots=slots)


def _claim(job: int) -> None:
    """Record that this process runs ``job`` (read by the parent if the process dies)."""
    _WORKER["slots"][job] = os.getpid()


class _Pool:
    """A ProcessPoolExecutor for one run: workers hold a lifeline; crashes are named; interruptions kill."""

    def __init__(self, ctx: BaseContext, workers: int, jobs: int, state: dict[str, Any], what: str) -> None:
        self.what = what
        self.forked = ctx.get_start_method() == "fork"
        self.lifeline = Lifeline() if self.forked else None
        self.slots = ctx.Array("i", max(jobs, 1), lock=False)  # type: ignore[attr-defined]
        self.executor = cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=_start_worker,
            initargs=(self.lifeline, self.slots, state),  # forked: inherited, not pickled
        )
        self.processes: dict[int, Any] = {}

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        future = self.executor.submit(fn, *args)
        # the stdlib keeps its workers by pid (``_processes``) and has no public way to reach them before
        # Python 3.14: needed to name a dead worker's signal and to kill the workers on an interruption
        self.processes.update(getattr(self.executor, "_processes", None) or {})
        return future

    def crash(self, job: int, detail: str = "") -> MatcherCrashed:
        """The error for ``job``, whose worker died: which signal or status, from the pool's processes."""
        pid = self.slots[job]
        proc = self.processes.get(pid)
        code = proc.exitcode if proc is not None else None
        return MatcherCrashed(f"{self.what} died ({describe_exit(code)}){detail}")

    def died_first(self, unfinished: Sequence[int]) -> int:
        """Of the jobs without an answer, the one whose worker died by itself (the pool SIGTERMs the rest)."""
        for job in unfinished:
            proc = self.processes.get(self.slots[job])
            if proc is not None and proc.exitcode not in (None, -signal.SIGTERM):
                return job
        return unfinished[0]

    def kill(self) -> None:
        for proc in list(self.processes.values()):
            with contextlib.suppress(OSError, ValueError, AttributeError):  # already gone
                if proc.is_alive():
                    proc.kill()

    def close(self, interrupted: bool) -> None:
        if interrupted:
            self.kill()
        self.executor.shutdown(wait=True, cancel_futures=True)
        if self.lifeline is not None:
            self.lifeline.close()


def _wait_all(
    futures: Sequence[cf.Future[Any]], heartbeat: Callable[[], None] | None, heartbeat_seconds: float
) -> None:
    pending = set(futures)
    while pending:
        _, pending = cf.wait(pending, timeout=heartbeat_seconds if heartbeat else None)
        if pending and heartbeat is not None:
            heartbeat()


# -- one forked worker per job, at most ``workers`` at once ----------------------------------------------


def _forked_child(
    lifeline: Lifeline,
    answer: Connection,
    others: Sequence[Connection],
    target: Callable[..., Any],
    job: tuple[Any, ...],
) -> None:
    """In a freshly forked worker: hold the lifeline, run the one job, send ``("ok", value)`` or ``("error", exc)``."""
    lifeline.hold()
    for conn in others:  # the read ends of the siblings' answers, inherited from the parent
        conn.close()
    try:
        reply: tuple[str, Any] = ("ok", target(*job))
    except BaseException as exc:  # noqa: BLE001 - carried to the parent, which raises it
        reply = ("error", portable(exc))
    try:
        answer.send(reply)
    except Exception as exc:  # noqa: BLE001 - an answer that does not pickle
        answer.send(("error", portable(exc)))
    answer.close()


@dataclass
class _Running:
    process: BaseProcess
    answer: Connection  # the read end of the job's answer pipe


def run_forked(
    target: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    what: str,
    heartbeat: Callable[[], None] | None = None,
    heartbeat_seconds: float = 30.0,
    workers: int | None = None,
) -> list[Any]:
    """``[target(*job) for job in jobs]``, each job in a forked worker of its own; the answers in job order.

    At most ``workers`` jobs run at once (default: all of them); each job is forked *fresh* when a slot
    frees, so a worker's memory goes back to the system when its job ends and a later job never carries an
    earlier one's heap (durable_rules leaks what it registers; Python rarely returns freed arenas).  The
    forks are made by this thread with no helper thread of the runner's own running, so no lock is ever
    inherited held.  ``target`` and ``jobs`` are inherited by the workers (never pickled); only the
    answers come back, through a pipe per job.

    An exception in ``target`` is raised here as :class:`MatcherError` (its type and message), a worker that
    dies as :class:`MatcherCrashed` (``what i/n died (killed by SIGSEGV)``).  The first job to fail ends the
    run: no further job starts, the jobs still running are killed, and of the jobs that failed by
    themselves the first in job order is raised.  ``heartbeat`` is called every ``heartbeat_seconds``
    while waiting (in this thread: e.g. to tell the database this run is alive); if it raises (as Ctrl-C
    would) the workers are killed and the exception goes on.  The workers may start processes of their own
    (they are not daemons).  Platforms with ``fork`` only.
    """
    if not jobs:
        return []
    n = len(jobs)
    slots = n if workers is None else workers
    if slots < 1:
        raise ValueError(f"workers must be at least 1, not {slots}")
    others = [
        t.name
        for t in threading.enumerate()
        if t is not threading.current_thread() and t.name != WATCHDOG_THREAD  # it only waits in read()
    ]
    if others:
        _log.warning("forking %s while other threads run (%s): a lock they hold stays held", what, others)
    ctx = multiprocessing.get_context("fork")
    lifeline = Lifeline()
    waiting = list(range(n - 1, -1, -1))  # popped from the end: job 0 first
    running: dict[int, _Running] = {}
    answers: dict[int, Any] = {}
    failed: dict[int, MatcherError] = {}  # job -> its error, for the jobs that failed by themselves
    next_beat = time.monotonic() + heartbeat_seconds
    try:
        while running or (waiting and not failed):
            while waiting and not failed and len(running) < slots:
                job = waiting.pop()
                reader, writer = ctx.Pipe(duplex=False)
                readers = [r.answer for r in running.values()]
                proc = ctx.Process(
                    target=_forked_child,
                    args=(lifeline, writer, [reader, *readers], target, jobs[job]),
                    name=f"{what} {job + 1}/{n}",
                )
                proc.start()
                writer.close()  # the worker's copy is the only one: its death is the pipe's end of file
                running[job] = _Running(proc, reader)
            timeout = max(0.0, next_beat - time.monotonic()) if heartbeat is not None else None
            ready = set(connection.wait([r.answer for r in running.values()], timeout))
            for job, run in list(running.items()):
                if run.answer not in ready:
                    continue
                reply = _receive(run.answer)
                run.process.join()
                run.answer.close()
                del running[job]
                if reply is None:  # died before it answered
                    how = describe_exit(run.process.exitcode)
                    failed[job] = MatcherCrashed(f"{what} {job + 1}/{n} died ({how})")
                elif reply[0] == "ok":
                    answers[job] = reply[1]
                else:
                    failed[job] = reply[1]
            if failed and running:  # the run has failed: what still runs is of no use
                _kill(running)
            if heartbeat is not None and time.monotonic() >= next_beat:
                heartbeat()
                next_beat = time.monotonic() + heartbeat_seconds
    finally:
        _kill(running)
        lifeline.close()
    if failed:
        raise failed[min(failed)]
    return [answers[k] for k in range(n)]


def _receive(answer: Connection) -> tuple[str, Any] | None:
    """The worker's answer, or None when it ended without one (it died).

    Unpickled with the garbage collector paused: a check's partition answers with thousands of findings,
    each a few dicts and lists, and the collections their allocation starts cost ~4× the unpickling."""
    try:
        with collector.paused():
            reply: tuple[str, Any] = answer.recv()
    except (EOFError, OSError):
        return None
    return reply


def _kill(running: dict[int, _Running]) -> None:
    """Kill and reap the workers still running (their jobs are dropped, not failed)."""
    for run in running.values():
        with contextlib.suppress(OSError, ValueError, AttributeError):  # already gone
            run.process.kill()
    for run in running.values():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            run.process.join()
            run.answer.close()
    running.clear()


# -- chunks of work shared by a few workers -------------------------------------------------------------

WorkerSetup = Callable[[Any], Any]
"""``setup(arg) -> state``: run once in each worker before its first chunk (e.g. build a matcher)."""
ChunkWork = Callable[[Any, Sequence[Any]], bytes]
"""``work(state, items) -> one byte per item``; raise :class:`ItemError` to name the item that failed."""


class ItemError(Exception):
    """Raised by a chunk's work: item ``index`` of the chunk failed with ``error``."""

    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


def _chunk_job(job: int, start: int, items: Sequence[Any]) -> tuple[str, int, Any]:
    _claim(job)
    if "state" not in _WORKER:
        try:
            _WORKER["state"] = _WORKER["setup"](_WORKER["setup_arg"])
        except Exception as exc:  # noqa: BLE001 - carried to the parent, which raises it
            return ("error", -1, portable(exc))
    try:
        return ("ok", start, _WORKER["work"](_WORKER["state"], items))
    except ItemError as failed:
        return ("error", start + failed.index, portable(failed.error))
    except Exception as exc:  # noqa: BLE001 - carried to the parent, which raises it
        return ("error", start, portable(exc))


def mp_context(preload: Sequence[str] = ()) -> BaseContext:
    """``forkserver`` where the platform has it (a clean, quickly forked child), else ``spawn``.

    ``preload`` names modules the fork server imports once, so each worker starts with them loaded (it only
    takes effect if this process has not started its fork server yet).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    if preload:
        ctx.set_forkserver_preload(list(preload))
    return ctx


def chunk_size(total: int, processes: int) -> int:
    """Large enough to amortise pickling, small enough to balance processes and keep results in the pipe."""
    return max(200, min(4000, total // (processes * 4) or 1))


def run_chunks(
    setup: WorkerSetup,
    setup_arg: Any,
    work: ChunkWork,
    items: Sequence[Any],
    processes: int = 1,
    describe: Callable[[int, int], str] = lambda start, count: "",
    preload: Sequence[str] = (),
) -> bytes:
    """``items`` in chunks to ``processes`` workers (fork server); one byte per item, in order.

    ``setup`` and ``work`` are module-level functions (the workers import them); ``setup(setup_arg)`` runs
    once per worker.  An error names the item (``while matching work item N`` in its notes); a worker
    that dies is :class:`MatcherCrashed` naming the items of its chunk (``describe(start, count)`` adds
    detail, e.g. which rules), and nothing is kept from that chunk.
    """
    if processes < 1:
        raise ValueError("processes must be at least 1")
    total = len(items)
    if total == 0:
        return b""
    size = chunk_size(total, processes)
    starts = list(range(0, total, size))
    state = {"setup": setup, "setup_arg": setup_arg, "work": work}
    pool = _Pool(mp_context(preload), min(processes, len(starts)), len(starts), state, "")
    out = bytearray(total)
    interrupted = True
    try:
        futures = [pool.submit(_chunk_job, k, s, list(items[s : s + size])) for k, s in enumerate(starts)]
        _wait_all(futures, None, 0)
        interrupted = False
    finally:
        pool.close(interrupted)
    unfinished = [k for k, f in enumerate(futures) if isinstance(f.exception(), BrokenProcessPool)]
    if unfinished:
        k = pool.died_first(unfinished)
        start, count = starts[k], min(size, total - starts[k])
        pool.what = "the durable_rules worker process"
        raise pool.crash(
            k,
            f" while matching work items {start}..{start + count - 1}{describe(start, count)}; "
            "no result was kept from that chunk",
        )
    for f in futures:
        if f.exception() is not None:
            raise f.exception()  # type: ignore[misc]
        status, where, payload = f.result()
        if status == "ok":
            out[where : where + len(payload)] = payload
            continue
        note = "while building the matcher" if where < 0 else f"while matching work item {where}"
        payload.add_note(note)
        raise payload
    return bytes(out)
