"""Rows of the projection tables for one fact (see :mod:`facts.tables`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table

from facts import tables as t
from facts.minhash import band_keys
from facts.models import (
    Declaration,
    Dues,
    Election,
    FactBase,
    FieldVisit,
    Interview,
    Meeting,
    Member,
    Org,
    Petition,
    Promotion,
    Signoff,
    natural_key,
)

Rows = list[tuple[Table, dict[str, Any]]]


def _table(model: type) -> Table:
    return model.__table__  # type: ignore[attr-defined,no-any-return]


#: projection tables of each fact type, and the column that holds the fact's key
OWNED: dict[str, list[tuple[Table, str]]] = {
    "org": [(_table(t.OrgRow), "id")],
    "member": [
        (_table(t.MemberRow), "id"),
        (_table(t.MemberRoleRow), "member"),
        (_table(t.MemberExtraOrgRow), "member"),
    ],
    "meeting": [
        (_table(t.MeetingRow), "id"),
        (_table(t.MeetingTopicRow), "meeting"),
        (_table(t.AttendanceRow), "meeting"),
        (_table(t.MinutesSigRow), "meeting"),
    ],
    "dues": [],  # composite key: handled by _delete_dues
    "signoff": [(_table(t.SignoffRow), "key")],
    "interview": [(_table(t.InterviewRow), "key")],
    "petition": [(_table(t.PetitionRow), "id")],
    "election": [(_table(t.ElectionRow), "key")],
    "field_visit": [(_table(t.FieldVisitRow), "key")],
    "declaration": [(_table(t.DeclarationRow), "key")],
    "promotion": [(_table(t.PromotionRow), "key")],
}


def signature_rows(meetings: list[Meeting]) -> Rows:
    """``minutes_sig`` rows (MinHash band keys) for the meetings that have minutes content, computed in one batch."""
    with_text = [m for m in meetings if m.minutes and m.minutes.content and m.minutes.content.strip()]
    table = _table(t.MinutesSigRow)
    rows: Rows = []
    for m, keys in zip(with_text, band_keys([m.minutes.content for m in with_text]), strict=True):  # type: ignore[union-attr]
        if keys:
            rows.append((table, {"meeting": m.id, **{f"b{i}": k for i, k in enumerate(keys)}}))
    return rows


def rows_for(fact: FactBase, seq: int) -> Rows:
    """Projection rows of a fact's current version (``seq`` = its fact_version.seq)."""
    key = natural_key(fact)
    match fact:
        case Org():
            return [
                (
                    _table(t.OrgRow),
                    dict(
                        id=fact.id,
                        name=fact.name,
                        kind=fact.kind,
                        parent=fact.parent,
                        established=fact.established,
                        dissolved=fact.dissolved,
                        term_years=fact.term_years,
                    ),
                )
            ]
        case Member():
            rows: Rows = [
                (
                    _table(t.MemberRow),
                    dict(
                        id=fact.id,
                        name=fact.name,
                        org=fact.org,
                        status=fact.status,
                        category=fact.category,
                        joined=fact.joined,
                        left=fact.left,
                        unit=fact.unit,
                    ),
                )
            ]
            rows += [(_table(t.MemberRoleRow), dict(member=fact.id, role=r)) for r in dict.fromkeys(fact.roles)]
            rows += [
                (_table(t.MemberExtraOrgRow), dict(member=fact.id, org=o)) for o in dict.fromkeys(fact.extra_orgs)
            ]
            return rows
        case Meeting():
            mins = fact.minutes
            rows = [
                (
                    _table(t.MeetingRow),
                    dict(
                        id=fact.id,
                        seq=seq,
                        org=fact.org,
                        kind=fact.kind,
                        date=fact.date,
                        host=fact.host,
                        lecturer=fact.lecturer,
                        has_minutes=mins is not None,
                        minutes_time=mins.time if mins else None,
                        minutes_place=mins.place if mins else None,
                        minutes_recorder=mins.recorder if mins else None,
                        minutes_agenda=mins.agenda if mins else None,
                        minutes_content=mins.content if mins else None,
                        minutes_outcome=mins.outcome if mins else None,
                    ),
                )
            ]
            rows += [(_table(t.MeetingTopicRow), dict(meeting=fact.id, topic=x)) for x in dict.fromkeys(fact.topics)]
            att = _table(t.AttendanceRow)
            seen: set[str] = set()
            for m in fact.attendees:
                seen.add(m)
                rows.append((att, dict(meeting=fact.id, member=m, status="present", opinion_given=False, reason=None)))
            for lv in fact.on_leave:
                if lv.member not in seen:
                    seen.add(lv.member)
                    rows.append(
                        (
                            att,
                            dict(
                                meeting=fact.id,
                                member=lv.member,
                                status="leave",
                                opinion_given=lv.opinion_given,
                                reason=lv.reason,
                            ),
                        )
                    )
            for m in fact.absent:
                if m not in seen:
                    seen.add(m)
                    rows.append((att, dict(meeting=fact.id, member=m, status="absent", opinion_given=False, reason=None)))
            return rows
        case Dues():
            return [
                (
                    _table(t.DuesRow),
                    dict(
                        member=fact.member,
                        month=fact.month,
                        amount=float(fact.amount),
                        paid_on=fact.paid_on,
                        base=float(fact.base) if fact.base is not None else None,
                    ),
                )
            ]
        case Signoff():
            return [
                (
                    _table(t.SignoffRow),
                    dict(key=key, document=fact.document, unit=fact.unit, signer=fact.signer, date=fact.date),
                )
            ]
        case Interview():
            return [
                (
                    _table(t.InterviewRow),
                    dict(
                        key=key,
                        date=fact.date,
                        interviewer=fact.interviewer,
                        interviewee=fact.interviewee,
                        kind=fact.kind,
                        topic=fact.topic,
                    ),
                )
            ]
        case Petition():
            return [
                (
                    _table(t.PetitionRow),
                    dict(
                        id=fact.id,
                        received=fact.received,
                        registered=fact.registered,
                        accepted=fact.accepted,
                        closed=fact.closed,
                        subject=fact.subject,
                    ),
                )
            ]
        case Election():
            return [(_table(t.ElectionRow), dict(key=key, org=fact.org, date=fact.date, term_years=fact.term_years))]
        case FieldVisit():
            return [
                (
                    _table(t.FieldVisitRow),
                    dict(key=key, member=fact.member, date=fact.date, place=fact.place, topic=fact.topic),
                )
            ]
        case Declaration():
            return [(_table(t.DeclarationRow), dict(key=key, member=fact.member, year=fact.year, filed=fact.filed))]
        case Promotion():
            return [
                (_table(t.PromotionRow), dict(key=key, member=fact.member, date=fact.date, position=fact.position))
            ]
    raise TypeError(f"not a fact: {fact!r}")
