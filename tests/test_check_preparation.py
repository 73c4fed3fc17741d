"""A forked check's preparation: the screen's scan and the partition planner, side by side with two
processes, one after the other with one (a one-process check never takes the second core), and the copy check's
candidate pairs found once beside them; and the partition workers, which run without the cyclic garbage
collector and pick their copy candidates from the pairs found once."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest
import sqlalchemy as sa

import engine.evaluate as evaluate_module
from engine.evaluate import screen_and_plan
from engine.subjects.screen import scan


def _timed_jobs(monkeypatch, log) -> None:
    """Wrap the two forked jobs so each appends (job, start, end) to ``log`` (inherited by the fork)."""
    real = evaluate_module._prepare

    def timed(engine, job, processes, partitions):
        start = time.monotonic()
        if job in ("scan", "pairs"):
            time.sleep(0.5)  # long enough that two jobs run side by side would overlap
        answer = real(engine, job, processes, partitions)
        with open(log, "a", encoding="utf-8") as out:
            out.write(json.dumps([job, start, time.monotonic()]) + "\n")
        return answer

    monkeypatch.setattr(evaluate_module, "_prepare", timed)


def _spans(log) -> dict[str, tuple[float, float]]:
    return {job: (a, b) for job, a, b in map(json.loads, log.read_text(encoding="utf-8").splitlines())}


@pytest.mark.parametrize("processes, overlap", [(1, False), (2, True)])
def test_scan_and_plan_run_side_by_side_only_with_two_processes(
    monkeypatch, tmp_path, sample_db, processes, overlap
):
    engine = sa.create_engine(f"sqlite:///{sample_db}")
    log = tmp_path / "jobs.jsonl"
    _timed_jobs(monkeypatch, log)
    try:
        with engine.connect() as conn:
            screen, plan, pairs = screen_and_plan(conn, processes, "auto")
            expected = scan(conn)
    finally:
        engine.dispose()
    spans = _spans(log)
    assert set(spans) == {"scan", "plan"}
    (s0, s1), (p0, p1) = spans["scan"], spans["plan"]
    assert (s0 < p1 and p0 < s1) is overlap
    assert screen.tables == expected.tables  # the same screen whichever way the jobs ran
    assert plan == (None,)  # the sample is small: hash shares, as always
    assert pairs is None  # no copy span asked for: each partition looks up its own


def test_partition_workers_run_without_the_cyclic_collector(monkeypatch, tmp_path, sample_db):
    """Each forked partition worker lives for one partition: the collector is off in it (it walked the
    registry and the memo again at every collection), and stays on in the parent."""
    import gc

    import engine.evaluate as ev
    from engine.app import build_app
    from engine.periods import parse_range

    real = ev.judge_part
    log = tmp_path / "gc.txt"

    def recorded(*args, **kwargs):  # type: ignore[no-untyped-def]
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"{gc.isenabled()}\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(ev, "judge_part", recorded)
    app = build_app(f"sqlite:///{sample_db}")
    with app.db.connect() as conn:
        forked = ev.evaluate(conn, app.pack(), parse_range("2017"), ev.date(2018, 3, 1), processes=2)
    assert log.read_text(encoding="utf-8").split() == ["False", "False"]
    assert gc.isenabled()
    monkeypatch.setattr(ev, "judge_part", real)
    with app.db.connect() as conn:
        alone = ev.evaluate(conn, app.pack(), parse_range("2017"), ev.date(2018, 3, 1), processes=0)
    key = lambda f: (f.rule, f.subject_type, f.subject_id, f.period, f.message)  # noqa: E731
    assert sorted(map(key, forked.findings)) == sorted(map(key, alone.findings)) and forked.findings


def test_copy_pairs_are_found_once_beside_the_scan_and_the_plan(monkeypatch, tmp_path, sample_db):
    """A check judging copies over most of the stored minutes finds every candidate pair once, in a third
    forked job running first (the longest), side by side with the scan and then the plan; the same pairs
    as reading them in this process."""
    from engine.subjects.copy_pairs import every_pair

    engine = sa.create_engine(f"sqlite:///{sample_db}")
    log = tmp_path / "jobs.jsonl"
    _timed_jobs(monkeypatch, log)
    try:
        with engine.connect() as conn:
            screen, plan, pairs = screen_and_plan(conn, 2, "auto", (date(2017, 1, 1), date(2017, 12, 31)))
            expected = every_pair(conn)
            spans = _spans(log)
            # a month of a long record: its meetings are few beside the stored minutes, each partition looks up
            _, _, none = screen_and_plan(conn, 2, "auto", (date(2017, 3, 1), date(2017, 3, 31)))
    finally:
        engine.dispose()
    assert pairs == expected and len(expected) > 0  # the sample holds copied minutes
    assert none is None
    (c0, c1), (s0, s1), (p0, _) = spans["pairs"], spans["scan"], spans["plan"]
    assert c0 < s1 and s0 < c1  # the pairs beside the scan
    assert p0 >= min(c1, s1)  # and the plan in the first slot freed (two workers)
    assert not screen.tables and plan == (None,)


def test_forked_partitions_use_the_pairs_found_once(monkeypatch, sample_db):
    """No partition looks its copy candidates up when the check found them once (the look-up, inherited
    by the forked workers, would fail), and the findings are those of the one-process check."""
    import engine.subjects.single as single
    from engine.app import build_app
    from engine.periods import parse_range

    app = build_app(f"sqlite:///{sample_db}")
    with app.db.connect() as conn:
        alone = evaluate_module.evaluate(conn, app.pack(), parse_range("2017"), date(2018, 3, 1), processes=0)

    def refused(conn, targets):  # type: ignore[no-untyped-def]
        raise AssertionError("a partition looked its copy candidates up")

    monkeypatch.setattr(single, "copy_candidates", refused)
    with app.db.connect() as conn:
        forked = evaluate_module.evaluate(conn, app.pack(), parse_range("2017"), date(2018, 3, 1), processes=2)
    key = lambda f: (f.rule, f.subject_type, f.subject_id, f.period, f.message)  # noqa: E731
    assert sorted(map(key, forked.findings)) == sorted(map(key, alone.findings))
    assert any(f.rule == "meeting.minutes.copied" for f in forked.findings)
