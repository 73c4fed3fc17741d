"""A partition's derived values read the partition's rows, not the province's, and equal what they were."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from bench_loader import load_bench

from engine.app import build_app
from facts.readers import read_file

START, END, AS_OF = dt.date(2017, 1, 1), dt.date(2017, 12, 31), dt.date(2018, 3, 1)


@pytest.fixture(scope="module")
def province(tmp_path_factory):
    """A small generated province of four departments (four top-level orgs)."""
    tmp = tmp_path_factory.mktemp("province")
    load_bench("generate", "bench_generate_for_partition_sources").generate(0.04, 3, tmp)
    app = build_app(str(tmp / "p.db"))
    app.init()
    assert app.facts.import_items(read_file(tmp / "facts.jsonl")).rejected == 0
    return app


def _contexts(conn: sa.Connection) -> list[Any]:
    """The whole province, two hash shares, and each partition of a plan of three (partial registries)."""
    from engine.cluster.plan import plan_partitions, subtree_sizes, with_orgs
    from engine.subjects.base import BuildContext
    from engine.subjects.registry import Registry

    whole = Registry.load(conn)
    tree = Registry.load_orgs(conn)
    planned = with_orgs(plan_partitions(subtree_sizes(conn, tree), 3), tree)
    assert len(planned) == 3
    out = [BuildContext(conn, whole, AS_OF)]
    out += [BuildContext(conn, whole, AS_OF, part=(k, 2)) for k in range(2)]
    out += [
        BuildContext(
            conn, Registry.load(conn, orgs=p.orgs), AS_OF, roots=frozenset(p.roots), orphans=p.orphans
        )
        for p in planned
    ]
    return out


def _old_held_with_topics(ctx: Any, spec: Any, start: dt.date, end: dt.date) -> dict[tuple[str, str], int]:
    """``_held_with_topics`` before partitions read their own meetings (the reference)."""
    from engine.subjects.base import month_col
    from engine.subjects.sources import _M, _TOPIC

    month = month_col(_M.c.date)
    query = (
        sa.select(_M.c.org, month, sa.func.count())
        .where(_M.c.kind.in_(spec.kinds), _M.c.date >= start, _M.c.date <= end, _M.c.date <= ctx.as_of)
        .where(ctx.in_part(_M.c.org, "org"))
        .group_by(_M.c.org, month)
    )
    if ctx.only_orgs is None:
        query = query.where(
            _M.c.id.in_(sa.select(_TOPIC.c.meeting).where(_TOPIC.c.topic.in_(spec.topics_any)))
        )
    else:
        has_topic = sa.exists().where(_TOPIC.c.meeting == _M.c.id, _TOPIC.c.topic.in_(spec.topics_any))
        query = query.where(_M.c.org.in_(sorted(ctx.only_orgs)), has_topic)
    return {(org, mon): int(n) for org, mon, n in ctx.conn.execute(query)}


@contextlib.contextmanager
def _statements(conn: sa.Connection) -> Iterator[list[str]]:
    """Every SQL statement run on ``conn`` inside the block."""
    seen: list[str] = []

    def keep(_conn, _cursor, statement, *_rest):
        seen.append(statement)

    sa.event.listen(conn, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        sa.event.remove(conn, "before_cursor_execute", keep)


def test_a_partitions_meetings_with_topics_are_its_own_and_counted_as_before(province):
    """Meetings held with a topic (the party-group rules) are counted from the partition's own meetings,
    each checked for its topics, and equal the old count from the province's topic index; whole, the
    province still starts from the topic index."""
    from engine.pack.model import MeetingsHeld
    from engine.subjects.sources import _held_with_topics

    specs = [d for r in province.pack().rules for d in r.rule.derive.values() if isinstance(d, MeetingsHeld)]
    specs = [s for s in specs if s.topics_any]
    assert len(specs) >= 3
    with province.db.connect() as conn:
        counted = 0
        for ctx in _contexts(conn):
            for spec in specs:
                with _statements(conn) as seen:
                    found = _held_with_topics(ctx, spec, START, END)
                assert found == _old_held_with_topics(ctx, spec, START, END), spec
                counted += sum(found.values())
            reads_topic_index = [s for s in seen if "meeting.id IN (SELECT meeting_topic.meeting" in s]
            assert bool(reads_topic_index) == (not ctx.partitioned), ctx.part or ctx.roots
        assert counted > 0


def test_a_partitions_topic_count_never_plans_a_read_of_the_topic_index(province):
    """SQLite's plan for a partition's count probes each of its meetings' own topics (the meeting_topic
    key), never the topic index that lists the province's meetings with the topic."""
    from engine.pack.model import MeetingsHeld

    spec = next(
        d
        for r in province.pack().rules
        for d in r.rule.derive.values()
        if isinstance(d, MeetingsHeld) and d.topics_any
    )
    with province.db.connect() as conn:
        ctx = _contexts(conn)[-1]
        assert ctx.roots is not None  # a planned partition
        statement, parameters = _compiled_held(ctx, spec)
        plan = " | ".join(
            row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        )
    assert "ix_meeting_topic_topic" not in plan, plan
    assert "ix_meeting_org_kind_date" in plan, plan


def _compiled_held(ctx: Any, spec: Any) -> tuple[str, tuple[Any, ...]]:
    """The SQL and parameters ``_held_with_topics`` runs for ``ctx`` (captured from its execution)."""
    from engine.subjects import sources

    captured: list[tuple[str, Any]] = []

    def keep(_conn, _cursor, statement, parameters, _context, _many):
        captured.append((statement, parameters))

    sa.event.listen(ctx.conn, "before_cursor_execute", keep)
    try:
        sources._held_with_topics(ctx, spec, START, END)
    finally:
        sa.event.remove(ctx.conn, "before_cursor_execute", keep)
    statement, parameters = next((s, p) for s, p in captured if "meeting_topic" in s)
    return statement, tuple(parameters)


def test_a_planned_check_finds_the_first_dues_month_once_for_its_partitions(province, monkeypatch):
    """The plan gives each partition the store's first dues month (what a dues streak counts back to); a
    partition given it asks nothing of the dues table's minimum, and its streaks equal those of a partition
    that found it itself."""
    from engine.evaluate import plan_check
    from engine.pack.model import MonthsWithout
    from engine.subjects.base import BuildContext, StoreFirsts
    from engine.subjects.registry import Registry
    from engine.subjects.screen import Screen
    from engine.subjects.sources import value_function

    with province.db.connect() as conn:
        first = conn.execute(sa.text("SELECT min(month) FROM dues")).scalar_one()
    planned = plan_check(province.db.engine, 2, 3, Screen())
    assert planned is not None and len(planned) == 3
    assert {p.firsts for p in planned} == {StoreFirsts(first)}
    spec = next(
        d
        for r in province.pack().rules
        for d in r.rule.derive.values()
        if isinstance(d, MonthsWithout) and d.of == "dues"
    )
    from engine.periods import month_of

    months = [month_of(dt.date(2017, i, 1)) for i in (1, 6, 12)]
    with province.db.connect() as conn:
        for p in planned:
            registry = Registry.load(conn, orgs=p.orgs)
            given = BuildContext(
                conn, registry, AS_OF, roots=frozenset(p.roots), orphans=p.orphans, firsts=p.firsts
            )
            itself = BuildContext(conn, registry, AS_OF, roots=frozenset(p.roots), orphans=p.orphans)
            with _statements(conn) as seen:
                ours = value_function(given, spec, START, END)
            assert not [s for s in seen if "min(dues.month)" in s]
            with _statements(conn) as seen:
                theirs = value_function(itself, spec, START, END)
            assert [s for s in seen if "min(dues.month)" in s]
            ids = sorted(m.id for m in registry.members.values() if given.mine(m.org))
            assert ids
            for period in months:
                assert ours.column(ids, period) == theirs.column(ids, period)
    assert StoreFirsts(None) != StoreFirsts(first)  # an empty dues table is a first of its own (no streak)


def test_a_partitions_signoffs_and_elections_are_its_orgs_and_valued_as_whole(province):
    """Sign-offs and elections (org rules) are read for the partition's orgs only, and every org's value
    equals the whole province's."""
    from engine.pack.model import SignoffsMade, TermOverdue
    from engine.periods import year_of
    from engine.subjects.sources import value_function

    specs = [
        d
        for r in province.pack().rules
        for d in r.rule.derive.values()
        if isinstance(d, SignoffsMade | TermOverdue)
    ]
    assert {type(d) for d in specs} == {SignoffsMade, TermOverdue}
    year = year_of(START)
    with province.db.connect() as conn:
        whole, *parts = _contexts(conn)
        for ctx in parts:
            orgs = sorted(o for o in ctx.registry.orgs if ctx.mine(o))
            for spec in specs:
                with _statements(conn) as seen:
                    ours = value_function(ctx, spec, START, END)
                theirs = value_function(whole, spec, START, END)
                assert [ours.value(o, year) for o in orgs] == [theirs.value(o, year) for o in orgs], spec
                reads = [s for s in seen if "FROM signoff" in s or "FROM election" in s]
                assert reads and all("part_org_" in s for s in reads), spec
