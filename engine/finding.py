"""A finding: one rule violated by one subject in one period, with its explanation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Finding:
    rule: str
    rule_version: str
    title: str
    basis: str
    severity: str
    subject_type: str
    subject_id: str
    org: str | None
    org_name: str | None
    member: str | None
    period: str
    message: str
    evidence: dict[str, Any]
    org_path: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """The stable key of the violation: (rule, subject, period)."""
        return violation_key(self.rule, self.subject_type, self.subject_id, self.period)

    def to_json(self) -> dict[str, Any]:
        """The contract's JSON shape of a finding (spec/rules.md, CLI contract)."""
        return {
            "key": self.key,
            "rule": self.rule,
            "title": self.title,
            "severity": self.severity,
            "subject": {"type": self.subject_type, "id": self.subject_id},
            "org": self.org,
            "org_name": self.org_name,
            "member": self.member,
            "period": self.period,
            "message": self.message,
            "basis": self.basis,
            "rule_version": self.rule_version,
            "evidence": self.evidence,
        }


def violation_key(rule: str, subject_type: str, subject_id: str, period: str) -> str:
    return f"{rule}|{subject_type}:{subject_id}|{period}"
