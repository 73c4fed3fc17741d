"""An event's references travel as ids only (``Prepared.wants``), records as plain tuples (issue 15, fifth session).

Pinned against the code they replace, on a generated province and on hand-made edge cases:
``referenced_ids`` names the same ids as ``references``; ``Prepared.full_refs`` (made again
from the canonical text) equals ``references`` of the original fact; the subset test of
pass 2 decides as the old per-reference loop did; records pickled as tuples come back equal.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import pytest
from bench_loader import load_bench

from facts.errors import Location
from facts.models import FactBase, referenced_ids, references
from facts.prepare import REGISTRY, Prepared, pickle_records, prepare_items, unpickle_records
from facts.readers import read_file
from facts.validate import validate_object

EDGE_CASES: list[dict] = [
    {"type": "org", "id": "o1", "name": "一", "kind": "branch"},
    {"type": "org", "id": "o2", "name": "二", "kind": "branch", "parent": "o1"},
    {"type": "member", "id": "m1", "name": "甲", "org": "o1", "roles": ["unit_head"], "unit": "o2", "extra_orgs": ["o2", "o1"]},
    {"type": "member_change", "member": "m1", "date": "2018-01-01", "org": "o2", "extra_orgs": ["o1"]},
    {"type": "member_change", "member": "m1", "date": "2018-02-01", "status": "probationary"},
    {"type": "org_change", "org": "o2", "date": "2019-01-01", "parent": "o1"},
    {"type": "org_change", "org": "o2", "date": "2019-02-01", "dissolved": True},
    {"type": "meeting", "id": "mt1", "org": "o1", "kind": "committee_meeting", "date": "2017-03-01"},
    {"type": "meeting", "id": "mt2", "org": "o1", "kind": "party_lecture", "date": "2017-03-01", "host": "m1",
     "lecturer": "m2", "attendees": ["m1", "m3"], "on_leave": [{"member": "m4", "reason": "病"}, {"member": "m5"}],
     "absent": ["m6", "m4"], "minutes": {"recorder": "m7", "content": "内容"}},
    {"type": "meeting", "id": "mt3", "org": "o2", "kind": "theme_day", "date": "2017-03-01", "minutes": {"content": "x"}},
    {"type": "dues", "member": "m1", "month": "2017-01", "amount": 30.5, "paid_on": "2017-01-05", "base": 3000},
    {"type": "signoff", "document": "d1", "unit": "o1", "date": "2017-01-01"},
    {"type": "signoff", "document": "d1", "signer": "m1", "date": "2017-01-01"},
    {"type": "signoff", "document": "d2", "unit": "o1", "signer": "m2", "date": "2017-01-01"},
    {"type": "interview", "date": "2017-01-01", "interviewer": "m1", "interviewee": "m2", "kind": "reminder"},
    {"type": "petition", "id": "p1", "received": "2017-01-01"},
    {"type": "election", "org": "o1", "date": "2017-01-01", "term_years": 3},
    {"type": "field_visit", "member": "m1", "date": "2017-01-01"},
    {"type": "declaration", "member": "m1", "year": 2017, "filed": "2017-01-01"},
    {"type": "promotion", "member": "m1", "date": "2017-01-01", "position": "处长"},
]


def _old_wants(fact: FactBase) -> tuple[set[str], set[str]]:
    refs = references(fact)
    return {r for _, t, r in refs if t == "org"}, {r for _, t, r in refs if t == "member"}


def _old_unknown(refs: list[tuple[str, str, str]], ids: dict[str, set[str]]) -> bool:
    """The test pass 2 made before (store.py, c. 98f9ce7): an event is dropped when a reference is unknown."""
    return bool(refs) and not all(ref in ids[target] for _path, target, ref in refs)


@pytest.fixture(scope="module")
def province(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("province")
    load_bench("generate", "bench_generate_refs").generate(0.003, 7, where)
    return where / "facts.jsonl"


def _facts(path: Path) -> list[tuple[Location, FactBase]]:
    out = []
    for item in read_file(path):
        location, raw = item  # type: ignore[misc]
        fact = validate_object(raw, location)
        assert not isinstance(fact, list)
        out.append((location, fact))
    return out


def _edge_facts() -> list[tuple[Location, FactBase]]:
    out = []
    for line, raw in enumerate(EDGE_CASES, start=1):
        fact = validate_object(raw, Location("edge", line))
        assert not isinstance(fact, list), fact
        out.append((Location("edge", line), fact))
    return out


def test_referenced_ids_name_the_ids_of_references(province):
    facts = _facts(province) + _edge_facts()
    assert {f.type for _, f in facts} >= {"org", "member", "meeting", "dues", "interview"}  # type: ignore[attr-defined]
    for _, fact in facts:
        orgs, members = referenced_ids(fact)
        assert (set(orgs), set(members)) == _old_wants(fact), fact


def test_prepared_records_carry_the_same_references(province):
    facts = _facts(province) + _edge_facts()
    items = [(location, fact.model_dump(mode="json", exclude_defaults=True)) for location, fact in facts]
    for location, raw in items:
        raw.setdefault("type", dict(facts)[location].type)  # type: ignore[attr-defined]
    chunk = prepare_items(items)
    assert not chunk.problems
    assert len(chunk.records) == len(facts)
    for record, (_, fact) in zip(chunk.records, facts, strict=True):
        assert record.full_refs == references(fact)
        assert record.refs == (references(fact) if record.type in REGISTRY else [])
        assert (set(record.wants[0]), set(record.wants[1])) == _old_wants(fact)


def test_the_subset_test_decides_as_the_old_loop(province):
    facts = _facts(province) + _edge_facts()
    everyone = {t: sorted({r for _, f in facts for _, tt, r in references(f) if tt == t}) for t in ("org", "member")}
    rng = random.Random(5)
    for _ in range(30):
        ids = {t: {x for x in names if rng.random() < 0.97} for t, names in everyone.items()}
        for _, fact in facts:
            orgs, members = referenced_ids(fact)
            new = not (ids["org"].issuperset(orgs) and ids["member"].issuperset(members))
            assert new == _old_unknown(references(fact), ids)


def test_records_pickled_as_tuples_come_back_equal(province):
    items = [(location, fact.model_dump(mode="json", exclude_defaults=True) | {"type": fact.type})  # type: ignore[attr-defined]
             for location, fact in _facts(province) + _edge_facts()]  # fmt: skip
    records = prepare_items(items).records
    back = unpickle_records(pickle_records(records))
    assert back == pickle.loads(pickle.dumps(records))  # what the old path gave
    assert all(type(r) is Prepared for r in back)
    assert [r.location for r in back] == [r.location for r in records]
