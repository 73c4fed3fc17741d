"""Matching a large batch in forked worker processes that inherit the work instead of receiving it.

:func:`engine.matcher.match_all` ships every subject to its workers through a pipe; for millions of
subjects the main process spends as long pickling as the workers spend matching, so a second worker
brings nothing.  Here each worker is *forked* after the work is built: it inherits the subjects in
memory, matches its contiguous slice with its own :class:`~engine.matcher.Matcher` (a fresh
durable_rules Host), and sends back only the indices that fired.  A crash in the C engine kills that
worker, not the caller: it is reported as :class:`~engine.matcher_worker.MatcherCrashed`.

Linux and other platforms with ``fork`` only; elsewhere :func:`match_inherited` falls back to
:func:`engine.matcher.match_all`.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

from engine.matcher import Matcher, match_all
from engine.matcher_worker import MatcherCrashed, MatcherError


def run_forked(
    target: Callable[..., Any], jobs: Sequence[tuple[Any, ...]], what: str, daemon: bool = True
) -> list[Any]:
    """Run ``target(*job, conn)`` in one forked process per job; return each job's payload, in order.

    ``target`` sends ``("ok", payload)`` or ``("error", MatcherError)`` on ``conn``.  A process that
    dies without answering (a crash in the C engine) becomes :class:`MatcherCrashed`; the first error
    is raised once every process has finished.  ``daemon=False`` lets the workers fork workers of their own.
    """
    ctx = mp.get_context("fork")
    running = []
    for job in jobs:
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=target, args=(*job, sender), daemon=daemon)  # forked: args are inherited
        proc.start()
        sender.close()
        running.append((proc, receiver))
    payloads: list[Any] = []
    errors: list[Exception] = []
    for i, (proc, receiver) in enumerate(running):
        try:
            status, payload = receiver.recv()
        except EOFError:
            proc.join()
            code = proc.exitcode or 0
            why = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            errors.append(MatcherCrashed(f"{what} {i + 1}/{len(running)} died ({why})"))
            payloads.append(None)
            continue
        finally:
            receiver.close()
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


def _slice_worker(
    conditions: Mapping[str, Mapping[str, Any]],
    work: Sequence[tuple[str, Mapping[str, Any]]],
    start: int,
    stop: int,
    conn: Connection,
) -> None:
    def hits() -> list[int]:
        matcher = Matcher(conditions)
        return [i for i in range(start, stop) if matcher.matches(work[i][0], work[i][1])]

    send_outcome(conn, hits)


def match_inherited(
    conditions: Mapping[str, Mapping[str, Any]],
    work: Sequence[tuple[str, Mapping[str, Any]]],
    processes: int,
) -> list[bool]:
    """``[matches(key, subject) for key, subject in work]`` in ``processes`` forked workers."""
    if "fork" not in mp.get_all_start_methods():
        return match_all(conditions, work, processes)
    n = max(1, min(processes, len(work)))
    bounds = [(len(work) * i // n, len(work) * (i + 1) // n) for i in range(n)]
    fired = [False] * len(work)
    for hits in run_forked(_slice_worker, [(conditions, work, a, b) for a, b in bounds], "a matcher worker"):
        for i in hits:
            fired[i] = True
    return fired
