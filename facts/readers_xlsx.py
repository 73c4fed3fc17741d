"""Reading XLSX workbooks: one sheet per fact type, and what a spreadsheet hides from a reader.

Part of :mod:`facts.readers` (the conventions are the CSV ones): formula cells saved without a
value and cells under a merged range are reported by address, never dropped silently.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from typing import Any

from facts.errors import FieldProblem, Location
from facts.readers import FileNote, Item, Row, UnreadableFileError, _blank, _table_items
from facts.tabular import type_for_name

log = logging.getLogger(__name__)


def read_xlsx(path: io.BytesIO, label: str, notes: list[FileNote] | None = None) -> Iterator[Item]:
    import openpyxl  # only workbooks pay for importing it

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds on a broken workbook: all say "unreadable"
        raise UnreadableFileError(label, f"is not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from exc
    formulas: Any = None
    try:
        for index, sheet in enumerate(book.worksheets):
            sheet_label = f"{label}[{sheet.title}]"
            try:
                rows: list[Row] = list(enumerate(sheet.iter_rows(values_only=True), start=1))
            except Exception as exc:  # noqa: BLE001 - a broken sheet is that sheet's problem; the others are read
                yield FieldProblem(Location(sheet_label, 1), "", f"the sheet cannot be read ({type(exc).__name__}: {exc})")
                continue
            if all(_blank(cells) for _, cells in rows):
                continue  # an empty sheet (Sheet2, Sheet3 of a new workbook) says nothing
            xml = _sheet_xml(book, sheet)
            if formulas is None and b"<f" in xml:
                formulas = openpyxl.load_workbook(path, read_only=True, data_only=False)
            lost = _lost_cells(rows, xml, formulas.worksheets[index] if b"<f" in xml else None)
            for number in sorted(lost):
                yield FieldProblem(Location(sheet_label, number), "", lost[number])
            rows = [(n, cells) for n, cells in rows if n not in lost]
            no_type = (
                f'sheet "{sheet.title}" is not a fact type; it is skipped (name a sheet after a type, '
                f'e.g. meetings or 会议, dues or 党费, or add a "type" column)'
            )
            yield from _table_items(
                sheet_label, rows, type_for_name(sheet.title), no_type, exact_width=False, notes=notes
            )
    finally:
        book.close()
        if formulas is not None:
            formulas.close()


def _sheet_xml(book: Any, sheet: Any) -> bytes:
    try:
        return bytes(book._archive.read(sheet._worksheet_path))
    except (AttributeError, KeyError):  # another openpyxl: no merge or formula check, say so in the log
        log.warning("cannot read the XML of sheet %s: merged and formula cells are not checked", sheet.title)
        return b""


_MERGE = re.compile(rb'<mergeCell ref="([A-Z]+[0-9]+:[A-Z]+[0-9]+)"')


def _lost_cells(rows: list[Row], xml: bytes, formula_sheet: Any) -> dict[int, str]:
    """Data rows whose value a spreadsheet hides from a reader: merged cells, formulas never calculated.

    A merged range keeps its value only in its top-left cell; a formula saved by a program
    that does not calculate (a script, some converters) has no value at all.  Either would
    silently drop a field, so the row is reported naming the cell.
    """
    from openpyxl.utils import get_column_letter, range_boundaries

    lost: dict[int, str] = {}
    for ref in _MERGE.findall(xml):
        first_col, first_row, last_col, last_row = range_boundaries(ref.decode())
        for row in range(max(first_row, 2), last_row + 1):  # the header row's merges show as blank names
            for col in range(first_col, last_col + 1):
                if (row, col) != (first_row, first_col) and row not in lost:
                    cell = f"{get_column_letter(col)}{row}"
                    top = f"{get_column_letter(first_col)}{first_row}"
                    lost[row] = (
                        f"cell {cell} is part of the merged cells {ref.decode()}, whose value is only in {top}; "
                        "unmerge them and fill in every row"
                    )
    if formula_sheet is not None:
        values = dict(rows)
        for number, cells in enumerate(formula_sheet.iter_rows(values_only=True), start=1):
            if number == 1 or number in lost:
                continue
            shown = values.get(number, ())
            for col, written in enumerate(cells):
                if isinstance(written, str) and written.startswith("=") and (col >= len(shown) or shown[col] is None):
                    lost[number] = (
                        f"cell {get_column_letter(col + 1)}{number} holds the formula {written[:60]} without a "
                        "saved value; open and save the file in Excel or WPS (or paste the values) and import again"
                    )
                    break
    return lost
