"""Type-checking conditions: unknown names with did-you-mean, type mismatches, params."""

from __future__ import annotations

from typing import Any

import pytest

from engine.condition import check, parse
from engine.errors import ConditionTypeError

FIELDS = {
    "attendees": "number",
    "present": "number",
    "eligible": "number",
    "kind": "string",
    "minutes_complete": "bool",
    "is_closed": "bool",
    "topics": "list",
}
PARAMS: dict[str, Any] = {"threshold": 0.9, "at_least": 1, "kinds": ["a", "b"], "label": "x", "strict": True}


def error(text: str, params: dict[str, Any] | None = None) -> ConditionTypeError:
    with pytest.raises(ConditionTypeError) as info:
        check(parse(text), FIELDS, PARAMS if params is None else params)
    return info.value


@pytest.mark.parametrize(
    "text",
    [
        "present < eligible * threshold",
        "attendees >= at_least and not is_closed",
        "kind in kinds or kind == label",
        "'appointment' in topics and 'x' not in topics",
        "kind not in ['a', 'b']",
        "minutes_complete == strict",
        "is_closed != (present < 1)",
        "-present + 2 / eligible > 0",
        "kind < 'm'",
        "present in []",
    ],
)
def test_well_typed_conditions_pass(text: str) -> None:
    check(parse(text), FIELDS, PARAMS)


def test_unknown_field_suggests_the_closest_name() -> None:
    err = error("atendees > 0")
    assert err.field == "atendees" and err.column == 1
    assert err.suggestion == "did you mean 'attendees'?"
    assert "unknown field 'atendees' — did you mean 'attendees'?" in str(err)


def test_unknown_param_is_suggested_too_and_columns_point_at_it() -> None:
    err = error("present < eligible * treshold")
    assert (err.field, err.column, err.suggestion) == ("treshold", 22, "did you mean 'threshold'?")


def test_unknown_name_without_a_close_match_has_no_suggestion() -> None:
    assert error("zzzzzz > 1").suggestion is None


def test_a_name_that_is_both_field_and_param_is_an_error() -> None:
    err = error("present > 1", {"present": 3})
    assert err.field == "present" and "both" in err.message


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("kind > 5", "kind", "cannot compare"),
        ("kind + 1 > 2", "kind", "needs numbers"),
        ("present", "present", "must be true or false"),
        ("present and is_closed", "present", "'and' needs true/false"),
        ("not kind", "kind", "'not' needs true/false"),
        ("is_closed < minutes_complete", "is_closed", "does not apply"),
        ("topics == 'a'", "topics", "list"),
        ("kind in 'abc'", None, "needs a list"),
        ("present in kinds", "present", "can never be in"),
        ("kind in [1, 'a']", None, "mixes types"),
        ("[1] == [1]", None, "list"),
        ("-kind < 1", "kind", "negated"),
    ],
)
def test_type_mismatches_name_the_field(text: str, field: str | None, words: str) -> None:
    err = error(text)
    assert err.field == field
    assert words in err.message
    assert err.text == text and err.column is not None


def test_a_number_condition_suggests_a_comparison() -> None:
    assert error("present").suggestion == "compare it, e.g. present > 0"


def test_unusable_param_values_are_reported_where_used() -> None:
    err = error("present < limit", {"limit": {"a": 1}})
    assert err.field == "limit" and "cannot be used" in err.message
    err = error("present < limit", {"limit": float("nan")})
    assert err.field == "limit"


def test_check_accepts_text_and_unknown_field_types_are_errors() -> None:
    check("present > 0", FIELDS, {})
    with pytest.raises(ConditionTypeError, match="unknown type"):
        check("x > 0", {"x": "integer"}, {})


def test_condition_errors_survive_pickling() -> None:
    import pickle

    err = error("atendees > 0")
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is ConditionTypeError
    assert (again.text, again.column, again.field, again.suggestion) == (
        err.text,
        1,
        "atendees",
        err.suggestion,
    )
    assert str(again) == str(err)
