"""The scheduled jobs: library functions over an ``App``, and :func:`run_job`, what APScheduler stores.

* :func:`check_closed_periods` judges every month, quarter and year that has
  closed plus the grace since the schedule's first day and was not judged yet;
  a period is marked done only once its run finished, so a killed run is
  repeated and, the check being idempotent, reports nothing twice.
* :func:`daily_as_of` re-judges, as of today, the rules whose outcome moves
  with the as-of date: deadlines (a letter due by 30 April), terms of office,
  petitions still open.
* Both read the configured pack at each run through
  :func:`engine.pack.rollout.choose_pack`: an invalid or held pack is not
  used, the last good one keeps running, and the reason is alerted.
* :func:`escalate_job`, :func:`digest_job`, :func:`dispatch_job` wrap the
  workflow's escalation, the daily digest and the alert dispatcher.

APScheduler's SQLAlchemy job store pickles a job's function by reference and
its arguments by value, so the stored job is ``run_job(name, db_url,
config_path)``: plain data, and the app is built afresh for every run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import Session

from engine.alerts.digest import enqueue_digests
from engine.alerts.dispatcher import Dispatcher, DispatchReport
from engine.alerts.outbox import Alert
from engine.app import App, build_app
from engine.check import run_check
from engine.pack.load import CompiledRule, Pack
from engine.pack.model import TermOverdue
from engine.pack.rollout import choose_pack
from engine.periods import Granularity, Period, period_of, shift
from engine.schedule.backfill import check_backlog, enqueue_summaries
from engine.schedule.config import schedule_settings
from engine.schedule.errors import ScheduleJobError
from engine.schedule.state import done_periods as _done
from engine.schedule.state import ensure_tables, epoch, mark_done, read_epoch
from engine.violations.packs import remember_pack
from engine.violations.workflow import Change, escalate

_log = logging.getLogger(__name__)

# (app, period range, as_of, pack chosen by engine.pack.rollout, or None for that choice) -> the run's id
CheckFn = Callable[[App, str, dt.date, Pack | None], int | None]
AS_OF_SUBJECTS = ("petition",)  # fact subjects whose fields are counted up to the as-of date
JOB_NAMES = ("periods", "daily", "escalate", "digest", "dispatch")


def scheduled_check(
    app: App, period: str, as_of: dt.date, pack: Pack | None = None, alert_sink: list[Alert] | None = None
) -> int | None:
    """The real check, recorded with ``trigger="schedule"`` (a failed run is recorded and alerted by it)."""
    return run_check(app, period, as_of, trigger="schedule", pack=pack, alert_sink=alert_sink).run_id


def local_today(app: App, now: dt.datetime) -> dt.date:
    """``now`` as a date in the schedule's time zone."""
    return now.astimezone(schedule_settings(app.config).zone()).date()


# -- period checks ----------------------------------------------------------------------


def due_date(period: Period, grace_days: int) -> dt.date:
    """The first day ``period`` may be judged: the day after its end plus the grace."""
    return period.end + dt.timedelta(days=grace_days + 1)


def due_periods(
    since: dt.date, today: dt.date, grace_days: int, granularities: list[Granularity]
) -> list[tuple[Period, dt.date]]:
    """Every ``(period, due)`` of those granularities falling due on a day in ``[since, today]``."""
    out = []
    for g in granularities:
        p = period_of(since - dt.timedelta(days=grace_days + 1), g)
        while (due := due_date(p, grace_days)) <= today:
            if due >= since:
                out.append((p, due))
            p = shift(p, 1)
    return sorted(out, key=lambda pd: (pd[1], pd[0].start, pd[0].end))


def _covers(outer: Period, inner: Period) -> bool:
    return outer != inner and outer.start <= inner.start and inner.end <= outer.end


def group_by_widest(
    pending: list[tuple[Period, dt.date]],
) -> list[tuple[Period, list[tuple[Period, dt.date]]]]:
    """Pending periods grouped under the widest pending period containing them (a check of 2017-Q2 judges its months)."""
    widest = [p for p, _ in pending if not any(_covers(o, p) for o, _ in pending)]
    return [(w, [pd for pd in pending if pd[0] == w or _covers(w, pd[0])]) for w in widest]


@dataclass(frozen=True)
class PeriodOutlook:
    pending: list[tuple[str, dt.date]]  # due and not judged yet: the next periods run judges them
    upcoming: list[tuple[str, dt.date]]  # the next period of each granularity and the day it falls due
    since: dt.date | None  # None: the schedule has not run on this database yet


def period_outlook(app: App, now: dt.datetime) -> PeriodOutlook:
    """What the periods job will judge next, without changing anything."""
    settings = schedule_settings(app.config)
    today = now.astimezone(settings.zone()).date()
    grace = app.config.check.grace_days
    granularities = list(settings.periods.granularities)
    since = settings.since or read_epoch(app.db)
    pending: list[tuple[str, dt.date]] = []
    if since is not None:
        due = due_periods(since, today, grace, granularities)
        done = _done(app.db, [p.label for p, _ in due])
        pending = [(p.label, d) for p, d in due if p.label not in done]
    upcoming = []
    for g in granularities:
        p = period_of(today - dt.timedelta(days=grace + 1), g)
        while due_date(p, grace) <= today:
            p = shift(p, 1)
        upcoming.append((p.label, due_date(p, grace)))
    return PeriodOutlook(pending, upcoming, since)


@dataclass
class PeriodsReport:
    checked: dict[str, int | None] = field(default_factory=dict)  # period run -> check run id
    marked: list[str] = field(default_factory=list)  # every period now recorded as judged


def check_closed_periods(
    app: App, now: dt.datetime, check: CheckFn = scheduled_check, backfill: bool = False
) -> PeriodsReport:
    """Judge each period due since the schedule's first day (or ``[schedule] since``) and not judged yet.

    A failing period is logged and the others still run; the job then raises
    :class:`ScheduleJobError` naming what failed, and the next run retries it.  More pending periods
    than ``[schedule] max_backlog`` raise :class:`BacklogRefused` unless ``backfill``; a backfill sends
    one summary alert per channel instead of one per new violation.
    """
    settings = schedule_settings(app.config)
    today = now.astimezone(settings.zone()).date()
    ensure_tables(app.db)
    since = settings.since or epoch(app.db, today)
    grace = app.config.check.grace_days
    due = due_periods(since, today, grace, list(settings.periods.granularities))
    done = _done(app.db, [p.label for p, _ in due])
    pending = [pd for pd in due if pd[0].label not in done]
    report = PeriodsReport()
    if not pending:
        return report
    check_backlog([p for p, _ in pending], settings.max_backlog, backfill)
    collected: list[Alert] = []
    if backfill and check is scheduled_check:
        check = functools.partial(scheduled_check, alert_sink=collected)
    try:
        return _judge_pending(app, now, today, pending, check, report)
    finally:
        if collected:
            with Session(app.db) as session:
                judged = [p.label for p, _ in sorted(pending, key=lambda pd: (pd[0].start, pd[0].end))]
                judged = [label for label in judged if label in report.marked] or judged
                ids = enqueue_summaries(session, collected, app.config.alerts, judged, now)
                session.commit()
            _log.info("补判：%d 项新增违规，汇总告警 %s", len(collected), ids)


def _judge_pending(
    app: App,
    now: dt.datetime,
    today: dt.date,
    pending: list[tuple[Period, dt.date]],
    check: CheckFn,
    report: PeriodsReport,
) -> PeriodsReport:
    try:
        pack = choose_pack(app, now).pack
    except Exception as exc:
        _log.exception("无法确定本次使用的规则包，期间检查未进行，下次运行将重试")
        raise ScheduleJobError("periods", [f"规则包: {type(exc).__name__}: {exc}"]) from exc
    failures: list[str] = []
    first_error: Exception | None = None
    for widest, group in group_by_widest(pending):
        label = widest.label
        try:
            run_id = check(app, label, today, pack)
        except Exception as exc:
            _log.exception("期间检查 %s 失败，下次运行将重试", label)
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
            first_error = first_error or exc
            continue
        mark_done(app.db, group, today, run_id, now)
        report.checked[label] = run_id
        report.marked.extend(p.label for p, _ in group)
        _log.info("期间检查 %s 完成（检查运行 #%s，判定日 %s）", label, run_id, today)
    if failures:
        raise ScheduleJobError("periods", failures) from first_error
    return report


# -- the daily as-of run ----------------------------------------------------------------


def as_of_rules(pack: Pack) -> list[CompiledRule]:
    """Rules whose outcome moves with the as-of date: a deadline, a term of office, an open petition."""
    return [
        r
        for r in pack.rules
        if r.rule.deadline
        or any(isinstance(d, TermOverdue) for d in r.rule.derive.values())
        or r.rule.subject.type in AS_OF_SUBJECTS
    ]


def daily_range(today: dt.date, years_back: int) -> str:
    return f"{today.year - years_back}..{today.year}"


def daily_as_of(app: App, today: dt.date, check: CheckFn = scheduled_check) -> int | None:
    """Re-judge the as-of rules over this year (and ``years_back`` before it) as of ``today``."""
    settings = schedule_settings(app.config)
    pack = choose_pack(app).pack
    rules = as_of_rules(pack)
    if not rules:
        _log.info("每日判定：规则包中没有按判定日计算的规则")
        return None
    remember_pack(app.db, pack)  # the run records the whole pack's hash: keep its full text
    rng = daily_range(today, settings.daily.years_back)
    run_id = check(app, rng, today, dataclasses.replace(pack, rules=rules))
    _log.info("每日判定 %s 完成（%d 条规则，检查运行 #%s）", rng, len(rules), run_id)
    return run_id


# -- escalation, digest, dispatch -------------------------------------------------------


def escalate_job(app: App, today: dt.date) -> list[Change]:
    changes = escalate(app.violations, today, schedule_settings(app.config).escalate.unack_days)
    _log.info("逾期升级：%d 项变更", len(changes))
    return changes


def digest_job(app: App, today: dt.date) -> dict[str, int | None]:
    """Enqueue today's digest for every digest channel (repeating it adds nothing)."""
    with Session(app.db) as session:
        result = enqueue_digests(session, app.config.alerts, today)
        session.commit()
    _log.info("每日汇总 %s：%s", today, result or "没有设置 digest = true 的通道")
    return result


def dispatch_job(app: App, max_batches: int = 1) -> DispatchReport:
    """Deliver due alerts: up to ``max_batches`` batches, stopping early once a batch is not full."""
    dispatcher = Dispatcher(app.db, app.config.alerts)
    total = DispatchReport()
    for _ in range(max_batches):
        report = dispatcher.run_once()
        for name in ("claimed", "delivered", "failed", "deferred", "quarantined", "lease_lost"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        total.errors.extend(report.errors)
        if report.claimed < app.config.alerts.dispatcher.batch_size:
            break
    if total.claimed:
        _log.info(
            "告警投递：送达 %d，失败 %d，推迟 %d，隔离 %d",
            total.delivered,
            total.failed,
            total.deferred,
            total.quarantined,
        )
    return total


def run_named(
    app: App,
    name: str,
    now: dt.datetime,
    check: CheckFn = scheduled_check,
    dispatch_batches: int = 1,
    backfill: bool = False,
) -> object:
    """Run one job by name against ``app`` at ``now`` (``backfill``: see :func:`check_closed_periods`)."""
    today = local_today(app, now)
    if name == "periods":
        return check_closed_periods(app, now, check, backfill)
    if name == "daily":
        return daily_as_of(app, today, check)
    if name == "escalate":
        return escalate_job(app, today)
    if name == "digest":
        return digest_job(app, today)
    if name == "dispatch":
        return dispatch_job(app, dispatch_batches)
    raise ScheduleJobError(name, [f"未知的任务（可用：{', '.join(JOB_NAMES)}）"])


def restore_password(stored: str | None, config_path: str | None, environ: dict[str, str] | None = None) -> str | None:
    """The stored URL (kept without its password) with the password of the same URL from
    ``PARTYRULES_DB`` or the config file; unchanged if neither names it (libpq may still find
    one in ``PGPASSWORD`` or ``~/.pgpass``)."""
    import os

    import sqlalchemy as sa

    from engine.config import load_config
    from facts.db import database_url

    if stored is None or sa.make_url(stored).password is not None:
        return stored
    env = os.environ if environ is None else environ
    candidates = [env.get("PARTYRULES_DB"), load_config(config_path).database if config_path else None]
    for candidate in candidates:
        if not candidate:
            continue
        url = sa.make_url(database_url(candidate))
        if url.password is not None and url._replace(password=None).render_as_string(hide_password=False) == stored:
            return url.render_as_string(hide_password=False)
    return stored


ISOLATED_JOBS = ("periods", "daily")  # checks: they fork workers, so they run in a clean child process


def run_job(name: str, db_url: str | None, config_path: str | None) -> None:
    """What the job store keeps: build the app from plain data, run job ``name`` now, release the database.

    A check job runs in a spawned child (:mod:`engine.schedule.isolate`): the scheduler is threaded and
    must never fork.
    """
    url = restore_password(db_url, config_path)
    if name in ISOLATED_JOBS:
        from engine.schedule.isolate import run_isolated

        run_isolated(run_named, name, url, config_path)
        return
    app = build_app(url, config_path)
    try:
        run_named(app, name, dt.datetime.now(dt.UTC))
    finally:
        app.db.dispose()
