"""Issue 11: fuzzing the condition language.  Any text is either a compiled rule or a PackError naming
file, line, rule and field — never another exception (Hypothesis, and atheris for a bounded time)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.condition import check, compile_durable, parse
from engine.errors import ConditionError
from engine.pack.errors import PackError
from engine.pack.load import load_pack

TOKENS = [
    "not", "and", "or", "in", "not in", "(", ")", "[", "]", ",", "<", "<=", ">", ">=", "==", "!=", "+", "-",
    "*", "/", ".", "meetings", "at_least", "org_name", "topics", "1", "0", "0.5", "1e3", "99999999999999999999",
    "'x'", '"y"', "'", "true", "false", "\\", "\x00", "\x1b", "中文", " ",
]
FIELDS = {"meetings": "number", "org_name": "string", "topics": "list", "present": "number", "ok": "bool"}
PARAMS = {"at_least": 1, "threshold": 0.9, "kinds": ["a", "b"]}

condition_text = st.one_of(
    st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join),
    st.lists(st.sampled_from(TOKENS), max_size=40).map("".join),
    st.text(max_size=200),
    st.integers(1, 400).map(lambda n: "not " * n + "meetings < 1"),
    st.integers(1, 300).map(lambda n: " or ".join(f"meetings < {i}" for i in range(n))),
)


@settings(max_examples=400, deadline=None)
@given(condition_text)
def test_any_text_compiles_or_is_a_condition_error(text):
    try:
        cond = parse(text)
        check(cond, FIELDS, PARAMS)
        compile_durable(cond, FIELDS, PARAMS)
    except ConditionError as exc:
        assert str(exc)


RULE = """\
rules:
  - id: branch.committee_meeting.monthly
    title: 支部委员会会议每月至少召开1次
    basis: 第十二条
    severity: warning
    effective: {from: 2010-01-01}
    subject: {type: org, org_kinds: [branch]}
    period: month
    derive:
      meetings: {source: meetings_held, kinds: [committee_meeting]}
    params: {at_least: 1}
    when: WHEN
    message: "{org_name}{period_label}"
"""


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(condition_text)
def test_any_condition_in_a_pack_loads_or_is_a_pack_error_with_its_location(text):
    import json

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "r.yaml").write_text(RULE.replace("WHEN", json.dumps(text)), encoding="utf-8")
        try:
            load_pack(folder)
        except PackError as exc:
            problem = exc.problems[0]
            assert problem.file.endswith("r.yaml") and problem.line >= 1
            if problem.rule is not None:
                assert problem.rule == "branch.committee_meeting.monthly" and problem.field == "when"


def test_atheris_finds_no_crash_in_the_condition_parser(tmp_path):
    """A coverage-guided campaign of ~15 s; a crash leaves its input in tmp_path and fails the test."""
    pytest.importorskip("atheris")  # installed where it has wheels (CPython < 3.12, see pyproject)
    target = Path(__file__).parent / "fuzz" / "condition_target.py"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, str(target), "-max_total_time=15", "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    tail = textwrap.shorten(proc.stderr[-2000:], 2000)
    assert proc.returncode == 0, tail
    assert "Done" in proc.stderr and " runs in " in proc.stderr, tail
