"""The scheduler's leader lock: one ``schedule run`` per database at a time.

Two schedulers on one database ran every check twice and failed on each other's rows (IntegrityError).
The lock is a row in ``schedule_leader``: its owner (host:pid:token) and a lease (Unix time) the leader
renews every third of it.  A second scheduler finds the lease held, says so and waits; it takes over
when the first stops (it releases the row) or dies (its lease runs out).  Plain SQL, so the same on
SQLite and PostgreSQL; leases compare the hosts' clocks, which must agree to within the lease.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel

_log = logging.getLogger(__name__)
LOCK_NAME = "scheduler"


class ScheduleLeader(SQLModel, table=True):
    """Who runs the schedule on this database, until when (``lease_until``, Unix seconds)."""

    __tablename__ = "schedule_leader"

    name: str = Field(primary_key=True, max_length=64)
    owner: str = Field(max_length=300)
    acquired_at: float
    lease_until: float


_T = ScheduleLeader.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Holder:
    owner: str
    lease_until: float

    def describe(self) -> str:
        left = max(0.0, self.lease_until - time.time())
        return f"{self.owner}（租约还剩 {left:.0f} 秒）"


class LeaderLock:
    """``acquire`` / ``renew`` / ``release`` the lock named ``name`` for this process."""

    def __init__(self, db: sa.Engine, lease_seconds: float, name: str = LOCK_NAME) -> None:
        self.db = db
        self.lease = lease_seconds
        self.name = name
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def ensure_table(self) -> None:
        _T.create(self.db, checkfirst=True)

    def acquire(self) -> Holder | None:
        """Take or keep the lock; None when taken, else who holds it."""
        now = time.time()
        with self.db.begin() as conn:
            taken = conn.execute(
                sa.update(_T)
                .where(_T.c.name == self.name, sa.or_(_T.c.owner == self.owner, _T.c.lease_until < now))
                .values(owner=self.owner, acquired_at=now, lease_until=now + self.lease)
            ).rowcount
            if not taken:
                insert = postgresql.insert if self.db.dialect.name == "postgresql" else sqlite.insert
                taken = conn.execute(
                    insert(_T)
                    .values(name=self.name, owner=self.owner, acquired_at=now, lease_until=now + self.lease)
                    .on_conflict_do_nothing(index_elements=["name"])
                ).rowcount
            if taken:
                return None
            row = conn.execute(sa.select(_T.c.owner, _T.c.lease_until).where(_T.c.name == self.name)).one()
        return Holder(row.owner, row.lease_until)

    def renew(self) -> bool:
        """Extend the lease; False when it was lost (another scheduler took over after it ran out)."""
        now = time.time()
        with self.db.begin() as conn:
            return bool(
                conn.execute(
                    sa.update(_T)
                    .where(_T.c.name == self.name, _T.c.owner == self.owner)
                    .values(lease_until=now + self.lease)
                ).rowcount
            )

    def release(self) -> None:
        """Give the lock up at once (a clean stop): a waiting scheduler takes over on its next try."""
        with self.db.begin() as conn:
            conn.execute(
                sa.update(_T).where(_T.c.name == self.name, _T.c.owner == self.owner).values(lease_until=0.0)
            )
