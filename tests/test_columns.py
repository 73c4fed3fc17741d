"""Subjects as columns (engine/subjects/columns.py) on the sample federation's data: every column a
builder gives equals the field of the record it builds, and judging through the columns (only the
pre-filter's candidates built) finds exactly what judging every built record finds."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.app import build_app
from engine.evaluate import Work, iter_subjects, iter_work, judge_chunk, judged_periods
from engine.matcher import Matcher
from engine.periods import parse_range
from engine.sample import sample_facts
from engine.subjects.base import BuildContext
from engine.subjects.columns import SubjectColumns
from engine.subjects.registry import Registry
from engine.subjects.schema import subject_fields
from facts.errors import Location

AS_OF = dt.date(2018, 3, 1)


@pytest.fixture(scope="module")
def app(tmp_path_factory):  # type: ignore[no-untyped-def]
    app = build_app(str(tmp_path_factory.mktemp("columns") / "s.db"))
    app.init()
    app.facts.import_items((Location("sample", i), f) for i, f in enumerate(sample_facts()))
    return app


def test_every_column_equals_the_field_of_the_record_built(app) -> None:  # type: ignore[no-untyped-def]
    pack = app.pack()
    checked: set[str] = set()
    with app.db.connect() as conn:
        ctx = BuildContext(conn, Registry.load(conn), AS_OF)
        for rule in pack.rules:
            names = [*subject_fields(rule.rule), "period", "period_label"]
            for chunk in iter_subjects(ctx, rule, judged_periods(rule, parse_range("2017"), AS_OF, 10)):
                if not isinstance(chunk, SubjectColumns):
                    continue
                records = list(chunk)
                assert len(records) == len(chunk)
                for name in names:
                    values = chunk.values(name)
                    if values is None:
                        continue
                    assert list(values) == [s.fields[name] for s in records], (rule.id, name)
                    checked.add(f"{rule.rule.subject.type}.{name}")
    # the columns the standard pack's conditions read are all there
    assert {"dues.amount", "dues.standard", "meeting.minutes_missing", "meeting.copy_similarity",
            "meeting.attendance_ratio", "meeting.absent_without_leave", "member.paid", "member.months",
            "org.meetings"} <= checked


def test_judging_through_columns_finds_what_judging_every_record_finds(app) -> None:  # type: ignore[no-untyped-def]
    pack = app.pack()
    found: dict[bool, list[tuple[str, ...]]] = {}
    built: dict[bool, int] = {}
    counted: dict[bool, dict[str, int]] = {}
    with app.db.connect() as conn:
        for columns in (False, True):
            ctx = BuildContext(conn, Registry.load(conn), AS_OF)
            work = Work([], ctx.registry, set(), {})
            matcher = Matcher.for_rules(pack.rules)
            keys, n = [], 0
            for rule, chunk in iter_work(ctx, pack, parse_range("2017"), 10, None, work, columns=columns):
                n += len(chunk)
                keys += [f.key for f in judge_chunk(matcher, rule, chunk, ctx.registry, work)]
            found[columns], built[columns], counted[columns] = sorted(keys), n, work.subjects
            assert not work.problems
    assert found[True] == found[False] and len(found[True]) == 50  # the sample's 50 findings
    assert counted[True] == counted[False]  # every subject is still counted as judged
    assert built[True] < built[False] / 5  # but only the candidates were built


def test_the_memo_forgets_entries_by_field_and_key_but_never_the_partitions_bookkeeping() -> None:
    from engine.subjects.base import Memo

    memo = Memo()
    memo.mine["o1"] = True
    memo.dues[(dt.date(2017, 1, 1), dt.date(2017, 12, 31))] = {"m1": {}}
    memo.dues[(dt.date(2016, 1, 1), dt.date(2016, 12, 31))] = {}
    memo.member_bases["m1"] = {"member": "m1"}
    memo.orgs_with_elections = {"o1"}
    before = memo.entries()
    assert ("dues", (dt.date(2017, 1, 1), dt.date(2017, 12, 31))) in before
    assert ("member_bases", None) in before and ("orgs_with_elections", None) in before
    memo.forget(before - {("dues", (dt.date(2016, 1, 1), dt.date(2016, 12, 31)))})
    assert memo.entries() == {("mine", None), ("dues", (dt.date(2016, 1, 1), dt.date(2016, 12, 31)))}
    assert memo.member_bases == {} and memo.orgs_with_elections is None and memo.mine == {"o1": True}
