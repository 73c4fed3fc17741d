"""Read fact files (JSON Lines, CSV, XLSX) into raw objects with their locations.

:func:`read_file` yields ``(Location, dict)`` for each object and a
:class:`~facts.errors.FieldProblem` for each line or row that cannot even be
decoded; it does not validate against the models (the importer calls
:func:`facts.validate.validate_object` on each dict).  Problems that concern a
whole table (an unknown or missing column) are reported on line 1.

Remarks that are not problems (the file was read as GB18030) are appended as
:class:`FileNote` to the ``notes`` list the caller passes, if any.

A file that cannot be read at all (missing, an unknown extension, an encoding
that is neither UTF-8 nor GB18030, a broken workbook) raises
:class:`UnreadableFileError` while iterating.

The tabular conventions (lists, ``on_leave``, numbers, booleans) are those of
:mod:`facts.tabular`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Any

import orjson

from facts.errors import FactError, FieldProblem, Location
from facts.models import MODELS
from facts.tabular import Column, Kind, cell_text, columns, parse_cell, plural, type_for_name
from facts.validate import suggest

Item = tuple[Location, dict[str, Any]] | FieldProblem

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
SUFFIXES = (*JSON_SUFFIXES, ".csv", ".xlsx")
_UTF8_BOM = b"\xef\xbb\xbf"
_KEY_END = re.compile(r'"\s*:')  # how every key of a JSON object ends (strings may hold more of these)
_PLAIN = frozenset({str, int, bool, type(None)})
_CSV_FIELD_LIMIT = 1_000_000  # characters in one CSV cell (the csv module's default is 131,072)
csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))  # a long cell is validation's to judge
_INT_LIMIT = 2.0**63  # orjson reads integers outside [-2**63, 2**64) as floats; json reads them as ints


@dataclass(frozen=True)
class FileNote:
    """A remark about how a file was read that is not a problem with its content."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class UnreadableFileError(FactError):
    """A file that cannot be read at all; ``offset`` is the byte where decoding failed, if any."""

    def __init__(self, file: str, message: str, offset: int | None = None) -> None:
        super().__init__(f"{file}: {message}")
        self.file = file
        self.offset = offset


class _DuplicateKeyError(FactError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def read_file(path: Path, notes: list[FileNote] | None = None) -> Iterator[Item]:
    """Yield every object of a fact file with its location, or a problem per undecodable line.

    The format follows the extension: ``.jsonl``/``.ndjson``/``.json`` (one object per
    line), ``.csv`` (one type per file), ``.xlsx`` (one type per sheet).
    """
    label = str(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        hint = " (save it as .xlsx)" if suffix == ".xls" else ""
        raise UnreadableFileError(
            label, f'unknown file type "{suffix}"{hint}; expected one of {", ".join(SUFFIXES)}'
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFileError(label, f"cannot be read: {exc.strerror or exc}") from exc
    yield from read_data(data, label, path.stem, suffix, notes)


def read_data(
    data: bytes, label: str, stem: str, suffix: str, notes: list[FileNote] | None = None
) -> Iterator[Item]:
    """:func:`read_file` on a file's bytes: ``label`` names it in messages, ``stem`` and ``suffix`` say its type."""
    if not data.removeprefix(_UTF8_BOM).strip():
        yield FieldProblem(Location(label, 1), "", "the file is empty")
        return
    if suffix == ".xlsx":
        from facts.readers_xlsx import read_xlsx  # only workbooks pay for openpyxl

        yield from read_xlsx(io.BytesIO(data), label, notes)
        return
    text, encoding = decode(data, label)
    if encoding != "utf-8" and notes is not None:
        notes.append(
            FileNote(
                Location(label, 1), f"read as {encoding.upper()} (not UTF-8); saving it as UTF-8 is safer"
            )
        )
    if suffix == ".csv":
        yield from _read_csv(label, text, type_for_name(stem), notes)
    else:
        yield from _read_jsonl(label, text)


# --- encodings -------------------------------------------------------------------------------


def decode(data: bytes, label: str) -> tuple[str, str]:
    """The text of a file and the encoding it was read with: ``utf-8`` (BOM or not) or ``gb18030``."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableFileError(label, "is UTF-16 text; save it as UTF-8 (Excel: CSV UTF-8)", 0)
    body = data.removeprefix(_UTF8_BOM)
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        offset = exc.start + len(data) - len(body)
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        text = ""
    if text and _looks_chinese(text):
        return text, "gb18030"
    raise UnreadableFileError(
        label,
        f"byte 0x{data[offset]:02x} at offset {offset} is not UTF-8, and the file is not GB18030/GBK "
        f"Chinese text either{_western_hint(data, offset)}; save it as UTF-8",
        offset,
    )


def _western_hint(data: bytes, offset: int) -> str:
    """`` (it reads as Latin-1/Windows-1252: "Müller")`` when that is what the bytes around ``offset`` look like."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return ""
    start = len(data[:offset].decode("cp1252", errors="replace"))
    word = re.search(r"[^\s,;\"']*$", text[:start]).group() + re.match(r"[^\s,;\"']*", text[start:]).group()  # type: ignore[union-attr]
    if word and all(c.isalpha() or c in "-.'" for c in word):
        return f' (it reads as Latin-1/Windows-1252 text: "{word[:40]}")'
    return ""


def _is_common_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF  # CJK unified ideographs
        or 0x3400 <= code <= 0x4DBF  # extension A
        or 0x3000 <= code <= 0x303F  # CJK punctuation 。、「」
        or 0xFF00 <= code <= 0xFFEF  # full-width forms ，：；（）
        or 0x2000 <= code <= 0x206F  # general punctuation “” —…
        or 0x2460 <= code <= 0x24FF  # ①②
        or 0x2160 <= code <= 0x217F  # Ⅰ Ⅱ
        or 0x25A0 <= code <= 0x25FF  # ■ ○
        or code == 0x00B7  # ·
    )


def _looks_chinese(text: str) -> bool:
    """GB18030 decodes most byte soup: accept it only when the result reads as Chinese text."""
    if any(ord(c) < 32 and c not in "\t\r\n" for c in text):
        return False
    non_ascii = [c for c in text if ord(c) > 127]
    ideographs = [c for c in non_ascii if 0x4E00 <= ord(c) <= 0x9FFF]
    common = sum(1 for c in non_ascii if _is_common_cjk(c))
    # Latin-1 letters followed by ASCII decode to rare GBK-extension ideographs (Müller → M黮ler):
    # Chinese text written with GBK is nearly all GB2312 characters, whose two bytes are both ≥ 0xA1
    in_gb2312 = sum(1 for c in ideographs if _in_gb2312(c))
    return bool(ideographs) and common >= 0.8 * len(non_ascii) and in_gb2312 >= 0.8 * len(ideographs)


def _in_gb2312(char: str) -> bool:
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


# --- JSON Lines ------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed (JSON has no such number)")


def _key_count(value: dict[str, Any] | list[Any]) -> int:
    """Keys in all the objects of a parsed value, or -1 if it holds a float orjson may have made of a big integer."""
    inner: Any = value.values() if type(value) is dict else value
    total = len(value) if type(value) is dict else 0
    kinds = set(map(type, inner))  # C speed: most values and lists are plain strings
    if kinds <= _PLAIN:
        return total
    for v in inner:
        kind = type(v)
        if kind is dict or kind is list:
            count = _key_count(v)
            if count < 0:
                return -1
            total += count
        elif kind is float and not -_INT_LIMIT < v < _INT_LIMIT:
            return -1
    return total


def _key_endings(text: str) -> int:
    """An upper bound of the number of keys written on a JSON line: each key is followed by its own colon."""
    if '" ' in text or '"\t' in text or '"\r' in text:
        return len(_KEY_END.findall(text))  # white space between a key and its colon
    return text.count('":')


def _fast_object(text: str) -> dict[str, Any] | None:
    """The object on a line as orjson reads it, when that is certainly what the exact reader gives; else None.

    orjson keeps the last of repeated keys, where the exact reader reports them: a line
    is taken only when its objects hold as many keys as the line has key endings (an
    upper bound of its key tokens).  Lines that orjson rejects, non-objects and possible
    big integers go to the exact reader, which also words the messages.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(value) is not dict:
        return None
    keys = _key_count(value)
    if keys < 0 or (text.count(":") != keys and _key_endings(text) != keys):
        return None
    return value


def _is_json_array(text: str) -> bool:
    """The whole file (its comment lines aside) is one JSON array: then nothing in it is JSON Lines."""
    body = "\n".join(line for line in text.split("\n") if not line.strip().startswith("#"))
    try:
        return isinstance(json.loads(body), list)
    except (ValueError, RecursionError):
        return False


def _read_jsonl(label: str, text: str) -> Iterator[Item]:
    seen_content = False
    # split on \n only: str.splitlines would also split on U+2028 and friends inside strings
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped == "[" and not seen_content and _is_json_array(text):
            message = "the file is one JSON array, not JSON Lines: write one object per line"
            yield FieldProblem(Location(label, number), "", message)
            return
        seen_content = True
        yield parse_line(label, number, line)


def parse_line(label: str, number: int, line: str) -> Item:
    """One non-blank, non-comment JSON Lines line: its object, or the problem that makes it unreadable."""
    stripped = line.strip()
    location = Location(label, number)
    try:
        fast = _fast_object(stripped)
    except RecursionError:
        fast = None
    if fast is not None:
        return location, fast
    indent = len(line) - len(line.lstrip())
    try:
        value = json.loads(stripped, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except RecursionError:
        return FieldProblem(location, "", "invalid JSON: nested too deeply (more than a few hundred levels)")
    except json.JSONDecodeError as exc:
        hint = " (each object must be on one line: JSON Lines)" if stripped in ("[", "]", "{", "}") else ""
        return FieldProblem(location, "", f"invalid JSON: {exc.msg} at column {indent + exc.pos + 1}{hint}")
    except _DuplicateKeyError as exc:
        return FieldProblem(location, "", f'invalid JSON: key "{exc.key}" appears twice in one object')
    except ValueError as exc:
        return FieldProblem(location, "", f"invalid JSON: {exc}")
    if isinstance(value, dict):
        return location, value
    shown = "a list" if isinstance(value, list) else json.dumps(value, ensure_ascii=False)
    return FieldProblem(location, "", f"expected a JSON object, got {shown}")


# --- tables (CSV and XLSX) -------------------------------------------------------------------

Row = tuple[int, Sequence[Any]]


def _read_csv(label: str, text: str, file_type: str | None, notes: list[FileNote] | None = None) -> Iterator[Item]:
    rows: list[Row] = []
    problems: list[FieldProblem] = []
    for record in _csv_records(label, text):
        if isinstance(record, FieldProblem):
            problems.append(record)
        else:
            rows.append(record)
    yield from problems
    no_type = (
        f"the file name does not name a fact type: name it after one (e.g. meetings.csv, dues.csv, "
        f'{plural("field_visit")}.csv, 会议.csv) or add a "type" column'
    )
    yield from _table_items(label, rows, file_type, no_type, exact_width=True, notes=notes)


_PHYSICAL_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def _csv_records(label: str, text: str) -> Iterator[Row | FieldProblem]:
    """CSV records with the physical line each starts on; a broken record is reported and reading goes on.

    A quote that is never closed swallows every line after it into one cell: a record
    that runs over several lines and has not the header's number of cells is taken for
    that, its first line is reported, and reading resumes on the next line.  A cell over
    the size limit is reported on its line likewise.  So every line is either read or
    named, and the summary counts each one lost.
    """
    lines = _PHYSICAL_LINE.findall(text)
    width: int | None = None
    pos = 0
    while pos < len(lines):
        reader = csv.reader(iter(lines[pos:]), strict=True)  # strict: a quote left open raises at the end
        done = 0  # physical lines consumed by the records read so far from ``pos``
        restart: int | None = None
        try:
            for cells in reader:
                start, done = pos + done, reader.line_num
                end = pos + done
                if width is None:
                    width = len(cells)
                elif end - start > 1 and len(cells) != width:
                    message = (
                        f"a quote opened on this line is not closed (the cell would run to line {end}); "
                        f"this line is skipped and reading resumes on line {start + 2}"
                    )
                    yield FieldProblem(Location(label, start + 1), "", message)
                    restart = start + 1
                    break
                yield start + 1, cells
        except csv.Error as exc:
            start = pos + done
            if "field larger than field limit" in str(exc):
                message = f"a cell is longer than {_CSV_FIELD_LIMIT:,} characters; this line is skipped"
            elif "unexpected end of data" in str(exc):
                message = (
                    "a quote opened on this line is never closed (it would take the rest of the file); "
                    f"this line is skipped and reading resumes on line {start + 2}"
                )
            else:
                message = f"unreadable CSV: {exc}; this line is skipped"
            yield FieldProblem(Location(label, start + 1), "", message)
            restart = start + 1
        if restart is None:
            return
        pos = restart


def _blank(cells: Sequence[Any]) -> bool:
    return all(_blank_cell(c) for c in cells)


def _blank_cell(cell: Any) -> bool:
    if cell is None:
        return True
    text = cell if type(cell) is str else cell_text(cell, Kind.TEXT)
    return not text or text.isspace()


def _table_items(
    label: str,
    rows: list[Row],
    default_type: str | None,
    no_type: str,
    exact_width: bool,
    notes: list[FileNote] | None = None,
) -> Iterator[Item]:
    """Objects from a table whose first row is the header."""
    if not rows or _blank(rows[0][1]):
        if any(not _blank(cells) for _, cells in rows):
            yield FieldProblem(Location(label, 1), "", "row 1 must be the header row (the field names)")
        return
    header = [cell_text(h, Kind.TEXT).strip() for h in rows[0][1]]
    while header and not exact_width and header[-1] == "":
        header.pop()
    body = [(n, cells) for n, cells in rows[1:] if not _blank(cells)]
    type_at = header.index("type") if "type" in header else None

    def row_type(cells: Sequence[Any]) -> str | None:
        if type_at is not None and type_at < len(cells):
            named = cell_text(cells[type_at], Kind.TEXT).strip()
            if named:
                return named
        return default_type

    if default_type is None and type_at is None:
        yield FieldProblem(Location(label, 1), "", no_type)
        return
    context = sorted({t for t in (default_type, *(row_type(c) for _, c in body)) if t in MODELS})
    ignored = _ignored_columns(label, header, context, notes)
    yield from _header_problems(label, header, body, context, ignored)
    layouts = {t: {c.name: c for c in columns(t)} for t in context}
    timed: set[str] = set()  # date columns where a cell held a date-time with a time of day
    seen: set[str] = set()
    used = []
    for index, name in enumerate(header):
        if name and name != "type" and name not in seen and name not in ignored:
            used.append(index)
        seen.add(name)
    for number, cells in body:
        location = Location(label, number)
        extra = [i for i in range(len(header), len(cells)) if cell_text(cells[i], Kind.TEXT).strip()]
        if exact_width and (extra or len(cells) < len(header)):
            yield FieldProblem(
                location, "", f"row has {len(cells)} cells but the header has {len(header)} columns"
            )
            continue
        if extra:
            yield FieldProblem(location, "", f"column {extra[0] + 1} has a value but no header")
            continue
        kind = row_type(cells)
        yield from _row_object(location, kind, header, used, cells, layouts.get(kind or "", {}), timed)
    if notes is not None:
        for name in sorted(timed):
            notes.append(FileNote(Location(label, 1), f'column "{name}" holds date-times: the date is taken, the time of day ignored'))


def _ignored_columns(
    label: str, header: list[str], context: list[str], notes: list[FileNote] | None
) -> set[str]:
    """Columns that are no field and not a misspelt one either (备注, 说明): noted once and not read.

    A name close to a field (``atendees``) stays an error, its rows rejected: ignoring it
    would drop the data a user meant to give.
    """
    if notes is None:  # nobody to tell: the column stays an error rather than vanish unsaid
        return set()
    known = sorted({c.name for t in context for c in columns(t)} | {"type"})
    ignored = {name for name in header if name and context and name not in known and not suggest(name, known)}
    for name in sorted(ignored, key=header.index):
        notes.append(
            FileNote(Location(label, 1), f'column "{name}" is not a field of {"/".join(context)}; it is ignored')
        )
    return ignored


def _header_problems(
    label: str, header: list[str], body: list[Row], context: list[str], ignored: set[str] = frozenset()  # type: ignore[assignment]
) -> Iterator[FieldProblem]:
    where = Location(label, 1)
    layouts = {t: {c.name: c for c in columns(t)} for t in context}
    known = sorted({name for layout in layouts.values() for name in layout} | {"type"})
    prefix = f"{context[0]}." if len(context) == 1 else ""
    seen: set[str] = set()
    for index, name in enumerate(header):
        if name == "":
            if any(index < len(cells) and cell_text(cells[index], Kind.TEXT).strip() for _, cells in body):
                yield FieldProblem(
                    where, "", f"column {index + 1} has values but no header; they are not read"
                )
        elif name in seen:
            yield FieldProblem(where, f"{prefix}{name}", "column appears twice; only the first one is read")
        elif context and name not in known and name not in ignored:
            yield FieldProblem(where, f"{prefix}{name}", f"unknown column{suggest(name, known)}")
        seen.add(name)
    for type_name, layout in layouts.items():
        for column in layout.values():
            if column.required and column.name not in seen:
                yield FieldProblem(where, f"{type_name}.{column.name}", "required column is missing")


def _row_object(
    location: Location,
    type_name: str | None,
    header: list[str],
    used: list[int],
    cells: Sequence[Any],
    layout: dict[str, Column],
    timed: set[str] | None = None,
) -> Iterator[Item]:
    obj: dict[str, Any] = {"type": type_name} if type_name else {}
    for index in used:
        name = header[index]
        column = layout.get(name)
        kind = column.kind if column else Kind.TEXT
        cell = cells[index] if index < len(cells) else None
        if kind is Kind.DATE and isinstance(cell, datetime) and cell.tzinfo is None:
            if cell.time() != time(0) and timed is not None:
                timed.add(name)
            cell = cell.date()  # Excel date-times in a date field: the date is what the field holds
        value = parse_cell(cell_text(cell, kind), kind) if cell is not None else None
        if value is None:
            continue
        if not _put(obj, name.split("."), value):
            field = f"{type_name}.{name}" if type_name else name
            yield FieldProblem(location, field, "two columns give this field a value; keep one")
            return
    yield location, obj


def _put(obj: dict[str, Any], path: list[str], value: Any) -> bool:
    """Set a dotted path in a nested dict; False when a scalar is already where a dict must go."""
    for part in path[:-1]:
        inner = obj.setdefault(part, {})
        if not isinstance(inner, dict):
            return False
        obj = inner
    if path[-1] in obj:
        return False
    obj[path[-1]] = value
    return True
