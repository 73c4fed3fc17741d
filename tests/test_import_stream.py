"""Issue 15: the streaming importer gives exactly the report and the store of the whole-file importer.

A file big enough to be read as chunks of raw lines (the limits are lowered here) is
imported with worker processes, and the same file read whole and prepared in-process;
the reports (counts, every problem in order) and the stored facts must be equal,
also with bad lines, repeated keys, forward references, a cycle and cascades.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import pytest
import sqlalchemy as sa

import facts.prepare
import facts.streaming
from facts.readers import read_file
from facts.store import FactStore
from facts.streaming import LineChunk, read_chunks


def _store(engine: sa.Engine) -> FactStore:
    s = FactStore(engine)
    s.create_schema()
    return s


def _lines() -> list[str]:
    objs: list[dict | str] = [
        # forward references: the member and its dues come before the org they name
        {"type": "member", "id": "m0", "name": "张三", "org": "b1"},
        {"type": "dues", "member": "m0", "month": "2017-01", "amount": 30, "paid_on": "2017-01-05"},
        {"type": "org", "id": "oc", "name": "机关党委", "kind": "organ_committee"},
        {"type": "org", "id": "b1", "name": "第一支部", "kind": "branch", "parent": "oc"},
        # a cycle: x → z, y → x, z → y; the line of z closes it, x and y go with it, and x's member
        {"type": "org", "id": "x", "name": "甲", "kind": "branch", "parent": "z"},
        {"type": "org", "id": "y", "name": "乙", "kind": "branch", "parent": "x"},
        {"type": "org", "id": "z", "name": "丙", "kind": "branch", "parent": "y"},
        {"type": "member", "id": "mx", "name": "丁", "org": "x"},
        {"type": "dues", "member": "mx", "month": "2017-01", "amount": 30, "paid_on": "2017-01-05"},
        "{not json",
        {"type": "dues", "member": "m0", "month": "2017-13", "amount": 30, "paid_on": "2017-01-05"},
        {"type": "dues", "member": "nobody", "month": "2017-02", "amount": 30, "paid_on": "2017-01-05"},
    ]
    objs += [{"type": "member", "id": f"m{i}", "name": f"成员{i}", "org": "b1"} for i in range(1, 40)]
    for i in range(2600):  # several chunks of dues, with minutes-bearing meetings among them
        objs.append({"type": "dues", "member": f"m{i % 40}", "month": f"{1930 + i // 480}-{(i // 40) % 12 + 1:02d}",
                     "amount": 30, "paid_on": "2017-01-05"})
        if i % 200 == 0:
            objs.append({"type": "meeting", "id": f"mt{i}", "org": "b1", "kind": "committee_meeting",
                         "date": "2017-03-01", "attendees": ["m0", "m1"],
                         "minutes": {"content": f"学习党章第{i}条，讨论支部工作。"}})
    objs += [
        # repeats: the same content (unchanged), other content (refused naming the first line)
        {"type": "dues", "member": "m0", "month": "1930-01", "amount": 30, "paid_on": "2017-01-05"},
        {"type": "dues", "member": "m0", "month": "1930-01", "amount": 99, "paid_on": "2017-01-05"},
        {"type": "org", "id": "b1", "name": "改名支部", "kind": "branch", "parent": "oc"},
        {"type": "meeting", "id": "mt0", "org": "b1", "kind": "committee_meeting", "date": "2017-03-02"},
    ]
    return ["# a comment", ""] + [o if isinstance(o, str) else json.dumps(o, ensure_ascii=False) for o in objs]


@pytest.fixture
def small_limits(monkeypatch):
    monkeypatch.setattr(facts.streaming, "STREAM_FROM", 1)
    monkeypatch.setattr(facts.streaming, "LINES", 500)


def _snapshot(s: FactStore, engine: sa.Engine) -> tuple[object, ...]:
    with engine.connect() as conn:
        tables = {  # (a meeting's seq is its place in the store's history: not compared)
            name: sorted(map(tuple, conn.execute(sa.text(f"select {columns} from {name}")).all()), key=repr)
            for name, columns in (
                ("dues", "*"), ("meeting", "id, org, kind, date, minutes_content"), ("meeting_attendance", "*"),
                ("minutes_sig", "*"), ("member", "*"), ("org", "*"),
            )
        }
    return list(s.current()), s.counts(), tables


def _report(r) -> tuple[object, ...]:
    return r.added, r.unchanged, r.corrected, r.rejected, [str(p) for p in r.problems]


def test_streamed_import_equals_whole_file_import(tmp_path, db_engine, small_limits):
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(_lines()) + "\n", encoding="utf-8")
    chunks = list(read_chunks(path))
    assert len(chunks) > 4 and all(isinstance(c, LineChunk) for c in chunks)

    streamed_store = _store(db_engine)
    streamed = streamed_store.import_items(read_chunks(path), files="f", processes=2)
    expected = _report(streamed)
    # added: m0 and its dues, oc, b1, 39 members, 2,600 dues, 13 meetings; rejected: 3 bad lines, the cycle's
    # 3 orgs, its member and their dues, 3 repeats with other content; unchanged: the repeat with the same
    assert expected[:4] == (4 + 39 + 2600 + 13, 1, 0, 11)
    problems = expected[4]
    assert f'{path}:14: dues.member: unknown member "nobody"' in problems  # type: ignore[operator]
    assert any(f'{path}:9: org.parent: "y" would close a cycle of parents: z → y → x → z' in p for p in problems)  # type: ignore[union-attr]
    assert any(f'"m0|1930-01" appears twice in this import with different content (first at {path}:' in p for p in problems)  # type: ignore[union-attr]
    snapshot = _snapshot(streamed_store, db_engine)

    with db_engine.begin() as conn:  # the same import into an empty store, the file read whole, in-process
        for name in [*(m.__table__.name for m in facts.store._fact_tables())]:  # type: ignore[attr-defined]
            conn.execute(sa.text(f"delete from {name}"))
    whole = streamed_store.import_items(read_file(path), files="f", processes=1)
    assert _report(whole) == expected
    assert _snapshot(streamed_store, db_engine) == snapshot

    again = streamed_store.import_items(read_chunks(path), files="f", processes=2)
    assert (again.added, again.corrected, again.unchanged) == (0, 0, expected[0] + expected[1])  # type: ignore[operator]


def test_a_worker_that_dies_is_replaced_by_the_importing_process(tmp_path, sqlite_engine, small_limits, monkeypatch, quiet_crashes):
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(_lines()) + "\n", encoding="utf-8")
    parent = os.getpid()
    real = facts.prepare.prepare_lines

    def dies_in_a_worker(label: str, lines: list[tuple[int, str]]):
        if os.getpid() != parent and any('"mt1000"' in text for _, text in lines):
            os._exit(9)  # as if killed (out of memory)
        return real(label, lines)

    monkeypatch.setattr(facts.streaming, "prepare_lines", dies_in_a_worker)
    report = _store(sqlite_engine).import_items(read_chunks(path), files="f", processes=2)
    assert (report.added, report.rejected) == (4 + 39 + 2600 + 13, 11)


def test_a_pool_found_broken_at_submit_prepares_the_rest_here(tmp_path, sqlite_engine, small_limits, monkeypatch):
    """The executor refuses new work once it has seen a worker die, which may come before the dead worker's
    own future is read (CI hit it once): the chunks from then on are prepared in this process."""
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(_lines()) + "\n", encoding="utf-8")
    calls = {"n": 0}

    class BreaksAtTheThirdSubmit(ProcessPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] >= 3:
                raise BrokenProcessPool("a child process terminated abruptly")
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(facts.streaming, "ProcessPoolExecutor", BreaksAtTheThirdSubmit)
    report = _store(sqlite_engine).import_items(read_chunks(path), files="f", processes=2)
    assert calls["n"] == 3  # not asked again once broken
    assert (report.added, report.rejected) == (4 + 39 + 2600 + 13, 11)  # as without workers: nothing lost


def test_a_big_file_that_is_not_utf8_is_read_whole_as_before(tmp_path, small_limits):
    path = tmp_path / "f.jsonl"
    path.write_bytes('{"type":"org","id":"b1","name":"第一党支部","kind":"branch"}\n'.encode("gb18030"))
    notes: list = []
    got = list(read_chunks(path, notes))
    assert len(got) == 1 and not isinstance(got[0], LineChunk)
    assert "GB18030" in str(notes[0])


def test_a_json_array_file_is_read_whole_and_refused_as_before(tmp_path, small_limits):
    path = tmp_path / "f.jsonl"
    path.write_text('[\n{"type":"org"},\n{"type":"org"}\n]\n', encoding="utf-8")
    assert [str(x) for x in read_chunks(path)] == [str(x) for x in read_file(path)]
    assert "one JSON array" in str(next(iter(read_chunks(path))))
