"""The administrator's account pages (账号管理) in a real browser: add with a role, disable, reset a password."""

from __future__ import annotations

import sqlalchemy as sa
from pages_fixtures import login, shoot

from engine.audit.tables import AuditEntry

_AUDIT = AuditEntry.__table__  # type: ignore[attr-defined]


def _audited(live, action: str) -> list[str]:  # type: ignore[no-untyped-def]
    engine = sa.create_engine(f"sqlite:///{live.db_url}")
    try:
        with engine.connect() as conn:
            return [
                r.target for r in conn.execute(sa.select(_AUDIT.c.target).where(_AUDIT.c.action == action))
            ]
    finally:
        engine.dispose()


def _add(
    page, name: str, role: str, org: str = "", password: str = "new-password-1", again: str = ""
) -> None:  # type: ignore[no-untyped-def]
    form = page.get_by_role("form", name="添加账号")
    form.get_by_label("用户名").fill(name)
    form.get_by_label("角色").select_option(label=role)
    form.get_by_label("所在组织").fill(org)
    form.get_by_label("初始密码").fill(password)
    form.get_by_label("再次输入密码").fill(again or password)
    form.get_by_role("button", name="添加账号").click()


def test_admin_adds_an_account_with_a_role_and_it_logs_in(new_page, live):
    page = new_page()
    login(page, "admin")
    assert page.url == live.url + "/admin/users"
    _add(page, "secretary_b3", "支部书记", "b1")
    assert (
        page.get_by_role("status")
        .inner_text()
        .startswith("已添加账号 secretary_b3（支部书记 · 机关第一党支部（b1）")
    )
    row = page.locator("table.accounts tbody tr", has_text="secretary_b3")
    assert "支部书记 · 机关第一党支部（b1）" in row.locator("td[data-label=角色]").inner_text()
    assert row.locator("td[data-label=状态]").inner_text() == "启用"
    shoot(page, "admin-users")
    assert _audited(live, "account.add")[-1] == "secretary_b3"

    other = new_page()
    login(other, "secretary_b3", "new-password-1")
    assert "/login" not in other.url
    assert other.locator(".me").inner_text() == "secretary_b3"


def test_the_add_form_says_what_is_wrong_in_chinese(new_page, live):
    page = new_page()
    login(page, "admin")
    _add(page, "Inspector_B1", "纪检", "b1")  # names ignore case
    assert (
        page.get_by_role("alert").inner_text() == "未添加账号：用户名“Inspector_B1”已被使用（不区分大小写）"
    )
    _add(page, "newbie", "支部书记", "")
    assert page.get_by_role("alert").inner_text() == "未添加账号：支部书记须指定所在组织（如 secretary@b1）"
    _add(page, "newbie", "纪检", "nowhere")
    assert page.get_by_role("alert").inner_text().startswith("未添加账号：组织“nowhere”不存在")
    _add(page, "newbie", "纪检", "b1", "long-enough-1", "long-enough-2")
    assert page.get_by_role("alert").inner_text() == "未添加账号：两次输入的密码不一致"
    assert "newbie" not in page.locator("table.accounts").inner_text()


def test_a_disabled_account_cannot_log_in_and_loses_its_session(new_page, live):
    victim = new_page()
    login(victim, "secretary_b2")
    assert "/login" not in victim.url

    page = new_page()
    login(page, "admin")
    asked = []
    page.on("dialog", lambda d: (asked.append(d.message), d.accept()))
    row = page.locator("table.accounts tbody tr", has_text="secretary_b2")
    row.get_by_role("button", name="停用").click()
    assert asked == ["停用账号 secretary_b2？其登录会话将立即失效。"]
    assert page.get_by_role("status").inner_text().startswith("已停用账号 secretary_b2")
    row = page.locator("table.accounts tbody tr", has_text="secretary_b2")
    assert row.locator("td[data-label=状态]").inner_text() == "已停用"
    assert _audited(live, "account.disable") == ["secretary_b2"]

    victim.goto("/")
    assert "/login" in victim.url  # the open session ended
    login(victim, "secretary_b2")
    assert victim.get_by_role("alert").inner_text() == "用户名或密码错误，或账号已停用"

    row.get_by_role("button", name="启用").click()
    login(victim, "secretary_b2")
    assert "/login" not in victim.url


def test_admin_resets_a_password_and_cannot_disable_itself(new_page, live):
    page = new_page()
    login(page, "admin")
    page.locator("table.accounts tbody tr", has_text="rule_admin2").get_by_role(
        "link", name="重置密码"
    ).click()
    assert page.get_by_role("heading", level=1).inner_text() == "账号 rule_admin2"
    form = page.get_by_role("form", name="重置密码")
    form.get_by_label("新密码（至少 8 个字符）").fill("short")
    form.get_by_label("再次输入新密码").fill("short")
    page.evaluate(
        "document.querySelectorAll('form [minlength]').forEach(e => e.removeAttribute('minlength'))"
    )
    form.get_by_role("button", name="重置密码").click()
    assert page.get_by_role("alert").inner_text() == "密码未重置：密码至少 8 个字符"
    form = page.get_by_role("form", name="重置密码")
    form.get_by_label("新密码（至少 8 个字符）").fill("brand-new-pass")
    form.get_by_label("再次输入新密码").fill("brand-new-pass")
    form.get_by_role("button", name="重置密码").click()
    assert page.get_by_role("status").inner_text().startswith("已重置 rule_admin2 的密码")

    other = new_page()
    login(other, "rule_admin2")  # the old password
    assert other.get_by_role("alert").is_visible()
    login(other, "rule_admin2", "brand-new-pass")
    assert "/login" not in other.url

    # the admin's own row has no 停用 button, and a forged request is refused
    mine = page.goto("/admin/users")
    assert mine is not None and mine.status == 200
    own = page.locator("table.accounts tbody tr", has_text="（当前账号）")
    assert own.get_by_role("button", name="停用").count() == 0
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    response = page.request.post(
        live.url + "/admin/users/disable",
        form={"csrf_token": csrf or "", "name": "admin", "disabled": "true"},
    )
    assert "不能停用当前登录的账号" in response.text()


def test_only_an_admin_reaches_the_account_pages(new_page, live):
    page = new_page()
    login(page, "inspector_oc")
    response = page.goto("/admin/users")
    assert response is not None and response.status == 403
    assert "无权访问" in page.content()
    assert "secretary_b1" not in page.content()
