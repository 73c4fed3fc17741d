"""Loading rule packs: the standard pack is valid; every kind of bad pack fails at load time, naming
file, line, rule and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.pack.errors import PackError
from engine.pack.load import load_pack
from rules import STANDARD_PACK

ADDED_IDS = {
    "party_group.meeting.majority", "branch.committee_meeting.quorum", "branch.heart_to_heart.committee_pairs",
    "party_group.integrity_study.yearly", "party_group.ideology_study.yearly",
}
STANDARD_IDS = {
    "party_group.party_building_study.monthly", "party_group.meeting.quorum", "party_group.meeting.leave",
    "party_group.meeting.personnel_quorum", "party_group.central_group_study.quarterly",
    "party_group.democratic_life.yearly", "branch.member_assembly.quarterly", "branch.member_assembly.quorum",
    "branch.committee_meeting.monthly", "branch.group_meeting.monthly", "branch.party_lecture.quarterly",
    "branch.theme_day.monthly", "branch.topic_discussion.quarterly", "branch.org_life_meeting.yearly",
    "branch.member_appraisal.yearly", "meeting.minutes.complete", "meeting.minutes.copied",
    "leader.dual_org_life.yearly", "leader.field_visit.yearly", "secretary.party_lecture.yearly",
    "member.absence.six_months", "branch.heart_to_heart.yearly", "dues.monthly.paid", "dues.amount.full",
    "dues.arrears.six_months", "org.election.overdue", "integrity.responsibility_letter.signed",
    "petition.registered.in_time", "petition.closed.in_time", "cadre.promotion.declaration",
}

GOOD = """
rules:
  - id: branch.committee_meeting.monthly
    title: 支部委员会会议每月至少召开1次
    basis: 《中国共产党支部工作条例（试行）》第十二条
    severity: warning
    effective: {from: 2010-01-01}
    subject: {type: org, org_kinds: [branch]}
    period: month
    derive:
      meetings: {source: meetings_held, kinds: [committee_meeting]}
    params: {at_least: 1}
    when: meetings < at_least
    message: "{org_name}{period_label}未召开支部委员会会议（应至少{at_least}次，实际{meetings}次）"
"""


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path


def problems(tmp_path: Path) -> list[str]:
    with pytest.raises(PackError) as info:
        load_pack(tmp_path)
    return [str(p) for p in info.value.problems]


def test_the_standard_pack_holds_every_contract_rule_id_with_basis_and_tests():
    pack = load_pack(STANDARD_PACK)
    # every contract id, and the rules added since (issue 12), whose ids must not clash with the contract's
    assert set(pack.ids()) == STANDARD_IDS | ADDED_IDS and not STANDARD_IDS & ADDED_IDS
    for rule in pack.rules:
        assert rule.rule.basis and rule.rule.title and rule.rule.message
    for rule in pack.rules:  # each added rule carries its own cases: one that finds, one that does not
        if rule.id in ADDED_IDS:
            assert any(t.expect for t in rule.rule.tests) and any(not t.expect for t in rule.rule.tests), rule.id
    assert len(pack.hash) == 16


def test_a_good_pack_loads_and_its_hash_follows_its_content(tmp_path):
    a = load_pack(write(tmp_path, GOOD))
    b = load_pack(write(tmp_path, GOOD.replace("at_least: 1", "at_least: 2")))
    assert a.hash != b.hash and a.rules[0].rule.params == {"at_least": 1}


def test_yaml_syntax_error_names_the_line(tmp_path):
    (msg,) = problems(write(tmp_path, "rules:\n  - id: x\n    title: [unclosed\n"))
    assert "r.yaml:" in msg and "YAML syntax error" in msg


def test_unknown_field_suggests_the_right_one(tmp_path):
    (msg,) = problems(write(tmp_path, GOOD.replace("    severity:", "    severty: warning\n    severity:")))
    assert "branch.committee_meeting.monthly" in msg and "severty" in msg and "severity" in msg
    assert "r.yaml:6:" in msg  # the line of the misspelt key


def test_condition_on_a_missing_field_names_it_with_a_suggestion(tmp_path):
    (msg,) = problems(write(tmp_path, GOOD.replace("when: meetings < at_least", "when: meeting < at_least")))
    assert "when" in msg and "meeting" in msg and "meetings" in msg


def test_type_mismatch_in_a_condition(tmp_path):
    (msg,) = problems(write(tmp_path, GOOD.replace("when: meetings < at_least", "when: org_name > 5")))
    assert "when" in msg


def test_unknown_rule_kind(tmp_path):
    (msg,) = problems(write(tmp_path, GOOD.replace("type: org, org_kinds", "type: orgg, org_kinds")))
    assert "subject" in msg and "orgg" in msg


def test_unknown_derive_source(tmp_path):
    (msg,) = problems(write(tmp_path, GOOD.replace("source: meetings_held", "source: meetings_hold")))
    assert "meetings_hold" in msg


def test_template_placeholder_the_subject_cannot_fill(tmp_path):
    (msg,) = problems(write(tmp_path, GOOD.replace("{org_name}", "{org_nam}")))
    assert "message" in msg and "org_nam" in msg and "org_name" in msg


def test_duplicate_ids_in_force_at_once_are_an_error(tmp_path):
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, GOOD, "b.yaml")
    (msg,) = problems(tmp_path)
    assert "in force at once" in msg


def test_two_versions_with_consecutive_effective_ranges_are_fine(tmp_path):
    write(tmp_path, GOOD.replace("{from: 2010-01-01}", "{from: 2010-01-01, to: 2017-12-31}"), "a.yaml")
    write(tmp_path, GOOD.replace("{from: 2010-01-01}", "{from: 2018-01-01}").replace("at_least: 1", "at_least: 2"), "b.yaml")
    pack = load_pack(tmp_path)
    assert len(pack.by_id("branch.committee_meeting.monthly")) == 2


def test_every_problem_is_listed_not_just_the_first(tmp_path):
    bad = GOOD.replace("{org_name}", "{nope}").replace("when: meetings < at_least", "when: nothing > 1")
    assert len(problems(write(tmp_path, bad))) == 2


# The rule contract's table of standard ids: each id's period and severity, as consumers filter on them.
CONTRACT_PERIOD_SEVERITY = {
    "party_group.party_building_study.monthly": ("month", "serious"),
    "party_group.meeting.quorum": ("fact", "serious"),
    "party_group.meeting.leave": ("fact", "warning"),
    "party_group.meeting.personnel_quorum": ("fact", "serious"),
    "party_group.central_group_study.quarterly": ("quarter", "warning"),
    "party_group.democratic_life.yearly": ("year", "serious"),
    "branch.member_assembly.quarterly": ("quarter", "warning"),
    "branch.member_assembly.quorum": ("fact", "serious"),
    "branch.committee_meeting.monthly": ("month", "warning"),
    "branch.group_meeting.monthly": ("month", "warning"),
    "branch.party_lecture.quarterly": ("quarter", "warning"),
    "branch.theme_day.monthly": ("month", "warning"),
    "branch.topic_discussion.quarterly": ("quarter", "warning"),
    "branch.org_life_meeting.yearly": ("year", "serious"),
    "branch.member_appraisal.yearly": ("year", "warning"),
    "meeting.minutes.complete": ("fact", "warning"),
    "meeting.minutes.copied": ("fact", "serious"),
    "leader.dual_org_life.yearly": ("year", "serious"),
    "leader.field_visit.yearly": ("year", "warning"),
    "secretary.party_lecture.yearly": ("year", "warning"),
    "member.absence.six_months": ("month", "critical"),
    "branch.heart_to_heart.yearly": ("year", "info"),
    "dues.monthly.paid": ("month", "warning"),
    "dues.amount.full": ("fact", "warning"),
    "dues.arrears.six_months": ("month", "critical"),
    "org.election.overdue": ("as-of date", "serious"),
    "integrity.responsibility_letter.signed": ("year", "serious"),
    "petition.registered.in_time": ("fact", "warning"),
    "petition.closed.in_time": ("fact", "serious"),
    "cadre.promotion.declaration": ("fact", "serious"),
}


def test_standard_rules_keep_the_period_and_severity_the_contract_lists():
    pack = load_pack(STANDARD_PACK)
    assert set(CONTRACT_PERIOD_SEVERITY) == STANDARD_IDS
    for rule in pack.rules:
        if rule.id in CONTRACT_PERIOD_SEVERITY:
            period, severity = CONTRACT_PERIOD_SEVERITY[rule.id]
            assert rule.rule.severity == severity, rule.id
            if period != "as-of date":
                assert rule.rule.period == period, rule.id
