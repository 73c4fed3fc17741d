"""Forked matching workers that inherit the work: same answers as in-process, crashes reported."""

from __future__ import annotations

import random

import pytest

from engine.matcher import Matcher
from engine.matcher_fork import match_inherited
from engine.matcher_worker import MatcherCrashed

CONDITIONS = {
    "few": {"$lt": {"meetings": 1}},
    "quorum": {"$lt": {"present": {"$mul": {"$l": {"$m": "eligible"}, "$r": 0.9}}}},
}


def work(n: int, seed: int = 7):
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        if rnd.random() < 0.5:
            out.append(("few", {"meetings": rnd.randint(0, 3), "org": "b1", "id": "ignored"}))
        else:
            eligible = rnd.randint(1, 12)
            out.append(("quorum", {"present": rnd.randint(0, eligible), "eligible": eligible}))
    return out


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_same_answers_as_in_process(processes):
    items = work(3000)
    matcher = Matcher(CONDITIONS)
    expected = [matcher.matches(k, s) for k, s in items]
    assert match_inherited(CONDITIONS, items, processes) == expected
    assert any(expected) and not all(expected)


def test_a_crash_in_a_worker_is_reported_and_the_caller_lives_on(quiet_crashes):
    deadly = {"deadly": {"$lt": {"a": {"$div": {"$l": {"$m": "b"}, "$r": 0}}}}, **CONDITIONS}
    items = work(100) + [("deadly", {"a": 1, "b": 2})]
    with pytest.raises(MatcherCrashed, match="SIGFPE"):
        match_inherited(deadly, items, 2)
    assert match_inherited(CONDITIONS, work(10), 2) == [Matcher(CONDITIONS).matches(k, s) for k, s in work(10)]


def test_empty_work():
    assert match_inherited(CONDITIONS, [], 2) == []
