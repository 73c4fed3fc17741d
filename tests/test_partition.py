"""Partitioned evaluation (processes > 1) judges exactly what a single process judges."""

from __future__ import annotations

import datetime as dt

from bench_loader import load_bench

from engine.app import build_app
from engine.evaluate import evaluate
from engine.periods import parse_range
from facts.readers import read_file


def _generate():
    return load_bench("generate", "bench_generate_for_partition").generate


def test_two_partitions_find_the_same_as_one(tmp_path):
    _generate()(0.02, 3, tmp_path)  # two departments: two top-level orgs to share out
    app = build_app(str(tmp_path / "p.db"))
    app.init()
    assert app.facts.import_items(read_file(tmp_path / "facts.jsonl")).rejected == 0
    rng, as_of = parse_range("2017"), dt.date(2018, 3, 1)
    with app.db.connect() as conn:
        one = evaluate(conn, app.pack(), rng, as_of, processes=1)
        two = evaluate(conn, app.pack(), rng, as_of, processes=2)
    assert sorted(f.key for f in two.findings) == sorted(f.key for f in one.findings)
    assert two.subjects == one.subjects and two.scope == one.scope
    assert len(one.findings) > 50


def test_more_partitions_than_processes_find_the_same_as_one(tmp_path, monkeypatch):
    """Partitions run ``processes`` at a time — given as a number, or made by ``auto`` for a database above
    the budget — judge exactly what one process judges; below the budget ``auto`` keeps ``processes``."""
    import engine.evaluate
    from engine.evaluate import fact_rows

    _generate()(0.04, 3, tmp_path)  # four departments: four top-level orgs to plan
    app = build_app(str(tmp_path / "p.db"))
    app.init()
    assert app.facts.import_items(read_file(tmp_path / "facts.jsonl")).rejected == 0
    rng, as_of = parse_range("2017"), dt.date(2018, 3, 1)
    runs: list[tuple[str, int, int | None]] = []
    real = engine.evaluate.run_forked

    def counted(target, jobs, what, heartbeat=None, heartbeat_seconds=30.0, workers=None):
        runs.append((what, len(jobs), workers))
        return real(target, jobs, what, heartbeat, heartbeat_seconds, workers)

    monkeypatch.setattr(engine.evaluate, "run_forked", counted)
    with app.db.connect() as conn:
        one = evaluate(conn, app.pack(), rng, as_of, processes=1, partitions=1)
        four = evaluate(conn, app.pack(), rng, as_of, processes=2, partitions=4)
        small = evaluate(conn, app.pack(), rng, as_of, processes=2)  # auto, under the budget
        monkeypatch.setattr(engine.evaluate, "FACTS_PER_PARTITION", -(-fact_rows(conn) // 3))
        auto = evaluate(conn, app.pack(), rng, as_of, processes=2)  # auto, over it: three partitions
        from engine.cluster.plan import plan_partitions, subtree_sizes, with_orgs
        from engine.subjects.registry import Registry

        whole, tree = Registry.load(conn), Registry.load_orgs(conn)  # the planner walks the tree alone
        assert not tree.members and set(tree.orgs) == set(whole.orgs)
        assert with_orgs(plan_partitions(subtree_sizes(conn, tree), 3), tree) == with_orgs(
            plan_partitions(subtree_sizes(conn, whole), 3), whole
        )
    # the screen and the plan side by side (nothing screened here: the plan is kept), with the copy check's
    # pairs found once beside them (a year judged: every stored minutes' signature is in the span)
    assert runs == [
        ("evaluation worker", 1, 1),
        ("check preparation", 3, 2),
        ("evaluation worker", 4, 2),
        ("check preparation", 3, 2),
        ("evaluation worker", 2, 2),
        ("check preparation", 3, 2),
        ("evaluation worker", 3, 2),
    ]
    assert len(one.findings) > 100
    for many in (four, small, auto):
        assert sorted(f.key for f in many.findings) == sorted(f.key for f in one.findings)
        assert many.subjects == one.subjects and many.scope == one.scope
        assert many.seconds["sql"] > 0 and many.seconds["match"] > 0


def test_a_worker_that_dies_is_reported_and_the_caller_lives_on(tmp_path, monkeypatch, quiet_crashes):
    import os
    import signal

    import pytest

    import engine.evaluate
    from engine.matching.errors import MatcherCrashed
    from engine.sample import sample_facts
    from facts.errors import Location

    app = build_app(str(tmp_path / "s.db"))
    app.init()
    app.facts.import_items((Location("sample", i), f) for i, f in enumerate(sample_facts()))

    class Dying:
        def __init__(self, _conditions):
            pass

        @classmethod
        def for_rules(cls, _rules):
            return cls(None)

        def matches_many(self, _key, _subjects):
            os.kill(os.getpid(), signal.SIGSEGV)

    monkeypatch.setattr(engine.evaluate, "Matcher", Dying)  # the forked worker inherits the patch
    with app.db.connect() as conn, pytest.raises(MatcherCrashed, match="SIGSEGV"):
        evaluate(conn, app.pack(), parse_range("2017-06"), dt.date(2017, 8, 1), processes=1)
    monkeypatch.undo()
    with app.db.connect() as conn:
        assert evaluate(conn, app.pack(), parse_range("2017-06"), dt.date(2017, 8, 1), processes=1).findings


def test_a_subject_types_memos_are_dropped_after_its_last_rule(tmp_path):
    from engine.evaluate import Work, iter_work
    from engine.sample import sample_facts
    from engine.subjects.base import BuildContext
    from engine.subjects.registry import Registry
    from facts.errors import Location

    app = build_app(str(tmp_path / "s.db"))
    app.init()
    app.facts.import_items((Location("sample", i), f) for i, f in enumerate(sample_facts()))
    pack = app.pack()
    meeting_rules = [r.id for r in pack.rules if r.rule.subject.type == "meeting"]
    with app.db.connect() as conn:
        ctx = BuildContext(conn, Registry.load(conn), dt.date(2018, 3, 1), part=(0, 1))
        work = Work([], ctx.registry, set(), {})
        memo_keys_per_rule: dict[str, set] = {}
        for rule, _chunk in iter_work(ctx, pack, parse_range("2017"), 10, None, work):
            memo_keys_per_rule.setdefault(rule.id, set()).update(map(repr, ctx.memo.entries()))
        meeting_memos = {k for r in meeting_rules for k in memo_keys_per_rule[r] if "meeting" in k}
        assert meeting_memos  # the meeting rules did memoise
        later = [r.id for r in pack.rules][[r.id for r in pack.rules].index(meeting_rules[-1]) + 1 :]
        assert later, "the standard pack judges other subjects after its last meeting rule"
        assert not any(k in memo_keys_per_rule[r] for r in later for k in meeting_memos)
        assert {name for name, _ in ctx.memo.entries()} <= {"mine", "part_tables"}  # the rest is gone at the end


def test_attendance_counted_from_memoised_meetings_equals_the_sql_aggregate(tmp_path):
    from engine.subjects import single, sources
    from engine.subjects.base import BuildContext
    from engine.subjects.registry import Registry

    _generate()(0.02, 5, tmp_path)
    app = build_app(str(tmp_path / "p.db"))
    app.init()
    assert app.facts.import_items(read_file(tmp_path / "facts.jsonl")).rejected == 0
    start, end, as_of = dt.date(2017, 1, 1), dt.date(2017, 12, 31), dt.date(2017, 10, 15)  # as-of inside the span

    def plain(counts):
        return {m: {o: dict(by_month) for o, by_month in by_org.items()} for m, by_org in counts.items()}

    with app.db.connect() as conn:
        registry = Registry.load(conn)
        for part in (None, (0, 2), (1, 2)):
            for kinds in ([], ["group_meeting"]):
                by_sql = sources._attended_by_org(BuildContext(conn, registry, as_of, part=part), kinds, start, end)
                ctx = BuildContext(conn, registry, as_of, part=part)
                single._meeting_data(ctx, start, end, None)  # what the meeting rules leave in the memo
                assert single.memoised_meetings(ctx, start, end) is not None
                by_memo = sources._attended_by_org(ctx, kinds, start, end)
                assert plain(by_memo) == plain(by_sql)
                assert by_sql or part is not None or kinds  # the province attends something before the as-of date


def test_meetings_held_from_the_shared_per_span_counts_equal_one_query_per_rule(tmp_path):
    """The counts of every ``meetings_held`` rule come from one memoised query per span (meetings per kind,
    org and month): they equal what each rule's own GROUP BY query counts, whole or partitioned."""
    import sqlalchemy as sa

    from engine.pack.model import MeetingsHeld
    from engine.periods import month_of
    from engine.subjects import sources
    from engine.subjects.base import BuildContext, month_col
    from engine.subjects.registry import Registry

    _generate()(0.02, 5, tmp_path)
    app = build_app(str(tmp_path / "p.db"))
    app.init()
    assert app.facts.import_items(read_file(tmp_path / "facts.jsonl")).rejected == 0
    start, end, as_of = dt.date(2017, 1, 1), dt.date(2017, 12, 31), dt.date(2017, 10, 15)  # as-of inside the span
    m, topic = sources._M, sources._TOPIC
    specs = [r.rule.derive[n] for r in app.pack().rules for n in r.rule.derive]
    specs = [s for s in specs if isinstance(s, MeetingsHeld)]
    specs.append(MeetingsHeld(source="meetings_held", kinds=["committee_meeting", "theme_day"]))
    assert any(s.topics_any for s in specs) and any(not s.topics_any for s in specs)

    def per_rule(ctx, spec):  # the query each rule ran before
        month = month_col(m.c.date)
        query = (
            sa.select(m.c.org, month, sa.func.count())
            .where(m.c.kind.in_(spec.kinds), m.c.date >= start, m.c.date <= end, m.c.date <= ctx.as_of)
            .where(ctx.in_part(m.c.org, "org"))
            .group_by(m.c.org, month)
        )
        if spec.topics_any:
            query = query.where(sa.exists().where(topic.c.meeting == m.c.id, topic.c.topic.in_(spec.topics_any)))
        if ctx.only_orgs is not None:
            query = query.where(m.c.org.in_(sorted(ctx.only_orgs)))
        return {(org, mon): int(n) for org, mon, n in ctx.conn.execute(query)}

    months = [month_of(dt.date(2017, i, 1)) for i in range(1, 13)]
    with app.db.connect() as conn:
        registry = Registry.load(conn)
        some = set(sorted(registry.orgs)[::3])
        for part, only in ((None, None), ((0, 2), None), ((1, 2), None), (None, some)):
            ctx = BuildContext(conn, registry, as_of, part=part, only_orgs=only)
            counted = set()
            for spec in specs:
                expected = per_rule(ctx, spec)
                if expected:
                    counted.add(bool(spec.topics_any))
                source = sources._meetings_held(ctx, spec, start, end)
                for org in {o for o, _ in expected} | set(sorted(registry.orgs)[:50]):
                    for p in months:
                        assert source.number(org, p) == expected.get((org, p.label), 0), (spec, org, p.label)
            assert counted == {True, False}  # rules with and without topics count meetings held
            assert len(ctx.memo.held) == 1  # one query for the span, shared by the rules without topics


def transfer_across_subtrees() -> list[dict]:
    """Two top-level orgs that fall into different partitions (``da`` and ``oc1``: crc32 mod 2 is 0 and 1,
    and a plan of two partitions puts one in each); member t1 attends every member assembly of a branch
    under ``da`` from December 2016 to May 2017, is transferred on 1 June 2017 to a branch under ``oc1``
    and attends its assemblies from June to August, then none.  Judged as one whole, the absence streak
    starts in September (no finding in 2017); a partition that saw only one subtree's meetings would start
    it in June (findings in November and December) or count from December 2016."""
    facts: list[dict] = [
        {"type": "org", "id": "da", "name": "甲部门机关党委", "kind": "organ_committee"},
        {"type": "org", "id": "da-b", "name": "甲部门第一支部", "kind": "branch", "parent": "da"},
        {"type": "org", "id": "oc1", "name": "乙部门机关党委", "kind": "organ_committee"},
        {"type": "org", "id": "oc1-b", "name": "乙部门第一支部", "kind": "branch", "parent": "oc1"},
        {"type": "member", "id": "t1", "name": "转接人", "org": "da-b", "joined": "2010-01-01"},
        {"type": "member", "id": "a1", "name": "甲党员", "org": "da-b", "joined": "2010-01-01"},
        {"type": "member", "id": "c1", "name": "乙党员", "org": "oc1-b", "joined": "2010-01-01"},
        {"type": "member_change", "member": "t1", "date": "2017-06-01", "org": "oc1-b"},
    ]
    for month in ["2016-12", "2017-01", "2017-02", "2017-03", "2017-04", "2017-05"]:
        facts.append(
            {"type": "meeting", "id": f"da-b-{month}", "org": "da-b", "kind": "member_assembly",
             "date": f"{month}-10", "attendees": ["t1", "a1"]}
        )
    for month in range(1, 13):
        facts.append(
            {"type": "meeting", "id": f"oc1-b-{month}", "org": "oc1-b", "kind": "member_assembly",
             "date": f"2017-{month:02d}-12", "attendees": ["c1", "t1"] if 6 <= month <= 8 else ["c1"]}
        )
    return facts


def test_a_member_transferred_between_partitions_is_judged_on_both_orgs_meetings(tmp_path):
    from facts.errors import Location

    app = build_app(str(tmp_path / "t.db"))
    app.init()
    report = app.facts.import_items((Location("t", i), f) for i, f in enumerate(transfer_across_subtrees()))
    assert report.rejected == 0
    rng, as_of = parse_range("2017"), dt.date(2018, 3, 1)
    with app.db.connect() as conn:
        one = evaluate(conn, app.pack(), rng, as_of, processes=1)
        two = evaluate(conn, app.pack(), rng, as_of, processes=2)
    absent = sorted(f.period for f in one.findings if f.rule == "member.absence.six_months" and f.subject_id == "t1")
    assert absent == []  # attended in both subtrees: at most four months without (September to December)
    assert sorted(f.key for f in two.findings) == sorted(f.key for f in one.findings)


def test_a_sources_column_equals_its_number_subject_by_subject(tmp_path):
    """The pre-filter's column of a derived value (``Source.column``, computed for a whole period at once
    where a source can) equals the value's number asked subject by subject, for every derived value of the
    standard pack over months, quarters and the year, whole and partitioned."""
    from engine.periods import month_of, quarter_of, year_of
    from engine.subjects.base import BuildContext
    from engine.subjects.registry import Registry
    from engine.subjects.sources import value_function

    _generate()(0.02, 5, tmp_path)
    app = build_app(str(tmp_path / "p.db"))
    app.init()
    assert app.facts.import_items(read_file(tmp_path / "facts.jsonl")).rejected == 0
    start, end, as_of = dt.date(2017, 1, 1), dt.date(2017, 12, 31), dt.date(2017, 10, 15)
    periods = [month_of(dt.date(2017, i, 1)) for i in (1, 6, 9, 10, 12)]
    periods += [quarter_of(dt.date(2017, 7, 1)), year_of(dt.date(2017, 1, 1))]
    specs = {(r.rule.subject.type, n): d for r in app.pack().rules for n, d in r.rule.derive.items()}
    with app.db.connect() as conn:
        registry = Registry.load(conn)
        members = sorted(registry.members)
        orgs = sorted(registry.orgs)
        for part in (None, (1, 2)):
            ctx = BuildContext(conn, registry, as_of, part=part)
            for (kind, _name), spec in specs.items():
                if type(spec).__name__ == "TermOverdue":
                    continue  # judged at a date, not over months
                source = value_function(ctx, spec, start, end)
                ids = members if kind == "member" else orgs
                for period in periods:
                    if type(spec).__name__ == "MonthsWithout" and period.granularity != "month":
                        continue  # a streak is counted back from a month
                    assert source.column(ids, period) == [source.number(i, period) for i in ids], (spec, period)


def test_a_partitions_interview_sources_read_only_the_talks_of_its_members(tmp_path):
    """Both interview sources (heart-to-heart talks counted, committee pairs untalked) judge members; a
    partition reads only the interviews one of its members took part in, and gets every member's value as
    the whole province does."""
    from engine.periods import year_of
    from engine.subjects.base import BuildContext
    from engine.subjects.registry import Registry
    from engine.subjects.sources import _interview_rows, value_function

    _generate()(0.02, 5, tmp_path)
    app = build_app(str(tmp_path / "p.db"))
    app.init()
    assert app.facts.import_items(read_file(tmp_path / "facts.jsonl")).rejected == 0
    start, end, as_of = dt.date(2017, 1, 1), dt.date(2017, 12, 31), dt.date(2018, 3, 1)
    year = year_of(start)
    specs = [
        d for r in app.pack().rules for d in r.rule.derive.values() if type(d).__name__ in ("Interviews", "CommitteeTalks")
    ]
    assert {type(d).__name__ for d in specs} == {"Interviews", "CommitteeTalks"}
    with app.db.connect() as conn:
        registry = Registry.load(conn)
        whole = BuildContext(conn, registry, as_of)
        kinds = sorted({k for d in specs for k in d.kinds})
        every = conn.execute(_interview_rows(whole, kinds, start, end)).all()
        for part in ((0, 2), (1, 2)):
            ctx = BuildContext(conn, registry, as_of, part=part)
            mine = {m.id for m in registry.members.values() if ctx.mine(m.org)}
            read = conn.execute(_interview_rows(ctx, kinds, start, end)).all()
            assert sorted(read) == sorted(r for r in every if r[0] in mine or r[1] in mine)
            assert 0 < len(read) < len(every)
            for spec in specs:
                ours, theirs = value_function(ctx, spec, start, end), value_function(whole, spec, start, end)
                ids = sorted(mine)
                assert [ours.number(i, year) for i in ids] == [theirs.number(i, year) for i in ids], spec
