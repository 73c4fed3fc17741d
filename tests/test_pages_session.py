"""Login, logout and the start page, in a real browser."""

from __future__ import annotations

from pages_fixtures import login, shoot


def test_login_page_fits_a_phone_and_rejects_a_wrong_password(new_page):
    page = new_page(375)
    page.goto("/?tab=1")
    assert page.url.endswith("/login?next=/%3Ftab%3D1")  # not logged in: sent to log in, the way back kept
    shoot(page, "login")
    page.get_by_label("用户名").fill("secretary_b1")
    page.get_by_label("密码").fill("wrong-password")
    page.get_by_role("button", name="登录").click()
    assert page.get_by_role("alert").inner_text() == "用户名或密码错误，或账号已停用"
    assert page.get_by_label("用户名").input_value() == "secretary_b1"  # what was typed is kept


def test_each_role_lands_on_its_home_and_logs_out(new_page, live):
    page = new_page()
    login(page, "rule_admin")
    assert page.url == live.url + "/packs"
    page.get_by_role("button", name="退出").click()
    assert "/login" in page.url
    page.goto("/")
    assert "/login" in page.url  # the session is gone


def test_login_never_redirects_off_site(new_page, live):
    page = new_page()
    page.goto("/login?next=//evil.example/x")
    page.get_by_label("用户名").fill("rule_admin")
    page.get_by_label("密码").fill("correct-horse-9")
    page.get_by_role("button", name="登录").click()
    assert page.url.startswith(live.url)


def test_unknown_page_is_a_chinese_404(new_page):
    page = new_page()
    response = page.goto("/no/such/page")
    assert response.status == 404
    assert "未找到" in page.content()


def test_a_form_post_without_the_csrf_token_is_refused(new_page, live):
    page = new_page()
    login(page, "rule_admin")
    response = page.request.post(live.url + "/logout", form={"csrf_token": "forged"})
    assert response.status == 403
    assert "CSRF" in response.text()
