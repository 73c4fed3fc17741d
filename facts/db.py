"""Database engines: SQLite by default, PostgreSQL by URL.

``PARTYRULES_DB`` or ``--db`` gives the URL; the default is a SQLite file in
the current folder.  Every table of partyrules lives in one SQLModel
metadata, so one transaction covers a fact, a finding and its alert.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, create_engine, event

DEFAULT_URL = "sqlite:///partyrules.db"


def database_url(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The URL to use: an explicit one, else ``PARTYRULES_DB``, else the default SQLite file."""
    env = os.environ if environ is None else environ
    url = explicit or env.get("PARTYRULES_DB") or DEFAULT_URL
    if "://" not in url:  # a bare path means a SQLite file
        url = f"sqlite:///{url}"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An SQLAlchemy engine for ``url`` with the settings partyrules relies on."""
    url = database_url(url)
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
