"""The vectorised pre-filter: which subjects of a batch *might* satisfy a condition (numpy).

A condition's tree is also evaluated over columns — one numpy array per field the condition reads,
for a whole chunk of subjects at once — giving a mask of *candidates*.  Only the candidates are posted
to durable_rules, which stays the authority: every finding is still fired by the rule's own ruleset.
So the mask may over-select but must never under-select.  It is computed with the semantics of the
reference evaluator (:mod:`engine.condition.evaluate`), which durable_rules is held equal to:

- numbers are IEEE doubles in both (durable_rules reads a JSON number with ``atof`` / ``atoll`` and
  computes in doubles or 64-bit integers); every value and every intermediate result is checked to lie
  below 2**53 in magnitude, where doubles hold integers exactly — beyond it, the subject is a candidate;
- a value that is null, missing, of the wrong type, not finite, or a float that would be written in
  exponent notation (which durable_rules cannot read) is *unknown*: the subject is a candidate, so the
  matcher posts it and raises the same clear error as without the pre-filter;
- three-valued logic kept simple: a node is unknown where any operand is (so a bad value anywhere in
  the condition makes a candidate, even under an ``and`` that is false); unknown is a candidate.

numpy rather than polars: the columns come as Python lists — from the subject builders that hold their
subjects as columns (:mod:`engine.subjects.columns`, through :func:`column_of`) or from subject dicts
(:func:`build_column`) — where ``np.array(list, float64)`` costs ~10 ns an item and polars' conversion
from Python objects costs more; the expressions are a handful of comparisons, where both run at memory
speed.  polars would pay off once subjects arrive as Arrow columns from the database.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

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
    walk,
)
from engine.condition.evaluate import apply_compare, lookup
from engine.condition.typecheck import ConditionLike, as_condition, check

Mask = npt.NDArray[np.bool_]
EXACT = 2.0**53
"""Integers are exact in a double below this magnitude; beyond it a value or result is unknown."""
SMALLEST_PLAIN = 1e-4
"""Python writes a non-zero float below this magnitude in exponent notation, which durable_rules cannot read."""


class NotVectorisable(ValueError):
    """The condition has no vectorised form; the matcher posts every subject."""


@dataclass(frozen=True, slots=True)
class Column:
    """One field over a chunk of subjects: ``values`` (placeholders where ``unknown``) and ``unknown``."""

    values: np.ndarray
    unknown: Mask | None  # None: nothing unknown


_MISSING = object()
_NUMBER_TYPES = frozenset({int, float})


def _raw(subjects: Sequence[Mapping[str, Any]], path: str) -> list[Any]:
    try:
        return [s[path] for s in subjects]
    except KeyError:
        out = []
        for s in subjects:
            try:
                out.append(lookup(s, path))
            except KeyError:
                out.append(_MISSING)
        return out


def number_column(values: list[Any]) -> Column:
    """A float64 column; unknown where a value is not an int/float, not exact, or not plainly written."""
    arr: np.ndarray | None = None
    if set(map(type, values)) <= _NUMBER_TYPES:
        try:
            arr = np.array(values, dtype=np.float64)
        except OverflowError:  # an int beyond a double's range
            arr = None
    if arr is None:
        arr = np.zeros(len(values), dtype=np.float64)
        bad = np.ones(len(values), dtype=np.bool_)
        for i, v in enumerate(values):
            if type(v) in _NUMBER_TYPES and abs(v) < EXACT:
                arr[i], bad[i] = v, False
    else:
        bad = np.zeros(len(values), dtype=np.bool_)
    size = np.abs(arr)
    bad |= ~(size < EXACT)  # also NaN and infinities
    bad |= (size < SMALLEST_PLAIN) & (arr != 0)
    arr[bad] = 0.0
    return Column(arr, bad if bad.any() else None)


def _typed_column(values: list[Any], kind: type, fill: Any, dtype: Any) -> Column:
    if set(map(type, values)) == {kind}:
        return Column(np.array(values, dtype=dtype), None)
    bad = np.fromiter((type(v) is not kind for v in values), dtype=np.bool_, count=len(values))
    return Column(np.array([fill if b else v for v, b in zip(values, bad, strict=True)], dtype=dtype), bad)


def _list_column(values: list[Any]) -> Column:
    def ok(v: Any) -> bool:
        return type(v) in (list, tuple) and all(type(x) is str for x in v)

    bad = np.fromiter((not ok(v) for v in values), dtype=np.bool_, count=len(values))
    arr = np.empty(len(values), dtype=object)
    for i, (v, b) in enumerate(zip(values, bad, strict=True)):  # item by item: numpy would unpack the lists
        arr[i] = () if b else tuple(v)
    return Column(arr, bad if bad.any() else None)


def build_column(subjects: Sequence[Mapping[str, Any]], path: str, kind: str) -> Column:
    """The column of field ``path`` (of condition type ``kind``) over ``subjects``."""
    return column_of(_raw(subjects, path), kind)


def column_of(values: list[Any], kind: str) -> Column:
    """The column of a field (of condition type ``kind``) from its values, one a subject (the subjects
    held as columns of :mod:`engine.subjects.columns` give these without building a record each)."""
    if kind == "number":
        return number_column(values)
    if kind == "bool":
        return _typed_column(values, bool, False, np.bool_)
    if kind == "string":
        return _typed_column(values, str, "", object)
    return _list_column(values)


# A node's value over the chunk: a numpy array or a Python scalar, and where it is unknown.
_Val = tuple[Any, Mask | None]


def _union(*masks: Mask | None) -> Mask | None:
    present = [m for m in masks if m is not None]
    if not present:
        return None
    out = present[0]
    for m in present[1:]:
        out = out | m
    return out


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


@dataclass(frozen=True)
class Prefilter:
    """A condition's vectorised form: :meth:`candidates` is a superset of the subjects it holds for."""

    text: str
    root: Expr  # params substituted
    fields: dict[str, str]  # the subject fields read, with their condition types

    def candidates(self, subjects: Sequence[Mapping[str, Any]]) -> Mask:
        """For each subject, whether it may satisfy the condition (True also where a value is unknown)."""
        columns = {path: build_column(subjects, path, kind) for path, kind in self.fields.items()}
        return self.candidates_of(columns, len(subjects))

    def candidates_of(self, columns: Mapping[str, Column], n: int) -> Mask:
        """:meth:`candidates` over columns built elsewhere (one :class:`Column` per field in ``fields``)."""
        with np.errstate(all="ignore"):
            value, unknown = _Run(columns).value(self.root)
        truth = np.broadcast_to(np.asarray(value, dtype=np.bool_), (n,))
        return truth | unknown if unknown is not None else truth.copy()


class _Run:
    def __init__(self, columns: Mapping[str, Column]) -> None:
        self.columns = columns

    def value(self, node: Expr) -> _Val:  # noqa: C901 - one case per node type
        match node:
            case Number(value):
                return float(value), None
            case String(value) | Bool(value):
                return value, None
            case Name(path):
                column = self.columns[path]
                return column.values, column.unknown
            case Neg(operand):
                value, unknown = self.value(operand)
                return -value, unknown
            case Arith(op, left, right):
                return self.arith(op, self.value(left), self.value(right))
            case Compare(op, left, right):
                (a, ua), (b, ub) = self.value(left), self.value(right)
                if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):  # two constants
                    a, b = (x.item() if isinstance(x, np.generic) else x for x in (a, b))
                    return apply_compare(op, a, b), _union(ua, ub)
                return _COMPARE[op](a, b), _union(ua, ub)
            case In(item, ListLit(items), negated):
                found: _Val = (False, self.value(item)[1])  # x in []: still unknown where x is
                for candidate in items:
                    found = self.either(found, self.value(Compare("==", item, candidate)))
                return (np.logical_not(found[0]) if negated else found[0]), found[1]
            case In(item, Name() as container, negated):
                return self.contains(self.value(item), self.value(container), negated)
            case Not(operand):
                value, unknown = self.value(operand)
                return np.logical_not(value), unknown
            case And(operands):
                vals = [self.value(o) for o in operands]
                out = vals[0][0]
                for v, _ in vals[1:]:
                    out = np.logical_and(out, v)
                return out, _union(*(u for _, u in vals))
            case Or(operands):
                result: _Val = (False, None)
                for o in operands:
                    result = self.either(result, self.value(o))
                return result
        raise NotVectorisable(f"no vectorised form for {node!r}")

    @staticmethod
    def either(a: _Val, b: _Val) -> _Val:
        return np.logical_or(a[0], b[0]), _union(a[1], b[1])

    @staticmethod
    def arith(op: str, left: _Val, right: _Val) -> _Val:
        (a, ua), (b, ub) = left, right
        unknown = _union(ua, ub)
        if op == "/":
            zero = np.equal(b, 0)
            if np.any(zero):
                unknown = _union(unknown, np.broadcast_to(zero, np.shape(a) or np.shape(zero)))
                b = np.where(zero, 1.0, b)
            result = np.divide(a, b)
        else:
            result = {"+": np.add, "-": np.subtract, "*": np.multiply}[op](a, b)
        inexact = ~(np.abs(result) < EXACT)  # the reference computes exactly on integers; doubles do not beyond this
        if np.any(inexact):
            unknown = _union(unknown, inexact)
            result = np.where(inexact, 0.0, result)
        return result, unknown

    @staticmethod
    def contains(item: _Val, container: _Val, negated: bool) -> _Val:
        (needle, un), (lists, ul) = item, container
        if isinstance(needle, np.ndarray):
            found = np.fromiter((x in ys for x, ys in zip(needle, lists, strict=True)), np.bool_, len(lists))
        else:
            found = np.fromiter((needle in ys for ys in lists), np.bool_, len(lists))
        return (~found if negated else found), _union(un, ul)


def compile_prefilter(cond: ConditionLike, fields: Mapping[str, str], params: Mapping[str, Any]) -> Prefilter:
    """The vectorised form of ``cond`` (type-checked against ``fields`` and ``params`` first).

    Raises :class:`ConditionTypeError` for an ill-typed condition and :class:`NotVectorisable` for one
    whose constants a double cannot hold exactly.
    """
    condition = as_condition(cond)
    check(condition, fields, params)
    root = _substitute(condition.root, params)
    read: dict[str, str] = {}
    for node in walk(root):
        if isinstance(node, Number) and not (
            isinstance(node.value, int | float) and math.isfinite(node.value) and abs(node.value) < EXACT
        ):
            raise NotVectorisable(f"the constant {node.value!r} is not exact in a double")
        if isinstance(node, Name):
            read[node.path] = fields[node.path]
    return Prefilter(condition.text, root, read)


def _literal(value: Any) -> Expr:
    if isinstance(value, bool):
        return Bool(value)
    if isinstance(value, int | float):
        return Number(value)
    if isinstance(value, str):
        return String(value)
    return ListLit(tuple(_literal(v) for v in value))


def _substitute(node: Expr, params: Mapping[str, Any]) -> Expr:  # noqa: C901 - one case per node type
    match node:
        case Name(path) if path in params:
            return _literal(params[path])
        case ListLit(items):
            return ListLit(tuple(_substitute(i, params) for i in items))
        case Neg(operand):
            return Neg(_substitute(operand, params))
        case Arith(op, left, right):
            return Arith(op, _substitute(left, params), _substitute(right, params))
        case Compare(op, left, right):
            return Compare(op, _substitute(left, params), _substitute(right, params))
        case In(item, container, negated):
            return In(_substitute(item, params), _substitute(container, params), negated)
        case Not(operand):
            return Not(_substitute(operand, params))
        case And(operands):
            return And(tuple(_substitute(o, params) for o in operands))
        case Or(operands):
            return Or(tuple(_substitute(o, params) for o in operands))
    return node
