"""The HTTP API as a client sees it: sessions with CSRF, the login rate limit, tokens, submitting, packs."""

from __future__ import annotations

import pytest
from service_fixtures import PASSWORD, build_template, serve_copy

from engine.web.security import LoginLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_template(tmp_path_factory.mktemp("tpl"))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def served(template, tmp_path, clock):
    return serve_copy(
        template, tmp_path, limiter=LoginLimiter(per_name=3, per_client=10, window=60, clock=clock)
    )


def login(served, name="inspector_oc", password=PASSWORD):
    return served.client.post("/api/login", data={"username": name, "password": password})


def first_violation(served, org="b1"):
    return next(
        v["key"]
        for v in served.client.get("/api/violations", headers=served.as_("admin")).json()
        if v["org"] == org and v["status"] == "open"
    )


def test_session_cookie_is_secure_and_needs_csrf_for_changes(served):
    r = login(served)
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert (
        "HttpOnly" in cookie
        and "Secure" in cookie
        and "SameSite=strict" in cookie.replace("Strict", "strict")
    )
    csrf = r.json()["csrf_token"]
    c = served.client
    assert c.get("/api/me").json()["name"] == "inspector_oc"  # reading needs no CSRF token
    key = first_violation(served)
    refused = c.post("/api/violations/ack", json={"key": key})
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    wrong = c.post("/api/violations/ack", json={"key": key}, headers={"X-CSRF-Token": "x" + csrf})
    assert wrong.status_code == 403
    done = c.post("/api/violations/ack", json={"key": key}, headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200 and done.json()["to"] == "acknowledged"
    form = c.post("/api/logout", data={"csrf_token": csrf})  # a form carries the token as a field
    assert form.status_code == 200
    c.cookies.clear()
    assert c.get("/api/me").status_code == 401


def test_login_rate_limit(served, clock):
    for _ in range(3):
        assert login(served, password="wrong-password").status_code == 401
    blocked = login(served)  # even the right password waits: the attacker learns nothing
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert login(served, name="admin").status_code == 200  # another account is not locked
    clock.now += 61
    assert login(served).status_code == 200


def test_login_failures_look_the_same(served):
    unknown = login(served, name="nobody")
    wrong = login(served, password="not-it-at-all")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


def test_tokens(served):
    c = served.client
    assert c.get("/api/me").status_code == 401
    assert c.get("/api/me", headers={"Authorization": "Bearer prt_forged"}).status_code == 401
    me = c.get("/api/me", headers=served.as_("secretary_b1")).json()
    assert me == {"name": "secretary_b1", "roles": ["secretary@b1"]}
    # a token is not a cookie: no CSRF token needed
    r = c.post(
        "/api/violations/ack", headers=served.as_("inspector_oc"), json={"key": first_violation(served)}
    )
    assert r.status_code == 200


def test_a_batch_keeps_the_valid_items_and_names_the_bad_ones(served):
    c, h = served.client, served.as_("secretary_b1")
    good = {
        "type": "dues",
        "member": "m011",
        "month": "2018-01",
        "amount": 1,
        "paid_on": "2018-01-05",
        "base": 4500,
    }
    members = c.get("/api/facts/member", headers=h).json()
    good["member"] = members[0]["id"]
    batch = [
        good,
        {"type": "meeting", "id": "x", "org": "b1", "kind": "committee_meeting", "date": "2017-02-30"},
        "not an object",
    ]
    r = c.post("/api/facts", headers=h, json=batch)
    assert r.status_code == 200
    body = r.json()
    assert body["added"] == 1 and body["rejected"] == 2
    assert body["problems"][0]["text"].startswith('request:2: meeting.date: "2017-02-30" is not a valid date')
    assert body["problems"][1]["item"] == 3
    assert any(f["rule"].startswith("dues.") for f in body["findings"])  # judged on submit: 1 yuan is short
    history = c.get("/api/facts/dues/history", headers=h, params={"key": f"{good['member']}|2018-01"}).json()
    assert len(history) == 1


def test_retract_is_a_tombstone_and_audited(served):
    c, h = served.client, served.as_("secretary_b1")
    m = next(m for m in c.get("/api/facts/meeting", headers=h).json())
    r = c.post("/api/facts/meeting/retract", headers=h, json={"key": m["id"], "reason": "重复录入"})
    assert r.status_code == 200
    history = c.get("/api/facts/meeting/history", headers=h, params={"key": m["id"]}).json()
    assert [v["current"] for v in history] == [False, False]
    assert history[-1]["content"]["retracted"] is True and history[-1]["content"]["reason"] == "重复录入"
    assert m["id"] not in {x["id"] for x in c.get("/api/facts/meeting", headers=h).json()}
    again = c.post("/api/facts", headers=h, json=m)  # submitted again: a new version after the tombstone
    assert again.json()["stored"][0]["version"] == 3
    verified = c.get("/api/audit/verify", headers=served.as_("admin")).json()
    assert verified["ok"], verified["problems"]


def test_waiver_through_the_api_needs_another_account(served):
    c, h = served.client, served.as_("inspector_oc")
    key = first_violation(served)
    body = {"key": key, "reason": "病假", "approver": "INSPECTOR_OC"}
    assert c.post("/api/violations/waive", headers=h, json=body).status_code == 422
    body["approver"] = "inspector_b1"
    r = c.post("/api/violations/waive", headers=h, json=body)
    assert r.status_code == 200 and r.json()["to"] == "waived"


def test_reports_in_three_formats(served):
    c, h = served.client, served.as_("inspector_oc")
    j = c.get("/api/reports", headers=h, params={"period": "2017", "org": "oc"})
    assert j.status_code == 200 and "党建合规情况报告" in j.json()["title"]
    x = c.get("/api/reports", headers=h, params={"period": "2017", "org": "oc", "format": "xlsx"})
    assert x.status_code == 200 and x.content[:2] == b"PK"
    html = c.get("/api/reports", headers=h, params={"period": "2017", "org": "oc", "format": "html"})
    assert html.status_code == 200 and "<html" in html.text
    assert (
        c.get("/api/reports", headers=h, params={"period": "2017"}).status_code == 404
    )  # not the whole tree


def test_pack_upload_diff_backtest_and_approval_by_another_account(served):
    from pathlib import Path

    import rules

    c = served.client
    files = {p.name: p.read_text(encoding="utf-8") for p in Path(rules.__file__).parent.glob("*.yaml")}
    name = next(n for n in files if "dues" in n)
    files[name] = files[name].replace("severity: warning", "severity: serious", 1)
    up = c.post("/api/packs", headers=served.as_("rule_admin"), json={"files": files})
    assert up.status_code == 200, up.text
    digest = up.json()["hash"]
    d = c.get(f"/api/packs/{digest}/diff", headers=served.as_("rule_admin")).json()
    assert d["changed"]
    bt = c.post(
        f"/api/packs/{digest}/backtest",
        headers=served.as_("rule_admin"),
        json={"period": "2017", "as_of": "2018-03-01"},
    )
    assert bt.status_code == 200 and "unchanged" in bt.json()
    own = c.post(f"/api/packs/{digest}/approve", headers=served.as_("rule_admin"))
    assert own.status_code == 422 and "另一账号" in own.json()["detail"]
    other = c.post(f"/api/packs/{digest}/approve", headers=served.as_("rule_admin2"))
    assert other.status_code == 200 and other.json()["approved_by"] == "rule_admin2"
    listed = c.get("/api/packs", headers=served.as_("rule_admin")).json()
    assert listed["in_use"]["hash"] == digest  # the approved upload is the pack the next run uses
    bad = c.post("/api/packs", headers=served.as_("rule_admin"), json={"files": {"../x.yaml": "rules: []"}})
    assert bad.status_code == 422
    files[name] = files[name].replace("severity: serious", "severity: huge", 1)
    broken = c.post("/api/packs", headers=served.as_("rule_admin"), json={"files": files})
    assert broken.status_code == 422
    assert f"{name}:" in broken.json()["detail"] and "/tmp" not in broken.json()["detail"]  # the uploaded name


def test_partyrules_serve_answers_on_loopback(template, tmp_path):
    """`partyrules serve` as a user starts it: a real uvicorn on 127.0.0.1, a token, a JSON answer."""
    import shutil
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    from engine.app import build_app
    from engine.auth import accounts
    from engine.auth.principal import Principal

    db = tmp_path / "serve.db"
    shutil.copy(template, db)
    token = accounts.create_token(build_app(str(db)).db, Principal.local("root"), "secretary_b1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = [str(Path(sys.executable).parent / "partyrules"), "--db", str(db), "serve", "--port", str(port)]
    proc = subprocess.Popen(exe, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/me", headers={"Authorization": f"Bearer {token}"})
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.3)
        assert r.status_code == 200 and r.json()["roles"] == ["secretary@b1"]
        assert r.headers["x-request-id"]
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()["info"]["title"] == "partyrules"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
