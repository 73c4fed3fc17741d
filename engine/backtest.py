"""Backtest: what a candidate pack would flag or clear on the stored history, before it goes live.

The baseline is the pack in use, evaluated over the same range as of the same
date (so the comparison shows the change itself, whatever was stored by
earlier runs).  Rules whose definition is identical in both packs give
identical findings on the same data, so they are judged once and counted as
unchanged: a backtest costs one check plus the changed rules.  Nothing is stored.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from engine.app import App
from engine.evaluate import evaluate
from engine.finding import Finding
from engine.pack.load import Pack
from engine.periods import PeriodRange, parse_range


@dataclass
class Backtest:
    added: list[Finding] = field(default_factory=list)  # flagged by the candidate only
    removed: list[Finding] = field(default_factory=list)  # flagged now, no longer by the candidate
    unchanged: int = 0
    subjects: int = 0  # subjects judged by the candidate
    seconds: float = 0.0

    def by_rule(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for name, items in (("added", self.added), ("removed", self.removed)):
            for f in items:
                out.setdefault(f.rule, Counter())[name] += 1
        return {k: dict(v) for k, v in sorted(out.items())}

    def by_org(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for name, items in (("added", self.added), ("removed", self.removed)):
            for f in items:
                out.setdefault(f.org_name or f.org or "-", Counter())[name] += 1
        return {k: dict(v) for k, v in sorted(out.items())}

    @property
    def flipped_share(self) -> float:
        """Share of judged subjects whose verdict the candidate changes (for the blast-radius guard)."""
        return (len(self.added) + len(self.removed)) / self.subjects if self.subjects else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "added": [f.to_json() for f in self.added],
            "removed": [f.to_json() for f in self.removed],
            "unchanged": self.unchanged,
            "by_rule": self.by_rule(),
            "by_org": self.by_org(),
            "subjects": self.subjects,
            "flipped_share": round(self.flipped_share, 6),
        }


def backtest(
    app: App,
    candidate: Pack,
    period: str | PeriodRange,
    as_of: dt.date | None = None,
    baseline: Pack | None = None,
) -> Backtest:
    t0 = time.perf_counter()
    rng = parse_range(period) if isinstance(period, str) else period
    as_of = as_of or app.today()
    baseline = baseline or app.pack()
    grace = app.config.check.grace_days
    same = {r.key for r in candidate.rules} & {r.key for r in baseline.rules}
    changed_new = sorted({r.id for r in candidate.rules if r.key not in same})
    changed_old = sorted({r.id for r in baseline.rules if r.key not in same})
    result = Backtest()
    processes = app.config.check.processes
    with app.db.connect() as conn:
        new = evaluate(conn, candidate, rng, as_of, grace, processes=processes)
        old = (
            evaluate(conn, baseline, rng, as_of, grace, rule_ids=changed_old, processes=processes)
            if changed_old
            else None
        )
    result.subjects = sum(new.subjects.values())
    new_changed = {f.key: f for f in new.findings if f.rule in changed_new}
    result.unchanged = sum(1 for f in new.findings if f.rule not in changed_new)
    old_changed = {f.key: f for f in old.findings} if old else {}
    result.added = [f for k, f in new_changed.items() if k not in old_changed]
    result.removed = [f for k, f in old_changed.items() if k not in new_changed]
    result.unchanged += sum(1 for k in new_changed if k in old_changed)
    result.seconds = time.perf_counter() - t0
    return result
