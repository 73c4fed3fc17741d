"""Evaluating a large range in forked processes, one partition of the top-level orgs each.

Building subjects (Python over SQL rows) and matching them (durable_rules, which holds the GIL) are both
CPU-bound, so both cores are used by processes: each worker is forked with the parent's engine, opens
its own connection (``Engine.dispose(close=False)`` keeps the parent's pool untouched), builds the
subjects of its partition (departments assigned by a stable hash of the top-level org id), matches them
with its own durable_rules Host, and sends back only the findings.  A worker that dies (a crash in the C
engine) is reported as :class:`~engine.matcher_worker.MatcherCrashed`; the caller lives on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date
from multiprocessing.connection import Connection
from typing import Any

import sqlalchemy as sa

from engine.evaluate import Evaluation, Work, iter_work, judge_chunk
from engine.finding import Finding
from engine.matcher import Matcher
from engine.matcher_fork import run_forked, send_outcome
from engine.pack.load import Pack
from engine.periods import PeriodRange
from engine.subjects.base import BuildContext
from engine.subjects.registry import Registry
from engine.subjects.screen import Screen, hidden


def _worker(
    engine: sa.Engine,
    pack: Pack,
    rng: PeriodRange,
    as_of: date,
    grace_days: int,
    rule_ids: Sequence[str] | None,
    part: tuple[int, int],
    screen: Screen,
    out: Connection,
) -> None:
    def judge() -> tuple[Any, ...]:
        engine.dispose(close=False)  # new connections for this process; the parent's stay the parent's
        matcher = Matcher.for_rules(pack.rules)
        findings: list[Finding] = []
        match = 0.0
        with engine.connect() as conn, hidden(conn, screen):
            t0 = time.perf_counter()
            registry = Registry.load(conn)
            ctx = BuildContext(conn, registry, as_of, part=part)
            work = Work([], registry, set(), {})
            chunks = iter_work(ctx, pack, rng, grace_days, rule_ids, work)
            sql = time.perf_counter() - t0
            while True:  # one chunk (a rule's period) at a time: memory stays bounded
                t1 = time.perf_counter()
                step = next(chunks, None)
                t2 = time.perf_counter()
                sql += t2 - t1
                if step is None:
                    break
                rule, chunk = step
                findings.extend(judge_chunk(matcher, rule, chunk, registry, work))
                match += time.perf_counter() - t2
        return findings + work.problems, work.scope, work.subjects, sql, match, work.held

    send_outcome(out, judge)


def evaluate_partitioned(
    engine: sa.Engine,
    pack: Pack,
    rng: PeriodRange,
    as_of: date,
    grace_days: int,
    rule_ids: Sequence[str] | None,
    processes: int,
    heartbeat: Callable[[], None] | None = None,
    screen: Screen | None = None,
) -> Evaluation:
    """Evaluate in ``processes`` forked workers; ``heartbeat`` is called every 30 s while they work.

    ``seconds["wall"]`` is its wall time (the caller adds the screen's scan to the SQL time)."""
    t0 = time.perf_counter()
    result = Evaluation(pack.hash, rng.text, as_of)
    screen = screen or Screen()
    jobs = [(engine, pack, rng, as_of, grace_days, rule_ids, (k, processes), screen) for k in range(processes)]
    sql = match = 0.0
    for findings, scope, subjects, sql_s, match_s, held in run_forked(
        _worker, jobs, "evaluation worker", heartbeat=heartbeat
    ):
        result.findings.extend(findings)
        result.held |= held
        result.scope |= scope
        for rule, n in subjects.items():
            result.subjects[rule] = result.subjects.get(rule, 0) + n
        sql, match = max(sql, sql_s), max(match, match_s)  # the stages run side by side: the slowest counts
    result.seconds["sql"], result.seconds["match"] = sql, match
    result.seconds["wall"] = time.perf_counter() - t0
    return result


__all__ = ["evaluate_partitioned"]
