"""Renderers: terminal table, Markdown, XLSX (print setup) and HTML (self-contained, plotly charts)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import re

import pytest
from openpyxl import load_workbook
from test_report_data import AS_OF, seed

from engine.report.data import build_report
from engine.report.model import Report, ReportError
from engine.report.render_html import month_chart, render_html, rule_chart, write_html
from engine.report.render_text import render_markdown, render_table
from engine.report.render_xlsx import HEADER_ROW, display_width, write_xlsx
from engine.report.sections import pct
from engine.schema import init_schema
from facts.db import make_engine

NOW = dt.datetime(2018, 3, 15, 8, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Report:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('render') / 'r.db'}")
    seed(engine)
    try:
        return build_report(engine, "2017", as_of=AS_OF, now=NOW, trend_periods=3)
    finally:
        engine.dispose()


@pytest.fixture
def report(built) -> Report:
    return copy.deepcopy(built)  # a test may change its copy


@pytest.fixture
def empty(sqlite_engine) -> Report:
    init_schema(sqlite_engine)
    return build_report(sqlite_engine, "2017-06", as_of=AS_OF, now=NOW)


def test_pct():
    assert (pct(None), pct(0.0), pct(1 / 7), pct(1.0)) == ("—", "0.0%", "14.3%", "100.0%")


def test_table_has_every_section_and_aligns_chinese(report):
    out = render_table(report, width=200)
    for heading in (
        "全部组织2017年度党建合规情况报告",
        "总体情况",
        "按组织统计",
        "按规则统计",
        "近3期趋势",
        "整改台账",
    ):
        assert heading in out
    assert "　第一党支部" in out and "15/17" in out and "14.3%" in out
    assert "整改中（逾期）" in out and "未判定" in out
    assert "整改佐证" not in out  # the narrow ledger
    assert "整改佐证" in render_table(report, width=300, wide=True)
    # rich measures wide characters: every line of one table has the same display width
    widths = {display_width(line) for line in out.splitlines() if line.startswith(("┃", "│", "┡", "└"))}
    assert len(widths) >= 1 and max(widths) <= 200


def test_markdown(report):
    md = render_markdown(report)
    assert md.startswith("# 全部组织2017年度党建合规情况报告\n")
    ledger = md.split("## 整改台账")[1].split("## ")[0]
    assert len([ln for ln in ledger.splitlines() if ln.startswith("| ") and not ln.startswith("| 序号")]) == 8
    assert "## 组织×规则问题分布" in md and "## 说明" in md and "整改率＝" in md


def test_markdown_escapes_pipes(report):
    report.ledger[0] = dataclasses.replace(report.ledger[0], problem="甲|乙\n丙")
    assert "甲\\|乙<br>丙" in render_markdown(report)


def test_xlsx_is_print_ready(report, tmp_path):
    report.ledger[2] = dataclasses.replace(report.ledger[2], problem="党员未按时交纳党费，" * 12)
    path = write_xlsx(report, tmp_path / "r.xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames == ["总体情况", "按组织", "按规则", "趋势", "整改台账", "组织×规则"]
    ws = wb["整改台账"]
    assert ws["A1"].value == "全部组织2017年度整改台账"
    assert any(str(r) == "A1:M1" for r in ws.merged_cells.ranges)
    assert [c.value for c in ws[HEADER_ROW]][:4] == ["序号", "组织", "期间", "问题"]
    assert ws.max_row == HEADER_ROW + 8
    assert ws.page_setup.orientation == "landscape"
    assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.print_title_rows == f"${HEADER_ROW}:${HEADER_ROW}"
    assert ws.freeze_panes == f"A{HEADER_ROW + 1}"
    # Chinese columns are measured two per character; the problem column is wider than the number column
    assert ws.column_dimensions["D"].width > 30 > ws.column_dimensions["A"].width
    found = [ws.cell(row=r, column=12).value for r in range(HEADER_ROW + 1, ws.max_row + 1)]
    assert all(isinstance(v, dt.datetime | dt.date) for v in found)
    statuses = [ws.cell(row=r, column=10).value for r in range(HEADER_ROW + 1, ws.max_row + 1)]
    assert "整改中（逾期）" in statuses and "已豁免" in statuses
    heights = [ws.row_dimensions[r].height for r in range(HEADER_ROW + 1, ws.max_row + 1)]
    assert heights[2] == max(heights) > heights[0] >= 15  # wrapped text gets taller rows
    summary = wb["总体情况"]
    assert summary["A1"].value == report.title
    assert any(str(c.value).startswith("注：组织合规率") for c in summary["A"])
    matrix = wb["组织×规则"]
    assert [c.value for c in matrix[HEADER_ROW]][-1] == "合计"


def test_xlsx_unwritable(report, tmp_path):
    with pytest.raises(ReportError) as err:
        write_xlsx(report, tmp_path / "missing" / "r.xlsx")
    assert err.value.where.endswith("r.xlsx")


def test_html_is_self_contained_with_charts(report, tmp_path):
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>") and 'lang="zh-CN"' in page
    assert not re.search(r"<script[^>]+src=", page)  # plotly.js is inline, nothing fetched
    assert "plotly" in page.lower() and len(page) > 1_000_000
    assert 'id="chart-by-rule"' in page and 'id="chart-by-month"' in page
    assert "整改台账" in page and "第一党支部第一党小组" in page
    path = write_html(report, tmp_path / "r.html")
    assert path.read_text(encoding="utf-8") == page


def test_html_escapes_text(report):
    report.ledger[0] = dataclasses.replace(report.ledger[0], problem="<script>alert(1)</script>")
    page = render_html(report)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page


def test_charts_data(report):
    fig = json.loads(rule_chart(report).to_json())
    names = [t["name"] for t in fig["data"]]
    assert names == ["待整改", "已整改", "已豁免"]
    pending = dict(zip(fig["data"][0]["y"], fig["data"][0]["x"], strict=True))
    assert pending["支部委员会会议每月至少召开1次"] == 1  # one rectifying, one resolved
    month = json.loads(month_chart(report).to_json())
    assert len(month["data"][0]["x"]) == 36  # every month of 2015–2017
    total = sum(sum(t["y"]) for t in month["data"])
    assert total == 10  # every violation of the trend window, once


def test_empty_report_renders_everywhere(empty, tmp_path):
    assert "（无）" in render_table(empty)
    assert "（无）" in render_markdown(empty)
    write_xlsx(empty, tmp_path / "e.xlsx")
    page = render_html(empty)
    assert "本期无问题" in page or json.dumps("本期无问题")[1:-1] in page  # plotly escapes non-ASCII
