"""Periods: months, quarters, years, ranges, and when a period may be judged.

A period is judged once it has closed plus a grace for late records, by the
as-of date.  A range ``A..B`` judges every month, quarter and year lying
wholly inside it; a single period ``P`` is the range ``P..P``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from facts.errors import PartyrulesError

Granularity = Literal["month", "quarter", "year"]
GRANULARITIES: tuple[Granularity, ...] = ("month", "quarter", "year")
_CN_QUARTER = {1: "一", 2: "二", 3: "三", 4: "四"}

_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")  # ASCII digits only (\d would take ٢٠١٧ and ２０１７)
_QUARTER = re.compile(r"^([0-9]{4})-Q([1-4])$", re.IGNORECASE)
_YEAR = re.compile(r"^([0-9]{4})$")
# The years a period or an as-of date may fall in: Party-affairs records begin after 1900, and the ends of
# the calendar overflow (``9999-12`` has no next month, an as-of date plus the grace no day after it).
MIN_YEAR, MAX_YEAR = 1900, 2999


class PeriodError(PartyrulesError):
    """A period that cannot be parsed."""


@dataclass(frozen=True, order=True)
class Period:
    """One month, quarter or year: ``start`` and ``end`` are inclusive dates."""

    start: date
    end: date
    granularity: Granularity

    @functools.cached_property
    def label(self) -> str:
        """The contract's text form: ``2017-06``, ``2017-Q2``, ``2017``."""
        y = self.start.year
        if self.granularity == "month":
            return f"{y}-{self.start.month:02d}"
        if self.granularity == "quarter":
            return f"{y}-Q{(self.start.month - 1) // 3 + 1}"
        return str(y)

    @functools.cached_property
    def label_cn(self) -> str:
        """How a person reads it: 2017年6月, 2017年第二季度, 2017年度."""
        y = self.start.year
        if self.granularity == "month":
            return f"{y}年{self.start.month}月"
        if self.granularity == "quarter":
            return f"{y}年第{_CN_QUARTER[(self.start.month - 1) // 3 + 1]}季度"
        return f"{y}年度"

    @functools.cached_property
    def month_labels(self) -> tuple[str, ...]:
        """``YYYY-MM`` of every month in the period (cached: subject building asks for it per subject)."""
        return tuple(m.label for m in self.month_periods)

    @functools.cached_property
    def month_periods(self) -> tuple[Period, ...]:
        return tuple(self.months())

    def months(self) -> list[Period]:
        out = []
        d = self.start
        while d <= self.end:
            out.append(month_of(d))
            d = _add_months(d, 1)
        return out

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def closed_by(self, as_of: date, grace_days: int) -> bool:
        """Whether the period has closed, plus the grace for late records, by ``as_of``."""
        return as_of > self.end + timedelta(days=grace_days)

    def __str__(self) -> str:
        return self.label


def _add_months(d: date, n: int) -> date:
    m = d.month - 1 + n
    return date(d.year + m // 12, m % 12 + 1, 1)


def _last_day(year: int, month: int) -> date:
    return _add_months(date(year, month, 1), 1) - timedelta(days=1)


def month_of(day: date) -> Period:
    return Period(date(day.year, day.month, 1), _last_day(day.year, day.month), "month")


def quarter_of(day: date) -> Period:
    first = (day.month - 1) // 3 * 3 + 1
    return Period(date(day.year, first, 1), _last_day(day.year, first + 2), "quarter")


def year_of(day: date) -> Period:
    return Period(date(day.year, 1, 1), date(day.year, 12, 31), "year")


def period_of(day: date, granularity: Granularity) -> Period:
    return {"month": month_of, "quarter": quarter_of, "year": year_of}[granularity](day)


def shift(period: Period, n: int) -> Period:
    """The period ``n`` steps later (earlier when negative), of the same granularity."""
    step = {"month": 1, "quarter": 3, "year": 12}[period.granularity]
    return period_of(_add_months(period.start, n * step), period.granularity)


def parse_period(text: str) -> Period:
    """``2017-06`` / ``2017-Q2`` / ``2017`` → a Period (years 1900–2999: ranges and trends shift from it)."""
    text = text.strip()
    for m in (_MONTH.match(text), _QUARTER.match(text), _YEAR.match(text)):
        if m and not MIN_YEAR <= int(m.group(1)) <= MAX_YEAR:
            raise PeriodError(f'"{text}": the year must be between {MIN_YEAR} and {MAX_YEAR}')
    if m := _MONTH.match(text):
        year, month = int(m.group(1)), int(m.group(2))
        if 1 <= month <= 12:
            return month_of(date(year, month, 1))
    elif m := _QUARTER.match(text):
        return quarter_of(date(int(m.group(1)), (int(m.group(2)) - 1) * 3 + 1, 1))
    elif m := _YEAR.match(text):
        return year_of(date(int(m.group(1)), 1, 1))
    raise PeriodError(
        f'"{text}" is not a period: use YYYY-MM (2017-06), YYYY-Qn (2017-Q2), YYYY (2017) or A..B'
    )


@dataclass(frozen=True)
class PeriodRange:
    """``A..B``: from the start of A to the end of B."""

    start: date
    end: date
    text: str

    def periods(self, granularity: Granularity) -> list[Period]:
        """Every period of ``granularity`` lying wholly inside the range, in order."""
        out = []
        p = period_of(self.start, granularity)
        while p.start <= self.end:
            if p.start >= self.start and p.end <= self.end:
                out.append(p)
            p = shift(p, 1)
        return out

    def all_periods(self) -> list[Period]:
        return [p for g in GRANULARITIES for p in self.periods(g)]


def check_as_of(day: date) -> date:
    """``day`` if it can be an as-of date (years MIN_YEAR–MAX_YEAR), else a PeriodError."""
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise PeriodError(f"as-of date {day}: the year must be between {MIN_YEAR} and {MAX_YEAR}")
    return day


def parse_range(text: str) -> PeriodRange:
    """``2017``, ``2017-Q1``, ``2017-01..2017-06``, ``2016..2017``."""
    if ".." in text:
        left, right = (part.strip() for part in text.split("..", 1))
        a, b = parse_period(left), parse_period(right)
        if b.end < a.start:
            raise PeriodError(f'"{text}": the range ends before it starts')
        return PeriodRange(a.start, b.end, text)
    p = parse_period(text)
    return PeriodRange(p.start, p.end, text)
