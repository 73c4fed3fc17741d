"""The process runner (engine.matching.pool): answers in order, errors and crashes reported, the caller
lives on, workers hold no write end of their parent's lifeline and die with it."""

from __future__ import annotations

import os
import signal
import time

import pytest

from engine.matching import MatcherCrashed, MatcherError, run_chunks, run_forked

BIG = list(range(100_000))  # inherited by the workers, never pickled


def _square_slice(start: int, stop: int) -> int:
    return sum(x * x for x in BIG[start:stop])


def _fail(_n: int) -> None:
    raise ValueError("bad input 7")


def _pick(n: int) -> int:
    if n == 1:
        os.kill(os.getpid(), signal.SIGSEGV)
    return n


def test_answers_come_back_in_job_order():
    jobs = [(0, 50_000), (50_000, 100_000), (0, 10)]
    assert run_forked(_square_slice, jobs, "worker") == [sum(x * x for x in BIG[a:b]) for a, b in jobs]
    assert run_forked(_square_slice, [], "worker") == []


def test_a_closure_is_inherited_not_pickled():
    seen = {"n": 3}
    assert run_forked(lambda k: seen["n"] * k, [(1,), (2,)], "worker") == [3, 6]


def test_an_error_in_a_worker_is_raised_with_its_message():
    with pytest.raises(MatcherError, match="ValueError: bad input 7"):
        run_forked(_fail, [(1,)], "worker")


def test_a_dead_worker_is_named_and_the_caller_lives_on(quiet_crashes):
    with pytest.raises(MatcherCrashed, match=r"worker 2/2 died \(killed by SIGSEGV\)"):
        run_forked(_pick, [(0,), (1,)], "worker")
    assert run_forked(_square_slice, [(0, 3)], "worker") == [5]


def _timed(path, k: int, seconds: float) -> int:
    """Sleep; record this process's pid and when it started and ended (CLOCK_MONOTONIC: one clock for all)."""
    start = time.monotonic()
    time.sleep(seconds)
    (path / str(k)).write_text(f"{os.getpid()} {start} {time.monotonic()}")
    return k


def test_at_most_workers_jobs_run_at_once_each_in_a_fresh_process(tmp_path):
    jobs = [(tmp_path, k, 0.5) for k in range(7)]
    assert run_forked(_timed, jobs, "worker", workers=2) == list(range(7))
    spans = [(int(pid), float(a), float(b)) for pid, a, b in ((tmp_path / str(k)).read_text().split() for k in range(7))]
    at_once = max(sum(1 for _, a, b in spans if a <= t < b) for _, t, _ in spans)  # the most running at a start
    assert at_once == 2  # never more than two, and two did run side by side
    assert len({pid for pid, _, _ in spans}) == 7  # forked fresh for each job: no heap carried over
    assert os.getpid() not in {pid for pid, _, _ in spans}


def _later_one_dies(path, k: int) -> int:
    (path / f"started-{k}").touch()
    if k == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60 if k == 2 else 0.2)
    return k


def test_a_worker_killed_in_a_later_batch_is_named_and_ends_the_run(tmp_path, quiet_crashes):
    """Jobs 1-2 run first; job 4 (of 6) is killed while job 3 sleeps: the error names 4/6 and its signal,
    job 3 is killed rather than waited for, and no job starts after the failure."""
    started = time.monotonic()
    with pytest.raises(MatcherCrashed, match=r"worker 4/6 died \(killed by SIGKILL\)"):
        run_forked(_later_one_dies, [(tmp_path, k) for k in range(6)], "worker", workers=2)
    assert time.monotonic() - started < 30
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"started-{k}" for k in range(4)]


def test_workers_must_be_at_least_one():
    with pytest.raises(ValueError, match="at least 1"):
        run_forked(_square_slice, [(0, 3)], "worker", workers=0)


def test_heartbeat_is_called_while_the_workers_run():
    beats = []
    assert run_forked(time.sleep, [(0.4,)], "worker", heartbeat=lambda: beats.append(1), heartbeat_seconds=0.05) == [
        None
    ]
    assert len(beats) >= 3


def test_an_interrupted_wait_kills_the_workers(tmp_path):
    """A heartbeat that raises (as Ctrl-C would) stops the wait: the workers are killed, not waited for."""

    def stop() -> None:
        if (tmp_path / "pid").exists():  # the worker runs
            raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_forked(_sleep_and_tell, [(tmp_path / "pid",)], "worker", heartbeat=stop, heartbeat_seconds=0.1)
    assert time.monotonic() - started < 30
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(pid, 0)


def _sleep_and_tell(path) -> None:
    path.write_text(str(os.getpid()))
    time.sleep(60)


def _lifeline_ends(_n: int) -> list[str]:
    """Each fd of this worker open on a pipe, with its access mode (0 read, 1 write)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            with open(f"/proc/self/fdinfo/{fd}") as fh:
                flags = next(int(line.split()[1], 8) for line in fh if line.startswith("flags:"))
        except (OSError, StopIteration):
            continue
        if target.startswith("pipe:"):
            found.append(f"{target}:{flags & 3}")
    return found


def test_no_worker_holds_the_write_end_of_the_lifeline():
    """The watchdog sees its parent die only if the parent alone holds the pipe's write end: each worker
    (siblings forked after it included) closes its copy first thing."""
    import engine.matching.pool as pool

    made = []
    real = pool.Lifeline

    class Spy(real):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            made.append(os.readlink(f"/proc/self/fd/{self.write_fd}"))

    pool.Lifeline = Spy
    try:
        answers = run_forked(_lifeline_ends, [(0,), (1,), (2,)], "worker")
    finally:
        pool.Lifeline = real
    (pipe,) = made
    for ends in answers:
        assert f"{pipe}:0" in ends  # the read end the watchdog blocks on
        assert f"{pipe}:1" not in ends, "a worker holds the lifeline's write end"


def _setup(offset: int) -> int:
    return offset


def _chunk(offset: int, items: list[int]) -> bytes:
    if 13 in items:
        from engine.matching.pool import ItemError

        raise ItemError(items.index(13), ValueError("thirteen"))
    if -1 in items:
        os.kill(os.getpid(), signal.SIGFPE)
    return bytes((x + offset) % 256 for x in items)


def test_chunks_come_back_in_order_from_several_workers():
    items = [i % 10 for i in range(5000)]
    assert run_chunks(_setup, 1, _chunk, items, processes=2) == bytes((x + 1) % 256 for x in items)
    assert run_chunks(_setup, 1, _chunk, [], processes=2) == b""


def test_a_chunk_error_names_the_item():
    items = [1] * 300 + [13] + [1] * 10
    with pytest.raises(MatcherError, match="ValueError: thirteen") as info:
        run_chunks(_setup, 0, _chunk, items, processes=2)
    assert "while matching work item 300" in info.value.__notes__


def test_a_dead_chunk_worker_names_its_items(quiet_crashes):
    items = [1] * 500 + [-1]
    with pytest.raises(MatcherCrashed, match=r"died \(killed by SIGFPE\) while matching work items 400\.\.500 \(x\)"):
        run_chunks(_setup, 0, _chunk, items, processes=2, describe=lambda start, count: " (x)")
