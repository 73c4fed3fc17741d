"""Tables of violations, their append-only log, and the record of each check run."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index
from sqlmodel import JSON, Column, Field, SQLModel, Text

STATUSES = ("open", "acknowledged", "rectifying", "resolved", "waived")
ACTIVE = ("open", "acknowledged", "rectifying")
STATUS_CN = {
    "open": "待处理",
    "acknowledged": "已确认",
    "rectifying": "整改中",
    "resolved": "已解决",
    "waived": "已豁免",
}


class Violation(SQLModel, table=True):
    __tablename__ = "violation"
    __table_args__ = (Index("ix_violation_rule_period", "rule", "period"),)

    key: str = Field(primary_key=True, max_length=600)  # rule|type:id|period
    rule: str = Field(max_length=200)
    rule_version: str = Field(max_length=32)
    pack_hash: str = Field(max_length=32)
    severity: str = Field(max_length=16)
    title: str = Field(sa_column=Column(Text, nullable=False))
    basis: str = Field(sa_column=Column(Text, nullable=False))
    subject_type: str = Field(max_length=16)
    subject_id: str = Field(max_length=400)
    org: str | None = Field(default=None, max_length=200, index=True)
    org_name: str | None = None
    member: str | None = Field(default=None, max_length=200)
    period: str = Field(max_length=16)
    message: str = Field(sa_column=Column(Text, nullable=False))
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    org_path: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="open", max_length=16, index=True)
    first_seen: dt.datetime
    last_seen: dt.datetime
    last_run: int | None = None
    resolved_at: dt.datetime | None = None
    resolution: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    owner: str | None = None
    deadline: dt.date | None = None
    plan: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    waiver_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    waiver_approver: str | None = None
    waiver_expires: dt.date | None = None
    escalation_level: int = 0
    rule_retired: bool = False


class ViolationEvent(SQLModel, table=True):
    """Who did what to a violation, when and why: append-only."""

    __tablename__ = "violation_event"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=600, index=True)
    at: dt.datetime
    actor: str = Field(max_length=200)
    action: str = Field(
        max_length=32
    )  # detected | recurred | auto_resolved | ack | assign | resolve | waive | ...
    from_status: str | None = None
    to_status: str | None = None
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    run_id: int | None = None


class CheckRun(SQLModel, table=True):
    __tablename__ = "check_run"

    id: int | None = Field(default=None, primary_key=True)
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    pack_hash: str = Field(max_length=32)
    pack_root: str = ""
    period: str = Field(max_length=40)
    as_of: dt.date
    grace_days: int = 10
    trigger: str = Field(default="cli", max_length=32)  # cli | schedule | submit
    status: str = Field(default="running", max_length=16)  # running | ok | failed | stopped | abandoned (its process died)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    subjects: int = 0
    findings: int = 0
    new: int = 0
    resolved: int = 0
    seconds_sql: float = 0.0
    seconds_match: float = 0.0
    seconds_store: float = 0.0


class PackVersion(SQLModel, table=True):
    """Each rule pack content seen by a run: its hash, where it came from, and its text."""

    __tablename__ = "pack_version"

    hash: str = Field(primary_key=True, max_length=32)
    root: str = ""
    first_used: dt.datetime
    rules: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )  # id@ver -> rule


class CheckRunOwner(SQLModel, table=True):
    """Which process runs a ``check_run`` (host, pid, the pid's start time) and when it last said so.

    A run left ``running`` by a process that died (``kill -9``, a power cut) is recognised by this row
    and marked ``abandoned`` (:mod:`engine.violations.runs`).  A table of its own, so that databases
    made before it only gain a table.
    """

    __tablename__ = "check_run_owner"

    run_id: int = Field(primary_key=True, foreign_key="check_run.id")
    host: str = Field(max_length=255)
    pid: int
    pid_started: str = Field(default="", max_length=32)
    heartbeat_at: dt.datetime
