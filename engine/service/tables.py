"""Rule packs uploaded through the service, awaiting backtest and approval by another account."""

from __future__ import annotations

import datetime as dt

from sqlmodel import JSON, Column, Field, SQLModel


class PackUpload(SQLModel, table=True):
    __tablename__ = "pack_upload"

    hash: str = Field(primary_key=True, max_length=32)
    files: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )  # name -> base64
    rules: int = 0
    uploaded_by: str = Field(max_length=200)
    uploaded_by_id: int | None = None
    uploaded_at: dt.datetime
    approved_by: str | None = Field(default=None, max_length=200)
    approved_by_id: int | None = None
    approved_at: dt.datetime | None = None
