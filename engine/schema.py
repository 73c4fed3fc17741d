"""Creating (or upgrading) every table partyrules keeps, in one database (see engine.migrations)."""

from __future__ import annotations

import sqlalchemy as sa


def init_schema(db: sa.Engine) -> str:
    """Create a fresh schema, or upgrade an older one with the migrations; safe to repeat.

    Returns what was done: ``created``, ``current``, ``upgraded`` or ``upgraded from 0.1.0``.
    """
    from engine.audit.log import ensure_tables as ensure_audit
    from engine.migrations import upgrade_schema
    from facts.store import FactStore

    done = upgrade_schema(db)
    FactStore(db).restore_indexes()  # those a bulk import whose process died left out
    ensure_audit(db)  # the audit log's head row (which facts predate the log), once
    return done
