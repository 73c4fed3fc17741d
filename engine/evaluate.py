"""Evaluating a pack over a period range: which periods are judged, subjects, matching, findings.

Nothing is stored here: :func:`evaluate` returns findings and the scope it
judged; :mod:`engine.violations` stores them.  Timings are kept per stage
(SQL subject building, matching, and, later, storing) for the benchmark.
"""

from __future__ import annotations

import gc
import itertools
import logging
import multiprocessing as mp
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import sqlalchemy as sa

from engine.finding import Finding
from engine.matcher import Matcher, match_all
from engine.matching import MatcherError, run_forked
from engine.pack.load import CompiledRule, Pack
from engine.pack.model import TermOverdue
from engine.periods import Granularity, Period, PeriodRange, period_of, shift
from engine.subjects.base import BuildContext, Subject
from engine.subjects.columns import Chunk, SubjectColumns
from engine.subjects.copy_pairs import CopyPairs, every_pair, judges_copies, worth_once
from engine.subjects.periodic import iter_period_subjects
from engine.subjects.registry import Registry
from engine.subjects.schema import derived_fields
from engine.subjects.screen import RULE as DATA_QUALITY_RULE
from engine.subjects.screen import Screen, hidden, scan
from engine.subjects.single import FACT_BUILDERS
from engine.subjects.sources import store_firsts
from facts import collector

log = logging.getLogger(__name__)
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
    screen: Screen = field(default_factory=Screen)  # stored rows set aside as unjudgeable, and whom they touch
    held: set[tuple[str, str, str]] = field(default_factory=set)  # (rule, type, id) not judged: kept as stored

    def add_screen(self, screen: Screen, period: str) -> None:
        """Drop the findings of what the screen touched; add one data-quality finding per bad row."""
        self.screen = screen
        self.findings = screen.keep(self.findings) + screen.findings(period)
        if self.scope:  # nothing judged (an open period): nothing of data quality to resolve either
            self.scope |= {(DATA_QUALITY_RULE, p) for p in {period, *(p for _, p in self.scope)}}


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


def iter_subjects(ctx: BuildContext, rule: CompiledRule, periods: list[Period]) -> Iterator[Chunk]:
    """A rule's subjects in chunks: all of a fact rule's at once, a period rule's period by period
    (records, or :class:`~engine.subjects.columns.SubjectColumns` that build them on demand)."""
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


def unjudged(rule: CompiledRule, subject_type: str, subject_id: str, period: str, why: str) -> Finding:
    """The data-quality finding for something a rule could not judge (its stored violations stay as they are)."""
    shown = subject_id if len(subject_id) <= 120 else subject_id[:110] + "…"
    return Finding(
        rule=DATA_QUALITY_RULE,
        rule_version="builtin",
        title="数据无法判定",
        basis="数据质量：记录的值超出可判定的范围",
        severity="warning",
        subject_type=subject_type[:16],
        subject_id=shown,
        org=None,
        org_name=None,
        member=None,
        period=period,
        message=f"规则 {rule.id} 无法判定 {subject_type} {shown}（{period}）：{why[:300]}；已有的判定结果保持不变。",
        evidence={"observed": {}, "threshold": {}, "condition": rule.rule.when, "facts": [], "rule": rule.id},
    )


def _rule_failed(work: Work, rule: CompiledRule, periods: list[Period], exc: Exception) -> None:
    log.exception("rule %s: building its subjects failed; the rule is not judged this run", rule.id)
    work.scope -= {(rule.id, p.label) for p in periods}  # nothing of it is auto-resolved
    label = periods[0].label if periods else ""
    work.problems.append(unjudged(rule, "rule", rule.id, label, f"{type(exc).__name__}: {exc}"))


def judge_chunk(
    matcher: Matcher, rule: CompiledRule, chunk: list[Subject], registry: Registry, work: Work
) -> list[Finding]:
    """The findings of ``chunk``.  A subject durable_rules refuses, or whose finding cannot be written,
    becomes a data-quality finding (and its stored violation is left as it is); the others are judged."""
    try:
        hits: list[bool | None] = list(matcher.matches_many(rule.key, [s.fields for s in chunk]))
    except Exception as exc:  # durable_rules refused one, or the vectorised pre-filter met a value it cannot take
        log.warning(
            "rule %s: a chunk of %d subjects could not be matched at once (%s: %s); one by one",
            rule.id,
            len(chunk),
            type(exc).__name__,
            str(exc)[:300],
        )
        hits = []
        for s in chunk:  # find who, one by one
            try:
                hits.append(matcher.matches(rule.key, s.fields))
            except Exception as exc:
                why = exc.message if isinstance(exc, MatcherError) else f"{type(exc).__name__}: {exc}"
                hits.append(None)
                work.held.add((rule.id, s.type, s.id))
                work.problems.append(unjudged(rule, s.type, s.id, s.period, why))
    out = []
    for s, hit in zip(chunk, hits, strict=True):
        if not hit:
            continue
        try:
            out.append(make_finding(rule, s, registry))
        except Exception as exc:  # a message that cannot be filled from this subject's values
            log.exception("rule %s: the finding of %s %s cannot be written", rule.id, s.type, s.id)
            work.held.add((rule.id, s.type, s.id))
            work.problems.append(unjudged(rule, s.type, s.id, s.period, f"{type(exc).__name__}: {exc}"))
    return out


@dataclass
class Work:
    """Subjects built for a set of rules, ready to match."""

    items: list[tuple[CompiledRule, Subject]]
    registry: Registry
    scope: set[tuple[str, str]]
    subjects: dict[str, int]
    problems: list[Finding] = field(default_factory=list)  # data-quality findings: what could not be judged
    held: set[tuple[str, str, str]] = field(default_factory=set)  # (rule, subject type, id) left as stored


def iter_work(
    ctx: BuildContext,
    pack: Pack,
    rng: PeriodRange,
    grace_days: int,
    rule_ids: Sequence[str] | None,
    work: Work,
    columns: bool = True,
) -> Iterator[tuple[CompiledRule, list[Subject]]]:
    """Subjects chunk by chunk, recording in ``work`` the scope judged and the subjects counted.

    A chunk built as columns yields only the candidates of the rule's pre-filter (every other subject
    certainly does not satisfy the condition and is never built; ``work.subjects`` still counts it);
    ``columns=False`` builds every record, as before subjects were columns (the benchmark's baseline).

    Once the last rule of a subject type is done, what the builders memoised for it (a province's
    meetings with their attendance, its members' dues…) is dropped, so memory holds one kind at a time.
    """
    rules = [r for r in pack.rules if rule_ids is None or r.id in rule_ids]
    last = {r.rule.subject.type: i for i, r in enumerate(rules)}
    owned: dict[str, set[Any]] = {}  # subject type -> memo keys first made by its rules
    for i, rule in enumerate(rules):
        kind = rule.rule.subject.type
        before = ctx.memo.entries()
        periods = judged_periods(rule, rng, ctx.as_of, grace_days)
        work.scope.update((rule.id, p.label) for p in periods if settles(p, ctx.as_of))
        work.subjects.setdefault(rule.id, 0)
        chunks = iter_subjects(ctx, rule, periods)
        while True:
            try:
                with collector.paused():  # building makes millions of long-lived containers, no cycles
                    chunk = next(chunks, None)
                    if chunk is None:
                        break
                    work.subjects[rule.id] += len(chunk)
                    if isinstance(chunk, SubjectColumns):
                        chunk = chunk.candidates(rule.prefilter) if columns else list(chunk)
            except Exception as exc:  # one rule that cannot be built must not stop the others
                _rule_failed(work, rule, periods, exc)
                break
            yield rule, chunk
        owned.setdefault(kind, set()).update(ctx.memo.entries() - before)
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
    screen: Screen | None = None,
) -> Work:
    """Build every subject each rule judges over ``rng`` (the SQL stage); with ``part=(k, n)`` only
    the subjects whose top-level org falls in partition k of n.  Rows the ``screen`` (default: a scan
    made here) set aside are not seen."""
    with hidden(conn, scan(conn) if screen is None else screen):
        registry = Registry.load(conn)
        ctx = BuildContext(conn, registry, as_of, part=part)
        work = Work([], registry, set(), {})
        # every subject built (not only the pre-filter's candidates): a backtest counts them all
        for rule, chunk in iter_work(ctx, pack, rng, grace_days, rule_ids, work, columns=False):
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
    partitions: int | str = "auto",
) -> Evaluation:
    """Judge every rule of ``pack`` (or those of ``rule_ids``) over ``rng`` as of ``as_of``.

    ``processes`` ≥ 1 (where ``fork`` exists): subjects are partitioned by top-level org and each partition
    is built *and* matched in its own forked process (both stages are CPU-bound Python and C holding the
    GIL), ``processes`` at a time; ``partitions`` (``[check] partitions``) says how many partitions, see
    :func:`evaluate_partitioned`.  ``heartbeat`` is called every 30 s while forked workers run (the check
    run's liveness).

    Stored rows the engine cannot judge (:mod:`engine.subjects.screen`) are set aside first: each is a
    data-quality finding, whom it touches is not judged this run, and everyone else is judged as usual.
    """
    t0 = time.perf_counter()
    dq_period = str(rng.start.year)
    if processes >= 1 and "fork" in mp.get_all_start_methods():
        screen, plan, pairs = screen_and_plan(conn, processes, partitions, _copy_span(pack, rule_ids, rng))
        result = evaluate_partitioned(
            conn.engine, pack, rng, as_of, grace_days, rule_ids, processes, heartbeat, screen, partitions, plan,
            pairs,
        )
        result.seconds["sql"] += time.perf_counter() - t0 - result.seconds["wall"]
        result.seconds.pop("wall")
        result.add_screen(screen, dq_period)
        return result
    screen = scan(conn)
    result = Evaluation(pack.hash, rng.text, as_of)
    work = collect_work(conn, pack, rng, as_of, grace_days, rule_ids, screen=screen)
    result.scope, result.subjects = work.scope, work.subjects
    t1 = time.perf_counter()
    result.seconds["sql"] = t1 - t0
    if processes == 0:
        matcher = Matcher({r.key: r.durable for r in pack.rules})
        for _, run in itertools.groupby(work.items, key=lambda item: item[0].key):  # a rule's subjects together
            items = list(run)
            chunk = [s for _, s in items]
            result.findings.extend(judge_chunk(matcher, items[0][0], chunk, work.registry, work))
    else:
        fired = match_work(pack, work, processes)
        result.findings = [
            make_finding(r, s, work.registry) for (r, s), hit in zip(work.items, fired, strict=True) if hit
        ]
    result.seconds["match"] = time.perf_counter() - t1
    result.findings.extend(work.problems)
    result.held = work.held
    result.add_screen(screen, dq_period)
    return result


@dataclass
class Part:
    """What judging one partition found (its stages timed); the caller merges the partitions."""

    findings: list[Finding]
    scope: set[tuple[str, str]]
    subjects: dict[str, int]
    held: set[tuple[str, str, str]]
    seconds_sql: float
    seconds_match: float


def judge_part(
    conn: sa.Connection,
    pack: Pack,
    rng: PeriodRange,
    as_of: date,
    grace_days: int,
    rule_ids: Sequence[str] | None,
    screen: Screen,
    registry_orgs: Iterable[str] | None = None,
    **where: Any,
) -> Part:
    """Build and match one partition's subjects in this process, with its own durable_rules Host: a forked
    worker of :func:`evaluate_partitioned` (``where``: ``part=(k, n)``) or a cluster task (``roots=``,
    ``orphans=``: :mod:`engine.cluster.job`).  One chunk (a rule's period) at a time: memory stays bounded.
    With ``registry_orgs`` (a cluster partition's orgs) only their part of the registry is loaded."""
    matcher = Matcher.for_rules(pack.rules)  # with the pre-filters, as the single-process check
    findings: list[Finding] = []
    match = 0.0
    with hidden(conn, screen):  # the screened rows, as in one process
        t0 = time.perf_counter()
        registry = Registry.load(conn) if registry_orgs is None else Registry.load(conn, orgs=registry_orgs)
        ctx = BuildContext(conn, registry, as_of, **where)
        work = Work([], registry, set(), {})
        chunks = iter_work(ctx, pack, rng, grace_days, rule_ids, work)
        sql = time.perf_counter() - t0
        while True:
            t1 = time.perf_counter()
            step = next(chunks, None)
            t2 = time.perf_counter()
            sql += t2 - t1
            if step is None:
                break
            rule, chunk = step
            findings.extend(judge_chunk(matcher, rule, chunk, registry, work))  # unjudgeable → data quality
            match += time.perf_counter() - t2
    return Part(findings + work.problems, work.scope, work.subjects, work.held, sql, match)


#: ``[check] partitions = "auto"``: the planned fact rows (members, dues, meetings, attendance lines) a
#: partition may hold before a forked check makes more partitions than processes.  Measured at scale 1
#: (README, *Benchmark*, issue 15; 5.7 M rows, 2 processes): 2 partitions peak at 1,383 MB a worker, 6 at
#: 477 MB, 8 at 401 MB, in the same wall time within the noise (since copy detection looks a partition's
#: candidates up in SQL; before, every partition read all signatures and 6 cost 1.27× the time).
FACTS_PER_PARTITION = 1_000_000


def partition_count(facts: int, processes: int, partitions: int | str = "auto") -> int:
    """How many partitions a forked check of ``facts`` planned rows makes with ``processes`` workers.

    ``partitions`` an int: that many (never fewer than one).  ``"auto"``: ``processes`` while each would hold
    at most :data:`FACTS_PER_PARTITION` rows, else enough partitions of at most that many — so a small
    database is judged exactly as before, and a big one in partitions whose memory does not grow with it.
    """
    if partitions != "auto":
        return max(1, int(partitions))
    return max(processes, -(-facts // FACTS_PER_PARTITION))


def fact_rows(conn: sa.Connection) -> int:
    """The rows a check's partitions are planned by (:func:`engine.cluster.plan.subtree_sizes`), counted
    whole: a cheap ``count(*)`` each, to decide whether planning is needed at all."""
    from facts import tables as t

    tables = [row.__table__ for row in (t.MemberRow, t.DuesRow, t.MeetingRow, t.AttendanceRow)]  # type: ignore[union-attr]
    return sum(int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()) for table in tables)


def plan_check(engine: sa.Engine, processes: int, partitions: int | str, screen: Screen) -> list[Any] | None:
    """The partitions of a forked check: None for ``processes`` partitions by a hash of the top-level org
    (as always: the small and the sample databases), else :class:`engine.cluster.plan.Partition` s of
    top-level subtrees balanced by their fact rows, heaviest first (the cluster's planner).

    Run in a forked worker of its own (:func:`evaluate_partitioned`): the registry it loads is never in
    the parent, whose memory every partition's worker would inherit."""
    from engine.cluster.plan import plan_partitions, subtree_sizes, with_orgs

    engine.dispose(close=False)
    with engine.connect() as conn, hidden(conn, screen):  # the tree the workers will see
        n = partition_count(fact_rows(conn) if partitions == "auto" else 0, processes, partitions)
        if n == processes:
            return None
        registry = Registry.load_orgs(conn)  # the tree alone: the workers load their own parts
        firsts = store_firsts(conn)  # once, not in each partition (a scan of the dues table)
        parts = with_orgs(plan_partitions(subtree_sizes(conn, registry), n), registry)
        return [replace(p, firsts=firsts) for p in parts]


def needs_plan(processes: int, partitions: int | str) -> bool:
    """Whether a forked check must plan its partitions (:func:`plan_check`) rather than hash the top-level
    orgs into ``processes`` shares."""
    return partitions == "auto" or partition_count(0, processes, partitions) != processes


def _copy_span(pack: Pack, rule_ids: Sequence[str] | None, rng: PeriodRange) -> tuple[date, date] | None:
    """The span whose meetings a check judges for copies (``copy_similarity`` in a checked rule), if any."""
    copies = any(judges_copies(r.rule.when) for r in pack.rules if rule_ids is None or r.id in rule_ids)
    return (rng.start, rng.end) if copies else None


def _prepare(engine: sa.Engine, job: str, processes: int, partitions: int | str) -> Any:
    """One of the forked jobs of :func:`screen_and_plan`."""
    if job == "plan":
        return plan_check(engine, processes, partitions, Screen())
    engine.dispose(close=False)  # new connections for this process; the parent's stay the parent's
    with engine.connect() as conn:
        return every_pair(conn) if job == "pairs" else scan(conn)


def screen_and_plan(
    conn: sa.Connection, processes: int, partitions: int | str, copy_span: tuple[date, date] | None = None
) -> tuple[Screen, tuple[list[Any] | None] | None, CopyPairs | None]:
    """The screen (:func:`scan`), when one is needed the plan of a forked check's partitions, as
    ``(planned,)`` for :func:`evaluate_partitioned` (None: no plan needed, or it must be made again), and
    when worth it the copy check's candidate pairs found once for every partition (None: each partition
    looks up its own).

    The screen and the plan read the whole province (at scale 1: ~2 s each) and neither needs the other's
    answer as long as the screen sets no table aside (:func:`hidden` changes nothing then), so they run
    side by side in two forked workers (one after the other with ``processes = 1``: a one-process check
    uses one core).  When the screen does set rows aside, that plan and those pairs are dropped: the
    partitions are planned again on the tree the workers will see (as before, one after the other), and
    each partition looks up the pairs of what it sees.

    ``copy_span``: the dates of the meetings the check judges for copies.  When they are more than
    1/:data:`~engine.subjects.copy_pairs.JOIN_SHARE` of the stored signatures, every pair is found once
    (:func:`~engine.subjects.copy_pairs.every_pair`, ~3.5 s at scale 1), first, beside the other two,
    instead of ~2 s of look-ups in each of the 6 partitions."""
    if not needs_plan(processes, partitions):
        return scan(conn), None, None
    jobs = ["scan", "plan"]
    if copy_span is not None and worth_once(conn, *copy_span):
        jobs.insert(0, "pairs")  # the longest first: with two workers, it runs beside the other two
    answers = run_forked(
        _prepare,
        [(conn.engine, job, processes, partitions) for job in jobs],
        "check preparation",
        workers=min(processes, 2),
    )
    found = dict(zip(jobs, answers, strict=True))
    screen = found["scan"]
    if screen.tables:
        return screen, None, None
    return screen, (found["plan"],), found.get("pairs")


def _partition_worker(
    engine: sa.Engine,
    pack: Pack,
    rng: PeriodRange,
    as_of: date,
    grace_days: int,
    rule_ids: Sequence[str] | None,
    part: Any,
    screen: Screen,
    pairs: CopyPairs | None = None,
) -> Part:
    """One partition: ``part`` is ``(k, n)`` (a hash share of the top-level orgs) or a planned
    :class:`engine.cluster.plan.Partition` (its subtrees; only their part of the registry is loaded).

    The worker is forked for this one partition and exits after it, so the cyclic garbage collector is off
    for its whole life: building and matching make millions of objects and next to no cycles, and each
    collection walked the registry and the memo again (one scale-1 share: 0.80x the wall time, matching
    0.36x, for 2.5 % more peak memory; the few cycles are freed when the worker exits)."""
    gc.disable()
    engine.dispose(close=False)  # new connections for this process; the parent's stay the parent's
    with engine.connect() as conn:
        if isinstance(part, tuple):
            return judge_part(conn, pack, rng, as_of, grace_days, rule_ids, screen, part=part, copy_pairs=pairs)
        return judge_part(
            conn,
            pack,
            rng,
            as_of,
            grace_days,
            rule_ids,
            screen,
            registry_orgs=part.orgs or None,
            roots=frozenset(part.roots),
            orphans=part.orphans,
            firsts=part.firsts,
            copy_pairs=pairs,
        )


def evaluate_partitioned(
    engine: sa.Engine,
    pack: Pack,
    rng: PeriodRange,
    as_of: date,
    grace_days: int,
    rule_ids: Sequence[str] | None,
    processes: int,
    heartbeat: Callable[[], None] | None = None,
    screen: Screen | None = None,
    partitions: int | str = "auto",
    plan: tuple[list[Any] | None] | None = None,
    pairs: CopyPairs | None = None,
) -> Evaluation:
    """Evaluate in forked workers, ``processes`` at a time, one partition of the top-level orgs each;
    ``heartbeat`` is called every 30 s while they work.

    How many partitions: ``partitions`` (``[check] partitions``): an int, or ``"auto"`` — ``processes``
    unless the database holds more than :data:`FACTS_PER_PARTITION` fact rows a process, then enough that
    each holds about that many (:func:`partition_count`).  ``processes`` partitions are shared out by a
    stable hash of the top-level org id, as before; more are planned as the cluster plans them (top-level
    subtrees balanced by fact rows, :mod:`engine.cluster.plan`) and run heaviest first, each in a worker
    forked fresh for it (:func:`engine.matching.run_forked`), so a worker's memory is that of one
    partition, however big the database.

    Building subjects and matching them are both CPU-bound (Python, and durable_rules holding the GIL), so
    each worker builds *and* matches its partition, with its own connection and Host, and sends back only
    the findings.  ``seconds["sql"]`` and ``seconds["match"]`` estimate each stage's share of the wall
    time: the larger of the slowest partition's and the partitions' sum over ``processes`` (the work
    spread over the workers).  With ``processes`` partitions or fewer, side by side, that is the slowest
    partition's, as before.  ``seconds["wall"]`` is the wall time (the caller adds the screen's scan to the
    SQL time).  ``plan``: ``(planned,)`` when :func:`screen_and_plan` has planned them already; ``pairs``:
    the copy check's candidate pairs when it has found them (every worker picks its targets' pairs)."""
    t0 = time.perf_counter()
    result = Evaluation(pack.hash, rng.text, as_of)
    screen = screen or Screen()
    planned = None
    if plan is not None:  # planned already, beside the screen (:func:`screen_and_plan`)
        (planned,) = plan
    elif needs_plan(processes, partitions):
        (planned,) = run_forked(plan_check, [(engine, processes, partitions, screen)], "partition planner")
    parts: list[Any] = [(k, processes) for k in range(processes)] if planned is None else planned
    jobs = [(engine, pack, rng, as_of, grace_days, rule_ids, part, screen, pairs) for part in parts]
    done = run_forked(_partition_worker, jobs, "evaluation worker", heartbeat=heartbeat, workers=processes)
    for part in done:
        result.findings.extend(part.findings)
        result.held |= part.held
        result.scope |= part.scope
        for rule, n in part.subjects.items():
            result.subjects[rule] = result.subjects.get(rule, 0) + n
    for stage in ("sql", "match"):
        each = [getattr(part, f"seconds_{stage}") for part in done]
        result.seconds[stage] = max(max(each), sum(each) / processes)
    result.seconds["wall"] = time.perf_counter() - t0
    return result
