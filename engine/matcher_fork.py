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
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

from engine.matcher import Matcher, match_all
from engine.matcher_worker import MatcherCrashed, MatcherError


def _slice_worker(
    conditions: Mapping[str, Mapping[str, Any]],
    work: Sequence[tuple[str, Mapping[str, Any]]],
    start: int,
    stop: int,
    conn: Connection,
) -> None:
    try:
        matcher = Matcher(conditions)
        hits = [i for i in range(start, stop) if matcher.matches(work[i][0], work[i][1])]
        conn.send(("ok", hits))
    except MatcherError as exc:
        conn.send(("error", exc))
    except Exception as exc:  # noqa: BLE001 - sent to the parent, which raises it
        conn.send(("error", MatcherError(f"{type(exc).__name__}: {exc}")))
    finally:
        conn.close()


def match_inherited(
    conditions: Mapping[str, Mapping[str, Any]],
    work: Sequence[tuple[str, Mapping[str, Any]]],
    processes: int,
) -> list[bool]:
    """``[matches(key, subject) for key, subject in work]`` in ``processes`` forked workers."""
    if "fork" not in mp.get_all_start_methods():
        return match_all(conditions, work, processes)
    ctx = mp.get_context("fork")
    n = max(1, min(processes, len(work)))
    bounds = [(len(work) * i // n, len(work) * (i + 1) // n) for i in range(n)]
    workers = []
    for start, stop in bounds:
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_slice_worker, args=(conditions, work, start, stop, sender), daemon=True)
        proc.start()
        sender.close()
        workers.append((proc, receiver, start, stop))
    fired = [False] * len(work)
    errors: list[MatcherError] = []
    for proc, receiver, start, stop in workers:
        try:
            status, payload = receiver.recv()
        except EOFError:
            proc.join()
            code = proc.exitcode or 0
            why = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            errors.append(MatcherCrashed(f"a matcher worker died ({why}) while matching work items {start}..{stop - 1}"))
            continue
        finally:
            receiver.close()
        proc.join()
        if status == "ok":
            for i in payload:
                fired[i] = True
        else:
            errors.append(payload)
    if errors:
        raise errors[0]
    return fired
