"""What was judged: (rule, period) pairs reconstructed from the stored check runs and pack versions.

The ``check_run`` table keeps each successful run's period range, as-of
date, grace days and pack hash; ``pack_version`` keeps the rule texts of
that pack.  From them the judged pairs are recomputed with the same
timing rules as a check (in force on the period's first day; closed plus
grace by the as-of date; a yearly rule with a deadline once it passed; a
rule judged at the as-of date, a term of office, once the period began).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from engine.periods import Period, PeriodError, PeriodRange, parse_range
from engine.violations.tables import CheckRun, PackVersion

_RUN = CheckRun.__table__  # type: ignore[attr-defined]
_PV = PackVersion.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RuleInfo:
    """What a report needs of a rule's stored text."""

    id: str
    title: str
    basis: str
    severity: str
    granularity: str  # month | quarter | year


@dataclass
class Coverage:
    pairs: set[tuple[str, str]] = field(default_factory=set)  # (rule id, period label)
    labels: set[str] = field(
        default_factory=set
    )  # every period judged by some rule (or by a run whose pack is unknown)
    runs: dict[int, set[str]] = field(default_factory=dict)  # successful run -> the labels it judged
    rules: dict[str, RuleInfo] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def judged_for(self, rule: str, granularity: str) -> set[str]:
        """Labels judged for ``rule``; a rule whose pack text is unknown counts its granularity's judged labels."""
        own = {label for r, label in self.pairs if r == rule}
        return own or {label for label in self.labels if granularity_of(label) == granularity}


def granularity_of(label: str) -> str:
    """``2017`` → year, ``2017-Q2`` → quarter, ``2017-06`` → month."""
    return "year" if len(label) == 4 else "quarter" if "Q" in label.upper() else "month"


def _in_force(rule: dict[str, Any], day: date) -> bool:
    eff = rule.get("effective") or {}
    start, end = eff.get("from"), eff.get("to")
    if start and date.fromisoformat(str(start)) > day:
        return False
    return not (end and date.fromisoformat(str(end)) < day)


def rule_judges(rule: dict[str, Any], p: Period, as_of: date, grace_days: int) -> bool:
    """Whether a check as of ``as_of`` judged ``rule`` (its stored JSON text) over ``p``."""
    granularity = "month" if rule.get("period") == "fact" else rule.get("period")
    if granularity != p.granularity or not _in_force(rule, p.start):
        return False
    derive = rule.get("derive") or {}
    if any(isinstance(d, dict) and d.get("source") == "term_overdue" for d in derive.values()):
        return p.start <= as_of
    deadline = rule.get("deadline")
    if deadline:
        return as_of > date.fromisoformat(f"{p.start.year}-{deadline}")
    return p.closed_by(as_of, grace_days)


def rule_info(rule: dict[str, Any]) -> RuleInfo:
    period = str(rule.get("period", "month"))
    return RuleInfo(
        id=str(rule["id"]),
        title=str(rule.get("title", rule["id"])),
        basis=str(rule.get("basis", "")),
        severity=str(rule.get("severity", "warning")),
        granularity="month" if period == "fact" else period,
    )


def load_coverage(conn: sa.Connection, window: PeriodRange) -> Coverage:
    """The (rule, period) pairs inside ``window`` judged by successful check runs."""
    cov = Coverage()
    wanted = {p.label: p for p in window.all_periods()}
    runs = conn.execute(
        sa.select(_RUN.c.id, _RUN.c.period, _RUN.c.as_of, _RUN.c.grace_days, _RUN.c.pack_hash)
        .where(_RUN.c.status == "ok")
        .order_by(_RUN.c.id)
    ).all()
    packs: dict[str, dict[str, Any] | None] = {}
    for run_id, text, as_of, grace, pack_hash in runs:
        try:
            rng = parse_range(text)
        except PeriodError as exc:
            cov.notes.append(f"检查运行 #{run_id} 的期间“{text}”无法识别，未计入判定范围（{exc}）")
            continue
        periods = [p for p in rng.all_periods() if p.label in wanted and p.start <= as_of]
        if not periods:
            continue
        if pack_hash not in packs:
            packs[pack_hash] = conn.execute(sa.select(_PV.c.rules).where(_PV.c.hash == pack_hash)).scalar()
        rules = packs[pack_hash]
        if not rules:
            cov.notes.append(f"检查运行 #{run_id} 的规则包 {pack_hash} 未存档，按期间整体计入判定范围")
            judged = {p.label for p in periods if p.closed_by(as_of, grace)}
        else:
            judged = _add_pairs(cov, rules.values(), periods, as_of, grace)
        cov.labels.update(judged)
        if judged:
            cov.runs[run_id] = judged
    return cov


def _add_pairs(
    cov: Coverage, rules: Iterable[dict[str, Any]], periods: list[Period], as_of: date, grace: int
) -> set[str]:
    judged: set[str] = set()
    for rule in rules:
        info = rule_info(rule)
        cov.rules.setdefault(info.id, info)
        for p in periods:
            if rule_judges(rule, p, as_of, grace):
                cov.pairs.add((info.id, p.label))
                judged.add(p.label)
    return judged
