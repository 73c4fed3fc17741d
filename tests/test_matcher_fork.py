"""Forked workers: answers in order, errors and crashes reported, the caller lives on."""

from __future__ import annotations

import os
import signal

import pytest

from engine.matcher_fork import run_forked, send_outcome
from engine.matcher_worker import MatcherCrashed, MatcherError

BIG = list(range(100_000))  # inherited by the workers, never pickled


def _square_slice(start: int, stop: int, out) -> None:
    send_outcome(out, lambda: sum(x * x for x in BIG[start:stop]))


def _fail(_n: int, out) -> None:
    def boom() -> None:
        raise ValueError("bad input 7")

    send_outcome(out, boom)


def _die(_n: int, out) -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def test_answers_come_back_in_job_order():
    jobs = [(0, 50_000), (50_000, 100_000), (0, 10)]
    assert run_forked(_square_slice, jobs, "worker") == [sum(x * x for x in BIG[a:b]) for a, b in jobs]


def test_an_error_in_a_worker_is_raised_with_its_message():
    with pytest.raises(MatcherError, match="ValueError: bad input 7"):
        run_forked(_fail, [(1,)], "worker")


def test_a_dead_worker_is_named_and_the_caller_lives_on(quiet_crashes):
    with pytest.raises(MatcherCrashed, match=r"worker 2/2 died \(killed by SIGSEGV\)"):
        run_forked(_pick, [(0,), (1,)], "worker")
    assert run_forked(_square_slice, [(0, 3)], "worker") == [5]


def _pick(n: int, out) -> None:
    if n == 1:
        _die(n, out)
    send_outcome(out, lambda: n)


def _slow(seconds: float, out) -> None:
    import time

    time.sleep(seconds)
    send_outcome(out, lambda: seconds)


def test_heartbeat_is_called_while_the_workers_run():
    beats = []
    assert run_forked(
        _slow, [(0.4,)], "worker", heartbeat=lambda: beats.append(1), heartbeat_seconds=0.05
    ) == [0.4]
    assert len(beats) >= 3


def test_a_worker_keeps_no_pipe_of_a_sibling():
    """A sibling holding another worker's read end kept that worker's writes from failing when the
    parent died (it blocked forever writing its answer)."""
    answers = run_forked(_pipes, [(0,), (1,), (2,)], "worker")
    for i, (mine, _) in enumerate(answers):
        for j, (_, held) in enumerate(answers):
            if i != j:
                assert mine not in held, f"worker {j + 1} holds worker {i + 1}'s pipe"


def _pipes(_n: int, out) -> None:
    def pipes() -> tuple[str, set[str]]:
        mine = os.readlink(f"/proc/self/fd/{out.fileno()}")
        held = set()
        for fd in os.listdir("/proc/self/fd"):
            try:
                held.add(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                continue
        return mine, held

    send_outcome(out, pipes)
