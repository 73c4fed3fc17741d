"""Channels against real receivers: a local SMTP server (aiosmtpd) and a local HTTP server in a thread.

The servers are context managers here; tests/test_alerts_dispatcher.py imports them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from engine.alerts.channels import (
    WECOM_MARKDOWN_MAX_BYTES,
    ChannelError,
    ConsoleChannel,
    FileChannel,
    SmtpChannel,
    WebhookChannel,
    build_channels,
    clip_utf8,
    dingtalk_signed_url,
)
from engine.alerts.config import SmtpChannelConfig, WebhookChannelConfig, parse_alerts_config
from engine.alerts.outbox import Delivery
from facts.errors import PartyrulesError

TITLE = "机关第一党支部 2017-06 未召开支部委员会会议"


def make_delivery(outbox_id: int = 7, channel: str = "ch", **over: Any) -> Delivery:
    fields: dict[str, Any] = {
        "kind": "new",
        "key": "branch.committee_meeting.monthly|org:b1|2017-06",
        "severity": "serious",
        "rule": "branch.committee_meeting.monthly",
        "org": "b1",
        "org_path": ["root", "c1", "b1"],
        "title": TITLE,
        "message": "应每月召开支部委员会会议 1 次，实际 0 次。",
        "payload": {"observed": 0, "threshold": 1},
        "created_at": dt.datetime(2017, 7, 6, 1, 0, tzinfo=dt.UTC),
        "outbox_id": outbox_id,
        "channel": channel,
    }
    fields.update(over)
    return Delivery.model_validate(fields)


# --- a local webhook receiver ------------------------------------------------------------------


@dataclass
class WebhookServer:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    plan: list[Any] = field(
        default_factory=list
    )  # per request: 200 (default), an HTTP status, "hang", or a dict reply

    def reply_for_next(self) -> Any:
        return self.plan.pop(0) if self.plan else 200

    def idempotency_keys(self, status: int | str = 200) -> list[str]:
        return [r["headers"]["Idempotency-Key"] for r in self.requests if r["status"] == status]


def _handler_for(server: WebhookServer, hang_seconds: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            reply = server.reply_for_next()
            status = reply if isinstance(reply, int) else 200
            server.requests.append(
                {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": json.loads(body),
                    "status": "hung" if reply == "hang" else status,
                }
            )
            if reply == "hang":
                time.sleep(hang_seconds)
            out = json.dumps(reply if isinstance(reply, dict) else {"errcode": 0, "errmsg": "ok"}).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout test)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    return Handler


@contextmanager
def serve_webhook() -> Iterator[WebhookServer]:
    """A local HTTP receiver in a thread; tests/test_alerts_dispatcher.py uses it too."""
    info = WebhookServer(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(info, hang_seconds=1.5))
    httpd.daemon_threads = True
    info.url = f"http://127.0.0.1:{httpd.server_address[1]}/hook?access_token=abc"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield info
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    with serve_webhook() as server:
        yield server


# --- a local SMTP server -------------------------------------------------------------------------


class RecordingHandler:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.refuse = False

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:  # noqa: N802
        if self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_smtp() -> Iterator[SmtpServer]:
    """A local aiosmtpd server that records messages (or refuses recipients when told to)."""
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", controller.port, handler)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with serve_smtp() as server:
        yield server


def smtp_config(server: SmtpServer, **over: Any) -> SmtpChannelConfig:
    return SmtpChannelConfig.model_validate(
        {
            "type": "smtp",
            "host": server.host,
            "port": server.port,
            "sender": "partyrules@example.org",
            "to": ["jiwei@example.org"],
            "timeout_seconds": 5,
            **over,
        }
    )


def subject_of(msg: Any) -> str:
    return str(make_header(decode_header(msg["Subject"])))


# --- tests -----------------------------------------------------------------------------------------


def test_subject_line_has_severity_label_and_title() -> None:
    assert make_delivery().subject() == f"【严重】{TITLE}"
    assert make_delivery(severity="critical", kind="escalation").subject() == f"【升级·紧急】{TITLE}"


def test_console_writes_the_subject_and_the_alert_id() -> None:
    out = io.StringIO()
    ConsoleChannel("console", out).send(make_delivery(outbox_id=42))
    text = out.getvalue()
    assert text.startswith(f"【严重】{TITLE}\n")
    assert "告警编号：42" in text


def test_file_channel_appends_one_json_line_per_alert(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "alerts.jsonl"
    channel = FileChannel("file", path)
    channel.send(make_delivery(outbox_id=1))
    channel.send(make_delivery(outbox_id=2))
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["alert_id"] for line in lines] == [1, 2]
    assert lines[0]["idempotency_key"] == "partyrules-alert-1"
    assert lines[0]["title"] == TITLE and lines[0]["payload"] == {"observed": 0, "threshold": 1}


def test_file_channel_that_cannot_write_raises_channel_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ChannelError) as info:
        FileChannel("file", blocker / "alerts.jsonl").send(make_delivery(outbox_id=3))
    assert isinstance(info.value, PartyrulesError)
    assert info.value.channel == "file" and info.value.outbox_id == 3


def test_smtp_delivers_a_chinese_subject_and_a_stable_message_id(smtp_server: SmtpServer) -> None:
    channel = SmtpChannel("mail", smtp_config(smtp_server))
    channel.send(make_delivery(outbox_id=9))
    channel.send(make_delivery(outbox_id=9))  # a repeat carries the same Message-ID: receivers can drop it
    first, second = smtp_server.handler.messages
    assert subject_of(first) == f"【严重】{TITLE}"
    assert first["X-Partyrules-Alert-Id"] == "9"
    assert first["Message-ID"] == second["Message-ID"]
    assert "应每月召开支部委员会会议" in first.get_payload(decode=True).decode("utf-8")


def test_smtp_server_that_refuses_raises_channel_error(smtp_server: SmtpServer) -> None:
    smtp_server.handler.refuse = True
    with pytest.raises(ChannelError, match="邮件服务器拒绝发送"):
        SmtpChannel("mail", smtp_config(smtp_server)).send(make_delivery())
    assert smtp_server.handler.messages == []


def test_smtp_server_that_is_down_raises_channel_error() -> None:
    down = SmtpServer("127.0.0.1", _free_port(), RecordingHandler())
    with pytest.raises(ChannelError, match="无法连接邮件服务器"):
        SmtpChannel("mail", smtp_config(down, timeout_seconds=2)).send(make_delivery())


def webhook_config(url: str, **over: Any) -> WebhookChannelConfig:
    return WebhookChannelConfig.model_validate({"type": "webhook", "url": url, "timeout_seconds": 1, **over})


def test_webhook_json_posts_the_alert_with_its_idempotency_key(webhook_server: WebhookServer) -> None:
    WebhookChannel("hook", webhook_config(webhook_server.url, headers={"X-Team": "jiwei"})).send(
        make_delivery(outbox_id=5)
    )
    (request,) = webhook_server.requests
    assert request["headers"]["Idempotency-Key"] == "partyrules-alert-5"
    assert request["headers"]["X-Team"] == "jiwei"
    assert request["body"]["alert_id"] == 5 and request["body"]["subject"] == f"【严重】{TITLE}"


def test_webhook_dingtalk_payload_and_signature(webhook_server: WebhookServer) -> None:
    channel = WebhookChannel("ding", webhook_config(webhook_server.url, format="dingtalk"), secret="SECabc")
    channel.send(make_delivery(outbox_id=5))
    (request,) = webhook_server.requests
    body = request["body"]
    assert body["msgtype"] == "markdown"
    assert set(body["markdown"]) == {"title", "text"}
    assert body["markdown"]["title"] == f"【严重】{TITLE}"
    assert "告警编号：5" in body["markdown"]["text"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(request["path"]).query)
    assert query["access_token"] == ["abc"]
    timestamp = query["timestamp"][0]
    expected = base64.b64encode(
        hmac.new(b"SECabc", f"{timestamp}\nSECabc".encode(), hashlib.sha256).digest()
    ).decode()
    assert query["sign"] == [expected]


def test_webhook_tokens_come_from_the_environment(webhook_server: WebhookServer) -> None:
    from engine.alerts.channels import build_channel

    base = webhook_server.url.split("?")[0]
    for fmt, where in (("dingtalk", "access_token"), ("wecom", "key"), ("json", "Authorization")):
        config = webhook_config(base, format=fmt, token_env="ROBOT_TOKEN")
        with pytest.raises(ChannelError, match="ROBOT_TOKEN"):
            build_channel("robot", config, {})
        build_channel("robot", config, {"ROBOT_TOKEN": "tok/1"}).send(make_delivery(outbox_id=7))
        request = webhook_server.requests.pop()
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(request["path"]).query)
        if where == "Authorization":
            assert request["headers"]["Authorization"] == "Bearer tok/1"
        else:
            assert query[where] == ["tok/1"]
        assert "tok/1" not in config.model_dump_json()


def test_dingtalk_signed_url_matches_the_documented_recipe() -> None:
    url = dingtalk_signed_url(
        "https://oapi.dingtalk.com/robot/send?access_token=t", "SEC1", now_ms=1700000000000
    )
    mac = hmac.new(b"SEC1", b"1700000000000\nSEC1", hashlib.sha256).digest()
    assert url.endswith("&timestamp=1700000000000&sign=" + urllib.parse.quote_plus(base64.b64encode(mac)))


def test_webhook_wecom_payload_fits_the_robot_limit(webhook_server: WebhookServer) -> None:
    long_message = "未按期召开会议。" * 2000
    WebhookChannel("wecom", webhook_config(webhook_server.url, format="wecom")).send(
        make_delivery(message=long_message)
    )
    body = webhook_server.requests[0]["body"]
    assert body["msgtype"] == "markdown" and set(body["markdown"]) == {"content"}
    content = body["markdown"]["content"]
    assert content.startswith(f"### 【严重】{TITLE}")
    assert len(content.encode("utf-8")) <= WECOM_MARKDOWN_MAX_BYTES
    assert content.endswith("（内容过长已截断）")


def test_clip_utf8_never_splits_a_character() -> None:
    clipped = clip_utf8("党" * 100, 60)
    assert len(clipped.encode("utf-8")) <= 60
    assert clipped.startswith("党")
    assert clip_utf8("短", 60) == "短"


def test_webhook_500_raises_channel_error(webhook_server: WebhookServer) -> None:
    webhook_server.plan = [500]
    with pytest.raises(ChannelError, match="HTTP 500"):
        WebhookChannel("hook", webhook_config(webhook_server.url)).send(make_delivery())


def test_webhook_timeout_raises_channel_error(webhook_server: WebhookServer) -> None:
    webhook_server.plan = ["hang"]
    started = time.monotonic()
    with pytest.raises(ChannelError, match="无法送达"):
        WebhookChannel("hook", webhook_config(webhook_server.url, timeout_seconds=0.3)).send(make_delivery())
    assert time.monotonic() - started < 1.4


def test_robot_errcode_is_a_failure_even_with_http_200(webhook_server: WebhookServer) -> None:
    webhook_server.plan = [{"errcode": 310000, "errmsg": "keywords not in content"}]
    with pytest.raises(ChannelError, match="errcode=310000"):
        WebhookChannel("ding", webhook_config(webhook_server.url, format="dingtalk")).send(make_delivery())


def test_build_channels_reads_secrets_from_the_named_environment_variable(tmp_path: Path) -> None:
    config = parse_alerts_config(
        {
            "channels": {
                "out": {"type": "console"},
                "log": {"type": "file", "path": str(tmp_path / "a.jsonl")},
                "ding": {
                    "type": "webhook",
                    "url": "https://example.org/x",
                    "format": "dingtalk",
                    "secret_env": "DING_SECRET",
                },
            }
        }
    )
    channels = build_channels(config, environ={"DING_SECRET": "SECx"})
    assert sorted(channels) == ["ding", "log", "out"]
    assert isinstance(channels["log"], FileChannel)
    with pytest.raises(ChannelError, match="DING_SECRET"):
        build_channels(config, environ={})
