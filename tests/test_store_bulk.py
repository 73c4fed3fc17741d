"""Storing findings through the bulk path stores exactly what the per-row path of c70014f stored.

The reference (tests/store_reference.py) and ``ViolationStore.record`` record the same sequence of checks
into two databases of the same kind, with the clock stopped: a first check, a rerun with nothing new, a
rerun after corrections (findings gone → resolved; a finding's values changed), reruns over violations
resolved by hand (rectified, data corrected) and waived (expired, not expired), and a narrowed scope with
held members.  Every row of the violations, their log, the alert outbox and its deliveries must be equal.
A second test counts the statements SQLAlchemy sends: a path that sent one a finding fails it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
import store_reference
from conftest import PG_URL
from sqlmodel import SQLModel

from engine.alerts.config import AlertsConfig, parse_alerts_config
from engine.alerts.outbox import AlertDelivery, AlertOutbox  # noqa: F401 (their tables)
from engine.finding import Finding
from engine.violations import store
from engine.violations.store import DATA_CORRECTED, RECTIFIED, Scope, ViolationStore
from engine.violations.tables import Violation  # noqa: F401 (its tables)
from facts.db import create_schema_engine, make_engine

NOW = dt.datetime(2018, 3, 1, 2, 30, 15, 123456, tzinfo=dt.UTC)
RULES = ("branch.meeting.monthly", "member.dues.paid")
PERIODS = ("2017-01", "2017-02", "2017-03")


def _alerts() -> AlertsConfig:
    return parse_alerts_config(
        {
            "channels": {"all": {"type": "console"}, "c1": {"type": "console"}},
            "routes": [{"channel": "all", "min_severity": "serious"}, {"channel": "c1", "orgs": ["c1"]}],
        }
    )


def finding(i: int, rule: str, period: str, **over: Any) -> Finding:
    org = f"b{i % 7}"
    path = ["root", "c1" if i % 2 else "c2", org]
    values: dict[str, Any] = dict(
        rule=rule,
        rule_version="3",
        title="未按期召开会议",
        basis="《中国共产党支部工作条例（试行）》第十九条",
        severity="serious" if i % 3 else "warning",
        subject_type="member" if rule.startswith("member") else "org",
        subject_id=f"m{i}" if rule.startswith("member") else org + f"-{i}",
        org=org,
        org_name=f"第{i % 7}党支部",
        member=f"m{i}" if rule.startswith("member") else None,
        period=period,
        message=f"应召开 1 次，实际 {i % 2} 次（{period}）。",
        evidence={
            "observed": {"count": i % 2, "ratio": i / 7, "missing": None},
            "threshold": {"min": 1},
            "condition": "count < min",
            "facts": [f"meeting:{period}-{i}", f"dues:{i}"],
        },
        org_path=path,
    )
    values.update(over)
    return Finding(**values)


def province(n: int) -> list[Finding]:
    return [finding(i, RULES[i % 2], PERIODS[i % 3]) for i in range(n)]


def full_scope(**over: Any) -> Scope:
    return Scope({(r, p) for r in RULES for p in PERIODS}, **over)


def _two(kind: str, tmp_path: Any) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    if kind == "sqlite":
        a, b = (make_engine(f"sqlite:///{tmp_path / name}") for name in ("old.db", "new.db"))
        drops = [a.dispose, b.dispose]
    else:
        (a, _, drop_a), (b, _, drop_b) = create_schema_engine(PG_URL), create_schema_engine(PG_URL)
        drops = [drop_a, drop_b]
    for engine in (a, b):
        SQLModel.metadata.create_all(engine)
    try:
        yield a, b
    finally:
        for drop in drops:
            drop()


@pytest.fixture(params=["sqlite", "postgresql"])
def engines(request, tmp_path) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    yield from _two(request.param, tmp_path)


def _rows(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row.  The log without its ids, whose order among one run's resolutions follows the
    order the database returns the scope's violations in (PostgreSQL's differs after other updates); the
    outbox without its ids, which skip one where ``INSERT … ON CONFLICT DO NOTHING`` skipped a repeat (the
    bulk path reads the repeats first), each delivery named by its alert's dedup key."""
    tables = {
        "violation": "select * from violation order by key",
        "violation_event": "select key, at, actor, action, from_status, to_status, note, run_id from violation_event",
        "alert_outbox": "select dedup, kind, key, occurrence, severity, rule, org, org_path, title, message,"
        " payload, created_at from alert_outbox",
        "alert_delivery": "select o.dedup, d.channel, d.status, d.attempts, d.next_attempt_at"
        " from alert_delivery d join alert_outbox o on o.id = d.outbox_id",
    }
    with engine.connect() as conn:
        return {t: sorted(tuple(map(str, r)) for r in conn.execute(sa.text(q))) for t, q in tables.items()}


def _edit(engine: sa.Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def test_the_bulk_path_stores_what_the_per_row_path_stored(engines, monkeypatch):
    old, new = engines
    monkeypatch.setattr(store, "utcnow", lambda: NOW)
    stores = (ViolationStore(old, _alerts()), ViolationStore(new, _alerts()))
    findings = province(600)
    every = full_scope()

    def both(found: list[Finding], scope: Scope, run: int | None, pack: str = "h1") -> None:
        reports = (
            store_reference.record(stores[0], found, scope, pack, run),
            stores[1].record(found, scope, pack, run),
        )
        for made in reports:  # the resolutions in the order the database returned the scope's violations
            made.resolved.sort()
        assert reports[0] == reports[1]
        assert _rows(old) == _rows(new)

    both(findings, every, 1)  # a first check: every finding new
    assert len(_rows(new)["violation"]) == 600 and _rows(new)["alert_delivery"]
    both(findings, every, 2)  # the same again: seen, nothing new
    both(findings[:400], every, 3, pack="h2")  # another pack version: every value written again
    both(findings, every, 4)
    # corrections: every 5th no longer found (resolved), some found with other values
    changed = [
        finding(i, f.rule, f.period, message="已更正后仍缺 1 次。", evidence={"observed": {"count": 0}})
        if i % 11 == 0
        else f
        for i, f in enumerate(findings)
    ]
    both([f for i, f in enumerate(changed) if i % 5], every, 5)
    # by hand: one rectified, one data corrected, one waived (expired), one waived (not expired)
    keys = [f.key for f in findings]
    for engine in engines:
        _edit(
            engine,
            "update violation set status='resolved', resolution=:r where key=:k",
            r=RECTIFIED + "已整改",
            k=keys[1],
        )
        _edit(
            engine,
            "update violation set status='resolved', resolution=:r where key=:k",
            r=DATA_CORRECTED + "x",
            k=keys[2],
        )
        for k, until in ((keys[3], dt.date(2018, 1, 1)), (keys[4], dt.date(2019, 1, 1))):
            _edit(
                engine, "update violation set status='waived', waiver_expires=:d where key=:k", d=until, k=k
            )
        # a violation deleted whose alert stays in the outbox: found again it is new, its alert not added
        _edit(engine, "delete from violation where key=:k", k=keys[6])
    both(findings, every, None)  # all found again: recurrences, the rectified one stays resolved
    with new.connect() as conn:
        assert (
            conn.execute(sa.text("select count(*) from alert_outbox where key=:k"), {"k": keys[6]}).scalar()
            == 1
        )
    # a narrowed scope with held members: only what it covers is resolved
    narrowed = full_scope(
        subjects={(f.rule, f.subject_type, f.subject_id) for f in findings[:300]},
        held_members=frozenset({"m8", "m9"}),
    )
    both(findings[20:250], narrowed, 7)
    both([], every, 8)  # nothing found any more: every active one in scope resolved


def test_storing_sends_a_few_statements_whatever_the_number_of_findings(sqlite_engine):
    SQLModel.metadata.create_all(sqlite_engine)
    vs = ViolationStore(sqlite_engine, _alerts())
    sent: list[str] = []
    sa.event.listen(sqlite_engine, "before_cursor_execute", lambda *a: sent.append(a[2]))

    def statements(found: list[Finding], run: int) -> int:
        sent.clear()
        vs.record(found, full_scope(), "h1", run)
        return len(sent)

    small, big = province(120), province(2400)
    counts = {n: (statements(f, 1), statements(f, 2)) for n, f in ((120, small), (2400, big))}
    # a first check and a rerun: the statements grow with the findings only by the chunks of 500 keys
    # the alert outbox is asked about (the rows go to the driver as batches); a path sending one
    # statement a finding, or a few, would add thousands
    first_small, again_small = counts[120]
    first_big, again_big = counts[2400]
    assert first_big - first_small <= 2 * (2400 // 500)
    assert again_big - again_small <= 2
