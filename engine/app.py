"""The one factory: a config becomes the database, the stores and the rule pack.

Nothing here is built at import time; tests build their own ``App``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine.config import Config, load_config
from engine.pack.load import Pack, load_pack
from engine.schema import init_schema
from engine.violations.store import ViolationStore
from facts.db import make_engine
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

    def today(self) -> dt.date:
        return dt.datetime.now(ZoneInfo(self.config.check.timezone)).date()


def build_app(
    db_url: str | None = None, config_path: str | Path | None = None, config: Config | None = None
) -> App:
    cfg = config or load_config(config_path)
    db = make_engine(db_url or cfg.database)
    return App(cfg, db, FactStore(db), ViolationStore(db, cfg.alerts))
