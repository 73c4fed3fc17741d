"""Judging facts the moment they are submitted (single-fact rules), for ``add``, ``import`` and the API.

The facts are already stored when judging starts: a rule that breaks never
loses a fact.  A failure is reported (and logged) and the next ``check``
judges the fact.  Findings are stored under the same keys as ``check``'s, so a
later check neither duplicates nor contradicts them; a correction that clears
a finding resolves its violation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date

import click

from engine.app import App
from engine.evaluate import make_finding
from engine.finding import Finding
from engine.matcher import Matcher
from engine.pack.load import CompiledRule, Pack
from engine.pack.model import SEVERITY_CN, MeetingsHeld, OrgSubject
from engine.periods import month_of, period_of
from engine.subjects.base import BuildContext, Subject
from engine.subjects.periodic import build_period_subjects
from engine.subjects.registry import Registry
from engine.subjects.single import FACT_BUILDERS
from engine.violations.packs import remember_pack
from engine.violations.store import Scope, StoreReport
from facts.models import Dues, FactBase, Meeting, Petition, Promotion, natural_key
from facts.store import ImportReport

log = logging.getLogger(__name__)
_BULK = 500  # above this many facts of a type, select by month and filter in Python


@dataclass
class Judgement:
    findings: list[Finding] = field(default_factory=list)
    stored: StoreReport | None = None
    errors: list[str] = field(default_factory=list)
    standing: list[str] = field(default_factory=list)  # where the org stands this period (information)
    seconds: float = 0.0
    bulk_months: list[str] = field(default_factory=list)  # months judged in bulk, as a check (engine.judge_import)


def _month_of_fact(fact: FactBase) -> date:
    match fact:
        case Meeting() | Promotion():
            return fact.date
        case Dues():
            return date.fromisoformat(fact.month + "-01")
        case Petition():
            return fact.received
    raise TypeError(type(fact).__name__)


def judge_facts(
    app: App, facts: list[FactBase], pack: Pack | None = None, as_of: date | None = None
) -> Judgement:
    """Judge the single-fact rules of the pack for ``facts`` (stored already) and store the findings."""
    t0 = time.perf_counter()
    result = Judgement()
    judged = [f for f in facts if f.type in FACT_BUILDERS]  # type: ignore[attr-defined]
    if not judged:
        return result
    try:
        pack = pack or app.pack()
        as_of = as_of or app.today()
        _judge(app, pack, judged, as_of, result)
    except Exception as exc:  # the facts are stored; say so loudly and let the next check judge them
        log.exception("judging %d submitted facts failed", len(judged))
        result.errors.append(
            f"提交的记录已保存，但即时判定失败（{type(exc).__name__}: {exc}）；下次 check 将重新判定。"
        )
    result.seconds = time.perf_counter() - t0
    return result


def _judge(app: App, pack: Pack, facts: list[FactBase], as_of: date, result: Judgement) -> None:
    by_type: dict[str, dict[str, FactBase]] = defaultdict(dict)
    for f in facts:
        by_type[f.type][natural_key(f)] = f  # type: ignore[attr-defined]
    work: list[tuple[CompiledRule, Subject]] = []
    pairs: set[tuple[str, str]] = set()
    subjects: set[tuple[str, str, str]] = set()
    with app.db.connect() as conn:
        registry = Registry.load(conn, *_involved(facts))
        ctx = BuildContext(conn, registry, as_of, only_orgs=set(registry.orgs))
        for rule in pack.rules:
            if rule.rule.period != "fact" or rule.rule.subject.type not in by_type:
                continue
            chosen = by_type[rule.rule.subject.type]
            months = sorted(
                {
                    month_of(_month_of_fact(f))
                    for f in chosen.values()
                    if rule.rule.effective.in_force(month_of(_month_of_fact(f)).start)
                }
            )
            if not months:
                continue
            only = set(chosen) if len(chosen) <= _BULK else None
            built = FACT_BUILDERS[rule.rule.subject.type](ctx, rule.rule, months, only)
            for s in built:
                if s.id in chosen:
                    work.append((rule, s))
                    subjects.add((rule.id, s.type, s.id))
            pairs.update((rule.id, m.label) for m in months)
        built_periods: dict[tuple[str, str], dict[str, Subject]] = {}  # (rule, period) → subjects by org
        for f in by_type.get("meeting", {}).values():
            result.standing.extend(_standing(ctx, pack, f, built_periods))  # type: ignore[arg-type]
    matcher = _fact_matcher(pack)
    try:
        result.findings = [make_finding(r, s, registry) for r, s in work if matcher.matches(r.key, s.fields)]
    except Exception:  # a matcher that raised is not used again (Matcher's contract)
        _MATCHERS.__dict__.pop("found", None)
        raise
    remember_pack(app.db, pack)
    result.stored = app.violations.record(
        result.findings, Scope(pairs, subjects), pack.hash, None, actor="submit"
    )


_MATCHERS = threading.local()  # this thread's matcher of the pack's single-fact rules: (pack hash, matcher)


def _fact_matcher(pack: Pack) -> Matcher:
    """A matcher of every single-fact rule of ``pack``, built once a thread and pack (not thread-safe: one a
    thread): registering the rules with durable_rules took ~0.5 ms a submission."""
    found: tuple[str, Matcher] | None = getattr(_MATCHERS, "found", None)
    if found is None or found[0] != pack.hash:
        rules = {r.key: r.durable for r in pack.rules if r.rule.period == "fact" and r.rule.subject.type in FACT_BUILDERS}
        found = _MATCHERS.found = (pack.hash, Matcher(rules))
    return found[1]


def _involved(facts: list[FactBase]) -> tuple[set[str], set[str]]:
    """The orgs and members judging these facts needs from the registry."""
    orgs: set[str] = set()
    members: set[str] = set()
    for f in facts:
        match f:
            case Meeting():
                orgs.add(f.org)
                members.update(f.attendees, f.absent, (lv.member for lv in f.on_leave))
                members.update(m for m in (f.host, f.lecturer, f.minutes.recorder if f.minutes else None) if m)
            case Dues() | Promotion():
                members.add(f.member)
    return orgs, members


def _standing(
    ctx: BuildContext, pack: Pack, meeting: Meeting, built: dict[tuple[str, str], dict[str, Subject]]
) -> list[str]:
    """Where the meeting's org stands in the period containing the meeting (information, not a violation).

    A period's subjects are built once for all the orgs of the batch (``built`` keeps them):
    an import of thousands of meetings builds each rule's month once, not once a meeting.
    """
    lines: list[str] = []
    org = ctx.registry.orgs.get(meeting.org)
    if org is None:
        return lines
    for rule in pack.in_force(meeting.date):
        r = rule.rule
        if r.period == "fact" or not isinstance(r.subject, OrgSubject) or org.kind not in r.subject.org_kinds:
            continue
        held = [n for n, d in r.derive.items() if isinstance(d, MeetingsHeld) and meeting.kind in d.kinds]
        if not held:
            continue
        period = period_of(meeting.date, r.period)  # type: ignore[arg-type]
        cache_key = (rule.key, period.label)
        if cache_key not in built:
            built[cache_key] = {s.id: s for s in build_period_subjects(ctx, r, [period])}
        s = built[cache_key].get(meeting.org)
        if s is not None:
            need = rule.params.get("at_least")
            required = f"（要求至少{need}次）" if need is not None else ""
            lines.append(f"{period.label_cn}{r.title}：已召开{s.fields[held[0]]}次{required}")
    return lines


def judge_report(app: App, report: ImportReport) -> Judgement:
    """Judge what an import added or corrected."""
    return judge_facts(app, [s.fact for s in report.stored])


def print_judgement(j: Judgement) -> None:
    """The secretary's view, in Chinese, after the import counts."""
    for err in j.errors:
        click.echo(err, err=True)
    if j.bulk_months:  # a big import: counted by rule, not listed
        first, last = j.bulk_months[0], j.bulk_months[-1]
        click.echo(
            f"批量判定：按月检查了本次导入涉及的 {len(j.bulk_months)} 个月（{first}至{last}），"
            f"发现 {len(j.findings)} 项问题。"
        )
        for rule, n in Counter(f.rule for f in j.findings).most_common():
            click.echo(f"  {rule}：{n} 项")
        if j.findings:
            click.echo("逐项查看：partyrules violations list")
    elif j.findings:
        click.echo(f"即时判定发现 {len(j.findings)} 项问题：")
        for f in j.findings:
            click.echo(f"  【{SEVERITY_CN.get(f.severity, f.severity)}】{f.rule}：{f.message}")
    elif not j.errors:
        click.echo("即时判定：未发现问题。")
    if j.stored and j.stored.resolved:
        click.echo(f"已自动解决 {len(j.stored.resolved)} 项此前的违规：")
        for key in j.stored.resolved:
            click.echo(f"  {key}")
    for line in j.standing:
        click.echo(f"提示：{line}")
