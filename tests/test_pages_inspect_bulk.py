"""Bulk assignment and the report downloads on the inspector's dashboard, in a real browser."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import sqlalchemy as sa
from pages_fixtures import login, shoot

from engine.audit.tables import AuditEntry
from engine.violations.tables import Violation

_V = Violation.__table__  # type: ignore[attr-defined]
_AUDIT = AuditEntry.__table__  # type: ignore[attr-defined]


def _db(live) -> sa.Engine:  # type: ignore[no-untyped-def]
    return sa.create_engine(f"sqlite:///{live.db_url}")


def _rows(live, *columns: str) -> list[sa.Row]:  # type: ignore[no-untyped-def, type-arg]
    engine = _db(live)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(*(_V.c[c] for c in columns))))
    finally:
        engine.dispose()


def test_bulk_assign_assigns_each_ticked_violation_with_its_own_audit_entry(new_page, live):
    page = new_page()
    login(page, "inspector_oc")
    shoot(page, "inspect-dashboard")
    total = int(page.locator("#list h2").inner_text().removeprefix("问题清单（").removesuffix("）"))
    assert total > 20  # more than one page: the list is paged by 20
    assert page.locator("#list tbody tr").count() == 20
    page.get_by_role("link", name="下一页").click()
    assert page.locator(".pager span").inner_text().startswith(f"第 2/{-(-total // 20)} 页（第 21–")
    rows = page.locator("#list tbody tr")
    assert rows.count() >= 3
    picked = []
    for i in range(3):
        box = rows.nth(i).locator("input[name=key]")
        box.check()
        picked.append(box.get_attribute("value"))
    bulk = page.locator("fieldset.bulk")
    bulk.get_by_label("责任人").fill("李委员")
    bulk.get_by_label("整改期限").fill("2018-05-31")
    bulk.get_by_label("整改措施").fill("限期补正")
    bulk.get_by_role("button", name="分派所选问题").click()

    assert page.get_by_role("heading", level=1).inner_text() == "批量分派结果"
    assert page.get_by_role("status").inner_text() == "共 3 条：成功 3 条，失败 0 条。"
    assert page.locator("table.bulk-results tbody tr.ok").count() == 3
    shoot(page, "inspect-bulk")
    state = {r.key: r for r in _rows(live, "key", "status", "owner", "deadline", "plan")}
    for key in picked:
        assert state[key].status == "rectifying"
        assert state[key].owner == "李委员" and str(state[key].deadline) == "2018-05-31"
    engine = _db(live)
    with engine.connect() as conn:
        audited = [
            r.target
            for r in conn.execute(sa.select(_AUDIT.c.target).where(_AUDIT.c.action == "violation.assign"))
        ]
    engine.dispose()
    assert sorted(audited) == sorted(picked)  # one audit entry per violation


def test_bulk_assign_reports_each_row_that_fails(new_page, live):
    """A resolved violation, one outside the scope and one that does not exist fail alone, with reasons."""
    rows = _rows(live, "key", "org", "status", "title")
    mine = [r for r in rows if r.org == "b1" and r.status == "open"]
    other = next(r for r in rows if r.org not in ("b1",) and r.org is not None)
    page = new_page()
    login(page, "inspector_b1")
    page.goto("/inspect?status=all")
    assert mine
    # resolve one of b1's violations first, so that assigning it is refused by the workflow
    done = mine[0]
    page.locator("#list tbody tr", has_text=done.title).locator("td[data-label=问题] a").click()
    page.locator("summary", has_text="标记已解决").click()
    page.locator("#do-resolve").get_by_label("整改佐证（如何解决的）").fill("已补开，见会议记录")
    page.locator("#do-resolve").get_by_role("button", name="标记已解决").click()
    assert "已标记已解决" in page.get_by_role("status").inner_text()

    page.goto("/inspect?status=all")
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    keys = [r.key for r in mine] + [other.key, "no.such|member:x|2017"]
    form = [("csrf_token", csrf), ("owner", "王五"), ("deadline", "2018-06-30"), ("plan", "整改")]
    form += [("key", k) for k in keys]
    body = "&".join(f"{k}={_q(v)}" for k, v in form)
    response = page.request.post(
        live.url + "/inspect/bulk-assign",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 200
    page.set_content(response.text())
    ok = page.locator("table.bulk-results tbody tr.ok")
    failed = page.locator("table.bulk-results tbody tr.failed")
    assert ok.count() == len(mine) - 1
    assert failed.count() == 3
    reasons = failed.locator("td[data-label=说明]").all_inner_texts()
    assert reasons[0].startswith("该问题当前为“已解决”，不能分派整改")
    assert reasons[1] == reasons[2] == "未找到该问题，或它不在您的查看范围内"
    assert other.title not in response.text()  # nothing about the out-of-scope violation is shown
    state = {r.key: r.status for r in _rows(live, "key", "status")}
    assert state[other.key] == other.status  # untouched
    assert state[done.key] == "resolved"


def _q(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def test_bulk_assign_without_a_tick_or_a_deadline_says_what_is_missing(new_page, live):
    page = new_page()
    login(page, "inspector_oc")
    page.evaluate("document.querySelectorAll('form [required]').forEach(e => e.removeAttribute('required'))")
    page.locator("fieldset.bulk").get_by_role("button", name="分派所选问题").click()
    assert page.get_by_role("alert").inner_text() == "请先勾选要分派的问题"
    page.evaluate("document.querySelectorAll('form [required]').forEach(e => e.removeAttribute('required'))")
    page.locator("#list tbody tr input[name=key]").first.check()
    page.locator("fieldset.bulk").get_by_label("责任人").fill("李委员")
    page.locator("fieldset.bulk").get_by_label("整改措施").fill("补正")
    page.locator("fieldset.bulk").get_by_role("button", name="分派所选问题").click()
    assert page.get_by_role("alert").inner_text() == "请填写整改期限"


def test_report_downloads_are_a_real_workbook_and_an_html_page(new_page, live):
    page = new_page()
    login(page, "inspector_oc")
    with page.expect_download() as got:
        page.get_by_role("link", name="下载报告（Excel）").click()
    download = got.value
    assert download.suggested_filename == "report-oc-2017.xlsx"
    workbook = openpyxl.load_workbook(io.BytesIO(Path(download.path()).read_bytes()))
    assert len(workbook.sheetnames) >= 4
    cells = [str(c.value) for ws in workbook.worksheets for row in ws.iter_rows() for c in row if c.value]
    assert any("省文联机关党委2017年度党建合规情况报告" in c for c in cells)
    assert any("整改台账" in c for c in cells)

    with page.expect_download() as got:
        page.get_by_role("link", name="下载报告（网页）").click()
    html = Path(got.value.path()).read_text(encoding="utf-8")
    assert got.value.suggested_filename == "report-oc-2017.html"
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "省文联机关党委2017年度党建合规情况报告" in html

    # the report of an org outside the scope is 未找到, like the dashboard
    login(page, "inspector_b1")
    response = page.request.get(live.url + "/inspect/report?period=2017&org=b2&format=xlsx")
    assert response.status == 404
