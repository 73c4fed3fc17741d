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
