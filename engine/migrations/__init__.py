"""Schema migrations (Alembic), shipped in the package and run from code: no alembic.ini for users.

``partyrules init`` calls :func:`upgrade_schema`, which looks at the database and

* **fresh** (none of partyrules' tables): creates every table from the models and stamps it at the
  head revision;
* **0.1.0, before migrations** (partyrules' tables but no ``alembic_version``): runs every migration
  from the start; the baseline creates only the 0.1.0 tables that are missing, so the database is
  in effect stamped at the baseline and upgraded;
* **versioned**: upgrades to the head if it is behind (nothing to do when it is at the head).

Everything happens in one transaction (PostgreSQL takes an advisory lock first, so two processes
initialising at once do not race).  Developers add a migration with
``python -m engine.migrations revision -m "what changes" --autogenerate``; ``tests/test_migrations.py``
fails when the models and the migrated schema differ, or when there is more than one head.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

HERE = Path(__file__).resolve().parent
BASELINE = "baseline_0_1_0"  # the schema of partyrules 0.1.0, the last release without migrations
# file names must be importable module names (mypy checks the migrations like the rest of the code)
FILE_TEMPLATE = "m%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s"
_PG_LOCK = 0x7061727479  # pg_advisory_xact_lock key: "party"

# alembic says "Context impl SQLiteImpl" at INFO on every command; keep it out of the schedule's log unless
# someone configured alembic's logger on purpose
if logging.getLogger("alembic").level == logging.NOTSET:
    logging.getLogger("alembic").setLevel(logging.WARNING)


def config() -> Config:
    """An Alembic config pointing at the migrations inside the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("file_template", FILE_TEMPLATE)
    return cfg


@functools.cache
def script() -> ScriptDirectory:
    """The migration scripts (read once a process)."""
    return ScriptDirectory.from_config(config())


def heads() -> tuple[str, ...]:
    return tuple(script().get_heads())


def target_metadata() -> sa.MetaData:
    """The metadata holding every table of partyrules (imports the modules that define them)."""
    from sqlmodel import SQLModel

    import engine.alerts.outbox  # noqa: F401
    import engine.audit.tables  # noqa: F401
    import engine.auth.tables  # noqa: F401
    import engine.cluster.tables  # noqa: F401
    import engine.pack.approvals  # noqa: F401
    import engine.schedule.leader  # noqa: F401
    import engine.schedule.tables  # noqa: F401
    import engine.service.rectify_tables  # noqa: F401
    import engine.service.tables  # noqa: F401
    import engine.violations.tables  # noqa: F401
    import facts.tables  # noqa: F401

    return SQLModel.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Autogenerate writes SQLModel's column types as plain SQLAlchemy ones (no sqlmodel import)."""
    from sqlmodel.sql import sqltypes

    if type_ == "type" and isinstance(obj, sqltypes.AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    if type_ == "type" and isinstance(obj, getattr(sqltypes, "UTCDateTime", ())):
        return "sa.DateTime(timezone=True)"
    return False


def configure_kwargs() -> dict[str, Any]:
    """The options every migration context uses (here and in env.py for the alembic CLI)."""
    return {
        "target_metadata": target_metadata(),
        "render_as_batch": True,  # SQLite alters a table by copying it; batch ops do that for us
        "compare_type": True,
        "render_item": render_item,
    }


def current_revisions(conn: sa.Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(conn).get_current_heads())


def schema_state(conn: sa.Connection) -> str:
    """``fresh``, ``legacy`` (0.1.0, made before migrations) or ``versioned``."""
    names = set(sa.inspect(conn).get_table_names())
    if "alembic_version" in names and current_revisions(conn):
        return "versioned"
    return "legacy" if names & baseline_tables() else "fresh"


def baseline_tables() -> set[str]:
    from engine.migrations.versions import m0_baseline_0_1_0 as base

    return set(base.TABLES)


def run_migrations(conn: sa.Connection, destination: str = "head") -> None:
    """Upgrade ``conn``'s database from its current revision to ``destination`` (as alembic upgrade)."""
    scripts = script()

    def upgrade(rev: Any, _context: Any) -> Iterable[Any]:
        return scripts._upgrade_revs(destination, rev)

    with EnvironmentContext(config(), scripts, fn=upgrade, destination_rev=destination) as env:
        env.configure(connection=conn, **configure_kwargs())
        with env.begin_transaction():
            env.run_migrations()


def upgrade_schema(db: sa.Engine) -> str:
    """Create or upgrade the schema of ``db``; safe to repeat.  Returns what was done."""
    with db.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
        state = schema_state(conn)
        if state == "fresh":
            target_metadata().create_all(conn)
            MigrationContext.configure(conn).stamp(script(), "head")
            return "created"
        if state == "versioned" and set(current_revisions(conn)) == set(heads()):
            return "current"
        run_migrations(conn)
        return "upgraded from 0.1.0" if state == "legacy" else "upgraded"
