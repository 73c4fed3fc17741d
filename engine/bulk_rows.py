"""Writing many rows (violations, outbox alerts) in one batch through the DBAPI cursor.

Without SQLAlchemy's per-row work.  Used by :mod:`engine.violations.store` and :mod:`engine.alerts.outbox`.

:func:`facts.projection.insert_rows` does it for inserts; :func:`update_rows` here for updates by key.
SQLAlchemy's ``executemany`` of an UPDATE builds and processes a parameter dict a row (~35 µs a row when
a check stores 38,629 findings a second time); here the bind processors run once per column's value and
the rows go to the driver as tuples: ``executemany`` on SQLite; on psycopg2 ``COPY`` into a temporary table
and one ``UPDATE … FROM`` it (an UPDATE a row, even 500 a round trip, cost PostgreSQL ~7 s of a scale-1
rerun's 38,629; this way ~2.5 s in all); SQLAlchemy's ordinary ``executemany`` on any other driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from facts.projection import bound_rows, copy_text, insert_rows


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
    rows = bound_rows(dialect, table, named, rows)
    quote = dialect.identifier_preparer
    target = quote.format_table(table)
    if sqlite:
        assignments = ", ".join(f"{quote.quote(c)} = ?" for c in columns)
        statements = [f"UPDATE {target} SET {assignments} WHERE {quote.quote(key)} = ?"]
    else:  # one statement, not one a row: the rows COPYed into a temporary table, joined on the key
        scratch = quote.quote(f"_update_{table.name}")
        listed = ", ".join(quote.quote(c) for c in named)
        assignments = ", ".join(f"{quote.quote(c)} = u.{quote.quote(c)}" for c in columns)
        statements = [
            f"CREATE TEMPORARY TABLE {scratch} AS SELECT {listed} FROM {target} WITH NO DATA",
            f"COPY {scratch} ({listed}) FROM STDIN",
            f"UPDATE {target} AS t SET {assignments} FROM {scratch} AS u WHERE t.{quote.quote(key)} = u.{quote.quote(key)}",
            f"DROP TABLE {scratch}",
        ]
    cursor = conn.connection.cursor()
    sql = statements[0]
    try:
        if sqlite:
            cursor.executemany(sql, rows)
        else:
            for sql in statements:
                if sql.startswith("COPY"):
                    cursor.copy_expert(sql, copy_text(rows))
                else:
                    cursor.execute(sql)
    except dialect.loaded_dbapi.Error as exc:  # the error SQLAlchemy would have raised (IntegrityError, ...)
        raise sa.exc.DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error) from exc
    finally:
        cursor.close()
