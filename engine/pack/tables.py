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
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from engine.pack.errors import PackProblem

COLUMNS = ["category", "lower", "upper", "rate", "fixed"]


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
    brackets: dict[str, list[tuple[Decimal, Decimal | None, Decimal, int]]] = {}
    fixed: dict[str, float] = {}
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
            continue
        if rate is None or lower is None:
            problem(line, "rate", "a bracket needs lower and rate (or a fixed amount)")
            continue
        if upper is not None and upper <= lower:
            problem(line, "upper", f"upper {upper} is not above lower {lower}")
            continue
        brackets.setdefault(category, []).append((lower, upper, rate, line))
    out: dict[str, list[list[float | None]]] = {}
    for category, items in brackets.items():
        items.sort(key=lambda b: b[0])
        for prev, cur in zip(items, items[1:], strict=False):
            if prev[1] is None or cur[0] < prev[1]:
                problem(
                    cur[3], "lower", f"{category}: bracket from {cur[0]} overlaps the one on line {prev[3]}"
                )
            elif cur[0] > prev[1]:
                problem(
                    cur[3],
                    "lower",
                    f"{category}: gap between {prev[1]} (line {prev[3]}) and {cur[0]}: incomes in between have no rate",
                    f"start this bracket at {prev[1]} (brackets include their upper bound)",
                )
        if items and items[0][0] != 0:
            problem(items[0][3], "lower", f"{category}: the first bracket must start at 0")
        if items and items[-1][1] is not None:
            problem(
                items[-1][3],
                "upper",
                f"{category}: incomes above {items[-1][1]} have no rate",
                "leave upper empty on the last bracket (open ended)",
            )
        if category in fixed:
            problem(items[0][3], "category", f"{category}: has both brackets and a fixed amount")
        out[category] = [[float(u) if u is not None else None, float(r)] for _lo, u, r, _ln in items]
    return {"brackets": out, "fixed": fixed}, problems


def resolve_tables(raw: Any, folder: Path) -> tuple[list[Path], list[PackProblem]]:
    """Replace every ``{table: FILE}`` param in a raw rule file, in place; return the files read."""
    used: list[Path] = []
    problems: list[PackProblem] = []
    rules = raw.get("rules") if isinstance(raw, dict) else None
    if not isinstance(rules, list):
        return used, problems
    for rule in rules:
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
                else:
                    params[name] = content
    return used, problems
