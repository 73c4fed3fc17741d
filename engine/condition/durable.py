"""Compiling a condition to a durable_rules JSON condition (the body of one ``m`` event clause).

The steps: type-check; substitute params and fold constants; push ``not`` down to the comparisons
(durable_rules has no ``not``); lower ``x in [a, b]`` to ``$or`` of equalities; put a single field on
the left of every comparison (durable_rules only computes on the right).  Whatever durable_rules
cannot evaluate exactly like :mod:`engine.condition.evaluate` is rejected here, at load time:

- division by anything but a non-zero constant (integer division by zero kills the process with
  SIGFPE, and ``int / int`` truncates); the constant divisor is emitted as a float so the division
  is a true one;
- numbers written in exponent notation (``1e-05``, ``1e+16``) or integers beyond 2**53, which
  durable_rules' parser rejects or rounds;
- the names ``id`` and ``sid``, which durable_rules uses for its own bookkeeping;
- ordering comparisons of strings (durable_rules compares their JSON text: ``'a' > 'a b'``);
- more than :data:`MAX_JUNCTIONS` ``$and`` / ``$or`` groups;
- ``'x' not in list_field`` compiles to ``$iall`` of ``!=``, which durable_rules makes false for an
  empty list; :class:`engine.matcher.Matcher` therefore appends :data:`LIST_SENTINEL` to list values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.condition.ast import (
    MIRRORED,
    NEGATED,
    And,
    Arith,
    ArithOp,
    Bool,
    Compare,
    CompareOp,
    Expr,
    In,
    ListLit,
    Name,
    Neg,
    Not,
    Number,
    Or,
    String,
    unparse,
    walk,
)
from engine.condition.evaluate import apply_arith, apply_compare
from engine.condition.parser import Condition
from engine.condition.typecheck import ConditionLike, as_condition, check, infer
from engine.errors import NotExpressibleError

LIST_SENTINEL = "\ufdd0partyrules:end-of-list\ufdd0"
"""Appended to every list value posted to durable_rules, so that ``$iall`` over an empty list holds."""

RESERVED_NAMES = frozenset({"id", "sid"})
MAX_JUNCTIONS = 15
# Terms of one ``$or`` (an ``in`` list becomes one): measured on durable_rules 2.0.28, an event for
# which 66 terms of an ``$or`` hold at once is refused at run time (error 303), and an ``$or`` of about
# 520 terms hangs ruleset creation.  64 is safe for any terms.
MAX_OR_TERMS = 64
"""durable_rules keeps 31 entries per expression sequence, two per ``$and`` / ``$or`` (error 113)."""
MAX_EXACT_INT = 2**53

_OPS: dict[str, str] = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "!=": "$neq"}
_ARITH_OPS: dict[str, str] = {"+": "$add", "-": "$sub", "*": "$mul", "/": "$div"}
_INVERSE: dict[ArithOp, ArithOp] = {"+": "-", "-": "+", "*": "/", "/": "*"}

_LITERALS = Number | String | Bool


def compile_durable(
    cond: ConditionLike, fields: Mapping[str, str], params: Mapping[str, Any]
) -> dict[str, Any]:
    """The durable_rules JSON for ``cond`` (to be used as ``{"all": [{"m": <this>}]}``).

    Raises :class:`ConditionTypeError` for an ill-typed condition and :class:`NotExpressibleError`
    for one durable_rules cannot evaluate faithfully.
    """
    condition = as_condition(cond)
    check(condition, fields, params)
    return _Compiler(condition, fields, params).compile()


def count_junctions(condition: Any) -> int:
    """How many ``$and`` / ``$or`` objects a durable_rules condition holds."""
    if isinstance(condition, list):
        return sum(count_junctions(item) for item in condition)
    if isinstance(condition, dict):
        own = sum(1 for key in condition if key in ("$and", "$or"))
        return own + sum(count_junctions(value) for value in condition.values())
    return 0


def widest_or(condition: Any) -> int:
    """The most terms of any one ``$or`` in a durable_rules condition (iteratively)."""
    widest, stack = 0, [condition]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            terms = node.get("$or")
            if isinstance(terms, list):
                widest = max(widest, len(terms))
            stack.extend(node.values())
    return widest


class _Compiler:
    def __init__(self, cond: Condition, fields: Mapping[str, str], params: Mapping[str, Any]) -> None:
        self.cond = cond
        self.fields = fields
        self.params = params

    def error(self, message: str, node: Expr, suggestion: str | None = None) -> NotExpressibleError:
        field = next((n.path for n in walk(node) if isinstance(n, Name)), None)
        return NotExpressibleError(
            message, text=self.cond.text, column=node.column or None, field=field, suggestion=suggestion
        )

    def compile(self) -> dict[str, Any]:
        normal = self.normal(self.fold(self.cond.root), negate=False)
        if isinstance(normal, Bool):
            always = "true" if normal.value else "false"
            raise self.error(
                f"the condition is always {always}: it does not depend on the subject",
                self.cond.root,
                suggestion="compare a subject field with the params",
            )
        emitted = self.emit(normal)
        widest = widest_or(emitted)
        if widest > MAX_OR_TERMS:
            raise self.error(
                f"the condition is too wide for durable_rules: an or (or an in list) of {widest} terms, at most "
                f"{MAX_OR_TERMS} (more fail at check time with error 303, or hang)",
                self.cond.root,
                suggestion="split the values over several rules, or derive a field that says it in one test",
            )
        junctions = count_junctions(emitted)
        if junctions > MAX_JUNCTIONS:
            raise self.error(
                f"the condition is too complex for durable_rules: {junctions} and/or groups once 'not' is "
                f"pushed down, at most {MAX_JUNCTIONS}",
                self.cond.root,
                suggestion="simplify it, or split it into several rules",
            )
        return emitted

    # -- params and constants -------------------------------------------------------------------

    def literal(self, value: Any, column: int) -> Expr:
        if isinstance(value, bool):
            return Bool(value, column)
        if isinstance(value, int | float):
            return Number(value, column)
        if isinstance(value, str):
            return String(value, column)
        return ListLit(tuple(self.literal(item, column) for item in value), column)

    def fold(self, node: Expr) -> Expr:  # noqa: C901 - one case per node type
        match node:
            case Name(path):
                if path in self.params:
                    return self.literal(self.params[path], node.column)
                if path.split(".")[0] in RESERVED_NAMES:
                    raise self.error(
                        f"the field '{path}' cannot be read by durable_rules (it is its event identity)",
                        node,
                        suggestion="give the subject the value under another name",
                    )
                return node
            case ListLit(items):
                return ListLit(tuple(self.fold(item) for item in items), node.column)
            case Neg(operand):
                folded = self.fold(operand)
                if isinstance(folded, Number):
                    return Number(apply_arith("-", 0, folded.value), node.column)
                return Neg(folded, node.column)
            case Arith(op, left, right):
                lf, rf = self.fold(left), self.fold(right)
                if isinstance(lf, Number) and isinstance(rf, Number):
                    if op == "/" and rf.value == 0:
                        raise self.error("division by zero", node)
                    return Number(apply_arith(op, lf.value, rf.value), node.column)
                return Arith(op, lf, rf, node.column)
            case Compare(op, left, right):
                return self.compare(op, self.fold(left), self.fold(right), node.column)
            case In(item, container, negated):
                return In(self.fold(item), self.fold(container), negated, node.column)
            case Not(operand):
                folded = self.fold(operand)
                return (
                    Bool(not folded.value, node.column)
                    if isinstance(folded, Bool)
                    else Not(folded, node.column)
                )
            case And(operands) | Or(operands):
                return self.junction(type(node), [self.fold(o) for o in operands], node.column)
        return node

    def compare(self, op: CompareOp, left: Expr, right: Expr, column: int) -> Expr:
        if isinstance(left, _LITERALS) and isinstance(right, _LITERALS):
            return Bool(apply_compare(op, left.value, right.value), column)
        return Compare(op, left, right, column)

    @staticmethod
    def junction(kind: type[And] | type[Or], operands: list[Expr], column: int) -> Expr:
        """``And``/``Or`` of ``operands``, flattened, with true/false constants absorbed."""
        unit = kind is And  # and: true is neutral, false absorbs; or: the reverse
        out: list[Expr] = []
        for operand in operands:
            if isinstance(operand, Bool):
                if operand.value != unit:
                    return Bool(not unit, column)
                continue
            out.extend(operand.operands if isinstance(operand, kind) else (operand,))
        if not out:
            return Bool(unit, column)
        return out[0] if len(out) == 1 else kind(tuple(out), column)

    # -- negation normal form -------------------------------------------------------------------

    def is_bool(self, node: Expr) -> bool:
        return infer(self.cond, node, self.fields, {}) == "bool"

    def normal(self, node: Expr, negate: bool) -> Expr:
        """``node`` (or its negation) built from And, Or, Compare, list-field In and Bool only."""
        match node:
            case Bool(value):
                return Bool(value != negate, node.column)
            case Name():  # a bool field
                return Compare("==", node, Bool(not negate, node.column), node.column)
            case Not(operand):
                return self.normal(operand, not negate)
            case And(operands) | Or(operands):
                kind: type[And] | type[Or] = Or if isinstance(node, And) == negate else And
                return self.junction(kind, [self.normal(o, negate) for o in operands], node.column)
            case Compare(op, left, right) if self.is_bool(left):
                return self.bool_equality(op, left, right, negate, node.column)
            case Compare(op, left, right):
                return Compare(NEGATED[op] if negate else op, left, right, node.column)
            case In(item, ListLit(items), negated):
                absent = negated != negate
                parts = [
                    self.normal(self.compare("!=" if absent else "==", item, candidate, node.column), False)
                    for candidate in items
                ]
                return self.junction(And if absent else Or, parts, node.column)
            case In(item, container, negated):
                return In(item, container, negated != negate, node.column)
        raise AssertionError(f"unexpected node {node!r}")

    def bool_equality(self, op: CompareOp, p: Expr, q: Expr, negate: bool, column: int) -> Expr:
        if isinstance(p, Name | Bool) and isinstance(q, Name | Bool):
            return Compare(NEGATED[op] if negate else op, p, q, column)
        same = (op == "==") != negate
        np, nq = Not(p, column), Not(q, column)
        both = Or((And((p, q), column), And((np, nq), column)), column)
        differ = Or((And((p, nq), column), And((np, q), column)), column)
        return self.normal(both if same else differ, False)

    # -- emitting JSON --------------------------------------------------------------------------

    def emit(self, node: Expr) -> dict[str, Any]:
        match node:
            case And(operands):
                return {"$and": [self.emit(o) for o in operands]}
            case Or(operands):
                return {"$or": [self.emit(o) for o in operands]}
            case Compare(op, left, right):
                return self.emit_compare(op, left, right, node)
            case In(item, Name(path), negated):
                if not isinstance(item, String):
                    raise self.error(
                        f"durable_rules can only look for a constant in the list '{path}'",
                        node,
                        suggestion=f"write 'some value' in {path}",
                    )
                value = self.string(item)
                if negated:
                    return {"$iall": {path: {"$neq": {"$i": value}}}}
                return {"$iany": {path: {"$i": value}}}
        raise AssertionError(f"unexpected node {node!r}")

    def emit_compare(self, op: CompareOp, left: Expr, right: Expr, node: Expr) -> dict[str, Any]:
        if op not in ("==", "!=") and infer(self.cond, left, self.fields, {}) == "string":
            raise self.error(
                f"durable_rules orders strings by their JSON text, not by their characters "
                f"('a' > 'a b' there), so {unparse(Compare(op, left, right))} cannot be judged",
                node,
                suggestion="compare numbers instead (e.g. a day number rather than an ISO date)",
            )
        if isinstance(left, Neg) and isinstance(left.operand, Name) and not isinstance(right, Name):
            # -x < r  is exactly  x > -r
            op, left, right = MIRRORED[op], left.operand, self.fold(Neg(right, right.column))
        if not isinstance(left, Name):
            if not isinstance(right, Name):
                original = self.original_compare(node.column, op)
                if original is not None:  # the sides as written, with params still named
                    left, right = original.left, original.right
                raise self.error(
                    f"durable_rules can only compute on the right of a comparison, and neither side of "
                    f"{unparse(Compare(op, left, right))} is a single field",
                    node,
                    suggestion=self.rearranged(op, left, right),
                )
            op, left, right = MIRRORED[op], right, left
        rhs = self.rhs(right)
        if op == "==":
            return {left.path: rhs}
        return {_OPS[op]: {left.path: rhs}}

    def rhs(self, node: Expr) -> Any:
        match node:
            case Number():
                return self.number(node, node.value)
            case String():
                return self.string(node)
            case Bool(value):
                return value
            case Name(path):
                return {"$m": path}
            case Neg(operand):
                return {"$sub": {"$l": 0, "$r": self.rhs(operand)}}
            case Arith("/", left, right):
                if not isinstance(right, Number):
                    raise self.error(
                        f"durable_rules can only divide by a constant, not by {unparse(right)}",
                        node,
                        suggestion="multiply the other side instead (a / b < c  →  a < c * b)",
                    )
                if right.value == 0:
                    raise self.error("division by zero", node)
                return {"$div": {"$l": self.rhs(left), "$r": self.number(right, float(right.value))}}
            case Arith(op, left, right):
                return {_ARITH_OPS[op]: {"$l": self.rhs(left), "$r": self.rhs(right)}}
        raise AssertionError(f"unexpected operand {node!r}")

    def number(self, node: Expr, value: int | float) -> int | float:
        text = repr(value)
        if isinstance(value, int) and abs(value) > MAX_EXACT_INT:
            raise self.error(f"the number {text} is too large for durable_rules", node)
        if isinstance(value, float) and ("e" in text or "n" in text):
            raise self.error(
                f"the number {text} cannot be passed to durable_rules (it would need exponent notation)",
                node,
                suggestion="scale the values so that constants stay between 0.0001 and 10**15",
            )
        return value

    def string(self, node: String) -> str:
        if node.value == LIST_SENTINEL:
            raise self.error("this string is reserved by partyrules", node)
        return node.value

    @staticmethod
    def rearranged(op: CompareOp, left: Expr, right: Expr) -> str:
        """``write x < r * y instead of x / y < r`` where one side is simple arithmetic on a field."""
        for side, other in ((left, right), (right, left)):
            if not isinstance(side, Arith):
                continue
            operator_ = op if side is left else MIRRORED[op]
            candidates = [(side.left, side.right)]
            if side.op in ("+", "*"):
                candidates.append((side.right, side.left))
            for alone, moved in candidates:
                if not isinstance(alone, Name):
                    continue
                moved_to = (
                    Arith("*", moved, other) if side.op == "/" else Arith(_INVERSE[side.op], other, moved)
                )
                caveat = ""
                if side.op in ("*", "/"):
                    if isinstance(moved, Number):
                        operator_ = MIRRORED[operator_] if moved.value < 0 else operator_
                    else:
                        caveat = f" (if {unparse(moved)} > 0)"
                better = unparse(Compare(operator_, alone, moved_to))
                return f"write {better} instead of {unparse(Compare(op, left, right))}{caveat}"
        return "put one subject field alone on one side of the comparison"

    def original_compare(self, column: int, op: CompareOp) -> Compare | None:
        for found in walk(self.cond.root):
            if isinstance(found, Compare) and found.column == column and found.op in (op, NEGATED[op]):
                return found
        return None
