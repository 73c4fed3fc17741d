"""``meeting.minutes_parts``: the bits of the minutes' parts that have text, filled on writing and by the
migration, held equal to the SQL the meeting load ran on the text before (copied here as the reference)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import itertools
from pathlib import Path

import sqlalchemy as sa

from engine.subjects.single import _PART_BITS
from facts import tables as t
from facts.errors import Location
from facts.models import _CONTROL
from facts.store import FactStore

_M = t.MeetingRow.__table__  # type: ignore[attr-defined]
_VERSIONS = Path(__file__).parents[1] / "engine" / "migrations" / "versions"

# the reference: what the meeting load computed from the text at every check before the column existed
_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _has_text(column):
    left = sa.func.ltrim(sa.func.coalesce(column, ""), sa.literal(_WHITESPACE))
    return (sa.func.length(left) > 0).label(column.name)


def _old_bits(conn) -> dict[str, int]:
    cols = [_M.c.id, *(_has_text(_M.c[c]) for c in t.MINUTES_TEXT_COLUMNS)]
    return {
        row[0]: sum(1 << i for i, flag in enumerate(row[1:]) if flag)
        for row in conn.execute(sa.select(*cols))
    }


def _migration():
    (path,) = _VERSIONS.glob("*_meeting_minutes_parts_*.py")
    spec = importlib.util.spec_from_file_location("minutes_parts_migration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# edge cases: NULL, empty, every white-space character alone, white space around text, characters that look
# blank but are not white space to str.strip() (zero-width space, word joiner, BOM), control characters
_WHITE = list(_WHITESPACE)
_TEXTS = [None, "", " ", "  \u3000\n", "\t\r\n", "x", " x ", "\u3000内容\u3000", "\u200b", "\u2060", "\ufeff",
          "\x00", "\x01", "\x1f\x1e", "\xa0a", "0", *_WHITE, "".join(_WHITE), "".join(_WHITE) + "."]


def _rows() -> list[dict]:
    """Meeting rows giving each column every edge case (and the other columns a rotating one)."""
    rows = []
    for i, (col, text) in enumerate(itertools.product(t.MINUTES_TEXT_COLUMNS, _TEXTS)):
        row = {c: _TEXTS[(i + k) % len(_TEXTS)] for k, c in enumerate(t.MINUTES_TEXT_COLUMNS)}
        row[col] = text
        rows.append(row)
    return rows


def test_the_white_space_sql_trims_is_exactly_what_str_strip_removes():
    stripped_by_python = "".join(c for c in map(chr, range(0x110000)) if c.isspace())
    assert stripped_by_python == _WHITESPACE
    assert _migration().WHITESPACE == _WHITESPACE


def test_the_bits_are_the_columns_of_the_meeting_load():
    assert t.MINUTES_TEXT_COLUMNS == _migration().COLUMNS
    assert sorted(_PART_BITS) == sorted(t.MINUTES_TEXT_COLUMNS)
    assert sorted(_PART_BITS.values()) == [1 << i for i in range(len(t.MINUTES_TEXT_COLUMNS))]


def test_python_and_the_migration_give_what_the_old_sql_gave(db_engine):
    """Every edge case, on SQLite and PostgreSQL: the bits written by Python (imports, submissions) and by
    the migration's backfill equal the old SQL's flags."""
    store = FactStore(db_engine)
    store.create_schema()
    # no NUL: facts refuse it (facts.models._CONTROL), PostgreSQL's text cannot hold it, and SQLite's
    # length() stops at it (the old SQL called "\x00" empty)
    rows = [r for r in _rows() if not any(v and "\x00" in v for v in r.values())]
    written = {}
    for i, row in enumerate(rows):
        texts = tuple(row[c] for c in t.MINUTES_TEXT_COLUMNS)
        written[f"m{i}"] = t.minutes_parts(texts)
    with db_engine.begin() as conn:
        conn.execute(
            sa.insert(_M),
            [{"id": f"m{i}", "org": "o", "kind": "theme_day", "date": dt.date(2017, 6, 6),
              "minutes_parts": written[f"m{i}"], **row} for i, row in enumerate(rows)],
        )
    with db_engine.connect() as conn:
        old = _old_bits(conn)
    assert old == written
    assert len({v for v in old.values()}) > 20  # the cases set and clear every bit in many combinations
    with db_engine.begin() as conn:
        conn.execute(sa.update(_M).values(minutes_parts=-1))
        conn.execute(sa.update(_M).values(minutes_parts=_migration().parts_expression(_M)))
        backfilled = dict(conn.execute(sa.select(_M.c.id, _M.c.minutes_parts)).all())
    assert backfilled == old


def test_an_imported_meeting_stores_the_bits_of_its_minutes(db_engine):
    """Through the importer's projection (imports and single submissions alike), and after a correction."""
    store = FactStore(db_engine)
    store.create_schema()
    org = {"type": "org", "id": "b1", "name": "第一党支部", "kind": "branch"}
    member = {"type": "member", "id": "m1", "name": "成员1", "org": "b1", "joined": "2010-01-01"}
    printable = [x for x in _TEXTS if x is None or not _CONTROL.search(x)]  # what facts accept
    meetings = []
    for i, text in enumerate(printable):
        minutes = {"time": text, "place": "会议室", "agenda": printable[-i], "content": text,
                   "outcome": printable[i // 2], "recorder": "m1"}
        meetings.append({"type": "meeting", "id": f"b1-{i}", "org": "b1", "kind": "theme_day",
                         "date": "2017-06-06", "minutes": {k: v for k, v in minutes.items() if v is not None}})
    meetings.append({"type": "meeting", "id": "b1-none", "org": "b1", "kind": "theme_day", "date": "2017-06-07"})
    report = store.import_items((Location("f", i), o) for i, o in enumerate([org, member, *meetings]))
    assert not report.rejected
    with db_engine.connect() as conn:
        stored = dict(conn.execute(sa.select(_M.c.id, _M.c.minutes_parts)).all())
        assert stored == _old_bits(conn)
    assert stored["b1-none"] == 0
    corrected = dict(meetings[0], minutes={"time": " ", "content": "有内容"})
    store.import_items([(Location("g", 1), corrected)])
    with db_engine.connect() as conn:
        stored = dict(conn.execute(sa.select(_M.c.id, _M.c.minutes_parts)).all())
        assert stored == _old_bits(conn)
    assert stored["b1-0"] == _PART_BITS["minutes_content"]
