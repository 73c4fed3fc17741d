"""Cell conventions of the tabular (CSV, XLSX) forms of the facts interchange format.

One table (CSV file or XLSX sheet) holds one type; its columns are the type's
fields, nested ones dotted (``minutes.content``).  Shared by
:mod:`facts.readers` and :mod:`facts.writers`, so that what one writes the
other reads back exactly.

Cell conventions:

- An empty cell means the field is absent.  (So an empty string and an absent
  optional field are the same thing in a table, as is a ``minutes`` object with
  no fields at all.)
- Lists (``attendees``, ``absent``, ``topics``, ``roles``, ``extra_orgs``) are
  items separated by ``;`` or the full-width ``；``.  Commas are *not*
  separators (they occur in free text, and a misplaced comma shows up as an
  unknown id rather than as silently split data).  Whitespace around items is
  ignored and empty items are dropped.
- ``on_leave`` items are ``member:reason:opinion_given`` (``:`` or ``：``);
  ``m01``, ``m01:出差`` and ``m01:出差:是`` are all accepted.  The last part is
  read as ``opinion_given`` only when it is a boolean word; otherwise
  everything after the member is the reason.
- Inside list and ``on_leave`` cells a backslash makes the next character
  literal (``\\;``, ``\\:``, ``\\\\``, a leading or trailing ``\\ ``); the
  writer escapes exactly what needs it.  Other cells are taken verbatim.
- Numeric fields (``amount``, ``base``, ``term_years``, ``year``) are converted
  from text when the text is a plain decimal number; otherwise the text is
  kept so that validation names the field.
- Booleans: ``true/false``, ``是/否``, ``1/0`` (also ``yes/no``, any case).
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from facts.models import MODELS, parse_month

LIST_SEPARATORS = (";", "；")
PART_SEPARATORS = (":", "：")
TRUE_WORDS = frozenset({"true", "是", "1", "yes", "y"})
FALSE_WORDS = frozenset({"false", "否", "0", "no", "n"})
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_COMMON_FIELDS = ("source", "note")


class Kind(Enum):
    """How a column's cells are read and written."""

    TEXT = "text"
    DATE = "date"
    MONTH = "month"
    INT = "int"
    DECIMAL = "decimal"
    BOOL = "bool"
    LIST = "list"
    LEAVES = "leaves"


@dataclass(frozen=True)
class Column:
    """One column of a type's table: ``minutes.content`` is path ``("minutes", "content")``."""

    name: str
    kind: Kind
    required: bool

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split("."))


def plural(type_name: str) -> str:
    """``meeting`` → ``meetings``; ``dues`` stays ``dues``."""
    return type_name if type_name.endswith("s") else f"{type_name}s"


#: Chinese names of the fact types, for files and sheets (会议.csv, a sheet named 党费)
CHINESE_NAMES: dict[str, tuple[str, ...]] = {
    "org": ("组织", "党组织", "组织机构"),
    "member": ("党员", "人员", "成员"),
    "meeting": ("会议", "三会一课", "会议记录"),
    "dues": ("党费", "党费缴纳", "党费收缴"),
    "signoff": ("签署", "责任书", "签收"),
    "interview": ("谈话", "谈心谈话", "约谈"),
    "petition": ("信访", "信访件"),
    "election": ("换届", "选举", "换届选举"),
    "field_visit": ("调研", "基层调研"),
    "declaration": ("个人有关事项报告", "有关事项报告", "申报"),
    "promotion": ("提拔", "任用", "干部任用", "选拔任用"),
}
_BY_CHINESE = {name: type_name for type_name, names in CHINESE_NAMES.items() for name in names}


def type_for_name(name: str) -> str | None:
    """The fact type a file or sheet name stands for (singular or plural, any case, or Chinese), or None."""
    key = re.sub(r"[\s\-]+", "_", name.strip().lower())
    for type_name in MODELS:
        if key in (type_name, plural(type_name)):
            return type_name
    return _BY_CHINESE.get(re.sub(r"\s+", "", name))


def _kind_of(annotation: Any, metadata: list[Any]) -> Kind | type[BaseModel]:
    """Classify a pydantic field annotation; a nested model is returned as itself."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = get_args(annotation)
        return _kind_of(base, [*metadata, *extra])
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in get_args(annotation) if a is not type(None)]
        return _kind_of(inner, metadata)
    if origin is list:
        (item,) = get_args(annotation)
        return Kind.LEAVES if isinstance(item, type) and issubclass(item, BaseModel) else Kind.LIST
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return annotation
        if issubclass(annotation, bool):
            return Kind.BOOL
        if issubclass(annotation, int):
            return Kind.INT
        if issubclass(annotation, Decimal):
            return Kind.DECIMAL
        if issubclass(annotation, date):
            return Kind.DATE
        if any(getattr(m, "func", None) is parse_month for m in metadata):
            return Kind.MONTH
    return Kind.TEXT


def _model_columns(model: type[BaseModel], prefix: str, skip: tuple[str, ...]) -> list[Column]:
    out: list[Column] = []
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        kind = _kind_of(info.annotation, list(info.metadata))
        if isinstance(kind, Kind):
            out.append(Column(prefix + name, kind, info.is_required()))
        else:
            out.extend(_model_columns(kind, f"{prefix}{name}.", ()))
    return out


def columns(type_name: str) -> list[Column]:
    """The columns of a type's table, in the model's field order, ``source`` and ``note`` last."""
    model = MODELS[type_name]
    own = _model_columns(model, "", ("type", *_COMMON_FIELDS))
    common = [c for c in _model_columns(model, "", ("type",)) if c.name in _COMMON_FIELDS]
    return own + common


# --- reading cells ---------------------------------------------------------------------------


def _split_raw(text: str, separators: tuple[str, ...]) -> list[str]:
    """Split on unescaped separators; escapes are kept in the parts."""
    if "\\" not in text:
        return re.split("|".join(map(re.escape, separators)), text) if separators else [text]
    parts = [""]
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            parts[-1] += text[i : i + 2]
            i += 2
        else:
            if char in separators:
                parts.append("")
            else:
                parts[-1] += char
            i += 1
    return parts


def _unescape(raw: str) -> str:
    """Drop escapes and the unescaped whitespace at both ends."""
    if "\\" not in raw:
        return raw.strip()
    chars: list[tuple[str, bool]] = []
    i = 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw):
            chars.append((raw[i + 1], True))
            i += 2
        else:
            chars.append((raw[i], False))
            i += 1
    start, end = 0, len(chars)
    while start < end and not chars[start][1] and chars[start][0].isspace():
        start += 1
    while end > start and not chars[end - 1][1] and chars[end - 1][0].isspace():
        end -= 1
    return "".join(c for c, _ in chars[start:end])


def _escape(text: str, special: tuple[str, ...]) -> str:
    """Escape backslashes, ``special`` characters, and whitespace at both ends."""
    lead = len(text) - len(text.lstrip())
    trail = len(text.rstrip())
    return "".join(
        f"\\{c}" if c == "\\" or c in special or i < lead or i >= trail else c for i, c in enumerate(text)
    )


def parse_bool(text: str) -> bool | str:
    """A boolean word as a bool, anything else unchanged (validation then names the field)."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return text


def parse_number(text: str, integer: bool) -> int | float | str:
    """Plain decimal text as a number (an integral one as int when ``integer``), else unchanged."""
    stripped = text.strip()
    if not _NUMBER_RE.match(stripped):
        return text
    if re.fullmatch(r"[+-]?\d+", stripped):
        return int(stripped)
    value = float(stripped)
    if integer and value.is_integer():
        return int(value)
    return value


def _parse_leave(raw: str) -> dict[str, Any]:
    """``member:reason:opinion_given`` (raw, escapes still in) as an ``on_leave`` object."""
    parts = _split_raw(raw, PART_SEPARATORS)
    leave: dict[str, Any] = {"member": _unescape(parts[0])}
    rest = parts[1:]
    opinion = parse_bool(_unescape(rest[-1])) if len(rest) >= 2 else None
    if isinstance(opinion, bool):
        rest = rest[:-1]
    if rest:
        # the reason keeps colons of its own: cut it out of the raw text, not re-joined
        start = len(parts[0]) + 1
        end = start + sum(len(p) + 1 for p in rest) - 1
        reason = _unescape(raw[start:end])
        if reason:
            leave["reason"] = reason
    if isinstance(opinion, bool):
        leave["opinion_given"] = opinion
    return leave


def parse_cell(text: str, kind: Kind) -> Any:
    """The field value a cell's text stands for; None when the cell is empty (field absent)."""
    if text == "":
        return None
    if kind is Kind.TEXT or kind is Kind.DATE or kind is Kind.MONTH:
        return text
    if kind is Kind.INT or kind is Kind.DECIMAL:
        return parse_number(text, integer=kind is Kind.INT)
    if kind is Kind.BOOL:
        return parse_bool(text)
    if kind is Kind.LIST:
        items = [_unescape(p) for p in _split_raw(text, LIST_SEPARATORS)]
        return [item for item in items if item] or None
    if kind is Kind.LEAVES:
        raws = [p for p in _split_raw(text, LIST_SEPARATORS) if _unescape(p)]
        return [_parse_leave(p) for p in raws] or None
    return text


def cell_text(value: Any, kind: Kind) -> str:
    """A spreadsheet cell value (openpyxl: datetime, date, time, int, float, bool, str) as text."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime) and value.time() == time(0) and value.tzinfo is None:
        value = value.date()
    if isinstance(value, date) and not isinstance(value, datetime):
        return f"{value.year:04d}-{value.month:02d}" if kind is Kind.MONTH else value.isoformat()
    if isinstance(value, time):
        return value.isoformat(timespec="minutes" if value.second == 0 else "seconds")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


# --- writing cells ---------------------------------------------------------------------------


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def format_cell(value: Any, kind: Kind) -> str:
    """The cell text of an interchange value, so that :func:`parse_cell` gives it back."""
    if value is None:
        return ""
    if kind is Kind.LIST:
        return ";".join(_escape(str(v), LIST_SEPARATORS) for v in value)
    if kind is Kind.LEAVES:
        return ";".join(_format_leave(v) for v in value)
    return _scalar_text(value)


def _format_leave(leave: dict[str, Any]) -> str:
    special = LIST_SEPARATORS + PART_SEPARATORS
    text = _escape(str(leave["member"]), special)
    reason = leave.get("reason")
    opinion = leave.get("opinion_given")
    if reason is not None or opinion is not None:
        text += ":" + _escape(str(reason or ""), special)
    if opinion is not None:
        text += ":" + _scalar_text(opinion)
    return text
