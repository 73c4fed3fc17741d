"""Creating (or upgrading) every table partyrules keeps, in one database."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import SQLModel

import engine.alerts.outbox  # noqa: F401
import engine.audit.tables  # noqa: F401
import engine.auth.tables  # noqa: F401
import engine.schedule.state  # noqa: F401
import engine.violations.tables  # noqa: F401  (registers the tables in SQLModel.metadata)
from facts.store import FactStore


def init_schema(db: sa.Engine) -> None:
    """Create every table that does not exist yet; safe to repeat."""
    from engine.audit.log import ensure_tables as ensure_audit
    from engine.pack.rollout import ensure_table  # imports the app factory, which imports this module

    FactStore(db).create_schema()
    SQLModel.metadata.create_all(db)
    ensure_table(db)
    ensure_audit(db)
