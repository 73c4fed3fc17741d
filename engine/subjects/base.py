"""What every subject builder shares: the subject record and the build context."""

from __future__ import annotations

import zlib
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
    part: tuple[int, int] | None = None  # (k, n): build only the subjects of partition k of n
    only_orgs: set[str] | None = None  # org-level counts only for these orgs (judging a few submitted facts)

    def mine(self, org_id: str | None) -> bool:
        """Whether a subject of ``org_id`` belongs to this context's partition (by its top-level org)."""
        if self.part is None:
            return True
        k, n = self.part
        if org_id is None:
            return k == 0
        roots: dict[str, str] = self.cache.setdefault("roots", {})
        root = roots.get(org_id)
        if root is None:
            path = self.registry.path(org_id)
            root = roots[org_id] = path[0] if path else org_id
        return zlib.crc32(root.encode()) % n == k


def month_col(column: Any) -> Any:
    """``YYYY-MM`` of a date column, portable between SQLite and PostgreSQL."""
    return sa.func.substr(sa.cast(column, sa.String), 1, 7)
