"""Charts drawn on the server as inline SVG: no script, no library, and they shrink to a phone's width.

The SVG has a ``viewBox`` and no fixed size, so the stylesheet's ``svg { max-width: 100% }``
scales it; labels are escaped (an org or rule name is data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup


@dataclass(frozen=True)
class Bar:
    label: str  # under the bar (short: "3月")
    value: int
    title: str = ""  # the tooltip (long: "2017年3月：5 个问题")


def _nice_max(largest: int) -> int:
    """The top of the value axis: a round number at or above ``largest`` (at least 1)."""
    if largest <= 5:
        return max(largest, 1)
    step = 10 ** (len(str(largest)) - 1)
    for mult in (1, 2, 2.5, 5, 10):
        top = int(step * mult)
        if top >= largest:
            return top
    return largest


def bar_chart(bars: Sequence[Bar], title: str, width: int = 460, height: int = 220) -> Markup:
    """A vertical bar chart with the value over each bar and a light grid (four steps)."""
    left, right, top, bottom = 36, 8, 14, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max((b.value for b in bars), default=0))
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(5):
        value = peak * i / 4
        y = top + plot_h - plot_h * i / 4
        text = f"{value:g}" if value == int(value) else ""
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        if text:
            parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{text}</text>')
    if bars:
        slot = plot_w / len(bars)
        bar_w = max(slot * 0.62, 2)
        every = 1 if len(bars) <= 12 else (2 if len(bars) <= 24 else 3)  # labels that fit under the bars
        for i, b in enumerate(bars):
            x = left + slot * i + (slot - bar_w) / 2
            h = plot_h * b.value / peak
            y = top + plot_h - h
            tip = escape(b.title or f"{b.label}：{b.value}")
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" class="col"><title>{tip}</title></rect>'
            )
            if b.value:
                parts.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" class="val" text-anchor="middle">{b.value}</text>'
                )
            if i % every == 0:
                parts.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{height - 8}" class="tick" text-anchor="middle">'
                    f"{escape(b.label)}</text>"
                )
    parts.append("</svg>")
    return Markup("".join(parts))
