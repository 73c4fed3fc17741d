"""Issue 11: which commands may create a database, and one clear line when a database cannot be used."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine.cli import main
from facts.db import database_url

PG_URL = os.environ.get("PARTYRULES_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")

NEEDS_A_DATABASE = [
    ["check", "--period", "2017"],
    ["violations", "list"],
    ["report", "--period", "2017"],
    ["export"],
    ["orgs"],
    ["rules", "history"],
    ["alerts", "digest"],
]


@pytest.mark.parametrize("command", NEEDS_A_DATABASE)
def test_a_command_without_partyrules_db_does_not_create_an_empty_database(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PARTYRULES_DB", raising=False)
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 1, result.output
    assert "no database at ./partyrules.db — run `partyrules init` or pass --db / set PARTYRULES_DB" in result.output
    assert not (tmp_path / "partyrules.db").exists()


def test_a_database_without_the_schema_is_reported(tmp_path):
    db = tmp_path / "empty.db"
    db.touch()
    result = CliRunner().invoke(main, ["--db", str(db), "violations", "list"])
    assert result.exit_code == 1
    assert "has no partyrules tables" in result.output and "partyrules init" in result.output


def test_init_and_import_create_the_database_and_then_the_others_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PARTYRULES_DB", raising=False)
    runner = CliRunner()
    assert runner.invoke(main, ["init"]).exit_code == 0
    assert (tmp_path / "partyrules.db").exists()
    assert runner.invoke(main, ["violations", "list"]).exit_code == 0
    other = tmp_path / "other.db"
    assert runner.invoke(main, ["sample", "s.jsonl"]).exit_code == 0
    result = runner.invoke(main, ["--db", str(other), "import", "s.jsonl", "--no-judge"])
    assert result.exit_code == 0 and other.exists()


def test_rules_commands_that_need_no_database_work_without_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PARTYRULES_DB", raising=False)
    assert CliRunner().invoke(main, ["rules", "list"]).exit_code == 0
    assert CliRunner().invoke(main, ["rules", "validate"]).exit_code == 0
    assert not (tmp_path / "partyrules.db").exists()


def test_postgres_urls_are_accepted():
    assert database_url("postgres://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert database_url("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
    schema = f"t_{uuid.uuid4().hex[:12]}"
    url = PG_URL.replace("postgresql+psycopg2://", "postgres://")
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        env = {"PGOPTIONS": f"-csearch_path={schema}"}
        runner = CliRunner(env=env)
        assert runner.invoke(main, ["--db", url, "init"]).exit_code == 0
        result = runner.invoke(main, ["--db", url, "violations", "list", "--format", "json"])
        assert result.exit_code == 0 and result.output.strip() == "[]"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.parametrize(
    "url, says",
    [
        ("postgresql://postgres@127.0.0.1:1/test", "Connection refused"),
        ("postgresql://postgres@127.0.0.1:5432/no_such_db_partyrules", "does not exist"),
        ("postgresql://no_such_role_partyrules@127.0.0.1:5432/test", "does not exist"),
        ("mysql://x/y", "give a SQLite file or a postgresql:// URL"),
    ],
)
def test_connection_errors_are_one_clear_line(url, says):
    for command in (["init"], ["violations", "list"]):
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "partyrules"), "--db", url, *command],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 1
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and says in lines[0], proc.stderr
