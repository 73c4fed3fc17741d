"""The rectification workflow (整改): open → acknowledged → rectifying → resolved, or waived.

Every change records who, when and why in the append-only log.  Escalation
is data-driven: a violation in ``rectifying`` past its deadline, or a serious
or critical one left unacknowledged for N days, raises an escalation alert to
the next level up; an expired waiver reopens its violation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from engine.alerts.outbox import Alert, enqueue
from engine.violations.store import DATA_CORRECTED, RECTIFIED, ViolationStore, utcnow
from engine.violations.tables import ACTIVE, STATUS_CN, Violation, ViolationEvent
from facts.errors import PartyrulesError

_V = Violation.__table__  # type: ignore[attr-defined]
_E = ViolationEvent.__table__  # type: ignore[attr-defined]

ALLOWED: dict[str, tuple[str, ...]] = {
    "ack": ("open",),
    "assign": ("open", "acknowledged", "rectifying"),
    "resolve": ACTIVE,
    "waive": ACTIVE,
    "reopen": ("resolved", "waived"),
    "report": ACTIVE,  # the org's secretary reports what was done (整改说明, evidence); an inspector resolves
}
TARGET = {
    "ack": "acknowledged",
    "assign": "rectifying",
    "resolve": "resolved",
    "waive": "waived",
    "reopen": "open",
    "report": "rectifying",
}


class WorkflowError(PartyrulesError):
    """A change the workflow does not allow, with what is allowed instead."""


@dataclass(frozen=True)
class Change:
    key: str
    action: str
    from_status: str
    to_status: str
    event_id: int | None = None  # the row of the log this change wrote (the audit log digests it)


def _transition(
    store: ViolationStore, key: str, action: str, actor: str, note: str | None, **values: object
) -> Change:
    if not actor.strip():
        raise WorkflowError("say who you are: --by NAME")
    now = utcnow()
    with Session(store.engine) as session:
        v = session.get(Violation, key, with_for_update=True)
        if v is None:
            raise WorkflowError(f"no violation with key {key!r} (see `partyrules violations list`)")
        if v.status not in ALLOWED[action]:
            possible = [a for a, src in ALLOWED.items() if v.status in src]
            raise WorkflowError(
                f"{key} is {v.status} ({STATUS_CN[v.status]}); '{action}' needs "
                f"{' or '.join(ALLOWED[action])}. Possible now: {', '.join(possible) or 'nothing'}"
            )
        src, dst = v.status, TARGET[action]
        session.execute(sa.update(_V).where(_V.c.key == key).values(status=dst, **values))
        inserted = session.connection().execute(
            sa.insert(_E).values(
                key=key, at=now, actor=actor, action=action, from_status=src, to_status=dst, note=note
            )
        ).inserted_primary_key
        session.commit()
    return Change(key, action, src, dst, int(inserted[0]) if inserted else None)


def acknowledge(store: ViolationStore, key: str, actor: str, note: str | None = None) -> Change:
    return _transition(store, key, "ack", actor, note)


def assign(
    store: ViolationStore,
    key: str,
    actor: str,
    owner: str,
    deadline: dt.date,
    plan: str,
    note: str | None = None,
) -> Change:
    if not owner.strip() or not plan.strip():
        raise WorkflowError("rectification needs a responsible person (--owner) and a plan (--plan)")
    text = note or f"责任人 {owner}，期限 {deadline}，措施：{plan}"
    return _transition(
        store, key, "assign", actor, text, owner=owner, deadline=deadline, plan=plan, escalation_level=0
    )


#: how a violation was resolved by hand: measures were taken (已整改 — the lapse happened and stays in the
#: record, so a later check that still sees it leaves the violation resolved), or the record was wrong and
#: has been corrected (数据已更正 — a later check that still finds it reopens it)
HOW = {"rectified": RECTIFIED, "data-corrected": DATA_CORRECTED}


def resolve(store: ViolationStore, key: str, actor: str, evidence: str, how: str = "rectified") -> Change:
    if not evidence.strip():
        raise WorkflowError("resolving by hand needs the evidence that it was fixed (--evidence)")
    if how not in HOW:
        raise WorkflowError(f"unknown way of resolving {how!r}: rectified (已整改) or data-corrected (数据已更正)")
    return _transition(
        store,
        key,
        "resolve",
        actor,
        evidence,
        resolved_at=utcnow(),
        resolution=f"{HOW[how]}{evidence}",
    )


def waive(
    store: ViolationStore, key: str, actor: str, reason: str, approver: str, expires: dt.date | None = None
) -> Change:
    if not reason.strip():
        raise WorkflowError("a waiver needs a written reason (--reason)")
    if not approver.strip() or approver.strip() == actor.strip():
        raise WorkflowError("a waiver needs an approver (--approver) who is not the requester (--by)")
    note = f"{reason}（批准人 {approver}{'，至 ' + str(expires) if expires else ''}）"
    return _transition(
        store,
        key,
        "waive",
        actor,
        note,
        waiver_reason=reason,
        waiver_approver=approver,
        waiver_expires=expires,
    )


def reopen(store: ViolationStore, key: str, actor: str, reason: str) -> Change:
    if not reason.strip():
        raise WorkflowError("say why it is reopened (--reason)")
    return _transition(store, key, "reopen", actor, reason, resolved_at=None, resolution=None)


def report(store: ViolationStore, key: str, actor: str, text: str) -> Change:
    """The org's own report of its rectification (整改说明): the violation is being rectified (整改中)
    and waits for an inspector to resolve it; the owner, deadline and plan an inspector set are kept."""
    if not text.strip():
        raise WorkflowError("a rectification report needs what was done (整改说明)")
    return _transition(store, key, "report", actor, text)


def _escalation_alert(v: Violation, level: int, why: str, now: dt.datetime) -> Alert:
    path = list(v.org_path or [])
    # the next level up: route as if the violation belonged to the parent org
    up = path[:-1] if len(path) > 1 else path
    return Alert(
        kind="escalation",
        key=v.key,
        occurrence=f"level{level}",
        severity=v.severity,  # type: ignore[arg-type]
        rule=v.rule,
        org=up[-1] if up else None,
        org_path=up,
        title=f"{v.org_name or ''} {v.period} {v.title}（{why}）".strip(),
        message=f"{v.message}。{why}，已提请上一级关注。",
        payload={
            "key": v.key,
            "rule": v.rule,
            "status": v.status,
            "why": why,
            "level": level,
            "message": v.message,
        },
        created_at=now,
    )


def escalate(store: ViolationStore, today: dt.date, unack_days: int = 7) -> list[Change]:
    """Escalate overdue rectifications and long-unacknowledged serious violations; reopen expired waivers."""
    now = utcnow()
    changes: list[Change] = []
    with Session(store.engine) as session:
        active = _V.c.status.in_(("open", "rectifying", "waived"))
        rows = list(session.execute(sa.select(Violation).where(active)).scalars())
        for v in rows:
            if v.status == "waived":
                if v.waiver_expires is not None and v.waiver_expires < today:
                    session.execute(sa.update(_V).where(_V.c.key == v.key).values(status="open"))
                    session.execute(
                        sa.insert(_E).values(
                            key=v.key,
                            at=now,
                            actor="partyrules",
                            action="waiver_expired",
                            from_status="waived",
                            to_status="open",
                            note=f"豁免已于 {v.waiver_expires} 到期",
                        )
                    )
                    changes.append(Change(v.key, "waiver_expired", "waived", "open"))
                continue
            why = None
            if v.escalation_level > 0:  # escalated once already; assigning anew resets the level
                continue
            if v.status == "rectifying" and v.deadline is not None and v.deadline < today:
                why = f"整改期限 {v.deadline} 已过仍未完成"
            elif (
                v.status == "open"
                and v.severity in ("serious", "critical")
                and (today - v.first_seen.date()).days >= unack_days
            ):
                why = f"发现已 {(today - v.first_seen.date()).days} 天仍未确认"
            if why is None:
                continue
            level = v.escalation_level + 1
            session.execute(sa.update(_V).where(_V.c.key == v.key).values(escalation_level=level))
            session.execute(
                sa.insert(_E).values(
                    key=v.key,
                    at=now,
                    actor="partyrules",
                    action="escalate",
                    from_status=v.status,
                    to_status=v.status,
                    note=why,
                )
            )
            enqueue(session, _escalation_alert(v, level, why, now), store.alerts)
            changes.append(Change(v.key, "escalate", v.status, v.status))
        session.commit()
    return changes
