"""The syntax tree of a condition.  Nodes are immutable; ``column`` (1-based) is ignored by equality."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

ArithOp: TypeAlias = Literal["+", "-", "*", "/"]
CompareOp: TypeAlias = Literal["<", "<=", ">", ">=", "==", "!="]


@dataclass(frozen=True)
class Number:
    value: int | float
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class String:
    value: str
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Bool:
    value: bool
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class ListLit:
    """``[a, b, …]`` — only meaningful on the right of ``in`` / ``not in``."""

    items: tuple[Expr, ...]
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Name:
    """A subject field or a param; ``path`` may be dotted (``minutes.content``)."""

    path: str
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Neg:
    operand: Expr
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Arith:
    op: ArithOp
    left: Expr
    right: Expr
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Compare:
    op: CompareOp
    left: Expr
    right: Expr
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class In:
    """``item in container`` (``negated``: ``item not in container``)."""

    item: Expr
    container: Expr
    negated: bool = False
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Not:
    operand: Expr
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class And:
    operands: tuple[Expr, ...]
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Or:
    operands: tuple[Expr, ...]
    column: int = field(default=0, compare=False)


Expr: TypeAlias = Number | String | Bool | ListLit | Name | Neg | Arith | Compare | In | Not | And | Or

NEGATED: dict[CompareOp, CompareOp] = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
"""``not (a OP b)`` is ``a NEGATED[OP] b`` (no NaN can reach a condition)."""

MIRRORED: dict[CompareOp, CompareOp] = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
"""``a OP b`` is ``b MIRRORED[OP] a``."""


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of ``expr``."""
    match expr:
        case ListLit(items):
            return items
        case Neg(operand) | Not(operand):
            return (operand,)
        case Arith(_, left, right) | Compare(_, left, right):
            return (left, right)
        case In(item, container):
            return (item, container)
        case And(operands) | Or(operands):
            return operands
        case _:
            return ()


def walk(expr: Expr) -> Iterator[Expr]:
    """``expr`` and every node below it, parents first."""
    yield expr
    for child in children(expr):
        yield from walk(child)


def names(expr: Expr) -> list[Name]:
    """Every name the expression reads, in order of appearance."""
    return [node for node in walk(expr) if isinstance(node, Name)]


_PRECEDENCE: dict[type, int] = {Or: 1, And: 2, Not: 3, Compare: 4, In: 4, Neg: 7}
_ARITH_PRECEDENCE: dict[str, int] = {"+": 5, "-": 5, "*": 6, "/": 6}


def _precedence(expr: Expr) -> int:
    if isinstance(expr, Arith):
        return _ARITH_PRECEDENCE[expr.op]
    return _PRECEDENCE.get(type(expr), 8)


def _literal_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\t", "\\t")
        return "'" + escaped + "'"
    return repr(value)


def unparse(expr: Expr) -> str:
    """Condition text for ``expr`` that parses back to an equal tree (minimal parentheses)."""

    def sub(child: Expr, minimum: int) -> str:
        text = unparse(child)
        return f"({text})" if _precedence(child) < minimum else text

    match expr:
        case Number(value) | String(value) | Bool(value):
            return _literal_text(value)
        case ListLit(items):
            return "[" + ", ".join(unparse(item) for item in items) + "]"
        case Name(path):
            return path
        case Neg(operand):
            return "-" + sub(operand, 7)
        case Arith(op, left, right):
            level = _ARITH_PRECEDENCE[op]
            return f"{sub(left, level)} {op} {sub(right, level + 1)}"
        case Compare(op, left, right):
            return f"{sub(left, 5)} {op} {sub(right, 5)}"
        case In(item, container, negated):
            return f"{sub(item, 5)} {'not in' if negated else 'in'} {sub(container, 5)}"
        case Not(operand):
            return "not " + sub(operand, 3)
        case And(operands):
            return " and ".join(sub(operand, 3) for operand in operands)
        case Or(operands):
            return " or ".join(sub(operand, 2) for operand in operands)
    raise AssertionError(f"unknown node {expr!r}")
