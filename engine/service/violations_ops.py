"""Violations through the service: list and show within the principal's scope, and the workflow.

A violation belongs to its ``org``.  One outside the principal's read scope is
"not found"; one the principal may read but not work is "forbidden".  A waiver
names an approver who must be another enabled account (names compared without
case: "Alice" and "alice" are one account) allowed to work that violation.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from engine.app import App
from engine.audit.log import append, row_digest
from engine.auth.accounts import principal_for
from engine.auth.principal import AuthError, Forbidden, NotFound, OrgTree, Principal, allows, visible_orgs
from engine.violations import workflow
from engine.violations.tables import Violation, ViolationEvent

_E = ViolationEvent.__table__  # type: ignore[attr-defined]


def list_violations(
    app: App,
    principal: Principal,
    status: str | None = None,
    rule: str | None = None,
    org: str | None = None,
    period: str | None = None,
) -> list[Violation]:
    principal.require("violation.read")
    tree = OrgTree.load(app.db)
    visible = visible_orgs(principal, "violation.read", tree)
    rows = app.violations.list_violations(status=status, rule=rule, org=org, period=period)
    if visible is None:
        return rows
    return [v for v in rows if v.org in visible]


def show_violation(app: App, principal: Principal, key: str) -> tuple[Violation, list[ViolationEvent]]:
    principal.require("violation.read")
    v, events = app.violations.get(key)
    if v is None or not allows(principal, "violation.read", v.org, OrgTree.load(app.db)):
        raise NotFound(f"no violation with key {key!r}")
    return v, events


def _audit_change(
    app: App,
    principal: Principal,
    change: workflow.Change,
    request_id: str | None,
    extra: dict[str, Any] | None = None,
) -> None:
    events = []
    if change.event_id is not None:
        with app.db.connect() as conn:
            row = conn.execute(sa.select(_E).where(_E.c.id == change.event_id)).mappings().first()
        if row is not None:
            events.append({"id": change.event_id, "digest": row_digest(dict(row))})
    detail = {"from": change.from_status, "to": change.to_status, "events": events, **(extra or {})}
    with app.db.begin() as conn:
        append(conn, principal.name, f"violation.{change.action}", change.key, detail, request_id)


def _workable(app: App, principal: Principal, key: str) -> Violation:
    v, _events = show_violation(app, principal, key)
    principal.require("violation.work")
    if not allows(principal, "violation.work", v.org, OrgTree.load(app.db)):
        raise Forbidden(f"{principal.name} 可查看但无权处理违规 {key}")
    return v


def act(
    app: App,
    principal: Principal,
    key: str,
    action: str,
    *,
    note: str | None = None,
    owner: str | None = None,
    deadline: dt.date | None = None,
    plan: str | None = None,
    evidence: str | None = None,
    reason: str | None = None,
    approver: str | None = None,
    expires: dt.date | None = None,
    request_id: str | None = None,
    how: str = "rectified",
) -> workflow.Change:
    """One workflow action (ack | assign | resolve | waive | reopen) on one violation, as ``principal``."""
    v = _workable(app, principal, key)
    store, actor = app.violations, principal.name
    extra: dict[str, Any] = {}
    if action == "ack":
        change = workflow.acknowledge(store, key, actor, note)
    elif action == "assign":
        if deadline is None:
            raise workflow.WorkflowError("rectification needs a deadline (YYYY-MM-DD)")
        change = workflow.assign(store, key, actor, owner or "", deadline, plan or "", note)
    elif action == "resolve":
        change = workflow.resolve(store, key, actor, evidence or "", how)
    elif action == "reopen":
        change = workflow.reopen(store, key, actor, reason or "")
    elif action == "waive":
        if principal.account_id is None:
            raise AuthError(
                "a waiver is requested by an account: --by USER (or --as USER), not the local administrator"
            )
        if not approver or not approver.strip():
            raise workflow.WorkflowError("a waiver needs an approver (--approver) who is not the requester")
        try:
            approving = principal_for(app.db, approver)
        except AuthError as exc:
            raise workflow.WorkflowError(f"the approver must be an enabled account: {exc}") from exc
        if approving.account_id == principal.account_id:
            raise workflow.WorkflowError(
                f"a waiver needs an approver who is not the requester ({approver!r} is {principal.name!r}'s account)"
            )
        if not allows(approving, "violation.work", v.org, OrgTree.load(app.db)):
            raise workflow.WorkflowError(
                f"{approving.name} may not approve waivers for {v.org or 'this violation'}"
            )
        change = workflow.waive(store, key, actor, reason or "", approving.name, expires)
        extra = {"approver": approving.name, "approver_id": approving.account_id}
    else:
        raise workflow.WorkflowError(f"unknown action {action!r}: ack, assign, resolve, waive or reopen")
    _audit_change(app, principal, change, request_id, extra)
    return change
