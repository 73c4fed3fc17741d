"""The secretary's pages in a real browser: where the org stands, recording a meeting, the findings at once
on submit, and a correction that resolves them.

The served sample is 2017's, so the app's clock is set to 2017-06-19 (``App.today``); the Party group
(党组, ``pg``: seven members) gets a secretary account of its own, since its meetings are the ones the
pack holds to a 90% quorum.
"""

from __future__ import annotations

import datetime as dt

import pytest
from pages_fixtures import login, shoot
from service_fixtures import PASSWORD, ROOT

from engine.app import build_app
from engine.auth import accounts

TODAY = dt.date(2017, 6, 19)


def served_app(live):  # type: ignore[no-untyped-def]
    """The App behind the live server (the one its pages use)."""
    return live.server.config.app.state.partyrules


@pytest.fixture
def clock(live):  # type: ignore[no-untyped-def]
    served_app(live).today = lambda: TODAY
    app = build_app(live.db_url)
    accounts.add_user(app.db, ROOT, "secretary_pg", ["secretary@pg"], PASSWORD)
    app.db.dispose()
    return TODAY


def test_home_says_what_is_done_and_what_is_still_due_before_the_period_closes(new_page, live, clock):
    page = new_page()
    login(page, "secretary_b1")
    assert page.url == live.url + "/branch"
    assert page.get_by_role("heading", name="机关第一党支部").is_visible()
    due = page.locator("li.due").all_inner_texts()
    # 2017-06-19: eleven days left in June and in the second quarter; b1's Q2 党员大会 is on the 24th
    assert any("本季度尚未召开支部党员大会，距季度结束还有11天" in line for line in due), due
    assert any("机关第一党支部第一党小组" in line and "本月尚未召开党小组会" in line for line in due), due
    assert "本季度已举办党课1次（要求至少1次）" in page.content()
    shoot(page, "branch-home")


def test_a_party_group_meeting_short_of_quorum_is_flagged_on_submit_and_resolved_by_correcting_it(
    new_page, live, clock
):
    page = new_page()
    login(page, "secretary_pg")
    assert page.url == live.url + "/branch"
    page.get_by_role("link", name="录入会议").click()
    page.get_by_label("会议日期").fill("2017-06-16")
    page.get_by_role("button", name="载入该日名册").click()
    assert "出席情况（7人）" in page.content()
    page.get_by_label("会议类型").select_option(label="党组会议")
    page.get_by_label("党建").check()
    page.get_by_label(
        "彭振缺席", exact=True
    ).check()  # six of seven present: 86%, below the 90% the pack asks for
    page.get_by_label("时间").fill("09:00-10:30")
    page.get_by_label("地点").fill("机关三楼会议室")
    page.get_by_label("主持人").select_option(label="陆娜洋")
    page.get_by_label("记录人").select_option(label="汤军")
    page.get_by_label("内容").fill("专题研究机关党建工作，传达学习上级文件精神，讨论下半年支部建设安排。")
    page.get_by_label("成效").fill("形成下半年党建工作要点，报机关党委备案。")
    shoot(page, "branch-meeting-form")
    page.get_by_role("button", name="提交", exact=True).click()

    assert page.get_by_role("heading", name="提交结果").is_visible()
    assert page.get_by_role("alert").inner_text().startswith("发现 2 项问题")
    findings = page.locator("li.finding").all_inner_texts()
    quorum = [f for f in findings if "党组会议到会6人/应到7人" in f]
    assert quorum and "低于90%的要求" in quorum[0] and "如何整改：核对出席名单" in quorum[0], findings
    assert any("彭振" in f and "请假" in f for f in findings), (
        findings
    )  # absent without leave: the leave rule
    shoot(page, "branch-meeting-result")

    page.get_by_role("link", name="更正记录").click()
    assert page.get_by_role("heading", name="更正会议记录").is_visible()
    assert page.get_by_label("彭振缺席", exact=True).is_checked()  # the stored record, as it was
    assert page.get_by_label("内容").input_value().startswith("专题研究机关党建工作")
    page.get_by_label("彭振出席", exact=True).check()
    page.get_by_role("button", name="提交更正").click()

    assert "已更正" in page.content()
    assert page.get_by_role("status").filter(has_text="未发现问题").is_visible()
    resolved = page.locator("ul.resolved li").all_inner_texts()
    assert any("党组会议到会6人/应到7人" in r for r in resolved), resolved
    assert len(resolved) == 2, resolved

    page.get_by_role("link", name="返回本支部").click()
    assert "需要整改的问题" in page.content()
    assert (
        "2017-06-16党组会议" not in page.content()
    )  # nothing left open about this meeting (May's lapse stays)
    assert "2017-05-15党组会议到会6人/应到7人" in page.content()
