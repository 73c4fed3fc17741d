"""The storing of findings as it was before the bulk path (main at c70014f), kept as the reference the
bulk path is held equal to (tests/test_store_bulk.py): a dict a row, SQLAlchemy's ``executemany`` for the
updates, :func:`engine.alerts.outbox.enqueue_many` (``INSERT … ON CONFLICT DO NOTHING RETURNING``) for the
alerts.  Not used by the engine."""

from __future__ import annotations

from typing import Any
from unittest import mock

import sqlalchemy as sa
from sqlmodel import Session

from engine.alerts import outbox
from engine.alerts.outbox import Alert, as_utc, enqueue_many
from engine.finding import Finding
from engine.violations import store
from engine.violations.store import RECTIFIED, Scope, StoreReport, ViolationStore, new_alert
from engine.violations.tables import ACTIVE
from facts.projection import insert_rows

_V = store._V
_E = store._E


def _insert_dicts(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    given = tuple(rows[0])
    defaults = {
        c.name: c.default.arg  # type: ignore[attr-defined]
        for c in table.columns
        if c.name not in given and c.default is not None and getattr(c.default, "is_scalar", False)
    }
    columns = (*given, *defaults)
    tail = tuple(defaults.values())
    insert_rows(conn, table, columns, [(*(r[c] for c in given), *tail) for r in rows])


def _row_values(f: Finding, pack_hash: str) -> dict[str, Any]:
    return dict(
        rule=f.rule,
        rule_version=f.rule_version,
        pack_hash=pack_hash,
        severity=f.severity,
        title=f.title,
        basis=f.basis,
        subject_type=f.subject_type,
        subject_id=f.subject_id,
        org=f.org,
        org_name=f.org_name,
        member=f.member,
        period=f.period,
        message=f.message,
        evidence=f.evidence,
        org_path=f.org_path,
    )


def _event(key, at, actor, action, src, dst, note, run):  # type: ignore[no-untyped-def]
    return dict(
        key=key, at=at, actor=actor, action=action, from_status=src, to_status=dst, note=note, run_id=run
    )


def _outbox_values(alert: Alert) -> dict[str, Any]:
    values = alert.model_dump(mode="json")
    values["org_path"] = alert.subject_path
    values["created_at"] = as_utc(alert.created_at)
    values["dedup"] = alert.dedup
    return values


def record(
    vs: ViolationStore,
    findings: list[Finding],
    scope: Scope,
    pack_hash: str,
    run_id: int | None,
    actor: str = store.SYSTEM,
    alert_sink: list[Alert] | None = None,
) -> StoreReport:
    """``ViolationStore.record`` of c70014f, line for line."""
    now = store.utcnow()
    today = now.date()
    report = StoreReport()
    found = {f.key: f for f in findings}
    with Session(vs.engine) as session:
        existing = {v.key: v for v in vs._in_scope(session, scope, found)}
        inserts, updates, events = [], [], []
        alerts: list[Alert] = []
        for key, f in found.items():
            old = existing.get(key)
            values = _row_values(f, pack_hash)
            if old is None:
                inserts.append(
                    dict(key=key, status="open", first_seen=now, last_seen=now, last_run=run_id, **values)
                )
                events.append(_event(key, now, actor, "detected", None, "open", f.message, run_id))
                alerts.append(new_alert(f, now))
                report.new.append(key)
                continue
            status = old.status
            extra: dict[str, Any] = {}
            if status == "resolved" and (old.resolution or "").startswith(RECTIFIED):
                updates.append(dict(b_key=key, last_seen=now, last_run=run_id, **values))
                report.updated += 1
                continue
            if status == "resolved" or (
                status == "waived" and old.waiver_expires is not None and old.waiver_expires < today
            ):
                why = "复查再次发现" if status == "resolved" else "豁免已到期，复查仍存在"
                extra = dict(status="open", resolved_at=None, resolution=None)
                events.append(_event(key, now, actor, "recurred", status, "open", why, run_id))
                alerts.append(new_alert(f, now, occurrence=f"recurred@{now.isoformat()}"))
                report.recurred.append(key)
            updates.append(dict(b_key=key, last_seen=now, last_run=run_id, **values, **extra))
            report.updated += 1
        for key, v in existing.items():
            if key in found or v.status not in ACTIVE or not scope.covers(v):
                continue
            note = f"复查未再发现（检查运行 #{run_id}）：已符合要求" if run_id else "复查未再发现：已符合要求"
            updates.append(dict(b_key=key, status="resolved", resolved_at=now, resolution=note))
            events.append(_event(key, now, actor, "auto_resolved", v.status, "resolved", note, run_id))
            report.resolved.append(key)
        if inserts:
            _insert_dicts(session.connection(), _V, inserts)
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in updates:
            by_columns.setdefault(tuple(sorted(row)), []).append(row)
        for columns, rows in by_columns.items():
            stmt = sa.update(_V).where(_V.c.key == sa.bindparam("b_key"))
            stmt = stmt.values({c: sa.bindparam(f"v_{c}") for c in columns if c != "b_key"})
            params = [{(k if k == "b_key" else f"v_{k}"): v for k, v in row.items()} for row in rows]
            session.connection().execute(stmt, params)
        if events:
            _insert_dicts(session.connection(), _E, events)
        if alerts and alert_sink is None:
            with mock.patch.object(outbox, "_outbox_values", _outbox_values):  # c70014f's
                enqueue_many(session, alerts, vs.alerts)
        session.commit()
    if alert_sink is not None:
        alert_sink.extend(alerts)
    return report
