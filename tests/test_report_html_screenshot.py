"""The HTML report renders in a real browser: headless Chromium takes a screenshot, and the charts are in it.

Needs Debian's ``chromium`` and ``fonts-noto-cjk``; without Chromium the test fails and says how to install it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image
from test_report_data import AS_OF, seed

from engine.report.data import build_report
from engine.report.render_html import write_html

CHROMIUM = Path("/usr/bin/chromium")
BAR_RED = (0xC0, 0x39, 0x2B)  # the 待整改 bars of the by-rule chart
BAR_BLUE = (0x29, 0x80, 0xB9)  # the second rule of the monthly chart


def screenshot(page: Path, png: Path, profile: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install it with `apt-get install -y chromium fonts-noto-cjk`")
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1280,1600", page.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert png.exists(), f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"


def near(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))


def test_html_report_renders_in_chromium(sqlite_engine, tmp_path):
    seed(sqlite_engine)
    report = build_report(sqlite_engine, "2017", as_of=AS_OF, trend_periods=2)
    page = write_html(report, tmp_path / "report.html")
    png = tmp_path / "report.png"
    screenshot(page, png, tmp_path / "chromium-profile")
    with Image.open(png) as image:
        assert image.size == (1280, 1600)
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
        assert len(colours) > 200, "the page looks blank: too few distinct colours"
        counts = {c: n for n, c in colours}
        red = sum(n for c, n in counts.items() if near(c, BAR_RED))
        blue = sum(n for c, n in counts.items() if near(c, BAR_BLUE))
        # plotly.js ran and drew both charts: bars are solid areas of the series colours
        assert red > 2000, f"no by-rule bars drawn ({red} red pixels)"
        assert blue > 200, f"no monthly bars drawn ({blue} blue pixels)"
        # the title is drawn in CJK glyphs, not tofu boxes: the dark-red heading has many pixels
        heading = rgb.crop((300, 0, 980, 80))
        dark_red = sum(
            n for n, c in heading.getcolors(maxcolors=1 << 20) or [] if near(c, (0xA6, 0x1B, 0x1B), 40)
        )
        assert dark_red > 500
