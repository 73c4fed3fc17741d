"""The registry through time (facts format version 2): verdicts read the registry on the date that matters.

Each test imports a small organisation as a user does (``partyrules import``), checks, then submits a dated
change of the registry and checks again.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.subjects.registry import Registry
from facts.errors import Location
from facts.store import FactStore

ORGS = [
    {"type": "org", "id": "pg", "name": "省文联党组", "kind": "party_group"},
    {"type": "org", "id": "oc", "name": "机关党委", "kind": "organ_committee"},
    {"type": "org", "id": "b1", "name": "第一支部", "kind": "branch", "parent": "oc"},
    {"type": "org", "id": "b2", "name": "第二支部", "kind": "branch", "parent": "oc"},
]


def _member(mid: str, name: str, org: str = "b1", **extra: Any) -> dict[str, Any]:
    return {"type": "member", "id": mid, "name": name, "org": org, "joined": "2010-01-01", **extra}


class Org:
    """A database, imported into and checked through the CLI."""

    def __init__(self, tmp_path, facts: list[dict[str, Any]]) -> None:
        self.tmp = tmp_path
        self.db = str(tmp_path / "r.db")
        self.n = 0
        self.add(ORGS + facts)

    def cli(self, *args: str):
        return CliRunner().invoke(main, ["--db", self.db, *args], catch_exceptions=False)

    def add(self, facts: list[dict[str, Any]]) -> None:
        self.n += 1
        path = self.tmp / f"f{self.n}.jsonl"
        path.write_text("\n".join(json.dumps(f, ensure_ascii=False) for f in facts) + "\n", encoding="utf-8")
        result = self.cli("import", str(path), "--no-judge")
        assert result.exit_code == 0, result.output

    def findings(self, rule: str, period: str = "2017", as_of: str = "2018-03-01") -> dict[str, dict[str, Any]]:
        result = self.cli("check", "--period", period, "--as-of", as_of, "--format", "json")
        assert result.exit_code == 0, result.output
        return {f["subject"]["id"]: f for f in json.loads(result.stdout) if f["rule"] == rule}


def _assembly(mid: str, day: str, attendees: list[str], org: str = "b1") -> dict[str, Any]:
    return {"type": "meeting", "id": mid, "org": org, "kind": "member_assembly", "date": day, "attendees": attendees}


def test_a_conversion_in_september_leaves_the_june_assembly_quorate(tmp_path):
    # June: four full members (3 present, 3/4) and two probationary members, who have no vote
    people = [_member(f"f{i}", f"正式{i}") for i in range(1, 5)]
    people += [_member("p1", "预备甲", status="probationary"), _member("p2", "预备乙", status="probationary")]
    org = Org(tmp_path, people + [
        _assembly("ma-06", "2017-06-20", ["f1", "f2", "f3", "p1", "p2"]),
        _assembly("ma-10", "2017-10-20", ["f1", "f2", "f3"]),  # after the conversion: 3 of 6
    ])
    before = org.findings("branch.member_assembly.quorum")
    assert set(before) == set()  # before the conversion is recorded October counts 3 of 4 too
    org.add([
        {"type": "member_change", "member": "p1", "date": "2017-09-10", "status": "full"},
        {"type": "member_change", "member": "p2", "date": "2017-09-10", "status": "full"},
    ])
    after = org.findings("branch.member_assembly.quorum")
    assert set(after) == {"ma-10"}  # June keeps its verdict (3/4); October is judged 3/6
    assert after["ma-10"]["evidence"]["observed"]["eligible"] == 6
    assert "ma-06" not in after


def test_a_role_that_ended_no_longer_counts_for_the_party_group_quorum(tmp_path):
    members = [
        _member(f"g{i}", f"党组成员{i}", roles=["party_group_member", "leader"], extra_orgs=["pg"]) for i in range(1, 6)
    ]
    meetings = [
        {"type": "meeting", "id": "pg-06", "org": "pg", "kind": "party_group_meeting", "date": "2017-06-15",
         "attendees": ["g1", "g2", "g3", "g4"], "absent": ["g5"]},
        {"type": "meeting", "id": "pg-07", "org": "pg", "kind": "party_group_meeting", "date": "2017-07-15",
         "attendees": ["g1", "g2", "g3", "g4"]},
    ]
    org = Org(tmp_path, members + meetings)
    assert set(org.findings("party_group.meeting.quorum")) == {"pg-06", "pg-07"}  # 4 of 5 = 80% both times
    org.add([{"type": "member_change", "member": "g5", "date": "2017-06-30", "roles_ended": ["party_group_member",
                                                                                                "leader"]}])
    found = org.findings("party_group.meeting.quorum")
    assert set(found) == {"pg-06"}  # June still 4 of 5; July 4 of 4
    # the leader rules read the role on the year's last day: g5 is no longer a leader in 2017
    assert "g5" not in org.findings("leader.field_visit.yearly") and "g1" in org.findings("leader.field_visit.yearly")


def test_retirement_in_july_changes_the_dues_standard_from_july(tmp_path):
    dues = [
        {"type": "dues", "member": "r1", "month": f"2017-{m:02d}", "amount": amount, "paid_on": f"2017-{m:02d}-20",
         "base": 4500}
        for m, amount in ((5, 45), (6, 22.5), (7, 22.5), (8, 22.5))
    ]
    org = Org(tmp_path, [_member("r1", "老刘")] + dues)
    # in service all year: 1% of 4,500 = 45 a month, so June to August are short
    short = set(_by_key(org, "dues.amount.full"))
    assert short == {"r1|2017-06", "r1|2017-07", "r1|2017-08"}
    org.add([{"type": "member_change", "member": "r1", "date": "2017-07-01", "category": "retired"}])
    found = _by_key(org, "dues.amount.full")
    assert set(found) == {"r1|2017-06"}  # retired from July: 0.5% of 4,500 = 22.5
    assert found["r1|2017-06"]["evidence"]["observed"]["standard"] == 45


def test_retirement_dated_mid_month_takes_effect_for_dues_the_next_month(tmp_path):
    dues = [{"type": "dues", "member": "r1", "month": "2017-07", "amount": 22.5, "paid_on": "2017-07-20", "base": 4500}]
    org = Org(tmp_path, [_member("r1", "老刘"), {"type": "member_change", "member": "r1", "date": "2017-07-15",
                                                 "category": "retired"}] + dues)
    assert set(_by_key(org, "dues.amount.full")) == {"r1|2017-07"}


def _by_key(org: Org, rule: str) -> dict[str, dict[str, Any]]:
    return org.findings(rule)


def test_a_transfer_in_mid_june_moves_the_member_between_branches_on_that_day(tmp_path):
    people = [_member("t1", "转接人"), _member("a1", "甲"), _member("a2", "乙"), _member("c1", "丙", org="b2")]
    meetings = [
        _assembly("b1-0610", "2017-06-10", ["a1", "a2"]),  # t1 still in b1: 2 of 3
        _assembly("b1-0625", "2017-06-25", ["a1"]),  # t1 gone: 1 of 2 — not more than half
        _assembly("b2-0620", "2017-06-20", ["c1"], org="b2"),  # t1 arrived: 1 of 2
    ]
    dues = [
        {"type": "dues", "member": "t1", "month": "2017-06", "amount": 1, "paid_on": "2017-06-05", "base": 4500},
        {"type": "dues", "member": "t1", "month": "2017-07", "amount": 1, "paid_on": "2017-07-05", "base": 4500},
    ]
    org = Org(tmp_path, people + meetings + dues + [
        {"type": "member_change", "member": "t1", "date": "2017-06-15", "org": "b2"},
    ])
    quorum = org.findings("branch.member_assembly.quorum")
    assert {k: f["evidence"]["observed"]["eligible"] for k, f in quorum.items()} == {"b1-0625": 2, "b2-0620": 2}
    short = _by_key(org, "dues.amount.full")
    # the month of transfer is owed to the branch left (转出当月党费由原支部收缴); July to the new one
    assert {k: f["org"] for k, f in short.items()} == {"t1|2017-06": "b1", "t1|2017-07": "b2"}


def test_an_org_dissolved_by_a_change_is_not_judged_after_and_its_kind_moves_with_the_date(tmp_path):
    org = Org(tmp_path, [
        {"type": "org", "id": "g9", "name": "第九党小组", "kind": "group", "parent": "b1"},
        {"type": "org_change", "org": "g9", "date": "2017-07-01", "kind": "branch", "parent": "oc", "name": "第九支部"},
        {"type": "org_change", "org": "b2", "date": "2017-03-31", "dissolved": True},
    ])
    monthly = org.cli("check", "--period", "2017", "--as-of", "2018-03-01", "--format", "json")
    by_rule: dict[str, set[tuple[str, str]]] = {}
    for f in json.loads(monthly.stdout):
        by_rule.setdefault(f["rule"], set()).add((f["subject"]["id"], f["period"]))
    committee = by_rule["branch.committee_meeting.monthly"]
    assert ("b2", "2017-03") in committee and ("b2", "2017-04") not in committee
    assert ("g9", "2017-06") not in committee and ("g9", "2017-07") in committee
    groups = by_rule["branch.group_meeting.monthly"]
    assert ("g9", "2017-06") in groups and ("g9", "2017-07") not in groups
    assert next(f for f in json.loads(monthly.stdout) if f["subject"]["id"] == "g9" and f["period"] == "2017-08")[
        "org_name"
    ] in ("第九党小组", "第九支部")


@pytest.mark.parametrize("partial", [False, True])
def test_the_registry_gives_each_day_its_state_whole_or_partly_loaded(db_engine, partial):
    store = FactStore(db_engine)
    store.create_schema()
    facts = [
        *ORGS,
        _member("m1", "甲", status="probationary", roles=["committee_member"]),
        _member("m2", "乙", org="b2"),
        {"type": "member_change", "member": "m1", "date": "2017-09-10", "status": "full"},
        {"type": "member_change", "member": "m1", "date": "2017-11-01", "org": "b2",
         "roles_ended": ["committee_member"], "roles_appointed": ["branch_secretary"]},
        {"type": "org_change", "org": "b1", "date": "2017-12-31", "dissolved": True},
    ]
    report = store.import_items([(Location("t.jsonl", i + 1), f) for i, f in enumerate(facts)])
    assert report.rejected == 0
    with db_engine.connect() as conn:
        reg = Registry.load(conn, orgs=["b2"]) if partial else Registry.load(conn)
    m1 = reg.members["m1"]  # the partial registry of b2 holds m1: transferred in
    assert (m1.at(date(2017, 9, 9)).status, m1.at(date(2017, 9, 10)).status) == ("probationary", "full")
    nov = m1.at(date(2017, 11, 1))
    assert (nov.org, nov.roles, nov.status) == ("b2", frozenset({"branch_secretary"}), "full")
    assert m1.at(date(2017, 10, 31)).org == "b1" and m1.latest.org == "b2"
    assert [s.org for s in m1.states_during(date(2017, 10, 1), date(2017, 11, 30))] == ["b1", "b2"]
    assert {m.id for m in reg.members_of["b2"]} == {"m1", "m2"}
    if not partial:
        assert reg.orgs["b1"].dissolved == date(2017, 12, 31)
        assert not reg.orgs["b1"].exists_during(date(2018, 1, 1), date(2018, 1, 31))


def test_dated_changes_go_through_csv_and_back_unchanged(tmp_path):
    org = Org(tmp_path, [
        _member("m1", "甲", status="probationary", excused=True),
        {"type": "member_change", "member": "m1", "date": "2017-09-10", "status": "full", "org": "b2",
         "roles_appointed": ["committee_member", "leader"], "dues_quarterly": True},
        {"type": "org_change", "org": "b2", "date": "2018-01-01", "dissolved": True},
        {"type": "org_change", "org": "b1", "date": "2017-03-01", "parent": "pg", "term_years": 3},
    ])
    first = org.cli("export").stdout
    assert org.cli("export", "--format", "csv", "--out", str(tmp_path / "csv")).exit_code == 0
    files = sorted(str(p) for p in (tmp_path / "csv").glob("*.csv"))
    assert any(f.endswith("member_changes.csv") for f in files) and any(f.endswith("org_changes.csv") for f in files)
    again = CliRunner().invoke(main, ["--db", str(tmp_path / "again.db"), "import", *files, "--no-judge"])
    assert again.exit_code == 0, again.output
    assert CliRunner().invoke(main, ["--db", str(tmp_path / "again.db"), "export"]).stdout == first


def test_a_change_that_changes_nothing_or_points_nowhere_is_refused_with_file_line_and_field(tmp_path):
    org = Org(tmp_path, [_member("m1", "甲")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(json.dumps(f, ensure_ascii=False) for f in [
        {"type": "member_change", "member": "m1", "date": "2017-09-10"},
        {"type": "member_change", "member": "m1", "date": "2017-09-11", "org": "b9"},
        {"type": "member_change", "member": "m1", "date": "2017-09-31", "status": "full"},
        {"type": "member_change", "member": "m1", "date": "2017-09-12", "category": "retired"},
    ]) + "\n", encoding="utf-8")
    result = org.cli("import", str(bad), "--no-judge")
    assert result.exit_code == 1
    assert "bad.jsonl:1: member_change" in result.stderr and "at least one field" in result.stderr
    assert "bad.jsonl:2: member_change.org" in result.stderr and "b9" in result.stderr
    assert "bad.jsonl:3: member_change.date" in result.stderr
    assert "added 1" in result.stdout  # the valid change around them is kept
