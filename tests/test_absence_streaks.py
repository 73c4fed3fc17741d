"""The absence streak (``months_without`` of attendance) counted set-wise per (org, month) equals the count
the engine made before: member by member, from every member's attendance per org and month
(``_attended_by_org``), with the orgs of each month for a transferred member and the excused months added.

Held on a generated province with transfers (some across top-level orgs, so across partitions),
excusals (from the start, and dated), and members who joined in the year; whole and in partitions; with the
meetings the meeting rules memoise, and without (the attendance read in SQL)."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict

import pytest
from bench_loader import bench_app

from engine.pack.model import MonthsWithout
from engine.periods import month_of
from engine.subjects import single, sources
from engine.subjects.base import BuildContext
from engine.subjects.registry import Registry

START, END = dt.date(2017, 1, 1), dt.date(2017, 12, 31)


def _with_changes(path, seed: int) -> None:  # type: ignore[no-untyped-def]
    """Add transfers, excusals and late joiners to a generated province's facts (in place)."""
    lines = path.read_text().splitlines()
    facts = [json.loads(line) for line in lines]
    rnd = random.Random(seed)
    branches = [f["id"] for f in facts if f["type"] == "org" and f.get("kind") == "branch"]
    members = [f for f in facts if f["type"] == "member"]
    extra = []
    for m in rnd.sample(members, 40):  # transfers mid-year, anywhere (across top-level orgs too)
        day = dt.date(2017, rnd.randint(2, 11), rnd.randint(1, 28))
        to = rnd.choice([b for b in branches if b != m["org"]])
        extra.append({"type": "member_change", "member": m["id"], "date": day.isoformat(), "org": to})
        for month in range(day.month + 1, 13, 2):  # attends at the new branch every other month after
            extra.append({"type": "meeting", "id": f"moved-{m['id']}-{month}", "org": to, "kind": "theme_day",
                          "date": f"2017-{month:02d}-05", "attendees": [m["id"]]})
    for m in rnd.sample(members, 15):  # excused from the start
        m["excused"] = True
    for m in rnd.sample(members, 15):  # excused from a day in the year (some of them transferred too)
        day = dt.date(2017, rnd.randint(3, 10), rnd.randint(1, 28))
        extra.append({"type": "member_change", "member": m["id"], "date": day.isoformat(), "excused": True})
    for m in rnd.sample(members, 15):  # joined during the year: the streak counts back to the joining month
        m["joined"] = dt.date(2017, rnd.randint(2, 9), 15).isoformat()
    path.write_text("\n".join(json.dumps(f, ensure_ascii=False) for f in [*facts, *extra]) + "\n")


@pytest.fixture(scope="module")
def app(tmp_path_factory):  # type: ignore[no-untyped-def]
    return bench_app(tmp_path_factory.mktemp("absence"), 0.02, 5, _with_changes)


def _member_by_member(ctx: BuildContext, first_day: dt.date, end: dt.date):  # type: ignore[no-untyped-def]
    """The streak as counted before: each member's months with attendance, from member → org → month counts."""
    reg = ctx.registry
    had: dict[str, set[str]] = defaultdict(set)
    for member, by_org in sources._attended_by_org(ctx, [], first_day, end, with_leave=True).items():
        info = reg.members.get(member)
        if info is not None and info.changes:
            for org, months in by_org.items():
                had[member].update(m for m in months if org in sources._own_orgs(ctx, member, True, sources._month(m)))
            continue
        orgs = sources._own_orgs(ctx, member, True)
        for org, months in by_org.items():
            if org in orgs:
                had[member].update(months)
    for info in reg.members.values():
        if info.excused or any(c.excused is not None for c in info.changes):
            had[info.id].update(sources._excused_months(info, first_day, end))
    first = sources._month_index(first_day.isoformat()[:7])
    joined = {m.id: sources._month_index(m.joined.isoformat()[:7]) for m in reg.members.values() if m.joined}

    def streak(sid: str, label: str) -> int:
        months = {sources._month_index(m) for m in had.get(sid, ())}
        i, stop, run = sources._month_index(label), max(first, joined.get(sid, first)), 0
        while i >= stop and i not in months:
            run, i = run + 1, i - 1
        return run

    return streak


@pytest.mark.parametrize("as_of", [dt.date(2018, 3, 1), dt.date(2017, 8, 20)])  # the second inside the span
def test_the_set_wise_streak_equals_the_member_by_member_count(app, as_of) -> None:  # type: ignore[no-untyped-def]
    spec = MonthsWithout(source="months_without", of="attendance")
    months = [month_of(dt.date(2017, i, 1)) for i in range(1, 13)]
    with app.db.connect() as conn:
        registry = Registry.load(conn)
        first_day = dt.date.fromisoformat(str(conn.execute(sources.sa.select(sources.sa.func.min(sources._M.c.date))).scalar())[:7] + "-01")
        changed = [m for m in registry.members.values() if m.changes]
        assert len(changed) >= 40 and any(m.excused for m in registry.members.values())
        seen_long = False
        for part in (None, (0, 2), (1, 2)):
            for memoised in (False, True):
                ctx = BuildContext(conn, registry, as_of, part=part)
                if memoised:
                    single._meeting_data(ctx, START, END, None)  # what the meeting rules leave in the memo
                source = sources._months_without(ctx, spec, START, END)
                expected = _member_by_member(BuildContext(conn, registry, as_of, part=part), first_day, END)
                ids = sorted(m.id for m in registry.members.values() if ctx.mine(m.org))
                for p in months:
                    got = source.column(ids, p)
                    assert got == [expected(sid, p.label) for sid in ids], (part, memoised, p.label)
                    assert got == [source.value(sid, p)[0] for sid in ids]
                    seen_long |= any(n >= 6 for n in got)
        assert seen_long  # some member goes six months without: the rule has something to find
