"""Backlogs: more closed periods pending than ``[schedule] max_backlog`` are judged only on request.

A first run with an old ``[schedule] since`` (or after a long outage) judged 2018–2026 at once and
queued 70,330 alert deliveries without asking.  Now the periods job refuses such a backlog and says how
to judge it: ``partyrules schedule run --backfill``.  A backfill stores every violation as usual but
sends, instead of one alert per violation, one summary alert per channel: how many new violations of
which severity and rule, over which periods, routed to that channel as the single alerts would have been.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence

from sqlmodel import Session

from engine.alerts.config import SEVERITY_ORDER, AlertsConfig, Severity
from engine.alerts.outbox import SEVERITY_LABELS, Alert, enqueue
from engine.alerts.routing import route_alert
from engine.periods import Period
from facts.errors import PartyrulesError


class BacklogRefused(PartyrulesError):
    """More periods are pending than ``max_backlog``; ``schedule run --backfill`` judges them."""

    def __init__(self, pending: Sequence[Period], limit: int) -> None:
        self.pending = list(pending)
        self.limit = limit
        first, last = self.pending[0].label, self.pending[-1].label
        super().__init__(
            f"有 {len(self.pending)} 个已结束的期间待判定（{first} … {last}），超过 [schedule] max_backlog = {limit}："
            f"为免一次发出大量告警，不自动补判。确认补判请运行 `partyrules schedule run --backfill`"
            f"（或 `schedule run --once --backfill`），补判只给每个通道发送一条汇总告警。"
            f" / {len(self.pending)} closed periods are pending ({first} … {last}), more than "
            f"max_backlog = {limit}: run `partyrules schedule run --backfill` to judge them "
            f"(one summary alert per channel instead of one per violation)."
        )


def check_backlog(pending: Sequence[Period], limit: int, backfill: bool) -> None:
    if len(pending) > limit and not backfill:
        raise BacklogRefused(sorted(pending, key=lambda p: (p.start, p.end)), limit)


def summary_alerts(
    collected: Sequence[Alert], config: AlertsConfig, periods: Sequence[str], now: dt.datetime
) -> dict[str, Alert]:
    """One summary alert per channel that would have received some of ``collected``."""
    routed: dict[str, list[Alert]] = {}
    for alert in collected:
        for channel in route_alert(alert, config):
            routed.setdefault(channel, []).append(alert)
    span = f"{periods[0]}…{periods[-1]}" if len(periods) > 1 else periods[0]
    out = {}
    for channel, alerts in routed.items():
        severity: Severity = max((a.severity for a in alerts), key=lambda s: SEVERITY_ORDER[s])
        by_severity = Counter(a.severity for a in alerts)
        by_rule = Counter(a.rule or "" for a in alerts)
        lines = [
            f"补判 {len(periods)} 个期间（{span}），新增违规 {len(alerts)} 项，未逐条发送告警。",
            "按级别："
            + "，".join(
                f"{SEVERITY_LABELS[s]} {n} 项"
                for s, n in sorted(by_severity.items(), key=lambda x: -SEVERITY_ORDER[x[0]])
            ),
            "按规则："
            + "，".join(f"{r} {n} 项" for r, n in by_rule.most_common(10))
            + ("……" if len(by_rule) > 10 else ""),
            "明细请用 `partyrules violations list --status open` 或 `partyrules report` 查看。",
        ]
        out[channel] = Alert(
            kind="backfill",
            key=f"backfill|{channel}|{span}",
            occurrence=now.isoformat(timespec="seconds"),
            severity=severity,
            title=f"补判 {span}：新增违规 {len(alerts)} 项",
            message="\n".join(lines),
            payload={
                "periods": list(periods),
                "violations": len(alerts),
                "by_severity": dict(by_severity),
                "by_rule": dict(by_rule),
            },
            created_at=now,
        )
    return out


def enqueue_summaries(
    session: Session,
    collected: Sequence[Alert],
    config: AlertsConfig,
    periods: Sequence[str],
    now: dt.datetime,
) -> dict[str, int | None]:
    """Add each channel's summary to the caller's transaction; the outbox id per channel."""
    return {
        channel: enqueue(session, alert, config, channels=[channel])
        for channel, alert in summary_alerts(collected, config, periods, now).items()
    }
