"""What a Dask worker runs for one partition: read it from the shared database, build, match, return findings.

durable_rules is not made for a threaded host (see the README's *Cluster* section): its C calls hold the GIL,
a Host must be fresh per pack with its background threads off, and a crash in the C engine kills the whole
process.  A Dask worker is a threaded process, so the matching is kept out of its threads in one of two ways
(``[cluster] isolate``):

- ``process`` (the default): the task starts a child Python (``python -m engine.cluster.job``; exec, not a
  fork of the threaded worker), hands it the job on stdin and reads the result from stdout.  The child dies
  with the worker (PDEATHSIG), a crash in it fails the task (and Dask retries it) without killing the
  worker, and the memory of a partition goes back to the system when it ends.  Costs one interpreter start
  (~1 s) per partition.
- ``thread``: the task runs in the worker's thread, one at a time per worker process (a lock); start the
  workers with ``--nthreads 1`` and several processes (``--nworkers N``) for parallelism.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from engine.cluster.plan import Partition
from engine.evaluate import judge_part
from engine.finding import Finding
from engine.matching.errors import MatcherCrashed, MatcherError
from engine.pack.load import Pack
from engine.periods import parse_range
from engine.subjects.screen import Screen

ISOLATION = ("process", "thread")
_IN_THREAD = threading.Lock()  # one durable_rules evaluation at a time in a worker process (thread mode)


@dataclass(frozen=True)
class PartitionJob:
    db_url: str  # the shared database as the workers reach it
    pack: Pack
    range_text: str
    as_of: date
    grace_days: int
    rule_ids: tuple[str, ...] | None
    partition: Partition
    screen: Screen = field(default_factory=Screen)  # stored rows the coordinator set aside as unjudgeable


@dataclass
class PartitionResult:
    index: int
    findings: list[Finding]
    scope: set[tuple[str, str]]
    subjects: dict[str, int]
    seconds_sql: float
    seconds_match: float
    seconds_total: float = 0.0  # as the task saw it (with the child's start in process mode)
    worker: str = ""  # host:pid of the process that judged it
    notes: list[str] = field(default_factory=list)
    held: set[tuple[str, str, str]] = field(default_factory=set)  # (rule, type, id) not judged: kept as stored


def judge(job: PartitionJob) -> PartitionResult:
    """Build and match the partition's subjects in this process (its own engine, its own Host)."""
    from facts.db import make_engine

    started = time.perf_counter()
    engine = make_engine(job.db_url)
    part = job.partition
    rule_ids = list(job.rule_ids) if job.rule_ids is not None else None
    try:
        with engine.connect() as conn:
            judged = judge_part(
                conn,
                job.pack,
                parse_range(job.range_text),
                job.as_of,
                job.grace_days,
                rule_ids,
                job.screen,
                registry_orgs=part.orgs or None,
                roots=frozenset(part.roots),
                orphans=part.orphans,
            )
            conn.rollback()  # the partition's temporary tables go with the connection
    finally:
        engine.dispose()
    return PartitionResult(
        part.index,
        judged.findings,
        judged.scope,
        judged.subjects,
        judged.seconds_sql,
        judged.seconds_match,
        time.perf_counter() - started,
        f"{socket.gethostname()}:{os.getpid()}",
        held=judged.held,
    )


def run_partition(job: PartitionJob, isolate: str = "process") -> PartitionResult:
    """The Dask task: judge ``job`` in a child process (``process``) or in this thread (``thread``)."""
    if isolate == "thread":
        with _IN_THREAD:
            return judge(job)
    if isolate != "process":
        raise MatcherError(f"unknown isolation {isolate!r} (expected one of {', '.join(ISOLATION)})")
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "engine.cluster.job", str(os.getpid())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = child.communicate(pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
    what = f"partition {job.partition.index} ({', '.join(job.partition.roots[:3])}…)"
    if child.returncode < 0:
        raise MatcherCrashed(
            f"{what}: its process was killed by {signal.Signals(-child.returncode).name}: {_tail(err)}"
        )
    if child.returncode != 0 or not out:
        raise MatcherError(f"{what}: its process failed (exit status {child.returncode}): {_tail(err)}")
    status, payload = pickle.loads(out)
    if status != "ok":
        raise payload
    result: PartitionResult = payload
    result.seconds_total = time.perf_counter() - started
    return result


def _tail(err: bytes, lines: int = 8) -> str:
    text = err.decode("utf-8", "replace").strip().splitlines()
    return " | ".join(text[-lines:]) or "(nothing on stderr)"


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent (the Dask worker's thread) dies; elsewhere, poll."""
    from engine.matching.lifeline import set_parent_death_signal

    if not set_parent_death_signal():  # not Linux: a watchdog thread (it never touches durable_rules)

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def main() -> None:
    """``python -m engine.cluster.job PARENT_PID``: a job on stdin, ``("ok", result)`` or an error on stdout."""
    _die_with_parent(int(sys.argv[1]))
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr  # anything printed while judging must not corrupt the answer
    job = pickle.loads(sys.stdin.buffer.read())
    answer: tuple[str, Any]
    try:
        answer = ("ok", judge(job))
    except MatcherError as exc:
        answer = ("error", exc)
    except Exception as exc:  # noqa: BLE001 - carried to the task, which raises it
        answer = ("error", MatcherError(f"{type(exc).__name__}: {exc}"))
    out.write(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
    out.close()


if __name__ == "__main__":  # run as a module: use the importable copy, so results unpickle as engine.cluster.job
    from engine.cluster.job import main as _main

    _main()
