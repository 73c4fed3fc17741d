"""Text from users made safe for where it is shown: terminals, spreadsheets, Markdown.

Org names, meeting minutes, rule titles and messages are user text; shown as they are they can steer a
terminal (ESC/OSC sequences: colours, hyperlinks, a changed window title, a cleared screen), run as a
formula in a spreadsheet (``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``), break the XLSX file (control
characters are not allowed in XML), or become HTML/links in Markdown (``<script>``, ``javascript:``).
Nothing is dropped: a control character is shown as its escape (``\\x1b``), so evidence stays readable.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls but tab and newline, DEL, C1 controls (0x9b is a one-byte CSI), and the bidirectional
# overrides and isolates that reorder what a terminal shows ("Trojan source")
_TERMINAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# what XML 1.0 does not allow at all (openpyxl refuses the cell), plus the same C1/bidi set
_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u202a-\u202e\u2066-\u2069]")
# OWASP "CSV injection": a cell that starts with one of these is a formula to Excel, LibreOffice and WPS
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
# what makes Markdown inside a line: code, emphasis, links/images, HTML and entities, table cells,
# strikethrough (a "#", "-" or "1." only counts at the start of a line, and a cell or item never is one)
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~])")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}" if ord(match.group()) < 0x100 else f"\\u{ord(match.group()):04x}"


def for_terminal(value: Any) -> str:
    """``value`` as text with every control sequence shown as its escape (``\\x1b``), never obeyed."""
    return _TERMINAL.sub(_escape, "" if value is None else str(value))


def for_xml(text: str) -> str:
    """``text`` without the characters an XLSX (XML) file cannot hold, each shown as its escape."""
    return _XML.sub(_escape, text)


def is_formula_like(text: str) -> bool:
    return text.startswith(FORMULA_START)


def for_markdown(value: Any) -> str:
    """``value`` as Markdown text that renders literally: HTML tags, links, emphasis and table pipes are
    escaped with backslashes; a line break becomes ``<br>`` (the one tag emitted on purpose)."""
    text = for_terminal(value)
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\r\n", "\n").replace("\n", "<br>")


def json_for_terminal(data: Any) -> str:
    """JSON text whose strings hold no raw control characters (the standard library leaves C1 and
    bidi characters raw with ``ensure_ascii=False``)."""
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    return _TERMINAL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
