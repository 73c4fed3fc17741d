"""The schedule's tables: periods already judged (``schedule_period_done``) and named values (``schedule_state``).

Only the tables, so the migrations' metadata (:mod:`engine.migrations`) can import them without importing
:mod:`engine.schedule.state`, which creates the schema through :mod:`engine.schema`.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel


class SchedulePeriodDone(SQLModel, table=True):
    """One month, quarter or year the schedule has judged."""

    __tablename__ = "schedule_period_done"

    period: str = Field(primary_key=True, max_length=16)  # 2017-06, 2017-Q2, 2017
    granularity: str = Field(max_length=8)
    due: dt.date  # the first day it could be judged: end + grace + 1
    as_of: dt.date
    checked_at: dt.datetime
    run_id: int | None = None  # the check_run that judged it (a quarter's run also judges its months)


class ScheduleState(SQLModel, table=True):
    """Small named values: ``epoch`` is the day the schedule first ran on this database."""

    __tablename__ = "schedule_state"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=200)
