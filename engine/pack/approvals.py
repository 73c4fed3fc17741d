"""The ``pack_approval`` table: each configured pack content a run looked at, and whether it may run.

Only the table, so the migrations' metadata (:mod:`engine.migrations`) can import it without importing the
rollout logic (:mod:`engine.pack.rollout`), which builds on the application and the backtest.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import JSON, Column, Field, SQLModel, Text


class PackApproval(SQLModel, table=True):
    """Each configured pack content a run looked at, and whether it may run."""

    __tablename__ = "pack_approval"

    hash: str = Field(primary_key=True, max_length=32)  # the pack hash; "files:<digest>" for an invalid one
    root: str = ""
    status: str = Field(max_length=16)  # good | held | approved | invalid
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    flipped_share: float | None = None  # the guard's backtest: share of judged subjects it flips
    decided_by: str | None = Field(default=None, max_length=200)  # who approved it
    at: dt.datetime  # when the status was last set
    last_used: dt.datetime | None = None  # the last run that used it
    files: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )  # path in the pack -> base64 of its bytes
