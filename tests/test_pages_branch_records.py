"""The secretary's other pages in a real browser: minutes read from a .docx, bad input told in Chinese with
what was typed kept, the month's dues as a table, retracting a record, and a rectification report whose
evidence file is stored with its SHA-256."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import sqlite3

import pytest
from pages_fixtures import login, shoot

TODAY = dt.date(2017, 6, 19)


@pytest.fixture
def clock(live):  # type: ignore[no-untyped-def]
    live.server.config.app.state.partyrules.today = lambda: TODAY
    return TODAY


def minutes_docx() -> bytes:
    """Minutes as a branch writes them: labelled paragraphs, a paragraph continuing 内容, a two-column table."""
    import docx

    document = docx.Document()
    document.add_heading("机关第一党支部党员大会会议记录", level=1)
    document.add_paragraph("时间：2017年6月16日 9:00—10:30")
    document.add_paragraph("地点：机关三楼会议室")
    document.add_paragraph("主持人：薛霞")
    document.add_paragraph("记录人：李兴林")
    document.add_paragraph("内容：传达学习上级关于加强支部建设的文件。")
    document.add_paragraph("党员结合岗位实际逐一发言，查找差距。")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "成效"
    table.rows[0].cells[1].text = "形成整改清单三项，月底前完成。"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_docx_minutes_fill_the_form_and_bad_input_is_told_in_chinese_keeping_what_was_typed(
    new_page, live, clock
):
    page = new_page()
    login(page, "secretary_b1")
    page.goto("/branch/meetings/new")
    page.get_by_label("会议类型").select_option(label="支部党员大会")
    page.get_by_label("从 Word 文件读取").set_input_files(
        files=[{"name": "纪要.docx", "mimeType": "application/octet-stream", "buffer": minutes_docx()}]
    )
    page.get_by_role("button", name="读取文件").click()
    assert (
        "已从 纪要.docx 读取：时间、地点、内容、成效、主持人、记录人、日期"
        in page.get_by_role("status").inner_text()
    )
    assert page.get_by_label("会议日期").input_value() == "2017-06-16"
    assert page.get_by_label("时间").input_value() == "09:00-10:30"
    assert page.get_by_label("地点").input_value() == "机关三楼会议室"
    assert page.get_by_label("主持人").locator("option:checked").inner_text() == "薛霞"
    assert page.get_by_label("记录人").locator("option:checked").inner_text() == "李兴林"
    assert (
        page.get_by_label("内容").input_value()
        == "传达学习上级关于加强支部建设的文件。\n党员结合岗位实际逐一发言，查找差距。"
    )
    assert page.get_by_label("成效").input_value() == "形成整改清单三项，月底前完成。"

    # bad input: a leave without its reason and a date that does not exist
    page.get_by_label("孙祥宁请假", exact=True).check()
    page.get_by_label("会议日期").fill("2017-06-31")
    page.get_by_role("button", name="提交", exact=True).click()
    alert = page.get_by_role("alert").inner_text()
    assert "会议日期“2017-06-31”不是有效日期，请按 年-月-日 填写" in alert
    assert "孙祥宁：请假须填写请假事由" in alert
    assert page.get_by_label("会议日期").input_value() == "2017-06-31"  # kept as typed
    assert page.get_by_label("孙祥宁请假", exact=True).is_checked()
    assert page.get_by_label("内容").input_value().startswith("传达学习上级")
    assert page.get_by_label("主持人").locator("option:checked").inner_text() == "薛霞"

    page.get_by_label("会议日期").fill("2017-06-16")
    page.get_by_label("孙祥宁请假事由").fill("出差")
    page.get_by_label("孙祥宁已书面征求意见").check()
    page.get_by_role("button", name="提交", exact=True).click()
    assert "已保存" in page.content()
    assert page.get_by_role("status").filter(has_text="未发现问题").is_visible()

    # the record as stored: names ticked, leave with its reason and the written opinion
    page.get_by_role("link", name="更正记录").click()
    assert page.get_by_label("孙祥宁请假", exact=True).is_checked()
    assert page.get_by_label("孙祥宁请假事由").input_value() == "出差"
    assert page.get_by_label("孙祥宁已书面征求意见").is_checked()


def test_a_not_docx_file_is_refused_in_chinese(new_page, live, clock):
    page = new_page()
    login(page, "secretary_b1")
    page.goto("/branch/meetings/new")
    page.get_by_label("内容").fill("已经写好的内容")
    page.get_by_label("从 Word 文件读取").set_input_files(
        files=[{"name": "纪要.doc", "mimeType": "application/msword", "buffer": b"\xd0\xcf\x11\xe0 old word"}]
    )
    page.get_by_role("button", name="读取文件").click()
    assert (
        "纪要.doc：不是 .docx 文件（Word 2007 及以上格式），请另存为 .docx 后上传"
        in page.get_by_role("alert").inner_text()
    )
    assert page.get_by_label("内容").input_value() == "已经写好的内容"


def test_dues_table_entry_finding_bad_input_and_retract(new_page, live, clock):
    page = new_page()
    login(page, "secretary_b1")
    page.get_by_role("link", name="党费录入").click()
    assert page.get_by_label("月份").input_value() == "2017-06"
    rows = page.locator("table.dues tbody tr")
    assert rows.count() == 14  # b1's full and probationary members in June
    amount = page.get_by_label("孙祥宁党费金额")
    assert amount.input_value()  # June's dues are on record: the table shows them
    page.get_by_label("孙祥宁工资收入基数").fill("4500")
    amount.fill("10")  # 1% of 4500 is 45: short
    page.get_by_label("孙祥宁缴纳日期").fill("2017-06-15")
    page.get_by_role("button", name="保存党费").click()
    assert "更正 1 条" in page.get_by_role("status").first.inner_text()
    findings = page.locator("li.finding").all_inner_texts()
    assert len(findings) == 1 and "孙祥宁" in findings[0] and "如何整改" in findings[0], findings
    shoot(page, "branch-dues")

    amount.fill("四十五")
    page.get_by_label("付雨缴纳日期").fill("")
    page.get_by_role("button", name="保存党费").click()
    alert = page.get_by_role("alert").inner_text()
    assert "孙祥宁：党费金额“四十五”不是有效金额" in alert
    assert "付雨：请填写缴纳日期" in alert
    assert page.get_by_label("孙祥宁党费金额").input_value() == "四十五"  # kept as typed

    page.goto("/branch/dues?month=2017-06")
    page.get_by_role("link", name="撤回孙祥宁的党费记录").click()
    assert "孙祥宁 2017-06 党费 10 元" in page.content()
    page.get_by_role("button", name="确认撤回").click()
    assert page.get_by_role("alert").inner_text() == "撤回须说明原因，请填写撤回原因"
    page.get_by_label("撤回原因").fill("录入错误，待核实后重新录入")
    page.get_by_role("button", name="确认撤回").click()
    assert "已撤回党费记录：孙祥宁 2017-06 党费 10 元" in page.get_by_role("status").inner_text()
    assert page.get_by_label("孙祥宁党费金额").input_value() == ""
    with sqlite3.connect(live.db_url) as conn:
        assert (
            conn.execute("SELECT count(*) FROM dues WHERE member='m007' AND month='2017-06'").fetchone()[0]
            == 0
        )


def test_retract_a_meeting_from_the_home_page(new_page, live, clock):
    page = new_page()
    login(page, "secretary_b1")
    first = page.locator("table.table-cards").last.locator("tbody tr").first
    what = first.inner_text()
    assert "2017-06-14" in what and "主题党日" in what  # the latest meeting up to today (2017-06-19)
    first.get_by_role("link", name="撤回").click()
    page.get_by_label("撤回原因").fill("重复录入")
    page.get_by_role("button", name="确认撤回").click()
    assert page.url.startswith(live.url + "/branch")
    assert "已撤回会议记录：2017-06-14 主题党日（原因：重复录入）" in page.get_by_role("status").inner_text()
    assert "2017-06-14" not in page.locator("table.table-cards").last.inner_text()
    # June's 主题党日 is gone: the home page now says it is still due
    assert any(
        "本月尚未开展主题党日，距本月结束还有11天" in d for d in page.locator("li.due").all_inner_texts()
    )


def test_rectification_report_with_an_evidence_file_stored_with_its_sha256(new_page, live, clock):
    page = new_page()
    login(page, "secretary_b1")
    row = page.locator("tr", has_text="付雨2017年3月党费未按时交纳")
    row.get_by_role("link", name="提交整改报告").click()
    assert page.locator("h1").inner_text().startswith("整改报告")
    page.get_by_role("button", name="提交整改报告").click()
    assert page.get_by_role("alert").inner_text() == "请填写整改说明：做了哪些整改、结果如何"

    evidence = "党费补缴收据 2017-04-11 付雨 45.00 元\n".encode() * 20
    digest = hashlib.sha256(evidence).hexdigest()
    page.get_by_label("整改说明").fill("已督促付雨补缴3月党费，并在支部会上重申按月交纳的要求。")
    page.get_by_label("佐证材料").set_input_files(
        files=[{"name": "补缴收据.txt", "mimeType": "text/plain", "buffer": evidence}]
    )
    page.get_by_role("button", name="提交整改报告").click()
    status = page.get_by_role("status").inner_text()
    assert status.startswith("已提交整改报告，状态：整改中") and digest[:12] in status
    assert page.locator("dd.status").inner_text() == "整改中"
    assert page.locator("table.evidence code.hash").inner_text() == digest
    assert "已督促付雨补缴3月党费" in page.locator("ol.log").inner_text()
    shoot(page, "branch-rectify")

    download = page.request.get(
        live.url + page.get_by_role("link", name="补缴收据.txt").get_attribute("href")
    )
    assert download.body() == evidence
    with sqlite3.connect(live.db_url) as conn:
        stored = conn.execute("SELECT sha256, size, content FROM rectification_evidence").fetchall()
        uploaded = conn.execute("SELECT uploaded_at FROM rectification_evidence").fetchone()[0]
        audit = conn.execute("SELECT detail FROM audit_log WHERE action='violation.report'").fetchall()
    assert stored == [(digest, len(evidence), evidence)]
    # stored in UTC, shown in the configured time zone (Asia/Shanghai, UTC+8)
    shanghai = dt.datetime.fromisoformat(uploaded[:19]) + dt.timedelta(hours=8)
    assert page.locator("table.evidence td[data-label=时间]").inner_text() == shanghai.strftime(
        "%Y-%m-%d %H:%M"
    )
    assert len(audit) == 1 and digest in audit[0][0]

    page.get_by_role("link", name="返回本支部").click()
    row = page.locator("tr", has_text="付雨2017年3月党费未按时交纳")
    assert row.locator("td[data-label=状态]").inner_text() == "整改中"
