"""Evidence files of a rectification report (整改佐证材料), kept in the database with their SHA-256."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Column, Field, LargeBinary, SQLModel


class RectificationEvidence(SQLModel, table=True):
    """One file attached to one rectification report (a ``report`` event of the violation's log).

    The bytes live in the same database as the violation (one backup, one transaction); ``sha256``
    is the hex digest of ``content``, shown to the secretary and the inspector and written to the
    audit log, so a file swapped later does not match what was recorded.
    """

    __tablename__ = "rectification_evidence"

    id: int | None = Field(default=None, primary_key=True)
    violation_key: str = Field(max_length=600, index=True)
    event_id: int | None = None  # the violation_event row of the report it came with
    filename: str = Field(max_length=255)
    content_type: str = Field(default="application/octet-stream", max_length=100)
    size: int
    sha256: str = Field(max_length=64, index=True)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    uploaded_by: str = Field(max_length=200)
    uploaded_at: dt.datetime
