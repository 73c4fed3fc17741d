"""What judging one submitted fact asks the database: the registry it needs, in few statements.

A submission's latency went mostly to SQLAlchemy building and compiling statements (a new ``.in_(list)``
statement each time, one statement a level of the org tree), not to the database running them.  The
partial registry is now read with prebuilt statements and the org's ancestors in one recursive one;
these tests hold what it loads (on SQLite and PostgreSQL) and how many statements a submission costs.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from engine.app import App, build_app
from engine.config import Config
from engine.subjects.registry import Registry
from engine.submit import judge_facts
from engine.violations.store import ViolationStore
from facts.errors import Location
from facts.store import FactStore

DEPTH = 9  # a chain of orgs deeper than any province's: the old walk asked one statement a level


def _tree() -> list[dict]:
    chain = [{"type": "org", "id": "a0", "name": "省委", "kind": "organ_committee"}]
    chain += [
        {"type": "org", "id": f"a{i}", "name": f"第{i}级", "kind": "organ_committee", "parent": f"a{i - 1}"}
        for i in range(1, DEPTH)
    ]
    leaf = f"a{DEPTH - 1}"
    return [
        *chain,
        {"type": "org", "id": "side", "name": "旁支", "kind": "branch", "parent": "a3"},  # not on the path
        {"type": "org", "id": "c1", "name": "第一小组", "kind": "group", "parent": leaf},
        {"type": "org", "id": "c2", "name": "第二小组", "kind": "group", "parent": leaf},
        {"type": "org", "id": "grandchild", "name": "孙", "kind": "group", "parent": "c1"},  # below a child
        {"type": "org", "id": "far", "name": "远方支部", "kind": "branch", "parent": "a1"},
        {"type": "org", "id": "other", "name": "他处", "kind": "branch", "parent": "a2"},
        {"type": "org_change", "org": "c2", "date": "2017-05-01", "name": "第二小组（更名）"},
        {"type": "org_change", "org": "far", "date": "2017-03-01", "parent": "a0"},
        {"type": "member", "id": "p1", "name": "甲", "org": leaf, "joined": "2010-01-01"},
        {"type": "member", "id": "p2", "name": "乙", "org": "c1", "joined": "2010-01-01"},
        {"type": "member", "id": "p3", "name": "丙", "org": "side", "extra_orgs": [leaf], "joined": "2010-01-01"},
        {"type": "member", "id": "p4", "name": "丁", "org": "other", "joined": "2010-01-01"},  # moves in
        {"type": "member", "id": "p5", "name": "戊", "org": "side", "joined": "2010-01-01"},  # unrelated
        {"type": "member", "id": "p6", "name": "己", "org": "far", "joined": "2010-01-01"},  # asked by id
        {"type": "member_change", "member": "p4", "date": "2017-06-01", "org": leaf},
        {"type": "member_change", "member": "p6", "date": "2017-02-01", "status": "full", "excused": True},
    ]


def test_a_partial_registry_holds_every_ancestor_child_and_member_it_did(db_engine, monkeypatch) -> None:
    import engine.subjects.registry as registry_module

    store = FactStore(db_engine)
    store.create_schema()
    report = store.import_items([(Location("t", i), o) for i, o in enumerate(_tree(), 1)])
    assert not report.problems, report.problems
    leaf = f"a{DEPTH - 1}"
    with db_engine.connect() as conn:
        full = Registry.load(conn)
        statements: list[str] = []
        sa.event.listen(conn, "before_cursor_execute", lambda *a: statements.append(a[2]))
        part = Registry.load(conn, orgs=[leaf], members=["p6"])
        loaded = len(statements)
        part.ensure_orgs(conn, ["grandchild", "a0"])
    assert part.orgs["grandchild"] == full.orgs["grandchild"]
    del part.orgs["grandchild"]
    assert part.partial
    ancestors = {f"a{i}" for i in range(DEPTH)}
    # the org, every ancestor, its children (not a grandchild, nor a side branch); the orgs of its members
    # (p6 belongs to "far", whose ancestors come too; not "side" or "other", where p3 and p4 belong besides)
    assert set(part.orgs) == ancestors | {"c1", "c2", "far"}
    assert set(part.members) == {"p1", "p3", "p4", "p6"}
    for org_id, info in part.orgs.items():
        assert info == full.orgs[org_id], org_id  # dated changes included
    for member_id, info in part.members.items():
        assert info == full.members[member_id], member_id
    assert set(part.children[leaf]) == {"c1", "c2"}
    assert {m.id for m in part.members_of[leaf]} == {"p1", "p4"}
    assert part.path(leaf) == [f"a{i}" for i in range(DEPTH)]
    assert part.orgs["c2"].at(dt.date(2017, 6, 1)).name == "第二小组（更名）"
    # asked a few ids a statement (a cluster partition's thousands of orgs): the same registry
    monkeypatch.setattr(registry_module, "_SLICE", 1)
    with db_engine.connect() as conn:
        sliced = Registry.load(conn, orgs=[leaf, "c1", "side"], members=["p6", "p1"])
    monkeypatch.undo()
    with db_engine.connect() as conn:
        whole = Registry.load(conn, orgs=[leaf, "c1", "side"], members=["p6", "p1"])
    assert sliced.orgs == whole.orgs and sliced.members == whole.members
    assert {k: sorted(v) for k, v in sliced.children.items()} == {k: sorted(v) for k, v in whole.children.items()}
    assert part.members["p6"].at(dt.date(2017, 3, 1)).excused
    # however deep the tree: one statement reads the orgs with their family and changes, not one a level
    # (6 here: members asked, transfers, members of the orgs, the family, roles and extra orgs, changes;
    # 17 before)
    assert loaded <= 7, statements


def test_a_partial_registry_of_unknown_ids_is_empty(db_engine) -> None:
    store = FactStore(db_engine)
    store.create_schema()
    store.import_items([(Location("t", i), o) for i, o in enumerate(_tree(), 1)])
    with db_engine.connect() as conn:
        part = Registry.load(conn, orgs=["nowhere"], members=["nobody"])
        none = Registry.load(conn, orgs=[], members=[])
    assert not part.orgs and not part.members
    assert not none.orgs and not none.members and none.partial


def test_one_submitted_meeting_costs_a_bounded_number_of_statements(db_engine) -> None:
    leaf = f"a{DEPTH - 1}"
    app = App(Config(), db_engine, FactStore(db_engine), ViolationStore(db_engine))
    app.init()
    registry = [
        *_tree(),
        {"type": "org", "id": "pg", "name": "党组", "kind": "party_group"},
        *(
            {"type": "member", "id": f"g{i}", "name": f"组员{i}", "org": leaf, "joined": "2010-01-01",
             "roles": ["party_group_member"], "extra_orgs": ["pg"]}
            for i in range(5)
        ),
    ]
    app.facts.import_items([(Location("r", i), o) for i, o in enumerate(registry, 1)])
    pack = app.pack()
    statements: list[str] = []
    sa.event.listen(app.db, "before_cursor_execute", lambda *a: statements.append(a[2]))
    counts: list[int] = []
    findings: list[list[tuple[str, str]]] = []
    standing: list[list[str]] = []
    topics = [["party_building"], ["party_building", "integrity"], ["integrity", "ideology"]]
    for i, month in enumerate((3, 6, 9)):
        meeting = {
            "type": "meeting", "id": f"sub-{i}", "org": "pg", "kind": "party_group_meeting",
            "date": f"2017-{month:02d}-15", "attendees": [f"g{k}" for k in range(4)], "topics": topics[i],
            "minutes": {"time": "9:00-11:00", "recorder": "g0", "content": f"研究部署党建工作{i}", "outcome": "形成决议"},
        }
        statements.clear()
        report = app.facts.import_items([(Location("s", i), meeting)])
        judgement = judge_facts(app, [s.fact for s in report.stored], pack=pack, as_of=dt.date(2018, 3, 1))
        assert not judgement.errors, judgement.errors
        assert judgement.findings  # 4 of the group's 5 members attended: the rules still find it
        assert judgement.standing  # where the group stands in the month, quarter and year
        standing.append(judgement.standing)
        findings.append(sorted((f.rule, f.message) for f in judgement.findings))
        counts.append(len(statements))
    assert [sorted(rule for rule, _ in found) for found in findings] == [
        ["party_group.meeting.leave", "party_group.meeting.quorum"]
    ] * 3
    assert findings[2][1][1] == "党组2017-09-15党组会议到会4人/应到5人（80.0%），低于90%的要求"
    assert standing[2] == [  # the month, and the year of each study rule, counted from one read
        "2017年9月党组每月至少专题研究党建工作1次：已召开0次（要求至少1次）",
        "2017年度党组每年至少2次专题研究党风廉政建设：已召开2次（要求至少2次）",
        "2017年度党组每年至少2次专题研究意识形态工作：已召开1次（要求至少2次）",
    ]
    assert standing[1][0] == "2017年6月党组每月至少专题研究党建工作1次：已召开1次（要求至少1次）"
    # 45-46 statements a submission before, 21-23 after (42 -> 23 on the bench province)
    assert max(counts) <= 26, (counts, statements)


def test_a_few_orgs_topic_counts_equal_the_provinces(db_engine) -> None:
    """The study rules' counts for a few orgs (read once for the span's years, counted per rule) equal the
    whole province's query, for months, quarters, years and a span over two years, before and after as-of."""
    from engine.pack.model import MeetingsHeld
    from engine.periods import period_of
    from engine.subjects import sources
    from engine.subjects.base import BuildContext

    store = FactStore(db_engine)
    store.create_schema()
    facts: list[dict] = [
        {"type": "org", "id": "pg", "name": "党组", "kind": "party_group"},
        {"type": "org", "id": "pg2", "name": "另一党组", "kind": "party_group"},
        {"type": "org", "id": "oc", "name": "机关党委", "kind": "organ_committee"},
    ]
    topics = [["party_building"], ["integrity", "ideology"], ["ideology"], [], ["party_building", "integrity"]]
    n = 0
    for org in ("pg", "pg2", "oc"):
        for year in (2016, 2017, 2018):
            for month in range(1, 13, 2):
                for kind in ("party_group_meeting", "central_group_study"):
                    n += 1
                    facts.append({
                        "type": "meeting", "id": f"m{n}", "org": org, "kind": kind,
                        "date": f"{year}-{month:02d}-{(n % 27) + 1:02d}", "topics": topics[n % len(topics)],
                    })
    report = store.import_items([(Location("t", i), o) for i, o in enumerate(facts, 1)])
    assert not report.problems, report.problems
    specs = [
        MeetingsHeld(source="meetings_held", kinds=["party_group_meeting"], topics_any=["party_building"]),
        MeetingsHeld(source="meetings_held", kinds=["party_group_meeting"], topics_any=["integrity"]),
        MeetingsHeld(source="meetings_held", kinds=["party_group_meeting"], topics_any=["ideology", "integrity"]),
        MeetingsHeld(
            source="meetings_held", kinds=["party_group_meeting", "central_group_study"], topics_any=["ideology"]
        ),
    ]
    day = dt.date(2017, 7, 15)
    spans = [period_of(day, kind) for kind in ("month", "quarter", "year")]  # type: ignore[arg-type]
    spans.append(period_of(dt.date(2018, 2, 1), "quarter"))  # type: ignore[arg-type]
    with db_engine.connect() as conn:
        registry = Registry.load(conn)
        for as_of in (dt.date(2017, 8, 20), dt.date(2019, 1, 1)):
            province = BuildContext(conn, registry, as_of)
            few = BuildContext(conn, registry, as_of, only_orgs={"pg", "oc"})
            for spec in specs:
                for period in spans:
                    expected = sources._held_with_topics(province, spec, period.start, period.end)
                    expected = {k: v for k, v in expected.items() if k[0] in {"pg", "oc"}}
                    got = sources._held_with_topics(few, spec, period.start, period.end)
                    assert got == expected, (spec, period.label, as_of)
                    assert got or period.start > as_of or spec.kinds == ["party_group_meeting"]
                # the two-year span too
                start, end = dt.date(2016, 6, 1), dt.date(2017, 9, 30)
                expected = sources._held_with_topics(province, spec, start, end)
                expected = {k: v for k, v in expected.items() if k[0] in {"pg", "oc"}}
                assert sources._held_with_topics(few, spec, start, end) == expected, (spec, as_of)
            # one read a (kinds, calendar years): 2 lists of kinds x (2017, 2018, 2016-2017), not one a rule and period
            assert len(few.memo.held_topics) == 2 * 3


def test_a_small_import_tunes_nothing_and_the_packs_text_is_checked_once(tmp_path, monkeypatch) -> None:
    import facts.store
    from engine.violations.packs import pack_history, remember_pack

    app = build_app(f"sqlite:///{tmp_path / 's.db'}")
    app.init()
    statements: list[str] = []
    sa.event.listen(app.db, "before_cursor_execute", lambda *a: statements.append(a[2]))
    report = app.facts.import_items([(Location("r", i), o) for i, o in enumerate(_tree(), 1)])
    assert report.added == len(_tree())
    assert not [s for s in statements if s.startswith("PRAGMA")]  # no bulk cache for a few facts
    monkeypatch.setattr(facts.store, "_BULK_TUNING_FROM", 1)  # as a big import: tuned, and as it was after
    statements.clear()
    app.facts.import_items([(Location("r", 1), {**_tree()[0], "name": "省委（更名）"})])
    assert "PRAGMA cache_size=-131072" in statements and "PRAGMA cache_size=-2000" in statements

    pack = app.pack()
    statements.clear()
    remember_pack(app.db, pack)
    remember_pack(app.db, pack)
    assert sum("pack_version" in s for s in statements) == 2  # asked (not there), stored; then known
    assert [p["hash"] for p in pack_history(app.db)] == [pack.hash]
    other = build_app(f"sqlite:///{tmp_path / 's.db'}")  # another engine asks again, and finds it
    remember_pack(other.db, pack)
    assert [p["hash"] for p in pack_history(other.db)] == [pack.hash]


def test_the_single_fact_matcher_is_built_once_a_thread_and_dropped_after_an_error(tmp_path, monkeypatch) -> None:
    import threading

    import engine.submit
    from engine.matcher import MatcherError

    app = build_app(f"sqlite:///{tmp_path / 's.db'}")
    app.init()
    pack = app.pack()
    first = engine.submit._fact_matcher(pack)
    assert engine.submit._fact_matcher(pack) is first
    other: list = []
    thread = threading.Thread(target=lambda: other.append(engine.submit._fact_matcher(pack)))
    thread.start()
    thread.join()
    assert other[0] is not first  # not shared between threads (a Matcher is not thread-safe)
    app.facts.import_items([(Location("r", i), o) for i, o in enumerate(_tree(), 1)])
    meeting = {"type": "meeting", "id": "x", "org": "c1", "kind": "group_meeting", "date": "2017-03-15",
               "attendees": ["p2"]}
    report = app.facts.import_items([(Location("s", 1), meeting)])

    def broken(self, rule_key, subject):
        raise MatcherError("broken", rule_key)

    monkeypatch.setattr(type(first), "matches", broken)
    judgement = judge_facts(app, [s.fact for s in report.stored], pack=pack, as_of=dt.date(2018, 3, 1))
    assert judgement.errors and "broken" in judgement.errors[0]  # told, the fact kept
    monkeypatch.undo()
    assert engine.submit._fact_matcher(pack) is not first
