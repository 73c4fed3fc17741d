"""Forked worker processes that inherit their work instead of receiving it through a pipe.

:func:`engine.matcher.match_all` ships every subject to its workers; for millions of subjects the main
process spends as long pickling as the workers spend matching.  A *forked* worker inherits what the
parent built, does its share, and sends back only its answer.  A worker that dies (a crash in the C
engine) is reported as :class:`~engine.matcher_worker.MatcherCrashed`; the caller lives on.  Used by
:mod:`engine.partition` (a check's workers) and the benchmark.  Platforms with ``fork`` only.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from engine.lifeline import WATCHDOG_THREAD, Lifeline
from engine.matcher_worker import MatcherCrashed, MatcherError

_log = logging.getLogger(__name__)


def _child(
    lifeline: Lifeline,
    close_fds: tuple[int, ...],
    target: Callable[..., Any],
    job: tuple[Any, ...],
    conn: Connection,
) -> None:
    lifeline.hold(close_fds)
    target(*job, conn)


def run_forked(
    target: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    what: str,
    daemon: bool = True,
    heartbeat: Callable[[], None] | None = None,
    heartbeat_seconds: float = 30.0,
) -> list[Any]:
    """Run ``target(*job, conn)`` in one forked process per job; return each job's payload, in order.

    ``target`` sends ``("ok", payload)`` or ``("error", MatcherError)`` on ``conn``.  A process that
    dies without answering (a crash in the C engine) becomes :class:`MatcherCrashed`; the first error
    is raised once every process has finished.  ``daemon=False`` lets the workers fork workers of their own.
    ``heartbeat`` is called every ``heartbeat_seconds`` while waiting (in this thread: e.g. to tell the
    database this run is alive).  Workers die with this process; if the wait is interrupted (an
    exception, Ctrl-C) the workers are killed before the exception goes on.
    """
    others = [
        t.name
        for t in threading.enumerate()
        if t is not threading.current_thread() and t.name != WATCHDOG_THREAD  # it only waits in read()
    ]
    if others:
        _log.warning("forking %s while other threads run (%s): a lock they hold stays held", what, others)
    ctx = mp.get_context("fork")
    lifeline = Lifeline()
    running: list[tuple[Any, Connection]] = []
    try:
        for job in jobs:
            receiver, sender = ctx.Pipe(duplex=False)
            inherited = tuple(r.fileno() for _, r in running) + (receiver.fileno(),)
            proc = ctx.Process(target=_child, args=(lifeline, inherited, target, job, sender), daemon=daemon)
            proc.start()  # forked: args are inherited, not pickled
            sender.close()
            running.append((proc, receiver))
        return _collect(running, what, heartbeat, heartbeat_seconds)
    finally:
        for proc, receiver in running:
            if proc.is_alive():
                proc.kill()
                proc.join()
            receiver.close()
        lifeline.close()


def _collect(
    running: list[tuple[Any, Connection]],
    what: str,
    heartbeat: Callable[[], None] | None,
    heartbeat_seconds: float,
) -> list[Any]:
    payloads: list[Any] = []
    errors: list[Exception] = []
    for i, (proc, receiver) in enumerate(running):
        try:
            if heartbeat is not None:
                while not receiver.poll(heartbeat_seconds):
                    heartbeat()
            status, payload = receiver.recv()
        except EOFError:
            proc.join()
            code = proc.exitcode or 0
            why = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            errors.append(MatcherCrashed(f"{what} {i + 1}/{len(running)} died ({why})"))
            payloads.append(None)
            continue
        proc.join()
        if status == "ok":
            payloads.append(payload)
        else:
            errors.append(payload)
            payloads.append(None)
    if errors:
        raise errors[0]
    return payloads


def send_outcome(conn: Connection, work: Callable[[], Any]) -> None:
    """In a forked worker: run ``work`` and send its result, or the error, to the parent."""
    try:
        conn.send(("ok", work()))
    except MatcherError as exc:
        conn.send(("error", exc))
    except Exception as exc:  # noqa: BLE001 - sent to the parent, which raises it
        conn.send(("error", MatcherError(f"{type(exc).__name__}: {exc}")))
    finally:
        conn.close()
