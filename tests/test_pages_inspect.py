"""The inspector's pages (纪检) in a real browser: dashboard, one violation, its workflow, scope."""

from __future__ import annotations

import re
from urllib.parse import quote

import sqlalchemy as sa
from pages_fixtures import login, shoot

from engine.violations.tables import Violation

_V = Violation.__table__  # type: ignore[attr-defined]


def _violations(db_url: str) -> list[sa.Row]:  # type: ignore[type-arg]
    engine = sa.create_engine(f"sqlite:///{db_url}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(_V.c.key, _V.c.org, _V.c.status, _V.c.title, _V.c.message)))
    finally:
        engine.dispose()


def test_inspector_assigns_a_violation_from_the_dashboard_and_sees_the_history(new_page, live):
    page = new_page()
    login(page, "inspector_b1")
    assert page.url == live.url + "/inspect"
    assert page.get_by_role("heading", level=1).inner_text() == "纪检看板 · 机关第一党支部 · 2017年度"
    listing = page.locator("#list table")
    first = listing.locator("tbody tr").first
    problem = first.locator("td[data-label=问题] a")
    text = problem.inner_text()
    shoot(page, "inspect-dashboard")

    problem.click()
    assert page.url.startswith(live.url + "/inspect/violation?key=")
    assert text in page.content()
    assert page.get_by_role("heading", name="依据").is_visible()
    assert page.get_by_role("heading", name="证据").is_visible()
    history = page.locator("table.history tbody tr")
    assert history.count() >= 1
    assert history.first.locator("td[data-label=操作]").inner_text() == "发现"

    page.locator("summary", has_text="分派整改").click()
    form = page.locator("#do-assign form")
    form.get_by_label("责任人").fill("张书记")
    form.get_by_label("整改期限").fill("2018-04-30")
    form.get_by_label("整改措施").fill("补开组织生活会并补记会议记录")
    form.get_by_role("button", name="分派整改").click()

    assert "已分派整改" in page.get_by_role("status").inner_text()
    newest = page.locator("table.history tbody tr").first
    assert newest.locator("td[data-label=操作]").inner_text() == "分派整改"
    assert newest.locator("td[data-label=操作人]").inner_text() == "inspector_b1"
    assert "整改中" in newest.locator("td[data-label=状态]").inner_text()
    assert "张书记" in newest.locator("td[data-label=说明]").inner_text()
    assert page.locator(".badge.rectifying").inner_text() == "整改中"
    assert "2018-04-30" in page.content()
    shoot(page, "inspect-violation")

    # back on the dashboard the row shows its owner and deadline
    page.goto("/inspect?status=rectifying")
    row = page.locator("#list tbody tr", has_text=text)
    assert row.locator("td[data-label=责任人]").inner_text() == "张书记"
    assert row.locator("td[data-label=整改期限]").inner_text() == "2018-04-30"


def test_a_refused_step_is_told_in_chinese_and_changes_nothing(new_page, live):
    page = new_page()
    login(page, "inspector_b1")
    page.locator("#list tbody tr td[data-label=问题] a").first.click()
    url = page.url
    # the browser's own checks are bypassed: the server must check the form itself
    page.evaluate("document.querySelectorAll('form [required]').forEach(e => e.removeAttribute('required'))")
    page.locator("summary", has_text="分派整改").click()
    page.locator("#do-assign form").get_by_label("责任人").fill("")
    page.locator("#do-assign").get_by_role("button", name="分派整改").click()
    assert page.get_by_role("alert").inner_text() == "请填写责任人、整改措施"
    assert page.url.startswith(url)
    assert page.locator("table.history tbody tr").count() == 1  # nothing happened


def test_another_branchs_secretary_gets_a_404_without_the_violations_details(new_page, live):
    b1 = [v for v in _violations(live.db_url) if v.org == "b1"]
    assert b1, "the sample has violations in b1"
    v = b1[0]
    page = new_page()
    login(page, "secretary_b2")
    response = page.goto(f"/inspect/violation?key={quote(v.key, safe='')}")
    assert response.status == 404
    body = page.content()
    assert "未找到" in body
    assert v.title not in body and v.message not in body and "机关第一党支部" not in body
    # a key that does not exist reads the same
    response = page.goto("/inspect/violation?key=no.such%7Cmember%3Ax%7C2017")
    assert response.status == 404
    assert page.locator("main").inner_text() == _main_of(new_page, v.key, "secretary_b2")


def _main_of(new_page, key: str, name: str) -> str:
    page = new_page()
    login(page, name)
    page.goto(f"/inspect/violation?key={quote(key, safe='')}")
    return str(page.locator("main").inner_text())


def test_an_inspector_of_b1_sees_only_b1(new_page, live):
    rows = _violations(live.db_url)
    inside = {v.key for v in rows if v.org == "b1"}
    outside = [v for v in rows if v.org != "b1"]
    assert inside and outside
    page = new_page()
    login(page, "inspector_b1")
    page.goto("/inspect?status=all")
    links = page.locator("#list tbody td[data-label=问题] a").evaluate_all("els => els.map(e => e.href)")
    shown = {re.sub(r".*key=", "", href) for href in links}
    assert {quote(k, safe="") for k in inside} == shown
    # another org's dashboard, and another org's violation, are 未找到
    response = page.goto("/inspect?org=b2")
    assert response.status == 404
    assert "未找到组织“b2”，或它不在您的查看范围内" in page.content()
    page.goto("/inspect?org=&period=2017-13")  # a bad period: back to the default one, told why
    assert page.get_by_role("alert").inner_text().startswith("期间“2017-13”无效")
    assert page.get_by_role("heading", level=1).inner_text() == "纪检看板 · 机关第一党支部 · 2017年度"
    response = page.goto(f"/inspect/violation?key={quote(outside[0].key, safe='')}")
    assert response.status == 404
    assert outside[0].message not in page.content()
