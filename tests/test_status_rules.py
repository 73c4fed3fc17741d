"""Status rules (judged at a date, e.g. a term of office) in checks of any range, as a user runs them."""

from __future__ import annotations

import json

from click.testing import CliRunner

from engine.cli import main

FACTS = [
    {"type": "org", "id": "oc", "name": "机关党委", "kind": "organ_committee", "term_years": 5, "established": "2000-01-01"},
    {"type": "election", "org": "oc", "date": "2009-03-01"},  # due 2014-03-01
    {"type": "org", "id": "b1", "name": "第一支部", "kind": "branch", "parent": "oc", "term_years": 3},
    {"type": "election", "org": "b1", "date": "2014-09-01"},  # due 2017-09-01: fine in June, overdue in December
    {"type": "org", "id": "pg", "name": "党组", "kind": "party_group", "term_years": 5, "established": "2000-01-01"},
]


def _cli(tmp_path):
    db = tmp_path / "s.db"
    facts = tmp_path / "f.jsonl"
    facts.write_text("\n".join(json.dumps(f, ensure_ascii=False) for f in FACTS) + "\n", encoding="utf-8")

    def invoke(*args: str):
        return CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)

    assert invoke("import", str(facts), "--no-judge").exit_code == 0
    return invoke


def _overdue(invoke, period: str, as_of: str) -> dict[str, int]:
    result = invoke("check", "--period", period, "--as-of", as_of, "--format", "json")
    assert result.exit_code == 0, result.output
    return {
        f"{f['subject']['id']}|{f['period']}": f["evidence"]["observed"]["days_overdue"]
        for f in json.loads(result.stdout)
        if f["rule"] == "org.election.overdue"
    }


def _stored(invoke) -> dict[str, str]:
    result = invoke("violations", "list", "--rule", "org.election.overdue", "--format", "json")
    return {v["key"]: v["status"] for v in json.loads(result.stdout)}


def test_a_half_year_check_judges_the_term_on_its_last_day_and_keys_it_by_the_year(tmp_path):
    invoke = _cli(tmp_path)
    # overdue since 2014, judged on 30 June (the range's end), not on the as-of date
    assert _overdue(invoke, "2017-01..2017-06", "2017-07-24") == {"oc|2017": 1217}
    # a year check later finds the same violation under the same key: no duplicate
    assert _overdue(invoke, "2017", "2018-03-01") == {"oc|2017": 1401, "b1|2017": 121}
    assert _stored(invoke) == {
        "org.election.overdue|org:oc|2017": "open",
        "org.election.overdue|org:b1|2017": "open",
    }


def test_a_check_of_an_earlier_day_never_clears_what_a_later_day_found(tmp_path):
    invoke = _cli(tmp_path)
    _overdue(invoke, "2017", "2018-03-01")
    # on 30 June the branch was still within its term: the half-year run does not find it, nor resolve it
    assert _overdue(invoke, "2017-01..2017-06", "2018-03-01") == {"oc|2017": 1217}
    assert _stored(invoke)["org.election.overdue|org:b1|2017"] == "open"


def test_a_range_not_yet_begun_is_not_judged_and_a_party_group_never_is(tmp_path):
    invoke = _cli(tmp_path)
    assert _overdue(invoke, "2017-07..2017-12", "2017-06-30") == {}
    found = _overdue(invoke, "2017-Q3", "2017-12-01")  # judged on 30 September
    assert found == {"oc|2017": 1309, "b1|2017": 29}
    assert not any(k.startswith("pg|") for k in found)
