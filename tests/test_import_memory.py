"""The importer's whole-import state stays ~16 bytes a fact in memory, and the checks built on it decide as before.

The per-object state (key digest, content digest, place) is counted through the
structures' ``nbytes``, not through the process's RSS, which is too noisy to test.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from typing import IO

import pytest
import sqlalchemy as sa
from test_store import REGISTRY, items, store

import facts.bulk
from facts.errors import FieldProblem, Location
from facts.prepare import Prepared, PreparedChunk, ReadyChunk, ident_of, ready
from facts.store import FactStore, _Column, _Scan


def _record(i: int, type_name: str = "dues", key: str | None = None, content: str = "{}", file: str = "f.jsonl") -> Prepared:
    key = key if key is not None else f"m{i}|2017-01"
    digest = f"{(i * 2654435761) % (1 << 64):016x}" + "0" * 16
    return Prepared(file, i + 1, type_name, key, ident_of(type_name, key), digest, content, [], [], None)


def _ready(records: list[Prepared]) -> ReadyChunk:
    return ready(PreparedChunk(records, []))


@pytest.fixture
def spill() -> Iterator[tuple[IO[bytes], IO[bytes]]]:
    with tempfile.TemporaryFile() as registry, tempfile.TemporaryFile() as places:
        yield registry, places


def _scan_of(spill: tuple[IO[bytes], IO[bytes]], records: list[Prepared], chunk: int = 2000) -> _Scan:
    for f in spill:
        f.seek(0)
        f.truncate()
    scan = _Scan(*spill)
    for start in range(0, len(records), chunk):
        scan.add_chunk(_ready(records[start : start + chunk]), keep_content=False)
    return scan


def test_n_keys_are_held_in_16_bytes_each_and_their_places_on_disk(spill):
    n = 300_000
    scan = _scan_of(spill, [_record(i) for i in range(n)])
    slack = _Column.BLOCK * 8  # the last block, not yet full
    assert len(scan) == n
    assert scan.nbytes == scan.idents.nbytes + scan.hashes.nbytes <= n * 16 + 2 * slack
    assert scan.registered == 0  # no object per fact is kept
    assert spill[1].seek(0, 2) == n * 8  # the places
    assert scan.location(0) == Location("f.jsonl", 1) and scan.location(n - 1) == Location("f.jsonl", n)


def test_places_name_the_file_and_line_across_files(spill):
    records = [_record(i, file=f"part{i % 3}.jsonl") for i in range(5000)]
    scan = _scan_of(spill, records, chunk=700)
    for i in (0, 1, 2, 699, 700, 4999):
        assert scan.location(i) == Location(f"part{i % 3}.jsonl", i + 1)


def test_duplicates_are_the_same_as_a_brute_force_search(spill):
    rng = random.Random(15)
    records = []
    for i in range(20_000):
        key = f"m{rng.randrange(15_000)}|2017-01"
        records.append(_record(i, key=key)._replace(hash=f"{rng.randrange(2):016x}" + "0" * 16))
    scan = _scan_of(spill, records, chunk=1500)
    expected: dict[int, tuple[int, bool]] = {}
    first: dict[str, int] = {}
    for i, r in enumerate(records):
        kept = first.setdefault(r.key, i)
        if kept != i:
            expected[i] = (kept, records[kept].hash == r.hash)
    assert expected and scan.duplicates() == expected


def test_no_duplicates_and_no_objects(spill):
    assert _scan_of(spill, [_record(i) for i in range(70_000)]).duplicates() == {}
    assert _scan_of(spill, []).duplicates() == {}
    assert _scan_of(spill, [_record(1)]).duplicates() == {}


def test_the_registry_is_read_back_from_disk_in_input_order_without_the_ones_skipped(spill):
    records = [_record(i, "member", key=f"m{i}", content=f'{{"id":"m{i}"}}') for i in range(10)]
    scan = _Scan(*spill)
    scan.add_chunk(_ready(records[:4]), keep_content=True)
    scan.add_chunk(_ready(records[4:]), keep_content=True)
    assert scan.registered == 10
    assert [r.key for r in scan.registry({3}, {0: None})] == [f"m{i}" for i in (1, 2, 4, 5, 6, 7, 8, 9)]
    first = next(scan.registry())
    assert (first.at, first.location, first.content) == (0, Location("f.jsonl", 1), '{"id":"m0"}')


def test_whole_import_checks_on_the_spilled_registry(db_engine):
    """Forward references, a repeated id, ``admit``'s refusals, a cycle and an unknown reference, all at once."""
    s = store(db_engine)
    objs = [
        {"type": "member", "id": "m9", "name": "后定义的组织", "org": "b9"},  # 1: b9 comes later
        *REGISTRY,  # 2-5
        {"type": "org", "id": "b9", "name": "第九支部", "kind": "branch", "parent": "oc"},  # 6
        {"type": "org", "id": "b9", "name": "别的名字", "kind": "branch", "parent": "oc"},  # 7: repeated, other content
        {"type": "org", "id": "c1", "name": "甲", "kind": "branch", "parent": "c2"},  # 8
        {"type": "org", "id": "c2", "name": "乙", "kind": "branch", "parent": "c1"},  # 9: closes a cycle
        {"type": "member", "id": "m8", "name": "被拒", "org": "b9"},  # 10: admit refuses it
        {"type": "dues", "member": "m8", "month": "2017-06", "amount": 1.0, "paid_on": "2017-06-20", "base": 100},  # 11
        {"type": "dues", "member": "m9", "month": "2017-06", "amount": 1.0, "paid_on": "2017-06-20", "base": 100},  # 12
        {"type": "member", "id": "m7", "name": "无处", "org": "nowhere"},  # 13
    ]
    seen: list[int] = []

    def admit(batch):
        seen.extend(loc.line for loc, _ in batch)
        return [FieldProblem(loc, "member.org", "不许") for loc, body in batch if body.get("id") == "m8"]

    report = s.import_items(items(objs), admit=admit)
    assert seen[:10] == [1, 2, 3, 4, 5, 6, 8, 9, 10, 13]  # the registry, without the repeated line, in input order
    by_line = {p.location.line: p for p in report.problems}
    assert set(by_line) == {7, 8, 9, 10, 11, 13}
    assert '"b9" appears twice in this import with different content (first at f.jsonl:6)' in by_line[7].message
    assert by_line[9].field == "org.parent" and "cycle" in by_line[9].message
    assert by_line[10].message == "不许"
    assert by_line[11].field == "dues.member" and 'unknown member "m8"' in by_line[11].message
    assert by_line[13].field == "member.org" and 'unknown org "nowhere"' in by_line[13].message
    assert by_line[8].field == "org.parent" and 'unknown org "c2"' in by_line[8].message  # c2 was refused
    assert report.added == 13 - 6
    assert {m["id"] for m in s.current("member")} == {"m01", "m9"}
    again = s.import_items(items(objs), admit=admit)  # idempotent: the same decisions, nothing new
    assert (again.added, again.corrected, again.unchanged, again.rejected) == (0, 0, 7, 6)


def test_indexes_are_built_with_a_small_sort_cache_and_the_cache_comes_back(sqlite_engine, monkeypatch):
    FactStore(sqlite_engine).create_schema()
    statements: list[str] = []
    sa.event.listen(sqlite_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with sqlite_engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA cache_size=-131072")
        conn.commit()
        table = facts.store._FV
        (index, *_) = facts.bulk.secondary_indexes(table)
        with conn.begin():
            conn.execute(sa.schema.DropIndex(index))
        statements.clear()
        assert facts.bulk.restore_indexes(conn, [table]) == [str(index.name)]
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -131072
    pragmas = [i for i, s in enumerate(statements) if s.startswith("PRAGMA cache_size=")]
    built = next(i for i, s in enumerate(statements) if s.startswith("CREATE INDEX"))
    assert statements[pragmas[0]] == f"PRAGMA cache_size=-{facts.bulk.SORT_CACHE_KB}" and pragmas[0] < built < pragmas[1]
    assert statements[pragmas[1]] == "PRAGMA cache_size=-131072"
    threads = [i for i, s in enumerate(statements) if s.startswith("PRAGMA threads=")]  # helpers for the sort
    assert statements[threads[0]] == f"PRAGMA threads={facts.bulk.SORT_THREADS}" and threads[0] < built < threads[1]
    assert statements[threads[1]] == "PRAGMA threads=0"


def test_the_audit_detail_of_an_import_is_hashed_as_a_stream(sqlite_engine):
    from engine.audit.log import fact_lines, import_detail

    s = store(sqlite_engine)
    report = s.import_items(items(REGISTRY))
    assert report.import_id is not None
    with sqlite_engine.connect() as conn:
        rows = [
            (r[0], r[1], int(r[2]), r[3])
            for r in conn.execute(sa.text("select type, key, version, hash from fact_version order by seq"))
        ]
    assert len(rows) == 4
    few = import_detail(sqlite_engine, report.import_id, listed=2)
    assert few == {"import_id": report.import_id, "count": 4, "digest": fact_lines(rows)}  # too many to list
    every = import_detail(sqlite_engine, report.import_id)
    assert every["facts"] == [list(r) for r in rows] and every["digest"] == few["digest"]
