"""The web pages served for real (uvicorn on a free loopback port) and driven in Debian's chromium.

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium fonts-noto-cjk``; ``.ci/run`` does it) and
the ``playwright`` Python package (its driver only: no browser download).  Without Chromium the
tests fail and say how to install it.

Screenshots go to ``$PARTYRULES_SCREENSHOTS`` (default ``build/screenshots`` in the checkout); the
committed copies in ``docs/screenshots`` are refreshed with
``PARTYRULES_SCREENSHOTS=docs/screenshots pytest tests/test_pages_*.py``.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from service_fixtures import PASSWORD, ROLES, build_template  # noqa: F401 (re-exported for tests)

from engine.app import build_app
from engine.web.api import create_api
from engine.web.security import LoginLimiter

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
SHOTS = Path(os.environ.get("PARTYRULES_SCREENSHOTS", ROOT / "build" / "screenshots"))
WIDE, PHONE = 1400, 375


@dataclass
class LiveServer:
    url: str
    db_url: str
    server: object
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True  # type: ignore[attr-defined]
        self.thread.join(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(template: Path, folder: Path) -> LiveServer:
    """A copy of the served sample (accounts of every role) behind uvicorn in a thread."""
    import uvicorn

    db = folder / "pages.db"
    shutil.copy(template, db)
    app = build_app(str(db))
    api = create_api(app, secure_cookies=False, limiter=LoginLimiter(per_name=50, per_client=500))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    return LiveServer(f"http://127.0.0.1:{port}", str(db), server, thread)


@pytest.fixture(scope="session")
def pages_template(tmp_path_factory) -> Path:
    return build_template(tmp_path_factory.mktemp("pages-template"))


@pytest.fixture
def live(pages_template, tmp_path) -> Iterator[LiveServer]:
    server = start_server(pages_template, tmp_path)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install it with `apt-get install -y chromium fonts-noto-cjk`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def new_page(browser, live):
    """``new_page(width=1400)``: a fresh browser context (no cookies) on the live server."""
    contexts = []

    def make(width: int = WIDE):
        ctx = browser.new_context(
            base_url=live.url,
            viewport={"width": width, "height": 900},
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
        )
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()


def login(page, name: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state()


def assert_fits(page) -> None:
    """The page does not scroll sideways at its viewport width."""
    over = page.evaluate(
        "() => ({doc: document.documentElement.scrollWidth, view: window.innerWidth,"
        " wide: [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
        " > window.innerWidth + 1).slice(0, 5).map(e => e.tagName + '.' + e.className + ': '"
        " + (e.textContent || '').trim().slice(0, 40))})"
    )
    assert over["doc"] <= over["view"], f"page scrolls sideways at {over['view']} px: {over}"


def shoot(page, name: str) -> list[Path]:
    """Screenshots of the current page at 1400 px and 375 px (full page), each checked for sideways scroll."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    out = []
    size = page.viewport_size or {"width": WIDE, "height": 900}
    for width in (WIDE, PHONE):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(50)
        assert_fits(page)
        path = SHOTS / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        out.append(path)
    page.set_viewport_size(size)
    return out
