"""A tiny store of two branches with a member and a meeting each, and a secretary account for b1."""

from __future__ import annotations

from engine.app import build_app
from engine.auth import accounts
from engine.auth.principal import Principal
from engine.service.facts_ops import submit_facts
from facts.errors import Location

ROOT = Principal.local("root")


def seed_two_branches(db: str) -> None:
    app = build_app(db)
    app.init()
    objs: list[dict] = [{"type": "org", "id": "o1", "name": "机关党委", "kind": "organ_committee"}]
    for b in ("b1", "b2"):
        m = "m1" if b == "b1" else "m2"
        objs += [
            {"type": "org", "id": b, "name": f"{b}支部", "kind": "branch", "parent": "o1"},
            {"type": "member", "id": m, "name": f"党员{m}", "org": b, "status": "full", "category": "in_service"},
            {"type": "meeting", "id": f"{b}-m", "org": b, "kind": "committee_meeting", "date": "2017-03-10",
             "attendees": [m]},
        ]
    got = submit_facts(app, ROOT, [(Location("seed", i + 1), o) for i, o in enumerate(objs)], judge=False)
    assert not got.report.problems, got.report.problems
    accounts.add_user(app.db, ROOT, "sec1", ["secretary@b1"], None)
    app.db.dispose()
