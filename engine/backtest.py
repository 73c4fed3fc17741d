"""Backtest: what a candidate pack would flag or clear on the stored history, before it goes live.

The baseline is the pack in use, evaluated over the same range as of the same
date (so the comparison shows the change itself, whatever was stored by
earlier runs).  Rules whose definition is identical in both packs give
identical findings on the same data, so they are judged once and counted as
unchanged; the baseline's changed versions are matched in the same pass as the
candidate: a backtest costs one check plus the changed rules.  Nothing is stored.

A range with no dated records at all (meetings, dues, sign-offs, talks,
petitions…), or one not yet closed by the as-of date, has nothing to compare:
it raises :class:`BacktestError` saying so, rather than reporting that the
change flags nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from engine.app import App
from engine.evaluate import collect_work, make_finding, match_work
from engine.finding import Finding
from engine.pack.load import Pack
from engine.periods import PeriodRange, check_as_of, parse_range
from facts.errors import PartyrulesError
from facts.tables import (
    DeclarationRow,
    DuesRow,
    ElectionRow,
    FieldVisitRow,
    InterviewRow,
    MeetingRow,
    PetitionRow,
    PromotionRow,
    SignoffRow,
)

# the dated records of each kind: a range holding none of them has no history to backtest on
_DATED = (
    (MeetingRow, "date"),
    (DuesRow, "paid_on"),
    (SignoffRow, "date"),
    (InterviewRow, "date"),
    (PetitionRow, "received"),
    (ElectionRow, "date"),
    (FieldVisitRow, "date"),
    (DeclarationRow, "filed"),
    (PromotionRow, "date"),
)


class BacktestError(PartyrulesError):
    """A backtest that has nothing to compare; ``period`` and ``as_of`` say which."""

    def __init__(self, message: str, period: str, as_of: dt.date) -> None:
        self.period = period
        self.as_of = as_of
        super().__init__(message)


def dated_records(conn: sa.Connection, rng: PeriodRange) -> int:
    """How many dated records (meetings, dues, sign-offs…) fall inside ``rng``."""
    total = 0
    for model, column in _DATED:
        table = model.__table__  # type: ignore[union-attr]
        col = table.c[column]
        query = sa.select(sa.func.count()).select_from(table).where(col >= rng.start, col <= rng.end)
        total += int(conn.execute(query).scalar_one())
    return total


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
    """Judge ``period`` as of ``as_of`` with ``candidate`` and with ``baseline`` (default: the app's pack).

    Raises :class:`BacktestError` when the range holds no records or is not closed by ``as_of``.
    """
    t0 = time.perf_counter()
    rng = parse_range(period) if isinstance(period, str) else period
    as_of = check_as_of(as_of or app.today())
    baseline = baseline or app.pack()
    grace = app.config.check.grace_days
    cand_keys = {r.key for r in candidate.rules}
    base_keys = {r.key for r in baseline.rules}
    changed = {r.id for r in candidate.rules if r.key not in base_keys} | {
        r.id for r in baseline.rules if r.key not in cand_keys
    }
    # one matcher pass over the candidate and the baseline's changed versions (the matcher's set-up
    # costs about a second per call, whatever it is given)
    extra = [r for r in baseline.rules if r.key not in cand_keys]
    merged = dataclasses.replace(candidate, rules=[*candidate.rules, *extra])
    with app.db.connect() as conn:
        if not dated_records(conn, rng):
            raise BacktestError(
                f"回测期间 {rng.text}（{rng.start} 至 {rng.end}）没有任何记录（会议、党费、谈话、信访等），"
                "无从比较新旧规则；请选择有数据的期间，或先导入这一期间的记录",
                rng.text,
                as_of,
            )
        work = collect_work(conn, merged, rng, as_of, grace)
    if not work.scope:
        raise BacktestError(
            f"回测期间 {rng.text} 到判定日 {as_of} 尚未结束（含宽限期 {grace} 天），没有可判定的期间；"
            "请用 --as-of 指定一个更晚的判定日",
            rng.text,
            as_of,
        )
    fired = match_work(merged, work, app.config.check.processes)
    result = Backtest()
    new: dict[str, Finding] = {}
    old: dict[str, Finding] = {}
    for (rule, subject), hit in zip(work.items, fired, strict=True):
        result.subjects += rule.key in cand_keys
        if not hit:
            continue
        if rule.id not in changed:  # every version identical in both packs: the same verdict
            result.unchanged += 1
            continue
        finding = make_finding(rule, subject, work.registry)
        if rule.key in cand_keys:
            new[finding.key] = finding
        if rule.key in base_keys:
            old[finding.key] = finding
    result.added = [f for k, f in new.items() if k not in old]
    result.removed = [f for k, f in old.items() if k not in new]
    result.unchanged += sum(1 for k in new if k in old)
    result.seconds = time.perf_counter() - t0
    return result
