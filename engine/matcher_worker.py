"""Running matcher work in short-lived worker processes.

durable_rules holds the GIL, leaks what it registers and can crash the whole process (a SIGFPE or
SIGSEGV in its C engine).  So the work is cut into chunks and sent to worker processes started with
the ``forkserver`` (or ``spawn``) method; each worker builds its matcher once, answers chunk after
chunk, and exits.  A worker that dies is reported as :class:`MatcherCrashed`; the caller lives on.

This module is generic over what a worker computes: :func:`run_chunks` takes the worker's entry point
(a module-level function, importable in the child) and returns the bytes the workers sent back.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from facts.errors import PartyrulesError

WorkerMain = Callable[[Connection, Any], None]
"""``main(conn, setup)``: receives ``(start, items)`` chunks until ``None``, answers each with
``("ok", start, bytes)`` or ``("error", start, index_in_chunk, exception)`` and then exits."""


class MatcherError(PartyrulesError):
    """Matching could not be done (a bad condition for durable_rules, a subject it cannot take…)."""

    def __init__(self, message: str, rule_key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.rule_key = rule_key

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.rule_key))


class MatcherCrashed(MatcherError):
    """A worker process died (e.g. killed by a signal from durable_rules' C engine)."""


def mp_context(preload: Sequence[str] = ()) -> BaseContext:
    """``forkserver`` where the platform has it (a clean, quickly forked child), else ``spawn``.

    ``preload`` names modules the fork server imports once, so each worker starts with them loaded
    (it only takes effect if this process has not started its fork server yet).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    if preload:
        ctx.set_forkserver_preload(list(preload))
    return ctx


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


@dataclass
class _Failure:
    error: BaseException


class _Worker:
    """One worker process and the thread in this process that talks to it."""

    def __init__(self, ctx: BaseContext, main: WorkerMain, setup: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.process: BaseProcess = ctx.Process(target=main, args=(child, setup), daemon=True)  # type: ignore[attr-defined]
        self.process.start()
        child.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # already gone: nothing to tell it
            self.conn.send(None)
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)
        self.conn.close()

    def crashed(self, start: int, count: int, describe: Callable[[int, int], str]) -> MatcherCrashed:
        self.process.join(timeout=5)
        how = _describe_exit(self.process.exitcode)
        return MatcherCrashed(
            f"the durable_rules worker process died ({how}) while matching work items "
            f"{start}..{start + count - 1}{describe(start, count)}; no result was kept from that chunk"
        )


def chunk_size(total: int, processes: int) -> int:
    """Large enough to amortise pickling, small enough to balance processes and keep results in the pipe."""
    return max(200, min(4000, total // (processes * 4) or 1))


def run_chunks(
    main: WorkerMain,
    setup: Any,
    work: Sequence[Any],
    processes: int = 1,
    describe: Callable[[int, int], str] = lambda start, count: "",
    preload: Sequence[str] = (),
) -> bytes:
    """Send ``work`` in chunks to ``processes`` workers running ``main(conn, setup)``; their bytes, in order.

    ``describe(start, count)`` adds detail (e.g. which rules) to a crash report.
    """
    if processes < 1:
        raise ValueError("processes must be at least 1")
    total = len(work)
    if total == 0:
        return b""
    size = chunk_size(total, processes)
    chunks: queue.SimpleQueue[tuple[int, Sequence[Any]]] = queue.SimpleQueue()
    for start in range(0, total, size):
        chunks.put((start, work[start : start + size]))
    out = bytearray(total)
    failures: list[_Failure] = []
    stop = threading.Event()
    ctx = mp_context(preload)
    workers = [_Worker(ctx, main, setup) for _ in range(min(processes, -(-total // size)))]
    threads = [
        threading.Thread(target=_converse, args=(w, chunks, out, failures, stop, describe), daemon=True)
        for w in workers
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        stop.set()
        for w in workers:
            w.stop()
    if failures:
        raise failures[0].error
    return bytes(out)


def _next_chunk(
    chunks: queue.SimpleQueue[tuple[int, Sequence[Any]]], stop: threading.Event
) -> tuple[int, Sequence[Any]] | None:
    if stop.is_set():
        return None
    try:
        return chunks.get_nowait()
    except queue.Empty:
        return None


def _converse(
    worker: _Worker,
    chunks: queue.SimpleQueue[tuple[int, Sequence[Any]]],
    out: bytearray,
    failures: list[_Failure],
    stop: threading.Event,
    describe: Callable[[int, int], str],
) -> None:
    """Keep one chunk queued in the worker's pipe while it works on another; collect its answers."""
    in_flight: list[tuple[int, int]] = []
    try:
        while True:
            while len(in_flight) < 2 and (chunk := _next_chunk(chunks, stop)) is not None:
                start, items = chunk
                in_flight.append((start, len(items)))
                try:
                    worker.conn.send((start, list(items)))
                except (BrokenPipeError, ConnectionResetError, EOFError):
                    if worker.conn.poll():  # it said why before it left
                        _raise_answer(worker.conn.recv(), out)
                    raise worker.crashed(start, len(items), describe) from None
            if not in_flight:
                return
            start, count = in_flight[0]
            try:
                answer = worker.conn.recv()
            except (EOFError, ConnectionResetError, OSError):
                raise worker.crashed(start, count, describe) from None
            in_flight.pop(0)
            _raise_answer(answer, out)
    except BaseException as exc:  # handed to the caller by run_chunks, never dropped
        failures.append(_Failure(exc))
        stop.set()


def _raise_answer(answer: tuple[Any, ...], out: bytearray) -> None:
    """Store an ``ok`` answer in ``out``; raise the exception an ``error`` answer carries."""
    if answer[0] == "ok":
        _, start, data = answer
        out[start : start + len(data)] = data
        return
    _, start, index, error = answer
    where = "while building the matcher" if start < 0 else f"while matching work item {start + index}"
    if not isinstance(error, BaseException):
        raise MatcherError(f"worker failed {where}: {error}")
    error.add_note(where)
    raise error
