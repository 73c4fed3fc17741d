"""Issue 11, the invariant: check never fails because of one fact.  Hypothesis corrupts one random
stored row (any column of any fact table, with a value import would refuse) and checks the sample:
the check completes, every finding it reports is about a judged subject or is a data-quality finding,
and a value the screen names is reported as one."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.app import build_app
from engine.evaluate import evaluate
from engine.periods import parse_range
from engine.sample import sample_facts
from engine.subjects.screen import RULE, TABLES
from facts.errors import Location

BAD_VALUES = [
    None, "", "abc", -1, 0, 10**12, 1e308, -1e308, float("inf"), "0000-01", "0000-00-00", "9999-12-31",
    "2017-02-30", "2017-13", "１２", "٢٠١٧-٠١", "x" * 380, "\x00\x1b]0;t\x07", 2**63, 3.5, "NaN", "=1+1",
]
COLUMNS = [(spec.table.name, col.name) for spec in TABLES for col in spec.table.columns]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("fuzz") / "t.db"
    app = build_app(str(db))
    app.init()
    assert app.facts.import_items((Location("s", i), f) for i, f in enumerate(sample_facts())).rejected == 0
    app.db.dispose()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(column=st.sampled_from(COLUMNS), value=st.sampled_from(BAD_VALUES), pick=st.integers(0, 10**6))
def test_one_corrupt_row_never_stops_the_check(template, tmp_path, column, value, pick):
    table, name = column
    db = tmp_path / f"c{pick}.db"
    shutil.copy(template, db)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA foreign_keys=OFF")
        rowids = [r for (r,) in conn.execute(f'SELECT rowid FROM "{table}"')]
        if not rowids:
            return
        try:
            conn.execute(f'UPDATE "{table}" SET "{name}" = ? WHERE rowid = ?', (value, rowids[pick % len(rowids)]))
        except (sqlite3.IntegrityError, OverflowError):  # NOT NULL, a duplicate key, 2**63: SQLite cannot hold it
            return
    app = build_app(str(db))
    try:
        with app.db.connect() as conn:
            ev = evaluate(conn, app.pack(), parse_range("2017"), dt.date(2018, 3, 1), processes=0)
    finally:
        app.db.dispose()
    assert ev.subjects and sum(ev.subjects.values()) > 1000  # everyone else was judged
    for f in ev.findings:
        assert f.rule == RULE or not ev.screen.touches(f.member, f.org)
    if ev.screen.problems:
        assert any(f.rule == RULE for f in ev.findings)
