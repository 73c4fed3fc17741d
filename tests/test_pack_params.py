"""Typed params and message placeholders: wrong values are refused at load, naming file, line, rule, field."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.pack.errors import PackError
from engine.pack.load import load_pack
from engine.pack.params import DEFAULT_MINUTES_PARTS, MINUTES_PARTS
from engine.subjects.similarity import detector_floor, miss_probability

QUORUM = """
rules:
  - id: branch.member_assembly.quorum
    title: 支部党员大会须有半数以上有表决权的党员到会
    basis: 《中国共产党支部工作条例（试行）》第十一条
    severity: serious
    effective: {from: 2010-01-01}
    subject: {type: meeting, kinds: [member_assembly], eligible: full_members}
    period: fact
    params: {threshold: THRESHOLD}
    when: attendance_ratio <= threshold
    message: "MESSAGE"
"""

COPY = """
rules:
  - id: meeting.minutes.copied
    title: 会议记录不得照抄其他组织的材料
    basis: 通报
    severity: serious
    effective: {from: 2010-01-01}
    subject: SUBJECT
    period: fact
    params: {threshold: THRESHOLD}
    when: copy_similarity >= threshold
    message: "{org_name}记录雷同，相似度{copy_similarity:.0%}"
"""

DUES = """
rules:
  - id: dues.amount.full
    title: 党费按标准足额交纳
    basis: 规定
    severity: warning
    effective: {from: 2010-01-01}
    subject: {type: dues, with_base: true}
    period: fact
    params:
      brackets: BRACKETS
      fixed: FIXED
    when: amount < standard
    message: "{member_name}{month}应交{standard}元"
"""


def write(tmp_path: Path, text: str, **subs: str) -> Path:
    for key, value in subs.items():
        text = text.replace(key, value)
    (tmp_path / "r.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path


def problems(tmp_path: Path) -> list[str]:
    with pytest.raises(PackError) as info:
        load_pack(tmp_path)
    return [str(p) for p in info.value.problems]


def quorum(tmp_path, threshold="0.5", message="{org_name}到会{attendance_pct}"):
    return write(tmp_path, QUORUM, THRESHOLD=threshold, MESSAGE=message)


# -- ratios ------------------------------------------------------------------------------------------------


def test_a_percentage_written_as_a_ratio_is_refused_with_file_rule_field_and_the_fix(tmp_path):
    [p] = problems(quorum(tmp_path, "90"))
    assert p.startswith(f"{tmp_path / 'r.yaml'}:10: branch.member_assembly.quorum params.threshold:")
    assert "90 is not a ratio between 0 and 1" in p and "write 0.9 for 90%" in p


@pytest.mark.parametrize("bad", ["-0.1", "1.5", "'3/2'", "'half'", "true"])
def test_thresholds_outside_zero_to_one_or_not_numbers_are_refused(tmp_path, bad):
    found = problems(quorum(tmp_path, bad))
    assert any("params.threshold" in p and "ratio" in p for p in found), found


@pytest.mark.parametrize("good", ["0", "1", "0.5", "'2/3'"])
def test_ratios_and_exact_fractions_load(tmp_path, good):
    load_pack(quorum(tmp_path, good))


def test_any_param_compared_with_a_ratio_field_must_be_a_ratio_whatever_its_name(tmp_path):
    text = QUORUM.replace("threshold: THRESHOLD", "half: 50").replace("<= threshold", "<= half")
    [p] = problems(write(tmp_path, text, MESSAGE="{org_name}"))
    assert "params.half: compared with attendance_ratio: 50 is not a ratio" in p
    text = QUORUM.replace("    params: {threshold: THRESHOLD}\n", "").replace("<= threshold", "<= 50")
    [p] = problems(write(tmp_path, text, MESSAGE="{org_name}"))
    assert "when: compared with attendance_ratio: 50 is not a ratio" in p


@pytest.mark.parametrize("name", ["at_least", "limit", "max_days"])
@pytest.mark.parametrize("bad", ["-1", "1.5", "'3'"])
def test_counts_are_whole_numbers_not_below_zero(tmp_path, name, bad):
    text = QUORUM.replace("params: {threshold: THRESHOLD}", f"params: {{threshold: 0.5, {name}: {bad}}}")
    [p] = problems(write(tmp_path, text, MESSAGE="{org_name}"))
    assert f"params.{name}: " in p and "whole number" in p


def test_a_table_param_with_a_name_no_rule_reads_is_refused(tmp_path):
    text = QUORUM.replace("params: {threshold: THRESHOLD}", "params: {threshold: 0.5, levels: {a: 1}}")
    [p] = problems(write(tmp_path, text, MESSAGE="{org_name}"))
    assert "params.levels" in p and "constant for the condition" in p


# -- the copy detector's floor ----------------------------------------------------------------------------


def test_the_detector_floor_is_derived_from_the_minhash_bands():
    floor = detector_floor()
    assert miss_probability(floor) <= 0.01 < miss_probability(floor - 0.01)
    assert floor == 0.88  # 16 bands × 8 rows, two shared bands (see engine/subjects/similarity.py)
    assert miss_probability(0.9) == pytest.approx(1.6e-3, rel=0.01)  # the figure the README quotes


def test_a_copy_threshold_below_the_detector_floor_is_refused(tmp_path):
    [p] = problems(write(tmp_path, COPY, SUBJECT="{type: meeting}", THRESHOLD="0.8"))
    assert "params.threshold: 0.8 is below the copy detector's floor 0.88" in p
    assert "at least 0.88" in p
    load_pack(write(tmp_path, COPY, SUBJECT="{type: meeting}", THRESHOLD="0.88"))


def test_a_reporting_floor_above_the_threshold_is_refused(tmp_path):
    [p] = problems(write(tmp_path, COPY, SUBJECT="{type: meeting, copy_floor: 0.95}", THRESHOLD="0.9"))
    assert "subject.copy_floor: 0.95 is above the threshold 0.9" in p
    load_pack(write(tmp_path, COPY, SUBJECT="{type: meeting, copy_floor: 0.9}", THRESHOLD="0.9"))


# -- dues brackets: the decision table's checks -----------------------------------------------------------


def dues(tmp_path, brackets="{in_service: [[3000, 0.005], [null, 0.01]]}", fixed="{student: 0.2}"):
    return write(tmp_path, DUES, BRACKETS=brackets, FIXED=fixed)


def test_well_formed_brackets_load(tmp_path):
    load_pack(dues(tmp_path))


@pytest.mark.parametrize(
    ("brackets", "expected"),
    [
        (
            "{in_service: [[5000, 0.01], [3000, 0.005], [null, 0.02]]}",
            "in_service[1]: in_service: upper 3000 is not above lower 5000",
        ),
        ("{in_service: [[3000, 0.5], [null, 1.5]]}", "in_service[1]: in_service: rate 1.5 is not a ratio"),
        (
            "{in_service: [[3000, 0.005], [null, 0.01], [null, 0.02]]}",
            "only the last bracket may be open ended",
        ),
        ("{in_service: [[3000, 0.005], [5000, 0.01]]}", "incomes above 5000 have no rate"),
        ("{in_servce: [[null, 0.01]]}", "unknown member category 'in_servce'"),
        ("{in_service: [[3000]]}", "[3000] is not [upper bound or null, rate]"),
        ("[[3000, 0.005]]", "expected category → [[upper bound or null, rate], …]"),
    ],
)
def test_bad_brackets_are_refused_naming_the_category_and_item(tmp_path, brackets, expected):
    found = problems(dues(tmp_path, brackets))
    assert any(expected in p and "params.brackets" in p and "dues.amount.full" in p for p in found), found


def test_the_unknown_category_gets_a_suggestion_and_tables_check_categories_too(tmp_path):
    [p] = problems(dues(tmp_path, "{retierd: [[null, 0.01]]}"))
    assert "did you mean" in p.lower() or "retired" in p
    (tmp_path / "b.csv").write_text(
        "category,lower,upper,rate,fixed\nretierd,0,,0.01,\nstudnet,,,,0.2\n", encoding="utf-8"
    )
    found = problems(dues(tmp_path, "{table: b.csv}", "{}"))
    assert [p for p in found if "b.csv:2: dues.amount.full category: unknown member category 'retierd'" in p]
    assert [p for p in found if "b.csv:3: dues.amount.full category: unknown member category 'studnet'" in p]
    assert not [p for p in found if "params.brackets" in p], (
        "a table's problems are not repeated as inline ones"
    )


def test_fixed_amounts_name_known_categories_and_are_not_negative(tmp_path):
    found = problems(dues(tmp_path, fixed="{student: -1, pupil: 0.2}"))
    assert any("params.fixed.student: -1 is not an amount" in p for p in found)
    assert any("params.fixed.pupil: unknown member category 'pupil'" in p for p in found)


def test_table_params_belong_to_the_rule_kind_that_reads_them(tmp_path):
    text = QUORUM.replace(
        "params: {threshold: THRESHOLD}", "params: {threshold: 0.5, brackets: {in_service: [[null, 0.01]]}}"
    )
    [p] = problems(write(tmp_path, text, MESSAGE="{org_name}"))
    assert "params.brackets: brackets is read by dues rules only, not by meeting rules" in p


# -- the parts of the minutes ------------------------------------------------------------------------------

MINUTES = """
rules:
  - id: meeting.minutes.complete
    title: 会议记录须齐全
    basis: 通报
    severity: warning
    effective: {from: 2010-01-01}
    subject: {type: meeting}
    period: fact
    PARAMS
    when: minutes_missing > 0
    message: "{org_name}{date}记录缺少：{minutes_missing_list}"
"""
REGISTRY = [
    {"type": "org", "id": "b1", "name": "机关第一党支部", "kind": "branch"},
    {"type": "member", "id": "m01", "name": "王书记", "org": "b1"},
]


def test_unknown_or_repeated_minutes_parts_are_refused(tmp_path):
    [p] = problems(write(tmp_path, MINUTES, PARAMS="params: {required_parts: [time, palce]}"))
    assert "params.required_parts: unknown part of the minutes 'palce'" in p and "place" in p
    [p] = problems(write(tmp_path, MINUTES, PARAMS="params: {required_parts: [time, time]}"))
    assert "listed twice" in p
    [p] = problems(write(tmp_path, MINUTES, PARAMS="params: {required_parts: []}"))
    assert "expected a list of minutes parts" in p


@pytest.mark.parametrize(
    ("params", "missing"),
    [
        ("params: {required_parts: [time, place, recorder]}", "地点、记录人"),
        ("params: {required_parts: [agenda]}", "议题"),
        ("params: {required_parts: [time, attendees]}", None),  # both given: no finding
        ("", "成效、记录人"),  # no param: the default parts
    ],
)
def test_the_pack_decides_which_parts_of_the_minutes_are_required(tmp_path, monkeypatch, params, missing):
    monkeypatch.chdir(tmp_path)
    pack = tmp_path / "pack"
    pack.mkdir()
    write(pack, MINUTES, PARAMS=params)
    meeting = {
        "type": "meeting",
        "id": "b1-cm",
        "org": "b1",
        "kind": "committee_meeting",
        "date": "2017-06-05",
        "attendees": ["m01"],
        "minutes": {"time": "15:00-16:00", "content": "研究工作"},
    }
    facts = tmp_path / "f.jsonl"
    facts.write_text(
        "\n".join(json.dumps(f, ensure_ascii=False) for f in [*REGISTRY, meeting]), encoding="utf-8"
    )
    db = ["--db", str(tmp_path / "t.db")]
    assert CliRunner().invoke(main, [*db, "import", "--no-judge", str(facts)]).exit_code == 0
    result = CliRunner().invoke(
        main,
        [
            *db,
            "check",
            "--period",
            "2017-06",
            "--as-of",
            "2017-08-01",
            "--rules",
            str(pack),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    found = [f for f in json.loads(result.stdout) if f["rule"] == "meeting.minutes.complete"]
    if missing is None:
        assert found == []
    else:
        [finding] = found
        assert finding["message"].endswith(f"记录缺少：{missing}")


def test_the_parts_vocabulary_covers_every_field_of_the_minutes():
    from facts.models import Minutes

    columns = {col for col, _label in MINUTES_PARTS.values() if col}
    assert columns == {f"minutes_{name}" for name in Minutes.model_fields}
    assert set(DEFAULT_MINUTES_PARTS) <= set(MINUTES_PARTS)


# -- message placeholders ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("{org_name.__class__}", "placeholder {org_name.__class__} is not a plain field name"),
        ("{org_name[9]}", "placeholder {org_name[9]} is not a plain field name"),
        ("{0}", "placeholder {0} is not a plain field name"),
        ("{}", "placeholder {} is not a plain field name"),
        ("{present:99999999}", "format '99999999' is not allowed"),
        ("{present:>10}", "format '>10' is not allowed"),
        ("{present:.{threshold}f}", "is not allowed"),
        ("{org_name!r}", "conversions (!r) are not allowed"),
        ("{org_name:.0%}", "format '.0%' needs a number; org_name is not one"),
        ("{org_nmae}", "placeholder {org_nmae} is not a field of a meeting subject nor a param"),
        ("到会{present", "is not a valid template"),
    ],
)
def test_message_placeholders_outside_the_plain_set_are_refused_at_load(tmp_path, message, expected):
    found = problems(quorum(tmp_path, message=message))
    assert any(expected in p and "branch.member_assembly.quorum message:" in p for p in found), found


@pytest.mark.parametrize(
    "message",
    [
        "{present}/{eligible}",
        "{threshold:.0%}",
        "{attendance_ratio:.1%}",
        "{present:,}",
        "{threshold:,.2f}",
        "{{字面}}",
    ],
)
def test_plain_placeholders_with_allowed_formats_load(tmp_path, message):
    load_pack(quorum(tmp_path, message=message))
