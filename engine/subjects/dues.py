"""A span's dues payments read once, as columns, for every dues rule of a check.

The dues rules read the same table: ``dues.amount.full`` the amounts against the standard (a subject
per payment), ``dues.monthly.paid`` and ``dues.arrears.six_months`` who paid each month by the as-of
date.  Each used to read it on its own, row by row into Python objects (a scale-1 province: 1.2 M rows,
twice, ~10 µs a row).  Now one query per span of months gives the rows as columns; the day paid stays the
text the database holds (``YYYY-MM-DD``, ordered as the days are), and the consumers select and group
them set-wise (numpy, and dicts built in C).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import sqlalchemy as sa

from engine.subjects.base import BuildContext
from facts import tables as t

_DUES = t.DuesRow.__table__  # type: ignore[attr-defined]


@dataclass
class DuesTable:
    """The dues rows of a span of months (of this context's partition), column by column, in one order."""

    member: list[str]
    month: list[str]  # YYYY-MM of the dues
    amount: np.ndarray  # float64
    base: np.ndarray  # float64, NaN where no base is recorded
    paid_on: list[str]  # YYYY-MM-DD
    labels: dict[str, int] = field(default_factory=dict)  # dues month -> its code in ``codes``
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # a row's month, coded

    def __post_init__(self) -> None:
        self.labels = labels = {m: i for i, m in enumerate(sorted(set(self.month)))}
        self.codes = np.fromiter(map(labels.__getitem__, self.month), np.int64, len(self.month))

    def __len__(self) -> int:
        return len(self.member)

    def rows_of_months(self, labels: list[str], with_base: bool) -> np.ndarray:
        """Indexes of the rows whose dues month is one of ``labels`` (with a base recorded, ``with_base``)."""
        wanted = [self.labels[m] for m in labels if m in self.labels]
        keep = np.isin(self.codes, np.asarray(wanted, dtype=np.int64))
        if with_base:
            keep &= ~np.isnan(self.base)
        return np.flatnonzero(keep)

    def paid_by(self, as_of: date, first: str, last: str) -> dict[str, dict[str, str]]:
        """Dues month -> member -> the day paid, for the dues of months ``first``..``last`` paid by
        ``as_of``."""
        paid = np.asarray(self.paid_on, dtype=object) <= as_of.isoformat()
        found = {}
        for label, code in sorted(self.labels.items()):
            if not (first <= label <= last):
                continue
            rows = np.flatnonzero(paid & (self.codes == code)).tolist()
            found[label] = dict(zip(pick(self.member, rows), pick(self.paid_on, rows), strict=True))
        return found


def pick(values: list[Any], rows: list[int]) -> list[Any]:
    """``[values[i] for i in rows]``, in C."""
    if not rows:
        return []
    if len(rows) == 1:
        return [values[rows[0]]]
    return list(operator.itemgetter(*rows)(values))


def dues_table(ctx: BuildContext, first: str, last: str, members: list[str] | None = None) -> DuesTable:
    """The dues rows of months ``first``..``last`` (``YYYY-MM``) of this context's partition, read once per
    span and evaluation (or, with ``members``, those members' only: a submission, not memoised).  A wider
    span already read is returned as it is: callers select their months (:meth:`DuesTable.rows_of_months`,
    :meth:`DuesTable.paid_by`)."""
    key = (first, last)
    if members is None:
        for (since, until), known in ctx.memo.dues_table.items():
            if since <= first and last <= until:  # a wider span read already (its users select the months)
                return known
    query = sa.select(
        _DUES.c.member,
        _DUES.c.month,
        _DUES.c.amount,
        _DUES.c.base,
        sa.cast(_DUES.c.paid_on, sa.String),  # the ISO text, not a date object a row
    ).where(_DUES.c.month >= first, _DUES.c.month <= last, ctx.in_part(_DUES.c.member, "member"))
    rows: list[Any] = []
    for part in range(0, len(members or [None]), 500):
        chosen = query if members is None else query.where(_DUES.c.member.in_(members[part : part + 500]))
        rows.extend(ctx.conn.execute(chosen).all())
    who, month, amount, base, paid_on = (list(col) for col in zip(*rows, strict=True)) if rows else ([],) * 5
    table = DuesTable(
        who,
        month,
        np.asarray(amount, dtype=np.float64),
        np.asarray(base, dtype=np.float64),  # None becomes NaN
        paid_on,
    )
    if members is None:
        ctx.memo.dues_table[key] = table
    return table
