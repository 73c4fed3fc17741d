"""The rule admin's pages in a real browser: upload a change, read its diff and backtest, approval by another admin."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from pages_fixtures import login, shoot

from engine.app import build_app
from engine.pack.rollout import pack_in_use
from rules import STANDARD_PACK

QUORUM = "params: {threshold: 0.9}\n    when: attendance_ratio < threshold"  # 党组会议到会率 ≥ 90%


def changed_pack_zip(folder: Path) -> Path:
    """The standard pack folder zipped as a policy officer would send it, the Party-group quorum lowered to 0.8."""
    path = folder / "rules.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for src in sorted(STANDARD_PACK.glob("*.yaml")):
            text = src.read_text(encoding="utf-8")
            if src.name == "party_group.yaml":
                assert text.count(QUORUM) == 1
                text = text.replace(QUORUM, QUORUM.replace("0.9", "0.8"))
            archive.writestr(f"rules/{src.name}", text)
    return path


def test_a_change_is_held_until_a_second_rule_admin_approves_it(new_page, live, tmp_path):
    before = pack_in_use(build_app(live.db_url)).hash
    page = new_page()
    login(page, "rule_admin")
    assert page.url == live.url + "/packs"
    assert page.locator("#in-use ~ dl").get_by_text(before).is_visible()

    page.get_by_role("link", name="上传新版本").click()
    page.get_by_label("规则文件（.yaml）").set_input_files(str(changed_pack_zip(tmp_path)))
    page.get_by_role("button", name="上传并校验").click()
    match = re.search(r"/packs/([0-9a-f]+)\?ok=", page.url)
    assert match, page.url
    digest = match.group(1)
    assert "已上传规则包" in page.get_by_role("status").inner_text()

    # the diff, in Chinese: one rule changed, its threshold 0.9 → 0.8
    diff = page.locator("section", has=page.get_by_role("heading", name="与当前生效版本的差异"))
    assert "修改规则 1 条" in diff.inner_text() and "新增规则 0 条" in diff.inner_text()
    row = diff.locator("tr", has_text="阈值（threshold）")
    assert row.locator("td.old").inner_text() == "0.9" and row.locator("td.new").inner_text() == "0.8"
    assert "党组会议到会率" in diff.locator("h3").first.inner_text()
    # the uploader sees why they cannot approve it
    assert "须由另一位规则管理员" in page.get_by_role("note").inner_text()
    assert page.get_by_role("button", name="批准并启用").is_disabled()
    shoot(page, "packs-diff")

    # the backtest over 2017: Party-group meetings with 6 of 7 present are no longer violations
    page.get_by_label("回测期间").fill("2017")
    page.get_by_label("判定日").fill("2018-03-01")
    page.get_by_role("button", name="运行回测").click()
    assert "/backtest?" in page.url
    added = int(page.locator(".stat.added b").inner_text())
    removed = int(page.locator(".stat.removed b").inner_text())
    assert added == 0 and removed >= 1
    by_rule = page.locator("section", has=page.get_by_role("heading", name="按规则")).locator("tbody tr")
    assert by_rule.count() == 1 and "party_group.meeting.quorum" in by_rule.inner_text()
    assert by_rule.locator("td[data-label=不再违规]").inner_text() == str(removed)
    by_org = page.locator("section", has=page.get_by_role("heading", name="按组织")).locator("tbody tr")
    assert sum(int(t) for t in by_org.locator("td[data-label=不再违规]").all_inner_texts()) == removed
    sample = page.locator("section", has=page.get_by_role("heading", name=re.compile("^不再违规")))
    assert sample.locator("tbody tr").count() == removed and "6人/应到7人" in sample.inner_text()
    shoot(page, "packs-backtest")

    # approving one's own change is refused by the server too: the change stays held
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = page.request.post(f"{live.url}/packs/{digest}/approve", form={"csrf_token": token or ""})
    assert "未批准" in refused.text() and "须由另一账号批准" in refused.text()
    page.goto("/packs")
    pending = page.locator("section", has=page.get_by_role("heading", name=re.compile("^待批准")))
    assert digest in pending.inner_text() and "待批准" in pending.inner_text()
    assert pack_in_use(build_app(live.db_url)).hash == before
    shoot(page, "packs-versions")

    # a second rule admin approves it: it becomes the pack in use
    other = new_page()
    login(other, "rule_admin2")
    other.goto(f"/packs/{digest}")
    assert "由 rule_admin 上传" in other.content()
    other.on("dialog", lambda dialog: dialog.accept())
    other.get_by_role("button", name="批准并启用").click()
    assert other.url.startswith(live.url + "/packs?")
    assert "现为生效版本" in other.get_by_role("status").inner_text()
    current = other.locator("section", has=other.get_by_role("heading", name="当前生效"))
    assert digest in current.inner_text() and "rule_admin2" in current.inner_text()
    assert "没有等待批准的版本" in other.content()
    assert pack_in_use(build_app(live.db_url)).hash == digest
    history = other.locator("table tbody tr", has_text=before)
    assert "历史版本" in history.inner_text()
    shoot(other, "packs-versions-approved")


def test_an_invalid_edit_names_the_file_line_and_field_and_keeps_the_text(new_page, live):
    page = new_page(375)
    login(page, "rule_admin")
    page.goto("/packs/upload")
    page.get_by_label("要修改的文件").select_option("party_group.yaml")
    page.get_by_role("button", name="打开修改").click()
    box = page.get_by_label("party_group.yaml 的内容")
    text = box.input_value()
    assert text.count(QUORUM) == 1
    box.fill(text.replace(QUORUM, QUORUM.replace("0.9", "half")))
    page.get_by_role("button", name="保存为新版本").click()

    alert = page.get_by_role("alert").inner_text()
    assert "未通过校验" in alert
    line = text[: text.index(QUORUM)].count("\n") + 1
    assert f"文件 party_group.yaml 第 {line} 行" in alert
    assert "阈值/参数（params.threshold）" in alert and "party_group.meeting.quorum" in alert
    assert "threshold: half" in page.get_by_label("party_group.yaml 的内容").input_value()  # what was typed is kept
    shoot(page, "packs-invalid")

    fixed = page.get_by_label("party_group.yaml 的内容").input_value().replace("threshold: half", "threshold: 0.6")
    page.get_by_label("party_group.yaml 的内容").fill(fixed)
    page.get_by_role("button", name="保存为新版本").click()
    assert re.search(r"/packs/[0-9a-f]+\?ok=", page.url), page.url
    assert "0.6" in page.locator("tr", has_text="阈值（threshold）").locator("td.new").inner_text()


def test_an_uploaded_broken_file_comes_back_in_the_edit_box(new_page, tmp_path):
    page = new_page()
    login(page, "rule_admin")
    broken = tmp_path / "dues.yaml"
    text = (STANDARD_PACK / "dues.yaml").read_text(encoding="utf-8")
    broken.write_text(text.replace("severity: warning", "severity: urgent", 1), encoding="utf-8")
    page.goto("/packs/upload")
    page.get_by_label("规则文件（.yaml）").set_input_files(str(broken))
    page.get_by_role("button", name="上传并校验").click()
    alert = page.get_by_role("alert").inner_text()
    assert "文件 dues.yaml 第" in alert and "级别（severity）" in alert
    assert "severity: urgent" in page.get_by_label("dues.yaml 的内容").input_value()
    assert "其余 8 个文件随本次修改一并提交" in page.content()

    page.goto("/packs/upload")
    page.get_by_label("规则文件（.yaml）").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}]
    )
    page.get_by_role("button", name="上传并校验").click()
    assert "notes.txt：只能上传规则文件" in page.get_by_role("alert").inner_text()


def test_a_secretary_cannot_reach_the_pack_pages(new_page, live):
    page = new_page()
    login(page, "secretary_b1")
    for path in ("/packs", "/packs/upload", "/packs/edit?file=dues.yaml"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
        assert "无权访问" in page.content()
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = page.request.post(f"{live.url}/packs/0123456789abcdef/approve", form={"csrf_token": token or ""})
    assert refused.status == 403
