"""Issue 11, import side: no single bad input line stops an import or breaks the store for everyone.

Each test is named for the input that used to crash the import, lose good lines or store a
fact that later broke ``check``; all run against a SQLite file and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine.cli import main
from facts.errors import Location
from facts.store import FactStore

ORGS = [
    {"type": "org", "id": "oc", "name": "机关党委", "kind": "organ_committee"},
    {"type": "org", "id": "b1", "name": "第一支部", "kind": "branch", "parent": "oc"},
]
MEMBERS = [{"type": "member", "id": f"m{i}", "name": f"成员{i}", "org": "b1"} for i in range(20)]


def good_lines(n: int = 300) -> list[dict]:
    """Orgs, members and dues: ``n`` valid objects in all."""
    dues = [
        {"type": "dues", "member": f"m{i % 20}", "month": f"20{10 + i // 240}-{(i // 20) % 12 + 1:02d}",
         "amount": 30, "paid_on": "2017-01-05"}
        for i in range(n - len(ORGS) - len(MEMBERS))
    ]
    return ORGS + MEMBERS + dues


def items(objs, file="f.jsonl"):
    return [(Location(file, i + 1), o) for i, o in enumerate(objs)]


def store(engine) -> FactStore:
    s = FactStore(engine)
    s.create_schema()
    return s


def run_import(tmp_path: Path, lines: list[str], name: str = "f.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["--db", str(tmp_path / "t.db"), "import", "--no-judge", str(path)], catch_exceptions=False
    )
    return result, path


def test_import_deep_nesting_keeps_good_lines(tmp_path):
    good = [json.dumps(o, ensure_ascii=False) for o in good_lines()]
    deep = '{"type":"meeting","id":"x","minutes":' + "[" * 1000 + "]" * 1000 + "}"
    nested_object = '{"type":"meeting","id":"y","minutes":' + '{"a":' * 1000 + "1" + "}" * 1001
    result, path = run_import(tmp_path, [*good[:150], deep, nested_object, *good[150:]])
    assert result.exit_code == 1
    assert "added 300, unchanged 0, corrected 0, rejected 2" in result.output
    assert f"{path}:151: invalid JSON: nested too deeply" in result.stderr
    assert f"{path}:152: invalid JSON: nested too deeply" in result.stderr


def test_import_term_years_overflow_keeps_good_lines(db_engine):
    s = store(db_engine)
    huge = {"type": "org", "id": "b9", "name": "九支部", "kind": "branch", "term_years": 2**63}
    election = {"type": "election", "org": "b1", "date": "2017-03-01", "term_years": 10**30}
    report = s.import_items(items([*good_lines()[:100], huge, election, *good_lines()[100:]]))
    assert (report.added, report.rejected) == (300, 2)
    assert [str(p) for p in report.problems] == [
        "f.jsonl:101: org.term_years: 9223372036854775808 is not a term of office (expected 1 to 10 years)",
        f"f.jsonl:102: election.term_years: {10**30} is not a term of office (expected 1 to 10 years)",
    ]


def test_import_any_exception_on_one_line_rejects_that_line_only(db_engine, monkeypatch):
    import facts.prepare

    real = facts.prepare.validate_object

    def flaky(raw, location):
        if raw.get("id") == "m7":
            raise MemoryError("simulated")
        return real(raw, location)

    monkeypatch.setattr(facts.prepare, "validate_object", flaky)
    report = store(db_engine).import_items(items(good_lines()))
    assert report.rejected == 1 + 14  # m7 and its 14 dues (unknown member)
    assert str(report.problems[0]) == (
        "f.jsonl:10: member: cannot be imported (MemoryError: simulated); this line was not imported"
    )
    assert report.added == 300 - 15


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"type": "org", "id": "a\x00b", "name": "x", "kind": "branch"},
         "org.id: contains the control character U+0000 at position 2 (not text; remove it)"),
        ({"type": "org", "id": "b" * 201, "name": "x", "kind": "branch"},
         "org.id: is 201 characters long (at most 128)"),
        ({"type": "org", "id": "b" * 380, "name": "x", "kind": "branch"},
         "org.id: is 380 characters long (at most 128)"),
        ({"type": "org", "id": "b2", "name": "第二\x00支部", "kind": "branch"},
         "org.name: contains the control character U+0000 at position 3"),
        ({"type": "org", "id": "b2", "name": "x", "kind": "branch", "term_years": 2**31},
         "org.term_years: 2147483648 is not a term of office (expected 1 to 10 years)"),
        ({"type": "declaration", "member": "m1", "year": 2**40, "filed": "2017-01-01"},
         "declaration.year: 1099511627776 is not a valid year (expected an integer from 1921 to 2100"),
        ({"type": "meeting", "id": "mt", "org": "b1", "kind": "committee_meeting", "date": "2017-01-01",
          "minutes": {"content": "学习\x00"}},
         "meeting.minutes.content: contains the control character U+0000 at position 3"),
        ({"type": "meeting", "id": "mt", "org": "b1", "kind": "committee_meeting", "date": "2017-01-01",
          "topics": ["t" * 65]},
         "meeting.topics[0]: is 65 characters long (at most 64)"),
    ],
)
def test_import_postgresql_limits_are_refused_at_validation(db_engine, obj, message):
    s = store(db_engine)
    report = s.import_items(items([*good_lines(50), obj]))
    assert report.added == 50 and report.rejected == 1
    assert str(report.problems[0]) == f"f.jsonl:51: {message}" or message in str(report.problems[0])


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"type": "dues", "member": "m1", "month": "0000-01", "amount": 30, "paid_on": "2017-01-05"},
         'dues.month: "0000-01" is out of range (months lie between 1921-01 and 2100-12)'),
        ({"type": "dues", "member": "m1", "month": "2017-01", "amount": 1e308, "paid_on": "2017-01-05"},
         "dues.amount: 1e+308 is not a finite number (expected a number of yuan)"),
        ({"type": "dues", "member": "m1", "month": "2017-01", "amount": 1e9, "paid_on": "2017-01-05"},
         "dues.amount: 1000000000.0 is too large (amounts are at most 100,000,000 yuan)"),
        ({"type": "dues", "member": "m1", "month": "2017-01", "amount": "1e400", "paid_on": "2017-01-05"},
         'dues.amount: "1e400" is not a finite number (expected a number of yuan)'),
        ({"type": "org", "id": "b3", "name": "x", "kind": "branch", "term_years": 100000},
         "org.term_years: 100000 is not a term of office (expected 1 to 10 years)"),
        ({"type": "member", "id": "m99", "name": "x", "org": "b1", "left": "9999-12-31"},
         'member.left: "9999-12-31" is out of range (dates lie between 1921-01-01 and 2100-12-31)'),
        ({"type": "dues", "member": "m1", "month": "２０１７-０１", "amount": 30, "paid_on": "2017-01-05"},
         'dues.month: "２０１７-０１" is not a valid month (expected YYYY-MM)'),
        ({"type": "dues", "member": "m1", "month": "٢٠١٧-٠١", "amount": 30, "paid_on": "2017-01-05"},
         'dues.month: "٢٠١٧-٠١" is not a valid month (expected YYYY-MM)'),
        ({"type": "dues", "member": "m1", "month": "2017-01", "amount": 30, "paid_on": "２０１７-01-05"},
         'dues.paid_on: "２０１７-01-05" is not a valid date (expected YYYY-MM-DD)'),
    ],
)
def test_import_values_that_broke_check_are_refused(db_engine, obj, message):
    s = store(db_engine)
    report = s.import_items(items([*good_lines(50), obj]))
    assert report.added == 50
    assert [str(p) for p in report.problems] == [f"f.jsonl:51: {message}"]


def test_import_1e400_is_refused_not_stored_as_null(tmp_path):
    lines = [json.dumps(o) for o in good_lines(30)]
    lines.append('{"type":"dues","member":"m1","month":"2016-01","amount":1e400,"paid_on":"2017-01-05"}')
    result, path = run_import(tmp_path, lines)
    assert result.exit_code == 1 and "rejected 1" in result.output
    assert f"{path}:31: dues.amount:" in result.stderr and "not a finite number" in result.stderr
    exported = CliRunner().invoke(main, ["--db", str(tmp_path / "t.db"), "export", "--type", "dues"]).output
    assert "null" not in exported and "2016-01" not in exported


def test_import_org_parent_cycle_is_refused_naming_the_cycle(db_engine):
    s = store(db_engine)
    chain = [
        {"type": "org", "id": "a", "name": "甲", "kind": "organ_committee", "parent": "c"},
        {"type": "org", "id": "b", "name": "乙", "kind": "general_branch", "parent": "a"},
        {"type": "org", "id": "c", "name": "丙", "kind": "branch", "parent": "b"},
        {"type": "member", "id": "mc", "name": "丁", "org": "c"},
    ]
    report = s.import_items(items(chain))
    # a → c is unknown while line 1 is read; line 3 (c → b → a → c) closes the loop
    assert str(report.problems[0]) == 'f.jsonl:3: org.parent: "b" would close a cycle of parents: c → b → a → c'
    # what hung from the refused line goes with it, each named
    assert sorted((p.location.line, p.field) for p in report.problems[1:]) == [
        (1, "org.parent"), (2, "org.parent"), (4, "member.org")
    ]
    assert report.added == 0


def test_add_org_correction_that_closes_a_cycle_is_refused(db_engine):
    s = store(db_engine)
    s.import_items(items(ORGS + [{"type": "org", "id": "g1", "name": "一组", "kind": "group", "parent": "b1"}]))
    # one object at a time, as `partyrules add` submits: oc under g1 would make oc → g1 → b1 → oc
    report = s.import_items([(Location("<add>", 1), dict(ORGS[0], parent="g1"))])
    assert [str(p) for p in report.problems] == [
        '<add>:1: org.parent: "g1" would close a cycle of parents: oc → g1 → b1 → oc'
    ]
    assert next(o for o in s.current("org") if o["id"] == "oc").get("parent") is None
    # a correction that only moves an org elsewhere is fine
    fine = s.import_items([(Location("<add>", 1), dict(ORGS[1], parent="oc", name="第一支部（改）"))])
    assert fine.corrected == 1 and not fine.problems


def test_natural_keys_with_bar_stay_distinct(db_engine):
    """Two facts that differ only around '|' once made the same key: now '|' (and a leading '@') is refused.

    Refusing beats escaping: violation keys (``rule|type:id|period``) and the `history` command's
    KEY argument join ids with '|' as well, and an escape would have to be applied everywhere.
    """
    s = store(db_engine)
    base = ORGS + [
        {"type": "org", "id": "u1", "name": "单位", "kind": "unit"},
        {"type": "member", "id": "s", "name": "签", "org": "b1"},
    ]
    s.import_items(items(base))
    first = {"type": "signoff", "document": "doc|u1", "unit": "u1", "date": "2017-04-01"}
    second = {"type": "signoff", "document": "doc", "unit": "u1|u1", "date": "2017-04-02"}
    by_unit = {"type": "signoff", "document": "doc", "unit": "@s", "date": "2017-04-03"}
    by_signer = {"type": "signoff", "document": "doc", "signer": "s", "date": "2017-04-04"}
    plain = {"type": "signoff", "document": "doc", "unit": "u1", "date": "2017-04-05"}
    report = s.import_items(items([first, second, by_unit, by_signer, plain]))
    assert [(p.location.line, p.field) for p in report.problems] == [
        (1, "signoff.document"), (2, "signoff.unit"), (3, "signoff.unit")
    ]
    assert '"doc|u1" contains "|"' in report.problems[0].message
    assert report.added == 2 and report.corrected == 0
    keys = sorted(s.history("signoff", k)[0].content["date"] for k in ("doc|@s", "doc|u1"))
    assert keys == ["2017-04-04", "2017-04-05"]


# --- storing: one transaction a chunk, faults injected, resuming (item 2) ---------------------------


def many_dues(n: int) -> list[dict]:
    return [
        {"type": "dues", "member": f"m{i % 20}", "month": f"{1930 + i // 240}-{(i // 20) % 12 + 1:02d}",
         "amount": 30, "paid_on": "2017-01-05"}
        for i in range(n)
    ]


def poisoned_insert(monkeypatch, when):
    """Make the database refuse fact_version inserts for which ``when(rows)`` says so."""
    import facts.chunks

    real = facts.chunks.insert_rows

    def insert(conn, table, columns, rows):
        if table.name == "fact_version" and when(rows):
            raise sa.exc.DataError("INSERT INTO fact_version", {}, Exception("value refused by the database"))
        return real(conn, table, columns, rows)

    monkeypatch.setattr(facts.chunks, "insert_rows", insert)


def test_import_chunk_crash_loses_only_the_bad_line(db_engine, monkeypatch):
    s = store(db_engine)
    s.import_items(items(ORGS + MEMBERS))
    poison = "m3|1940-03"
    poisoned_insert(monkeypatch, lambda rows: any(r[1] == poison for r in rows))
    facts_in = many_dues(5000)  # chunks of 2,000: the poison is in chunk 2, 3,000 good lines follow it
    report = s.import_items(items(facts_in))
    line = next(i for i, f in enumerate(facts_in, 1) if f"{f['member']}|{f['month']}" == poison)
    assert 2000 < line <= 4000
    assert (report.added, report.rejected, report.failed) == (4999, 1, None)
    assert str(report.problems[0]).startswith(f"f.jsonl:{line}: dues: could not be stored (Exception: value refused")
    assert s.counts()["dues"] == 4999
    with db_engine.connect() as conn:
        status, error, added = conn.execute(
            sa.text("select status, error, added from import_run order by id desc limit 1")).one()
    assert (status, error, added) == ("ok", None, 4999)


def test_import_database_gone_at_chunk_2_fails_the_run_and_resumes(db_engine, monkeypatch):
    s = store(db_engine)
    s.import_items(items(ORGS + MEMBERS))
    calls = {"n": 0}

    def after_first_chunk(rows):
        calls["n"] += 1
        return calls["n"] > 1

    poisoned_insert(monkeypatch, after_first_chunk)
    facts_in = many_dues(5000)
    report = s.import_items(items(facts_in), files="dues.jsonl")
    assert report.added == 2000 and report.failed and "value refused" in report.failed
    assert report.rejected == 3000  # every line not stored is named
    assert all("re-run the same import to resume" in p.message for p in report.problems)
    assert "FAILED" in report.summary()
    with db_engine.connect() as conn:
        status, error = conn.execute(sa.text("select status, error from import_run order by id desc limit 1")).one()
    assert status == "failed" and "value refused" in error
    monkeypatch.undo()
    again = s.import_items(items(facts_in), files="dues.jsonl")
    assert (again.added, again.unchanged, again.rejected) == (3000, 2000, 0)
    assert again.resumes and again.resumes[0] == report.import_id
    assert "resumed import" in again.summary() and "2000 facts were already stored" in again.summary()
    assert s.counts()["dues"] == 5000


# --- two imports at once (item 9): optimistic check on the version read ----------------------------


def dues_with(amount: float, n: int = 600) -> list[dict]:
    return [dict(d, amount=amount) for d in many_dues(n)]


def interleaved(monkeypatch, engine, first_run, at="current_versions"):
    """Run ``first_run`` (another import, on its own connection) right after this import's read of ``at``.

    ``current_versions``: the versions of a chunk's keys; ``types_present``: which types are stored
    (a type stored by neither import yet is not looked up key by key).
    """
    import facts.chunks
    import facts.store

    module = facts.store if at == "types_present" else facts.chunks
    real = getattr(module, at)
    state = {"done": False}

    def read_then_let_the_other_run(*args):
        found = real(*args)
        if not state["done"]:
            state["done"] = True
            first_run(FactStore(engine))
        return found

    monkeypatch.setattr(module, at, read_then_let_the_other_run)


def history_amounts(s, key="m0|1930-01"):
    return [v.content["amount"] for v in s.history("dues", key)]


def test_import_concurrent_unchanged_is_not_a_lost_update(db_engine, monkeypatch):
    s = store(db_engine)
    s.import_items(items(ORGS + MEMBERS + dues_with(30)))
    other: dict = {}
    interleaved(monkeypatch, db_engine, lambda st: other.update(r=st.import_items(items(dues_with(40), "a.jsonl"))))
    mine = s.import_items(items(dues_with(30), "b.jsonl"))  # it read 30 (unchanged) just before a.jsonl wrote 40
    assert other["r"].corrected == 600
    assert (mine.unchanged, mine.conflicts, mine.rejected) == (0, 600, 600)
    assert str(mine.problems[0]).startswith(
        'b.jsonl:1: dues.key: "m0|1930-01" was changed by another import while this one ran (now version 2)')
    monkeypatch.undo()
    again = s.import_items(items(dues_with(30), "b.jsonl"))  # told, it re-runs: nothing was lost
    assert again.corrected == 600 and history_amounts(s) == [30, 40, 30]


def test_import_concurrent_corrections_loser_is_told_per_fact(db_engine, monkeypatch):
    s = store(db_engine)
    s.import_items(items(ORGS + MEMBERS + dues_with(30)))
    other: dict = {}
    interleaved(monkeypatch, db_engine, lambda st: other.update(r=st.import_items(items(dues_with(40), "a.jsonl"))))
    mine = s.import_items(items(dues_with(50), "b.jsonl"))
    assert other["r"].corrected == 600
    assert (mine.corrected, mine.conflicts) == (0, 600)
    assert history_amounts(s) == [30, 40]
    monkeypatch.undo()
    assert s.import_items(items(dues_with(50), "b.jsonl")).corrected == 600
    assert history_amounts(s) == [30, 40, 50]


def test_import_identical_at_once_is_a_no_op_not_an_integrity_error(db_engine, monkeypatch):
    import facts.store

    # as a big import: a small one looks every key up and never skips a type it believes new
    monkeypatch.setattr(facts.store, "_BULK_TUNING_FROM", 1)
    s = store(db_engine)
    s.import_items(items(ORGS + MEMBERS))
    other: dict = {}
    interleaved(
        monkeypatch, db_engine, lambda st: other.update(r=st.import_items(items(dues_with(30)))), at="types_present"
    )
    mine = s.import_items(items(dues_with(30)))
    assert other["r"].added == 600
    assert (mine.added, mine.unchanged, mine.rejected) == (0, 600, 0)
    assert s.counts()["dues"] == 600 and history_amounts(s) == [30]


@pytest.mark.parametrize("same", [True, False], ids=["identical", "conflicting"])
def test_import_two_threads_at_once_lose_and_duplicate_nothing(db_engine, same):
    import threading

    s = store(db_engine)
    s.import_items(items(ORGS + MEMBERS + dues_with(30, 3000)))
    amounts = {"a": 40.0, "b": 40.0 if same else 50.0}
    reports: dict = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(name):
        try:
            start.wait()
            reports[name] = FactStore(db_engine).import_items(items(dues_with(amounts[name], 3000), f"{name}.jsonl"))
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in amounts]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert errors == []
    for name, r in reports.items():
        assert r.added + r.unchanged + r.corrected + r.conflicts == 3000, (name, r.summary())
        told = {p.location.line for p in r.problems}
        assert len(told) == r.conflicts == r.rejected
        # every line not told is in the history of its fact: applied, or already there
        for line in (1, 1500, 3000):
            key = "{member}|{month}".format(**many_dues(3000)[line - 1])
            if line not in told:
                assert amounts[name] in [v.content["amount"] for v in s.history("dues", key)]
    for d in many_dues(3000)[:50]:  # each version is one import's: none lost, none twice
        key = "{member}|{month}".format(**d)
        line = many_dues(3000).index(d) + 1
        applied = {amounts[n] for n, r in reports.items() if line not in {p.location.line for p in r.problems}}
        assert sorted(set(history_amounts(s, key))) == sorted({30.0} | applied)
        assert len(history_amounts(s, key)) == len(set(history_amounts(s, key)))
    assert s.counts()["dues"] == 3000


def test_import_org_change_that_closes_a_cycle_is_refused(db_engine):
    s = store(db_engine)
    s.import_items(items(ORGS + [{"type": "org", "id": "g1", "name": "一组", "kind": "group", "parent": "b1"}]))
    change = {"type": "org_change", "org": "oc", "date": "2018-01-01", "parent": "g1"}
    report = s.import_items([(Location("changes.jsonl", 1), change)])
    assert [str(p) for p in report.problems] == [
        'changes.jsonl:1: org_change.parent: "g1" would close a cycle of parents: oc → g1 → b1 → oc'
    ]
    assert report.added == 0
