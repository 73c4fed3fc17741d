"""The durable_rules adapter: firing, isolation between rules, surfaced errors, worker processes."""

from __future__ import annotations

from typing import Any

import pytest

from engine.condition import compile_durable
from engine.matcher import Matcher, MatcherCrashed, MatcherError, floor_loop, match_all

FIELDS = {
    "meetings": "number",
    "present": "number",
    "eligible": "number",
    "topics": "list",
    "is_closed": "bool",
}
PARAMS = {"at_least": 1, "threshold": 0.9}
CONDITIONS = {
    "monthly": compile_durable("meetings < at_least", FIELDS, PARAMS),
    "quorum": compile_durable("present < eligible * threshold", FIELDS, PARAMS),
    "few": compile_durable("meetings < 3", FIELDS, PARAMS),
    "no_study": compile_durable("'study' not in topics and not is_closed", FIELDS, PARAMS),
}


def subject(**values: Any) -> dict[str, Any]:
    base = {
        "id": "m-1",
        "sid": "x",
        "meetings": 0,
        "present": 9,
        "eligible": 10,
        "topics": [],
        "is_closed": False,
    }
    return {**base, **values}


def test_fires_when_the_condition_holds_and_not_otherwise() -> None:
    m = Matcher(CONDITIONS)
    assert m.matches("monthly", subject(meetings=0)) is True
    assert m.matches("monthly", subject(meetings=1)) is False
    assert m.matches("quorum", subject(present=8, eligible=10)) is True
    assert m.matches("quorum", subject(present=9, eligible=10)) is False  # 9 < 9.0 is false


def test_an_event_matching_two_rules_fires_both() -> None:
    m = Matcher(CONDITIONS)
    s = subject(meetings=0)
    assert m.matches("monthly", s) and m.matches("few", s)
    assert [m.matches(k, s) for k in ("few", "monthly", "few")] == [
        True,
        True,
        True,
    ]  # events are not deduplicated


def test_not_in_a_list_holds_for_an_empty_list() -> None:
    m = Matcher(CONDITIONS)
    assert m.matches("no_study", subject(topics=[])) is True
    assert m.matches("no_study", subject(topics=["other"])) is True
    assert m.matches("no_study", subject(topics=["other", "study"])) is False
    assert m.matches("no_study", subject(topics=[], is_closed=True)) is False


def test_only_the_fields_a_condition_reads_are_posted() -> None:
    m = Matcher(CONDITIONS)
    assert m.fields("quorum") == ("present", "eligible")
    assert m.fields("no_study") == ("topics", "is_closed")


def test_a_missing_or_null_field_is_an_error_not_a_silent_no() -> None:
    m = Matcher(CONDITIONS)
    with pytest.raises(MatcherError, match="no field 'eligible'") as info:
        m.matches("quorum", {"present": 1})
    assert info.value.rule_key == "quorum"
    with pytest.raises(MatcherError, match="null"):
        m.matches("quorum", subject(eligible=None))


def test_values_durable_rules_cannot_read_are_named() -> None:
    m = Matcher(CONDITIONS)
    with pytest.raises(MatcherError, match="present = 1e-05"):
        m.matches("quorum", subject(present=0.00001))


def test_unknown_rule_and_bad_conditions_are_reported_with_the_rule_key() -> None:
    with pytest.raises(MatcherError, match="no rule 'nope'"):
        Matcher(CONDITIONS).matches("nope", subject())
    with pytest.raises(MatcherError, match="unsupported operator \\$in") as info:
        Matcher({"bad": {"$in": {"meetings": [1, 2]}}})
    assert info.value.rule_key == "bad"
    with pytest.raises(MatcherError, match="'id'"):
        Matcher({"bad": {"id": 3}})
    with pytest.raises(MatcherError, match="more than 15"):
        Matcher({"big": {"$and": [{"$or": [{"x": i}, {"y": i}]} for i in range(15)]}})
    with pytest.raises(MatcherError, match="\\$mul needs \\$l and \\$r"):
        Matcher({"bad": {"$lt": {"a": {"$mul": {"$l": 2}}}}})


def test_an_exception_swallowed_by_durable_rules_surfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_action(self: Matcher, name: str) -> Any:
        def fire(c: Any) -> None:
            raise RuntimeError("boom in action")

        return fire

    monkeypatch.setattr(Matcher, "_action", broken_action)
    m = Matcher(CONDITIONS)
    assert m.matches("monthly", subject(meetings=5)) is False  # no action ran: nothing to swallow
    with pytest.raises(MatcherError, match="boom in action"):
        m.matches("monthly", subject(meetings=0))


def test_two_matchers_in_one_process_are_independent() -> None:
    a, b = Matcher({"r": {"$lt": {"x": 5}}}), Matcher({"r": {"$gt": {"x": 5}}})
    assert (a.matches("r", {"x": 1}), b.matches("r", {"x": 1})) == (True, False)


def test_match_all_returns_one_answer_per_item_in_order() -> None:
    work = [
        (key, subject(meetings=i % 4, present=i % 11))
        for i in range(500)
        for key in ("monthly", "quorum", "few")
    ]
    m = Matcher(CONDITIONS)
    expected = [m.matches(k, s) for k, s in work]
    assert match_all(CONDITIONS, work) == expected
    assert match_all(CONDITIONS, work, processes=2) == expected
    assert match_all(CONDITIONS, []) == []


def test_match_all_reports_errors_from_the_worker_with_the_item() -> None:
    work = [("quorum", subject())] * 3 + [("quorum", subject(present=1e-5))]
    with pytest.raises(MatcherError, match="1e-05") as info:
        match_all(CONDITIONS, work)
    assert "while matching work item 3" in info.value.__notes__
    with pytest.raises(MatcherError, match="no field"):
        match_all(CONDITIONS, [("quorum", {"present": 1})])


def test_a_crashing_worker_is_reported_and_the_caller_lives_on(quiet_crashes) -> None:
    # integer division by zero kills durable_rules' process with SIGFPE (compile_durable never emits it)
    deadly = {"deadly": {"$lt": {"a": {"$div": {"$l": {"$m": "b"}, "$r": 0}}}}, **CONDITIONS}
    work = [("monthly", subject())] * 10 + [("deadly", {"a": 1, "b": 2})]
    with pytest.raises(MatcherCrashed, match="SIGFPE") as info:
        match_all(deadly, work, processes=2)
    assert "deadly" in str(info.value)
    assert match_all(CONDITIONS, [("monthly", subject())]) == [True]


def test_floor_loop_times_the_same_work() -> None:
    seconds = floor_loop(CONDITIONS, [("monthly", subject())] * 50)
    assert 0 < seconds < 5
