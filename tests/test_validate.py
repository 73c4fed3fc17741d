"""Validation of input objects against the interchange format: precise messages, nothing invalid accepted."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facts.errors import Location
from facts.models import MODELS, FactBase, canonical
from facts.validate import validate_object

L = Location("facts.jsonl", 12)


def messages(obj):
    result = validate_object(obj, L)
    assert isinstance(result, list), f"expected problems, got {result!r}"
    return [str(p) for p in result]


def test_the_spec_example_message_for_an_impossible_date():
    obj = {"type": "meeting", "id": "x", "org": "b1", "kind": "committee_meeting", "date": "2017-02-30"}
    assert messages(obj) == ['facts.jsonl:12: meeting.date: "2017-02-30" is not a valid date (expected YYYY-MM-DD)']


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"type": "dues", "member": "m", "month": "2017-13", "amount": 1, "paid_on": "2017-01-01"}, "dues.month: \"2017-13\" is not a valid month"),
        ({"type": "dues", "member": "m", "month": "2017-01", "amount": -3, "paid_on": "2017-01-01"}, "dues.amount: -3 is negative"),
        ({"type": "dues", "member": "m", "month": "2017-01", "amount": "abc", "paid_on": "2017-01-01"}, "dues.amount: \"abc\" is not an amount"),
        ({"type": "meting"}, "type: \"meting\" is not a known type (did you mean 'meeting'?)"),
        ({"id": "x"}, "type: required field is missing"),
        ({"type": "meeting", "id": "x", "org": "b", "kind": "committee_meeting", "date": "2017-01-02", "attendee": []}, "meeting.attendee: unknown field (did you mean 'attendees'?)"),
        ({"type": "meeting", "id": "x", "org": "b", "kind": "commitee_meeting", "date": "2017-01-02"}, "did you mean 'committee_meeting'?"),
        ({"type": "meeting", "id": "x", "org": "b", "kind": "committee_meeting", "date": "2017-01-02", "minutes": {"contnet": "x"}}, "meeting.minutes.contnet: unknown field (did you mean 'content'?)"),
        ({"type": "declaration", "member": "m", "year": "2017", "filed": "2017-01-05"}, "declaration.year: \"2017\" is not a valid year"),
        ({"type": "org", "id": "o", "name": "n", "kind": "branch", "term_years": 0}, "org.term_years: 0 is not a term of office (expected 1 to 10 years)"),
        ({"type": "petition", "id": "p", "received": "2017-03-01", "closed": "2017-02-01"}, "petition: closed is before received"),
        ({"type": "member", "id": "m", "name": "张三"}, "member.org: required field is missing"),
        ({"type": "meeting", "id": "x", "org": "b", "kind": "committee_meeting", "date": "2017-01-02", "attendees": ["a"], "absent": ["a"]}, "both an attendee and absent"),
        ({"type": "meeting", "id": 7, "org": "b", "kind": "committee_meeting", "date": "2017-01-02"}, "meeting.id: 7 is not a string"),
        ({"type": "signoff", "document": "d", "date": "2017-04-01"}, "a signoff needs a unit or a signer"),
    ],
)
def test_each_problem_names_the_field_and_what_was_expected(obj, expected):
    assert any(expected in m for m in messages(obj)), messages(obj)


def test_valid_objects_become_facts_and_canonical_form_drops_defaults():
    fact = validate_object(
        {"type": "member", "id": "m01", "name": "张三", "org": "b1", "status": "full", "roles": []}, L
    )
    assert isinstance(fact, FactBase)
    assert canonical(fact) == {"type": "member", "id": "m01", "name": "张三", "org": "b1"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(
    ["type", "id", "org", "name", "kind", "date", "member", "month", "amount", "paid_on", "attendees", "minutes",
     "received", "year", "filed", "document", "unit", "status", "roles", "base", "topics", "on_leave", "x"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(field_names, json_values, max_size=8),
    st.sampled_from([*MODELS, "nope"]),
)
def test_arbitrary_json_never_crashes_and_never_yields_an_invalid_fact(obj, type_name):
    obj = dict(obj, type=type_name)
    result = validate_object(obj, L)
    if isinstance(result, list):
        assert result and all(p.location == L and p.message for p in result)
    else:
        # anything accepted round-trips through its canonical JSON form unchanged
        again = validate_object(json.loads(json.dumps(canonical(result))), L)
        assert again == result
