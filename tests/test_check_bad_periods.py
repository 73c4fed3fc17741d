"""Issue 11: every bad period or as-of date is one clear message and exit status 1, never a traceback."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.periods import PeriodError, check_as_of, parse_range

BAD_PERIODS = ["9999-12", "0000-01", "9999", "9999-Q4", "1899..2017", "2017..9999-12", "2017-13", "٢٠١٧", "２０１７"]


@pytest.mark.parametrize("period", BAD_PERIODS)
def test_a_bad_period_is_refused_by_the_library(period):
    with pytest.raises(PeriodError):
        parse_range(period)


@pytest.mark.parametrize("period", BAD_PERIODS)
@pytest.mark.parametrize("command", [["check"], ["report"], ["rules", "backtest", "--rules", "rules"]])
def test_check_period_9999_12_is_one_clear_message(tmp_path, period, command):
    db = tmp_path / "x.db"
    runner = CliRunner()
    assert runner.invoke(main, ["--db", str(db), "init"]).exit_code == 0
    result = runner.invoke(main, ["--db", str(db), *command, "--period", period])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert period.split("..")[-1] in result.output or period.split("..")[0] in result.output


@pytest.mark.parametrize("as_of", ["9999-12-31", "0001-01-01", "1899-12-31"])
def test_a_bad_as_of_date_is_one_clear_message(tmp_path, as_of):
    db = tmp_path / "x.db"
    runner = CliRunner()
    assert runner.invoke(main, ["--db", str(db), "init"]).exit_code == 0
    result = runner.invoke(main, ["--db", str(db), "check", "--period", "2017", "--as-of", as_of])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "between 1900 and 2999" in result.output
    with pytest.raises(PeriodError):
        check_as_of(dt.date.fromisoformat(as_of))
