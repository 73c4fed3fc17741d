"""Looking after the outbox by hand: list deliveries, put quarantined ones back, purge old ones.

Statuses of an ``alert_delivery``: ``pending`` (not delivered yet; ``failed`` is a pending one that was
tried and waits for its retry), ``delivered``, ``quarantined`` (a dead letter: it failed
permanently, or ``[alerts.dispatcher] max_attempts`` times for a reason of its own — a bad header, a
rejected body — and is no longer tried, so it blocks nothing; ``alerts retry ID`` puts it back).
A quarantined row's ``next_attempt_at`` is the moment it was quarantined.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from engine.alerts.outbox import AlertDelivery, AlertOutbox, as_utc

_D = AlertDelivery.__table__  # type: ignore[attr-defined]
_O = AlertOutbox.__table__  # type: ignore[attr-defined]
LISTED_STATUSES = ("pending", "failed", "quarantined", "delivered")


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    outbox_id: int
    channel: str
    status: str  # pending | failed | quarantined | delivered
    attempts: int
    next_attempt_at: dt.datetime
    delivered_at: dt.datetime | None
    last_error: str | None
    kind: str
    title: str
    created_at: dt.datetime


def _status_filter(status: str) -> sa.ColumnElement[bool]:
    if status == "failed":
        return sa.and_(_D.c.status == "pending", _D.c.attempts > 0)
    if status == "pending":
        return _D.c.status == "pending"
    return _D.c.status == status


def list_deliveries(
    db: sa.Engine, status: str | None = None, channel: str | None = None, limit: int = 100
) -> list[DeliveryRow]:
    """Deliveries, newest first; ``status`` one of :data:`LISTED_STATUSES` (``pending`` includes ``failed``)."""
    query = (
        sa.select(_D, _O.c.kind, _O.c.title, _O.c.created_at)
        .join(_O, _O.c.id == _D.c.outbox_id)
        .order_by(_D.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        if status not in LISTED_STATUSES:
            raise ValueError(f"status must be one of {LISTED_STATUSES}")
        query = query.where(_status_filter(status))
    if channel is not None:
        query = query.where(_D.c.channel == channel)
    with db.connect() as conn:
        rows = conn.execute(query).all()
    return [
        DeliveryRow(
            r.id,
            r.outbox_id,
            r.channel,
            "failed" if r.status == "pending" and r.attempts > 0 else r.status,
            r.attempts,
            r.next_attempt_at,
            r.delivered_at,
            r.last_error,
            r.kind,
            r.title,
            r.created_at,
        )
        for r in rows
    ]


@dataclass
class RetryReport:
    reset: list[int]  # put back to pending, due now
    delivered: list[int]  # already delivered: left alone
    unknown: list[int]


def retry(db: sa.Engine, ids: Sequence[int], now: dt.datetime | None = None) -> RetryReport:
    """Make deliveries ``ids`` (quarantined or waiting for a retry) due now with a fresh attempt count."""
    now = as_utc(now or dt.datetime.now(dt.UTC))
    with db.begin() as conn:
        rows = conn.execute(sa.select(_D.c.id, _D.c.status).where(_D.c.id.in_(list(ids)))).all()
        found: dict[int, str] = {int(i): str(status) for i, status in rows}
        again = [i for i in ids if found.get(i) in ("pending", "quarantined")]
        if again:
            conn.execute(
                sa.update(_D)
                .where(_D.c.id.in_(again))
                .values(
                    status="pending", attempts=0, next_attempt_at=now, claimed_by=None, claimed_until=None
                )
            )
    return RetryReport(
        again, [i for i in ids if found.get(i) == "delivered"], [i for i in ids if i not in found]
    )


@dataclass(frozen=True)
class PurgeReport:
    delivered: int
    quarantined: int
    alerts: int  # outbox rows left without any delivery, created before the date
    dry_run: bool


def purge(db: sa.Engine, before: dt.datetime, dry_run: bool = False) -> PurgeReport:
    """Delete delivered and quarantined deliveries older than ``before``, then the alerts left without any.

    Pending deliveries are never purged.  With ``dry_run`` only counts.
    """
    before = as_utc(before)
    delivered = sa.and_(_D.c.status == "delivered", _D.c.delivered_at < before)
    quarantined = sa.and_(_D.c.status == "quarantined", _D.c.next_attempt_at < before)
    orphan = sa.and_(
        _O.c.created_at < before,
        ~sa.exists().where(_D.c.outbox_id == _O.c.id, sa.not_(sa.or_(delivered, quarantined))),
    )
    count = sa.select(sa.func.count())
    with db.begin() as conn:
        n_delivered = conn.execute(count.select_from(_D).where(delivered)).scalar_one()
        n_quarantined = conn.execute(count.select_from(_D).where(quarantined)).scalar_one()
        n_alerts = conn.execute(count.select_from(_O).where(orphan)).scalar_one()
        if not dry_run:
            conn.execute(sa.delete(_D).where(sa.or_(delivered, quarantined)))
            conn.execute(
                sa.delete(_O).where(_O.c.created_at < before, ~sa.exists().where(_D.c.outbox_id == _O.c.id))
            )
    return PurgeReport(int(n_delivered), int(n_quarantined), int(n_alerts), dry_run)
