"""``rules diff``: rules added, removed and changed field by field, in words a policy officer reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.pack.diff import diff_packs
from engine.pack.load import Pack, load_pack
from rules import STANDARD_PACK

QUORUM = "party_group.meeting.quorum"
MONTHLY = "party_group.party_building_study.monthly"


@pytest.fixture(scope="module")
def old_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Party-group rules of the standard pack (one file: small and fast to load)."""
    folder = tmp_path_factory.mktemp("old")
    shutil.copy(STANDARD_PACK / "party_group.yaml", folder)
    return folder


@pytest.fixture(scope="module")
def old(old_folder: Path) -> Pack:
    return load_pack(old_folder)


def changed_copy(old_folder: Path, tmp_path: Path, *edits: tuple[str, str]) -> Path:
    folder = tmp_path / "new"
    shutil.copytree(old_folder, folder)
    path = folder / "party_group.yaml"
    text = path.read_text(encoding="utf-8")
    for before, after in edits:
        assert text.count(before) == 1, before
        text = text.replace(before, after)
    path.write_text(text, encoding="utf-8")
    return folder


def test_the_same_pack_has_no_differences(old: Pack, old_folder: Path) -> None:
    assert diff_packs(old, load_pack(old_folder)).empty


def test_a_lowered_threshold_reads_in_words(old: Pack, old_folder: Path, tmp_path: Path) -> None:
    new = load_pack(
        changed_copy(
            old_folder,
            tmp_path,
            ("params: {threshold: 0.9}", "params: {threshold: 0.8}"),
            ("title: 党组会议到会率不低于90%", "title: 党组会议到会率不低于80%"),
        )
    )
    result = diff_packs(old, new)
    assert result.added == [] and result.removed == []
    (rule,) = result.changed
    assert rule.id == QUORUM and rule.title == "党组会议到会率不低于80%"
    assert [c.describe() for c in rule.changes] == [
        "标题：党组会议到会率不低于90% → 党组会议到会率不低于80%",
        "阈值（threshold）：0.9 → 0.8",
    ]


def test_added_removed_and_a_new_effective_version(old: Pack, old_folder: Path, tmp_path: Path) -> None:
    folder = changed_copy(old_folder, tmp_path, ("  - id: " + MONTHLY, "  - id: party_group.study.monthly"))
    path = folder / "party_group.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("  - id: " + QUORUM)
    end = text.index("\n  - id: ", start + 1)
    block = text[start:end]
    ended = block.replace("effective: {from: 2010-01-01}", "effective: {from: 2010-01-01, to: 2017-12-31}")
    later = (
        block.replace("effective: {from: 2010-01-01}", "effective: {from: 2018-01-01}")
        .replace("params: {threshold: 0.9}", "params: {threshold: 0.8}")
        .split("    tests:")[0]
        .rstrip()
    )
    path.write_text(text[:start] + ended + "\n" + later + text[end:], encoding="utf-8")
    result = diff_packs(old, load_pack(folder))
    assert sorted((r.id, str(r.rule.effective.from_)) for r in result.added) == [
        (QUORUM, "2018-01-01"),
        ("party_group.study.monthly", "2010-01-01"),
    ]
    assert [r.id for r in result.removed] == [MONTHLY]
    (rule,) = result.changed
    assert rule.id == QUORUM and [c.describe() for c in rule.changes] == ["生效至：（无） → 2017-12-31"]


def test_cli_text_and_json(old_folder: Path, tmp_path: Path) -> None:
    new = changed_copy(old_folder, tmp_path, ("params: {threshold: 0.9}", "params: {threshold: 0.8}"))
    runner = CliRunner()
    db = ["--db", str(tmp_path / "t.db")]
    out = runner.invoke(main, [*db, "rules", "diff", str(old_folder), str(new)])
    assert out.exit_code == 0, out.output
    assert f"修改  {QUORUM}" in out.output and "阈值（threshold）：0.9 → 0.8" in out.output
    out = runner.invoke(main, [*db, "rules", "diff", str(old_folder), str(new), "--format", "json"])
    data = json.loads(out.output)
    assert data["added"] == [] and data["removed"] == []
    assert data["changed"][0]["changes"] == [
        {"field": "阈值（threshold）", "old": 0.9, "new": 0.8, "text": "阈值（threshold）：0.9 → 0.8"}
    ]
    same = runner.invoke(main, [*db, "rules", "diff", str(old_folder), str(old_folder)])
    assert same.exit_code == 0 and "相同" in same.output


def test_cli_one_folder_compares_with_the_pack_in_use(old_folder: Path, tmp_path: Path) -> None:
    config = tmp_path / "partyrules.toml"
    config.write_text(f'[check]\nrules = "{old_folder}"\n', encoding="utf-8")
    new = changed_copy(old_folder, tmp_path, ("params: {threshold: 0.9}", "params: {threshold: 0.8}"))
    assert CliRunner().invoke(main, ["--db", str(tmp_path / "t.db"), "init"]).exit_code == 0
    out = CliRunner().invoke(
        main, ["--db", str(tmp_path / "t.db"), "--config", str(config), "rules", "diff", str(new)]
    )
    assert out.exit_code == 0, out.output
    assert str(old_folder) in out.output and "阈值（threshold）：0.9 → 0.8" in out.output


def test_cli_a_broken_folder_lists_its_problems(old_folder: Path, tmp_path: Path) -> None:
    new = changed_copy(
        old_folder,
        tmp_path,
        (
            "params: {threshold: 0.9}\n    when: attendance_ratio < threshold",
            "params: {threshold: 0.9}\n    when: attendance_ratio < threshld",
        ),
    )
    out = CliRunner().invoke(
        main, ["--db", str(tmp_path / "t.db"), "rules", "diff", str(old_folder), str(new)]
    )
    assert out.exit_code == 1 and "threshld" in out.output and "party_group.yaml" in out.output
