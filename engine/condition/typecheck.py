"""Type-checking a condition against the subject's fields and the rule's params.

Types are ``number``, ``string``, ``bool`` and lists: a ``list`` field is a list of strings; list literals
and list-valued params are ``list[number]``, ``list[string]``, ``list[bool]`` (or ``list[]`` when empty).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

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
    unparse,
)
from engine.condition.parser import Condition, parse
from engine.errors import ConditionTypeError

FieldType: TypeAlias = Literal["number", "string", "bool", "list"]
"""The type of a subject field, as subject schemas declare it (``list`` is a list of strings)."""

FIELD_TYPES: frozenset[str] = frozenset({"number", "string", "bool", "list"})
SCALARS: frozenset[str] = frozenset({"number", "string", "bool"})

ConditionLike: TypeAlias = Condition | Expr | str
"""What the public functions accept: a parsed condition, a bare tree, or condition text (parsed here)."""


def as_condition(cond: ConditionLike) -> Condition:
    """A :class:`Condition` for any accepted form (a bare tree gets its text from :func:`unparse`)."""
    if isinstance(cond, Condition):
        return cond
    if isinstance(cond, str):
        return parse(cond)
    return Condition(unparse(cond), cond)


def value_type(value: Any) -> str | None:
    """The condition type of a param value, or None when a condition cannot use it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number" if math.isfinite(value) else None
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        kinds = {value_type(item) for item in value}
        if not kinds:
            return "list[]"
        if len(kinds) == 1 and (kind := kinds.pop()) in SCALARS:
            return f"list[{kind}]"
    return None


def _field_type(kind: str) -> str:
    return "list[string]" if kind == "list" else kind


def _shown(kind: str) -> str:
    return {"list[string]": "a list of strings", "list[]": "an empty list"}.get(
        kind, f"a list of {kind[5:-1]}s" if kind.startswith("list[") else f"a {kind}"
    )


class _Checker:
    def __init__(self, cond: Condition, fields: Mapping[str, str], params: Mapping[str, Any]) -> None:
        self.text = cond.text
        self.fields = fields
        self.params = params

    def error(self, message: str, node: Expr, *, suggestion: str | None = None) -> ConditionTypeError:
        found = names(node)
        return ConditionTypeError(
            message,
            text=self.text,
            column=node.column or None,
            field=found[0].path if found else None,
            suggestion=suggestion,
        )

    def name_type(self, node: Name) -> str:
        path = node.path
        in_fields, in_params = path in self.fields, path in self.params
        if in_fields and in_params:
            raise self.error(
                f"'{path}' is both a subject field and a param",
                node,
                suggestion=f"rename the param '{path}'",
            )
        if in_fields:
            kind = self.fields[path]
            if kind not in FIELD_TYPES:
                raise self.error(f"field '{path}' has unknown type {kind!r}", node)
            return _field_type(kind)
        if in_params:
            kind_or_none = value_type(self.params[path])
            if kind_or_none is None:
                raise self.error(
                    f"param '{path}' = {self.params[path]!r} cannot be used in a condition",
                    node,
                    suggestion="params used in conditions are numbers, strings, true/false or lists of them",
                )
            return kind_or_none
        close = difflib.get_close_matches(path, [*self.fields, *self.params], n=1, cutoff=0.6)
        raise self.error(
            f"unknown field '{path}'",
            node,
            suggestion=f"did you mean '{close[0]}'?" if close else None,
        )

    def scalar(self, node: Expr, what: str) -> str:
        kind = self.infer(node)
        if kind not in SCALARS:
            raise self.error(
                f"{unparse(node)} is {_shown(kind)}; {what}",
                node,
                suggestion="lists can only be used with in / not in",
            )
        return kind

    def infer(self, node: Expr) -> str:  # noqa: C901 - one case per node type
        match node:
            case Number():
                if not math.isfinite(node.value):
                    raise self.error(f"{node.value} is not a finite number", node)
                return "number"
            case String():
                return "string"
            case Bool():
                return "bool"
            case Name():
                return self.name_type(node)
            case ListLit(items):
                kinds = {self.scalar(item, "a list holds numbers, strings or true/false") for item in items}
                if len(kinds) > 1:
                    raise self.error("a list mixes types", node, suggestion="put only one type in a list")
                return f"list[{kinds.pop()}]" if kinds else "list[]"
            case Neg(operand):
                if self.scalar(operand, "only numbers can be negated") != "number":
                    raise self.error(f"only numbers can be negated, not {unparse(operand)}", node)
                return "number"
            case Arith(op, left, right):
                for side in (left, right):
                    kind = self.scalar(side, f"'{op}' needs numbers")
                    if kind != "number":
                        raise self.error(f"'{op}' needs numbers, but {unparse(side)} is {_shown(kind)}", side)
                return "number"
            case Compare(op, left, right):
                lk = self.scalar(left, f"'{op}' compares numbers, strings or true/false")
                rk = self.scalar(right, f"'{op}' compares numbers, strings or true/false")
                if lk != rk:
                    raise self.error(
                        f"cannot compare {unparse(left)} ({lk}) with {unparse(right)} ({rk})",
                        node,
                        suggestion="compare a number with a number, a string with a string",
                    )
                if op not in ("==", "!=") and lk == "bool":
                    raise self.error(f"'{op}' does not apply to true/false", node, suggestion="use == or !=")
                return "bool"
            case In(item, container, negated):
                word = "not in" if negated else "in"
                ck = self.infer(container)
                if not ck.startswith("list["):
                    raise self.error(
                        f"'{word}' needs a list on its right, but {unparse(container)} is {_shown(ck)}",
                        container,
                        suggestion=f"write x {word} ['a', 'b'] or 'a' {word} <list field>",
                    )
                ik = self.scalar(item, f"'{word}' looks for a number, string or true/false")
                if ck != "list[]" and ck != f"list[{ik}]":
                    raise self.error(
                        f"{unparse(item)} is {_shown(ik)} and can never be in {unparse(container)} "
                        f"({_shown(ck)})",
                        node,
                    )
                return "bool"
            case Not(operand):
                self.condition(operand, "not")
                return "bool"
            case And(operands) | Or(operands):
                word = "and" if isinstance(node, And) else "or"
                for operand in operands:
                    self.condition(operand, word)
                return "bool"
        raise AssertionError(f"unknown node {node!r}")

    def condition(self, node: Expr, context: str | None = None) -> None:
        kind = self.infer(node)
        if kind != "bool":
            where = f"'{context}' needs true/false" if context else "a condition must be true or false"
            example = f"{unparse(node)} > 0" if kind == "number" else f"{unparse(node)} == 'some value'"
            raise self.error(
                f"{where}, but {unparse(node)} is {_shown(kind)}",
                node,
                suggestion=f"compare it, e.g. {example}" if kind in ("number", "string") else None,
            )


def check(cond: ConditionLike, fields: Mapping[str, str], params: Mapping[str, Any]) -> None:
    """Raise :class:`ConditionTypeError` unless ``cond`` is a well-typed true/false condition.

    ``fields`` maps each subject field to its :data:`FieldType`; ``params`` are the rule's constants.
    """
    condition = as_condition(cond)
    _Checker(condition, fields, params).condition(condition.root)


def infer(cond: Condition, node: Expr, fields: Mapping[str, str], params: Mapping[str, Any]) -> str:
    """The type of sub-expression ``node`` of ``cond`` (raises like :func:`check`)."""
    return _Checker(cond, fields, params).infer(node)
