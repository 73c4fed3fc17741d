"""Bulk loads: a big import into empty tables builds their secondary indexes once, at its end.

Keeping a B-tree per indexed column up to date row by row is most of the cost of
inserting into a table with many indexes (``minutes_sig`` has 16): inserting
without them and building each index once afterwards is several times faster.
So an import of at least :data:`BULK_FROM` objects drops the secondary indexes
(not unique, not the primary key: nothing that decides what is stored) of each
table it writes into that holds few rows compared with the import, stores, and
builds them again when it ends, failed or not, in the same way on SQLite and
PostgreSQL.

Crash safety: every index dropped is one the models declare, so an import whose process died before building them back is repaired by
:func:`restore_indexes`, which every import runs before it starts (one catalog
query when nothing is missing) and ``partyrules init`` runs too.  The unique
constraints stay, so concurrent imports are serialised and checked exactly as
before; a query run meanwhile is only slower.

Memory: SQLite sorts the rows of an index it builds in memory up to the
connection's page cache size (``PRAGMA cache_size``; the import raises it to
128 MB), then in temporary files (``temp_store`` is left at its default, FILE).
So the indexes are built with a cache of :data:`SORT_CACHE_KB`: the sort spills
to disk sooner, the importer's peak stays bounded, and the build takes as long.
The sort may use :data:`SORT_THREADS` helper threads (``PRAGMA threads``): the
import's workers are done by then, so the other cores are free.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, DropIndex

from facts.db import sqlite_pragmas

log = logging.getLogger(__name__)

BULK_FROM = 20_000  # valid objects in an import: below this every index is kept up to date row by row
ROWS_PER_OBJECT = 4  # a table is bulk-loaded when it holds at most this many times fewer rows than the import has objects
SORT_CACHE_KB = 16_384  # SQLite: page cache (and so in-memory sort) while building indexes; then as it was
# SQLite: helper threads an index build's sort may start (PRAGMA threads; 0 by default).  The indexes are
# built when the import's workers are done, on one core otherwise: with 2, the importing thread's CPU for a
# build of 1.5 M rows fell from 2.9 to 1.4 s (the helpers took the rest).
SORT_THREADS = 2


def secondary_indexes(table: sa.Table) -> list[sa.Index]:
    """The indexes of ``table`` that only speed reading (not unique; the primary key is not among them)."""
    return sorted((ix for ix in table.indexes if not ix.unique), key=lambda ix: str(ix.name))


def existing_index_names(conn: sa.Connection) -> set[str]:
    """Names of the indexes in the connection's database (its current schema on PostgreSQL): one query."""
    if conn.dialect.name == "sqlite":
        return set(conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'").scalars())
    if conn.dialect.name == "postgresql":
        return set(
            conn.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()").scalars()
        )
    inspector = sa.inspect(conn)
    return {str(ix["name"]) for name in inspector.get_table_names() for ix in inspector.get_indexes(name)}


def restore_indexes(conn: sa.Connection, tables: Iterable[sa.Table]) -> list[str]:
    """Build every secondary index of ``tables`` that is missing (committed); the names built."""
    wanted = [(table, ix) for table in tables for ix in secondary_indexes(table)]
    if not wanted:
        return []
    if conn.in_transaction():
        conn.commit()
    with conn.begin():  # the usual case, every import of a few submitted facts: nothing is missing
        present = existing_index_names(conn)
    if all(ix.name in present for _, ix in wanted):
        return []
    with _sort_cache(conn), conn.begin():
        present = existing_index_names(conn)
        tables_present = set(sa.inspect(conn).get_table_names())
        built = []
        for table, ix in wanted:
            if ix.name not in present and table.name in tables_present:
                conn.execute(CreateIndex(ix, if_not_exists=True))
                built.append(str(ix.name))
    if built:
        log.info("built %d indexes: %s", len(built), ", ".join(built))
    return built


def _sort_cache(conn: sa.Connection) -> AbstractContextManager[None]:
    """On SQLite, a page cache of :data:`SORT_CACHE_KB` at most (see the module's text) and :data:`SORT_THREADS`
    helper threads for the sorts; both as they were afterwards."""
    if conn.dialect.name != "sqlite":
        return nullcontext()
    size = int(conn.exec_driver_sql("PRAGMA cache_size").scalar() or -2000)
    page = int(conn.exec_driver_sql("PRAGMA page_size").scalar() or 4096)
    conn.commit()
    values = {"threads": SORT_THREADS}
    if (-size if size < 0 else size * page // 1024) > SORT_CACHE_KB:
        values["cache_size"] = -SORT_CACHE_KB
    return sqlite_pragmas(conn, values)


def _few_rows(conn: sa.Connection, table: sa.Table, limit: int) -> bool:
    """Whether ``table`` holds at most ``limit`` rows (counts no further than that)."""
    inner = sa.select(sa.literal(1)).select_from(table).limit(limit + 1).subquery()
    return int(conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar() or 0) <= limit


def drop_for_bulk(conn: sa.Connection, tables: Iterable[sa.Table], objects: int) -> list[sa.Table]:
    """Drop the secondary indexes of those ``tables`` that hold few rows compared with an import of ``objects``.

    Returns the tables whose indexes were dropped (committed): :func:`restore_indexes` must build them back.
    """
    if objects < BULK_FROM:
        return []
    if conn.in_transaction():
        conn.commit()
    dropped: list[sa.Table] = []
    with conn.begin():
        present = existing_index_names(conn)
        for table in tables:
            indexes = [ix for ix in secondary_indexes(table) if ix.name in present]
            if not indexes or not _few_rows(conn, table, objects // ROWS_PER_OBJECT):
                continue
            for ix in indexes:
                conn.execute(DropIndex(ix, if_exists=True))
            dropped.append(table)
    if dropped:
        log.info("bulk import: indexes of %s are built at the end", ", ".join(t.name for t in dropped))
    return dropped
