"""Computing a report from the violations table, the org registry and the stored check runs.

``build_report(engine, "2017", org="o1")`` gathers the violations of the
period (and of the trend window before it) inside the org's subtree and
sums them by org, by rule, by period and by month; the rectification
ledger lists each one with its responsible person, deadline and status.

Rates, defined from what is stored (the ``check_run`` table does not keep
per-rule subject counts):

- 合规率 of an org: among the periods (months, quarters and the year)
  inside the report period that a successful check run judged, the share in
  which the org had no violation;
- 合规率 of a rule: among the periods of the rule's own granularity that a
  successful run judged for it, the share with no violation of the rule
  anywhere in scope;
- 整改率: resolved violations among those not waived.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from engine.orgtree import describe, parent_cycles
from engine.periods import Period, PeriodRange, month_of, parse_period, shift
from engine.report.coverage import Coverage, RuleInfo, granularity_of, load_coverage
from engine.report.model import (
    Counts,
    LedgerEntry,
    MonthRuleCount,
    OrgStat,
    Report,
    ReportError,
    RuleStat,
    TrendPoint,
)
from engine.violations.tables import ACTIVE, Violation
from facts.tables import OrgRow

_V = Violation.__table__  # type: ignore[attr-defined]
_ORG = OrgRow.__table__  # type: ignore[attr-defined]
_COLUMNS = [
    "key",
    "rule",
    "title",
    "basis",
    "severity",
    "subject_type",
    "subject_id",
    "org",
    "org_name",
    "period",
    "message",
    "status",
    "owner",
    "deadline",
    "plan",
    "resolution",
    "waiver_reason",
    "waiver_approver",
    "waiver_expires",
    "first_seen",
    "resolved_at",
]
NO_ORG = "（未归属组织）"


def build_report(
    engine: sa.Engine,
    period: str,
    org: str | None = None,
    *,
    trend_periods: int = 4,
    as_of: dt.date | None = None,
    now: dt.datetime | None = None,
) -> Report:
    """The report of ``period`` (``2017``, ``2017-Q2``, ``2017-06``) for ``org``'s subtree (default: every org).

    ``trend_periods`` counts the report period and the ones of the same
    granularity before it; ``as_of`` (default today) decides which
    rectifications are overdue.
    """
    if trend_periods < 1:
        raise ReportError(f"trend_periods must be at least 1, got {trend_periods}", "report")
    p = parse_period(period)
    first = shift(p, -(trend_periods - 1))
    window = PeriodRange(first.start, p.end, f"{first.label}..{p.label}")
    now = now or dt.datetime.now(dt.UTC)
    as_of = as_of or now.date()
    with engine.connect() as conn:
        orgs = {
            row.id: row
            for row in conn.execute(
                sa.select(
                    _ORG.c.id, _ORG.c.name, _ORG.c.kind, _ORG.c.parent, _ORG.c.established, _ORG.c.dissolved
                )
            )
        }
        scope = _subtree(orgs, org) if org else None
        rows = _violations(conn, [q.label for q in window.all_periods()])
        cov = load_coverage(conn, window)
    rows = [r for r in rows if scope is None or r.org in scope]
    inside = {q.label for q in PeriodRange(p.start, p.end, p.label).all_periods()}
    current = [r for r in rows if r.period in inside]
    report = Report(
        period=p,
        org=org,
        org_name=orgs[org].name if org else "",
        as_of=as_of,
        generated_at=now,
        trend_periods=trend_periods,
        totals=counts(current, as_of),
        judged=sorted(cov.labels & inside),
        runs=sorted(run for run, labels in cov.runs.items() if labels & inside),
        notes=list(cov.notes),
    )
    order = _tree_order(orgs)
    for cycle in parent_cycles({o.id: o.parent for o in orgs.values()}):
        report.notes.append(f"数据质量：组织上下级关系存在循环 {describe(cycle)}，请更正其上级组织（parent）")
    report.by_org = _by_org(current, orgs, scope, order, org, p, set(report.judged), as_of)
    report.by_rule = _by_rule(current, cov, inside, as_of)
    report.matrix = _matrix(current)
    report.trend = _trend(rows, cov, window, p, as_of)
    report.months = [m.label for m in window.periods("month")]
    report.by_month = _by_month(rows, window)
    report.ledger = _ledger(current, order, as_of)
    if not report.judged:
        report.notes.append(
            f"{p.label_cn}没有成功的检查运行记录：以下“合规率”无从计算，问题数仅反映已存储的问题"
        )
    return report


def _violations(conn: sa.Connection, labels: Sequence[str]) -> list[Any]:
    query = sa.select(*(_V.c[name] for name in _COLUMNS)).where(_V.c.period.in_(list(labels)))
    return list(conn.execute(query).all())


def _subtree(orgs: dict[str, Any], root: str) -> set[str]:
    if root not in orgs:
        by_name = [o.id for o in orgs.values() if o.name == root]
        close = by_name or difflib.get_close_matches(root, list(orgs), n=3, cutoff=0.5)
        named = [f"{c}（{orgs[c].name}）" for c in close]
        hint = f"; did you mean {', '.join(named)}?" if close else " (see `partyrules orgs`)"
        raise ReportError(f"no org with id {root!r}{hint}", "--org")
    children: dict[str, list[str]] = defaultdict(list)
    for row in orgs.values():
        if row.parent:
            children[row.parent].append(row.id)
    out, todo = set(), [root]
    while todo:
        current = todo.pop()
        if current not in out:
            out.add(current)
            todo.extend(children.get(current, []))
    return out


def _tree_order(orgs: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Org id → (position in a depth-first walk from the roots, depth)."""
    children: dict[str | None, list[str]] = defaultdict(list)
    for row in orgs.values():
        children[row.parent if row.parent in orgs else None].append(row.id)
    order: dict[str, tuple[int, int]] = {}
    starts = sorted(children[None])
    while True:
        todo: list[tuple[str, int]] = [(c, 0) for c in reversed(starts)]
        while todo:
            current, depth = todo.pop()
            if current in order:
                continue
            order[current] = (len(order), depth)
            todo.extend((c, depth + 1) for c in sorted(children.get(current, []), reverse=True))
        # orgs in a parent cycle (and below one) hang from no root: each cycle is walked from its
        # smallest id, so every org has a place and none is lost from the report
        rest = sorted(set(orgs) - set(order))
        if not rest:
            return order
        starts = rest[:1]


def counts(rows: Iterable[Any], as_of: dt.date) -> Counts:
    n: Counter[str] = Counter()
    for r in rows:
        n["violations"] += 1
        n["active"] += r.status in ACTIVE
        n["resolved"] += r.status == "resolved"
        n["waived"] += r.status == "waived"
        n["overdue"] += _overdue(r, as_of)
        n["serious"] += r.severity in ("serious", "critical")
    return Counts(**n)


def _overdue(r: Any, as_of: dt.date) -> bool:
    return bool(r.status in ACTIVE and r.deadline is not None and r.deadline < as_of)


def _by_org(
    rows: list[Any],
    orgs: dict[str, Any],
    scope: set[str] | None,
    order: dict[str, tuple[int, int]],
    root: str | None,
    p: Period,
    judged: set[str],
    as_of: dt.date,
) -> list[OrgStat]:
    grouped: dict[str | None, list[Any]] = defaultdict(list)
    for r in rows:
        grouped[r.org].append(r)
    ids = {
        o.id
        for o in orgs.values()
        if (scope is None or o.id in scope)
        and (o.established is None or o.established <= p.end)
        and (o.dissolved is None or o.dissolved >= p.start)
    }
    base = order[root][1] if root else 0
    out = []
    for org in sorted(
        ids | set(grouped), key=lambda o: (o is None, order.get(o or "", (len(order), 0)), o or "")
    ):
        mine = grouped.get(org, [])
        info = orgs.get(org) if org else None
        name = info.name if info else (mine[0].org_name or org) if org else NO_ORG
        depth = order[org][1] - base if org in order else 0
        clean = len(judged - {r.period for r in mine})
        out.append(
            OrgStat(org, name, info.kind if info else "", depth, counts(mine, as_of), len(judged), clean)
        )
    return out


def _by_rule(rows: list[Any], cov: Coverage, inside: set[str], as_of: dt.date) -> list[RuleStat]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        grouped[r.rule].append(r)
    infos = dict(cov.rules)
    for rule, mine in grouped.items():
        last = mine[-1]
        infos.setdefault(
            rule, RuleInfo(rule, last.title, last.basis, last.severity, granularity_of(last.period))
        )
    out = []
    for rule, info in infos.items():
        mine = grouped.get(rule, [])
        judged = cov.judged_for(rule, info.granularity) & inside
        if not mine and not judged:
            continue
        clean = len(judged - {r.period for r in mine})
        out.append(
            RuleStat(
                rule=rule,
                title=info.title,
                basis=info.basis,
                severity=info.severity,
                granularity=info.granularity,
                counts=counts(mine, as_of),
                subjects=len({(r.subject_type, r.subject_id) for r in mine}),
                orgs=len({r.org for r in mine if r.org}),
                judged=len(judged),
                clean=clean,
            )
        )
    out.sort(key=lambda s: (-s.counts.violations, s.rule))
    return out


def _matrix(rows: list[Any]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for r in rows:
        cell = out[r.org or ""]
        cell[r.rule] = cell.get(r.rule, 0) + 1
    return dict(out)


def _trend(
    rows: list[Any], cov: Coverage, window: PeriodRange, p: Period, as_of: dt.date
) -> list[TrendPoint]:
    out = []
    for q in window.periods(p.granularity):
        labels = {x.label for x in PeriodRange(q.start, q.end, q.label).all_periods()}
        mine = [r for r in rows if r.period in labels]
        out.append(
            TrendPoint(
                q.label,
                q.label_cn,
                counts(mine, as_of),
                len({r.org for r in mine if r.org}),
                bool(labels & cov.labels),
            )
        )
    return out


def _by_month(rows: list[Any], window: PeriodRange) -> list[MonthRuleCount]:
    """Violations per month and rule over the trend window; quarter and year ones count in their last month."""
    tally: Counter[tuple[str, str]] = Counter()
    titles: dict[str, str] = {}
    for r in rows:
        month = month_of(parse_period(r.period).end).label
        tally[(month, r.rule)] += 1
        titles[r.rule] = r.title
    return [
        MonthRuleCount(m.label, rule, titles[rule], tally[(m.label, rule)])
        for m in window.periods("month")
        for rule in sorted(titles)
        if tally[(m.label, rule)]
    ]


def _evidence(r: Any) -> str:
    if r.status == "resolved":
        when = f"（{r.resolved_at.date()}）" if r.resolved_at else ""
        return f"{r.resolution or '已解决'}{when}"
    if r.status == "waived":
        until = f"，至 {r.waiver_expires}" if r.waiver_expires else ""
        return f"豁免：{r.waiver_reason or ''}（批准人 {r.waiver_approver or '—'}{until}）"
    return ""


def _ledger(rows: list[Any], order: dict[str, tuple[int, int]], as_of: dt.date) -> list[LedgerEntry]:
    far = (len(order), 0)
    rows = sorted(rows, key=lambda r: (order.get(r.org or "", far), r.period, r.rule, r.subject_id))
    return [
        LedgerEntry(
            no=i,
            key=r.key,
            org_name=r.org_name or r.org or NO_ORG,
            period=r.period,
            problem=r.message,
            rule=r.rule,
            title=r.title,
            basis=r.basis,
            severity=r.severity,
            status=r.status,
            owner=r.owner,
            deadline=r.deadline,
            plan=r.plan,
            evidence=_evidence(r),
            found=r.first_seen.date(),
            closed=r.resolved_at.date() if r.resolved_at else None,
            overdue=_overdue(r, as_of),
        )
        for i, r in enumerate(rows, 1)
    ]
