"""What a report holds: plain dataclasses, computed by :mod:`engine.report.data`, drawn by the renderers.

Rates are shares in ``[0, 1]`` or ``None`` when nothing was there to share
(no judged period, no violation to rectify): a renderer shows ``None`` as
"—", never as 0% or 100%.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from engine.periods import Period
from facts.errors import PartyrulesError


class ReportError(PartyrulesError):
    """A report that cannot be built: a bad period, an unknown org, an unwritable file."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Counts:
    """Violations by state: ``active`` = open, acknowledged or rectifying."""

    violations: int = 0
    active: int = 0
    resolved: int = 0
    waived: int = 0
    overdue: int = 0  # rectifying past its deadline on the report date
    serious: int = 0  # serious or critical

    @property
    def rectification_rate(self) -> float | None:
        """整改率: resolved among the violations that were not waived."""
        return share(self.resolved, self.violations - self.waived)


@dataclass(frozen=True)
class OrgStat:
    org: str | None  # None: violations with no org
    name: str
    kind: str
    depth: int  # 0 at the top of the report's scope
    counts: Counts
    judged: int  # periods judged by a successful check run inside the report period
    clean: int  # of those, periods in which the org had no violation

    @property
    def compliance_rate(self) -> float | None:
        return share(self.clean, self.judged)


@dataclass(frozen=True)
class RuleStat:
    rule: str
    title: str
    basis: str
    severity: str
    granularity: str  # month | quarter | year ("fact" rules are judged by month)
    counts: Counts
    subjects: int  # distinct subjects with a violation
    orgs: int  # distinct orgs with a violation
    judged: int  # periods of the rule's granularity judged by a successful check run
    clean: int  # of those, periods with no violation of the rule anywhere in scope

    @property
    def compliance_rate(self) -> float | None:
        return share(self.clean, self.judged)


@dataclass(frozen=True)
class TrendPoint:
    period: str
    label_cn: str
    counts: Counts
    orgs: int
    judged: bool  # False: no successful check run judged this period, so zero means "not checked"


@dataclass(frozen=True)
class MonthRuleCount:
    """Violations of one rule attributed to one month (quarter and year ones to their last month)."""

    month: str
    rule: str
    title: str
    count: int


@dataclass(frozen=True)
class LedgerEntry:
    """One line of the rectification ledger (整改台账)."""

    no: int
    key: str
    org_name: str
    period: str
    problem: str
    rule: str
    title: str
    basis: str
    severity: str
    status: str
    owner: str | None
    deadline: dt.date | None
    plan: str | None
    evidence: str  # how it was fixed, or why it was waived; "" while open
    found: dt.date
    closed: dt.date | None
    overdue: bool


@dataclass
class Report:
    period: Period
    org: str | None
    org_name: str
    as_of: dt.date  # the report date: "overdue" is judged against it
    generated_at: dt.datetime
    trend_periods: int
    totals: Counts = field(default_factory=Counts)
    judged: list[str] = field(default_factory=list)  # period labels judged inside the report period
    runs: list[int] = field(default_factory=list)  # successful check runs that judged them
    by_org: list[OrgStat] = field(default_factory=list)
    by_rule: list[RuleStat] = field(default_factory=list)
    matrix: dict[str, dict[str, int]] = field(default_factory=dict)  # org id -> rule -> violations
    trend: list[TrendPoint] = field(default_factory=list)
    months: list[str] = field(default_factory=list)  # every month of the trend window, for the charts
    by_month: list[MonthRuleCount] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # things the reader must know (ignored runs, …)

    @property
    def title(self) -> str:
        scope = self.org_name or "全部组织"
        return f"{scope}{self.period.label_cn}党建合规情况报告"
