"""The standard rule pack's own test cases (the ``tests:`` and ``fixture:`` parts of ``rules/*.yaml``)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.pack.load import Pack, load_pack
from engine.pack.model import ExpectedFinding, RuleTest
from engine.pack.testing import CaseResult, run_case, run_pack_tests
from rules import STANDARD_PACK

#: The standard rule ids of shared/spec/rules.md: a contract (alerts, waivers, reports refer to them).
STANDARD_IDS = {
    "party_group.party_building_study.monthly",
    "party_group.meeting.quorum",
    "party_group.meeting.leave",
    "party_group.meeting.personnel_quorum",
    "party_group.central_group_study.quarterly",
    "party_group.democratic_life.yearly",
    "branch.member_assembly.quarterly",
    "branch.member_assembly.quorum",
    "branch.committee_meeting.monthly",
    "branch.group_meeting.monthly",
    "branch.party_lecture.quarterly",
    "branch.theme_day.monthly",
    "branch.topic_discussion.quarterly",
    "branch.org_life_meeting.yearly",
    "branch.member_appraisal.yearly",
    "meeting.minutes.complete",
    "meeting.minutes.copied",
    "leader.dual_org_life.yearly",
    "leader.field_visit.yearly",
    "secretary.party_lecture.yearly",
    "member.absence.six_months",
    "branch.heart_to_heart.yearly",
    "dues.monthly.paid",
    "dues.amount.full",
    "dues.arrears.six_months",
    "org.election.overdue",
    "integrity.responsibility_letter.signed",
    "petition.registered.in_time",
    "petition.closed.in_time",
    "cadre.promotion.declaration",
}


@pytest.fixture(scope="module")
def pack() -> Pack:
    return load_pack(STANDARD_PACK)


@pytest.fixture(scope="module")
def results(pack: Pack) -> list[CaseResult]:
    return list(run_pack_tests(pack))


#: rules added by issue 12: ids outside the contract's list
ADDED_IDS = {
    "party_group.meeting.majority", "branch.committee_meeting.quorum", "branch.heart_to_heart.committee_pairs",
    "party_group.integrity_study.yearly", "party_group.ideology_study.yearly",
}


def test_pack_holds_every_standard_rule(pack: Pack) -> None:
    assert set(pack.ids()) == STANDARD_IDS | ADDED_IDS and not STANDARD_IDS & ADDED_IDS


def test_every_rule_has_a_violation_a_compliant_and_an_edge_case(pack: Pack) -> None:
    thin = {}
    for rule in pack.rules:
        cases = rule.rule.tests
        flagged = [c for c in cases if c.expect]
        clean = [c for c in cases if not c.expect]
        if len(cases) < 3 or not flagged or not clean:
            thin[rule.id] = (len(cases), len(flagged), len(clean))
    assert thin == {}, "rule: (cases, expecting findings, expecting none)"


def test_every_case_passes(results: list[CaseResult]) -> None:
    failures = [str(r) for r in results if not r.ok]
    assert failures == [], "\n".join(failures)


def test_cases_run_for_every_rule(pack: Pack, results: list[CaseResult]) -> None:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.rule] = counts.get(r.rule, 0) + 1
    expected: dict[str, int] = {}
    for rule in pack.rules:  # every version of an id (two where the regulation changed) brings its cases
        expected[rule.id] = expected.get(rule.id, 0) + len(rule.rule.tests)
    assert counts == expected


def test_a_wrong_expectation_fails(pack: Pack) -> None:
    """The runner can fail: a compliant case expecting a finding, and a violation expecting none."""
    rule = pack.by_id("branch.committee_meeting.monthly")[0]
    compliant = next(c for c in rule.rule.tests if not c.expect)
    violation = next(c for c in rule.rule.tests if c.expect)
    wrong_a = compliant.model_copy(
        update={"expect": [ExpectedFinding(subject="b1", period=compliant.period)]}
    )
    wrong_b = violation.model_copy(update={"expect": []})
    assert run_case(pack, rule, compliant).ok
    assert not run_case(pack, rule, wrong_a).ok
    result = run_case(pack, rule, wrong_b)
    assert not result.ok
    assert any("unexpected finding for b1" in p for p in result.problems)


def test_a_wrong_evidence_value_fails(pack: Pack) -> None:
    rule = pack.by_id("dues.amount.full")[0]
    case = RuleTest(
        name="wrong standard",
        facts=[
            {
                "type": "dues",
                "member": "d01",
                "month": "2017-06",
                "amount": 40,
                "paid_on": "2017-06-20",
                "base": 4500,
            }
        ],
        period="2017-06",
        as_of=date(2017, 7, 11),
        expect=[ExpectedFinding(subject="d01|2017-06", period="2017-06", values={"standard": 44})],
    )
    result = run_case(pack, rule, case)
    assert not result.ok
    assert result.problems == ["d01|2017-06: standard = 45.0, expected 44"]


def test_cli_rules_test_reports_all_cases_passed(
    pack: Pack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    total = sum(len(rule.rule.tests) for rule in pack.rules)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PARTYRULES_DB", raising=False)
    result = CliRunner().invoke(main, ["rules", "test"])
    lines = result.output.strip().splitlines()
    assert re.fullmatch(r"\d+ passed, \d+ failed", lines[-1]), result.output
    assert lines[-1] == f"{total} passed, 0 failed", result.output
    assert result.exit_code == 0
    assert "has no test cases" not in result.output
