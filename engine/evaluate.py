"""Evaluating a pack over a period range: which periods are judged, subjects, matching, findings.

Nothing is stored here: :func:`evaluate` returns findings and the scope it
judged; :mod:`engine.violations` stores them.  Timings are kept per stage
(SQL subject building, matching, and, later, storing) for the benchmark.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from engine.finding import Finding
from engine.matcher import Matcher, match_all
from engine.pack.load import CompiledRule, Pack
from engine.pack.model import TermOverdue
from engine.periods import Granularity, Period, PeriodRange, period_of, shift
from engine.subjects.base import BuildContext, Subject
from engine.subjects.periodic import iter_period_subjects
from engine.subjects.registry import Registry
from engine.subjects.schema import derived_fields
from engine.subjects.single import FACT_BUILDERS

DEFAULT_GRACE_DAYS = 10
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Evaluation:
    pack_hash: str
    range_text: str
    as_of: date
    findings: list[Finding] = field(default_factory=list)
    scope: set[tuple[str, str]] = field(default_factory=set)  # (rule id, period) judged
    subjects: dict[str, int] = field(default_factory=dict)  # rule id -> subjects judged
    seconds: dict[str, float] = field(default_factory=lambda: {"sql": 0.0, "match": 0.0})


def judged_periods(rule: CompiledRule, rng: PeriodRange, as_of: date, grace_days: int) -> list[Period]:
    """The periods of ``rng`` that ``rule`` judges as of ``as_of``.

    A period is judged when the rule is in force on its first day and it has
    closed plus the grace; a year rule with a ``deadline`` once the deadline
    has passed; a rule judged at the as-of date (a term of office): see
    :func:`status_periods`.
    """
    r = rule.rule
    granularity = "month" if r.period == "fact" else r.period
    if any(isinstance(d, TermOverdue) for d in r.derive.values()):
        return status_periods(rule, rng, as_of, granularity)  # type: ignore[arg-type]
    out = []
    for p in rng.periods(granularity):  # type: ignore[arg-type]
        if not r.effective.in_force(p.start):
            continue
        if r.deadline:
            ready = as_of > date.fromisoformat(f"{p.start.year}-{r.deadline}")
        else:
            ready = p.closed_by(as_of, grace_days)
        if ready:
            out.append(p)
    return out


def status_periods(rule: CompiledRule, rng: PeriodRange, as_of: date, granularity: Granularity) -> list[Period]:
    """The periods a rule judged at a date (a term of office) judges over ``rng`` as of ``as_of``.

    Every period of ``granularity`` that overlaps the range and whose part inside the range has begun by
    ``as_of`` is judged on the day min(as-of, range end, period end) — ranges shorter than the period
    included, so ``--period 2017-01..2017-06 --as-of 2017-07-24`` judges 2017 on 30 June.  The period
    returned keeps its label (the finding's key is that of the period holding the day judged: a
    half-year check and a year check find the same violation) and ends on the day judged.
    """
    out = []
    p = period_of(rng.start, granularity)
    while p.start <= rng.end:
        begun = max(p.start, rng.start)
        day = min(as_of, rng.end, p.end)
        if begun <= as_of and rule.rule.effective.in_force(p.start):
            out.append(p if day == p.end else Period(p.start, day, p.granularity))
        p = shift(p, 1)
    return out


def settles(period: Period, as_of: date) -> bool:
    """Whether judging ``period`` settles it: a run that judged a status rule on a day before what the
    as-of date allows (a half-year check of a year) may find a violation but never clears one found
    on a later day."""
    return period.end >= min(as_of, period_of(period.start, period.granularity).end)


def build_subjects(ctx: BuildContext, rule: CompiledRule, periods: list[Period]) -> list[Subject]:
    return [s for chunk in iter_subjects(ctx, rule, periods) for s in chunk]


def iter_subjects(ctx: BuildContext, rule: CompiledRule, periods: list[Period]) -> Iterator[list[Subject]]:
    """A rule's subjects in chunks: all of a fact rule's at once, a period rule's period by period."""
    if not periods:
        return
    if rule.rule.period == "fact":
        yield FACT_BUILDERS[rule.rule.subject.type](ctx, rule.rule, periods)
    else:
        yield from iter_period_subjects(ctx, rule.rule, periods)


def condition_names(rule: CompiledRule) -> list[str]:
    """Subject fields the condition and the message read, in order of appearance (the observed values)."""
    seen: dict[str, None] = {}
    for name in _NAME.findall(rule.rule.when) + _NAME.findall(rule.rule.message):
        if name in rule.fields and name not in ("period", "period_label"):
            seen[name] = None
    return list(seen)


def _display(value: Any) -> Any:
    """Numbers as a person writes them in a message: 15 not 15.0, 0.9763 not 0.97630000001."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else round(value, 4)
    return value


def make_finding(rule: CompiledRule, subject: Subject, registry: Registry) -> Finding:
    r = rule.rule
    values = {k: _display(v) for k, v in {**rule.params, **subject.fields}.items()}
    observed = {n: subject.fields[n] for n in condition_names(rule)}
    for name, spec in r.derive.items():
        for field_name in derived_fields(name, spec):
            observed.setdefault(field_name, subject.fields[field_name])
    threshold = {
        k: v for k, v in rule.params.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    return Finding(
        rule=r.id,
        rule_version=rule.version,
        title=r.title,
        basis=r.basis,
        severity=r.severity,
        subject_type=subject.type,
        subject_id=subject.id,
        org=subject.org,
        org_name=registry.org_name(subject.org) if subject.org else None,
        member=subject.member,
        period=subject.period,
        message=r.message.format(**values),
        evidence={"observed": observed, "threshold": threshold, "condition": r.when, "facts": subject.facts},
        org_path=registry.path(subject.org),
    )


@dataclass
class Work:
    """Subjects built for a set of rules, ready to match."""

    items: list[tuple[CompiledRule, Subject]]
    registry: Registry
    scope: set[tuple[str, str]]
    subjects: dict[str, int]


def iter_work(
    ctx: BuildContext,
    pack: Pack,
    rng: PeriodRange,
    grace_days: int,
    rule_ids: Sequence[str] | None,
    work: Work,
) -> Iterator[tuple[CompiledRule, list[Subject]]]:
    """Subjects chunk by chunk, recording in ``work`` the scope judged and the subjects counted.

    Once the last rule of a subject type is done, what the builders memoised for it (a province's
    meetings with their attendance, its members' dues…) is dropped, so memory holds one kind at a time.
    """
    rules = [r for r in pack.rules if rule_ids is None or r.id in rule_ids]
    last = {r.rule.subject.type: i for i, r in enumerate(rules)}
    owned: dict[str, set[Any]] = {}  # subject type -> memo keys first made by its rules
    for i, rule in enumerate(rules):
        kind = rule.rule.subject.type
        before = set(ctx.cache)
        periods = judged_periods(rule, rng, ctx.as_of, grace_days)
        work.scope.update((rule.id, p.label) for p in periods if settles(p, ctx.as_of))
        work.subjects.setdefault(rule.id, 0)
        for chunk in iter_subjects(ctx, rule, periods):
            work.subjects[rule.id] += len(chunk)
            yield rule, chunk
        owned.setdefault(kind, set()).update(set(ctx.cache) - before)
        if last[kind] == i:
            ctx.forget(owned.pop(kind))


def collect_work(
    conn: sa.Connection,
    pack: Pack,
    rng: PeriodRange,
    as_of: date,
    grace_days: int = DEFAULT_GRACE_DAYS,
    rule_ids: Sequence[str] | None = None,
    part: tuple[int, int] | None = None,
) -> Work:
    """Build every subject each rule judges over ``rng`` (the SQL stage); with ``part=(k, n)`` only
    the subjects whose top-level org falls in partition k of n."""
    registry = Registry.load(conn)
    ctx = BuildContext(conn, registry, as_of, part=part)
    work = Work([], registry, set(), {})
    for rule, chunk in iter_work(ctx, pack, rng, grace_days, rule_ids, work):
        work.items.extend((rule, s) for s in chunk)
    return work


def match_work(pack: Pack, work: Work, processes: int = 1) -> list[bool]:
    """Match every subject: in ``processes`` worker processes, or in this process when 0 (tests, submit)."""
    conditions = {r.key: r.durable for r in pack.rules}
    pairs = [(r.key, s.fields) for r, s in work.items]
    if processes == 0:
        matcher = Matcher.for_rules(pack.rules)
        out: list[bool] = []
        for key, run in itertools.groupby(pairs, key=lambda pair: pair[0]):  # a rule's subjects come together
            out.extend(matcher.matches_many(key, [fields for _, fields in run]))
        return out
    return match_all(conditions, pairs, processes=processes)  # platforms without fork


def evaluate(
    conn: sa.Connection,
    pack: Pack,
    rng: PeriodRange,
    as_of: date,
    grace_days: int = DEFAULT_GRACE_DAYS,
    rule_ids: Sequence[str] | None = None,
    processes: int = 1,
    heartbeat: Callable[[], None] | None = None,
) -> Evaluation:
    """Judge every rule of ``pack`` (or those of ``rule_ids``) over ``rng`` as of ``as_of``.

    ``processes`` > 1: subjects are partitioned by top-level org and each partition is built *and*
    matched in its own forked process (both stages are CPU-bound Python and C holding the GIL).
    ``heartbeat`` is called every 30 s while forked workers run (the check run's liveness).
    """
    if processes >= 1 and "fork" in mp.get_all_start_methods():
        from engine.partition import evaluate_partitioned  # it builds on this module

        return evaluate_partitioned(conn.engine, pack, rng, as_of, grace_days, rule_ids, processes, heartbeat)
    result = Evaluation(pack.hash, rng.text, as_of)
    t0 = time.perf_counter()
    work = collect_work(conn, pack, rng, as_of, grace_days, rule_ids)
    result.scope, result.subjects = work.scope, work.subjects
    t1 = time.perf_counter()
    result.seconds["sql"] = t1 - t0
    fired = match_work(pack, work, processes)
    result.seconds["match"] = time.perf_counter() - t1
    result.findings = [
        make_finding(r, s, work.registry) for (r, s), hit in zip(work.items, fired, strict=True) if hit
    ]
    return result
