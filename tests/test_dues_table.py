"""The dues rules read a span's dues once, as columns (engine/subjects/dues.py): the dues subjects
(``dues.amount.full``) and the months paid (``dues.monthly.paid``, ``dues.arrears.six_months``) equal what
the engine computed before, row by row from its own queries (the reference below is that code).

Held on a generated province with retirements and quarterly payers dated inside months, students,
payments without a base, payments after the as-of date and transfers across top-level orgs; whole and
in partitions; the dues subjects also for a few submitted payments (``only``)."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict

import pytest
import sqlalchemy as sa
from bench_loader import bench_app

from engine.periods import month_of, quarter_of, year_of
from engine.subjects import single, sources
from engine.subjects.base import BuildContext
from engine.subjects.registry import Registry
from facts import tables as t

AS_OF = dt.date(2017, 11, 10)  # inside the span: some payments are after it
MONTHS = [month_of(dt.date(2017, i, 1)) for i in range(1, 13)]
_DUES = t.DuesRow.__table__  # type: ignore[attr-defined]


def _with_changes(path, seed: int) -> None:  # type: ignore[no-untyped-def]
    facts = [json.loads(line) for line in path.read_text().splitlines()]
    rnd = random.Random(seed)
    branches = [f["id"] for f in facts if f["type"] == "org" and f.get("kind") == "branch"]
    members = [f for f in facts if f["type"] == "member"]
    extra = []
    for m in rnd.sample(members, 20):  # retired inside a month: the standard changes from the next month
        day = dt.date(2017, rnd.randint(2, 11), rnd.randint(1, 28))
        extra.append({"type": "member_change", "member": m["id"], "date": day.isoformat(), "category": "retired"})
    for m in rnd.sample(members, 20):
        m["dues_quarterly"] = True
    for m in rnd.sample(members, 10):  # quarterly from a day in the year
        day = dt.date(2017, rnd.randint(2, 11), rnd.randint(1, 28))
        extra.append({"type": "member_change", "member": m["id"], "date": day.isoformat(), "dues_quarterly": True})
    for m in rnd.sample(members, 10):
        m["category"] = "student"
    for m in rnd.sample(members, 20):  # transferred anywhere (across top-level orgs too)
        day = dt.date(2017, rnd.randint(2, 11), rnd.randint(1, 28))
        extra.append({"type": "member_change", "member": m["id"], "date": day.isoformat(),
                      "org": rnd.choice([b for b in branches if b != m["org"]])})
    dues = [f for f in facts if f["type"] == "dues"]
    for f in rnd.sample(dues, 60):
        f.pop("base", None)
    for f in rnd.sample(dues, 60):  # paid late, some after the as-of date
        f["paid_on"] = (dt.date.fromisoformat(f["month"] + "-01") + dt.timedelta(days=rnd.randint(35, 200))).isoformat()
    path.write_text("\n".join(json.dumps(f, ensure_ascii=False) for f in [*facts, *extra]) + "\n")


@pytest.fixture(scope="module")
def app(tmp_path_factory):  # type: ignore[no-untyped-def]
    return bench_app(tmp_path_factory.mktemp("dues"), 0.02, 7, _with_changes)


def _subjects_before(ctx, rule, months, only=None):  # type: ignore[no-untyped-def]
    """The dues subjects as built before: one query of the months judged, a payer a member (a month for a
    member with dated changes), the standard per (base, category)."""
    by_label = {m.label: m for m in months}
    query = sa.select(_DUES.c.member, _DUES.c.month, _DUES.c.amount, _DUES.c.base, _DUES.c.paid_on).where(
        _DUES.c.month.in_(list(by_label)), ctx.in_part(_DUES.c.member, "member")
    )
    if rule.subject.with_base:
        query = query.where(_DUES.c.base.is_not(None))
    reg, out = ctx.registry, {}
    for member, month, amount, base, paid_on in ctx.conn.execute(query):
        key = f"{member}|{month}"
        if only is not None and key not in only:
            continue
        mem = reg.members.get(member)
        if not ctx.mine(mem.org if mem else None):
            continue
        if mem is not None and mem.changes:
            mem = mem.at(single._dues_day(mem, by_label[month]))
        org = mem.org if mem else ""
        category = mem.category if mem else "in_service"
        base = base if base is not None else 0.0
        standard, rate = single.dues_standard(base, category, rule.numeric_params())
        p = by_label[month]
        out[key] = {
            "dues": key, "member": member, "member_name": reg.member_name(member), "org": org,
            "org_name": reg.org_name(org or None), "month": month, "amount": float(amount), "base": float(base),
            "category": category, "standard": float(standard), "rate_pct": rate, "paid_on": paid_on.isoformat(),
            "period": p.label, "period_label": p.label_cn,
        }
    return out


def _paid_before(ctx, spec, period, sid):  # type: ignore[no-untyped-def]
    """``dues_paid`` as counted before, from dates: (months paid, the days paid)."""
    rows = ctx.conn.execute(
        sa.select(_DUES.c.member, _DUES.c.month, _DUES.c.paid_on).where(
            _DUES.c.member == sid, _DUES.c.paid_on <= ctx.as_of
        )
    )
    paid = {mon: day for _m, mon, day in rows}
    mem, n, dates = ctx.registry.members.get(sid), 0, []
    for m in period.month_periods:
        day, due = paid.get(m.label), m.end
        if mem is not None and mem.at(max(m.start, mem.joined) if mem.joined else m.start).dues_quarterly:
            due = quarter_of(m.start).end
        if day is not None:
            dates.append(day.isoformat())
            if not spec.on_time or day <= due:
                n += 1
        elif due > m.end and ctx.as_of <= due:
            n += 1
    return n, "、".join(dates) if dates else "未交纳"


@pytest.mark.parametrize("part", [None, (0, 2), (1, 2)])
def test_the_dues_subjects_equal_those_built_row_by_row(app, part) -> None:  # type: ignore[no-untyped-def]
    rule = next(r.rule for r in app.pack().rules if r.id == "dues.amount.full")
    months = MONTHS[:10]  # the months judged: the dues read for other months are not subjects
    with app.db.connect() as conn:
        registry = Registry.load(conn)
        ctx = BuildContext(conn, registry, AS_OF, part=part)
        sources._dues_rows(ctx, dt.date(2017, 1, 1), dt.date(2017, 12, 31))  # a member rule read the year first
        got = {s.id: s.fields for s in single.dues_columns(ctx, rule, months)}
        expected = _subjects_before(ctx, rule, months)
        assert got == expected
        assert len(ctx.memo.dues_table) == 1  # one read of the year, shared (the rule selects its months)
        assert {f["category"] for f in got.values()} >= {"retired", "in_service"} or part is not None
        columns = single.dues_columns(ctx, rule, months)
        assert columns.values("standard") == [s.fields["standard"] for s in columns]
        some = set(sorted(expected)[::97])
        few = single.dues_columns(BuildContext(conn, registry, AS_OF, part=part), rule, months, only=some)
        assert {s.id: s.fields for s in few} == {k: expected[k] for k in some}


@pytest.mark.parametrize("part", [None, (1, 2)])
def test_months_paid_equal_those_counted_from_dates(app, part) -> None:  # type: ignore[no-untyped-def]
    specs = [d for r in app.pack().rules for d in r.rule.derive.values() if type(d).__name__ == "DuesPaid"]
    assert specs
    periods = [MONTHS[0], MONTHS[5], MONTHS[9], MONTHS[10], quarter_of(dt.date(2017, 10, 1)), year_of(MONTHS[0].start)]
    with app.db.connect() as conn:
        registry = Registry.load(conn)
        ctx = BuildContext(conn, registry, AS_OF, part=part)
        ids = sorted(m.id for m in registry.members.values() if ctx.mine(m.org))
        unusual = [m.id for m in registry.members.values() if (m.changes or m.dues_quarterly) and ctx.mine(m.org)]
        ids = sorted({*ids[::7], *unusual})
        counted = defaultdict(int)
        for spec in specs:
            source = sources.value_function(ctx, spec, dt.date(2017, 1, 1), dt.date(2017, 12, 31))
            for period in periods:
                column = source.column(ids, period)
                for sid, n in zip(ids, column, strict=True):
                    before = _paid_before(ctx, spec, period, sid)
                    assert (n, source.value(sid, period)[1]["paid_on"]) == before, (sid, period.label)
                    counted[n] += 1
        assert len(counted) > 1  # paid and unpaid both seen


@pytest.mark.parametrize("part", [None, (0, 2)])
def test_months_without_dues_equal_the_streak_counted_from_each_members_months(app, part) -> None:  # type: ignore[no-untyped-def]
    from engine.pack.model import MonthsWithout

    spec = MonthsWithout(source="months_without", of="dues")
    with app.db.connect() as conn:
        registry = Registry.load(conn)
        ctx = BuildContext(conn, registry, AS_OF, part=part)
        source = sources._months_without(ctx, spec, dt.date(2017, 1, 1), dt.date(2017, 12, 31))
        paid: dict[str, set[int]] = defaultdict(set)
        for member, mon in conn.execute(sa.select(_DUES.c.member, _DUES.c.month).where(_DUES.c.paid_on <= AS_OF)):
            paid[member].add(sources._month_index(mon))
        first = sources._month_index(conn.execute(sa.select(sa.func.min(_DUES.c.month))).scalar())
        ids = sorted(m.id for m in registry.members.values() if ctx.mine(m.org))
        seen = set()
        for period in MONTHS:
            for sid, n in zip(ids, source.column(ids, period), strict=True):
                info = registry.members[sid]
                i, run = sources._month_index(period.label), 0
                stop = max(first, sources._month_index(info.joined.isoformat()[:7]) if info.joined else first)
                while i >= stop and i not in paid[sid]:
                    run, i = run + 1, i - 1
                assert n == run, (sid, period.label)
                seen.add(n)
        assert max(seen) >= 6  # unpaid from the late payments after the as-of date on
