"""A served sample organisation for the API tests: accounts of every role, tokens, one check run."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from engine.app import build_app
from engine.auth import accounts
from engine.auth.principal import Principal
from engine.check import run_check
from engine.sample import sample_facts
from engine.service.facts_ops import submit_facts
from engine.web.api import create_api
from engine.web.security import LoginLimiter
from facts.errors import Location

ROOT = Principal.local("root")
ROLES = {
    "secretary_b1": ["secretary@b1"],
    "inspector_b1": ["inspector@b1"],
    "inspector_oc": ["inspector@oc"],
    "rule_admin": ["rule_admin"],
    "rule_admin2": ["rule_admin"],
    "admin": ["admin"],
    "secretary_b2": ["secretary@b2"],
}
PASSWORD = "correct-horse-9"


def build_template(folder: Path) -> Path:
    """The sample imported and checked once, with an account per role (password PASSWORD)."""
    db = folder / "served.db"
    app = build_app(str(db))
    app.init()
    items = [(Location("sample", i + 1), f) for i, f in enumerate(sample_facts())]
    submit_facts(app, ROOT, items, source="sample", judge=False)
    import datetime as dt

    run_check(app, "2017", as_of=dt.date(2018, 3, 1))
    for name, roles in ROLES.items():
        accounts.add_user(app.db, ROOT, name, roles, PASSWORD)
    app.db.dispose()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


@dataclass
class Served:
    client: TestClient
    tokens: dict[str, str]
    db_url: str

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def serve_copy(template: Path, folder: Path, limiter: LoginLimiter | None = None) -> Served:
    db = folder / "copy.db"
    shutil.copy(template, db)
    app = build_app(str(db))
    tokens = {name: accounts.create_token(app.db, ROOT, name) for name in ROLES}
    client = TestClient(create_api(app, limiter=limiter), base_url="https://testserver")
    return Served(client, tokens, str(db))
