"""The dispatcher: claims due deliveries, sends them, marks each one, retries failures with backoff.

Claiming is one short transaction: select due rows (``FOR UPDATE SKIP LOCKED``
on PostgreSQL), then a conditional ``UPDATE`` that sets ``claimed_by`` to a
token unique to this batch only where the row is still unclaimed; the rows
carrying the token are this dispatcher's.  The conditional update is what
makes SQLite safe too (its writers are serialised).  A claim is a lease: a
dispatcher killed after claiming leaves rows that any dispatcher takes over
once ``claimed_until`` has passed.  Each outcome is committed on its own right
after the send, so a restart resumes where the last one stopped.

A failure is logged with the channel, the delivery id, the alert id and the reason.  A channel that is
out delays its alerts and loses none (retried for ever with backoff); a delivery that fails for a reason
of its own (a header the server refuses, a body a webhook rejects, a bug) does not stop the others and
is quarantined — a dead letter, ``alerts list --status quarantined``, ``alerts retry ID`` — when the
channel says retrying cannot help or after ``[alerts.dispatcher] max_attempts``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from engine.alerts.channels import Channel, ChannelError, build_channels
from engine.alerts.config import AlertsConfig
from engine.alerts.outbox import AlertDelivery, AlertOutbox, Delivery, as_utc

_log = logging.getLogger(__name__)
_D = AlertDelivery.__table__  # type: ignore[attr-defined]
_O = AlertOutbox.__table__  # type: ignore[attr-defined]
_MAX_ERROR_CHARS = 2000


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class ChannelCounts:
    delivered: int = 0
    failed: int = 0
    deferred: int = 0
    quarantined: int = 0


@dataclass
class DispatchReport:
    """What one :meth:`Dispatcher.run_once` did.

    ``failed`` deliveries will be retried after their backoff; ``deferred``
    ones were not tried because their channel had just failed in this run
    (they wait as long as the failed one); ``lease_lost`` ones were taken over
    by another dispatcher while this one was busy.
    """

    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    deferred: int = 0
    quarantined: int = 0
    lease_lost: int = 0
    by_channel: dict[str, ChannelCounts] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def _count(self, channel: str, outcome: str) -> None:
        counts = self.by_channel.setdefault(channel, ChannelCounts())
        setattr(counts, outcome, getattr(counts, outcome) + 1)
        setattr(self, outcome, getattr(self, outcome) + 1)


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery this dispatcher holds a lease on."""

    delivery_id: int
    attempts: int
    delivery: Delivery


class Dispatcher:
    """Delivers the outbox to channels.  Several may run at once, in threads or processes."""

    def __init__(
        self,
        engine: sa.Engine,
        config: AlertsConfig,
        channels: Mapping[str, Channel] | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        worker_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.settings = config.dispatcher
        self.channels: dict[str, Channel] = (
            dict(channels) if channels is not None else dict(build_channels(config))
        )
        self.clock = clock
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"

    def _now(self) -> dt.datetime:
        return as_utc(self.clock())

    def backoff(self, attempts: int) -> dt.timedelta:
        """The wait after the ``attempts``-th failed attempt: base · 2^(attempts−1), capped."""
        seconds = self.settings.retry_base_seconds * 2 ** min(attempts - 1, 40)
        return dt.timedelta(seconds=min(seconds, self.settings.retry_max_seconds))

    def _due(self, now: dt.datetime) -> sa.ColumnElement[bool]:
        return sa.and_(
            _D.c.status == "pending",
            _D.c.next_attempt_at <= now,
            sa.or_(_D.c.claimed_until.is_(None), _D.c.claimed_until < now),
            _D.c.channel.in_(sorted(self.channels)),
        )

    def claim(self, limit: int, token: str) -> list[ClaimedDelivery]:
        """Claim up to ``limit`` due deliveries under ``token`` (one short transaction)."""
        now = self._now()
        lease_end = now + dt.timedelta(seconds=self.settings.lease_seconds)
        with Session(self.engine) as session, session.begin():
            query = (
                sa.select(_D.c.id).where(self._due(now)).order_by(_D.c.next_attempt_at, _D.c.id).limit(limit)
            )
            if self.engine.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(session.execute(query).scalars())
            if not ids:
                return []
            session.execute(
                sa.update(_D)
                .where(_D.c.id.in_(ids), self._due(now))
                .values(claimed_by=token, claimed_until=lease_end)
            )
            rows = session.execute(
                sa.select(
                    _D.c.id.label("delivery_id"),
                    _D.c.channel.label("delivery_channel"),
                    _D.c.attempts.label("delivery_attempts"),
                    _O,
                )
                .join(_O, _O.c.id == _D.c.outbox_id)
                .where(_D.c.claimed_by == token)
                .order_by(_D.c.next_attempt_at, _D.c.id)
            ).all()
        claimed = []
        for row in rows:
            m = row._mapping
            alert = {k: m[k] for k in AlertOutbox.model_fields if k not in ("id", "dedup")}
            delivery = Delivery.model_validate(
                {**alert, "outbox_id": m["id"], "channel": m["delivery_channel"]}
            )
            claimed.append(ClaimedDelivery(m["delivery_id"], m["delivery_attempts"], delivery))
        return claimed

    def _finish(self, claimed: ClaimedDelivery, token: str, **values: object) -> bool:
        """Record an outcome and release the claim; False when the lease was lost to another dispatcher."""
        with Session(self.engine) as session, session.begin():
            result = session.execute(
                sa.update(_D)
                .where(_D.c.id == claimed.delivery_id, _D.c.claimed_by == token)
                .values(claimed_by=None, claimed_until=None, **values)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def _renew(self, token: str) -> set[int]:
        """Extend this batch's lease; the ids still held under ``token``."""
        lease_end = self._now() + dt.timedelta(seconds=self.settings.lease_seconds)
        with Session(self.engine) as session, session.begin():
            session.execute(sa.update(_D).where(_D.c.claimed_by == token).values(claimed_until=lease_end))
            return set(session.execute(sa.select(_D.c.id).where(_D.c.claimed_by == token)).scalars())

    def run_once(self, limit: int | None = None) -> DispatchReport:
        """Claim a batch of due deliveries and deliver each one; never raises for a channel failure."""
        report = DispatchReport()
        token = f"{self.worker_id}:{uuid.uuid4().hex[:12]}"
        batch = self.claim(limit or self.settings.batch_size, token)
        report.claimed = len(batch)
        held = {c.delivery_id for c in batch}
        renew_after = self._now() + dt.timedelta(seconds=self.settings.lease_seconds / 2)
        down: dict[str, dt.datetime] = {}  # channels that failed in this run -> when to try them again
        for item in batch:
            name = item.delivery.channel
            if self._now() >= renew_after:
                held = self._renew(token)
                renew_after = self._now() + dt.timedelta(seconds=self.settings.lease_seconds / 2)
            if item.delivery_id not in held:
                report.lease_lost += 1
                continue
            if name in down:
                if self._finish(item, token, next_attempt_at=down[name]):
                    report._count(name, "deferred")
                else:
                    report.lease_lost += 1
                continue
            self._deliver(item, token, report, down)
        return report

    def _deliver(
        self, item: ClaimedDelivery, token: str, report: DispatchReport, down: dict[str, dt.datetime]
    ) -> None:
        name = item.delivery.channel
        oid = item.delivery.outbox_id
        try:
            self.channels[name].send(item.delivery)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, logged and retried or quarantined
            if isinstance(exc, ChannelError):
                scope, permanent = exc.scope, exc.permanent
            else:  # a bug met with this alert: it must not lose the alert, nor hold up the others
                _log.exception("通道 %s 投递 #%s（告警 %s）出现意外错误", name, item.delivery_id, oid)
                scope, permanent = "delivery", False
            attempts = item.attempts + 1
            now = self._now()
            error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS]
            report.errors.append(error)
            if permanent or (scope == "delivery" and attempts >= self.settings.max_attempts):
                why = "无法重试" if permanent else f"已失败 {attempts} 次"
                _log.error(
                    "告警投递已隔离：通道 %s 投递 #%s（告警 %s）%s：%s",
                    name,
                    item.delivery_id,
                    oid,
                    why,
                    error,
                )
                values: dict[str, object] = dict(status="quarantined", next_attempt_at=now)
                outcome = "quarantined"
            else:
                retry_at = now + self.backoff(attempts)
                if scope == "channel":
                    down[name] = retry_at  # the channel is out: its other alerts wait as long
                _log.warning(
                    "告警投递失败：通道 %s 投递 #%s（告警 %s）第 %d 次，%s 后重试：%s",
                    name,
                    item.delivery_id,
                    oid,
                    attempts,
                    retry_at.isoformat(timespec="seconds"),
                    error,
                )
                values = dict(next_attempt_at=retry_at)
                outcome = "failed"
            if self._finish(item, token, attempts=attempts, last_error=error, **values):
                report._count(name, outcome)
            else:
                report.lease_lost += 1
            return
        done = self._finish(
            item,
            token,
            status="delivered",
            attempts=item.attempts + 1,
            delivered_at=self._now(),
            last_error=None,
        )
        if done:
            report._count(name, "delivered")
        else:
            report.lease_lost += 1
            _log.warning("alert %s delivered to %s after its lease ran out", item.delivery.outbox_id, name)

    def run_forever(self, stop_event: threading.Event) -> None:
        """Dispatch until ``stop_event`` is set; a database outage is logged and retried after a pause."""
        while not stop_event.is_set():
            try:
                report = self.run_once()
            except SQLAlchemyError:
                _log.exception(
                    "alert dispatcher: database error, retrying in %ss", self.settings.poll_seconds
                )
                stop_event.wait(self.settings.poll_seconds)
                continue
            if report.claimed < self.settings.batch_size:
                stop_event.wait(self.settings.poll_seconds)


def delivery_counts(engine: sa.Engine) -> dict[tuple[str, str], int]:
    """How many deliveries each (channel, status) has: a health view of the outbox."""
    with Session(engine) as session:
        rows = session.execute(
            sa.select(_D.c.channel, _D.c.status, sa.func.count()).group_by(_D.c.channel, _D.c.status)
        ).all()
    return {(channel, status): int(n) for channel, status, n in rows}
