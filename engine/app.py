"""The one factory: a config becomes the database, the stores and the rule pack.

Nothing here is built at import time; tests build their own ``App``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine.config import Config, load_config
from engine.pack.load import Pack, load_pack
from engine.schema import init_schema
from engine.violations.store import ViolationStore
from facts.db import make_engine
from facts.errors import PartyrulesError
from facts.store import FactStore
from rules import STANDARD_PACK


@dataclass
class App:
    config: Config
    db: sa.Engine
    facts: FactStore
    violations: ViolationStore
    _packs: dict[str, Pack] = field(default_factory=dict)

    def init(self) -> str:
        """Create or upgrade the schema; returns what was done (see engine.schema.init_schema)."""
        return init_schema(self.db)

    def pack_root(self, rules_dir: str | Path | None = None) -> Path:
        chosen = rules_dir or self.config.check.rules
        return Path(chosen) if chosen else STANDARD_PACK

    def pack(self, rules_dir: str | Path | None = None) -> Pack:
        """The rule pack in use (validated and compiled when loaded; raises PackError listing every problem)."""
        root = str(self.pack_root(rules_dir))
        if root not in self._packs:
            self._packs[root] = load_pack(root)
        return self._packs[root]

    def stored_pack(self, key: str, build: Callable[[], Pack]) -> Pack:
        """A pack version rebuilt from the database, kept like a loaded folder (``key`` holds its content hash)."""
        if key not in self._packs:
            self._packs[key] = build()
        return self._packs[key]

    def today(self) -> dt.date:
        return dt.datetime.now(ZoneInfo(self.config.check.timezone)).date()


class DatabaseError(PartyrulesError):
    """A database that is missing, has no partyrules schema, or cannot be reached."""


HINT = "run `partyrules init` or pass --db / set PARTYRULES_DB"


def shown_url(engine: sa.Engine) -> str:
    """The database as a person names it: a SQLite file's path (./partyrules.db), else the URL without password."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database:
        path = url.database
        return path if os.path.isabs(path) or path.startswith(".") else f"./{path}"
    return url.render_as_string(hide_password=True)


def connection_error(engine: sa.Engine, exc: BaseException) -> DatabaseError:
    """One line for a database that cannot be reached (server down, no such database, refused login)."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return DatabaseError(f"cannot open the database {shown_url(engine)}: {detail[0] if detail else type(exc).__name__}")


def require_database(engine: sa.Engine) -> None:
    """Raise :class:`DatabaseError` unless ``engine`` reaches an existing partyrules database.

    Only ``init`` (and ``import``) create one: any other command on a missing SQLite file used to create
    an empty ``./partyrules.db`` silently and report 0 violations."""
    url = engine.url
    is_file = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if is_file and not Path(str(url.database)).exists():
        raise DatabaseError(f"no database at {shown_url(engine)} — {HINT}")
    try:
        with engine.connect() as conn:
            ready = sa.inspect(conn).has_table("fact_version")
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        raise connection_error(engine, exc) from None
    if not ready:
        raise DatabaseError(f"the database at {shown_url(engine)} has no partyrules tables — {HINT}")


def build_app(
    db_url: str | None = None,
    config_path: str | Path | None = None,
    config: Config | None = None,
    must_exist: bool = False,
) -> App:
    """The app for ``db_url`` (else the config's database, ``PARTYRULES_DB``, ``./partyrules.db``); with
    ``must_exist`` the database must already hold the partyrules schema (see :func:`require_database`)."""
    cfg = config or load_config(config_path)
    try:
        db = make_engine(db_url or cfg.database)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise DatabaseError(
            f"not a database partyrules can use: {db_url or cfg.database!r} ({exc}); "
            "give a SQLite file or a postgresql:// URL"
        ) from None
    if must_exist:
        require_database(db)
    return App(cfg, db, FactStore(db), ViolationStore(db, cfg.alerts))
