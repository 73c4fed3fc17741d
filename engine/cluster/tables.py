"""``check_partition``: one row per partition of a check run on a cluster (what ran where, retried or not)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel


class CheckPartition(SQLModel, table=True):
    __tablename__ = "check_partition"

    run_id: int = Field(primary_key=True, foreign_key="check_run.id")
    part: int = Field(primary_key=True)  # 0 = the heaviest
    roots: list[str] = Field(default_factory=list, sa_column=Column(JSON))  # top-level org ids
    facts: int = 0  # planned size: fact rows under those orgs
    findings: int = 0
    worker: str = Field(default="", max_length=200)  # host:pid that judged it (the run that counted)
    lost_workers: int = 0  # a worker died while running it; the scheduler ran it again elsewhere
    errors_retried: int = 0  # it raised and was run again
    retried: bool = False
    seconds_sql: float = 0.0
    seconds_match: float = 0.0
    seconds_total: float = 0.0


def record_partitions(db: sa.Engine, run_id: int, partitions: list[Any]) -> None:
    """Store the partition records of run ``run_id`` (replacing any: a run records its partitions once)."""
    table = CheckPartition.__table__  # type: ignore[attr-defined]
    rows = [
        {
            "run_id": run_id,
            "part": p.index,
            "roots": p.roots,
            "facts": p.facts,
            "findings": p.findings,
            "worker": p.worker[:200],
            "lost_workers": p.lost_workers,
            "errors_retried": p.errors_retried,
            "retried": p.retried,
            "seconds_sql": p.seconds_sql,
            "seconds_match": p.seconds_match,
            "seconds_total": p.seconds_total,
        }
        for p in partitions
    ]
    with db.begin() as conn:
        conn.execute(sa.delete(table).where(table.c.run_id == run_id))
        if rows:
            conn.execute(sa.insert(table), rows)
