"""Batched matching: one durable_rules post for several subjects must answer exactly as single posts."""

from __future__ import annotations

import random
from typing import Any

import pytest

from engine.condition import compile_durable
from engine.matcher import Matcher, MatcherError
from engine.matcher_batch import BATCH, batch_condition, item_condition

FIELDS = {"n": "number", "x": "number", "s": "string", "b": "bool", "topics": "list"}


def test_item_condition_rewrites_field_comparisons_with_constants():
    assert item_condition({"$lt": {"meetings": 1}}) == {"$lt": {"$i.meetings": 1}}
    assert item_condition({"has_declaration": False}) == {"$i.has_declaration": False}
    both = {"$and": [{"$gte": {"n": 6}}, {"$neq": {"s": "党"}}]}
    assert item_condition(both) == {"$and": [{"$gte": {"$i.n": 6}}, {"$neq": {"$i.s": "党"}}]}
    assert batch_condition({"$lt": {"n": 1}}) == {"$iany": {"items": {"$lt": {"$i.n": 1}}}}


@pytest.mark.parametrize(
    "condition",
    [
        {"$lt": {"amount": {"$m": "standard"}}},  # another field: durable_rules error 102 inside items
        {"$lt": {"present": {"$mul": {"$l": {"$m": "eligible"}, "$r": 0.9}}}},
        {"$or": [{"$lt": {"n": 1}}, {"b": True}]},  # durable_rules answers $or inside items wrongly
        {"$and": [{"$lt": {"n": 1}}, {"$or": [{"b": True}, {"s": "a"}]}]},
        {"$iany": {"topics": {"$i": "study"}}},
    ],
)
def test_conditions_that_cannot_be_batched_are_not(condition):
    assert batch_condition(condition) is None


def _random_condition(rnd: random.Random, depth: int = 0) -> str:
    if depth < 2 and rnd.random() < 0.4:
        joiner = rnd.choice([" and ", " or "])
        return "(" + joiner.join(_random_condition(rnd, depth + 1) for _ in range(rnd.randint(2, 3))) + ")"
    field = rnd.choice(["n", "x", "s", "b"])
    if field in ("n", "x"):
        return f"{field} {rnd.choice(['<', '<=', '>', '>=', '==', '!='])} {rnd.choice([0, 1, 2, 0.5, -1])}"
    if field == "s":
        return f"s {rnd.choice(['==', '!='])} '{rnd.choice(['a', '党', ''])}'"
    return rnd.choice(["b", "not b"])


def _random_subject(rnd: random.Random) -> dict[str, Any]:
    return {
        "n": rnd.choice([0, 1, 2, 0.5, -1, 3.25]),
        "x": rnd.choice([0, 1.0, 2]),
        "s": rnd.choice(["a", "b", "党", ""]),
        "b": rnd.choice([True, False]),
        "topics": [],
    }


@pytest.mark.parametrize("seed", range(6))
def test_batched_answers_equal_single_posts_on_random_conditions(seed):
    rnd = random.Random(seed)
    conditions = {f"r{i}": compile_durable(_random_condition(rnd), FIELDS, {}) for i in range(40)}
    batched, single = Matcher(conditions), Matcher(conditions)
    for key in conditions:
        subjects = [_random_subject(rnd) for _ in range(rnd.randint(1, 5 * BATCH))]
        expected = [single.matches(key, s) for s in subjects]
        assert batched.matches_many(key, subjects) == expected, conditions[key]


def test_a_rule_that_matches_often_still_answers_exactly():
    conditions = {"often": compile_durable("n < 1", FIELDS, {})}
    rnd = random.Random(1)
    subjects = [{**_random_subject(rnd), "n": rnd.choice([0, 0, 0, 5])} for _ in range(2000)]
    got = Matcher(conditions).matches_many("often", subjects)
    assert got == [s["n"] < 1 for s in subjects]
    assert 1000 < sum(got) < 2000


def test_a_null_field_in_a_batch_is_an_error_naming_the_rule():
    conditions = {"monthly": compile_durable("n < 1", FIELDS, {})}
    subjects = [_random_subject(random.Random(i)) for i in range(BATCH)]
    subjects[3]["n"] = None
    with pytest.raises(MatcherError, match="monthly.*null"):
        Matcher(conditions).matches_many("monthly", subjects)
