"""Write facts (canonical interchange dicts, :func:`facts.models.canonical`) as JSON Lines or CSV.

What these write, :func:`facts.readers.read_file` reads back to the same
facts.  CSV files follow the conventions of :mod:`facts.tabular`; they are
written UTF-8 with a BOM so that Excel on Chinese Windows opens them as UTF-8.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from facts.errors import FactError
from facts.models import MODELS, TYPE_ORDER
from facts.tabular import Column, columns, format_cell, plural


class UnwritableFactError(FactError):
    """A fact that cannot be written: an unknown type, a field with no column, a value JSON lacks."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"fact #{index + 1}: {message}")
        self.index = index


def write_jsonl(facts: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Write one JSON object per line (UTF-8 text, not ASCII-escaped); return how many were written."""
    count = 0
    for index, fact in enumerate(facts):
        try:
            line = json.dumps(fact, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise UnwritableFactError(index, f"cannot be written as JSON: {exc}") from exc
        out.write(line + "\n")
        count += 1
    return count


def csv_file_name(type_name: str) -> str:
    """``meeting`` → ``meetings.csv``: the name :func:`facts.readers.read_file` takes the type from."""
    return f"{plural(type_name)}.csv"


def write_csv(facts: Iterable[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write one CSV file per type present into ``out_dir`` (created if missing); return their paths.

    Files are named by :func:`csv_file_name`, in :data:`facts.models.TYPE_ORDER`;
    columns are the type's fields in model order (``source``, ``note`` last).
    """
    rows: dict[str, list[list[str]]] = {}
    layouts: dict[str, list[Column]] = {}
    for index, fact in enumerate(facts):
        type_name = fact.get("type")
        if not isinstance(type_name, str) or type_name not in MODELS:
            raise UnwritableFactError(index, f"unknown type {type_name!r}")
        if type_name not in layouts:
            layouts[type_name] = columns(type_name)
        layout = layouts[type_name]
        rows.setdefault(type_name, []).append(_row(index, fact, layout))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for type_name in TYPE_ORDER:
        if type_name not in rows:
            continue
        path = out_dir / csv_file_name(type_name)
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([c.name for c in layouts[type_name]])
            writer.writerows(rows[type_name])
        written.append(path)
    return written


def _flatten(fact: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"minutes": {"content": …}}`` → ``{"minutes.content": …}``; lists are left whole."""
    flat: dict[str, Any] = {}
    for key, value in fact.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _row(index: int, fact: dict[str, Any], layout: list[Column]) -> list[str]:
    flat = _flatten(fact)
    flat.pop("type")
    names = {c.name for c in layout}
    unknown = sorted(set(flat) - names)
    if unknown:
        raise UnwritableFactError(index, f"{fact['type']} has no column for {', '.join(unknown)}")
    return [format_cell(flat.get(c.name), c.kind) for c in layout]
