"""A report as an XLSX workbook an office can print: one sheet per section, the ledger (整改台账) among them.

Every sheet has a title row and a subtitle row, a header row repeated on
each printed page, landscape A4 fitted to the page width, column widths
measured for Chinese (a CJK character is two columns wide), wrapped text
with row heights to match, and page numbers in the footer.
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from engine.report.model import Report, ReportError
from engine.report.sections import RATE_NOTES, Section, matrix, sections, text
from engine.safe_text import for_xml, is_formula_like

FONT = "宋体"
HEADER_ROW = 3
_THIN = Side(style="thin", color="808080")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_HEADER_FILL = PatternFill("solid", fgColor="D9E1F2")
_SHEET_NAMES = {"summary": "总体情况", "by_org": "按组织", "by_rule": "按规则", "trend": "趋势", "ledger": "整改台账", "matrix": "组织×规则"}  # fmt: skip
LINE_HEIGHT = 15.0  # points per wrapped line at 10.5 pt
STYLE_TEXT, STYLE_NUMBER, STYLE_DATE = "报表文字", "报表数字", "报表日期"


def _add_styles(wb: Workbook) -> None:
    """Named cell styles: one style record per kind of cell, however many rows (fast for long ledgers)."""
    font = Font(name=FONT, size=10.5)
    wrap = Alignment(vertical="top", wrap_text=True)
    number = Alignment(vertical="top", horizontal="right")
    wb.add_named_style(NamedStyle(STYLE_TEXT, font=font, border=_BORDER, alignment=wrap))
    wb.add_named_style(NamedStyle(STYLE_NUMBER, font=font, border=_BORDER, alignment=number))
    wb.add_named_style(
        NamedStyle(STYLE_DATE, font=font, border=_BORDER, alignment=number, number_format="yyyy-mm-dd")
    )


def display_width(value: str) -> int:
    """Columns the text takes on paper: East Asian wide and full-width characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in value)


def _widths(section: Section) -> list[int]:
    out = []
    for i, header in enumerate(section.headers):
        cap = section.widths[i] if i < len(section.widths) else 30
        longest = max([display_width(header), *(display_width(text(row[i])) for row in section.rows)])
        out.append(max(6, min(cap, longest + 2)))
    return out


def _setup_print(ws: Worksheet, title: str) -> None:
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.6
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"
    ws.oddHeader.right.text = title
    ws.freeze_panes = ws.cell(row=HEADER_ROW + 1, column=1)


def put(ws: Worksheet, row: int, column: int, value: Any) -> Any:
    """Write ``value`` into a cell; user text always as a string, never a formula.

    openpyxl stores a string starting with "=" as a formula (the report wrote live ``=HYPERLINK(...)``
    and ``=cmd|' /C calc'!A0`` from org names and minutes), and refuses control characters (an ESC in a
    name failed the whole report).  So: characters XML cannot hold are shown as escapes, the cell type
    is string, and a text that starts like a formula (= + - @ tab CR, OWASP) gets Excel's quote prefix,
    so it stays text when a person edits the cell or saves the sheet as CSV."""
    cell = ws.cell(row=row, column=column)
    if value is None or isinstance(value, dt.date | int | float):
        cell.value = value
        return cell
    shown = for_xml(str(value))
    cell.value = shown
    cell.data_type = "s"
    if is_formula_like(shown):
        cell.quotePrefix = True
    return cell


def _write_section(ws: Worksheet, section: Section, title: str, subtitle: str) -> None:
    ncols = len(section.headers)
    widths = _widths(section)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=ncols)
    put(ws, 1, 1, title).font = Font(name=FONT, size=16, bold=True)
    ws.cell(row=1, column=1).alignment = Alignment(horizontal="center", vertical="center")
    ws.row_dimensions[1].height = 30
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=ncols)
    put(ws, 2, 1, subtitle).font = Font(name=FONT, size=10.5)
    for col, header in enumerate(section.headers, 1):
        cell = put(ws, HEADER_ROW, col, header)
        cell.font = Font(name=FONT, size=10.5, bold=True)
        cell.fill = _HEADER_FILL
        cell.border = _BORDER
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        ws.column_dimensions[get_column_letter(col)].width = widths[col - 1]
    ws.row_dimensions[HEADER_ROW].height = LINE_HEIGHT * max(
        math.ceil(display_width(h) / max(1, w - 1)) for h, w in zip(section.headers, widths, strict=True)
    )
    for r, row in enumerate(section.rows, HEADER_ROW + 1):
        lines = 1
        for col, value in enumerate(row, 1):
            if isinstance(value, dt.date):
                ws.cell(row=r, column=col, value=value).style = STYLE_DATE
            elif isinstance(value, int | float):
                ws.cell(row=r, column=col, value=value).style = STYLE_NUMBER
            else:
                cell = ws.cell(row=r, column=col)
                cell.style = STYLE_TEXT
                put(ws, r, col, value)
            lines = max(lines, math.ceil(display_width(text(value)) / max(1, widths[col - 1] - 1)))
        ws.row_dimensions[r].height = LINE_HEIGHT * lines
    _setup_print(ws, title)


def build_workbook(report: Report) -> Workbook:
    """The workbook in memory: one sheet per section plus the org × rule matrix."""
    wb = Workbook()
    _add_styles(wb)
    subtitle = (
        f"范围：{report.org_name or '全部组织'}　期间：{report.period.label_cn}　"
        f"统计日期：{report.as_of}　生成时间：{report.generated_at:%Y-%m-%d %H:%M} UTC"
    )
    scope = report.org_name or "全部组织"
    for i, section in enumerate([*sections(report), matrix(report)]):
        ws = wb.active if i == 0 else wb.create_sheet()
        assert ws is not None
        ws.title = _SHEET_NAMES.get(section.key, section.title)[:31]
        title = (
            report.title if section.key == "summary" else f"{scope}{report.period.label_cn}{section.title}"
        )
        _write_section(ws, section, title, subtitle)
        if section.key == "summary":
            start = HEADER_ROW + len(section.rows) + 2
            span = sum(_widths(section))
            for j, note in enumerate([*report.notes, *RATE_NOTES]):
                row = start + j
                ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=len(section.headers))
                cell = put(ws, row, 1, f"注：{note}")
                cell.font = Font(name=FONT, size=9)
                cell.alignment = Alignment(wrap_text=True, vertical="top")
                ws.row_dimensions[row].height = LINE_HEIGHT * math.ceil(display_width(str(cell.value)) / span)
    return wb


def write_xlsx(report: Report, path: str | Path) -> Path:
    """Write the workbook to ``path``; a file that cannot be written raises ReportError naming it."""
    target = Path(path)
    try:
        build_workbook(report).save(target)
    except OSError as exc:
        raise ReportError(f"cannot write the workbook: {exc.strerror or exc}", str(target)) from exc
    return target
