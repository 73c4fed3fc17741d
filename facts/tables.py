"""Database tables of the facts store.

``fact_version`` is the source of truth: every version of every fact, append
only.  The other tables are a *projection* of the current versions, shaped
for the SQL that builds rule subjects (counts per org and period, attendance
per member).  A correction appends a version and rewrites the projection
rows of that one fact.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class FactVersion(SQLModel, table=True):
    __tablename__ = "fact_version"
    __table_args__ = (
        UniqueConstraint("type", "key", "version"),
        Index("ix_fact_version_current", "type", "key", "current"),
    )

    seq: int | None = Field(default=None, primary_key=True)  # order received
    type: str = Field(max_length=32)
    key: str = Field(max_length=400)
    version: int
    hash: str = Field(max_length=64)
    content: str  # canonical interchange JSON
    current: bool = True
    recorded_at: dt.datetime
    superseded_at: dt.datetime | None = None
    import_id: int | None = Field(default=None, index=True)


class ImportRun(SQLModel, table=True):
    __tablename__ = "import_run"

    id: int | None = Field(default=None, primary_key=True)
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    files: str = ""
    added: int = 0
    unchanged: int = 0
    corrected: int = 0
    rejected: int = 0
    status: str = Field(default="ok", max_length=16)  # running | ok | failed (error says why; a re-run resumes)
    error: str | None = Field(default=None, sa_type=Text)


class OrgRow(SQLModel, table=True):
    __tablename__ = "org"
    id: str = Field(primary_key=True, max_length=200)
    name: str
    kind: str = Field(index=True, max_length=32)
    parent: str | None = Field(default=None, index=True, max_length=200)
    established: dt.date | None = None
    dissolved: dt.date | None = None
    term_years: int | None = None


class MemberRow(SQLModel, table=True):
    __tablename__ = "member"
    id: str = Field(primary_key=True, max_length=200)
    name: str
    org: str = Field(index=True, max_length=200)
    status: str = Field(max_length=16)
    category: str = Field(max_length=16)
    joined: dt.date | None = None
    left: dt.date | None = None
    unit: str | None = Field(default=None, max_length=200)


class MemberRoleRow(SQLModel, table=True):
    __tablename__ = "member_role"
    member: str = Field(primary_key=True, max_length=200)
    role: str = Field(primary_key=True, max_length=32, index=True)


class MemberExtraOrgRow(SQLModel, table=True):
    __tablename__ = "member_extra_org"
    member: str = Field(primary_key=True, max_length=200)
    org: str = Field(primary_key=True, max_length=200, index=True)


class MemberFlagRow(SQLModel, table=True):
    """A member's version-2 flags as first recorded (only members with one set have a row), kept apart
    from ``member`` so a version-1 database needs no column change."""

    __tablename__ = "member_flag"
    member: str = Field(primary_key=True, max_length=200)
    excused: bool = False
    dues_quarterly: bool = False


class MemberChangeRow(SQLModel, table=True):
    """A dated change of a member (``member_change``): a column left NULL is not changed."""

    __tablename__ = "member_change"
    key: str = Field(primary_key=True, max_length=400)
    member: str = Field(index=True, max_length=200)
    date: dt.date
    status: str | None = Field(default=None, max_length=16)
    category: str | None = Field(default=None, max_length=16)
    org: str | None = Field(default=None, index=True, max_length=200)
    roles_appointed: str = ""  # role names joined by ","
    roles_ended: str = ""
    extra_orgs: str | None = None  # JSON list of org ids, or NULL when unchanged
    excused: bool | None = None
    dues_quarterly: bool | None = None


class OrgChangeRow(SQLModel, table=True):
    """A dated change of an org (``org_change``): a column left NULL is not changed."""

    __tablename__ = "org_change"
    key: str = Field(primary_key=True, max_length=400)
    org: str = Field(index=True, max_length=200)
    date: dt.date
    name: str | None = None
    kind: str | None = Field(default=None, max_length=32)
    parent: str | None = Field(default=None, max_length=200)
    term_years: int | None = None
    dissolved: bool = False


#: the text parts of the minutes, in the order of their bits in ``meeting.minutes_parts``
MINUTES_TEXT_COLUMNS = (
    "minutes_time", "minutes_place", "minutes_agenda", "minutes_content", "minutes_outcome", "minutes_recorder",
)


def minutes_parts(texts: tuple[str | None, ...]) -> int:
    """The bits of ``meeting.minutes_parts``: bit i is set when the text of part i (in the order of
    :data:`MINUTES_TEXT_COLUMNS`) holds something besides white space (``str.strip()``'s)."""
    return sum(1 << i for i, text in enumerate(texts) if text and not text.isspace())


class MeetingRow(SQLModel, table=True):
    __tablename__ = "meeting"
    __table_args__ = (
        Index("ix_meeting_org_kind_date", "org", "kind", "date"),
        # covers the meeting rules' load of a span (id, org, kind, parts with text): ~1/40th of the wide rows
        Index("ix_meeting_date_parts", "date", "org", "kind", "id", "minutes_parts"),
    )
    id: str = Field(primary_key=True, max_length=200)
    seq: int = 0  # fact_version.seq of the current version: order received
    org: str = Field(max_length=200)
    kind: str = Field(max_length=32)
    date: dt.date = Field(index=True)
    host: str | None = None
    lecturer: str | None = Field(default=None, index=True, max_length=200)
    has_minutes: bool = False
    minutes_time: str | None = None
    minutes_place: str | None = None
    minutes_recorder: str | None = None
    minutes_agenda: str | None = None
    minutes_content: str | None = None
    minutes_outcome: str | None = None
    minutes_parts: int = 0  # which parts of the minutes have text, as bits (:func:`minutes_parts`)


class MeetingTopicRow(SQLModel, table=True):
    __tablename__ = "meeting_topic"
    meeting: str = Field(primary_key=True, max_length=200)
    topic: str = Field(primary_key=True, max_length=64, index=True)


class AttendanceRow(SQLModel, table=True):
    """One line of a meeting's attendance record: present, on leave, or absent."""

    __tablename__ = "meeting_attendance"
    __table_args__ = (
        Index("ix_attendance_member", "member", "status"),
        # covers the meeting rules' read of a meeting's attendance, grouped by status and opinion in its order
        Index("ix_attendance_meeting_status", "meeting", "status", "opinion_given", "member"),
    )
    meeting: str = Field(primary_key=True, max_length=200)
    member: str = Field(primary_key=True, max_length=200)
    status: str = Field(max_length=8)  # present | leave | absent
    opinion_given: bool = False
    reason: str | None = None


class DuesRow(SQLModel, table=True):
    __tablename__ = "dues"
    member: str = Field(primary_key=True, max_length=200)
    month: str = Field(primary_key=True, max_length=7)
    amount: float
    paid_on: dt.date
    base: float | None = None


class SignoffRow(SQLModel, table=True):
    __tablename__ = "signoff"
    key: str = Field(primary_key=True, max_length=400)
    document: str = Field(index=True, max_length=200)
    unit: str | None = Field(default=None, max_length=200)
    signer: str | None = Field(default=None, max_length=200)
    date: dt.date


class InterviewRow(SQLModel, table=True):
    __tablename__ = "interview"
    key: str = Field(primary_key=True, max_length=400)
    date: dt.date
    interviewer: str = Field(index=True, max_length=200)
    interviewee: str = Field(index=True, max_length=200)
    kind: str = Field(max_length=32)
    topic: str | None = None


class PetitionRow(SQLModel, table=True):
    __tablename__ = "petition"
    id: str = Field(primary_key=True, max_length=200)
    received: dt.date
    registered: dt.date | None = None
    accepted: dt.date | None = None
    closed: dt.date | None = None
    subject: str | None = None


class ElectionRow(SQLModel, table=True):
    __tablename__ = "election"
    key: str = Field(primary_key=True, max_length=400)
    org: str = Field(index=True, max_length=200)
    date: dt.date
    term_years: int | None = None


class FieldVisitRow(SQLModel, table=True):
    __tablename__ = "field_visit"
    key: str = Field(primary_key=True, max_length=400)
    member: str = Field(index=True, max_length=200)
    date: dt.date
    place: str | None = None
    topic: str | None = None


class DeclarationRow(SQLModel, table=True):
    __tablename__ = "declaration"
    key: str = Field(primary_key=True, max_length=400)
    member: str = Field(index=True, max_length=200)
    year: int
    filed: dt.date


class PromotionRow(SQLModel, table=True):
    __tablename__ = "promotion"
    key: str = Field(primary_key=True, max_length=400)
    member: str = Field(index=True, max_length=200)
    date: dt.date
    position: str | None = None


class MinutesSigRow(SQLModel, table=True):
    """MinHash band keys of a meeting's minutes content (see :mod:`facts.minhash`): the copy index."""

    __tablename__ = "minutes_sig"
    meeting: str = Field(primary_key=True, max_length=200)
    b0: int = Field(sa_type=BigInteger, index=True)
    b1: int = Field(sa_type=BigInteger, index=True)
    b2: int = Field(sa_type=BigInteger, index=True)
    b3: int = Field(sa_type=BigInteger, index=True)
    b4: int = Field(sa_type=BigInteger, index=True)
    b5: int = Field(sa_type=BigInteger, index=True)
    b6: int = Field(sa_type=BigInteger, index=True)
    b7: int = Field(sa_type=BigInteger, index=True)
    b8: int = Field(sa_type=BigInteger, index=True)
    b9: int = Field(sa_type=BigInteger, index=True)
    b10: int = Field(sa_type=BigInteger, index=True)
    b11: int = Field(sa_type=BigInteger, index=True)
    b12: int = Field(sa_type=BigInteger, index=True)
    b13: int = Field(sa_type=BigInteger, index=True)
    b14: int = Field(sa_type=BigInteger, index=True)
    b15: int = Field(sa_type=BigInteger, index=True)
