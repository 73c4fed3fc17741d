"""Issue 11: rule packs that would exhaust memory, hang durable_rules or overflow the stack are refused
at load (``rules validate``), naming file, line, rule and field, with a suggestion."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.condition import check, compile_durable, parse
from engine.condition.durable import MAX_OR_TERMS
from engine.condition.parser import MAX_DEPTH, MAX_TEXT
from engine.errors import ConditionError
from engine.matcher import Matcher
from engine.pack.errors import PackError
from engine.pack.load import load_pack

RULE = """
rules:
  - id: branch.committee_meeting.monthly
    title: 支部委员会会议每月至少召开1次
    basis: 《中国共产党支部工作条例（试行）》第十二条
    severity: warning
    effective: {{from: 2010-01-01}}
    subject: {{type: org, org_kinds: [branch]}}
    period: month
    derive:
      meetings: {{source: meetings_held, kinds: [committee_meeting]}}
    params:
{params}
    when: "{when}"
    message: "{{org_name}}{{period_label}}未召开支部委员会会议"
"""


def pack(tmp_path: Path, when: str = "meetings < at_least", params: str = "      at_least: 1") -> Path:
    (tmp_path / "r.yaml").write_text(textwrap.dedent(RULE).format(when=when, params=params), encoding="utf-8")
    return tmp_path


def refused(tmp_path: Path) -> str:
    with pytest.raises(PackError) as info:
        load_pack(tmp_path)
    return str(info.value)


LAUGHS = ["      at_least: 1", "      junk:", "        a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
    f"        a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)
]  # ten levels of ten aliases: 10^10 values, which would exhaust memory if expanded


def test_billion_laughs_in_params_is_refused_before_it_expands(tmp_path):
    message = refused(pack(tmp_path, params="\n".join(LAUGHS)))
    # a1 adds 110 values, a2 1,110, the 8th alias of a3 (line 18) passes 10,000
    assert "r.yaml:18" in message and "YAML aliases expand too far" in message and "alias *a2" in message


def test_a_few_anchors_as_yaml_dump_writes_them_still_load(tmp_path):
    rules = load_pack(pack(tmp_path, params="      at_least: &one 1\n      floor: *one")).rules
    assert rules[0].params["floor"] == 1


def test_the_validate_command_names_file_and_line_for_an_alias_bomb(tmp_path):
    result = CliRunner().invoke(main, ["rules", "validate", str(pack(tmp_path, params="\n".join(LAUGHS)))])
    assert result.exit_code == 1 and "r.yaml:18" in result.output and "expand too far" in result.output


def test_an_or_wider_than_durable_rules_takes_is_refused_at_load(tmp_path):
    when = " or ".join(f"meetings < {i}" for i in range(1, MAX_OR_TERMS + 2))
    message = refused(pack(tmp_path, when=when))
    assert "branch.committee_meeting.monthly when:" in message and "r.yaml:14" in message
    assert f"{MAX_OR_TERMS + 1} terms, at most {MAX_OR_TERMS}" in message and "split" in message


def test_an_in_list_wider_than_durable_rules_takes_is_refused_at_load(tmp_path):
    when = "meetings in [" + ", ".join(str(i) for i in range(100)) + "]"
    message = refused(pack(tmp_path, when=when))
    assert "an or (or an in list) of 100 terms" in message


def test_the_widest_or_allowed_works_in_durable_rules_even_when_every_term_holds():
    """The bound is where durable_rules really stops: 64 terms true at once are judged; 66 fail (303)."""
    fields = {"meetings": "number"}
    at_limit = parse(" or ".join(f"meetings < {i}" for i in range(1, MAX_OR_TERMS + 1)))
    check(at_limit, fields, {})
    matcher = Matcher({"r": compile_durable(at_limit, fields, {})})
    assert matcher.matches_many("r", [{"meetings": 0}, {"meetings": 100}] * 50) == [True, False] * 50


def test_a_thousand_nested_nots_is_a_clear_error_not_a_recursion_error(tmp_path):
    message = refused(pack(tmp_path, when="not " * 400 + "meetings < at_least"))
    assert "nests" in message and f"at most {MAX_DEPTH}" in message and "r.yaml:14" in message


@pytest.mark.parametrize(
    "text",
    [
        "not " * 1000 + "meetings < 1",
        "(" * 900 + "meetings < 1" + ")" * 900,
        "-" * 1500 + "meetings < 1",
        "meetings + " * 150 + "meetings < 1",
        "meetings < " + "9" * 1900,
    ],
)
def test_deep_or_long_conditions_compile_or_raise_condition_errors_only(text):
    try:
        cond = parse(text)
        check(cond, {"meetings": "number"}, {})
        compile_durable(cond, {"meetings": "number"}, {})
    except ConditionError:
        pass


def test_a_condition_longer_than_the_bound_is_refused(tmp_path):
    when = " and ".join(f"meetings != {i}" for i in range(300))
    assert len(when) > MAX_TEXT
    message = refused(pack(tmp_path, when=when))
    assert f"at most {MAX_TEXT}" in message and "branch.committee_meeting.monthly" in message
