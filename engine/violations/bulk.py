"""Writing many violation rows in one batch through the DBAPI cursor, without SQLAlchemy's per-row work.

:func:`facts.projection.insert_rows` does it for inserts; :func:`update_rows` here for updates by key.
SQLAlchemy's ``executemany`` of an UPDATE builds and processes a parameter dict a row (~35 µs a row when
a check stores 38,629 findings a second time); here the bind processors run once per column's value and
the rows go to the driver as tuples: ``executemany`` on SQLite, ``execute_batch`` (500 statements a round
trip) on psycopg2, SQLAlchemy's ordinary ``executemany`` on any other driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from facts.projection import _processed, insert_rows


def insert_tuples(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` (values in ``columns`` order) through the bulk path, the other columns' scalar
    defaults filled in as SQLAlchemy would; a computed default must be given (the bulk path would skip it)."""
    if not rows:
        return
    given = tuple(columns)
    defaults = {
        c.name: c.default.arg  # type: ignore[attr-defined]
        for c in table.columns
        if c.name not in given and c.default is not None and getattr(c.default, "is_scalar", False)
    }
    computed = [
        c.name
        for c in table.columns
        if c.name not in given and c.default is not None and c.name not in defaults
    ]
    if computed:  # a computed default would be silently skipped by the bulk path: make it loud
        raise ValueError(f"{table.name}: give {computed} explicitly (their defaults are computed)")
    tail = tuple(defaults.values())
    insert_rows(conn, table, (*given, *defaults), [(*row, *tail) for row in rows] if tail else rows)


def update_rows(
    conn: sa.Connection, table: sa.Table, key: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Set ``columns`` of the rows whose ``key`` column holds each row's last value.

    Each row holds the values of ``columns`` in order, then the key.  A key no row has updates nothing.
    """
    if not rows:
        return
    dialect = conn.dialect
    sqlite = dialect.name == "sqlite" and dialect.paramstyle == "qmark"
    if not sqlite and dialect.driver != "psycopg2":
        stmt = sa.update(table).where(table.c[key] == sa.bindparam("b_key"))
        stmt = stmt.values({c: sa.bindparam(f"v_{c}") for c in columns})  # bind names differ from columns
        names = [f"v_{c}" for c in columns]
        conn.execute(stmt, [{**dict(zip(names, row[:-1], strict=True)), "b_key": row[-1]} for row in rows])
        return
    named = (*columns, key)
    processors = [
        (i, p)
        for i, name in enumerate(named)
        if (p := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    if processors:
        rows = _processed(rows, processors)
    quote = dialect.identifier_preparer
    mark = "?" if sqlite else "%s"
    assignments = ", ".join(f"{quote.quote(c)} = {mark}" for c in columns)
    sql = f"UPDATE {quote.format_table(table)} SET {assignments} WHERE {quote.quote(key)} = {mark}"
    cursor = conn.connection.cursor()
    try:
        if sqlite:
            cursor.executemany(sql, rows)
        else:
            from psycopg2.extras import execute_batch

            execute_batch(cursor, sql, rows, page_size=500)
    except dialect.loaded_dbapi.Error as exc:  # the error SQLAlchemy would have raised (IntegrityError, ...)
        raise sa.exc.DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error) from exc
    finally:
        cursor.close()
