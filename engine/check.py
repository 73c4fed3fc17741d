"""``check``: evaluate a pack over a period range and store the violations, as one recorded run."""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from engine.alerts.outbox import Alert
from engine.app import App
from engine.evaluate import Evaluation, evaluate
from engine.pack.load import Pack
from engine.pack.rollout import PackChoice, choose_pack
from engine.periods import PeriodRange, check_as_of, parse_range
from engine.subjects.screen import RULE as DATA_QUALITY_RULE
from engine.violations.packs import remember_pack
from engine.violations.runs import beat, reap_abandoned
from engine.violations.store import Scope, StoreReport
from engine.violations.tables import PackVersion

_PV = PackVersion.__table__  # type: ignore[attr-defined]


def _whole_pack_ids(app: App, pack: Pack) -> list[str]:
    """The rule ids of the whole pack version, as remembered: a run of some of its rules (the daily
    as-of run) must not mark the violations of the others as retired."""
    with app.db.connect() as conn:
        rules = conn.execute(sa.select(_PV.c.rules).where(_PV.c.hash == pack.hash)).scalar()
    stored = {key.rsplit("@", 1)[0] for key in rules or {}}
    return sorted(stored | set(pack.ids()) | {DATA_QUALITY_RULE})  # data quality is built in, never retired


@dataclass
class CheckResult:
    evaluation: Evaluation
    stored: StoreReport | None  # None with dry_run
    run_id: int | None
    pack: Pack
    choice: PackChoice | None = None  # how the configured pack was chosen (None for an explicit pack)

    @property
    def findings(self):  # type: ignore[no-untyped-def]
        return self.evaluation.findings


def run_check(
    app: App,
    period: str | PeriodRange,
    as_of: dt.date | None = None,
    rules_dir: str | Path | None = None,
    dry_run: bool = False,
    trigger: str = "cli",
    pack: Pack | None = None,
    alert_sink: list[Alert] | None = None,
    cluster: str | None = None,
) -> CheckResult:
    """Judge ``period`` as of ``as_of`` (default today) and, unless ``dry_run``, store the violations.

    Without ``pack`` or ``rules_dir`` the configured pack is used as :func:`choose_pack` decides
    (the last good pack while the configured one is invalid or held).

    With ``cluster`` (a Dask scheduler's address) or ``[cluster] address`` the partitions are judged on
    that cluster (:mod:`engine.cluster`) and each partition's record is stored with the run.

    A run that fails after it started is recorded as failed and alerted, then the error is raised.
    With ``alert_sink`` the new violations' alerts are collected there instead of enqueued (a backfill).
    """
    rng = parse_range(period) if isinstance(period, str) else period
    as_of = check_as_of(as_of or app.today())
    choice: PackChoice | None = None
    if pack is None:  # an explicit folder is used as given; the configured pack goes through the guard
        if rules_dir is not None:
            pack = app.pack(rules_dir)
        else:
            choice = choose_pack(app)
            pack = choice.pack
    grace = app.config.check.grace_days
    address = cluster or app.config.cluster.address

    def judge(heartbeat: Callable[[], None] | None = None) -> Evaluation:
        if address:
            from engine.cluster.coordinator import evaluate_on_cluster

            return evaluate_on_cluster(
                app.db, pack, rng, as_of, grace, app.config.cluster, address, heartbeat=heartbeat
            )
        with app.db.connect() as conn:
            settings = app.config.check
            return evaluate(
                conn,
                pack,
                rng,
                as_of,
                grace,
                processes=settings.processes,
                heartbeat=heartbeat,
                partitions=settings.partitions,
            )

    if dry_run:
        return CheckResult(judge(), None, None, pack, choice)
    remember_pack(app.db, pack)
    reap_abandoned(app.db, app.config.alerts)  # runs left "running" by a killed check
    run_id = app.violations.start_run(pack.hash, pack.root, rng.text, as_of, grace, trigger)
    try:
        ev = judge(functools.partial(beat, app.db, run_id))
        t0 = time.perf_counter()
        scope = Scope(
            ev.scope,
            held_members=frozenset(ev.screen.members),
            held_orgs=frozenset(ev.screen.orgs),
            held=frozenset(ev.held),
        )
        stored = app.violations.record(ev.findings, scope, pack.hash, run_id, alert_sink=alert_sink)
        app.violations.mark_retired(_whole_pack_ids(app, pack))
        ev.seconds["store"] = time.perf_counter() - t0
    except Exception as exc:
        app.violations.fail_run(run_id, exc)
        raise
    except BaseException as exc:  # Ctrl-C, SIGTERM in a scheduled child: not a failure to alert
        app.violations.stop_run(run_id, exc)
        raise
    app.violations.finish_run(
        run_id,
        subjects=sum(ev.subjects.values()),
        findings=len(ev.findings),
        new=len(stored.new) + len(stored.recurred),
        resolved=len(stored.resolved),
        seconds_sql=ev.seconds["sql"],
        seconds_match=ev.seconds["match"],
        seconds_store=ev.seconds["store"],
    )
    if address:
        from engine.cluster.tables import record_partitions

        record_partitions(app.db, run_id, getattr(ev, "partitions", []))
    return CheckResult(ev, stored, run_id, pack, choice)
