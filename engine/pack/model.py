"""The rule pack format: pydantic models of a YAML rule file.

A file holds ``rules`` (and optionally a ``fixture``: facts shared by the
file's test cases).  A rule names what it judges in ``subject`` (a
discriminated union on ``type``), the named values it derives over the
period in ``derive`` (each a discriminated union on ``source``), its
thresholds in ``params``, the condition under which the subject is *in
violation* in ``when``, and a Chinese ``message`` template.
"""

from __future__ import annotations

import re
from datetime import date
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from facts.models import MeetingKind, MemberStatus, OrgKind, Role

Severity = Literal["info", "warning", "serious", "critical"]
SEVERITY_ORDER: dict[str, int] = {"info": 0, "warning": 1, "serious": 2, "critical": 3}
SEVERITY_CN = {"info": "提示", "warning": "一般", "serious": "严重", "critical": "重大"}
RULE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
MONTH_DAY = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Effective(_Model):
    from_: date = Field(alias="from")
    to: date | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _ordered(self) -> Effective:
        if self.to is not None and self.to < self.from_:
            raise ValueError("effective.to is before effective.from")
        return self

    def in_force(self, day: date) -> bool:
        return self.from_ <= day and (self.to is None or day <= self.to)


# -- subjects --------------------------------------------------------------------------


class OrgSubject(_Model):
    """Each org of the given kinds that exists during the period."""

    type: Literal["org"]
    org_kinds: list[OrgKind] = Field(min_length=1)
    with_term: bool = False  # only orgs with a term of office (term_years on the org or an election)


class MemberSubject(_Model):
    """Each member who belongs to their org during the period, filtered by status and roles."""

    type: Literal["member"]
    status: list[MemberStatus] = Field(default_factory=lambda: ["full", "probationary"])  # type: ignore[arg-type]
    roles_any: list[Role] = Field(default_factory=list)  # empty = everyone


class MeetingSubject(_Model):
    """Each meeting whose date lies in a judged month."""

    type: Literal["meeting"]
    kinds: list[MeetingKind] = Field(default_factory=list)  # empty = every kind
    topics_any: list[str] = Field(default_factory=list)
    eligible: Literal["party_group_members", "full_members", "members", "committee_members"] = "members"
    copy_floor: float = Field(default=0.8, gt=0, le=1)  # similarities below this are reported as 0


class DuesSubject(_Model):
    type: Literal["dues"]
    with_base: bool = True  # only payments that state their base


class PetitionSubject(_Model):
    type: Literal["petition"]


class PromotionSubject(_Model):
    type: Literal["promotion"]


Subject = Annotated[
    OrgSubject | MemberSubject | MeetingSubject | DuesSubject | PetitionSubject | PromotionSubject,
    Field(discriminator="type"),
]
FACT_SUBJECTS = {"meeting", "dues", "petition", "promotion"}


# -- derived values over a period (org and member subjects) -----------------------------


class MeetingsHeld(_Model):
    """Meetings the org held in the period."""

    source: Literal["meetings_held"]
    kinds: list[MeetingKind] = Field(min_length=1)
    topics_any: list[str] = Field(default_factory=list)


class MeetingsAttended(_Model):
    """Meetings the member attended in the period, of their own org (and its groups)."""

    source: Literal["meetings_attended"]
    kinds: list[MeetingKind] = Field(default_factory=list)  # empty = any kind
    include_groups: bool = True  # meetings of the groups under the member's org count too


class LecturesGiven(_Model):
    source: Literal["lectures_given"]


class FieldVisits(_Model):
    source: Literal["field_visits"]


class Interviews(_Model):
    """Interviews of a kind between the member and a holder of one of ``with_roles`` in the same org."""

    source: Literal["interviews"]
    kinds: list[Literal["admonition", "reminder", "integrity", "heart_to_heart", "summons"]] = Field(
        min_length=1
    )
    with_roles: list[Role] = Field(default_factory=list)  # empty = anyone
    same_org: bool = True


class CommitteeTalks(_Model):
    """For a committee member: how many fellow members of the branch committee (on the period's last day)
    they had no interview of ``kinds`` with during the period, either side asking (谈心谈话 per pair)."""

    source: Literal["committee_talks"]
    kinds: list[Literal["admonition", "reminder", "integrity", "heart_to_heart", "summons"]] = Field(
        min_length=1
    )


class DuesPaid(_Model):
    """Months of the period for which the member's dues were paid (by the month's end when on_time)."""

    source: Literal["dues_paid"]
    on_time: bool = True


class SignoffsMade(_Model):
    """Sign-offs by the org (as ``unit``) of the document for the period's year, by the deadline."""

    source: Literal["signoffs"]
    document: str  # may hold {year}
    by: str | None = None  # MM-DD within the period's year

    @field_validator("by")
    @classmethod
    def _month_day(cls, v: str | None) -> str | None:
        if v is not None and not MONTH_DAY.match(v):
            raise ValueError(f'"{v}" is not a MM-DD date such as 04-30')
        return v


class MonthsWithout(_Model):
    """Consecutive months, ending with the judged month, without the thing (member subjects, month period).

    Months before the member joined do not count, nor months before the store's
    first record of that thing (before records began nothing can be known).
    """

    source: Literal["months_without"]
    of: Literal["dues", "attendance"]


class TermOverdue(_Model):
    """Days by which the org's committee is past its term at the judging date (negative: not yet due)."""

    source: Literal["term_overdue"]


Derive = Annotated[
    MeetingsHeld
    | MeetingsAttended
    | LecturesGiven
    | FieldVisits
    | Interviews
    | CommitteeTalks
    | DuesPaid
    | SignoffsMade
    | MonthsWithout
    | TermOverdue,
    Field(discriminator="source"),
]


# -- tests -------------------------------------------------------------------------------


class ExpectedFinding(_Model):
    subject: str  # the subject's id (org, member, meeting, petition id; dues/promotion natural key)
    period: str | None = None
    values: dict[str, Any] = Field(default_factory=dict)  # evidence values that must match


class RuleTest(_Model):
    name: str
    facts: list[dict[str, Any]] = Field(default_factory=list)
    period: str
    as_of: date
    expect: list[ExpectedFinding]


# -- the rule ----------------------------------------------------------------------------

ParamValue = int | float | str | bool | list[Any] | dict[str, Any]


class Rule(_Model):
    id: str
    title: str
    basis: str
    note: str | None = None
    severity: Severity
    effective: Effective
    subject: Subject
    period: Literal["fact", "month", "quarter", "year"]
    deadline: str | None = None  # MM-DD inside a year period: judged once it has passed
    derive: dict[str, Derive] = Field(default_factory=dict)
    params: dict[str, ParamValue] = Field(default_factory=dict)
    when: str
    message: str
    tests: list[RuleTest] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _dotted(cls, v: str) -> str:
        if not RULE_ID.match(v):
            raise ValueError(f'"{v}" is not a dotted rule id such as branch.committee_meeting.monthly')
        return v

    @field_validator("deadline")
    @classmethod
    def _deadline(cls, v: str | None) -> str | None:
        if v is not None and not MONTH_DAY.match(v):
            raise ValueError(f'"{v}" is not a MM-DD date such as 04-30')
        return v

    @model_validator(mode="after")
    def _period_fits_subject(self) -> Rule:
        is_fact = self.subject.type in FACT_SUBJECTS
        if is_fact and self.period != "fact":
            raise ValueError(f"a rule judging each {self.subject.type} must have period: fact")
        if not is_fact and self.period == "fact":
            raise ValueError(
                f"a rule judging {self.subject.type}s over time needs period: month, quarter or year"
            )
        if is_fact and self.derive:
            raise ValueError("derive is for org and member subjects; fact subjects carry their own fields")
        if self.deadline and self.period != "year":
            raise ValueError("deadline (MM-DD) is only for year rules")
        for name, spec in self.derive.items():
            if isinstance(spec, MonthsWithout) and self.period != "month":
                raise ValueError(f"derive.{name}: months_without needs period: month")
            member_only = (
                MeetingsAttended | LecturesGiven | FieldVisits | Interviews | DuesPaid | MonthsWithout
            )
            if isinstance(spec, member_only) and self.subject.type != "member":
                raise ValueError(f"derive.{name}: {spec.source} is for member subjects")
            if isinstance(spec, MeetingsHeld | SignoffsMade | TermOverdue) and self.subject.type != "org":
                raise ValueError(f"derive.{name}: {spec.source} is for org subjects")
        return self

    def numeric_params(self) -> dict[str, Any]:
        """Params as the condition sees them: ``"2/3"`` becomes the float 2/3 exactly rounded."""
        out: dict[str, Any] = {}
        for k, v in self.params.items():
            if isinstance(v, str) and re.fullmatch(r"\s*\d+\s*/\s*\d+\s*", v):
                out[k] = float(Fraction(v.replace(" ", "")))
            else:
                out[k] = v
        return out


class RuleFile(_Model):
    fixture: list[dict[str, Any]] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
