"""Database engines: SQLite by default, PostgreSQL by URL.

``PARTYRULES_DB`` or ``--db`` gives the URL; the default is a SQLite file in
the current folder.  Every table of partyrules lives in one SQLModel
metadata, so one transaction covers a fact, a finding and its alert.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, text

DEFAULT_URL = "sqlite:///partyrules.db"


def database_url(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The URL to use: an explicit one, else ``PARTYRULES_DB``, else the default SQLite file."""
    env = os.environ if environ is None else environ
    url = explicit or env.get("PARTYRULES_DB") or DEFAULT_URL
    if "://" not in url:  # a bare path means a SQLite file
        url = f"sqlite:///{url}"
    if url.startswith("postgres://"):  # Heroku-style and libpq's own spelling
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def _json_dumps(value: Any) -> str:
    """JSON columns via orjson: ~5× the standard library's speed (a check stores 5 JSON values a finding)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An SQLAlchemy engine for ``url`` with the settings partyrules relies on."""
    url = database_url(url)
    kwargs.setdefault("json_serializer", _json_dumps)
    if url.startswith("sqlite"):
        connect_args = {"timeout": 30, **kwargs.pop("connect_args", {})}
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def create_schema_engine(url: str, prefix: str = "t") -> tuple[Engine, str, Callable[[], None]]:
    """A PostgreSQL engine whose search_path is a new schema of its own (tests, benchmarks).

    Returns the engine, the schema's name, and a function that disposes the engine and drops the schema.
    """
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})

    def drop() -> None:
        engine.dispose()
        again = make_engine(url)
        with again.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        again.dispose()

    return engine, schema, drop


@contextmanager
def sqlite_pragmas(conn: Connection, values: Mapping[str, int]) -> Iterator[None]:
    """On SQLite, these pragmas set for the duration of the block and as they were afterwards (committed
    both ways); on any other database, nothing."""
    if conn.dialect.name != "sqlite" or not values:
        yield
        return
    old = {name: int(conn.exec_driver_sql(f"PRAGMA {name}").scalar() or 0) for name in values}
    for name, value in values.items():
        conn.exec_driver_sql(f"PRAGMA {name}={int(value)}")
    conn.commit()
    try:
        yield
    finally:
        if conn.in_transaction():
            conn.rollback()
        for name, value in old.items():
            conn.exec_driver_sql(f"PRAGMA {name}={value}")
        conn.commit()
