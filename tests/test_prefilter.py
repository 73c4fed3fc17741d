"""The vectorised pre-filter: it may over-select, never under-select, and durable_rules stays the authority.

Differential tests over random conditions and random subjects whose values are chosen to land on the
edges: ties at thresholds, exact fractions (2/3 as a param and 4/6 as a ratio), money (45.5 against
45.5, 0.1 + 0.2), nulls and values of the wrong type.  Held together: pre-filter ⊇ durable_rules,
durable_rules = the reference evaluator, and the matcher with the pre-filter = the matcher without.
"""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine.condition import compile_durable, evaluate, parse, unparse
from engine.condition.ast import (
    And,
    Arith,
    Bool,
    Compare,
    Expr,
    In,
    ListLit,
    Name,
    Neg,
    Not,
    Number,
    Or,
    String,
    names,
    walk,
)
from engine.condition.prefilter import NotVectorisable, compile_prefilter
from engine.errors import ConditionError, NotExpressibleError
from engine.matcher import Matcher, MatcherError
from engine.subjects.base import Subject
from engine.subjects.columns import SubjectColumns

SCHEMA = {
    "n1": "number",
    "n2": "number",
    "ratio": "number",
    "amount": "number",
    "s1": "string",
    "s2": "string",
    "b1": "bool",
    "b2": "bool",
    "tags": "list",
}
TWO_THIRDS = float(Fraction("2/3"))  # how a pack reads the param "2/3"
PARAMS: dict[str, Any] = {
    "threshold": 0.9,
    "two_thirds": TWO_THIRDS,
    "standard": 45.5,
    "at_least": 1,
    "kinds": "b",
}
WORDS = ["", "a", "b", "ab", "中", "a b"]
EDGE_NUMBERS = [0, 1, 2, 3, -1, 0.9, 0.5, 0.25, TWO_THIRDS, 4 / 6, 2 / 3, 1 / 3, 0.1, 0.2, 0.3, 0.1 + 0.2, 45.5, 45.49, 12.35, 0.01, 100.0]

numbers = st.one_of(st.integers(-3, 12), st.sampled_from(EDGE_NUMBERS))
ratios = st.builds(lambda k, n: k / n, st.integers(0, 9), st.integers(1, 9))  # exact fractions as a subject computes them
num_fields = st.sampled_from(["n1", "n2", "ratio", "amount"]).map(Name)
num_params = st.sampled_from(["threshold", "two_thirds", "standard", "at_least"]).map(Name)
num_leaf = st.one_of(num_fields, numbers.map(Number), num_params)
num_expr = st.recursive(
    num_leaf,
    lambda inner: st.one_of(
        st.builds(Arith, st.sampled_from(["+", "-", "*"]), inner, inner),
        st.builds(Arith, st.just("/"), inner, st.one_of(st.sampled_from([2, 3, 0.5, -4]).map(Number), num_fields)),
        st.builds(Neg, inner),
    ),
    max_leaves=4,
)
str_fields = st.sampled_from(["s1", "s2"]).map(Name)
str_expr = st.one_of(str_fields, st.sampled_from(WORDS).map(String), st.just(Name("kinds")))
ops = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])


def _one_field_side(op: str, field: Expr, other: Expr, flip: bool) -> Compare:
    return Compare(op, other, field) if flip else Compare(op, field, other)  # type: ignore[arg-type]


atoms = st.one_of(
    st.builds(_one_field_side, ops, num_fields, num_expr, st.booleans()),
    st.builds(_one_field_side, ops, num_fields, num_expr, st.booleans()),  # thresholds are the common case
    st.builds(_one_field_side, st.sampled_from(["==", "!="]), str_fields, str_expr, st.booleans()),
    st.builds(Compare, ops, num_expr, num_expr),  # often not expressible for durable_rules
    st.sampled_from(["b1", "b2"]).map(Name),
    st.builds(
        Compare,
        st.sampled_from(["==", "!="]),
        st.sampled_from(["b1", "b2"]).map(Name),
        st.one_of(st.booleans().map(Bool), st.just(Name("b2"))),
    ),
    st.builds(
        In,
        num_fields,
        st.lists(numbers.map(Number), max_size=3).map(lambda xs: ListLit(tuple(xs))),
        st.booleans(),
    ),
    st.builds(
        In,
        str_fields,
        st.lists(st.sampled_from(WORDS).map(String), max_size=3).map(lambda xs: ListLit(tuple(xs))),
        st.booleans(),
    ),
    st.builds(In, st.sampled_from(WORDS).map(String), st.just(Name("tags")), st.booleans()),
)
conditions = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
        st.builds(Compare, st.sampled_from(["==", "!="]), inner, inner),
    ),
    max_leaves=5,
)
clean_subjects = st.fixed_dictionaries(
    {
        "n1": numbers,
        "n2": numbers,
        "ratio": ratios,
        "amount": st.sampled_from([45.5, 45.49, 45.51, 0.0, 12.35, 0.1 + 0.2, 0.3]),
        "s1": st.sampled_from(WORDS),
        "s2": st.sampled_from(WORDS),
        "b1": st.booleans(),
        "b2": st.booleans(),
        "tags": st.lists(st.sampled_from(WORDS), max_size=3),
        "id": st.integers(0, 5),
    }
)


@st.composite
def dirty_subjects(draw: st.DrawFn) -> dict[str, Any]:
    """A subject with one field null, missing, or of the wrong type."""
    subject = draw(clean_subjects)
    field = draw(st.sampled_from(sorted(SCHEMA)))
    how = draw(st.sampled_from(["null", "missing", "bool", "string", "exponent", "huge"]))
    if how == "missing":
        del subject[field]
    else:
        subject[field] = {"null": None, "bool": True, "string": "1", "exponent": 1e-7, "huge": 2**60}[how]
    return subject


def _reference(text: str, subject: dict[str, Any]) -> bool | None:
    """The reference evaluator's answer, or None where it refuses (division by zero, a bad value)."""
    try:
        return evaluate(text, subject, PARAMS)
    except ConditionError:
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions, st.lists(clean_subjects, min_size=1, max_size=8))
def test_prefilter_selects_exactly_the_reference_and_durable_rules_agrees(expr: Expr, batch: list[dict[str, Any]]) -> None:
    text = unparse(expr)
    cond = parse(text)
    prefilter = compile_prefilter(cond, SCHEMA, PARAMS)  # the generated constants are all exact
    mask = prefilter.candidates(batch)
    expected = [_reference(text, s) for s in batch]
    exact = not _divides_by_a_field(expr)  # x / 0 is a candidate even where 'and' never evaluates it
    for subject, answer, candidate in zip(batch, expected, mask.tolist(), strict=True):
        # a candidate wherever the reference holds or refuses (division by zero); exact otherwise
        assert candidate or answer is False, (text, subject)
        if exact:
            assert candidate == (True if answer is None else answer), (text, subject)
    try:
        json = compile_durable(cond, SCHEMA, PARAMS)
    except NotExpressibleError:
        event("not for durable_rules")
        return
    event("compared with durable_rules")
    plain, filtered = Matcher({"r": json}), Matcher({"r": json}, {"r": prefilter})
    fired = plain.matches_many("r", batch)
    for answer, hit in zip(expected, fired, strict=True):  # durable_rules = reference evaluator
        assert answer is None or hit == answer, (text, json)  # (None: x / 0 in a branch durable_rules folded away)
    assert all(c for f, c in zip(fired, mask.tolist(), strict=True) if f)  # pre-filter ⊇ durable_rules
    assert filtered.matches_many("r", batch) == fired
    assert filtered.posts == sum(mask.tolist())  # only the candidates were posted


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions, dirty_subjects())
def test_a_null_missing_or_ill_typed_value_makes_a_candidate_so_its_error_is_not_hidden(
    expr: Expr, subject: dict[str, Any]
) -> None:
    text = unparse(expr)
    prefilter = compile_prefilter(text, SCHEMA, PARAMS)
    read = {n.path for n in names(prefilter.root)}
    clean = all(k in subject and _plain(subject[k], SCHEMA[k]) for k in read)
    candidate = bool(prefilter.candidates([subject])[0])
    if clean:
        answer = _reference(text, subject)
        assert candidate or answer is False
    else:
        assert candidate, (text, subject)


def _divides_by_a_field(expr: Expr) -> bool:
    return any(isinstance(n, Arith) and n.op == "/" and not isinstance(n.right, Number) for n in walk(expr))


def _plain(value: Any, kind: str) -> bool:
    if kind == "number":
        return type(value) in (int, float) and (value == 0 or 1e-4 <= abs(value) < 2**53)
    return type(value) is {"string": str, "bool": bool, "list": list}[kind]


def test_the_matcher_still_raises_for_a_null_among_prefiltered_subjects() -> None:
    json = compile_durable("n1 < at_least", SCHEMA, PARAMS)
    prefilter = compile_prefilter("n1 < at_least", SCHEMA, PARAMS)
    subjects: list[dict[str, Any]] = [{"n1": 5} for _ in range(100)]
    subjects[40] = {"n1": None}
    with pytest.raises(MatcherError, match="null"):
        Matcher({"monthly": json}, {"monthly": prefilter}).matches_many("monthly", subjects)
    subjects[40] = {"n2": 1}
    with pytest.raises(MatcherError, match="no field 'n1'"):
        Matcher({"monthly": json}, {"monthly": prefilter}).matches_many("monthly", subjects)
    subjects[40] = {"n1": 1e-7}
    with pytest.raises(MatcherError, match="exponent"):
        Matcher({"monthly": json}, {"monthly": prefilter}).matches_many("monthly", subjects)


def test_a_rule_that_matches_often_still_answers_exactly_and_posts_only_candidates() -> None:
    text = "n1 < at_least or amount < standard"
    rnd = random.Random(1)
    subjects = [{"n1": rnd.choice([0, 0, 3]), "amount": rnd.choice([45.5, 45.49, 50])} for _ in range(3000)]
    matcher = Matcher({"often": compile_durable(text, SCHEMA, PARAMS)}, {"often": compile_prefilter(text, SCHEMA, PARAMS)})
    got = matcher.matches_many("often", subjects)
    assert got == [evaluate(text, s, PARAMS) for s in subjects]
    assert matcher.posts == sum(got) and 1500 < sum(got) < 3000


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("amount < standard", [45.5, 45.49, 45.51, 45.5 - 1e-12], [False, True, False, True]),
        ("ratio < two_thirds", [4 / 6, 2 / 3, 6 / 9, 0.66, 0.67], [False, False, False, True, False]),
        ("ratio <= two_thirds", [4 / 6, 0.6666666666666667], [True, False]),
        ("n1 < n2 * threshold", [9, 8.999999999999998], [False, True]),  # n2 = 10: 10 * 0.9 = 9.0
        ("amount == 0.3", [0.1 + 0.2, 0.3], [False, True]),
    ],
)
def test_ties_at_thresholds_exact_fractions_and_money(text: str, values: list[float], expected: list[bool]) -> None:
    field = names(parse(text).root)[0].path
    subjects = [{"n1": 0, "n2": 10, "ratio": 0, "amount": 0, field: v} for v in values]
    assert compile_prefilter(text, SCHEMA, PARAMS).candidates(subjects).tolist() == expected
    assert [evaluate(text, s, PARAMS) for s in subjects] == expected


def test_constants_a_double_cannot_hold_exactly_have_no_vectorised_form() -> None:
    with pytest.raises(NotVectorisable):
        compile_prefilter("n1 < 9007199254740993", SCHEMA, PARAMS)


def test_results_beyond_exact_doubles_are_candidates() -> None:
    prefilter = compile_prefilter("n1 * n2 == 1", SCHEMA, PARAMS)
    subjects = [{"n1": 2**40, "n2": 2**40}, {"n1": 3, "n2": 4}]
    assert prefilter.candidates(subjects).tolist() == [True, False]


# -- how much compiles: a seeded sample, so the floor is stable ------------------------------------


def _random_expr(rnd: random.Random, depth: int = 0) -> Expr:
    if depth < 2 and rnd.random() < 0.35:
        parts = tuple(_random_expr(rnd, depth + 1) for _ in range(rnd.randint(2, 3)))
        return rnd.choice([And, Or])(parts) if rnd.random() < 0.8 else Not(parts[0])
    field = Name(rnd.choice(["n1", "n2", "ratio", "amount"]))
    kind = rnd.random()
    if kind < 0.5:
        other: Expr = rnd.choice([Number(rnd.choice(EDGE_NUMBERS)), Name(rnd.choice(["threshold", "two_thirds", "standard"]))])
        if rnd.random() < 0.3:
            other = Arith(rnd.choice(["*", "+", "-"]), Name(rnd.choice(["n1", "n2"])), other)
        return Compare(rnd.choice(["<", "<=", ">", ">=", "==", "!="]), field, other)
    if kind < 0.65:
        return In(Name("s1"), ListLit(tuple(String(w) for w in rnd.sample(WORDS, 2))), rnd.random() < 0.5)
    if kind < 0.8:
        return In(String(rnd.choice(WORDS)), Name("tags"), rnd.random() < 0.5)
    if kind < 0.9:
        return Name(rnd.choice(["b1", "b2"]))
    return Compare(rnd.choice(["<", ">="]), Arith("/", field, Name("n2")), Number(0.5))  # not for durable_rules


def test_nearly_every_condition_has_a_vectorised_form() -> None:
    rnd = random.Random(15)
    total = expressible = vectorised = vectorised_expressible = 0
    for _ in range(1000):
        cond = parse(unparse(_random_expr(rnd)))
        try:
            compile_durable(cond, SCHEMA, PARAMS)
            durable = True
        except NotExpressibleError:
            durable = False
        try:
            compile_prefilter(cond, SCHEMA, PARAMS)
            ok = True
        except NotVectorisable:
            ok = False
        total += 1
        expressible += durable
        vectorised += ok
        vectorised_expressible += ok and durable
    assert expressible > 500  # the sample mostly holds conditions a pack can use
    assert vectorised / total >= 0.95
    assert vectorised_expressible / expressible >= 0.95


def test_every_rule_of_the_standard_pack_has_a_prefilter() -> None:
    from engine.pack.load import load_pack
    from rules import STANDARD_PACK

    pack = load_pack(str(STANDARD_PACK))
    assert [r.id for r in pack.rules if r.prefilter is None] == []
    rule = next(r for r in pack.rules if r.id == "dues.amount.full")
    subjects = [{**{f: 0 for f in rule.fields}, "amount": a, "standard": 45.5} for a in (45.5, 45.0, 46.0)]
    assert np.flatnonzero(rule.prefilter.candidates(subjects)).tolist() == [1]  # type: ignore[union-attr]


class _HeldAsColumns(SubjectColumns):
    """Subjects held field by field, as a columnar builder holds them; ``hide`` fields have no column."""

    def __init__(self, batch: list[dict[str, Any]], hide: frozenset[str] = frozenset()) -> None:
        self.columns = {k: [s.get(k) for s in batch] for k in SCHEMA if k not in hide and all(k in s for s in batch)}
        self.n = len(batch)
        self.built = 0

    def __len__(self) -> int:
        return self.n

    def values(self, name: str) -> list[Any] | None:
        return self.columns.get(name)

    def subject(self, i: int) -> Subject:
        self.built += 1
        fields = {k: v[i] for k, v in self.columns.items()}
        return Subject("member", str(i), None, None, "2017", fields)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    conditions,
    st.lists(st.one_of(clean_subjects, dirty_subjects()), min_size=1, max_size=8),
    st.sets(st.sampled_from(sorted(SCHEMA)), max_size=1),
)
def test_subjects_held_as_columns_give_the_same_candidates_and_findings_as_records(
    expr: Expr, batch: list[dict[str, Any]], hide: set[str]
) -> None:
    """The column path (``SubjectColumns.candidates``) selects exactly the subjects the record path's
    pre-filter selects, builds only those, and durable_rules fires on them what it fires on all."""
    batch = [s for s in batch if all(k in s for k in SCHEMA)]  # a columnar builder never lacks a field
    if not batch:
        return
    text = unparse(expr)
    prefilter = compile_prefilter(text, SCHEMA, PARAMS)
    chunk = _HeldAsColumns(batch, frozenset(hide))
    chosen = chunk.candidates(prefilter)
    records = [chunk.subject(i).fields for i in range(len(chunk))]
    mask = prefilter.candidates(records).tolist()
    if any(chunk.values(p) is None for p in prefilter.fields):  # no column for a field read: all built
        assert len(chosen) == len(batch)
    else:
        assert [int(s.id) for s in chosen] == [i for i, c in enumerate(mask) if c]
    try:
        json = compile_durable(parse(text), SCHEMA, PARAMS)
    except NotExpressibleError:
        return
    fired_all: list[bool | None] = []
    for r in records:
        try:
            fired_all.append(Matcher({"r": json}).matches("r", r))
        except MatcherError:
            fired_all.append(None)  # refused (a bad value): it must be among the candidates to be reported
    picked = {int(s.id) for s in chosen}
    assert all(i in picked for i, f in enumerate(fired_all) if f is not False)
