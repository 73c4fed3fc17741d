"""facts.readers: JSON Lines, CSV and XLSX fact files, encodings, and what goes wrong in them."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from facts.errors import FieldProblem, Location
from facts.models import Dues, Meeting
from facts.readers import FileNote, UnreadableFileError, read_file
from facts.validate import validate_object

MEETING_LINE = '{"type":"meeting","id":"m-1","org":"b1","kind":"committee_meeting","date":"2017-06-27"}'


def _split(items: list[Any]) -> tuple[list[tuple[Location, dict[str, Any]]], list[FieldProblem]]:
    objects = [i for i in items if not isinstance(i, FieldProblem)]
    problems = [i for i in items if isinstance(i, FieldProblem)]
    return objects, problems


def _read(path: Path, notes: list[FileNote] | None = None) -> tuple[list[Any], list[FieldProblem]]:
    return _split(list(read_file(path, notes)))


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# --- JSON Lines ------------------------------------------------------------------------------


def test_jsonl_skips_blank_and_comment_lines_and_counts_lines(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.jsonl", f"# 导出\n\n{MEETING_LINE}\n   \n  {MEETING_LINE}\r\n")
    objects, problems = _read(path)
    assert problems == []
    assert [loc for loc, _ in objects] == [Location(str(path), 3), Location(str(path), 5)]
    assert objects[0][1]["id"] == "m-1"


def test_malformed_json_between_good_lines_is_reported_with_its_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.jsonl", f'{MEETING_LINE}\n  {{"type": "meeting", "id": }}\n{MEETING_LINE}\n')
    objects, problems = _read(path)
    assert [loc.line for loc, _ in objects] == [1, 3]
    assert len(problems) == 1
    assert str(problems[0]) == f"{path}:2: invalid JSON: Expecting value at column 29"


def test_json_duplicate_keys_non_objects_and_nan_are_problems(tmp_path: Path) -> None:
    text = '{"type":"dues","amount":1,"amount":2}\n[1, 2]\n"meeting"\n{"type":"dues","amount":NaN}\n[\n'
    objects, problems = _read(_write(tmp_path / "f.ndjson", text))
    assert objects == []
    messages = [(p.location.line, p.message) for p in problems]
    assert messages[0] == (1, 'invalid JSON: key "amount" appears twice in one object')
    assert messages[1] == (2, "expected a JSON object, got a list")
    assert messages[2] == (3, 'expected a JSON object, got "meeting"')
    assert messages[3][0] == 4 and "NaN is not allowed" in messages[3][1]
    assert messages[4][0] == 5 and "one line: JSON Lines" in messages[4][1]


def test_a_json_array_file_is_one_problem(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.json", f"# exported\n[\n  {MEETING_LINE},\n  {MEETING_LINE}\n]\n")
    assert [str(p) for p in read_file(path)] == [
        f"{path}:2: the file is one JSON array, not JSON Lines: write one object per line"
    ]


def test_utf8_bom_is_accepted_without_a_note(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(b"\xef\xbb\xbf" + MEETING_LINE.encode())
    notes: list[FileNote] = []
    objects, problems = _read(path, notes)
    assert len(objects) == 1 and problems == [] and notes == []


def test_gbk_jsonl_is_read_as_gb18030_and_noted_once(tmp_path: Path) -> None:
    line = '{"type":"org","id":"b1","name":"机关第一党支部","kind":"branch","note":"换届：２０１７年"}'
    path = _write(tmp_path / "f.jsonl", f"{line}\n{line}\n", "gbk")
    notes: list[FileNote] = []
    objects, problems = _read(path, notes)
    assert problems == []
    assert [o["name"] for _, o in objects] == ["机关第一党支部", "机关第一党支部"]
    assert len(notes) == 1
    assert notes[0].location == Location(str(path), 1) and "GB18030" in notes[0].message


def test_a_file_in_neither_encoding_names_the_file_and_the_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(MEETING_LINE.encode() + b"\n\xff\xfe\xfd\n")
    with pytest.raises(UnreadableFileError) as caught:
        list(read_file(path))
    offset = len(MEETING_LINE) + 1
    assert caught.value.offset == offset
    assert str(path) in str(caught.value) and f"offset {offset}" in str(caught.value)


def test_gb18030_byte_soup_that_is_not_chinese_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes("Это не китайский".encode("koi8-r"))  # decodes as GB18030, but to nonsense
    with pytest.raises(UnreadableFileError, match="offset 0"):
        list(read_file(path))


def test_utf16_is_refused_with_advice(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.csv", "\ufeffid,name\n", "utf-16-le")
    with pytest.raises(UnreadableFileError, match="UTF-16"):
        list(read_file(path))


@pytest.mark.parametrize("name", ["f.jsonl", "orgs.csv", "book.xlsx"])
@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b" \r\n\n"])
def test_an_empty_file_is_one_problem(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert list(read_file(path)) == [FieldProblem(Location(str(path), 1), "", "the file is empty")]


def test_missing_file_and_unknown_extension_are_errors(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="cannot be read"):
        list(read_file(tmp_path / "nope.jsonl"))
    old = _write(tmp_path / "book.xls", "x")
    with pytest.raises(UnreadableFileError, match=r"save it as \.xlsx"):
        list(read_file(old))


# --- CSV -------------------------------------------------------------------------------------


def test_csv_type_comes_from_the_file_name_and_cells_follow_the_conventions(tmp_path: Path) -> None:
    text = (
        "id,org,kind,date,attendees,on_leave,topics,minutes.content,minutes.recorder\n"
        'm-1,b1,committee_meeting,2017-06-27," m01 ; m02；m03;",m04:出差：外地:是;m05;m06::true;m07:病假,'
        "study,传达学习,m01\n"
    )
    objects, problems = _read(_write(tmp_path / "Meetings.csv", text))
    assert problems == []
    ((location, obj),) = objects
    assert location.line == 2
    assert obj == {
        "type": "meeting",
        "id": "m-1",
        "org": "b1",
        "kind": "committee_meeting",
        "date": "2017-06-27",
        "attendees": ["m01", "m02", "m03"],
        "on_leave": [
            {"member": "m04", "reason": "出差：外地", "opinion_given": True},
            {"member": "m05"},
            {"member": "m06", "opinion_given": True},
            {"member": "m07", "reason": "病假"},
        ],
        "topics": ["study"],
        "minutes": {"content": "传达学习", "recorder": "m01"},
    }
    assert isinstance(validate_object(obj, location), Meeting)


def test_csv_numbers_are_converted_and_non_numbers_left_for_validation(tmp_path: Path) -> None:
    text = "member,month,amount,paid_on,base\nm01,2017-06,45.5,2017-06-20,4500\nm02,2017-06,四十五元,2017-06-20,\n"
    objects, problems = _read(_write(tmp_path / "dues.csv", text))
    assert problems == []
    assert objects[0][1]["amount"] == 45.5 and objects[0][1]["base"] == 4500
    assert "base" not in objects[1][1]
    result = validate_object(objects[1][1], objects[1][0])
    assert isinstance(result, list) and result[0].field == "dues.amount"
    years = _read(_write(tmp_path / "declarations.csv", "member,year,filed\nm01,2017.0,2018-01-10\n"))
    assert years[0][0][1]["year"] == 2017


def test_csv_type_column_overrides_the_file_name(tmp_path: Path) -> None:
    text = "type,member,date,place\nfield_visit,m01,2017-05-04,某村\n,m02,2017-05-05,\n"
    objects, problems = _read(_write(tmp_path / "visits-2017.csv", text))
    assert problems == []
    assert objects[0][1]["type"] == "field_visit"
    assert "type" not in objects[1][1]  # no type at all: validation will say "type" is missing


def test_csv_whose_name_is_not_a_type_and_has_no_type_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "2017.csv", "member,date\nm01,2017-05-04\n")
    objects, problems = _read(path)
    assert objects == []
    assert len(problems) == 1 and problems[0].location == Location(str(path), 1)
    assert "does not name a fact type" in problems[0].message


def test_csv_missing_required_column_is_reported_once_and_each_row_fails(tmp_path: Path) -> None:
    path = _write(tmp_path / "meeting.csv", "id,org,date\nm-1,b1,2017-06-27\nm-2,b1,2017-07-27\n")
    objects, problems = _read(path)
    assert problems == [FieldProblem(Location(str(path), 1), "meeting.kind", "required column is missing")]
    for location, obj in objects:
        result = validate_object(obj, location)
        assert isinstance(result, list)
        assert [p.field for p in result] == ["meeting.kind"]


def test_csv_unknown_column_is_reported_with_a_suggestion_and_keeps_its_data(tmp_path: Path) -> None:
    text = "id,org,kind,date,atendees,minutes.contnet\nm-1,b1,theme_day,2017-06-27,m01,\nm-2,b1,theme_day,2017-06-28,,\n"
    path = _write(tmp_path / "meetings.csv", text)
    objects, problems = _read(path)
    assert [str(p) for p in problems] == [
        f"{path}:1: meeting.atendees: unknown column (did you mean 'attendees'?)",
        f"{path}:1: meeting.minutes.contnet: unknown column (did you mean 'minutes.content'?)",
    ]
    first = validate_object(objects[0][1], objects[0][0])
    assert isinstance(first, list) and first[0].field == "meeting.atendees"
    assert isinstance(validate_object(objects[1][1], objects[1][0]), Meeting)  # empty cell: nothing lost


def test_csv_row_with_the_wrong_number_of_cells_is_a_problem_for_that_row(tmp_path: Path) -> None:
    text = "member,date\nm01,2017-05-04\nm02\nm03,2017-05-06,extra\nm04,2017-05-07,,\n"
    path = _write(tmp_path / "field_visits.csv", text)
    objects, problems = _read(path)
    assert [loc.line for loc, _ in objects] == [2, 5]  # trailing empty cells are tolerated
    assert [(p.location.line, p.message) for p in problems] == [
        (3, "row has 1 cells but the header has 2 columns"),
        (4, "row has 3 cells but the header has 2 columns"),
    ]


def test_gbk_csv_is_read(tmp_path: Path) -> None:
    text = "id,name,kind\r\nb1,机关第一党支部,branch\r\n"
    notes: list[FileNote] = []
    objects, problems = _read(_write(tmp_path / "orgs.csv", text, "gbk"), notes)
    assert problems == [] and len(notes) == 1
    assert objects[0][1] == {"type": "org", "id": "b1", "name": "机关第一党支部", "kind": "branch"}


def test_csv_booleans_and_escapes(tmp_path: Path) -> None:
    text = "id,org,kind,date,on_leave,absent\nm-1,b1,theme_day,2017-06-27,a\\:1:x:否;b:时间\\：上午:maybe,c\\;d;e\\\\\n"
    objects, _ = _read(_write(tmp_path / "meetings.csv", text))
    obj = objects[0][1]
    assert obj["on_leave"] == [
        {"member": "a:1", "reason": "x", "opinion_given": False},
        {"member": "b", "reason": "时间：上午:maybe"},  # not a boolean: part of the reason
    ]
    assert obj["absent"] == ["c;d", "e\\"]


# --- XLSX ------------------------------------------------------------------------------------


def _book(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def test_xlsx_sheets_by_type_with_date_cells_and_an_extra_sheet(tmp_path: Path) -> None:
    path = _book(
        tmp_path / "book.xlsx",
        {
            "说明": [["本表用于导入党费"]],
            "dues": [
                ["member", "month", "amount", "paid_on", "base", "note"],
                [101, datetime(2017, 6, 1), 45, datetime(2017, 6, 20), 4500.0, time(15, 30)],
                ["m02", "2017-07", 45.5, date(2017, 7, 20), None, None],
            ],
            "Sheet2": [],
            "Declarations": [["member", "year", "filed"], ["m01", 2017.0, datetime(2018, 1, 10, 9, 30)]],
        },
    )
    objects, problems = _read(path)
    assert [str(p) for p in problems] == [
        f'{path}[说明]:1: sheet "说明" is not a fact type; it is skipped (name a sheet after a type, '
        'e.g. meetings or 会议, dues or 党费, or add a "type" column)'
    ]
    assert [loc for loc, _ in objects] == [
        Location(f"{path}[dues]", 2),
        Location(f"{path}[dues]", 3),
        Location(f"{path}[Declarations]", 2),
    ]
    first, second, declaration = (o for _, o in objects)
    assert first == {
        "type": "dues",
        "member": "101",
        "month": "2017-06",
        "amount": 45,
        "paid_on": "2017-06-20",
        "base": 4500,
        "note": "15:30",
    }
    assert second == {
        "type": "dues",
        "member": "m02",
        "month": "2017-07",
        "amount": 45.5,
        "paid_on": "2017-07-20",
    }
    assert declaration["year"] == 2017 and isinstance(declaration["year"], int)
    assert declaration["filed"] == "2018-01-10"  # a date-time in a date field: its date (issue 11; the time is noted)
    assert isinstance(validate_object(first, objects[0][0]), Dues)


def test_xlsx_with_a_type_column_gaps_and_header_problems(tmp_path: Path) -> None:
    path = _book(
        tmp_path / "book.xlsx",
        {
            "records": [
                ["type", "member", "date", "place", "topik"],
                ["field_visit", "m01", date(2017, 5, 4), "某村", None],
                [None, None, None, None, None],
                ["promotion", "m02", date(2017, 9, 1), None, None, "stray"],
            ]
        },
    )
    objects, problems = _read(path)
    assert [loc.line for loc, _ in objects] == [2]
    sheet = f"{path}[records]"
    assert [str(p) for p in problems] == [
        f"{sheet}:1: topik: unknown column (did you mean 'topic'?)",
        f"{sheet}:4: column 6 has a value but no header",
    ]


def test_a_broken_workbook_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "book.xlsx", "not a zip")
    with pytest.raises(UnreadableFileError, match="not a readable .xlsx"):
        list(read_file(path))
