"""``partyrules report``: each format, default file names, errors as messages."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from test_report_data import seed

from engine.cli import main
from engine.cli.report_cmds import default_name, register
from facts.db import make_engine


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "r.db"
    engine = make_engine(f"sqlite:///{path}")
    seed(engine)
    engine.dispose()
    return path


@pytest.fixture
def cli(db_path):
    if "report" not in main.commands:  # until the lead registers it in engine/cli/__init__.py
        register(main)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, ["--db", str(db_path), "report", *args], catch_exceptions=False)

    return run


def test_table_to_stdout(cli):
    result = cli("--period", "2017")
    assert result.exit_code == 0, result.output
    assert "全部组织2017年度党建合规情况报告" in result.output
    assert "整改台账" in result.output and "按组织统计" in result.output


def test_markdown_to_a_file(cli, tmp_path):
    out = tmp_path / "b1.md"
    result = cli("--period", "2017-Q1", "--org", "b1", "--format", "md", "--out", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# 第一党支部2017年第一季度党建合规情况报告")
    assert "第二党支部" not in text


def test_xlsx_default_name(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("--period", "2017", "--org", "b1", "--format", "xlsx")
    assert result.exit_code == 0, result.output
    assert "report-2017-b1.xlsx" in result.output
    wb = load_workbook(tmp_path / "report-2017-b1.xlsx")
    assert "整改台账" in wb.sheetnames


def test_html_out(cli, tmp_path):
    out = tmp_path / "r.html"
    result = cli("--period", "2017", "--format", "html", "--out", str(out), "--trend", "2")
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1_000_000 and "台账 8 行" in result.output


def test_errors_are_messages(cli):
    bad_org = cli("--period", "2017", "--org", "b9")
    assert bad_org.exit_code == 1 and "no org with id 'b9'" in bad_org.output
    bad_period = cli("--period", "2017-13")
    assert bad_period.exit_code == 1 and "is not a period" in bad_period.output
    bad_trend = cli("--period", "2017", "--trend", "0")
    assert bad_trend.exit_code == 2


def test_help_has_examples():
    if "report" not in main.commands:
        register(main)
    result = CliRunner().invoke(main, ["report", "--help"])
    assert result.exit_code == 0 and "Examples:" in result.output and "--format" in result.output


def test_default_name():
    assert default_name("2017", None, "xlsx") == "report-2017.xlsx"
    assert default_name("2017-Q2", "b1/x", "html") == "report-2017-Q2-b1_x.html"
