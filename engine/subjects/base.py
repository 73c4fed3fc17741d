"""What every subject builder shares: the subject record and the build context."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

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
    # a planned partition (engine.cluster): the subjects under these top-level orgs, and with ``orphans``
    # the subjects that have no org; used instead of ``part``
    roots: frozenset[str] | None = None
    orphans: bool = False

    def mine(self, org_id: str | None) -> bool:
        """Whether a subject of ``org_id`` belongs to this context's partition (by its top-level org)."""
        if self.part is None and self.roots is None:
            return True
        known: dict[str | None, bool] = self.cache.setdefault("mine", {})
        answer = known.get(org_id)
        if answer is None and self.roots is not None:
            path = self.registry.path(org_id) if org_id is not None else []
            answer = self.orphans if org_id is None else (path[0] if path else org_id) in self.roots
            known[org_id] = answer
        elif answer is None and self.part is not None:
            k, n = self.part
            if org_id is None:
                answer = k == 0
            else:
                path = self.registry.path(org_id)
                answer = zlib.crc32((path[0] if path else org_id).encode()) % n == k
            known[org_id] = answer
        return bool(answer)

    def forget(self, keys: Iterable[Any]) -> None:
        """Drop these memoised values (never the partition's own bookkeeping): what is asked for again is
        rebuilt, so forgetting only ever costs time, never correctness."""
        for key in keys:
            if key not in ("mine", "part_tables"):
                self.cache.pop(key, None)

    def in_part(self, column: Any, of: Literal["org", "member"]) -> Any:
        """A SQL condition keeping the rows of ``column`` (an org or a member id) that belong to this
        context's partition, or ``sa.true()`` without one.

        Each worker of a partitioned evaluation then reads only its own share of the big tables (half
        the rows and half the memory with two workers) instead of reading all and dropping the rest.
        The ids go into two temporary tables of this connection, filled on first use.
        """
        if self.part is None and self.roots is None:
            return sa.true()
        tables = self.cache.get("part_tables")
        if tables is None:
            tables = self.cache["part_tables"] = self._part_tables()
        return column.in_(sa.select(tables[of].c.id))

    def _part_tables(self) -> dict[str, sa.Table]:
        meta = sa.MetaData()
        suffix = uuid.uuid4().hex[:12]  # unique per context: several may share a connection (tests)
        out: dict[str, sa.Table] = {}
        ids = {
            "org": [o for o in self.registry.orgs if self.mine(o)],
            "member": [m.id for m in self.registry.members.values() if self.mine(m.org)],
        }
        for of, wanted in ids.items():
            table = sa.Table(
                f"part_{of}_{suffix}", meta, sa.Column("id", sa.String, primary_key=True), prefixes=["TEMPORARY"]
            )
            table.create(self.conn)
            if wanted:
                self.conn.execute(sa.insert(table), [{"id": i} for i in wanted])
            out[of] = table
        return out


def month_col(column: Any) -> Any:
    """``YYYY-MM`` of a date column, portable between SQLite and PostgreSQL."""
    return sa.func.substr(sa.cast(column, sa.String), 1, 7)
