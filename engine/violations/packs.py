"""Pack versions seen by runs: every violation stays explainable by the rule text that produced it."""

from __future__ import annotations

import datetime as dt
import weakref
from typing import Any

import sqlalchemy as sa

from engine.pack.load import Pack
from engine.violations.tables import PackVersion

_PV = PackVersion.__table__  # type: ignore[attr-defined]


# engine -> the pack hashes this process has seen stored there: a service judging submissions asked the
# database on every one (a transaction and a statement) for the same pack
_REMEMBERED: weakref.WeakKeyDictionary[sa.Engine, set[str]] = weakref.WeakKeyDictionary()
_STORED = sa.select(_PV.c.hash).where(_PV.c.hash == sa.bindparam("hash"))


def remember_pack(db: sa.Engine, pack: Pack) -> None:
    """Store the pack's rule texts under its hash, once (asked of the database once a process and engine)."""
    known = _REMEMBERED.setdefault(db, set())
    if pack.hash in known:
        return
    with db.begin() as conn:
        if conn.execute(_STORED, {"hash": pack.hash}).first():
            known.add(pack.hash)
            return
        rules = {r.key: r.rule.model_dump(mode="json", by_alias=True, exclude={"tests"}) for r in pack.rules}
        conn.execute(
            sa.insert(_PV).values(
                hash=pack.hash, root=pack.root, first_used=dt.datetime.now(dt.UTC), rules=rules
            )
        )
    known.add(pack.hash)  # committed


def pack_history(db: sa.Engine) -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(_PV.c.hash, _PV.c.root, _PV.c.first_used, _PV.c.rules).order_by(_PV.c.first_used)
        )
        return [dict(hash=h, root=root, first_used=first, rules=len(rules)) for h, root, first, rules in rows]


def rule_text(db: sa.Engine, pack_hash: str, rule_key: str) -> dict[str, Any] | None:
    """The definition of one rule version as a run stored it."""
    with db.connect() as conn:
        rules = conn.execute(sa.select(_PV.c.rules).where(_PV.c.hash == pack_hash)).scalar()
    if not rules:
        return None
    found = rules.get(rule_key)
    return found if isinstance(found, dict) else None
