"""Running a pack's own test cases: each case imports its facts into a fresh in-memory database,
judges its rule over the case's period as of its date, and compares the findings with ``expect``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.pool import StaticPool

from engine.evaluate import evaluate
from engine.pack.load import CompiledRule, Pack
from engine.pack.model import RuleTest
from engine.periods import parse_range
from engine.schema import init_schema
from facts.db import make_engine
from facts.errors import Location
from facts.store import FactStore


@dataclass
class CaseResult:
    rule: str
    case: str
    file: str
    ok: bool
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        text = f"{mark} {self.rule} — {self.case}"
        return text + "".join(f"\n       {p}" for p in self.problems)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return abs(float(a) - float(b)) < 1e-6
    return bool(a == b)


def run_case(pack: Pack, rule: CompiledRule, case: RuleTest) -> CaseResult:
    result = CaseResult(rule.id, case.name, rule.file, True)
    db = make_engine("sqlite://", poolclass=StaticPool)
    try:
        init_schema(db)
        facts = pack.fixtures.get(rule.file, []) + case.facts
        items = [(Location(f"{rule.file}#{case.name}", i + 1), obj) for i, obj in enumerate(facts)]
        report = FactStore(db).import_items(items)
        if report.problems:
            result.ok = False
            result.problems += [f"test facts rejected: {p}" for p in report.problems]
            return result
        with db.connect() as conn:
            ev = evaluate(conn, pack, parse_range(case.period), case.as_of, rule_ids=[rule.id], processes=0)
        got = {(f.subject_id, f.period): f for f in ev.findings if f.rule == rule.id}
        wanted = {(e.subject, e.period): e for e in case.expect}
        for (subject, period), exp in wanted.items():
            match = [f for (s, p), f in got.items() if s == subject and (period is None or p == period)]
            if not match:
                result.problems.append(f"expected a finding for {subject} {period or ''}, got none")
                continue
            for name, value in exp.values.items():
                observed = match[0].evidence["observed"].get(name, match[0].evidence.get(name))
                if not _close(observed, value):
                    result.problems.append(f"{subject}: {name} = {observed!r}, expected {value!r}")
        for (s, p), f in got.items():
            if not any(s == subject and (period is None or p == period) for subject, period in wanted):
                result.problems.append(f"unexpected finding for {s} {p}: {f.message}")
        result.ok = not result.problems
        return result
    finally:
        db.dispose()


def run_pack_tests(pack: Pack, rule_ids: list[str] | None = None) -> Iterator[CaseResult]:
    for rule in pack.rules:
        if rule_ids and rule.id not in rule_ids:
            continue
        for case in rule.rule.tests:
            yield run_case(pack, rule, case)


def untested(pack: Pack) -> list[str]:
    return sorted({r.id for r in pack.rules if not r.rule.tests})
