"""Which channels an alert goes to: by severity, by kind and by org subtree.

A route with ``orgs = ["c1"]`` takes alerts about ``c1`` and every org below
it (its ``org_path`` passes through ``c1``): a branch's alerts reach the
discipline staff of the committee above it.  An alert about no org (a failed
check run) matches only routes without ``orgs``.  Digests are addressed to
their channel directly and are not routed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.alerts.config import SEVERITY_ORDER, AlertsConfig, Route

if TYPE_CHECKING:
    from engine.alerts.outbox import Alert


def route_matches(route: Route, alert: Alert) -> bool:
    """Whether ``route`` takes ``alert``."""
    if SEVERITY_ORDER[alert.severity] < SEVERITY_ORDER[route.min_severity]:
        return False
    if route.kinds and alert.kind not in route.kinds:
        return False
    if route.orgs:
        return not set(route.orgs).isdisjoint(alert.subject_path)
    return True


def route_alert(alert: Alert, config: AlertsConfig) -> list[str]:
    """The channels ``alert`` goes to, each once, in the order their routes are configured."""
    if alert.kind == "digest":
        return []
    chosen: list[str] = []
    for route in config.routes:
        if route.channel not in chosen and route_matches(route, alert):
            chosen.append(route.channel)
    return chosen
