"""Parsing condition text: precedence, literals, and syntax errors that point at the column."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.condition import parse, unparse
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
    children,
)
from engine.errors import ConditionError, ConditionSyntaxError


def tree(text: str) -> Expr:
    return parse(text).root


def test_the_pack_examples_parse_to_the_expected_trees() -> None:
    assert tree("meetings < at_least") == Compare("<", Name("meetings"), Name("at_least"))
    assert tree("present < eligible * threshold") == Compare(
        "<", Name("present"), Arith("*", Name("eligible"), Name("threshold"))
    )
    assert tree("kind in ['party_group_meeting', \"member_assembly\"] and not minutes_complete") == And(
        (
            In(Name("kind"), ListLit((String("party_group_meeting"), String("member_assembly")))),
            Not(Name("minutes_complete")),
        )
    )
    assert tree("'appointment' in topics or 'discipline' in topics") == Or(
        (In(String("appointment"), Name("topics")), In(String("discipline"), Name("topics")))
    )
    assert tree("x not in [1, 2]") == In(Name("x"), ListLit((Number(1), Number(2))), negated=True)


def test_and_binds_tighter_than_or_and_not_looser_than_comparison() -> None:
    assert tree("a or b and c") == Or((Name("a"), And((Name("b"), Name("c")))))
    assert tree("(a or b) and c") == And((Or((Name("a"), Name("b"))), Name("c")))
    assert tree("not a < b") == Not(Compare("<", Name("a"), Name("b")))
    assert tree("not a and b") == And((Not(Name("a")), Name("b")))
    assert tree("a and b and c") == And((Name("a"), Name("b"), Name("c")))  # flattened


def test_arithmetic_precedence_and_left_associativity() -> None:
    assert tree("a + b * c == 1") == Compare(
        "==", Arith("+", Name("a"), Arith("*", Name("b"), Name("c"))), Number(1)
    )
    assert tree("a - b - c == 1").left == Arith("-", Arith("-", Name("a"), Name("b")), Name("c"))  # type: ignore[union-attr]
    assert tree("-(a + b) < 1").left == Neg(Arith("+", Name("a"), Name("b")))  # type: ignore[union-attr]
    assert tree("a < -1") == Compare("<", Name("a"), Number(-1))  # a negative literal is a literal


def test_literals() -> None:
    assert tree("x == 2.5").right == Number(2.5)  # type: ignore[union-attr]
    assert tree("x == 1e3").right == Number(1000.0)  # type: ignore[union-attr]
    assert tree("x == true or y == false") == Or(
        (Compare("==", Name("x"), Bool(True)), Compare("==", Name("y"), Bool(False)))
    )
    assert tree(r"s == 'it\'s \\ \"q\"'").right == String('it\'s \\ "q"')  # type: ignore[union-attr]
    assert tree('s == "中文"').right == String("中文")  # type: ignore[union-attr]
    assert tree("minutes.content == ''").left == Name("minutes.content")  # type: ignore[union-attr]


def test_keywords_inside_names_are_names() -> None:
    assert tree("notes > 0 and android and order_in < 1 and true_count > 0") == And(
        (
            Compare(">", Name("notes"), Number(0)),
            Name("android"),
            Compare("<", Name("order_in"), Number(1)),
            Compare(">", Name("true_count"), Number(0)),
        )
    )


def test_columns_are_one_based_positions_in_the_text() -> None:
    root = tree("a < 1 and  not b")
    assert isinstance(root, And)
    assert [op.column for op in root.operands] == [1, 12]
    assert root.operands[1].operand.column == 16  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "column", "hint"),
    [
        ("a < b < c", 7, "cannot be chained"),
        ("a = 1", 3, "=="),
        ("a and", 6, "expected"),
        ("meetings < 'abc", 12, "quote"),
        ("(a < 1", 7, "')'"),
        ("a < 1 b", 7, None),
        ("and > 1", 1, None),
        ("s == 'a\\qb'", 8, "backslash"),
        ("   ", 1, None),
    ],
)
def test_syntax_errors_carry_the_column(text: str, column: int, hint: str | None) -> None:
    with pytest.raises(ConditionSyntaxError) as info:
        parse(text)
    err = info.value
    assert isinstance(err, ConditionError)
    assert err.text == text and err.column == column
    if hint is not None:
        assert err.suggestion is not None and hint in err.suggestion
    assert f"column {column}" in str(err) and text in str(err)


_names = st.sampled_from(["a", "b", "c", "minutes.content"]).map(Name)
_literals = st.one_of(
    st.integers(0, 1000).map(Number),
    st.floats(0, 1000, allow_nan=False).map(Number),
    st.text("ab'\"\\ 中\n", max_size=4).map(String),
    st.booleans().map(Bool),
)
_values = st.recursive(
    st.one_of(_names, _literals),
    lambda inner: st.one_of(
        st.builds(Neg, inner.filter(lambda e: not isinstance(e, Number))),
        st.builds(Arith, st.sampled_from(["+", "-", "*", "/"]), inner, inner),
    ),
    max_leaves=6,
)
_conditions = st.recursive(
    st.one_of(
        st.builds(Compare, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), _values, _values),
        st.builds(
            In, _values, st.lists(_literals, max_size=3).map(lambda xs: ListLit(tuple(xs))), st.booleans()
        ),
        _names,
    ),
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
    ),
    max_leaves=8,
)


def _flat(expr: Expr) -> bool:
    """The parser flattens a and (b and c); such trees cannot round-trip."""
    if isinstance(expr, And | Or) and any(isinstance(o, type(expr)) for o in expr.operands):
        return False
    return all(_flat(child) for child in children(expr))


@given(_conditions)
def test_unparse_then_parse_gives_the_same_tree(expr: Expr) -> None:
    if not _flat(expr):
        return
    assert tree(unparse(expr)) == expr
