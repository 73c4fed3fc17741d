"""Alerts that are never lost: a transactional outbox, channels, routing, a dispatcher, a daily digest.

A caller writes a violation and calls :func:`enqueue` in the same session;
both commit together.  :class:`Dispatcher` delivers the outbox to the routed
channels with retry and backoff; :func:`enqueue_digests` adds the daily digest.
"""

from engine.alerts.channels import Channel, ChannelError, build_channels
from engine.alerts.config import AlertsConfig, AlertsConfigError, load_alerts_config, parse_alerts_config
from engine.alerts.digest import enqueue_digests
from engine.alerts.dispatcher import Dispatcher, DispatchReport, delivery_counts
from engine.alerts.outbox import Alert, AlertDelivery, AlertOutbox, Delivery, enqueue, run_failed_alert
from engine.alerts.routing import route_alert

__all__ = [
    "Alert",
    "AlertDelivery",
    "AlertOutbox",
    "AlertsConfig",
    "AlertsConfigError",
    "Channel",
    "ChannelError",
    "Delivery",
    "DispatchReport",
    "Dispatcher",
    "build_channels",
    "delivery_counts",
    "enqueue",
    "enqueue_digests",
    "load_alerts_config",
    "parse_alerts_config",
    "route_alert",
    "run_failed_alert",
]
