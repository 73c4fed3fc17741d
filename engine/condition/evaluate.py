"""The reference evaluator: the meaning of a condition, in plain Python.

It is the oracle the durable_rules path is tested against, so its semantics are those durable_rules
is compiled to reproduce: numbers compare exactly (``1 == 1.0``, no epsilon), ``/`` is true division,
strings compare by code point, ``and`` / ``or`` / ``not`` need true/false (no truthiness).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

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
)
from engine.condition.typecheck import ConditionLike, as_condition
from engine.errors import ConditionError, ConditionTypeError

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}


def apply_compare(op: str, left: Any, right: Any) -> bool:
    """``left op right`` with the language's semantics (raises TypeError on mixed types)."""
    if isinstance(left, bool) != isinstance(right, bool):
        raise TypeError(f"cannot compare {left!r} with {right!r}")
    return _COMPARE[op](left, right)


def apply_arith(op: str, left: Any, right: Any) -> Any:
    """``left op right`` (raises ZeroDivisionError, TypeError)."""
    if isinstance(left, bool | str) or isinstance(right, bool | str):
        raise TypeError(f"'{op}' needs numbers, not {left!r} and {right!r}")
    return _ARITH[op](left, right)


def lookup(subject: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` (a key, or a dotted path into nested mappings); KeyError when absent."""
    if path in subject:
        return subject[path]
    value: Any = subject
    for part in path.split("."):
        if not isinstance(value, Mapping):
            raise KeyError(path)
        value = value[part]
    return value


class _Evaluator:
    def __init__(self, text: str, subject: Mapping[str, Any], params: Mapping[str, Any]) -> None:
        self.text = text
        self.subject = subject
        self.params = params

    def fail(
        self, node: Expr, message: str, cls: type[ConditionError] = ConditionTypeError
    ) -> ConditionError:
        field = node.path if isinstance(node, Name) else None
        return cls(message, text=self.text, column=node.column or None, field=field)

    def truth(self, node: Expr) -> bool:
        value = self.value(node)
        if not isinstance(value, bool):
            raise self.fail(node, f"expected true/false, got {value!r}")
        return value

    def value(self, node: Expr) -> Any:  # noqa: C901 - one case per node type
        match node:
            case Number(value) | String(value) | Bool(value):
                return value
            case ListLit(items):
                return [self.value(item) for item in items]
            case Name(path):
                if path in self.params:
                    if path in self.subject:
                        raise self.fail(node, f"'{path}' is both a subject field and a param")
                    return self.params[path]
                try:
                    return lookup(self.subject, path)
                except KeyError:
                    raise self.fail(node, f"the subject has no field '{path}'", ConditionError) from None
            case Neg(operand):
                return self.arith(node, "-", 0, self.value(operand))
            case Arith(op, left, right):
                return self.arith(node, op, self.value(left), self.value(right))
            case Compare(op, left, right):
                a, b = self.value(left), self.value(right)
                try:
                    return apply_compare(op, a, b)
                except TypeError:
                    raise self.fail(node, f"cannot compare {a!r} {op} {b!r}") from None
            case In(item, container, negated):
                needle, haystack = self.value(item), self.value(container)
                if not isinstance(haystack, list | tuple):
                    raise self.fail(container, f"'in' needs a list, got {haystack!r}")
                found = any(isinstance(x, bool) == isinstance(needle, bool) and x == needle for x in haystack)
                return found != negated
            case Not(operand):
                return not self.truth(operand)
            case And(operands):
                return all(self.truth(operand) for operand in operands)
            case Or(operands):
                return any(self.truth(operand) for operand in operands)
        raise AssertionError(f"unknown node {node!r}")

    def arith(self, node: Expr, op: str, a: Any, b: Any) -> Any:
        try:
            return apply_arith(op, a, b)
        except ZeroDivisionError:
            raise self.fail(node, "division by zero", ConditionError) from None
        except TypeError as exc:
            raise self.fail(node, str(exc)) from None


def evaluate(cond: ConditionLike, subject: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """Whether ``cond`` holds for ``subject`` (a flat mapping of field values) under ``params``."""
    condition = as_condition(cond)
    return _Evaluator(condition.text, subject, params).truth(condition.root)
