"""The orgs a rule judges in a period (``engine.subjects.periodic._orgs``), memoised per (kinds, term,
period) from the partition's orgs sorted by kind, equal to the walk of every org it replaced: the same orgs
in the same order with the same base fields, for every org-subject spec of the standard pack and every
month, quarter and year, whole and in partitions.

Held on a generated province with dated org changes: kinds changed mid-year (a branch becoming a general
branch and back), orgs dissolved (recorded, and by an org_change), established during the year, moved under
another parent (across top-level orgs, so across partitions), renamed, and given a term."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import pytest
from bench_loader import bench_app

from engine.pack.model import OrgSubject
from engine.periods import Period, month_of, period_of
from engine.subjects import periodic
from engine.subjects.base import BuildContext
from engine.subjects.registry import Registry
from facts import tables as t

AS_OF = dt.date(2018, 3, 1)


def _with_org_changes(path, seed: int) -> None:  # type: ignore[no-untyped-def]
    facts = [json.loads(line) for line in path.read_text().splitlines()]
    rnd = random.Random(seed)
    orgs = [f for f in facts if f["type"] == "org"]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for o in orgs:
        by_kind.setdefault(o["kind"], []).append(o)
    extra = []

    def day() -> str:
        return dt.date(2017, rnd.randint(2, 11), rnd.randint(1, 28)).isoformat()

    for o in rnd.sample(by_kind["branch"], 12):  # a kind changed mid-year, some changed back later
        extra.append({"type": "org_change", "org": o["id"], "date": "2017-05-10", "kind": "general_branch"})
        if rnd.random() < 0.5:
            extra.append({"type": "org_change", "org": o["id"], "date": "2017-09-03", "kind": "branch"})
    for o in rnd.sample(by_kind["branch"], 6):  # dissolved by an org_change
        extra.append({"type": "org_change", "org": o["id"], "date": day(), "dissolved": True})
    for o in [*rnd.sample(by_kind["party_group"], 1), *rnd.sample(by_kind["group"], 4)]:  # dissolved as recorded
        o["dissolved"] = day()
    for o in rnd.sample(by_kind["branch"], 6):  # established during the year
        o["established"] = day()
    tops = [o["id"] for o in orgs if not o.get("parent")]
    for o in rnd.sample(by_kind["branch"], 8):  # moved under another top-level org
        extra.append({"type": "org_change", "org": o["id"], "date": day(), "parent": rnd.choice(tops)})
    for o in rnd.sample(by_kind["branch"], 6):  # renamed, and given a term
        extra.append({"type": "org_change", "org": o["id"], "date": day(), "name": o["name"] + "（更名）"})
        extra.append({"type": "org_change", "org": o["id"], "date": day(), "term_years": 3})
    path.write_text("\n".join(json.dumps(f, ensure_ascii=False) for f in [*facts, *extra]) + "\n")


@pytest.fixture(scope="module")
def app(tmp_path_factory):  # type: ignore[no-untyped-def]
    return bench_app(tmp_path_factory.mktemp("orgs"), 0.02, 3, _with_org_changes)


def _walk(ctx: BuildContext, spec: OrgSubject, period: Period) -> list[tuple[str, dict[str, Any]]]:
    """The orgs as found before: every org of the registry walked for each rule and period."""
    kinds = set(spec.org_kinds)
    with_term: set[str] = set()
    if spec.with_term:
        table = t.ElectionRow.__table__  # type: ignore[attr-defined]
        with_term = set(ctx.conn.execute(table.select().with_only_columns(table.c.org)).scalars())
    out = []
    for org in ctx.registry.orgs.values():
        if not org.exists_during(period.start, period.end) or not ctx.mine(org.id):
            continue
        if org.changes:
            org = org.at(min(period.end, org.dissolved) if org.dissolved else period.end)
        if org.kind not in kinds:
            continue
        if spec.with_term and not org.term_years and org.id not in with_term:
            continue
        out.append((org.id, {"org": org.id, "org_name": org.name, "org_kind": org.kind}))
    return out


def _periods() -> list[Period]:
    months = [month_of(dt.date(2017, m, 1)) for m in range(1, 13)]
    quarters = [period_of(dt.date(2017, m, 1), "quarter") for m in (1, 4, 7, 10)]
    return [*months, *quarters, period_of(dt.date(2017, 1, 1), "year")]


@pytest.mark.parametrize("part", [None, (0, 3), (1, 3), (2, 3)])
def test_memoised_orgs_equal_the_walk_of_every_org(app, part) -> None:  # type: ignore[no-untyped-def]
    specs = list({r.rule.subject.model_dump_json(): r.rule.subject for r in app.pack().rules
                  if isinstance(r.rule.subject, OrgSubject)}.values())
    specs.append(OrgSubject(type="org", org_kinds=["branch", "branch", "general_branch"]))  # a kind named twice
    assert any(s.with_term for s in specs) and len(specs) >= 4
    with app.db.connect() as conn:
        registry = Registry.load(conn)
        assert sum(bool(o.changes) for o in registry.orgs.values()) >= 20  # the edits are in
        ctx = BuildContext(conn, registry, AS_OF, part=part)
        seen = 0
        for _round in range(2):  # the second round from the memo
            for spec in specs:
                for period in _periods():
                    got = periodic._orgs(ctx, spec, period)
                    assert got == _walk(BuildContext(conn, registry, AS_OF, part=part), spec, period)
                    seen += len(got)
        assert seen > 1000


def test_a_kind_change_moves_the_org_between_the_rules_of_each_kind(app) -> None:  # type: ignore[no-untyped-def]
    with app.db.connect() as conn:
        registry = Registry.load(conn)
        changed = next(o for o in registry.orgs.values() if any(c.kind for c in o.changes))
        ctx = BuildContext(conn, registry, AS_OF)
        branch = OrgSubject(type="org", org_kinds=["branch"])
        general = OrgSubject(type="org", org_kinds=["general_branch"])
        april, june = month_of(dt.date(2017, 4, 1)), month_of(dt.date(2017, 6, 1))
        assert changed.id in dict(periodic._orgs(ctx, branch, april))
        assert changed.id not in dict(periodic._orgs(ctx, general, april))
        assert changed.id in dict(periodic._orgs(ctx, general, june))
        assert changed.id not in dict(periodic._orgs(ctx, branch, june))
