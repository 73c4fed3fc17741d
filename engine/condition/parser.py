"""Condition text → syntax tree (lark, LALR).  No ``eval``: the grammar below is the whole language."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import cast

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from engine.condition.ast import (
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
)
from engine.errors import ConditionSyntaxError

GRAMMAR = r"""
?start: or_expr

?or_expr: and_expr ("or" and_expr)*
?and_expr: not_expr ("and" not_expr)*
?not_expr: NOT not_expr                  -> not_op
         | comparison
?comparison: sum
           | sum COMP_OP sum             -> compare
           | sum "in" sum                -> in_op
           | sum "not" "in" sum          -> not_in_op
?sum: product
    | sum (PLUS | MINUS) product         -> arith
?product: unary
        | product (STAR | SLASH) unary   -> arith
?unary: MINUS unary                      -> neg
      | atom
?atom: NUMBER                            -> number
     | STRING                            -> string
     | TRUE                              -> true
     | FALSE                             -> false
     | NAME ("." NAME)*                  -> name
     | LSQB [or_expr ("," or_expr)*] "]" -> list_lit
     | "(" or_expr ")"

NOT: "not"
TRUE: "true"
FALSE: "false"
COMP_OP: "<=" | ">=" | "==" | "!=" | "<" | ">"
PLUS: "+"
MINUS: "-"
STAR: "*"
SLASH: "/"
LSQB: "["
NAME: /[A-Za-z_][A-Za-z0-9_]*/
NUMBER: /(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/
STRING: /'(\\.|[^'\\\n])*'/ | /"(\\.|[^"\\\n])*"/

%ignore /[ \t\r\n]+/
"""

_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})

_EXPECTED_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "COMP_OP": "a comparison",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "MINUS": "'-'",
    "NOT": "'not'",
    "TRUE": "'true'",
    "FALSE": "'false'",
    "AND": "'and'",
    "OR": "'or'",
    "IN": "'in'",
}


@dataclass(frozen=True)
class Condition:
    """A parsed condition: its source text and its tree."""

    text: str
    root: Expr

    def __str__(self) -> str:
        return self.text


@cache
def _parser() -> Lark:
    # Built on first use (not at import time) and shared: a Lark parser is immutable once built.
    return Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


# Bounds on what a condition may be (issue 11): the checker, compiler and evaluator walk the tree
# recursively, so 1,000 nested ``not`` raised RecursionError; a rule is a sentence, not a data file.
MAX_TEXT = 2000  # characters
MAX_DEPTH = 64  # nested not / - / parentheses / arithmetic


def parse(text: str) -> Condition:
    """Parse condition ``text``; raise :class:`ConditionSyntaxError` with the 1-based column of the problem."""
    if not text.strip():
        raise ConditionSyntaxError("the condition is empty", text=text, column=1)
    if len(text) > MAX_TEXT:
        raise ConditionSyntaxError(
            f"the condition is {len(text)} characters long, at most {MAX_TEXT}",
            text=text[:80] + "…",
            column=MAX_TEXT + 1,
            suggestion="split it into several rules, or derive the value it tests",
        )
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    depth, deepest = _depth(tree)
    if depth > MAX_DEPTH:
        raise ConditionSyntaxError(
            f"the condition nests {depth} levels deep, at most {MAX_DEPTH}",
            text=text,
            column=_column(deepest) or 1,
            suggestion="simplify it ('not not x' is x; a long sum can be a derived value)",
        )
    return Condition(text, _build(tree, text))


def _depth(tree: Tree[Token]) -> tuple[int, Tree[Token] | Token]:
    """The depth of the parse tree (without recursion: the tree may be thousands deep) and its deepest node."""
    best: tuple[int, Tree[Token] | Token] = (0, tree)
    stack: list[tuple[Tree[Token] | Token, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > best[0]:
            best = (depth, node)
        if isinstance(node, Tree):
            stack.extend((kid, depth + 1) for kid in node.children if isinstance(kid, Tree))
    return best


def _syntax_error(text: str, exc: UnexpectedInput) -> ConditionSyntaxError:
    if isinstance(exc, UnexpectedEOF):
        return ConditionSyntaxError(
            "the condition ends too early",
            text=text,
            column=len(text.rstrip()) + 1,
            suggestion=_expected(exc),
        )
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        char = text[pos] if pos < len(text) else ""
        hint = None
        if char in "'\"":
            hint = "close the string with a matching quote"
        elif char in "=!&|":
            hint = "comparisons are < <= > >= == !=; combine conditions with and / or / not"
        return ConditionSyntaxError(
            f"unexpected character {char!r}", text=text, column=exc.column, suggestion=hint
        )
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            return ConditionSyntaxError(
                "the condition ends too early",
                text=text,
                column=len(text.rstrip()) + 1,
                suggestion=_expected(exc),
            )
        hint = _expected(exc)
        if token.type == "COMP_OP" and "COMP_OP" not in exc.expected:
            hint = "comparisons cannot be chained: write a < b and b < c"
        return ConditionSyntaxError(
            f"unexpected {str(token)!r}", text=text, column=token.column, suggestion=hint
        )
    return ConditionSyntaxError(str(exc), text=text, column=getattr(exc, "column", None))


def _expected(exc: UnexpectedInput) -> str | None:
    expected = sorted({_EXPECTED_WORDS.get(t, t.lower()) for t in getattr(exc, "expected", ()) or ()})
    if not expected:
        return None
    return "expected " + ", ".join(expected[:6]) + (" …" if len(expected) > 6 else "")


def _column(node: Tree[Token] | Token) -> int:
    if isinstance(node, Token):
        return node.column or 0
    return node.meta.column if not node.meta.empty else 0


def _build(node: Tree[Token] | Token, text: str) -> Expr:
    if isinstance(node, Token):  # pragma: no cover - every token is wrapped by an alias rule
        raise AssertionError(f"bare token {node!r}")
    kind = node.data
    col = _column(node)
    kids = node.children
    match kind:
        case "number":
            return Number(_number(str(kids[0]), text, col), col)
        case "string":
            return String(_string(str(kids[0]), text, col), col)
        case "true":
            return Bool(True, col)
        case "false":
            return Bool(False, col)
        case "name":
            parts = [str(k) for k in kids]
            for part, tok in zip(parts, kids, strict=True):
                if part in _KEYWORDS:
                    raise ConditionSyntaxError(
                        f"{part!r} is a keyword, not a name", text=text, column=_column(tok)
                    )
            return Name(".".join(parts), col)
        case "list_lit":
            return ListLit(tuple(_build(k, text) for k in kids if isinstance(k, Tree)), col)
        case "neg":
            operand = _build(kids[1], text)
            if isinstance(operand, Number):  # "-1" is the literal -1
                return Number(-operand.value, col)
            return Neg(operand, col)
        case "arith":
            left, op, right = kids
            return Arith(cast(ArithOp, str(op)), _build(left, text), _build(right, text), col)
        case "compare":
            left, op, right = kids
            return Compare(cast(CompareOp, str(op)), _build(left, text), _build(right, text), col)
        case "in_op":
            return In(_build(kids[0], text), _build(kids[1], text), False, col)
        case "not_in_op":
            return In(_build(kids[0], text), _build(kids[1], text), True, col)
        case "not_op":
            return Not(_build(kids[1], text), col)
        case "and_expr":
            return And(_flatten(And, [_build(k, text) for k in kids]), col)
        case "or_expr":
            return Or(_flatten(Or, [_build(k, text) for k in kids]), col)
    raise AssertionError(f"unknown rule {kind!r}")


def _flatten(kind: type[And] | type[Or], operands: list[Expr]) -> tuple[Expr, ...]:
    out: list[Expr] = []
    for operand in operands:
        out.extend(operand.operands if isinstance(operand, kind) else (operand,))
    return tuple(out)


def _number(token: str, text: str, column: int) -> int | float:
    if any(c in token for c in ".eE"):
        value = float(token)
        if value in (float("inf"), float("-inf")):
            raise ConditionSyntaxError(f"the number {token} is too large", text=text, column=column)
        return value
    if len(token.lstrip("0")) > 18:  # beyond what a float or durable_rules holds (the checker takes floats)
        raise ConditionSyntaxError(f"the number {token[:20]}… is too large", text=text, column=column)
    return int(token)


_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}


def _string(token: str, text: str, column: int) -> str:
    body = token[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            escaped = body[i + 1]  # the token regex never ends a string on a lone backslash
            if escaped not in _ESCAPES:
                raise ConditionSyntaxError(
                    f"unknown escape \\{escaped} in a string",
                    text=text,
                    column=column + i + 1,
                    suggestion="use \\\\ for a backslash",
                )
            out.append(_ESCAPES[escaped])
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)
