"""The coordinator of a check on a Dask cluster: plan partitions, submit them, gather the findings.

Nothing is stored here: :func:`evaluate_on_cluster` returns a :class:`ClusterEvaluation` (the findings of
every partition, the scope judged, and one :class:`PartitionRecord` a partition) that
:func:`engine.check.run_check` stores through the same upsert as a single-machine check.

Faults: a worker that dies while it runs a partition is noticed by the scheduler, which runs the partition
again on another worker (up to ``distributed.scheduler.allowed-failures`` times); a partition that raises
is re-run ``[cluster] retries`` times.  Either way the coordinator receives each partition's findings once
(the first result that completes), and the record says the partition was retried and why.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from engine.cluster.job import PartitionJob, PartitionResult, run_partition
from engine.cluster.plan import Partition, plan_partitions, subtree_sizes, with_orgs
from engine.config import ClusterSettings
from engine.evaluate import Evaluation
from engine.pack.load import Pack
from engine.periods import PeriodRange
from engine.subjects.registry import Registry
from engine.subjects.screen import hidden, scan
from facts.errors import PartyrulesError

HEARTBEAT_SECONDS = 30.0


class ClusterError(PartyrulesError):
    """The cluster could not be reached, has no workers, or could not judge a partition."""


@dataclass
class PartitionRecord:
    index: int
    roots: list[str]
    facts: int
    findings: int = 0
    seconds_sql: float = 0.0
    seconds_match: float = 0.0
    seconds_total: float = 0.0
    worker: str = ""
    lost_workers: int = 0  # times a worker died while running it (the scheduler re-ran it)
    errors_retried: int = 0  # times it raised and was re-run

    @property
    def retried(self) -> bool:
        return self.lost_workers > 0 or self.errors_retried > 0


@dataclass
class ClusterEvaluation(Evaluation):
    address: str = ""
    partitions: list[PartitionRecord] = field(default_factory=list)
    seconds_plan: float = 0.0

    @property
    def retried(self) -> list[int]:
        return [p.index for p in self.partitions if p.retried]


def _history(dask_scheduler: Any, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
    """On the scheduler: (workers lost while running, retries left) of each task still known."""
    out = {}
    for key in keys:
        ts = dask_scheduler.tasks.get(key)
        if ts is not None:
            out[key] = (int(ts.suspicious), int(ts.retries))
    return out


def plan(conn: sa.Connection, n: int) -> list[Partition]:
    registry = Registry.load_orgs(conn)  # the tree alone (0.5 s at scale 1, not 4.6 s): each task loads its own part
    return with_orgs(plan_partitions(subtree_sizes(conn, registry), n), registry)


def evaluate_on_cluster(
    db: sa.Engine,
    pack: Pack,
    rng: PeriodRange,
    as_of: date,
    grace_days: int,
    settings: ClusterSettings,
    address: str | None = None,
    rule_ids: Sequence[str] | None = None,
    heartbeat: Callable[[], None] | None = None,
) -> ClusterEvaluation:
    """Judge ``rng`` as of ``as_of`` with one Dask task a partition; the workers read ``settings.database``
    (default: ``db``'s own URL, password included, so it must be reachable from every worker).

    ``heartbeat`` is called every :data:`HEARTBEAT_SECONDS` while the partitions run (the run's liveness).
    """
    from distributed import Client

    address = address or settings.address
    if not address:
        raise ClusterError("no cluster address: give --cluster tcp://HOST:8786 or [cluster] address")
    db_url = settings.database or db.url.render_as_string(hide_password=False)
    result = ClusterEvaluation(pack.hash, rng.text, as_of, address=address)
    try:
        client = Client(address, timeout=settings.connect_timeout, set_as_default=False)
    except OSError as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    with client:
        threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
        if threads == 0:
            raise ClusterError(f"the Dask scheduler at {address} has no workers")
        t0 = time.perf_counter()
        with db.connect() as conn:
            screen = scan(conn)  # rows no partition can judge: data-quality findings, hidden from the workers
            with hidden(conn, screen):  # planned on the tree the workers will see (a hidden org moves its subtree)
                parts = plan(conn, settings.partitions or 2 * threads)
        result.seconds_plan = time.perf_counter() - t0
        records = {p.index: PartitionRecord(p.index, list(p.roots), p.facts) for p in parts}
        run = uuid.uuid4().hex[:12]
        keys = {p.index: f"partyrules-check-{run}-p{p.index}" for p in parts}
        ids = tuple(rule_ids) if rule_ids is not None else None
        futures = [
            client.submit(
                run_partition,
                PartitionJob(db_url, pack, rng.text, as_of, grace_days, ids, p, screen),
                settings.isolate,
                key=keys[p.index],
                retries=settings.retries,
                pure=False,
                priority=p.facts,  # heaviest first: the last partition to finish is a small one
            )
            for p in parts
        ]
        sql = match = 0.0
        try:
            for future in _completed(futures, client, heartbeat):
                done: PartitionResult = future.result()
                _merge(result, done)
                rec = records[done.index]
                rec.findings, rec.worker = len(done.findings), done.worker
                rec.seconds_sql, rec.seconds_match, rec.seconds_total = (
                    done.seconds_sql,
                    done.seconds_match,
                    done.seconds_total,
                )
                sql, match = max(sql, done.seconds_sql), max(match, done.seconds_match)
            history = client.run_on_scheduler(_history, keys=list(keys.values()))
        except PartyrulesError:
            raise
        except Exception as exc:  # KilledWorker, a lost scheduler: say which check and cluster
            raise ClusterError(f"the check on {address} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            client.cancel(futures)
        for index, key in keys.items():
            lost, left = history.get(key, (0, settings.retries))
            records[index].lost_workers, records[index].errors_retried = lost, settings.retries - left
    result.partitions = [records[i] for i in sorted(records)]
    result.add_screen(screen, str(rng.start.year))
    result.seconds["sql"], result.seconds["match"] = sql, match  # side by side: the slowest partition counts
    return result


def _completed(futures: list[Any], client: Any, heartbeat: Callable[[], None] | None) -> Iterator[Any]:
    """The futures as they complete, calling ``heartbeat`` every HEARTBEAT_SECONDS meanwhile."""
    from distributed import as_completed

    pending = as_completed(futures, loop=client.loop)
    last = time.monotonic()
    while not pending.is_empty():
        yield from pending.next_batch(block=False)
        if heartbeat is not None and time.monotonic() - last >= HEARTBEAT_SECONDS:
            heartbeat()
            last = time.monotonic()
        time.sleep(0.1)


def _merge(result: Evaluation, done: PartitionResult) -> None:
    result.findings.extend(done.findings)
    result.held |= done.held
    result.scope |= done.scope
    for rule, n in done.subjects.items():
        result.subjects[rule] = result.subjects.get(rule, 0) + n
