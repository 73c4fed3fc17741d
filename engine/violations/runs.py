"""Check runs and their owners: who runs a ``check_run``, and which runs were abandoned.

A run is ``running`` while its process works; that process is recorded (host, pid and the pid's start
time) with a heartbeat it renews while its workers run.  A later ``check`` (or ``partyrules runs``)
marks a run ``abandoned`` when its process is gone: on this host the pid no longer exists (or now
belongs to another process); on another host, when its heartbeat is older than ``stale_after``.  An
abandoned run is alerted like a failed one (a check that did not finish is itself an alert).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from engine.alerts.config import AlertsConfig
from engine.alerts.outbox import enqueue, run_failed_alert
from engine.matching.lifeline import ProcessIdentity, is_alive, process_identity
from engine.violations.tables import CheckRun, CheckRunOwner

_log = logging.getLogger(__name__)
_RUN = CheckRun.__table__  # type: ignore[attr-defined]
_OWNER = CheckRunOwner.__table__  # type: ignore[attr-defined]
STALE_AFTER = dt.timedelta(hours=1)  # a run on another host silent this long is taken as dead


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def record_owner(conn: sa.Connection, run_id: int, now: dt.datetime) -> None:
    me = process_identity()
    conn.execute(
        sa.insert(_OWNER).values(
            run_id=run_id, host=me.host[:255], pid=me.pid, pid_started=me.started, heartbeat_at=now
        )
    )


def beat(db: sa.Engine, run_id: int) -> None:
    """Renew ``run_id``'s heartbeat (called while its workers run)."""
    with db.begin() as conn:
        conn.execute(
            sa.update(_OWNER).where(_OWNER.c.run_id == run_id).values(heartbeat_at=dt.datetime.now(dt.UTC))
        )


@dataclass(frozen=True)
class Abandoned:
    run_id: int
    period: str
    owner: str  # host:pid
    reason: str


def find_abandoned(
    db: sa.Engine, now: dt.datetime, stale_after: dt.timedelta = STALE_AFTER
) -> list[Abandoned]:
    """Runs still marked ``running`` whose process is gone (reads only)."""
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(
                _RUN.c.id,
                _RUN.c.period,
                _OWNER.c.host,
                _OWNER.c.pid,
                _OWNER.c.pid_started,
                _OWNER.c.heartbeat_at,
            )
            .join(_OWNER, _OWNER.c.run_id == _RUN.c.id)
            .where(_RUN.c.status == "running")
            .order_by(_RUN.c.id)
        ).all()
    out = []
    for run_id, period, host, pid, started, heartbeat in rows:
        owner = ProcessIdentity(host, pid, started or "")
        alive = is_alive(owner)
        if alive is False:
            reason = f"进程 {host}:{pid} 已不存在（被终止或崩溃），检查未完成"
        elif alive is None and now - _utc(heartbeat) > stale_after:
            reason = (
                f"进程 {host}:{pid} 自 {_utc(heartbeat).isoformat(timespec='seconds')} 起无心跳，检查未完成"
            )
        else:
            continue
        out.append(Abandoned(run_id, period, f"{host}:{pid}", reason))
    return out


def reap_abandoned(
    db: sa.Engine,
    alerts: AlertsConfig,
    now: dt.datetime | None = None,
    stale_after: dt.timedelta = STALE_AFTER,
) -> list[Abandoned]:
    """Mark every abandoned run ``abandoned`` and alert it; each run is marked (and alerted) once."""
    now = now or dt.datetime.now(dt.UTC)
    found = find_abandoned(db, now, stale_after)
    marked = []
    for run in found:
        with Session(db) as session:
            done = session.execute(
                sa.update(_RUN)
                .where(_RUN.c.id == run.run_id, _RUN.c.status == "running")
                .values(status="abandoned", finished_at=now, error=f"abandoned: {run.reason}")
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                continue  # another process marked it first
            enqueue(session, run_failed_alert(f"check#{run.run_id}", f"abandoned: {run.reason}", now), alerts)
            session.commit()
        _log.warning("检查运行 #%s（%s）已放弃：%s", run.run_id, run.period, run.reason)
        marked.append(run)
    return marked


@dataclass(frozen=True)
class RunRow:
    id: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    period: str
    as_of: dt.date
    trigger: str
    status: str
    findings: int
    new: int
    resolved: int
    owner: str | None
    error: str | None


def list_runs(db: sa.Engine, status: str | None = None, limit: int = 20) -> list[RunRow]:
    """The latest check runs, newest first, with the process that ran each."""
    query = (
        sa.select(_RUN, _OWNER.c.host, _OWNER.c.pid)
        .outerjoin(_OWNER, _OWNER.c.run_id == _RUN.c.id)
        .order_by(_RUN.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(_RUN.c.status == status)
    with db.connect() as conn:
        rows = conn.execute(query).all()
    return [
        RunRow(
            r.id,
            r.started_at,
            r.finished_at,
            r.period,
            r.as_of,
            r.trigger,
            r.status,
            r.findings,
            r.new,
            r.resolved,
            f"{r.host}:{r.pid}" if r.host else None,
            r.error,
        )
        for r in rows
    ]
