"""A report as titled tables of plain cells: what every renderer (text, Markdown, XLSX, HTML) draws.

Keeping the wording and the column choice here means the four formats say
the same thing in the same words.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from engine.pack.model import SEVERITY_CN
from engine.report.model import Counts, Report
from engine.violations.tables import STATUS_CN

Cell = str | int | float | dt.date | None
INDENT = "　"  # a full-width space per level of the org tree

RATE_NOTES = (
    "组织合规率＝报告期内已判定的期间（月、季、年各计一期）中，该组织无任何问题的期间所占比例。",
    "规则合规率＝报告期内按该规则已判定的期间中，所查范围内无该规则问题的期间所占比例。",
    "整改率＝已解决的问题占问题总数（不含已豁免）的比例；“—”表示无可计算的数据。",
    "“已判定”指有成功的检查运行（check）判定过该期间；未判定期间的问题数为零不代表合规。",
)


@dataclass(frozen=True)
class Section:
    key: str  # summary | by_org | by_rule | trend | ledger | matrix
    title: str
    headers: list[str]
    rows: list[list[Cell]]
    narrow: list[int] = field(default_factory=list)  # columns to keep on a narrow screen; [] = all
    widths: list[int] = field(default_factory=list)  # suggested widths in half-width characters (XLSX)


def pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def severity_cn(severity: str) -> str:
    return SEVERITY_CN.get(severity, severity)


def _count_cells(c: Counts) -> list[Cell]:
    return [c.violations, c.serious, c.active, c.resolved, c.waived, c.overdue, pct(c.rectification_rate)]


_COUNT_HEADERS = ["问题数", "严重及以上", "待整改", "已整改", "已豁免", "逾期未整改", "整改率"]


def summary(report: Report) -> Section:
    t = report.totals
    judged = f"{len(report.judged)} 个期间" if report.judged else "无（未找到成功的检查运行）"
    runs = "、".join(f"#{r}" for r in report.runs) or "—"
    rows: list[list[Cell]] = [
        ["报告期间", report.period.label_cn],
        ["范围", report.org_name or "全部组织"],
        ["已判定期间", judged],
        ["依据的检查运行", runs],
        ["问题总数", t.violations],
        ["其中严重及以上", t.serious],
        ["待整改（待处理、已确认、整改中）", t.active],
        ["已整改", t.resolved],
        ["已豁免", t.waived],
        ["逾期未整改", t.overdue],
        ["整改率", pct(t.rectification_rate)],
        ["统计日期", report.as_of],
    ]
    return Section("summary", "总体情况", ["项目", "内容"], rows, widths=[34, 60])


def by_org(report: Report) -> Section:
    rows = [
        [INDENT * s.depth + s.name, *_count_cells(s.counts), f"{s.clean}/{s.judged}", pct(s.compliance_rate)]
        for s in report.by_org
    ]
    headers = ["组织", *_COUNT_HEADERS, "无问题期间/已判定", "合规率"]
    return Section(
        "by_org", "按组织统计", headers, rows, [0, 1, 2, 3, 4, 7, 8, 9], [34, 8, 11, 8, 8, 8, 11, 9, 18, 9]
    )


def by_rule(report: Report) -> Section:
    rows = [
        [
            s.title,
            s.rule,
            severity_cn(s.severity),
            *_count_cells(s.counts),
            s.orgs,
            s.subjects,
            f"{s.clean}/{s.judged}",
            pct(s.compliance_rate),
        ]
        for s in report.by_rule
    ]
    headers = ["规则", "编号", "级别", *_COUNT_HEADERS, "涉及组织", "涉及对象", "无问题期间/已判定", "合规率"]
    return Section(
        "by_rule", "按规则统计", headers, rows, [0, 2, 3, 5, 6, 9, 11, 13],
        [44, 30, 6, 8, 11, 8, 8, 8, 11, 9, 9, 9, 18, 9],
    )  # fmt: skip


def trend(report: Report) -> Section:
    rows = [
        [p.label_cn, *_count_cells(p.counts), p.orgs, "已判定" if p.judged else "未判定"]
        for p in report.trend
    ]
    headers = ["期间", *_COUNT_HEADERS, "涉及组织", "判定情况"]
    title = f"近{len(report.trend)}期趋势"
    return Section(
        "trend", title, headers, rows, [0, 1, 2, 3, 4, 7, 8, 9], [16, 8, 11, 8, 8, 8, 11, 9, 9, 10]
    )


def ledger(report: Report) -> Section:
    rows: list[list[Cell]] = [
        [
            e.no,
            e.org_name,
            e.period,
            e.problem,
            f"{e.title}（{e.basis}）",
            severity_cn(e.severity),
            e.owner or "",
            e.deadline,
            e.plan or "",
            STATUS_CN.get(e.status, e.status) + ("（逾期）" if e.overdue else ""),
            e.evidence,
            e.found,
            e.closed,
        ]
        for e in report.ledger
    ]
    headers = ["序号", "组织", "期间", "问题", "依据", "级别", "责任人", "整改期限", "整改措施", "状态", "整改佐证", "发现日期", "完成日期"]  # fmt: skip
    return Section(
        "ledger", "整改台账", headers, rows, [0, 1, 2, 3, 6, 7, 9],
        [6, 20, 9, 44, 40, 6, 10, 11, 30, 12, 34, 11, 11],
    )  # fmt: skip


def matrix(report: Report) -> Section:
    """Organisations × rules: violations in each cell (rules with at least one violation)."""
    rules = [s for s in report.by_rule if s.counts.violations]
    rows: list[list[Cell]] = []
    for s in report.by_org:
        cells = report.matrix.get(s.org or "", {})
        if cells:
            rows.append(
                [INDENT * s.depth + s.name, *(cells.get(r.rule) or None for r in rules), sum(cells.values())]
            )
    headers = ["组织", *(r.title for r in rules), "合计"]
    return Section("matrix", "组织×规则问题分布", headers, rows, widths=[30, *(14 for _ in rules), 8])


def sections(report: Report) -> list[Section]:
    """Every section, in reading order (the matrix is left to the formats that have room for it)."""
    return [summary(report), by_org(report), by_rule(report), trend(report), ledger(report)]


def text(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float):
        return f"{cell:g}"
    return str(cell)
