"""Pydantic models of the facts interchange format, version 2 (docs/facts-format.md).

Version 2 adds dated changes of the registry (``member_change``, ``org_change``) and two optional
member fields (``excused``, ``dues_quarterly``); every version-1 file is a valid version-2 file with
the same meaning.

Every object is validated strictly: unknown types and unknown fields are
errors, dates must be ISO ``YYYY-MM-DD``, months ``YYYY-MM``, years integers,
amounts non-negative decimals.  The models are the public contract; the
database tables in :mod:`facts.tables` are a projection of them.

Bounds (issue 11: a value the store or ``check`` cannot handle is refused here,
naming the field, rather than stored and breaking later for everyone): dates,
months and years lie in 1921..2100 (ASCII digits only); amounts are finite,
0..100,000,000 yuan; ``term_years`` is 1..10; ids are 1..128 characters
without ``|`` (the separator of natural keys and violation keys), without a
leading ``@`` (it marks a signer in a signoff's key) and without control
characters; names and tags 1..200 and 1..64 characters; free text up to 100,000
characters without control characters other than tab and line breaks (NUL
cannot be stored by PostgreSQL).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")  # ASCII digits: \d would take ０ and ٠ too
_MONTH_RE = re.compile(r"^([0-9]{4})-([0-9]{2})$")

FIRST_YEAR = 1921  # the Party's founding: no record can be older
LAST_YEAR = 2100
MAX_AMOUNT = Decimal(100_000_000)  # yuan: dues and income bases far above any real one
MAX_TERM_YEARS = 10
MAX_ID = 128  # the key columns hold 400 characters: an interview's key joins two ids and a date
MAX_NAME = 200
MAX_TAG = 64
MAX_TEXT = 100_000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # C0 controls and DEL, but tab, CR and LF
_ID_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


_SMALLEST_AMOUNT = 1e-300  # a positive number whose Decimal's exponent is within ±300 (see parse_amount)
_LARGEST_AMOUNT = int(MAX_AMOUNT)


def parse_iso_date(value: Any) -> date:
    """Accept a ``date`` or an ISO ``YYYY-MM-DD`` string, nothing else."""
    parsed: date | None = None
    if type(value) is str:  # the usual case first
        if _DATE_RE.match(value):
            try:
                parsed = date.fromisoformat(value)
            except ValueError:  # 2017-02-30: the message below
                parsed = None
    elif isinstance(value, date):
        parsed = value
    elif isinstance(value, str) and _DATE_RE.match(value):  # a str subclass
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None:
        raise PydanticCustomError(
            "iso_date", "{shown} is not a valid date (expected YYYY-MM-DD)", {"shown": _show(value)}
        )
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise PydanticCustomError(
            "date_range",
            "{shown} is out of range (dates lie between {first}-01-01 and {last}-12-31)",
            {"shown": _show(value), "first": FIRST_YEAR, "last": LAST_YEAR},
        )
    return parsed


def parse_month(value: Any) -> str:
    if isinstance(value, str):
        m = _MONTH_RE.match(value)
        if m and 1 <= int(m.group(2)) <= 12:
            if not FIRST_YEAR <= int(m.group(1)) <= LAST_YEAR:
                raise PydanticCustomError(
                    "month_range",
                    "{shown} is out of range (months lie between {first}-01 and {last}-12)",
                    {"shown": _show(value), "first": FIRST_YEAR, "last": LAST_YEAR},
                )
            return value
    raise PydanticCustomError(
        "iso_month", "{shown} is not a valid month (expected YYYY-MM)", {"shown": _show(value)}
    )


def parse_year(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and FIRST_YEAR <= value <= LAST_YEAR:
        return value
    raise PydanticCustomError(
        "year",
        "{shown} is not a valid year (expected an integer from {first} to {last}, such as 2017)",
        {"shown": _show(value), "first": FIRST_YEAR, "last": LAST_YEAR},
    )


def parse_amount(value: Any) -> Decimal:
    kind = type(value)
    if (kind is float or kind is int) and (value == 0 or _SMALLEST_AMOUNT <= value <= _LARGEST_AMOUNT):
        return Decimal(str(value))  # the usual case: what the checks below let through as it is
    if isinstance(value, bool):
        raise PydanticCustomError("amount", "{shown} is not an amount", {"shown": _show(value)})
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | float | str):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation:
            raise PydanticCustomError(
                "amount", "{shown} is not an amount (expected a number of yuan)", {"shown": _show(value)}
            ) from None
    else:
        raise PydanticCustomError(
            "amount", "{shown} is not an amount (expected a number of yuan)", {"shown": _show(value)}
        )
    if not result.is_finite() or abs(result.adjusted()) > 300:  # 1e400 would be stored as a float: inf, null
        raise PydanticCustomError(
            "amount", "{shown} is not a finite number (expected a number of yuan)", {"shown": _show(value)}
        )
    if result < 0:
        raise PydanticCustomError(
            "amount", "{shown} is negative (amounts must be 0 or more)", {"shown": _show(value)}
        )
    if result > MAX_AMOUNT:
        raise PydanticCustomError(
            "amount",
            "{shown} is too large (amounts are at most {most} yuan)",
            {"shown": _show(value), "most": f"{MAX_AMOUNT:,}"},
        )
    return result


def _term_years(value: int) -> int:
    if not 1 <= value <= MAX_TERM_YEARS:
        raise PydanticCustomError(
            "term_years",
            "{shown} is not a term of office (expected 1 to {most} years)",
            {"shown": _show(value), "most": MAX_TERM_YEARS},
        )
    return value


def _short(value: str, most: int) -> None:
    if len(value) > most:
        raise PydanticCustomError(
            "too_long", "is {n} characters long (at most {most})", {"n": len(value), "most": most}
        )


def _no_control(value: str, pattern: re.Pattern[str]) -> None:
    found = pattern.search(value)
    if found:
        raise PydanticCustomError(
            "control_char",
            "contains the control character U+{code} at position {at} (not text; remove it)",
            {"code": f"{ord(found.group()):04X}", "at": found.start() + 1},
        )


_ID_BAD = re.compile(r"[\x00-\x1f\x7f|]|^@|^\s*$")


def _identifier(value: str) -> str:
    if len(value) <= MAX_ID and not _ID_BAD.search(value):
        return value  # the usual case in one regex search; the checks below word the message
    if not value.strip():
        raise PydanticCustomError("non_empty", "must not be empty", {})
    _short(value, MAX_ID)
    _no_control(value, _ID_CONTROL)
    if "|" in value:
        raise PydanticCustomError(
            "id_bar", '{shown} contains "|", which separates the parts of keys; use another character',
            {"shown": _show(value)},
        )
    if value.startswith("@"):
        raise PydanticCustomError(
            "id_at", '{shown} starts with "@", which marks a signer in keys; drop it', {"shown": _show(value)}
        )
    return value


def _label(most: int) -> Any:
    def check(value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("non_empty", "must not be empty", {})
        _short(value, most)
        _no_control(value, _ID_CONTROL)
        return value

    return check


def _free_text(value: str) -> str:
    if value.isprintable() and len(value) <= MAX_TEXT:
        return value  # no control character at all: the usual case, in C
    _short(value, MAX_TEXT)
    _no_control(value, _CONTROL)
    return value


IsoDate = Annotated[date, BeforeValidator(parse_iso_date), PlainSerializer(lambda d: d.isoformat(), return_type=str)]
Month = Annotated[str, BeforeValidator(parse_month)]
Year = Annotated[int, BeforeValidator(parse_year)]
Amount = Annotated[Decimal, BeforeValidator(parse_amount), PlainSerializer(lambda d: float(d), return_type=float)]
TermYears = Annotated[int, AfterValidator(_term_years)]
Id = Annotated[str, AfterValidator(_identifier)]  # an id, or a reference to one: part of keys
Name = Annotated[str, AfterValidator(_label(MAX_NAME))]
Tag = Annotated[str, AfterValidator(_label(MAX_TAG))]
Text = Annotated[str, AfterValidator(_free_text)]

OrgKind = Literal[
    "party_group",
    "organ_committee",
    "discipline_committee",
    "general_branch",
    "branch",
    "group",
    "unit",
]
MemberStatus = Literal["full", "probationary", "non_member"]
MemberCategory = Literal["in_service", "retired", "student", "other"]
Role = Literal[
    "branch_secretary",
    "committee_member",
    "party_group_member",
    "party_group_secretary",
    "leader",
    "unit_head",
    "discipline_staff",
]
MeetingKind = Literal[
    "party_group_meeting",
    "central_group_study",
    "member_assembly",
    "committee_meeting",
    "group_meeting",
    "party_lecture",
    "theme_day",
    "org_life_meeting",
    "democratic_life_meeting",
    "member_appraisal",
    "topic_discussion",
]
InterviewKind = Literal["admonition", "reminder", "integrity", "heart_to_heart", "summons"]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class FactBase(_Strict):
    """Fields every object may carry."""

    source: Text | None = None
    note: Text | None = None


class Org(FactBase):
    type: Literal["org"] = "org"
    id: Id
    name: Name
    kind: OrgKind
    parent: Id | None = None
    established: IsoDate | None = None
    dissolved: IsoDate | None = None
    term_years: TermYears | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> Org:
        if self.established and self.dissolved and self.dissolved < self.established:
            raise PydanticCustomError("order", "dissolved is before established", {})
        if self.parent == self.id:
            raise PydanticCustomError("parent", "an org cannot be its own parent", {})
        return self


class Member(FactBase):
    type: Literal["member"] = "member"
    id: Id
    name: Name
    org: Id
    status: MemberStatus = "full"
    category: MemberCategory = "in_service"
    joined: IsoDate | None = None
    left: IsoDate | None = None
    roles: list[Role] = Field(default_factory=list)
    unit: Id | None = None
    extra_orgs: list[Id] = Field(default_factory=list)
    excused: bool = False  # v2: excused from organisational life (年老体弱、长期患病) by the branch
    dues_quarterly: bool = False  # v2: pays dues quarterly with the branch's approval (按季度交纳)

    @model_validator(mode="after")
    def _consistent(self) -> Member:
        if self.joined and self.left and self.left < self.joined:
            raise PydanticCustomError("order", "left is before joined", {})
        if self.unit is not None and "unit_head" not in self.roles:
            raise PydanticCustomError("unit", "unit is given but roles lacks 'unit_head'", {})
        return self


class Leave(_Strict):
    member: Id
    reason: Text | None = None
    opinion_given: bool = False


class Minutes(_Strict):
    time: Text | None = None
    place: Text | None = None
    recorder: Id | None = None
    agenda: Text | None = None
    content: Text | None = None
    outcome: Text | None = None


class Meeting(FactBase):
    type: Literal["meeting"] = "meeting"
    id: Id
    org: Id
    kind: MeetingKind
    date: IsoDate
    topics: list[Tag] = Field(default_factory=list)
    host: Id | None = None
    lecturer: Id | None = None
    attendees: list[Id] = Field(default_factory=list)
    on_leave: list[Leave] = Field(default_factory=list)
    absent: list[Id] = Field(default_factory=list)
    minutes: Minutes | None = None

    @model_validator(mode="after")
    def _attendance_disjoint(self) -> Meeting:
        present = set(self.attendees)
        if len(present) != len(self.attendees):
            raise PydanticCustomError("duplicate", "attendees lists a member twice", {})
        for leave in self.on_leave:
            if leave.member in present:
                raise PydanticCustomError(
                    "overlap", "member {m} is both an attendee and on leave", {"m": leave.member}
                )
        for m in self.absent:
            if m in present:
                raise PydanticCustomError("overlap", "member {m} is both an attendee and absent", {"m": m})
        return self


class Dues(FactBase):
    type: Literal["dues"] = "dues"
    member: Id
    month: Month
    amount: Amount
    paid_on: IsoDate
    base: Amount | None = None


class Signoff(FactBase):
    type: Literal["signoff"] = "signoff"
    document: Id
    unit: Id | None = None
    signer: Id | None = None
    date: IsoDate

    @model_validator(mode="after")
    def _who(self) -> Signoff:
        if self.unit is None and self.signer is None:
            raise PydanticCustomError("who", "a signoff needs a unit or a signer", {})
        return self


class Interview(FactBase):
    type: Literal["interview"] = "interview"
    date: IsoDate
    interviewer: Id
    interviewee: Id
    kind: InterviewKind
    topic: Text | None = None


class Petition(FactBase):
    type: Literal["petition"] = "petition"
    id: Id
    received: IsoDate
    registered: IsoDate | None = None
    accepted: IsoDate | None = None
    closed: IsoDate | None = None
    subject: Text | None = None

    @model_validator(mode="after")
    def _after_receipt(self) -> Petition:
        for name in ("registered", "accepted", "closed"):
            value = getattr(self, name)
            if value is not None and value < self.received:
                raise PydanticCustomError("order", "{name} is before received", {"name": name})
        return self


class Election(FactBase):
    type: Literal["election"] = "election"
    org: Id
    date: IsoDate
    term_years: TermYears | None = None


class FieldVisit(FactBase):
    type: Literal["field_visit"] = "field_visit"
    member: Id
    date: IsoDate
    place: Text | None = None
    topic: Text | None = None


class Declaration(FactBase):
    type: Literal["declaration"] = "declaration"
    member: Id
    year: Year
    filed: IsoDate


class Promotion(FactBase):
    type: Literal["promotion"] = "promotion"
    member: Id
    date: IsoDate
    position: Text | None = None


class MemberChange(FactBase):
    """A dated change of a member's registry entry (v2; key: member + date).

    Each field given holds from ``date`` on; a field not given is unchanged.  The ``member`` object
    describes the person as first recorded (from ``joined``, or from the start of the records).
    """

    type: Literal["member_change"] = "member_change"
    member: Id
    date: IsoDate
    status: MemberStatus | None = None  # e.g. probationary → full on conversion (转正)
    category: MemberCategory | None = None  # e.g. in_service → retired
    org: Id | None = None  # transfer of the organisational relation (组织关系转接) to this org
    roles_appointed: list[Role] = Field(default_factory=list)
    roles_ended: list[Role] = Field(default_factory=list)
    extra_orgs: list[Id] | None = None  # the whole list from this date (an empty list clears it)
    excused: bool | None = None
    dues_quarterly: bool | None = None

    @model_validator(mode="after")
    def _says_something(self) -> MemberChange:
        both = set(self.roles_appointed) & set(self.roles_ended)
        if both:
            raise PydanticCustomError(
                "roles", "role {r} is both appointed and ended on the same date", {"r": sorted(both)[0]}
            )
        if not self.changed():
            raise PydanticCustomError("empty", "a member_change must change at least one field", {})
        return self

    def changed(self) -> list[str]:
        """Names of the fields this change sets."""
        names = ("status", "category", "org", "extra_orgs", "excused", "dues_quarterly")
        out = [n for n in names if getattr(self, n) is not None]
        return out + [n for n in ("roles_appointed", "roles_ended") if getattr(self, n)]


class OrgChange(FactBase):
    """A dated change of an org (v2; key: org + date): from ``date`` on it has this parent, kind, name or
    term, or, with ``dissolved: true``, it is dissolved that day."""

    type: Literal["org_change"] = "org_change"
    org: Id
    date: IsoDate
    name: Name | None = None
    kind: OrgKind | None = None
    parent: Id | None = None
    term_years: TermYears | None = None
    dissolved: bool = False

    @model_validator(mode="after")
    def _says_something(self) -> OrgChange:
        if self.parent is not None and self.parent == self.org:
            raise PydanticCustomError("parent", "an org cannot be its own parent", {})
        if not (self.dissolved or any(getattr(self, n) is not None for n in ("name", "kind", "parent", "term_years"))):
            raise PydanticCustomError("empty", "an org_change must change at least one field", {})
        return self


Fact = Org | Member | MemberChange | OrgChange | Meeting | Dues | Signoff | Interview | Petition | Election | FieldVisit | Declaration | Promotion

MODELS: dict[str, type[FactBase]] = {
    "org": Org,
    "member": Member,
    "org_change": OrgChange,
    "member_change": MemberChange,
    "meeting": Meeting,
    "dues": Dues,
    "signoff": Signoff,
    "interview": Interview,
    "petition": Petition,
    "election": Election,
    "field_visit": FieldVisit,
    "declaration": Declaration,
    "promotion": Promotion,
}

#: Types whose order matters for import: registry objects before events.
TYPE_ORDER = list(MODELS)


def natural_key(fact: FactBase) -> str:
    """The identity of a fact within its type: its id, or the spec's natural key."""
    match fact:
        case Org() | Member() | Meeting() | Petition():
            return fact.id
        case Dues():
            return f"{fact.member}|{fact.month}"
        case Signoff():
            return f"{fact.document}|{fact.unit}" if fact.unit else f"{fact.document}|@{fact.signer}"
        case Interview():
            return f"{fact.date.isoformat()}|{fact.interviewer}|{fact.interviewee}"
        case Election() | OrgChange():
            return f"{fact.org}|{fact.date.isoformat()}"
        case MemberChange():
            return f"{fact.member}|{fact.date.isoformat()}"
        case FieldVisit() | Promotion():
            return f"{fact.member}|{fact.date.isoformat()}"
        case Declaration():
            return f"{fact.member}|{fact.year}"
    raise TypeError(f"not a fact: {fact!r}")


def references(fact: FactBase) -> list[tuple[str, str, str]]:
    """Every reference a fact makes, as (field path, target type, id).

    Target type ``org`` for orgs and units, ``member`` for people.
    """
    refs: list[tuple[str, str, str]] = []
    match fact:
        case Org():
            if fact.parent:
                refs.append(("parent", "org", fact.parent))
        case Member():
            refs.append(("org", "org", fact.org))
            if fact.unit:
                refs.append(("unit", "org", fact.unit))
            refs.extend((f"extra_orgs[{i}]", "org", o) for i, o in enumerate(fact.extra_orgs))
        case MemberChange():
            refs.append(("member", "member", fact.member))
            if fact.org:
                refs.append(("org", "org", fact.org))
            refs.extend((f"extra_orgs[{i}]", "org", o) for i, o in enumerate(fact.extra_orgs or []))
        case OrgChange():
            refs.append(("org", "org", fact.org))
            if fact.parent:
                refs.append(("parent", "org", fact.parent))
        case Meeting():
            refs.append(("org", "org", fact.org))
            for name in ("host", "lecturer"):
                value = getattr(fact, name)
                if value:
                    refs.append((name, "member", value))
            refs.extend((f"attendees[{i}]", "member", m) for i, m in enumerate(fact.attendees))
            refs.extend((f"on_leave[{i}].member", "member", lv.member) for i, lv in enumerate(fact.on_leave))
            refs.extend((f"absent[{i}]", "member", m) for i, m in enumerate(fact.absent))
            if fact.minutes and fact.minutes.recorder:
                refs.append(("minutes.recorder", "member", fact.minutes.recorder))
        case Dues() | FieldVisit() | Declaration() | Promotion():
            refs.append(("member", "member", fact.member))
        case Signoff():
            if fact.unit:
                refs.append(("unit", "org", fact.unit))
            if fact.signer:
                refs.append(("signer", "member", fact.signer))
        case Interview():
            refs.append(("interviewer", "member", fact.interviewer))
            refs.append(("interviewee", "member", fact.interviewee))
        case Election():
            refs.append(("org", "org", fact.org))
    return refs


def referenced_ids(fact: FactBase) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The org ids and the member ids a fact refers to: the ids of :func:`references`, without their paths.

    The importer checks an event's references with these (a subset test in C) and words the
    problems, in the rare case of an unknown id, from :func:`references` again.  Events
    are written out here (a meeting names dozens of members: no path string per name);
    other types take :func:`references`.
    """
    match fact:
        case Meeting():
            members = [fact.host, fact.lecturer, *fact.attendees, *(lv.member for lv in fact.on_leave), *fact.absent]
            if fact.minutes is not None:
                members.append(fact.minutes.recorder)
            return (fact.org,), tuple(m for m in members if m)
        case Dues() | FieldVisit() | Declaration() | Promotion():
            return (), (fact.member,)
        case Interview():
            return (), (fact.interviewer, fact.interviewee)
        case Election():
            return (fact.org,), ()
        case Petition():
            return (), ()
    refs = references(fact)
    return (
        tuple(ref for _path, target, ref in refs if target == "org"),
        tuple(ref for _path, target, ref in refs if target == "member"),
    )


def canonical(fact: FactBase) -> dict[str, Any]:
    """The interchange form of a fact: defaults and empty values left out, ``type`` first."""
    body = fact.model_dump(mode="json", exclude_defaults=True, exclude={"type"})
    return {"type": fact.type, **body}  # type: ignore[attr-defined]
