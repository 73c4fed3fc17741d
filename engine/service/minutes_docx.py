"""Reading a meeting's minutes (会议记录) from a .docx file into the minutes fields of a meeting.

A branch's minutes are usually a Word file written on a template: labelled lines
("时间：2017年6月15日 9:00—10:30", "地点：三楼会议室", "主持人：薛霞", "记录人：李兴林",
"内容：……", "成效：……") or a two-column table with the same labels.  Each label starts a
field; the paragraphs after it, up to the next label, continue it.  What is found is returned
as text for the form, where the secretary checks it before submitting; names of the host and
recorder are matched to the roster by the page, not here.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass, field

from facts.errors import PartyrulesError

MAX_DOCX_BYTES = 5 * 1024 * 1024

# label (as written in minutes) → field; longer labels first so 会议内容 wins over 内容
LABELS: dict[str, str] = {
    "会议时间": "time",
    "时间": "time",
    "日期": "date",
    "会议日期": "date",
    "会议地点": "place",
    "地点": "place",
    "主持人": "host",
    "主持": "host",
    "记录人": "recorder",
    "记录": "recorder",
    "会议议程": "agenda",
    "会议议题": "agenda",
    "议程": "agenda",
    "议题": "agenda",
    "会议内容": "content",
    "内容": "content",
    "会议成效": "outcome",
    "成效": "outcome",
    "会议决定": "outcome",
    "决定事项": "outcome",
}
_LABEL = re.compile(
    r"^\s*(" + "|".join(sorted(map(re.escape, LABELS), key=len, reverse=True)) + r")\s*[:：]\s*(.*)$", re.S
)
_DATE = re.compile(r"(\d{4})\s*[年\-/.]\s*(\d{1,2})\s*[月\-/.]\s*(\d{1,2})\s*日?")
_CLOCK = re.compile(r"(\d{1,2})\s*[:：]\s*(\d{2})\s*[-—–~～至到]+\s*(\d{1,2})\s*[:：]\s*(\d{2})")


class MinutesFileError(PartyrulesError):
    """A minutes file that is not a readable .docx (the message says what to do, in Chinese)."""


@dataclass
class ParsedMinutes:
    """The fields found (text as written), and the meeting date if one was written."""

    fields: dict[str, str] = field(default_factory=dict)  # time place host recorder agenda content outcome
    date: dt.date | None = None

    @property
    def found(self) -> list[str]:
        return [k for k, v in self.fields.items() if v]


def parse_minutes_docx(data: bytes, filename: str = "会议记录.docx") -> ParsedMinutes:
    """Parse a .docx's labelled paragraphs and two-column tables into the minutes fields."""
    if len(data) > MAX_DOCX_BYTES:
        raise MinutesFileError(f"{filename}：文件超过 {MAX_DOCX_BYTES // (1024 * 1024)} MB，请压缩图片后重试")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise MinutesFileError(f"{filename}：不是 .docx 文件（Word 2007 及以上格式），请另存为 .docx 后上传")
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise MinutesFileError(
            f"{filename}：无法读取为 .docx（{type(exc).__name__}），请用 Word 另存为 .docx 后上传"
        ) from exc
    lines: list[str] = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells]
            cells = [
                c for i, c in enumerate(cells) if c and (i == 0 or c != cells[i - 1])
            ]  # merged cells repeat
            for i in range(0, len(cells) - 1, 2):
                lines.append(f"{cells[i].rstrip(':：')}：{cells[i + 1]}")
    return parse_minutes_lines(lines)


def parse_minutes_lines(lines: list[str]) -> ParsedMinutes:
    """The labelled lines of a minutes text: each label starts a field, unlabelled lines continue it."""
    out = ParsedMinutes()
    parts: dict[str, list[str]] = {}
    current: str | None = None
    for raw in lines:
        text = raw.strip()
        if not text:
            continue
        m = _LABEL.match(text)
        if m:
            current = LABELS[m.group(1)]
            parts.setdefault(current, [])
            if m.group(2).strip():
                parts[current].append(m.group(2).strip())
        elif current in ("content", "outcome", "agenda"):
            parts[current].append(text)
    for name, chunks in parts.items():
        value = "\n".join(chunks).strip()
        if name == "date":
            out.date = _find_date(value)
            continue
        if name == "time":
            out.date = out.date or _find_date(value)
            clock = _CLOCK.search(value)
            value = f"{int(clock[1]):02d}:{clock[2]}-{int(clock[3]):02d}:{clock[4]}" if clock else value
        out.fields[name] = value
    return out


def _find_date(text: str) -> dt.date | None:
    m = _DATE.search(text)
    if not m:
        return None
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None
