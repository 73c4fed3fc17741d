"""Decision tables: a dues bracket table in CSV or XLSX, validated (gaps and overlaps are errors)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from openpyxl import Workbook

from engine.pack.errors import PackError
from engine.pack.load import load_pack
from engine.pack.tables import load_bracket_table
from engine.pack.testing import run_pack_tests
from rules import STANDARD_PACK

AMOUNT = "dues.amount.full"
INLINE = (
    "      brackets:\n"
    "        in_service: [[3000, 0.005], [5000, 0.01], [10000, 0.015], [null, 0.02]]\n"
    "        retired: [[5000, 0.005], [null, 0.01]]\n"
    "      fixed: {student: 0.2}\n"
)
HEADER = ["category", "lower", "upper", "rate", "fixed"]
GOOD = [
    ["in_service", "0", "3000", "0.005", ""],
    ["in_service", "3000", "5000", "0.01", ""],
    ["in_service", "5000", "10000", "0.015", ""],
    ["in_service", "10000", "", "0.02", ""],
    ["retired", "0", "5000", "0.005", ""],
    ["retired", "5000", "", "0.01", ""],
    ["student", "", "", "", "0.2"],
]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("\ufeff" + "\n".join(",".join(r) for r in [HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def dues_pack(tmp_path: Path, table: str) -> Path:
    """The standard dues rules with their bracket table moved to ``table`` beside the rule file."""
    folder = tmp_path / "pack"
    folder.mkdir(exist_ok=True)
    text = (STANDARD_PACK / "dues.yaml").read_text(encoding="utf-8")
    assert text.count(INLINE) == 1
    (folder / "dues.yaml").write_text(
        text.replace(INLINE, f"      brackets: {{table: {table}}}\n"), encoding="utf-8"
    )
    return folder


def test_a_good_csv_gives_the_inline_brackets_and_the_rule_tests_pass(tmp_path: Path) -> None:
    folder = dues_pack(tmp_path, "dues_brackets.csv")
    write_csv(folder / "dues_brackets.csv", GOOD)
    pack = load_pack(folder)
    (rule,) = pack.by_id(AMOUNT)
    assert rule.rule.params["brackets"] == {
        "in_service": [[3000.0, 0.005], [5000.0, 0.01], [10000.0, 0.015], [None, 0.02]],
        "retired": [[5000.0, 0.005], [None, 0.01]],
    }
    assert rule.rule.params["fixed"] == {"student": 0.2}
    results = run_pack_tests(pack, [AMOUNT])
    assert results and all(r.ok for r in results), [str(r) for r in results if not r.ok]

    before = pack.hash  # the table is part of the pack's content hash
    write_csv(folder / "dues_brackets.csv", [["in_service", "0", "", "0.01", ""]])
    assert load_pack(folder).hash != before


def problems_of(path: Path) -> list[str]:
    content, problems = load_bracket_table(path, AMOUNT)
    return [str(p) for p in problems]


def test_a_gap_between_brackets_names_the_file_and_line(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "gap.csv",
        [
            ["in_service", "0", "3000", "0.005", ""],
            ["in_service", "3000", "5000", "0.01", ""],
            ["in_service", "5001", "10000", "0.015", ""],
            ["in_service", "10000", "", "0.02", ""],
        ],
    )
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:4: {AMOUNT} lower:")
    assert "gap between 5000 (line 3) and 5001" in problem and "start this bracket at 5000" in problem

    folder = dues_pack(tmp_path, "gap.csv")
    shutil.copy(path, folder / "gap.csv")
    with pytest.raises(PackError) as info:
        load_pack(folder)
    assert [p.line for p in info.value.problems] == [4]
    assert info.value.problems[0].file == str(folder / "gap.csv")


def test_an_overlap_and_other_mistakes_are_each_reported(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "bad.csv",
        [
            ["in_service", "0", "5000", "0.01", ""],
            ["in_service", "4000", "", "0.02", ""],
            ["retired", "0", "5000", "0.005", ""],  # nothing above 5000
            ["student", "0", "", "0.01", "0.2"],  # rate and fixed
            ["cadre", "0", "abc", "0.01", ""],
        ],
    )
    found = problems_of(path)
    assert any(":3:" in p and "overlaps the one on line 2" in p for p in found)
    assert any(":4:" in p and "incomes above 5000 have no rate" in p for p in found)
    assert any(":5:" in p and "either a rate or a fixed amount" in p for p in found)
    assert any(":6:" in p and "upper: 'abc' is not a number" in p for p in found)


def test_a_missing_column_or_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("category,lower,rate\nin_service,0,0.01\n", encoding="utf-8")
    (problem,) = problems_of(path)
    assert ":1:" in problem and "missing column(s): upper, fixed" in problem
    (problem,) = problems_of(tmp_path / "nowhere.csv")
    assert "not found" in problem


def test_a_table_outside_the_pack_folder_is_refused(tmp_path: Path) -> None:
    folder = dues_pack(tmp_path, "../outside.csv")
    write_csv(tmp_path / "outside.csv", GOOD)
    with pytest.raises(PackError, match="outside the pack folder"):
        load_pack(folder)


def test_xlsx_first_sheet(tmp_path: Path) -> None:
    folder = dues_pack(tmp_path, "dues_brackets.xlsx")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    for category, lower, upper, rate, fixed in GOOD:
        sheet.append(
            [category]
            + [float(v) if "." in v else int(v) if v else None for v in (lower, upper, rate, fixed)]
        )
    book.save(folder / "dues_brackets.xlsx")
    (rule,) = load_pack(folder).by_id(AMOUNT)
    brackets = rule.rule.params["brackets"]
    assert isinstance(brackets, dict) and brackets["in_service"][1] == [5000.0, 0.01]
    assert rule.rule.params["fixed"] == {"student": 0.2}

    sheet.cell(row=4, column=2, value=5001)  # the third bracket now starts at 5001: a gap
    book.save(folder / "dues_brackets.xlsx")
    with pytest.raises(PackError) as info:
        load_pack(folder)
    (problem,) = info.value.problems
    assert (problem.file, problem.line) == (str(folder / "dues_brackets.xlsx"), 4)
    assert "gap between 5000" in problem.message
