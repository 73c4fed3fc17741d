"""Evaluating a large range in forked processes, one partition of the top-level orgs each.

Building subjects (Python over SQL rows) and matching them (durable_rules, which holds the GIL) are both
CPU-bound, so both cores are used by processes: each worker is forked with the parent's engine, opens
its own connection (``Engine.dispose(close=False)`` keeps the parent's pool untouched), builds the
subjects of its partition (departments assigned by a stable hash of the top-level org id), matches them
with its own durable_rules Host, and sends back only the findings.  A worker that dies (a crash in the C
engine) is reported as :class:`~engine.matcher_worker.MatcherCrashed`; the caller lives on.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
from collections.abc import Sequence
from datetime import date
from multiprocessing.connection import Connection

import sqlalchemy as sa

from engine.evaluate import Evaluation, Work, iter_work, make_finding
from engine.finding import Finding
from engine.matcher import Matcher
from engine.matcher_worker import MatcherCrashed, MatcherError
from engine.pack.load import Pack
from engine.periods import PeriodRange
from engine.subjects.base import BuildContext
from engine.subjects.registry import Registry


def _worker(
    engine: sa.Engine,
    pack: Pack,
    rng: PeriodRange,
    as_of: date,
    grace_days: int,
    rule_ids: Sequence[str] | None,
    part: tuple[int, int],
    out: Connection,
) -> None:
    try:
        engine.dispose(close=False)  # new connections for this process; the parent's stay the parent's
        matcher = Matcher({r.key: r.durable for r in pack.rules})
        findings: list[Finding] = []
        sql = match = 0.0
        with engine.connect() as conn:
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
                findings.extend(make_finding(rule, s, registry) for s in chunk if matcher.matches(rule.key, s.fields))
                match += time.perf_counter() - t2
        out.send(("ok", (findings, work.scope, work.subjects, sql, match)))
    except Exception as exc:  # noqa: BLE001 - sent to the parent, which raises it
        out.send(("error", exc if isinstance(exc, MatcherError) else MatcherError(f"{type(exc).__name__}: {exc}")))
    finally:
        out.close()


def evaluate_partitioned(
    engine: sa.Engine,
    pack: Pack,
    rng: PeriodRange,
    as_of: date,
    grace_days: int,
    rule_ids: Sequence[str] | None,
    processes: int,
) -> Evaluation:
    result = Evaluation(pack.hash, rng.text, as_of)
    ctx = mp.get_context("fork")
    workers = []
    for k in range(processes):
        receiver, sender = ctx.Pipe(duplex=False)
        args = (engine, pack, rng, as_of, grace_days, rule_ids, (k, processes), sender)
        proc = ctx.Process(target=_worker, args=args, daemon=True)
        proc.start()
        sender.close()
        workers.append((proc, receiver, k))
    errors: list[Exception] = []
    sql = match = 0.0
    for proc, receiver, k in workers:
        try:
            status, payload = receiver.recv()
        except EOFError:
            proc.join()
            code = proc.exitcode or 0
            why = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            errors.append(MatcherCrashed(f"evaluation worker {k + 1}/{processes} died ({why})"))
            continue
        finally:
            receiver.close()
        proc.join()
        if status != "ok":
            errors.append(payload)
            continue
        findings, scope, subjects, sql_s, match_s = payload
        result.findings.extend(findings)
        result.scope |= scope
        for rule, n in subjects.items():
            result.subjects[rule] = result.subjects.get(rule, 0) + n
        sql, match = max(sql, sql_s), max(match, match_s)  # the stages run side by side: the slowest counts
    if errors:
        raise errors[0]
    result.seconds["sql"], result.seconds["match"] = sql, match
    return result


__all__ = ["evaluate_partitioned"]
