"""The importer, fed arbitrary JSON objects, never crashes and never stores an invalid fact."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facts.errors import Location
from facts.models import MODELS
from facts.store import FactStore
from facts.validate import validate_object

REGISTRY = [
    {"type": "org", "id": "b1", "name": "第一支部", "kind": "branch"},
    {"type": "member", "id": "m1", "name": "张三", "org": "b1"},
]
scalars = st.none() | st.booleans() | st.integers(-5, 5000) | st.floats(allow_nan=False, width=32) | st.sampled_from(
    ["b1", "m1", "m2", "2017-06", "2017-06-30", "2017-02-30", "committee_meeting", "branch", "", "x"]
)
values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["member", "content", "x"]), c, max_size=2), max_leaves=6)
keys = st.sampled_from(
    ["id", "org", "name", "kind", "date", "member", "month", "amount", "paid_on", "attendees", "minutes",
     "received", "year", "filed", "document", "unit", "status", "parent", "on_leave", "interviewer", "interviewee"]
)
objects = st.builds(lambda t, d: {**d, "type": t}, st.sampled_from([*MODELS, "bogus"]), st.dictionaries(keys, values, max_size=7))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(objects, min_size=1, max_size=6))
def test_import_never_crashes_and_stores_only_valid_facts(sqlite_engine, objs):
    store = FactStore(sqlite_engine)
    store.create_schema()
    items = [(Location("fuzz.jsonl", i + 1), o) for i, o in enumerate(REGISTRY + objs)]
    report = store.import_items(items)
    assert report.rejected + report.added + report.unchanged + report.corrected >= len(REGISTRY)
    for i, fact in enumerate(store.current()):
        assert not isinstance(validate_object(fact, Location("db", i)), list)
