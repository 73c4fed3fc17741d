"""The daily digest: one alert per digest channel, sent even when nothing is new.

``enqueue_digests(session, config, day)`` is meant to run early on ``day``: it
summarises the ``new`` and ``escalation`` alerts routed to each channel during
the 24 hours before ``day`` begins (midnight to midnight in the configured
timezone).  A channel with nothing to report gets 「今日无新增违规」, because
silence would not tell a discipline inspector whether the system is alive.
Repeating the call for the same day adds nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from engine.alerts.config import SEVERITY_ORDER, AlertsConfig
from engine.alerts.outbox import SEVERITY_LABELS as _LABELS
from engine.alerts.outbox import Alert, AlertDelivery, AlertOutbox, as_utc, enqueue

NOTHING_NEW = "今日无新增违规"
MAX_LISTED = 50  # the message lists at most this many; the payload has them all

_D = AlertDelivery.__table__  # type: ignore[attr-defined]
_O = AlertOutbox.__table__  # type: ignore[attr-defined]


def digest_window(config: AlertsConfig, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC bounds [start, end) of the 24 hours before ``day`` begins, in the configured zone."""
    zone = config.zone()
    end = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    start = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return as_utc(start), as_utc(end)


def _items(session: Session, channel: str, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    rows = session.execute(
        sa.select(_O.c.id, _O.c.kind, _O.c.severity, _O.c.rule, _O.c.org, _O.c.title, _O.c.created_at)
        .join(_D, _D.c.outbox_id == _O.c.id)
        .where(
            _D.c.channel == channel,
            _O.c.kind.in_(["new", "escalation"]),
            _O.c.created_at >= start,
            _O.c.created_at < end,
        )
        .order_by(_O.c.created_at, _O.c.id)
    ).all()
    items = [
        {
            "alert_id": r.id,
            "kind": r.kind,
            "severity": r.severity,
            "rule": r.rule,
            "org": r.org,
            "title": r.title,
            "created_at": r.created_at.isoformat(timespec="seconds"),
        }
        for r in rows
    ]
    items.sort(key=lambda i: -SEVERITY_ORDER[i["severity"]])  # stable: most severe first, then by time
    return items


def build_digest(channel: str, day: dt.date, items: list[dict[str, Any]], now: dt.datetime) -> Alert:
    """The digest alert for one channel and day from its items (see :func:`enqueue_digests`)."""
    covered = (day - dt.timedelta(days=1)).isoformat()
    new = sum(1 for i in items if i["kind"] == "new")
    escalated = len(items) - new
    if items:
        summary = f"新增违规 {new} 条，升级 {escalated} 条"
        lines = [
            f"{n}. 【{_LABELS[i['severity']]}】{i['title']}{'（升级）' if i['kind'] == 'escalation' else ''}"
            for n, i in enumerate(items[:MAX_LISTED], start=1)
        ]
        if len(items) > MAX_LISTED:
            lines.append(f"……另有 {len(items) - MAX_LISTED} 条，详见系统")
        message = f"{covered} {summary}：\n" + "\n".join(lines)
        severity = max((i["severity"] for i in items), key=SEVERITY_ORDER.__getitem__)
    else:
        summary = NOTHING_NEW
        message = f"{covered} {NOTHING_NEW}。"
        severity = "info"
    return Alert(
        kind="digest",
        key=f"{channel}|{day.isoformat()}",
        severity=severity,
        title=f"违规告警日报 {covered}：{summary}",
        message=message,
        payload={
            "channel": channel,
            "day": day.isoformat(),
            "covers": covered,
            "new": new,
            "escalation": escalated,
            "items": items,
        },
        created_at=now,
    )


def enqueue_digests(
    session: Session, config: AlertsConfig, day: dt.date, now: dt.datetime | None = None
) -> dict[str, int | None]:
    """Enqueue the digest of ``day`` for every channel with ``digest = true`` (no commit).

    Returns the outbox id per channel, ``None`` where that day's digest was
    already enqueued.  ``now`` (default: the current time) stamps the digest.
    """
    stamp = now if now is not None else dt.datetime.now(dt.UTC)
    start, end = digest_window(config, day)
    result: dict[str, int | None] = {}
    for name, channel in config.channels.items():
        if not channel.digest:
            continue
        alert = build_digest(name, day, _items(session, name, start, end), stamp)
        result[name] = enqueue(session, alert, config, channels=[name])
    return result
