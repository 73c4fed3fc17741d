"""Periods, ranges, and when a period may be judged."""

from __future__ import annotations

from datetime import date

import pytest

from engine.periods import PeriodError, parse_period, parse_range, shift


def test_labels_in_the_contract_and_in_chinese():
    assert [parse_period(t).label for t in ("2017-06", "2017-q2", "2017")] == ["2017-06", "2017-Q2", "2017"]
    assert [parse_period(t).label_cn for t in ("2017-06", "2017-Q4", "2017")] == ["2017年6月", "2017年第四季度", "2017年度"]
    assert parse_period("2016-02").end == date(2016, 2, 29)


@pytest.mark.parametrize("text", ["2017-13", "2017-Q5", "17", "2017-6-1", "", "2017..2016"])
def test_bad_periods_say_what_is_expected(text):
    with pytest.raises(PeriodError, match="period|range"):
        parse_range(text)


def test_a_year_judges_itself_its_quarters_and_its_months():
    rng = parse_range("2018")
    assert len(rng.periods("month")) == 12 and len(rng.periods("quarter")) == 4
    assert [p.label for p in rng.periods("year")] == ["2018"]
    assert len(rng.all_periods()) == 17


def test_a_range_judges_only_what_lies_wholly_inside_it():
    rng = parse_range("2017-02..2017-07")
    assert [p.label for p in rng.periods("quarter")] == ["2017-Q2"]
    assert rng.periods("year") == []
    assert [p.label for p in rng.periods("month")][0] == "2017-02"


def test_closing_plus_grace():
    june = parse_period("2017-06")
    assert not june.closed_by(date(2017, 7, 10), 10)
    assert june.closed_by(date(2017, 7, 11), 10)
    assert june.closed_by(date(2017, 7, 1), 0)


def test_shift_crosses_years():
    assert shift(parse_period("2017-01"), -1).label == "2016-12"
    assert shift(parse_period("2017-Q1"), -1).label == "2016-Q4"
