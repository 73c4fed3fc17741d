"""The audit log and its head (the last sequence number and hash, one row)."""

from __future__ import annotations

from sqlmodel import Column, Field, SQLModel, Text


class AuditEntry(SQLModel, table=True):
    """One write: who, when, under which request, what; ``hash`` chains it to the entry before."""

    __tablename__ = "audit_log"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: str = Field(max_length=40)  # ISO 8601 UTC, as hashed
    actor: str = Field(max_length=200)
    request_id: str = Field(default="", max_length=64)
    action: str = Field(max_length=64, index=True)  # fact.import | fact.retract | violation.waive | …
    target: str = Field(default="", sa_column=Column(Text, nullable=False))
    detail: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON, as hashed
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """One row (id 1): appending updates it first, which serialises concurrent writers on both databases."""

    __tablename__ = "audit_head"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = 0
    last_hash: str = Field(max_length=64)
    baseline_fact_seq: int = 0  # fact_version rows up to this seq predate the audit log
