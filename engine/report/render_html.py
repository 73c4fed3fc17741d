"""A report as one self-contained HTML file: summary figures, plotly charts (by rule, by month) and the tables.

plotly.js is embedded inline (``include_plotlyjs=True``), so the file opens
offline and can be mailed as it is.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from pathlib import Path

import plotly.graph_objects as go

from engine.report.model import Report, ReportError
from engine.report.sections import RATE_NOTES, Section, pct, sections, text

FONT_FAMILY = '"Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", sans-serif'
TOP_RULES = 8  # rules drawn separately in the monthly chart; the rest are summed as 其他
_STATUS_SERIES = (
    ("待整改", "active", "#c0392b"),
    ("已整改", "resolved", "#27ae60"),
    ("已豁免", "waived", "#95a5a6"),
)
_PALETTE = ["#c0392b", "#2980b9", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#f1c40f", "#7f8c8d", "#bdc3c7"]
_CSS = """
body { font-family: FONTS; margin: 24px auto; max-width: 1200px; color: #222; background: #fff; }
h1 { text-align: center; color: #a61b1b; font-size: 26px; margin-bottom: 4px; }
.sub { text-align: center; color: #555; margin-bottom: 20px; }
h2 { border-left: 5px solid #a61b1b; padding-left: 10px; font-size: 19px; margin-top: 28px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { flex: 1 1 150px; border: 1px solid #e0d0d0; border-radius: 6px; padding: 10px 14px; background: #fdf7f7; }
.card .n { font-size: 26px; font-weight: bold; color: #a61b1b; } .card .l { color: #555; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin-top: 6px; }
th, td { border: 1px solid #ccc; padding: 4px 6px; vertical-align: top; }
th { background: #f3e6e6; } td.num { text-align: right; white-space: nowrap; }
tr:nth-child(even) td { background: #fafafa; }
.notes { color: #555; font-size: 13px; }
table.kv { width: auto; min-width: 520px; }
""".replace("FONTS", FONT_FAMILY)


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.5},
        font={"family": FONT_FAMILY, "size": 13},
        height=height,
        barmode="stack",
        margin={"l": 20, "r": 20, "t": 90, "b": 40},
        legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "xanchor": "left"},
        plot_bgcolor="#fff",
    )
    fig.update_xaxes(gridcolor="#eee")
    fig.update_yaxes(gridcolor="#eee", automargin=True)
    return fig


def _count_ticks(largest: int) -> dict[str, object]:
    """Whole-number ticks for a count axis."""
    return {"tick0": 0, "dtick": max(1, math.ceil(largest / 10)), "rangemode": "tozero"}


def _empty(fig: go.Figure) -> None:
    fig.add_annotation(text="本期无问题", showarrow=False, font={"size": 18, "color": "#888"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)


def rule_chart(report: Report) -> go.Figure:
    """Horizontal bars, one per rule with violations, stacked by state."""
    stats = sorted((s for s in report.by_rule if s.counts.violations), key=lambda s: s.counts.violations)
    fig = go.Figure()
    for name, attr, colour in _STATUS_SERIES:
        fig.add_trace(
            go.Bar(
                name=name,
                y=[s.title for s in stats],
                x=[getattr(s.counts, attr) for s in stats],
                orientation="h",
                marker_color=colour,
            )
        )
    fig.update_xaxes(**_count_ticks(max((s.counts.violations for s in stats), default=1)))
    if not stats:
        _empty(fig)
    return _layout(fig, f"{report.period.label_cn}问题数（按规则）", 140 + 28 * max(len(stats), 4))


def month_chart(report: Report) -> go.Figure:
    """Bars per month over the trend window, stacked by rule (the largest rules; the rest as 其他)."""
    months = report.months
    days = [f"{m}-01" for m in months]
    totals = Counter[str]()
    titles: dict[str, str] = {}
    for m in report.by_month:
        totals[m.rule] += m.count
        titles[m.rule] = m.title
    top = [rule for rule, _ in totals.most_common(TOP_RULES)]
    series: dict[str, Counter[str]] = {rule: Counter() for rule in top}
    other: Counter[str] = Counter()
    for m in report.by_month:
        series.get(m.rule, other)[m.month] += m.count
    fig = go.Figure()
    for i, rule in enumerate(top):
        fig.add_trace(
            go.Bar(name=titles[rule], x=days, y=[series[rule][m] for m in months], marker_color=_PALETTE[i])
        )
    if other:
        fig.add_trace(go.Bar(name="其他", x=days, y=[other[m] for m in months], marker_color=_PALETTE[-1]))
    if not totals:
        _empty(fig)
    fig.update_xaxes(
        type="date",
        tickformat="%Y-%m",
        dtick="M1" if len(months) <= 24 else "M3",
        tickangle=-45,
        title_text="月份（季度、年度问题计入期末月份）",
    )
    per_month = Counter[str]()
    for m in report.by_month:
        per_month[m.month] += m.count
    fig.update_yaxes(title_text="问题数", **_count_ticks(max(per_month.values(), default=1)))
    _layout(fig, f"近{len(report.trend)}期各月问题数（按规则）", 560)
    fig.update_layout(legend={"orientation": "v", "x": 1.02, "y": 1.0, "yanchor": "top", "xanchor": "left"})
    fig.update_layout(margin={"t": 60})
    return fig


def _table(section: Section, css: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in section.headers)
    body = []
    for row in section.rows:
        cells = "".join(
            f'<td class="num">{html.escape(text(c))}</td>'
            if isinstance(c, int | float)
            else f"<td>{html.escape(text(c))}</td>"
            for c in row
        )
        body.append(f"<tr>{cells}</tr>")
    rows = "".join(body) or f'<tr><td colspan="{len(section.headers)}">（无）</td></tr>'
    title = html.escape(section.title)
    return f'<h2>{title}</h2><table class="{css}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _cards(report: Report) -> str:
    t = report.totals
    items = [
        ("问题总数", str(t.violations)),
        ("严重及以上", str(t.serious)),
        ("待整改", str(t.active)),
        ("已整改", str(t.resolved)),
        ("逾期未整改", str(t.overdue)),
        ("整改率", pct(t.rectification_rate)),
    ]
    cards = "".join(
        f'<div class="card"><div class="n">{n}</div><div class="l">{html.escape(label)}</div></div>'
        for label, n in items
    )
    return f'<div class="cards">{cards}</div>'


def render_html(report: Report) -> str:
    """The whole page as a string (plotly.js inline, roughly 4–5 MB)."""
    config = {"displaylogo": False, "responsive": True}
    charts = [
        rule_chart(report).to_html(
            full_html=False, include_plotlyjs=True, div_id="chart-by-rule", config=config
        ),
        month_chart(report).to_html(
            full_html=False, include_plotlyjs=False, div_id="chart-by-month", config=config
        ),
    ]
    secs = sections(report)
    summary = next(s for s in secs if s.key == "summary")
    sub = f"范围：{report.org_name or '全部组织'}　统计日期：{report.as_of}　生成时间：{report.generated_at:%Y-%m-%d %H:%M} UTC"
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in [*report.notes, *RATE_NOTES])
    parts = [
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body>",
        f'<h1>{html.escape(report.title)}</h1><div class="sub">{html.escape(sub)}</div>',
        _cards(report),
        "<h2>图表</h2>",
        *charts,
        _table(summary, "kv"),
        *(_table(s) for s in secs if s.key != "summary"),
        f'<h2>说明</h2><ul class="notes">{notes}</ul>',
        "</body></html>",
    ]
    return "\n".join(parts)


def write_html(report: Report, path: str | Path) -> Path:
    target = Path(path)
    try:
        target.write_text(render_html(report), encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write the HTML report: {exc.strerror or exc}", str(target)) from exc
    return target
