"""Running the schedule: APScheduler 3 with its job store in the project database.

:func:`serve` is what ``partyrules schedule run`` does in the foreground: it
validates ``[schedule]`` (a bad cron stops it here), brings the stored jobs in
line with the config, judges at once every period missed while it was down,
and runs until ``stop`` is set.  A stored job whose time passed while the
scheduler was down runs once on start (``coalesce``) if it is late by less
than ``misfire_grace_seconds``.  :func:`run_once` runs every enabled job once,
in order, without the job store.

One ``schedule run`` per database: APScheduler 3 does not share a job store
between schedulers, so the leader lock (:mod:`engine.schedule.leader`) lets one
run and makes a second wait.  Checks run in a clean child process
(:mod:`engine.schedule.isolate`): this process is threaded and never forks.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from engine.alerts.config import AlertsConfig
from engine.app import App
from engine.periods import parse_period
from engine.schedule.backfill import BacklogRefused, check_backlog
from engine.schedule.config import ScheduleConfig, cron_trigger, schedule_settings
from engine.schedule.isolate import run_isolated, stop_children
from engine.schedule.jobs import (
    JOB_NAMES,
    CheckFn,
    ScheduleJobError,
    period_outlook,
    run_job,
    run_named,
    scheduled_check,
)
from engine.schedule.leader import Holder, LeaderLock
from engine.schedule.state import ensure_tables
from facts.db import database_url
from facts.errors import PartyrulesError

_log = logging.getLogger(__name__)

JOBSTORE_TABLE = "schedule_job"
JOB_PREFIX = "partyrules."
JOB_TITLES = {
    "periods": "期间检查（期间结束并过宽限期后判定）",
    "daily": "每日判定（期限、任期、信访等按判定日计算的规则）",
    "escalate": "逾期升级",
    "digest": "每日汇总",
    "dispatch": "告警投递",
}
CHECK_JOBS = ("periods", "daily")  # one at a time: two checks writing the same violations would collide


@dataclass(frozen=True)
class Target:
    """What a stored job needs to rebuild the app: plain strings, resolved to absolute paths."""

    db_url: str
    config_path: str | None


def resolve_target(app: App, db_url: str | None = None) -> Target:
    url = sa.make_url(database_url(db_url or app.config.database))
    if url.drivername.startswith("sqlite") and url.database and url.database != ":memory:":
        url = url.set(database=str(Path(url.database).resolve()))
    source = app.config.source
    config_path = str(Path(source).resolve()) if source != "(defaults)" else None
    # the job store pickles its arguments into schedule_job.job_state: never the password.  The job
    # finds it again where it came from (PARTYRULES_DB or the config file; see jobs.restore_password).
    return Target(url._replace(password=None).render_as_string(hide_password=False), config_path)


@dataclass(frozen=True)
class JobPlan:
    name: str
    title: str
    trigger: BaseTrigger
    executor: str

    @property
    def job_id(self) -> str:
        return JOB_PREFIX + self.name


def plan_jobs(settings: ScheduleConfig, alerts: AlertsConfig) -> list[JobPlan]:
    """The enabled jobs and their triggers, in the order :func:`run_once` runs them."""
    zone = settings.timezone or "Asia/Shanghai"
    plans = []
    for name in JOB_NAMES:
        section = getattr(settings, name)
        if not section.enabled:
            continue
        if name == "dispatch":
            seconds = settings.dispatch.every_seconds or alerts.dispatcher.poll_seconds
            trigger: BaseTrigger = IntervalTrigger(seconds=seconds, timezone=zone)
        else:
            trigger = cron_trigger(section.cron, zone)
        plans.append(JobPlan(name, JOB_TITLES[name], trigger, "checks" if name in CHECK_JOBS else "default"))
    return plans


class _Scheduler(BackgroundScheduler):
    """APScheduler 3 wakes once more after ``shutdown`` and takes the jobs then due, which it can no longer run
    (its executors are gone) but still moves to their next time: a missed run would be lost.  Not here."""

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        result: float | None = super()._process_jobs()
        return result


def build_scheduler(db: sa.Engine, settings: ScheduleConfig) -> BackgroundScheduler:
    return _Scheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=db, tablename=JOBSTORE_TABLE)},
        executors={"default": ThreadPoolExecutor(4), "checks": ThreadPoolExecutor(1)},
        job_defaults={
            "coalesce": True,
            "misfire_grace_time": settings.misfire_grace_seconds,
            "max_instances": 1,
        },
        timezone=settings.zone(),
    )


def _trigger_key(trigger: BaseTrigger) -> str:
    if isinstance(trigger, IntervalTrigger):  # its repr carries a start time that changes every start
        return f"interval {trigger.interval} {trigger.timezone}"
    return repr(trigger)


def sync_jobs(scheduler: BackgroundScheduler, plans: list[JobPlan], target: Target) -> dict[str, str]:
    """Make the stored jobs match ``plans``; an unchanged job is kept, so its missed run still fires."""
    stored = {job.id: job for job in scheduler.get_jobs()}
    outcome: dict[str, str] = {}
    for plan in plans:
        args = (plan.name, target.db_url, target.config_path)
        job = stored.get(plan.job_id)
        if (
            job is not None
            and _trigger_key(job.trigger) == _trigger_key(plan.trigger)
            and tuple(job.args) == args
            and job.executor == plan.executor
        ):
            outcome[plan.name] = "kept"
            continue
        scheduler.add_job(
            run_job,
            plan.trigger,
            args=args,
            id=plan.job_id,
            name=plan.title,
            executor=plan.executor,
            replace_existing=True,
        )
        outcome[plan.name] = "replaced" if job is not None else "added"
    planned = {p.job_id for p in plans}
    for job_id in stored:
        if job_id.startswith(JOB_PREFIX) and job_id not in planned:
            scheduler.remove_job(job_id)
            outcome[job_id.removeprefix(JOB_PREFIX)] = "removed"
    return outcome


def serve(
    app: App,
    stop: threading.Event,
    db_url: str | None = None,
    started: Callable[[BackgroundScheduler], None] | None = None,
    backfill: bool = False,
) -> None:
    """Run the schedule until ``stop`` is set, then wait for running jobs and stop cleanly.

    Only the holder of the leader lock runs it: a second ``schedule run`` on the same database says who
    holds it and waits, and takes over when the first stops or its lease runs out.  More pending periods
    than ``[schedule] max_backlog`` stop the start with :class:`BacklogRefused` unless ``backfill``.
    """
    settings = schedule_settings(app.config)  # a bad [schedule] is refused before anything runs
    plans = plan_jobs(settings, app.config.alerts)
    target = resolve_target(app, db_url)
    app.init()
    ensure_tables(app.db)
    lock = LeaderLock(app.db, settings.leader_lease_seconds)
    lock.ensure_table()
    while True:  # a first pass even if ``stop`` is already set: the jobs are stored, nothing waits
        if not wait_for_lead(lock, stop):
            return
        if not _lead(app, stop, settings, plans, target, lock, started, backfill):
            return
        backfill = False
        _log.error("调度权已被另一个进程接管（本进程的租约未能按时续期）；停止本进程的任务，等待重新接管")


def wait_for_lead(lock: LeaderLock, stop: threading.Event) -> bool:
    """Take the leader lock, waiting (and saying so, once) while another scheduler holds it; False if stopped."""
    holder = lock.acquire()
    if holder is None:
        return True
    _log.warning(
        "另一个调度进程 %s 正在本数据库上运行；本进程等待，待其停止或租约到期后接管 "
        "(another scheduler holds this database; waiting to take over)",
        holder.describe(),
    )
    while not stop.wait(min(1.0, lock.lease / 3)):
        try:
            if lock.acquire() is None:
                _log.info("已接管调度（前一个调度进程已停止或租约到期）")
                return True
        except SQLAlchemyError:
            _log.exception("无法读取调度锁，稍后重试")
    return False


class _Lease:
    """Renews the leader lock from the main thread every third of the lease; False once it is lost."""

    def __init__(self, lock: LeaderLock) -> None:
        self.lock = lock
        self.renewed = time.monotonic()

    def keep(self) -> bool:
        now = time.monotonic()
        if now - self.renewed < self.lock.lease / 3:
            return True
        try:
            if not self.lock.renew():
                return False
            self.renewed = now
        except SQLAlchemyError:
            _log.exception("调度锁续期失败，稍后重试")
            return now - self.renewed < self.lock.lease
        return True


def _lead(
    app: App,
    stop: threading.Event,
    settings: ScheduleConfig,
    plans: list[JobPlan],
    target: Target,
    lock: LeaderLock,
    started: Callable[[BackgroundScheduler], None] | None,
    backfill: bool,
) -> bool:
    """Run the schedule as leader until ``stop`` (False) or the lock is lost (True)."""
    lease = _Lease(lock)
    lost = False
    scheduler: BackgroundScheduler | None = None
    try:
        if settings.periods.enabled:
            if backfill:  # before any thread starts; in a clean child, the lease kept meanwhile
                _log.info("补判开始（每个通道只发送一条汇总告警）")
                held = True

                def tick() -> bool:
                    nonlocal held
                    held = held and lease.keep()
                    return held and not stop.is_set()

                try:
                    result = run_isolated(
                        run_named,
                        "periods", target.db_url, target.config_path, backfill=True, tick=tick
                    )
                except ScheduleJobError:
                    if stop.is_set() or not held:
                        _log.warning("补判被中断；已判定的期间已记录，其余的在下次 --backfill 时判定")
                        lost = not held
                        return lost
                    raise
                _log.info("补判完成：%s", result)
            else:
                pending = period_outlook(app, dt.datetime.now(dt.UTC)).pending
                check_backlog([parse_period(p) for p, _ in pending], settings.max_backlog, backfill=False)
        scheduler = build_scheduler(app.db, settings)
        scheduler.start(paused=True)
        outcome = sync_jobs(scheduler, plans, target)
        if settings.periods.enabled:  # catch up every period missed while the scheduler was down
            scheduler.modify_job(JOB_PREFIX + "periods", next_run_time=dt.datetime.now(settings.zone()))
        scheduler.resume()
        for job in scheduler.get_jobs():
            _log.info(
                "任务 %s（%s）下次运行 %s",
                job.id,
                outcome.get(job.id.removeprefix(JOB_PREFIX)),
                job.next_run_time,
            )
        _log.info("调度已启动（时区 %s，调度锁 %s）", settings.zone(), lock.owner)
        if started is not None:
            started(scheduler)
        while not stop.wait(0.5):
            if not lease.keep():
                lost = True
                break
    finally:
        if stop_children():
            _log.info("正在中断运行中的检查（下次运行将重做）")
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        if not lost:
            try:
                lock.release()
            except SQLAlchemyError:
                _log.exception("无法释放调度锁（租约到期后自动释放）")
        _log.info("调度已停止")
    return lost


@dataclass
class OnceReport:
    results: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def run_once(
    app: App, now: dt.datetime | None = None, check: CheckFn = scheduled_check, backfill: bool = False
) -> OnceReport:
    """Run every enabled job once, in order (periods, daily, escalate, digest, dispatch); report each outcome.

    A failing job is logged and the next still runs, so alerts enqueued by
    the others are still delivered.
    """
    settings = schedule_settings(app.config)
    app.init()
    ensure_tables(app.db)
    lock = LeaderLock(app.db, settings.leader_lease_seconds)
    lock.ensure_table()
    holder = lock.acquire()
    if holder is not None:
        raise ScheduleBusy(holder)
    moment = now or dt.datetime.now(dt.UTC)
    report = OnceReport()
    try:
        for plan in plan_jobs(settings, app.config.alerts):
            try:
                report.results[plan.name] = run_named(
                    app, plan.name, moment, check, dispatch_batches=100, backfill=backfill
                )
            except BacklogRefused as exc:
                _log.error("%s", exc)
                report.failures[plan.name] = str(exc)
            except Exception as exc:
                _log.exception("任务 %s 失败", plan.name)
                report.failures[plan.name] = f"{type(exc).__name__}: {exc}"
            lock.renew()
    finally:
        lock.release()
    return report


class ScheduleBusy(PartyrulesError):
    """Another ``schedule run`` holds this database's leader lock."""

    def __init__(self, holder: Holder) -> None:
        self.holder = holder
        super().__init__(
            f"另一个调度进程 {holder.describe()} 正在本数据库上运行，本次 --once 未执行 "
            "(another scheduler is running on this database)"
        )


@dataclass(frozen=True)
class JobInfo:
    name: str
    title: str
    trigger: str
    next_run: dt.datetime | None
    stored: bool  # False: never started on this database; ``next_run`` is what the config gives


def list_jobs(app: App, now: dt.datetime | None = None) -> list[JobInfo]:
    """The enabled jobs with their next run: as stored by the running schedule, else from the config."""
    settings = schedule_settings(app.config)
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(settings.zone())
    scheduler = build_scheduler(app.db, settings)
    scheduler.start(paused=True)
    try:
        stored = {job.id: job for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
    out = []
    for plan in plan_jobs(settings, app.config.alerts):
        job = stored.get(plan.job_id)
        if job is not None:
            out.append(JobInfo(plan.name, plan.title, str(job.trigger), job.next_run_time, True))
        else:
            fire = plan.trigger.get_next_fire_time(None, moment)
            out.append(JobInfo(plan.name, plan.title, str(plan.trigger), fire, False))
    return out
