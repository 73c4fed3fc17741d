"""Decision tables in a pack: a bracket table that a policy officer edits in WPS or Excel.

A rule param written ``{table: dues_brackets.csv}`` (or ``.xlsx``, first
sheet) is replaced at load time by the table's content.  A bracket table has
the columns ``category, lower, upper, rate, fixed``: each row covers incomes
above ``lower`` up to and including ``upper`` (an empty ``upper`` is open
ended, the first row of a category includes its ``lower``), at ``rate``; or a
``fixed`` amount a month for the whole category.  Gaps and overlaps between
the brackets of a category are errors (3000–5000 then 5001–10000: where
would 5000.5 go?).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, get_args

from engine.pack.errors import PackProblem
from facts.models import MemberCategory
from facts.validate import suggest

COLUMNS = ["category", "lower", "upper", "rate", "fixed"]


#: member categories a bracket or fixed amount may name (facts.models.MemberCategory)
KNOWN_CATEGORIES: tuple[str, ...] = get_args(MemberCategory)


@dataclass(frozen=True)
class Bracket:
    """Incomes above ``lower`` up to and including ``upper`` (None: open ended) pay ``rate``."""

    lower: Decimal
    upper: Decimal | None
    rate: Decimal
    where: int  # the CSV/XLSX line, or the position in an inline list


def _unknown_category(category: str) -> tuple[str, str | None]:
    hint = suggest(category, list(KNOWN_CATEGORIES)).strip(" ()") or None
    return f"unknown member category {category!r}; expected one of {', '.join(KNOWN_CATEGORIES)}", hint


def check_brackets(
    category: str, items: list[Bracket], sorted_by_lower: bool = False, unit: str = "line"
) -> list[tuple[Bracket, str, str, str | None]]:
    """What is wrong with one category's brackets, in order: ``(bracket, column, message, hint)``.

    The same checks for a decision table and for brackets written in the rule file: a known category,
    rates between 0 and 1, each bracket above the one before it (sorted) with no gap or overlap,
    starting at 0 and open ended at the top.  ``unit`` names what ``Bracket.where`` counts (line, item).
    """
    found: list[tuple[Bracket, str, str, str | None]] = []
    if not items:
        return found
    if category not in KNOWN_CATEGORIES:
        found.append((items[0], "category", *_unknown_category(category)))
    for b in items:
        if not Decimal(0) <= b.rate <= Decimal(1):
            hint = f"write {b.rate / 100} for {b.rate}%" if Decimal(1) < b.rate <= Decimal(100) else None
            found.append((b, "rate", f"{category}: rate {b.rate} is not a ratio between 0 and 1", hint))
        if b.upper is not None and b.upper <= b.lower:
            hint = None if sorted_by_lower else "list the brackets from the lowest upper bound up"
            found.append((b, "upper", f"{category}: upper {b.upper} is not above lower {b.lower}", hint))
    for prev, cur in zip(items, items[1:], strict=False):
        if prev.upper is None:
            found.append(
                (
                    cur,
                    "lower",
                    f"{category}: bracket from {cur.lower} overlaps the open-ended one before it",
                    None,
                )
                if sorted_by_lower
                else (
                    prev,
                    "upper",
                    f"{category}: only the last bracket may be open ended (upper empty)",
                    None,
                )
            )
        elif cur.lower < prev.upper:
            found.append(
                (
                    cur,
                    "lower",
                    f"{category}: bracket from {cur.lower} overlaps the one on {unit} {prev.where}",
                    None,
                )
            )
        elif cur.lower > prev.upper:
            found.append(
                (
                    cur,
                    "lower",
                    f"{category}: gap between {prev.upper} ({unit} {prev.where}) and {cur.lower}: incomes in between have no rate",
                    f"start this bracket at {prev.upper} (brackets include their upper bound)",
                )
            )
    if items[0].lower != 0:
        found.append((items[0], "lower", f"{category}: the first bracket must start at 0", None))
    if items[-1].upper is not None:
        found.append(
            (
                items[-1],
                "upper",
                f"{category}: incomes above {items[-1].upper} have no rate",
                "leave upper empty on the last bracket (open ended)",
            )
        )
    return found


def _rows(path: Path) -> list[list[str]]:
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
        sheet = book.worksheets[0]
        rows = [["" if c is None else str(c) for c in row] for row in sheet.iter_rows(values_only=True)]
        book.close()
        return rows
    text = path.read_bytes().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def _num(text: str) -> Decimal | None:
    text = text.strip()
    if not text:
        return None
    return Decimal(text)


def load_bracket_table(path: Path, rule: str | None) -> tuple[dict[str, Any], list[PackProblem]]:
    """``({"brackets": {...}, "fixed": {...}}, problems)`` from a bracket table file."""
    shown = str(path)
    problems: list[PackProblem] = []

    def problem(line: int, field: str, message: str, hint: str | None = None) -> None:
        problems.append(PackProblem(shown, line, rule, field, message, hint))

    if not path.is_file():
        problem(0, "table", "decision table file not found")
        return {}, problems
    rows = [r for r in _rows(path) if any(c.strip() for c in r)]
    if not rows:
        problem(1, "table", "the decision table is empty")
        return {}, problems
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        problem(1, "table", f"missing column(s): {', '.join(missing)}; expected {', '.join(COLUMNS)}")
        return {}, problems
    index = {c: header.index(c) for c in COLUMNS}
    brackets: dict[str, list[Bracket]] = {}
    fixed: dict[str, float] = {}
    fixed_lines: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        cells = {c: (row[i].strip() if i < len(row) else "") for c, i in index.items()}
        category = cells["category"]
        if not category:
            problem(line, "category", "empty category")
            continue
        numbers: dict[str, Decimal | None] = {}
        for column in ("lower", "upper", "rate", "fixed"):
            try:
                numbers[column] = _num(cells[column])
            except InvalidOperation:
                problem(line, column, f"{cells[column]!r} is not a number")
        if len(numbers) < 4:
            continue
        lower, upper, rate, fix = (numbers[c] for c in ("lower", "upper", "rate", "fixed"))
        if fix is not None:
            if rate is not None:
                problem(line, "fixed", "give either a rate or a fixed amount, not both")
            fixed[category] = float(fix)
            fixed_lines[category] = line
            if fix < 0:
                problem(line, "fixed", f"{category}: fixed amount {fix} is negative")
            continue
        if rate is None or lower is None:
            problem(line, "rate", "a bracket needs lower and rate (or a fixed amount)")
            continue
        brackets.setdefault(category, []).append(Bracket(lower, upper, rate, line))
    out: dict[str, list[list[float | None]]] = {}
    for category, line in fixed_lines.items():
        if category not in KNOWN_CATEGORIES:
            problem(line, "category", *_unknown_category(category))
    for category, items in brackets.items():
        items.sort(key=lambda b: b.lower)
        for bracket, column, message, hint in check_brackets(category, items, sorted_by_lower=True):
            problem(bracket.where, column, message, hint)
        if category in fixed:
            problem(items[0].where, "category", f"{category}: has both brackets and a fixed amount")
        out[category] = [[float(b.upper) if b.upper is not None else None, float(b.rate)] for b in items]
    return {"brackets": out, "fixed": fixed}, problems


def resolve_tables(raw: Any, folder: Path) -> tuple[list[Path], list[PackProblem], dict[int, frozenset[str]]]:
    """Replace every ``{table: FILE}`` param in a raw rule file, in place.

    Returns the files read, the problems found in them, and per rule (its index in the file) the
    params that came from a table (checked here with the table's lines, not again as inline params).
    """
    used: list[Path] = []
    problems: list[PackProblem] = []
    from_tables: dict[int, frozenset[str]] = {}
    rules = raw.get("rules") if isinstance(raw, dict) else None
    if not isinstance(rules, list):
        return used, problems, from_tables
    for index, rule in enumerate(rules):
        params = rule.get("params") if isinstance(rule, dict) else None
        if not isinstance(params, dict):
            continue
        for name, value in list(params.items()):
            if isinstance(value, dict) and set(value) == {"table"}:
                name_given = Path(str(value["table"]))
                if name_given.is_absolute() or ".." in name_given.parts:
                    problems.append(
                        PackProblem(
                            str(folder),
                            0,
                            rule.get("id"),
                            f"params.{name}",
                            f"decision table {name_given} is outside the pack folder",
                            "put the table beside the rule file and name it relative to it",
                        )
                    )
                    continue
                path = folder / name_given
                used.append(path)
                content, found = load_bracket_table(path, rule.get("id"))
                problems.extend(found)
                if name == "brackets" and content:
                    params["brackets"] = content["brackets"]
                    params.setdefault("fixed", {}).update(content["fixed"])
                    from_tables[index] = from_tables.get(index, frozenset()) | {"brackets", "fixed"}
                else:
                    params[name] = content
                    from_tables[index] = from_tables.get(index, frozenset()) | {name}
    return used, problems, from_tables
