"""The sample organisation: valid, resolvable, deterministic, realistic, and wrong exactly where planned."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import get_args

import pytest

from engine.sample import sample_expected, sample_facts, write_sample
from engine.sample.expect import RULE_IDS, AmbiguousExpectation, expected_findings
from engine.sample.text import jaccard, shingles
from facts.errors import Location
from facts.models import MODELS, FactBase, MeetingKind, natural_key, references
from facts.validate import validate_object


@pytest.fixture(scope="module")
def facts() -> list[dict]:
    return sample_facts()


@pytest.fixture(scope="module")
def models(facts) -> list[FactBase]:
    out = []
    for i, raw in enumerate(facts, start=1):
        result = validate_object(raw, Location("sample", i))
        assert not isinstance(result, list), (raw, [str(p) for p in result])
        out.append(result)
    return out


def test_every_object_validates_and_references_resolve(models):
    ids = {(m.type, natural_key(m)) for m in models if m.type in ("org", "member")}  # type: ignore[attr-defined]
    for fact in models:
        for path, target, ref in references(fact):
            assert (target, ref) in ids, f"{fact.type} {natural_key(fact)}: {path} -> {ref}"  # type: ignore[attr-defined]


def test_natural_keys_are_unique_within_each_type(models):
    keys = Counter((m.type, natural_key(m)) for m in models)  # type: ignore[attr-defined]
    assert [k for k, n in keys.items() if n > 1] == []


def test_registry_objects_come_first(facts):
    kinds = [f["type"] in ("org", "member", "org_change", "member_change") for f in facts]
    assert kinds == sorted(kinds, reverse=True)
    assert set(f["type"] for f in facts) == set(MODELS)


def test_write_sample_is_deterministic(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    n = write_sample(a)
    assert write_sample(b) == n == len(a.read_text(encoding="utf-8").splitlines())
    assert a.read_bytes() == b.read_bytes()


def test_shape_of_the_federation(facts):
    orgs = [f for f in facts if f["type"] == "org"]
    members = [f for f in facts if f["type"] == "member"]
    kinds = Counter(o["kind"] for o in orgs)
    assert kinds["party_group"] == kinds["organ_committee"] == kinds["discipline_committee"] == 1
    assert kinds["branch"] == 8 and 16 <= kinds["group"] <= 24 and kinds["unit"] == 15
    assert {o["term_years"] for o in orgs if o["kind"] == "branch"} == {3}
    assert [o["term_years"] for o in orgs if o["kind"] == "organ_committee"] == [5]
    assert len(members) == 100
    roles = Counter(r for m in members for r in m.get("roles", []))
    assert roles["party_group_member"] == 7 and roles["party_group_secretary"] == 1
    assert roles["branch_secretary"] == 8 and roles["unit_head"] == 15
    statuses = Counter(m.get("status", "full") for m in members)
    assert statuses["probationary"] >= 1 and statuses["non_member"] == 2
    assert any(m.get("category") == "retired" for m in members)
    assert sum(m.get("joined", "").startswith("2017") for m in members) == 2
    assert sum("left" in m for m in members) == 1
    assert all("\u4e00" <= m["name"][0] <= "\u9fff" for m in members)
    heads = {m["unit"] for m in members if "unit" in m}
    assert heads == {o["id"] for o in orgs if o["kind"] == "unit"}


def test_every_meeting_kind_is_held_with_chinese_minutes(facts):
    meetings = [f for f in facts if f["type"] == "meeting"]
    assert {m["kind"] for m in meetings} == set(get_args(MeetingKind))
    contents = [m["minutes"]["content"] for m in meetings if "content" in m["minutes"]]
    assert min(len(c) for c in contents) >= 80
    assert all("召开" in c for c in contents)


def test_only_the_planted_copy_is_a_near_copy(facts):
    """Every pair of the yearly and quarterly meetings, and of 150 others, of different orgs."""
    meetings = [f for f in facts if f["type"] == "meeting" and "content" in f["minutes"]]
    rare = [m for m in meetings if m["kind"] not in ("theme_day", "committee_meeting", "group_meeting")]
    often = [m for m in meetings if m not in rare][::3][:150]
    sh = {m["id"]: frozenset(shingles(m["minutes"]["content"])) for m in rare + often}
    org = {m["id"]: m["org"] for m in meetings}
    similarity = {
        (a, b): len(sh[a] & sh[b]) / len(sh[a] | sh[b])
        for a, b in itertools.combinations(sh, 2)
        if org[a] != org[b]
    }
    planted = ("b2-2017-olm01", "b6-2017-olm01")
    assert [pair for pair, j in similarity.items() if j >= 0.9] == [planted]
    assert similarity[planted] < 1.0  # the copier put its own branch name in
    assert max(j for pair, j in similarity.items() if pair != planted) < 0.7


def test_dues_follow_the_brackets_except_the_short_payment(facts):
    category = {f["id"]: f.get("category", "in_service") for f in facts if f["type"] == "member"}
    short = []
    for d in (f for f in facts if f["type"] == "dues"):
        rates = (
            ((5000, 5), (10**9, 10))
            if category[d["member"]] == "retired"
            else ((3000, 5), (5000, 10), (10000, 15), (10**9, 20))
        )
        per_mille = next(r for bound, r in rates if d["base"] <= bound)
        if round(d["amount"] * 100) < d["base"] * per_mille // 10:
            short.append(d["member"] + "|" + d["month"])
    assert len(short) == 1


def test_the_seed_reports_lapses_are_the_expected_findings():
    counts = Counter(f.rule for f in sample_expected())
    assert set(counts) <= set(RULE_IDS)
    assert counts == {
        "branch.committee_meeting.monthly": 7,  # b7 January–April, b8 February–April
        "branch.group_meeting.monthly": 6,  # b8's two groups, February–April
        "branch.theme_day.monthly": 3,
        "branch.member_assembly.quarterly": 1,
        "branch.party_lecture.quarterly": 1,
        "branch.topic_discussion.quarterly": 1,
        "branch.member_assembly.quorum": 1,
        "branch.heart_to_heart.yearly": 1,
        "party_group.meeting.quorum": 2,  # 6/7 on leave, 6/7 with one absent without leave
        "party_group.meeting.leave": 1,
        "party_group.party_building_study.monthly": 1,
        "meeting.minutes.complete": 2,
        "meeting.minutes.copied": 1,
        "leader.dual_org_life.yearly": 1,
        "leader.field_visit.yearly": 1,
        "secretary.party_lecture.yearly": 1,
        "member.absence.six_months": 2,  # away April–October: September and October
        "dues.monthly.paid": 8,  # one late month, and June–December unpaid
        "dues.amount.full": 1,
        "dues.arrears.six_months": 2,  # unpaid from June: November and December
        "org.election.overdue": 2,  # the organ committee and the discipline committee elected with it
        "integrity.responsibility_letter.signed": 1,
        "petition.registered.in_time": 1,
        "petition.closed.in_time": 1,
        "cadre.promotion.declaration": 1,
    }


# The bookkeeping's reading of the rules, on hand-made facts -------------------------------------------


def _member(mid: str, **extra) -> dict:
    return {"type": "member", "id": mid, "name": "张三", "org": "b1", **extra}


def _dues(mid: str, month: int, amount: float, base: int, paid: str | None = None) -> dict:
    return {
        "type": "dues",
        "member": mid,
        "month": f"2017-{month:02d}",
        "amount": amount,
        "paid_on": paid or f"2017-{month:02d}-20",
        "base": base,
    }


def _rules(findings) -> Counter:
    return Counter((f.rule, f.period) for f in findings if f.rule.startswith("dues"))


def test_bracket_bounds_are_inclusive_and_joiners_owe_from_their_month():
    base = [{"type": "org", "id": "b1", "name": "第一党支部", "kind": "branch"}]
    member = _member("m1", joined="2017-04-10")
    dues = [_dues("m1", m, 15.0, 3000) for m in range(4, 13)]  # 3000 is in the 0.5% bracket
    assert _rules(expected_findings([*base, member, *dues])) == Counter()
    dues[0] = _dues("m1", 4, 14.99, 3000)
    dues[1] = _dues("m1", 5, 15.0, 3000, paid="2017-06-01")
    assert _rules(expected_findings([*base, member, *dues])) == Counter(
        {("dues.amount.full", "2017-04"): 1, ("dues.monthly.paid", "2017-05"): 1}
    )


def test_six_month_streaks_flag_the_sixth_month_and_after():
    org = {"type": "org", "id": "b1", "name": "第一党支部", "kind": "branch"}
    dues = [_dues("m1", m, 100.0, 5000) for m in (1, 2, 10, 11, 12)]  # March–September unpaid
    findings = expected_findings([org, _member("m1", joined="2017-01-01"), *dues])
    flagged = {p for r, p in _rules(findings) if r == "dues.arrears.six_months"}
    assert flagged == {"2017-08", "2017-09"}
    # a streak from January is ambiguous (was December 2016 paid?): the generators must not make one
    with pytest.raises(AmbiguousExpectation):
        expected_findings([org, _member("m1"), *[_dues("m1", m, 100.0, 5000) for m in range(7, 13)]])


def test_open_petitions_are_judged_at_the_as_of_date():
    petitions = [
        {"type": "petition", "id": "p1", "received": "2017-12-30", "registered": "2017-12-30"},
        {"type": "petition", "id": "p2", "received": "2017-12-31", "registered": "2017-12-31"},
    ]
    assert [f.subject_id for f in expected_findings(petitions)] == ["p1"]  # 61 days open by 1 March; 60


def test_elections_are_due_term_years_after_the_last():
    orgs = [
        {
            "type": "org",
            "id": "b1",
            "name": "甲",
            "kind": "branch",
            "term_years": 3,
            "established": "2010-01-01",
        },
        {
            "type": "org",
            "id": "b2",
            "name": "乙",
            "kind": "branch",
            "term_years": 3,
            "established": "2010-01-01",
        },
    ]
    elections = [
        {"type": "election", "org": "b1", "date": "2015-03-02"},
        {"type": "election", "org": "b2", "date": "2015-02-28"},
    ]
    overdue = [
        f.subject_id for f in expected_findings([*orgs, *elections]) if f.rule == "org.election.overdue"
    ]
    assert overdue == ["b2"]


def test_jaccard_is_over_character_trigrams():
    text = "机关第二党支部召开专题组织生活会，传达学习党的十九大报告，开展批评和自我批评。"
    assert jaccard(text, text) == 1.0
    assert 0.8 < jaccard(text, text.replace("第二", "第六")) < 1.0
    assert jaccard("甲乙丙丁戊", "乙丙丁戊己") == 2 / 4  # {甲乙丙 乙丙丁 丙丁戊} vs {乙丙丁 丙丁戊 丁戊己}
