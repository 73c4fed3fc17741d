"""Rows of the projection tables for one fact (see :mod:`facts.tables`).

A row is a plain tuple in the order of :data:`COLUMNS` for its table, so the
importer can hand whole batches to the database driver without building a
dict per row.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Table

from facts import tables as t
from facts.db import sqlite_pragmas
from facts.minhash import BANDS, band_keys
from facts.models import (
    Declaration,
    Dues,
    Election,
    FactBase,
    FieldVisit,
    Interview,
    Meeting,
    Member,
    MemberChange,
    Org,
    OrgChange,
    Petition,
    Promotion,
    Signoff,
    natural_key,
)

Row = tuple[Any, ...]
Rows = list[tuple[Table, Row]]


def _table(model: type) -> Table:
    return model.__table__  # type: ignore[attr-defined,no-any-return]


ORG = _table(t.OrgRow)
MEMBER = _table(t.MemberRow)
MEMBER_ROLE = _table(t.MemberRoleRow)
MEMBER_EXTRA_ORG = _table(t.MemberExtraOrgRow)
MEMBER_FLAG = _table(t.MemberFlagRow)
MEMBER_CHANGE = _table(t.MemberChangeRow)
ORG_CHANGE = _table(t.OrgChangeRow)
MEETING = _table(t.MeetingRow)
MEETING_TOPIC = _table(t.MeetingTopicRow)
ATTENDANCE = _table(t.AttendanceRow)
MINUTES_SIG = _table(t.MinutesSigRow)
DUES = _table(t.DuesRow)
SIGNOFF = _table(t.SignoffRow)
INTERVIEW = _table(t.InterviewRow)
PETITION = _table(t.PetitionRow)
ELECTION = _table(t.ElectionRow)
FIELD_VISIT = _table(t.FieldVisitRow)
DECLARATION = _table(t.DeclarationRow)
PROMOTION = _table(t.PromotionRow)

#: the columns of each projection table, in the order of the tuples :func:`rows_for` builds
COLUMNS: dict[Table, tuple[str, ...]] = {
    ORG: ("id", "name", "kind", "parent", "established", "dissolved", "term_years"),
    MEMBER: ("id", "name", "org", "status", "category", "joined", "left", "unit"),
    MEMBER_ROLE: ("member", "role"),
    MEMBER_EXTRA_ORG: ("member", "org"),
    MEMBER_FLAG: ("member", "excused", "dues_quarterly"),
    MEMBER_CHANGE: (
        "key", "member", "date", "status", "category", "org", "roles_appointed", "roles_ended", "extra_orgs",
        "excused", "dues_quarterly",
    ),
    ORG_CHANGE: ("key", "org", "date", "name", "kind", "parent", "term_years", "dissolved"),
    MEETING: (
        "id",
        "seq",
        "org",
        "kind",
        "date",
        "host",
        "lecturer",
        "has_minutes",
        "minutes_time",
        "minutes_place",
        "minutes_recorder",
        "minutes_agenda",
        "minutes_content",
        "minutes_outcome",
        "minutes_parts",
    ),
    MEETING_TOPIC: ("meeting", "topic"),
    ATTENDANCE: ("meeting", "member", "status", "opinion_given", "reason"),
    MINUTES_SIG: ("meeting", *(f"b{i}" for i in range(BANDS))),
    DUES: ("member", "month", "amount", "paid_on", "base"),
    SIGNOFF: ("key", "document", "unit", "signer", "date"),
    INTERVIEW: ("key", "date", "interviewer", "interviewee", "kind", "topic"),
    PETITION: ("id", "received", "registered", "accepted", "closed", "subject"),
    ELECTION: ("key", "org", "date", "term_years"),
    FIELD_VISIT: ("key", "member", "date", "place", "topic"),
    DECLARATION: ("key", "member", "year", "filed"),
    PROMOTION: ("key", "member", "date", "position"),
}

#: projection tables of each fact type, and the column that holds the fact's key
OWNED: dict[str, list[tuple[Table, str]]] = {
    "org": [(ORG, "id")],
    "member": [(MEMBER, "id"), (MEMBER_ROLE, "member"), (MEMBER_EXTRA_ORG, "member"), (MEMBER_FLAG, "member")],
    "member_change": [(MEMBER_CHANGE, "key")],
    "org_change": [(ORG_CHANGE, "key")],
    "meeting": [
        (MEETING, "id"),
        (MEETING_TOPIC, "meeting"),
        (ATTENDANCE, "meeting"),
        (MINUTES_SIG, "meeting"),
    ],
    "dues": [],  # composite key: the store deletes by (member, month)
    "signoff": [(SIGNOFF, "key")],
    "interview": [(INTERVIEW, "key")],
    "petition": [(PETITION, "id")],
    "election": [(ELECTION, "key")],
    "field_visit": [(FIELD_VISIT, "key")],
    "declaration": [(DECLARATION, "key")],
    "promotion": [(PROMOTION, "key")],
}


def signature_rows(meetings: list[Meeting]) -> Rows:
    """``minutes_sig`` rows (MinHash band keys) for the meetings that have minutes content, computed in one batch."""
    with_text: list[str] = []
    texts: list[str] = []
    for m in meetings:
        content = m.minutes.content if m.minutes else None
        if content and content.strip():
            with_text.append(m.id)
            texts.append(content)
    rows: Rows = []
    for meeting, keys in zip(with_text, band_keys(texts), strict=True):
        if keys:
            rows.append((MINUTES_SIG, (meeting, *keys)))
    return rows


def _meeting_rows(fact: Meeting, seq: int) -> Rows:
    mins = fact.minutes
    rows: Rows = [
        (
            MEETING,
            (fact.id, seq, fact.org, fact.kind, fact.date, fact.host, fact.lecturer, True,
             mins.time, mins.place, mins.recorder, mins.agenda, mins.content, mins.outcome,
             t.minutes_parts((mins.time, mins.place, mins.agenda, mins.content, mins.outcome, mins.recorder)))
            if mins is not None
            else (fact.id, seq, fact.org, fact.kind, fact.date, fact.host, fact.lecturer, False,
                  None, None, None, None, None, None, 0),
        )
    ]  # fmt: skip
    meeting = fact.id
    rows += [(MEETING_TOPIC, (meeting, x)) for x in dict.fromkeys(fact.topics)]
    seen = set(fact.attendees)  # the model guarantees attendees are distinct
    rows += [(ATTENDANCE, (meeting, m, "present", False, None)) for m in fact.attendees]
    for lv in fact.on_leave:
        if lv.member not in seen:
            seen.add(lv.member)
            rows.append((ATTENDANCE, (meeting, lv.member, "leave", lv.opinion_given, lv.reason)))
    for m in fact.absent:
        if m not in seen:
            seen.add(m)
            rows.append((ATTENDANCE, (meeting, m, "absent", False, None)))
    return rows


def rows_for(fact: FactBase, seq: int) -> Rows:
    """Projection rows of a fact's current version (``seq`` = its fact_version.seq)."""
    match fact:
        case Meeting():
            return _meeting_rows(fact, seq)
        case Dues():
            base = float(fact.base) if fact.base is not None else None
            return [(DUES, (fact.member, fact.month, float(fact.amount), fact.paid_on, base))]
        case Member():
            rows: Rows = [
                (
                    MEMBER,
                    (
                        fact.id,
                        fact.name,
                        fact.org,
                        fact.status,
                        fact.category,
                        fact.joined,
                        fact.left,
                        fact.unit,
                    ),
                )
            ]
            rows += [(MEMBER_ROLE, (fact.id, r)) for r in dict.fromkeys(fact.roles)]
            rows += [(MEMBER_EXTRA_ORG, (fact.id, o)) for o in dict.fromkeys(fact.extra_orgs)]
            if fact.excused or fact.dues_quarterly:
                rows.append((MEMBER_FLAG, (fact.id, fact.excused, fact.dues_quarterly)))
            return rows
        case MemberChange():
            extra = json.dumps(list(dict.fromkeys(fact.extra_orgs))) if fact.extra_orgs is not None else None
            return [
                (
                    MEMBER_CHANGE,
                    (natural_key(fact), fact.member, fact.date, fact.status, fact.category, fact.org,
                     ",".join(dict.fromkeys(fact.roles_appointed)), ",".join(dict.fromkeys(fact.roles_ended)),
                     extra, fact.excused, fact.dues_quarterly),
                )
            ]  # fmt: skip
        case OrgChange():
            return [
                (
                    ORG_CHANGE,
                    (natural_key(fact), fact.org, fact.date, fact.name, fact.kind, fact.parent, fact.term_years,
                     fact.dissolved),
                )
            ]  # fmt: skip
        case Org():
            return [
                (
                    ORG,
                    (
                        fact.id,
                        fact.name,
                        fact.kind,
                        fact.parent,
                        fact.established,
                        fact.dissolved,
                        fact.term_years,
                    ),
                )
            ]
        case Signoff():
            return [(SIGNOFF, (natural_key(fact), fact.document, fact.unit, fact.signer, fact.date))]
        case Interview():
            return [
                (
                    INTERVIEW,
                    (natural_key(fact), fact.date, fact.interviewer, fact.interviewee, fact.kind, fact.topic),
                )
            ]
        case Petition():
            return [
                (
                    PETITION,
                    (fact.id, fact.received, fact.registered, fact.accepted, fact.closed, fact.subject),
                )
            ]
        case Election():
            return [(ELECTION, (natural_key(fact), fact.org, fact.date, fact.term_years))]
        case FieldVisit():
            return [(FIELD_VISIT, (natural_key(fact), fact.member, fact.date, fact.place, fact.topic))]
        case Declaration():
            return [(DECLARATION, (natural_key(fact), fact.member, fact.year, fact.filed))]
        case Promotion():
            return [(PROMOTION, (natural_key(fact), fact.member, fact.date, fact.position))]
    raise TypeError(f"not a fact: {fact!r}")


# --- writing rows in bulk --------------------------------------------------------------------

_SQLITE_CHECKPOINT_PAGES = 25_000  # WAL pages between checkpoints while importing (~100 MB; SQLite's default: 1,000)
_SQLITE_CACHE_KB = 131_072  # 128 MB: a connection's page cache during an import (SQLite's default is 2 MB)


def bulk_cache(conn: sa.Connection) -> AbstractContextManager[None]:
    """On SQLite, for the import: a page cache of ``_SQLITE_CACHE_KB`` (the indexes of a big store stay in
    memory), and a checkpoint of the WAL every ``_SQLITE_CHECKPOINT_PAGES`` pages instead of every 1,000
    (each checkpoint syncs the disk; commits stay as durable as before); both as they were afterwards."""
    return sqlite_pragmas(conn, {"cache_size": -_SQLITE_CACHE_KB, "wal_autocheckpoint": _SQLITE_CHECKPOINT_PAGES})


def insert_rows(conn: sa.Connection, table: sa.Table, columns: tuple[str, ...], rows: list[Row]) -> None:
    """Insert tuples (values in ``columns`` order) in one batch through the DBAPI cursor, in ``conn``'s transaction.

    SQLAlchemy's per-column bind processing (dates and booleans for SQLite, aware
    datetimes) is applied once per column; its per-row parameter handling is skipped:
    ``executemany`` on SQLite, ``COPY`` on psycopg2, and an ordinary SQLAlchemy
    executemany on any other driver.
    """
    if not rows:
        return
    dialect = conn.dialect
    fast = (dialect.name == "sqlite" and dialect.paramstyle == "qmark") or dialect.driver == "psycopg2"
    if not fast:
        conn.execute(sa.insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    rows = bound_rows(dialect, table, columns, rows)
    quote = dialect.identifier_preparer
    target = f"{quote.format_table(table)} ({', '.join(quote.quote(c) for c in columns)})"
    sqlite = dialect.name == "sqlite"
    sql = (
        f"INSERT INTO {target} VALUES ({', '.join('?' * len(columns))})"
        if sqlite
        else f"COPY {target} FROM STDIN"
    )
    cursor = conn.connection.cursor()
    try:
        if sqlite:
            cursor.executemany(sql, rows)
        else:
            cursor.copy_expert(sql, copy_text(rows))
    except dialect.loaded_dbapi.Error as exc:  # the error SQLAlchemy would have raised (IntegrityError, ...)
        raise sa.exc.DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error) from exc
    finally:
        cursor.close()


_MEMO_TYPES = frozenset({bool, int, date, datetime, type(None)})  # immutable, hashable, few distinct values a batch


def bound_rows(dialect: sa.Dialect, table: sa.Table, columns: Sequence[str], rows: list[Row]) -> list[Row]:
    """``rows`` (values in ``columns`` order) with each column's bind processor applied, as SQLAlchemy would
    before handing them to the driver (the bulk paths hand them over themselves)."""
    processors = [
        (i, p)
        for i, name in enumerate(columns)
        if (p := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    return _processed(rows, processors) if processors else rows


def _processed(rows: list[Row], processors: Sequence[tuple[int, Callable[[Any], Any]]]) -> list[Row]:
    """``rows`` with each processed column's values through its bind processor, once per distinct value.

    A batch repeats few values in those columns (booleans, dates, the import's timestamp);
    SQLAlchemy's processors are a chain of Python calls a value.  Each processed column is
    taken out (in C) and mapped through its distinct values; the rows are rebuilt only when
    a column changed (see :func:`_processed_column`).  Only values whose type is in
    :data:`_MEMO_TYPES` are remembered (``True == 1``: the type is part of the key).
    """
    changed: dict[int, list[Any]] = {}
    for i, process in processors:
        values = list(map(itemgetter(i), rows))
        done = _processed_column(values, process)
        if done is not values:
            changed[i] = done
    if not changed:
        return rows
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
    for i, done in changed.items():
        columns[i] = done
    return list(zip(*columns, strict=True))


_PLAIN_MEMO = frozenset({bool, int, date, type(None)})  # kinds whose equal values a dict may share


def _processed_column(values: list[Any], process: Callable[[Any], Any]) -> list[Any]:
    """One column's values through ``process``, once per distinct value (see :func:`_processed`).

    ``values`` itself when the processor leaves each value as the driver binds it anyway:
    unchanged, or a bool made the int it is (SQLite's Boolean processor; a bool *is* that
    int to the drivers, which bind it so).
    """
    kinds = set(map(type, values))
    if kinds <= _PLAIN_MEMO and len(kinds - {type(None)}) <= 1:  # one kind (and None): equal values are alike
        done = {value: process(value) for value in set(values)}
        if all(out is value or (type(value) is bool and type(out) is int and out == value) for value, out in done.items()):
            return values
        return list(map(done.__getitem__, values))
    objects = dict(zip(map(id, values), values, strict=True))
    if len(objects) == 1:  # one object throughout (the import's timestamp): processed once
        (value,) = objects.values()
        return [process(value)] * len(values)
    memo: dict[tuple[Any, ...], Any] = {}
    out: list[Any] = []
    for value in values:
        kind = type(value)
        if kind in _MEMO_TYPES:
            key = (kind, value, value.tzinfo) if kind is datetime else (kind, value)  # equal times, other zones
            result = memo.get(key, memo)
            if result is memo:
                result = memo[key] = process(value)
            out.append(result)
        else:
            out.append(process(value))
    return out


def copy_text(rows: list[Row]) -> io.StringIO:
    """Rows in PostgreSQL's COPY text format (tab-separated, ``\\N`` for NULL, backslash escapes)."""
    out = io.StringIO()
    write = out.write
    for row in rows:
        write("\t".join([_copy_value(v) for v in row]))
        write("\n")
    out.seek(0)
    return out


def _copy_value(value: Any) -> str:
    kind = type(value)
    if kind is str:
        if "\\" in value or "\n" in value or "\r" in value or "\t" in value:
            return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
        return value  # type: ignore[no-any-return]
    if value is None:
        return "\\N"
    if kind is bool:
        return "t" if value else "f"
    if kind is float:
        return repr(value)
    if kind is int:
        return str(value)
    if isinstance(value, date):  # dates and aware datetimes: ISO 8601
        return value.isoformat()  # type: ignore[no-any-return]
    raise TypeError(f"no COPY text form for {kind.__name__} value {value!r}")
