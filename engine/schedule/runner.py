"""Running the schedule: APScheduler 3 with its job store in the project database.

:func:`serve` is what ``partyrules schedule run`` does in the foreground: it
validates ``[schedule]`` (a bad cron stops it here), brings the stored jobs in
line with the config, judges at once every period missed while it was down,
and runs until ``stop`` is set.  A stored job whose time passed while the
scheduler was down runs once on start (``coalesce``) if it is late by less
than ``misfire_grace_seconds``.  :func:`run_once` runs every enabled job once,
in order, without the job store.

One ``schedule run`` per database: APScheduler 3 does not share a job store
between schedulers.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from engine.alerts.config import AlertsConfig
from engine.app import App
from engine.schedule.config import ScheduleConfig, cron_trigger, schedule_settings
from engine.schedule.jobs import JOB_NAMES, CheckFn, run_job, run_named, scheduled_check
from engine.schedule.state import ensure_tables
from facts.db import database_url

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


def install_stop_signals(stop: threading.Event) -> Callable[[], None]:
    """Set ``stop`` on SIGTERM and SIGINT (main thread only); returns a function restoring the old handlers."""

    def _handler(signum: int, _frame: FrameType | None) -> None:
        _log.info("收到信号 %s，等待正在运行的任务结束后退出", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, _handler) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def serve(
    app: App,
    stop: threading.Event,
    db_url: str | None = None,
    started: Callable[[BackgroundScheduler], None] | None = None,
) -> None:
    """Run the schedule until ``stop`` is set, then wait for running jobs and stop cleanly."""
    settings = schedule_settings(app.config)  # a bad [schedule] is refused before anything runs
    plans = plan_jobs(settings, app.config.alerts)
    target = resolve_target(app, db_url)
    app.init()
    ensure_tables(app.db)
    scheduler = build_scheduler(app.db, settings)
    scheduler.start(paused=True)
    try:
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
        _log.info("调度已启动（时区 %s）", settings.zone())
        if started is not None:
            started(scheduler)
        while not stop.wait(0.5):
            pass
    finally:
        scheduler.shutdown(wait=True)
        _log.info("调度已停止")


@dataclass
class OnceReport:
    results: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def run_once(app: App, now: dt.datetime | None = None, check: CheckFn = scheduled_check) -> OnceReport:
    """Run every enabled job once, in order (periods, daily, escalate, digest, dispatch); report each outcome.

    A failing job is logged and the next still runs, so alerts enqueued by
    the others are still delivered.
    """
    settings = schedule_settings(app.config)
    app.init()
    ensure_tables(app.db)
    moment = now or dt.datetime.now(dt.UTC)
    report = OnceReport()
    for plan in plan_jobs(settings, app.config.alerts):
        try:
            report.results[plan.name] = run_named(app, plan.name, moment, check, dispatch_batches=100)
        except Exception as exc:
            _log.exception("任务 %s 失败", plan.name)
            report.failures[plan.name] = f"{type(exc).__name__}: {exc}"
    return report


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
