"""Schema migrations: the models and the migrated schema agree, one head, and a 0.1.0 database upgrades.

The fixtures are what partyrules 0.1.0 (commit 422f0a7, before migrations) made:
``fixtures/partyrules-0.1.0.db`` — ``init``, the sample organisation imported, one dues record corrected,
``check --period 2017 --as-of 2018-03-01`` (50 violations), one violation acknowledged, one assigned, one
resolved by hand; ``fixtures/partyrules-0.1.0-postgresql.sql`` — the DDL 0.1.0's ``init`` ran on
PostgreSQL (its metadata compiled for that dialect).  The PostgreSQL test loads that DDL into a fresh
schema and copies the SQLite fixture's rows into it, so both databases start from the same 0.1.0 data.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from conftest import PG_URL

from engine.cli import main
from engine.migrations import BASELINE, current_revisions, heads, run_migrations, script, target_metadata
from engine.schema import init_schema
from facts.db import create_schema_engine

FIXTURES = Path(__file__).parent / "fixtures"
OLD_SQLITE = FIXTURES / "partyrules-0.1.0.db"
OLD_PG_DDL = FIXTURES / "partyrules-0.1.0-postgresql.sql"

ACKED = "branch.heart_to_heart.yearly|member:m047|2017"
ASSIGNED = "leader.dual_org_life.yearly|member:m006|2017"
RESOLVED = "integrity.responsibility_letter.signed|org:u05|2017"


def differences(conn: sa.Connection) -> list:
    """What alembic's autogenerate would write to make the database look like the models."""
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return compare_metadata(context, target_metadata())


def test_there_is_one_head_and_the_baseline_is_the_root():
    assert len(heads()) == 1, f"more than one alembic head: {heads()} — rebase a migration's down_revision"
    bases = script().get_bases()
    assert bases == [BASELINE]


def test_migrations_from_nothing_give_exactly_the_models(db_engine):
    """Fails when someone changes a table (or adds one) without a migration."""
    with db_engine.begin() as conn:
        run_migrations(conn)
    with db_engine.connect() as conn:
        assert differences(conn) == []
        assert current_revisions(conn) == heads()


def test_a_fresh_database_is_created_from_the_models_and_stamped_at_the_head(db_engine):
    assert init_schema(db_engine) == "created"
    with db_engine.connect() as conn:
        assert current_revisions(conn) == heads()
        assert differences(conn) == []
    assert init_schema(db_engine) == "current"


# -- upgrading a database made by 0.1.0 ---------------------------------------------------------------


def _pg_from_fixture(url: str, schema: str) -> None:
    """The 0.1.0 schema by its own DDL, then every row of the SQLite fixture copied in."""
    db = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    source = sqlite3.connect(OLD_SQLITE)
    try:
        with db.begin() as conn:
            conn.exec_driver_sql("SET TIME ZONE 'UTC'")
            for statement in OLD_PG_DDL.read_text(encoding="utf-8").split(";\n"):
                if statement.strip():
                    conn.exec_driver_sql(statement)
            tables = sa.MetaData()
            tables.reflect(conn)
            for table in tables.sorted_tables:
                cursor = source.execute(f'SELECT * FROM "{table.name}"')
                names = [d[0] for d in cursor.description]
                rows = cursor.fetchall()
                if not rows:
                    continue
                casts = ", ".join(f"CAST(%s AS {table.c[n].type.compile(conn.dialect)})" for n in names)
                columns = ", ".join(f'"{n}"' for n in names)
                conn.connection.cursor().executemany(
                    f'INSERT INTO "{table.name}" ({columns}) VALUES ({casts})', rows
                )
                for column in table.primary_key.columns:
                    sequence = conn.exec_driver_sql(
                        f"SELECT pg_get_serial_sequence('{table.name}', '{column.name}')"
                    ).scalar()
                    if sequence:  # as 0.1.0 would have left it: the next id after the last row
                        conn.exec_driver_sql(
                            f'SELECT setval(\'{sequence}\', (SELECT max("{column.name}") FROM "{table.name}"))'
                        )
    finally:
        source.close()
        db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def old_db(request, tmp_path):
    """The URL of a database made by partyrules 0.1.0, holding the fixture's data."""
    if request.param == "sqlite":
        path = tmp_path / "old.db"
        shutil.copy(OLD_SQLITE, path)
        yield f"sqlite:///{path}"
        return
    engine, schema, drop = create_schema_engine(PG_URL, prefix="mig")
    engine.dispose()
    try:
        _pg_from_fixture(PG_URL, schema)
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        drop()


def test_a_010_database_upgrades_and_keeps_its_facts_violations_and_history(old_db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def run(*args: str):
        result = CliRunner().invoke(main, ["--db", old_db, *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    db = sa.create_engine(old_db)
    with db.connect() as conn:
        assert "alembic_version" not in sa.inspect(conn).get_table_names()
    db.dispose()

    assert "upgraded from 0.1.0" in run("init")
    assert "current" in run("init")
    db = sa.create_engine(old_db)
    with db.connect() as conn:
        assert current_revisions(conn) == heads()
        assert differences(conn) == []
    db.dispose()

    # facts: every current version exports, the correction's history is readable
    exported = [json.loads(line) for line in run("export").splitlines() if line.strip()]
    assert len(exported) == 2014
    assert {"type": "dues", "member": "m001", "month": "2017-01"}.items() <= next(
        f for f in exported if f.get("type") == "dues" and f["member"] == "m001" and f["month"] == "2017-01"
    ).items()
    history = run("history", "dues", "m001|2017-01")
    assert "80.25" in history and "80.5" in history

    # violations and their workflow log
    stored = {v["key"]: v for v in json.loads(run("violations", "list", "--format", "json"))}
    assert len(stored) == 50
    assert stored[ACKED]["status"] == "acknowledged"
    assert stored[ASSIGNED]["status"] == "rectifying"
    assert stored[RESOLVED]["status"] == "resolved"
    shown = run("violations", "show", ACKED)
    assert "李纪检" in shown and "已核实" in shown

    # the upgraded database works: a new fact, a check over the old data, a workflow step
    run(
        "add",
        "dues",
        "--member",
        "m001",
        "--month",
        "2017-12",
        "--amount",
        "80.5",
        "--paid-on",
        "2017-12-20",
        "--base",
        "5350",
        "--quiet",
    )
    assert "共判定" in run("check", "--period", "2017", "--as-of", "2018-03-01")
    again = {v["key"]: v for v in json.loads(run("violations", "list", "--format", "json"))}
    assert set(stored) & set(again), "the check lost the violations it found before the upgrade"
    assert len(again) == len(set(again))
    assert "李纪检" in run("violations", "show", ACKED), "the workflow log did not survive the check"
