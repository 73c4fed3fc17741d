"""Shared fixtures: real databases (a SQLite file, and the PostgreSQL server on 127.0.0.1:5432)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from pages_fixtures import browser, live, new_page, pages_template  # noqa: F401 (the web pages' fixtures)

from facts.db import create_schema_engine, make_engine

PG_URL = os.environ.get("PARTYRULES_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


def _pg_engine_in_fresh_schema() -> Iterator[sa.Engine]:
    """A PostgreSQL engine whose search_path is a schema of its own, dropped afterwards.

    A test that needs PostgreSQL and cannot reach it fails: it does not skip.
    """
    engine, _schema, drop = create_schema_engine(PG_URL)
    try:
        yield engine
    finally:
        drop()


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'test.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine() -> Iterator[sa.Engine]:
    yield from _pg_engine_in_fresh_schema()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_engine(request, tmp_path) -> Iterator[sa.Engine]:
    """Each test using this runs twice: on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'test.db'}")
        yield engine
        engine.dispose()
    else:
        yield from _pg_engine_in_fresh_schema()


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory):
    """The sample organisation imported (not judged) into a SQLite file, once per test module: copy it."""
    import sqlite3

    from click.testing import CliRunner

    from engine.cli import main

    folder = tmp_path_factory.mktemp("sample")
    CliRunner().invoke(main, ["sample", str(folder / "s.jsonl")], catch_exceptions=False)
    db = folder / "template.db"
    result = CliRunner().invoke(main, ["--db", str(db), "import", str(folder / "s.jsonl"), "--no-judge"])
    assert result.exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


@pytest.fixture
def quiet_crashes() -> Iterator[None]:
    """Tests that crash a worker on purpose: the forked worker would inherit pytest's faulthandler
    and print a traceback of the deliberate crash into the test output."""
    import faulthandler

    was_enabled = faulthandler.is_enabled()
    faulthandler.disable()
    try:
        yield
    finally:
        if was_enabled:
            faulthandler.enable()
