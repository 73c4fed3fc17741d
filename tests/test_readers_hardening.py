"""Issue 11, readers: CSV and XLSX files that used to lose lines silently, store mojibake, or refuse good rows."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from engine.cli import main
from facts.errors import FieldProblem
from facts.readers import FileNote, UnreadableFileError, read_file

REGISTRY = [
    {"type": "org", "id": "b1", "name": "第一支部", "kind": "branch"},
    *({"type": "member", "id": f"m{i}", "name": f"成员{i}", "org": "b1"} for i in range(1, 4)),
]


def read(path: Path):
    notes: list[FileNote] = []
    items = list(read_file(path, notes))
    objects = [i for i in items if not isinstance(i, FieldProblem)]
    problems = [i for i in items if isinstance(i, FieldProblem)]
    return objects, problems, notes


def cli(tmp_path: Path, *files: Path):
    registry = tmp_path / "registry.jsonl"
    registry.write_text("\n".join(json.dumps(o, ensure_ascii=False) for o in REGISTRY), encoding="utf-8")
    db = str(tmp_path / "t.db")
    runner = CliRunner()
    assert runner.invoke(main, ["--db", db, "import", str(registry)]).exit_code == 0
    return runner.invoke(main, ["--db", db, "import", "--no-judge", *map(str, files)], catch_exceptions=False)


def dues_rows(n: int, start: int = 1) -> list[str]:
    return [f"m{1 + i % 3},2017-{1 + i // 3 % 12:02d},30,2017-06-01" for i in range(start - 1, start - 1 + n)]


def test_csv_latin1_is_refused_not_stored_as_mojibake(tmp_path):
    path = tmp_path / "members.csv"
    path.write_bytes("id,name,org\nm7,Müller,b1\nm8,Zöller,b1\n".encode("latin-1"))
    with pytest.raises(UnreadableFileError) as caught:
        read(path)
    assert "not UTF-8" in str(caught.value) and 'Latin-1/Windows-1252 text: "Müller"' in str(caught.value)
    result = cli(tmp_path, path)
    assert result.exit_code == 1 and "M黮ler" not in result.output
    assert f"{path}:1: byte 0xfc at offset 16 is not UTF-8" in result.stderr


def test_csv_unreadable_file_does_not_lose_the_other_files(tmp_path):
    bad = tmp_path / "members.csv"
    bad.write_bytes("id,name,org\nm7,Müller,b1\n".encode("latin-1"))
    good = tmp_path / "dues.csv"
    good.write_text("member,month,amount,paid_on\n" + "\n".join(dues_rows(5)) + "\n", encoding="utf-8")
    result = cli(tmp_path, bad, good)
    assert "added 5, unchanged 0, corrected 0, rejected 1" in result.output


def test_csv_gbk_chinese_is_still_read(tmp_path):
    path = tmp_path / "members.csv"
    path.write_bytes("id,name,org\nm7,龚彧,b1\nm8,翟晓燕,b1\n".encode("gbk"))
    objects, problems, notes = read(path)
    assert [o["name"] for _, o in objects] == ["龚彧", "翟晓燕"] and not problems
    assert "GB18030" in str(notes[0])


def test_csv_unclosed_quote_skips_one_line_and_keeps_reading(tmp_path):
    rows = dues_rows(200)
    rows[49] = 'm1,2017-01,"30,2017-06-01'  # line 51: the quote is never closed
    path = tmp_path / "dues.csv"
    path.write_text("member,month,amount,paid_on\n" + "\n".join(rows) + "\n", encoding="utf-8")
    objects, problems, _ = read(path)
    assert [p.location.line for p in problems] == [51]
    assert "quote opened on this line is never closed" in problems[0].message
    assert len(objects) == 199
    result = cli(tmp_path, path)
    # the 199 lines read hold 36 distinct dues, the others repeat them exactly
    assert "added 36, unchanged 163, corrected 0, rejected 1" in result.output


def test_csv_200k_char_cell_is_that_lines_error_and_the_rest_is_read(tmp_path):
    path = tmp_path / "meetings.csv"
    rows = [f"mt{i},b1,committee_meeting,2017-06-{1 + i % 28:02d}," + ("学习" if i != 5 else "长" * 200_000) for i in range(20)]
    path.write_text("id,org,kind,date,minutes.content\n" + "\n".join(rows) + "\n", encoding="utf-8")
    result = cli(tmp_path, path)
    assert "added 19, unchanged 0, corrected 0, rejected 1" in result.output
    assert f"{path}:7: meeting.minutes.content: is 200000 characters long (at most 100000)" in result.stderr


def test_csv_cell_beyond_the_reader_limit_is_reported_and_reading_goes_on(tmp_path):
    path = tmp_path / "dues.csv"
    rows = dues_rows(30)
    rows[9] = "m1,2017-01," + "9" * 1_200_000 + ",2017-06-01"
    path.write_text("member,month,amount,paid_on\n" + "\n".join(rows) + "\n", encoding="utf-8")
    objects, problems, _ = read(path)
    assert [(p.location.line, "longer than 1,000,000 characters" in p.message) for p in problems] == [(11, True)]
    assert len(objects) == 29


def test_csv_unknown_column_is_a_warning_once_and_rows_stay_valid(tmp_path):
    path = tmp_path / "dues.csv"
    path.write_text("member,month,amount,paid_on,备注\n" + "\n".join(r + ",按时" for r in dues_rows(6)) + "\n", encoding="utf-8")
    objects, problems, notes = read(path)
    assert problems == [] and len(objects) == 6
    assert [str(n) for n in notes] == [f'{path}:1: column "备注" is not a field of dues; it is ignored']
    result = cli(tmp_path, path)
    assert result.exit_code == 0 and "added 6" in result.output and "备注" in result.stderr


def test_csv_misspelt_column_is_still_an_error(tmp_path):
    path = tmp_path / "dues.csv"
    path.write_text("member,month,amount,paid_on,bse\nm1,2017-01,30,2017-06-01,3000\n", encoding="utf-8")
    _, problems, notes = read(path)
    assert notes == [] and "did you mean 'base'" in problems[0].message


@pytest.mark.parametrize(("name", "expected"), [("会议.csv", "meeting"), ("党费.csv", "dues"), ("党员.csv", "member")])
def test_csv_chinese_file_names_name_types(tmp_path, name, expected):
    path = tmp_path / name
    path.write_text("id,name,org\nm9,甲,b1\n" if expected == "member" else "x\n1\n", encoding="utf-8")
    objects, problems, _ = read(path)
    assert objects or problems
    assert all(o["type"] == expected for _, o in objects)
    assert not any("does not name a fact type" in p.message for p in problems)


def workbook(path: Path, title: str, rows: list[list], merge: str | None = None) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    if merge:
        sheet.merge_cells(merge)
    book.save(path)
    return path


def test_xlsx_formula_without_value_and_merged_cells_are_reported_with_the_cell(tmp_path):
    rows = [["id", "org", "kind", "date"]]
    rows += [[f"mt{i}", "b1", "committee_meeting", f"2017-06-{i:02d}"] for i in range(1, 8)]
    rows[3][3] = "=TODAY()"  # row 4: openpyxl saves formulas without a calculated value
    path = workbook(tmp_path / "台账.xlsx", "会议", rows, merge="B6:B7")
    objects, problems, _ = read(path)
    assert [(p.location.line, p.message.split(" ")[1]) for p in problems] == [(4, "D4"), (7, "B7")]
    assert "formula =TODAY() without a saved value" in problems[0].message
    assert "merged cells B6:B7, whose value is only in B6" in problems[1].message
    assert sorted(o["id"] for _, o in objects) == ["mt1", "mt2", "mt4", "mt5", "mt7"]


def test_xlsx_date_time_cells_in_date_fields_take_the_date(tmp_path):
    rows = [["id", "org", "kind", "date", "备注"],
            ["mt1", "b1", "committee_meeting", datetime(2017, 6, 27, 15, 30), "下午"],
            ["mt2", "b1", "committee_meeting", datetime(2017, 6, 28), ""]]
    path = workbook(tmp_path / "2017年党务台账.xlsx", "会议", rows)
    objects, problems, notes = read(path)
    assert problems == []
    assert [o["date"] for _, o in objects] == ["2017-06-27", "2017-06-28"]
    assert {str(n).split(": ", 1)[1] for n in notes} == {
        'column "备注" is not a field of meeting; it is ignored',
        'column "date" holds date-times: the date is taken, the time of day ignored',
    }
    result = cli(tmp_path, path)
    assert result.exit_code == 0 and "added 2" in result.output
