"""What every subject builder shares: the subject record and the build context."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from engine.subjects.registry import Registry


@dataclass
class Subject:
    """One thing judged by one rule: a fact, or an org or member over a period."""

    type: str  # org | member | meeting | dues | petition | promotion
    id: str
    org: str | None
    member: str | None
    period: str  # YYYY-MM, YYYY-Qn or YYYY
    fields: dict[str, Any]  # every field of the subject schema, never None
    facts: list[str] = field(default_factory=list)  # ids of the facts involved (evidence)


@dataclass
class BuildContext:
    conn: sa.Connection
    registry: Registry
    as_of: date
    cache: dict[Any, Any] = field(default_factory=dict)  # per-evaluation memo of shared queries


def month_col(column: Any) -> Any:
    """``YYYY-MM`` of a date column, portable between SQLite and PostgreSQL."""
    return sa.func.substr(sa.cast(column, sa.String), 1, 7)
