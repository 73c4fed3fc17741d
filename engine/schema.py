"""Creating (or upgrading) every table partyrules keeps, in one database (see engine.migrations)."""

from __future__ import annotations

import sqlalchemy as sa


def init_schema(db: sa.Engine) -> str:
    """Create a fresh schema, or upgrade an older one with the migrations; safe to repeat.

    Returns what was done: ``created``, ``current``, ``upgraded`` or ``upgraded from 0.1.0``.
    """
    from engine.migrations import upgrade_schema

    return upgrade_schema(db)
