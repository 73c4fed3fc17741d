"""Typed rule params and message templates, checked when a pack loads.

A param is typed by its **name** (the names the standard pack uses mean the same thing in every rule)
and by its **role** (what the condition compares it with):

========================  ============================================================================
``threshold``             a ratio in [0, 1] (a number or an exact fraction ``"2/3"``)
``at_least``, ``limit``,  a whole number ≥ 0
``max_days``
``brackets``              dues rules: member category → ``[[upper or null, rate], …]`` sorted by the
                          upper bound, the last open ended, rates in [0, 1] — the same checks as a
                          decision table (:func:`engine.pack.tables.check_brackets`)
``fixed``                 dues rules: member category → yuan a month (≥ 0)
``required_parts``        meeting rules: the parts of the minutes that must be filled in
                          (:data:`MINUTES_PARTS`); without it, time, attendees, content, outcome and
                          recorder
any other name            a number, string, true/false or a list of them (a constant for the condition)
========================  ============================================================================

Whatever its name, a param (or number) compared with a ratio field (``attendance_ratio``,
``copy_similarity``) must lie in [0, 1], and one compared with ``copy_similarity`` must not be below
the copy detector's floor (:func:`engine.subjects.similarity.detector_floor`): the MinHash search
misses more similar pairs below it, so such a threshold would promise what the detector cannot keep.

Message placeholders are plain names of the subject's fields or the rule's params, with an optional
format spec from a small set (``{threshold:.0%}``, ``{amount:,.2f}``); attribute or index look-ups
(``{x.__class__}``, ``{x[9]}``), conversions (``{x!r}``), widths and nested fields are refused.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.condition import ast
from engine.pack.model import MeetingSubject, Rule
from engine.pack.tables import KNOWN_CATEGORIES, Bracket, _unknown_category, check_brackets
from facts.validate import suggest

#: parts of a meeting's minutes a rule may require: name -> (meeting column, or None for the
#: attendance list, and the Chinese label used in messages)
MINUTES_PARTS: dict[str, tuple[str | None, str]] = {
    "time": ("minutes_time", "时间"),
    "place": ("minutes_place", "地点"),
    "attendees": (None, "参会人员"),
    "agenda": ("minutes_agenda", "议题"),
    "content": ("minutes_content", "内容"),
    "outcome": ("minutes_outcome", "成效"),
    "recorder": ("minutes_recorder", "记录人"),
}
#: required when a meeting rule does not say (the 0.1.0 behaviour: 四个到位 and a recorder)
DEFAULT_MINUTES_PARTS = ("time", "attendees", "content", "outcome", "recorder")

#: subject fields whose values are ratios in [0, 1]
RATIO_FIELDS = frozenset({"attendance_ratio", "copy_similarity"})

#: format specs a message placeholder may carry: thousands separator and/or 0–4 decimals, fixed or %
_SPEC = re.compile(r",?(\.[0-4][f%])?")
_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_FRACTION = re.compile(r"\s*\d+\s*/\s*\d+\s*")
_COUNT_NAMES = ("at_least", "limit", "max_days")
_SUBJECT_ONLY = {"brackets": "dues", "fixed": "dues", "required_parts": "meeting"}


@dataclass(frozen=True)
class ParamIssue:
    field: str  # e.g. params.threshold, params.brackets.retired[1], message, when
    message: str
    hint: str | None = None


def _number(value: Any) -> float | None:
    """A number, or an exact fraction written ``"a/b"``; None for anything else (bool included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _FRACTION.fullmatch(value):
        a, b = (int(x) for x in value.split("/"))
        return a / b if b else None
    return None


def _ratio(field: str, value: Any) -> list[ParamIssue]:
    number = _number(value)
    if number is None:
        return [
            ParamIssue(
                field, f'{value!r} is not a ratio (a number between 0 and 1, or a fraction like "2/3")'
            )
        ]
    if not 0 <= number <= 1:
        hint = f"write {number / 100:g} for {number:g}%" if 1 < number <= 100 else None
        return [ParamIssue(field, f"{value!r} is not a ratio between 0 and 1", hint)]
    return []


def _count(field: str, value: Any) -> list[ParamIssue]:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return [ParamIssue(field, f"{value!r} is not a whole number ≥ 0")]
    return []


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _brackets(field: str, value: Any) -> list[ParamIssue]:
    shape = "category → [[upper bound or null, rate], …], e.g. {in_service: [[3000, 0.005], [null, 0.01]]}"
    if not isinstance(value, dict) or not value:
        return [ParamIssue(field, f"expected {shape}")]
    issues: list[ParamIssue] = []
    for category, rows in value.items():
        where = f"{field}.{category}"
        if not isinstance(rows, list) or not rows:
            issues.append(ParamIssue(where, f"expected a list of [upper bound or null, rate]; {shape}"))
            continue
        items: list[Bracket] = []
        lower = Decimal(0)
        for i, row in enumerate(rows):
            upper = _decimal(row[0]) if isinstance(row, list) and len(row) == 2 else None
            rate = _decimal(row[1]) if isinstance(row, list) and len(row) == 2 else None
            if rate is None or (upper is None and row[0] is not None):
                issues.append(ParamIssue(f"{where}[{i}]", f"{row!r} is not [upper bound or null, rate]"))
                items = []
                break
            items.append(Bracket(lower, upper, rate, i))
            lower = upper if upper is not None else lower
        for bracket, _column, message, hint in check_brackets(str(category), items, unit="item"):
            issues.append(ParamIssue(f"{where}[{bracket.where}]", message, hint))
    return issues


def _fixed(field: str, value: Any) -> list[ParamIssue]:
    if not isinstance(value, dict):
        return [ParamIssue(field, "expected member category → yuan a month, e.g. {student: 0.2}")]
    issues = []
    for category, amount in value.items():
        if category not in KNOWN_CATEGORIES:
            issues.append(ParamIssue(f"{field}.{category}", *_unknown_category(str(category))))
        number = _decimal(amount)
        if number is None or number < 0:
            issues.append(ParamIssue(f"{field}.{category}", f"{amount!r} is not an amount ≥ 0"))
    return issues


def _parts(field: str, value: Any) -> list[ParamIssue]:
    known = list(MINUTES_PARTS)
    if not isinstance(value, list) or not value:
        return [ParamIssue(field, f"expected a list of minutes parts, some of {', '.join(known)}")]
    issues = []
    for part in value:
        if part not in MINUTES_PARTS:
            hint = suggest(str(part), known).strip(" ()") or f"one of {', '.join(known)}"
            issues.append(ParamIssue(field, f"unknown part of the minutes {part!r}", hint))
    if len(set(map(str, value))) != len(value):
        issues.append(ParamIssue(field, "a part is listed twice"))
    return issues


def _constant(field: str, value: Any) -> list[ParamIssue]:
    scalar = (int, float, str, bool)
    if isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(v, scalar) for v in value)):
        return []
    return [
        ParamIssue(
            field,
            f"{value!r}: a param of this name is a constant for the condition: a number, text, "
            "true/false or a list of them",
            f"known table params: {', '.join(sorted(_SUBJECT_ONLY))}",
        )
    ]


_BY_NAME = {
    "threshold": _ratio,
    **dict.fromkeys(_COUNT_NAMES, _count),
    "brackets": _brackets,
    "fixed": _fixed,
    "required_parts": _parts,
}


def _slots(node: Any) -> dict[str, Any]:
    names = getattr(node, "__dataclass_fields__", {})
    return {n: getattr(node, n) for n in names}


def check_params(rule: Rule, expr: Any, from_tables: frozenset[str] = frozenset()) -> list[ParamIssue]:
    """Every problem with ``rule``'s params (``expr``: its parsed condition, or None if it did not parse).

    ``from_tables`` are params read from a decision table, checked already with the table's lines.
    """
    issues: list[ParamIssue] = []
    for name, value in rule.params.items():
        field = f"params.{name}"
        owner = _SUBJECT_ONLY.get(name)
        if owner and rule.subject.type != owner:
            issues.append(
                ParamIssue(field, f"{name} is read by {owner} rules only, not by {rule.subject.type} rules")
            )
            continue
        if name in from_tables:
            continue
        issues.extend(_BY_NAME.get(name, _constant)(field, value))
    if expr is not None:
        issues.extend(_roles(rule, expr))
    return issues


def _roles(rule: Rule, expr: Any) -> list[ParamIssue]:
    from engine.subjects.similarity import detector_floor

    issues: list[ParamIssue] = []
    seen: set[tuple[str, str]] = set()
    root = getattr(expr, "root", expr)
    for field_name, other in _walk_comparisons(root):
        if field_name not in RATIO_FIELDS:
            continue
        if isinstance(other, ast.Name):
            if other.path not in rule.params:
                continue
            where, value = f"params.{other.path}", rule.params[other.path]
        else:
            where, value = "when", other.value
        if (where, field_name) in seen:
            continue
        seen.add((where, field_name))
        if where != "params.threshold":  # threshold is checked by name already
            issues.extend(
                ParamIssue(i.field, f"compared with {field_name}: {i.message}", i.hint)
                for i in _ratio(where, value)
            )
        number = _number(value)
        if field_name == "copy_similarity" and number is not None and 0 < number <= 1:
            floor = detector_floor()
            if number < floor:
                issues.append(
                    ParamIssue(
                        where,
                        f"{value!r} is below the copy detector's floor {floor:g}: under it the MinHash search "
                        "misses more than 1 similar pair in 100, so findings at this threshold would be incomplete",
                        f"use a threshold of at least {floor:g}",
                    )
                )
            spec = rule.subject
            if (
                isinstance(spec, MeetingSubject)
                and "copy_floor" in spec.model_fields_set
                and spec.copy_floor > number
            ):
                issues.append(
                    ParamIssue(
                        "subject.copy_floor",
                        f"{spec.copy_floor:g} is above the threshold {value!r} it feeds: similarities under the "
                        "floor are reported as 0 and could never reach the threshold",
                        f"set copy_floor to {number:g} or lower, or leave it out",
                    )
                )
    return issues


def _walk_comparisons(node: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(node, ast.Compare):
        for a, b in ((node.left, node.right), (node.right, node.left)):
            if isinstance(a, ast.Name) and isinstance(b, ast.Name | ast.Number):
                out.append((a.path, b))
        return out
    for child in _slots(node).values():
        for item in child if isinstance(child, tuple) else (child,):
            if isinstance(item, ast.Compare | ast.And | ast.Or | ast.Not):
                out.extend(_walk_comparisons(item))
    return out


def required_parts(rule: Rule) -> tuple[str, ...]:
    """The parts of the minutes ``rule`` requires (its ``required_parts`` param, else the default)."""
    value = rule.params.get("required_parts")
    return tuple(value) if isinstance(value, list) else DEFAULT_MINUTES_PARTS


# -- message templates -----------------------------------------------------------------------------


def check_message(
    template: str, fields: Mapping[str, str], params: Mapping[str, Any], subject_type: str
) -> list[ParamIssue]:
    """Every problem with a message template: unknown or non-plain placeholders, specs outside the set."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return [ParamIssue("message", f"is not a valid template: {exc}", "write a literal brace as {{ or }}")]
    issues: list[ParamIssue] = []
    known = sorted(set(fields) | set(params))
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if not _NAME.fullmatch(name):
            plain = re.split(r"[.\[]", name)[0]
            issues.append(
                ParamIssue(
                    "message",
                    f"placeholder {shown} is not a plain field name (no attributes, indexes or positions)",
                    f"write {{{plain}}}" if _NAME.fullmatch(plain) else None,
                )
            )
            continue
        if name not in fields and name not in params:
            hint = suggest(name, known).strip(" ()") or None
            issues.append(
                ParamIssue(
                    "message",
                    f"placeholder {{{name}}} is not a field of a {subject_type} subject nor a param",
                    hint,
                )
            )
            continue
        if conversion:
            issues.append(
                ParamIssue("message", f"placeholder {shown}: conversions (!{conversion}) are not allowed")
            )
        if spec and ("{" in spec or not _SPEC.fullmatch(spec)):
            issues.append(
                ParamIssue(
                    "message",
                    f"placeholder {shown}: format {spec!r} is not allowed",
                    "allowed: .0f–.4f, .0%–.4%, and a thousands separator in front (,.2f); no widths or fill",
                )
            )
        elif spec and not _numeric(name, fields, params):
            issues.append(
                ParamIssue(
                    "message", f"placeholder {shown}: format {spec!r} needs a number; {name} is not one"
                )
            )
    return issues


def _numeric(name: str, fields: Mapping[str, str], params: Mapping[str, Any]) -> bool:
    if name in fields:
        return fields[name] == "number"
    return _number(params.get(name)) is not None
