"""The fields each kind of subject carries: what a rule's condition and message may use.

Every field is always present in a subject (durable_rules never matches a
missing field), with the type given here.
"""

from __future__ import annotations

from typing import Literal

from engine.pack.model import (
    CommitteeTalks,
    Derive,
    DuesPaid,
    Rule,
    TermOverdue,
)

FieldKind = Literal["number", "string", "bool", "list"]

_PERIOD: dict[str, FieldKind] = {"period": "string", "period_label": "string"}

ORG_FIELDS: dict[str, FieldKind] = {"org": "string", "org_name": "string", "org_kind": "string", **_PERIOD}

MEMBER_FIELDS: dict[str, FieldKind] = {
    "member": "string",
    "member_name": "string",
    "org": "string",
    "org_name": "string",
    "status": "string",
    "category": "string",
    "excused": "bool",  # excused from organisational life (年老体弱、长期患病) on the period's last day
    "dues_quarterly": "bool",  # pays dues quarterly with the branch's approval
    **_PERIOD,
}

MEETING_FIELDS: dict[str, FieldKind] = {
    "meeting": "string",
    "org": "string",
    "org_name": "string",
    "kind": "string",
    "kind_label": "string",
    "date": "string",
    "topics": "list",
    "eligible": "number",
    "present": "number",
    "on_leave": "number",
    "absent_without_leave": "number",
    "absentees": "string",  # names of those absent without leave with opinion, 、-separated
    "attendance_ratio": "number",  # present / eligible (1 when nobody is eligible)
    "attendance_pct": "string",
    "minutes_missing": "number",
    "minutes_missing_list": "string",
    "copy_similarity": "number",
    "copied_from": "string",
    "copied_from_org_name": "string",
    **_PERIOD,
}

DUES_FIELDS: dict[str, FieldKind] = {
    "dues": "string",
    "member": "string",
    "member_name": "string",
    "org": "string",
    "org_name": "string",
    "month": "string",
    "amount": "number",
    "base": "number",
    "category": "string",
    "standard": "number",
    "rate_pct": "string",
    "paid_on": "string",
    **_PERIOD,
}

PETITION_FIELDS: dict[str, FieldKind] = {
    "petition": "string",
    "subject_text": "string",
    "received": "string",
    "registered": "string",
    "closed": "string",
    "is_registered": "bool",
    "is_closed": "bool",
    "days_to_register": "number",  # to registration, or to the as-of date while unregistered
    "accepted": "string",  # date accepted (受理), or 未受理
    "is_accepted": "bool",
    "days_to_close": "number",  # from acceptance (else receipt) to closing, or to the as-of date while open
    "as_of": "string",
    **_PERIOD,
}

PROMOTION_FIELDS: dict[str, FieldKind] = {
    "promotion": "string",
    "member": "string",
    "member_name": "string",
    "org": "string",
    "org_name": "string",
    "date": "string",
    "position": "string",
    "declaration_year": "number",
    "has_declaration": "bool",
    "declaration_filed": "string",
    **_PERIOD,
}

BASE_FIELDS: dict[str, dict[str, FieldKind]] = {
    "org": ORG_FIELDS,
    "member": MEMBER_FIELDS,
    "meeting": MEETING_FIELDS,
    "dues": DUES_FIELDS,
    "petition": PETITION_FIELDS,
    "promotion": PROMOTION_FIELDS,
}


def derived_fields(name: str, spec: Derive) -> dict[str, FieldKind]:
    """The fields one ``derive`` entry adds: its value, and for some sources a few companions."""
    fields: dict[str, FieldKind] = {name: "number"}
    if isinstance(spec, DuesPaid):
        fields[f"{name}_paid_on"] = "string"  # dates paid, or 未交纳
    if isinstance(spec, CommitteeTalks):
        fields[f"{name}_missing"] = "string"  # names of the fellow members not talked with, or 无
        fields[f"{name}_peers"] = "number"  # fellow committee members on the period's last day
    if isinstance(spec, TermOverdue):
        fields.update(term_years="number", last_election="string", due_date="string")
    return fields


def subject_fields(rule: Rule) -> dict[str, FieldKind]:
    """Every field a subject of ``rule`` carries."""
    fields = dict(BASE_FIELDS[rule.subject.type])
    for name, spec in rule.derive.items():
        fields.update(derived_fields(name, spec))
    return fields


#: the key of a subject's id field, per subject type
ID_FIELD = {
    "org": "org",
    "member": "member",
    "meeting": "meeting",
    "dues": "dues",
    "petition": "petition",
    "promotion": "promotion",
}
