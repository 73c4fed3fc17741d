"""Storing findings as violations: upsert by (rule, subject, period), auto-resolve, alert.

Re-running a check never double-reports: a finding updates its violation's
``last_seen``.  A stored active violation inside the judged scope that a run
no longer finds is resolved automatically, with the reason.  A new (or
recurring) violation and its alert are written in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from engine.alerts.config import AlertsConfig
from engine.alerts.outbox import Alert, enqueue, enqueue_bulk
from engine.bulk_rows import insert_tuples, update_rows
from engine.finding import Finding, violation_key
from engine.violations.runs import record_owner
from engine.violations.tables import ACTIVE, CheckRun, Violation, ViolationEvent
from facts import collector

_V = Violation.__table__  # type: ignore[attr-defined]
# what deciding new / seen / reopened / resolved reads of a stored violation
_SCOPE_COLUMNS = [
    _V.c.key,
    _V.c.rule,
    _V.c.period,
    _V.c.status,
    _V.c.subject_type,
    _V.c.subject_id,
    _V.c.waiver_expires,
    _V.c.member,
    _V.c.org,
    _V.c.resolution,
]
# a submission's violations by key, prebuilt (compiled once; the keys an expanding parameter)
_BY_KEYS = sa.select(*_SCOPE_COLUMNS).where(_V.c.key.in_(sa.bindparam("keys", expanding=True)))
_E = ViolationEvent.__table__  # type: ignore[attr-defined]
_RUN = CheckRun.__table__  # type: ignore[attr-defined]
SYSTEM = "partyrules"


#: the start of the ``resolution`` of a violation resolved by hand as rectified (已整改): the lapse happened,
#: measures were taken, and a later check that still sees the historical lapse leaves it resolved
RECTIFIED = "人工确认整改完成："
#: the start of the ``resolution`` of one resolved because its record was wrong and has been corrected: a
#: later check that still finds it reopens it (the correction did not remove the finding)
DATA_CORRECTED = "数据已更正："


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Scope:
    """What a run judged: (rule, period) pairs, optionally narrowed to some subjects."""

    pairs: set[tuple[str, str]]
    subjects: set[tuple[str, str, str]] | None = None  # (rule, subject type, subject id)
    # members and orgs a run could not judge (their facts were set aside): their violations stay as they are
    held_members: frozenset[str] = frozenset()
    held_orgs: frozenset[str] = frozenset()
    held: frozenset[tuple[str, str, str]] = frozenset()  # (rule, subject type, id) a run could not judge

    def covers(self, v: Any) -> bool:
        if (v.rule, v.period) not in self.pairs:
            return False
        if (self.held_members or self.held_orgs) and (v.member in self.held_members or v.org in self.held_orgs):
            return False
        if self.held and (v.rule, v.subject_type, v.subject_id) in self.held:
            return False
        return self.subjects is None or (v.rule, v.subject_type, v.subject_id) in self.subjects


@dataclass
class StoreReport:
    new: list[str] = field(default_factory=list)
    recurred: list[str] = field(default_factory=list)
    updated: int = 0
    resolved: list[str] = field(default_factory=list)

    def merge(self, other: StoreReport) -> None:
        """Add what another recording of the same judgement did."""
        self.new += other.new
        self.recurred += other.recurred
        self.updated += other.updated
        self.resolved += other.resolved


def new_alert(f: Finding, now: dt.datetime, occurrence: str = "") -> Alert:
    where = f.org_name or ""
    return Alert(
        kind="new",
        key=f.key,
        occurrence=occurrence,
        severity=f.severity,  # type: ignore[arg-type]
        rule=f.rule,
        org=f.org if f.org_path else None,
        org_path=f.org_path,
        title=f"{where} {f.period} {f.title}".strip(),
        message=f.message,
        payload=f.to_json(),
        created_at=now,
    )


#: a finding's own columns of its violation, in the order of :func:`_row_values`
_VALUES = (
    "rule",
    "rule_version",
    "pack_hash",
    "severity",
    "title",
    "basis",
    "subject_type",
    "subject_id",
    "org",
    "org_name",
    "member",
    "period",
    "message",
    "evidence",
    "org_path",
)
_INSERTED = ("key", "status", "first_seen", "last_seen", "last_run", *_VALUES)
_SEEN = (*_VALUES, "last_seen", "last_run")
_REOPENED = (*_SEEN, "status", "resolved_at", "resolution")
_RESOLVED = ("status", "resolved_at", "resolution")
_EVENT = ("key", "at", "actor", "action", "from_status", "to_status", "note", "run_id")


def _row_values(f: Finding, pack_hash: str) -> tuple[Any, ...]:
    return (
        f.rule,
        f.rule_version,
        pack_hash,
        f.severity,
        f.title,
        f.basis,
        f.subject_type,
        f.subject_id,
        f.org,
        f.org_name,
        f.member,
        f.period,
        f.message,
        f.evidence,
        f.org_path,
    )


class ViolationStore:
    def __init__(self, engine: sa.Engine, alerts: AlertsConfig | None = None) -> None:
        self.engine = engine
        self.alerts = alerts or AlertsConfig()

    # -- runs -------------------------------------------------------------------------------
    def start_run(
        self,
        pack_hash: str,
        pack_root: str,
        period: str,
        as_of: dt.date,
        grace_days: int,
        trigger: str = "cli",
    ) -> int:
        """Record a run as ``running``, owned by this process (see :mod:`engine.violations.runs`)."""
        now = utcnow()
        with self.engine.begin() as conn:
            run_id = int(
                conn.execute(
                    sa.insert(_RUN)
                    .values(
                        started_at=now,
                        pack_hash=pack_hash,
                        pack_root=pack_root,
                        period=period,
                        as_of=as_of,
                        grace_days=grace_days,
                        trigger=trigger,
                        status="running",
                    )
                    .returning(_RUN.c.id)
                ).scalar_one()
            )
            record_owner(conn, run_id, now)
            return run_id

    def finish_run(self, run_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(_RUN).where(_RUN.c.id == run_id).values(finished_at=utcnow(), status="ok", **values)
            )

    def fail_run(self, run_id: int, error: BaseException) -> None:
        """Mark the run failed and alert it (a failed check is itself an alert)."""
        from engine.alerts.outbox import run_failed_alert

        now = utcnow()
        with Session(self.engine) as session:
            session.execute(
                sa.update(_RUN)
                .where(_RUN.c.id == run_id)
                .values(finished_at=now, status="failed", error=f"{type(error).__name__}: {error}")
            )
            enqueue(session, run_failed_alert(f"check#{run_id}", error, now), self.alerts)
            session.commit()

    def stop_run(self, run_id: int, why: BaseException) -> None:
        """Mark the run ``stopped``: interrupted on purpose (Ctrl-C, the scheduler stopping), not alerted."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(_RUN)
                .where(_RUN.c.id == run_id)
                .values(finished_at=utcnow(), status="stopped", error=f"stopped: {type(why).__name__}")
            )

    # -- findings ---------------------------------------------------------------------------
    def record(
        self,
        findings: Sequence[Finding],
        scope: Scope,
        pack_hash: str,
        run_id: int | None,
        actor: str = SYSTEM,
        alert_sink: list[Alert] | None = None,
    ) -> StoreReport:
        """Upsert ``findings``, resolve what ``scope`` judged and no longer finds, enqueue alerts; one transaction.

        With ``alert_sink`` the alerts are appended to it instead of enqueued (a backfill sends one
        summary per channel instead of one alert per violation).

        One read of the scope's stored violations, then every row written in batches of tuples through
        the driver (:mod:`engine.bulk_rows`): no ORM object, no parameter dict a row.
        """
        now = utcnow()
        today = now.date()
        report = StoreReport()
        alerts: list[Alert] = []
        with collector.paused(), Session(self.engine) as session:
            found = {f.key: f for f in findings}
            existing = {v.key: v for v in self._in_scope(session, scope, found)}
            inserts: list[tuple[Any, ...]] = []
            seen: list[tuple[Any, ...]] = []  # _SEEN columns, then the key
            reopened: list[tuple[Any, ...]] = []  # _REOPENED columns, then the key
            resolved: list[tuple[Any, ...]] = []  # _RESOLVED columns, then the key
            events: list[tuple[Any, ...]] = []  # _EVENT columns
            for key, f in found.items():
                old = existing.get(key)
                values = _row_values(f, pack_hash)
                if old is None:
                    inserts.append((key, "open", now, now, run_id, *values))
                    events.append((key, now, actor, "detected", None, "open", f.message, run_id))
                    alerts.append(new_alert(f, now))
                    report.new.append(key)
                    continue
                status = old.status
                report.updated += 1
                if status == "resolved" and (old.resolution or "").startswith(RECTIFIED):
                    # rectified by hand: the historical lapse is still seen, and stays resolved
                    seen.append((*values, now, run_id, key))
                elif status == "resolved" or (
                    status == "waived" and old.waiver_expires is not None and old.waiver_expires < today
                ):
                    why = "复查再次发现" if status == "resolved" else "豁免已到期，复查仍存在"
                    reopened.append((*values, now, run_id, "open", None, None, key))
                    events.append((key, now, actor, "recurred", status, "open", why, run_id))
                    alerts.append(new_alert(f, now, occurrence=f"recurred@{now.isoformat()}"))
                    report.recurred.append(key)
                else:
                    seen.append((*values, now, run_id, key))
            note = f"复查未再发现（检查运行 #{run_id}）：已符合要求" if run_id else "复查未再发现：已符合要求"
            for key, v in existing.items():
                if key in found or v.status not in ACTIVE or not scope.covers(v):
                    continue
                resolved.append(("resolved", now, note, key))
                events.append((key, now, actor, "auto_resolved", v.status, "resolved", note, run_id))
                report.resolved.append(key)
            conn = session.connection()
            insert_tuples(conn, _V, _INSERTED, inserts)
            update_rows(conn, _V, "key", _SEEN, seen)
            update_rows(conn, _V, "key", _REOPENED, reopened)
            update_rows(conn, _V, "key", _RESOLVED, resolved)
            insert_tuples(conn, _E, _EVENT, events)
            if alerts and alert_sink is None:
                enqueue_bulk(session, alerts, self.alerts)
            session.commit()
        if alert_sink is not None:
            alert_sink.extend(alerts)
        return report

    def _in_scope(self, session: Session, scope: Scope, found: dict[str, Finding]) -> Iterable[Any]:
        rules = sorted({r for r, _ in scope.pairs} | {f.rule for f in found.values()})
        periods = sorted({p for _, p in scope.pairs} | {f.period for f in found.values()})
        if not rules:
            return []
        cols = _SCOPE_COLUMNS
        conn = session.connection()  # Core, not the ORM's execution path: plain rows are read
        out: list[Any] = []
        if scope.subjects is not None and len(scope.subjects) <= 500:  # a few submitted facts: ask by key
            keys = sorted(
                set(found) | {violation_key(r, t, s, p) for r, t, s in scope.subjects for p in periods}
            )
            for start in range(0, len(keys), 500):
                out.extend(conn.execute(_BY_KEYS, {"keys": keys[start : start + 500]}).all())
            return [r for r in out if r.key in found or scope.covers(r)]
        for start in range(0, len(rules), 200):
            query = sa.select(*cols).where(
                _V.c.rule.in_(rules[start : start + 200]), _V.c.period.in_(periods)
            )
            out.extend(session.execute(query).all())
        return [r for r in out if r.key in found or scope.covers(r)]

    def mark_retired(self, rule_ids: Sequence[str]) -> int:
        """Flag active violations of rules the pack no longer holds: they stay open until resolved or waived."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(_V)
                .where(_V.c.rule.in_(list(rule_ids)), _V.c.rule_retired.is_(True))
                .values(rule_retired=False)
            )
            result = conn.execute(
                sa.update(_V)
                .where(
                    _V.c.rule.not_in(list(rule_ids)), _V.c.status.in_(ACTIVE), _V.c.rule_retired.is_(False)
                )
                .values(rule_retired=True)
            )
            return int(result.rowcount or 0)

    # -- reading ----------------------------------------------------------------------------
    def list_violations(
        self,
        status: str | None = None,
        rule: str | None = None,
        org: str | None = None,
        period: str | None = None,
    ) -> list[Violation]:
        query = sa.select(Violation)
        if status:
            query = query.where(Violation.status == status)  # type: ignore[arg-type]
        if rule:
            query = query.where(Violation.rule == rule)  # type: ignore[arg-type]
        if org:
            query = query.where(Violation.org == org)  # type: ignore[arg-type]
        if period:
            query = query.where(Violation.period == period)  # type: ignore[arg-type]
        query = query.order_by(Violation.period, Violation.rule, Violation.key)  # type: ignore[arg-type]
        with Session(self.engine) as session:
            return list(session.execute(query).scalars())

    def get(self, key: str) -> tuple[Violation | None, list[ViolationEvent]]:
        with Session(self.engine) as session:
            v = session.get(Violation, key)
            events = list(
                session.execute(
                    sa.select(ViolationEvent).where(ViolationEvent.key == key).order_by(ViolationEvent.id)  # type: ignore[arg-type]
                ).scalars()
            )
            return v, events
