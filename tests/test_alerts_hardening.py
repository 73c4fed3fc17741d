"""Issue 11, alerts: a redirect is never followed (nor counted delivered, nor sent credentials), one bad
alert never blocks a channel (headers cleaned; a permanent failure is quarantined), every failure is
logged, and the outbox can be listed, retried and purged from the CLI.  Real local servers."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sqlmodel import Session
from test_alerts_channels import _free_port

from engine.alerts.admin import list_deliveries, purge, retry
from engine.alerts.channels import ChannelError, SmtpChannel, header_text
from engine.alerts.config import parse_alerts_config
from engine.alerts.dispatcher import Dispatcher
from engine.alerts.outbox import Alert, Delivery, enqueue
from engine.app import build_app
from engine.cli import main
from engine.config import parse_config

PARTYRULES = str(Path(sys.executable).with_name("partyrules"))
T0 = dt.datetime(2017, 7, 5, 2, 0, tzinfo=dt.UTC)


def alert(n: int, title: str | None = None) -> Alert:
    return Alert(
        kind="new",
        key=f"rule|org:b{n}|2017-06",
        severity="serious",
        rule="rule",
        org=f"b{n}",
        title=title or f"第{n}党支部 2017-06 未召开支部委员会会议",
        message="应召开 1 次，实际 0 次。",
        created_at=T0,
    )


# -- servers ---------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []


@contextmanager
def http_server(respond) -> Iterator[tuple[str, Recorder]]:
    """An HTTP server on 127.0.0.1, port 0; ``respond(handler, recorder)`` answers each request."""
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorder.requests.append({"method": self.command, "headers": dict(self.headers), "body": body})
            respond(self)

        do_GET = do_POST = _any  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", recorder
    finally:
        server.shutdown()
        server.server_close()


def reply(status: int, headers: dict[str, str] | None = None):
    def respond(handler: BaseHTTPRequestHandler) -> None:
        out = b'{"ok": true}'
        handler.send_response(status)
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(out)))
        handler.end_headers()
        handler.wfile.write(out)

    return respond


class Mailbox:
    """aiosmtpd handler: records messages; refuses (554) any whose subject holds ``refuse_marker``."""

    def __init__(self, refuse_marker: str | None = None) -> None:
        self.messages: list[Any] = []
        self.envelopes: list[list[str]] = []
        self.refuse_marker = refuse_marker

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = message_from_bytes(envelope.content)
        if self.refuse_marker and self.refuse_marker in str(make_header(decode_header(msg["Subject"]))):
            return "554 5.6.0 message content rejected"
        self.messages.append(msg)
        self.envelopes.append(list(envelope.rcpt_tos))
        return "250 OK"


@contextmanager
def smtp(mailbox: Mailbox) -> Iterator[int]:
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


def app_with(tmp_path: Path, channels: dict[str, Any], **dispatcher: Any):
    cfg = parse_config(
        {
            "alerts": {
                "channels": channels,
                "routes": [{"channel": n} for n in channels],
                "dispatcher": {"retry_base_seconds": 1, "retry_max_seconds": 2, **dispatcher},
            }
        },
        "t.toml",
    )
    app = build_app(f"sqlite:///{tmp_path / 'a.db'}", config=cfg)
    app.init()
    return app


def enqueue_all(app, alerts: list[Alert]) -> None:
    with Session(app.db) as session:
        for a in alerts:
            enqueue(session, a, app.config.alerts)
        session.commit()


def statuses(app) -> dict[str, int]:
    with app.db.connect() as conn:
        return dict(
            conn.execute(sa.text("SELECT status, count(*) FROM alert_delivery GROUP BY status")).all()
        )


# -- webhooks --------------------------------------------------------------------------------


def test_a_redirect_is_never_followed_never_delivered_and_credentials_stay_home(tmp_path, caplog):
    with (
        http_server(reply(200)) as (elsewhere, other),
        http_server(reply(302, {"Location": elsewhere})) as (url, hook),
    ):
        channel = {"type": "webhook", "url": url, "headers": {"Authorization": "Bearer s3cret"}}
        app = app_with(tmp_path, {"hook": channel})
        enqueue_all(app, [alert(n) for n in range(50)])
        dispatcher = Dispatcher(app.db, app.config.alerts)
        with caplog.at_level(logging.WARNING, logger="engine.alerts.dispatcher"):
            report = dispatcher.run_once()
    assert report.delivered == 0 and report.failed == 1 and report.deferred == 49  # the channel is held
    assert other.requests == []  # nothing (and no Bearer token) went to the other host
    assert len(hook.requests) == 1 and hook.requests[0]["headers"]["Authorization"] == "Bearer s3cret"
    assert statuses(app) == {"pending": 50}
    (first,) = list_deliveries(app.db, "failed")
    assert "HTTP 302" in first.last_error and elsewhere in first.last_error
    (record,) = [r for r in caplog.records if "告警投递失败" in r.getMessage()]
    assert "通道 hook" in record.getMessage() and f"投递 #{first.id}" in record.getMessage()
    assert elsewhere in record.getMessage()


def test_a_redirected_channel_is_held_not_quarantined(tmp_path):
    with (
        http_server(reply(200)) as (elsewhere, other),
        http_server(reply(307, {"Location": elsewhere})) as (url, _),
    ):
        app = app_with(tmp_path, {"hook": {"type": "webhook", "url": url}}, max_attempts=2)
        enqueue_all(app, [alert(1)])
        clock = [T0 + dt.timedelta(days=1)]
        dispatcher = Dispatcher(app.db, app.config.alerts, clock=lambda: clock[0])
        for _ in range(5):
            dispatcher.run_once()
            clock[0] += dt.timedelta(hours=1)
    assert statuses(app) == {"pending": 1} and other.requests == []  # retried, held, never lost


# -- e-mail ----------------------------------------------------------------------------------


def test_crlf_in_an_org_name_is_cleaned_and_blocks_nobody(tmp_path):
    mailbox = Mailbox()
    with smtp(mailbox) as port:
        channel = {
            "type": "smtp",
            "host": "127.0.0.1",
            "port": port,
            "sender": "partyrules@example.org",
            "to": ["jiwei@example.org"],
            "timeout_seconds": 5,
        }
        app = app_with(tmp_path, {"mail": channel})
        bad = alert(0, title="机关第一党支部\r\nBcc: evil@example.com\r\n\r\n伪造正文")
        enqueue_all(app, [bad] + [alert(n) for n in range(1, 50)])
        report = Dispatcher(app.db, app.config.alerts).run_once()
    assert report.delivered == 50 and statuses(app) == {"delivered": 50}
    assert all(rcpts == ["jiwei@example.org"] for rcpts in mailbox.envelopes)
    injected = [m for m in mailbox.messages if "evil" in str(m["Subject"])]
    assert len(injected) == 1 and injected[0]["Bcc"] is None
    assert "\n" not in str(injected[0]["Subject"]).replace("\n ", "")  # folded at most, never broken


def test_a_message_the_server_rejects_is_quarantined_and_the_rest_are_delivered(tmp_path):
    mailbox = Mailbox(refuse_marker="REJECT-ME")
    with smtp(mailbox) as port:
        channel = {
            "type": "smtp",
            "host": "127.0.0.1",
            "port": port,
            "sender": "a@example.org",
            "to": ["b@example.org"],
        }
        app = app_with(tmp_path, {"mail": channel})
        enqueue_all(app, [alert(n, title="REJECT-ME" if n == 3 else None) for n in range(10)])
        report = Dispatcher(app.db, app.config.alerts).run_once()
    assert report.delivered == 9 and report.quarantined == 1
    (dead,) = list_deliveries(app.db, "quarantined")
    assert "554" in dead.last_error and dead.attempts == 1


def test_header_text_removes_every_line_break():
    assert header_text("a\r\nb\rc\nd\x00e\u2028f\tg") == "a b c d e f g"


def test_a_header_the_policy_refuses_is_a_permanent_failure_of_that_alert_only():
    from engine.alerts.config import SmtpChannelConfig

    cfg = SmtpChannelConfig.model_validate(
        {"type": "smtp", "host": "127.0.0.1", "port": 1, "sender": "a@example.org", "to": ["b@example.org"]}
    )
    channel = SmtpChannel("mail", cfg)
    d = Delivery.model_validate({**alert(1).model_dump(), "outbox_id": 1, "channel": "mail"})
    channel.message = lambda _d: (_ for _ in ()).throw(ValueError("bad header"))  # type: ignore[method-assign]
    with pytest.raises(ChannelError) as caught:
        channel.send(d)
    assert caught.value.permanent and caught.value.scope == "delivery"


# -- a bug in a channel for one alert --------------------------------------------------------


class Picky:
    name = "picky"

    def __init__(self) -> None:
        self.got: list[int] = []

    def send(self, delivery: Delivery) -> None:
        if delivery.key.startswith("rule|org:b3|"):
            raise RuntimeError("cannot render this one")
        self.got.append(delivery.outbox_id)


def test_an_unexpected_error_for_one_alert_is_retried_then_quarantined_without_holding_the_others(tmp_path):
    app = app_with(tmp_path, {"picky": {"type": "console"}}, max_attempts=3)
    enqueue_all(app, [alert(n) for n in range(6)])
    clock = [T0]
    channel = Picky()
    dispatcher = Dispatcher(app.db, app.config.alerts, channels={"picky": channel}, clock=lambda: clock[0])
    first = dispatcher.run_once()
    assert first.delivered == 5 and first.failed == 1 and first.deferred == 0
    for _ in range(3):
        clock[0] += dt.timedelta(minutes=5)
        dispatcher.run_once()
    assert statuses(app) == {"delivered": 5, "quarantined": 1}
    (dead,) = list_deliveries(app.db, "quarantined")
    assert dead.attempts == 3 and "RuntimeError: cannot render this one" in dead.last_error
    # retried by hand: pending again, due now, attempts reset
    assert retry(app.db, [dead.id, 999_999]).reset == [dead.id]
    assert statuses(app) == {"delivered": 5, "pending": 1}


# -- the CLI ---------------------------------------------------------------------------------


def test_alerts_list_retry_and_purge_from_the_cli(tmp_path):
    config = tmp_path / "partyrules.toml"
    config.write_text(
        f'database = "sqlite:///{tmp_path / "c.db"}"\n'
        f'[alerts.channels.log]\ntype = "file"\npath = "{tmp_path / "log.jsonl"}"\n'
        '[[alerts.routes]]\nchannel = "log"\n',
        encoding="utf-8",
    )

    def run(*args: str):
        return CliRunner().invoke(main, ["--config", str(config), *args])

    assert run("init").exit_code == 0
    app = build_app(config_path=config)
    enqueue_all(app, [alert(n) for n in range(3)])
    assert run("alerts", "dispatch", "--once").exit_code == 0
    with app.db.begin() as conn:  # one delivery quarantined long ago
        conn.execute(
            sa.text("UPDATE alert_delivery SET status = 'quarantined', last_error = 'x' WHERE id = 3")
        )
    listed = json.loads(run("alerts", "list", "--status", "quarantined", "--format", "json").output)
    assert [d["id"] for d in listed] == [3] and listed[0]["status"] == "quarantined"
    table = run("alerts", "list").output
    assert "已送达" in table and "已隔离" in table
    again = run("alerts", "retry", "3")
    assert again.exit_code == 0 and "已重新排队：3" in again.output
    assert json.loads(run("alerts", "list", "--status", "pending", "--format", "json").output)[0]["id"] == 3
    assert run("alerts", "retry", "77").exit_code == 1
    tomorrow = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    dry = run("alerts", "purge", "--before", tomorrow, "--dry-run")
    assert dry.exit_code == 0 and "将清除" in dry.output and "已送达 2，已隔离 0；告警 2" in dry.output
    assert len(json.loads(run("alerts", "list", "--format", "json").output)) == 3  # nothing deleted
    done = run("alerts", "purge", "--before", tomorrow)
    assert "已清除" in done.output and "已送达 2" in done.output
    left = json.loads(run("alerts", "list", "--format", "json").output)
    assert [d["status"] for d in left] == ["pending"]  # pending is never purged


def test_purge_counts_match_what_is_deleted(db_engine):
    from sqlmodel import SQLModel

    SQLModel.metadata.create_all(db_engine)
    cfg = parse_alerts_config({"channels": {"c": {"type": "console"}}, "routes": [{"channel": "c"}]})
    with Session(db_engine) as session:
        for n in range(4):
            enqueue(session, alert(n), cfg)
        session.commit()
    with db_engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE alert_delivery SET status = 'delivered', delivered_at = :t WHERE id <= 2"),
            {"t": T0},
        )
    dry = purge(db_engine, T0 + dt.timedelta(days=1), dry_run=True)
    assert (dry.delivered, dry.quarantined, dry.alerts) == (2, 0, 2)
    done = purge(db_engine, T0 + dt.timedelta(days=1))
    assert (done.delivered, done.alerts) == (2, 2)
    with db_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alert_delivery")).scalar_one() == 2
        assert conn.execute(sa.text("SELECT count(*) FROM alert_outbox")).scalar_one() == 2


def test_continuous_dispatch_logs_every_failure_with_channel_delivery_and_reason(tmp_path):
    with http_server(reply(302, {"Location": "http://127.0.0.2:9/elsewhere"})) as (url, _hook):
        config = tmp_path / "partyrules.toml"
        config.write_text(
            f'database = "sqlite:///{tmp_path / "d.db"}"\n'
            "[alerts.dispatcher]\npoll_seconds = 0.2\nretry_base_seconds = 0.2\nretry_max_seconds = 0.4\n"
            f'[alerts.channels.hook]\ntype = "webhook"\nurl = "{url}"\n'
            '[[alerts.routes]]\nchannel = "hook"\n',
            encoding="utf-8",
        )
        assert CliRunner().invoke(main, ["--config", str(config), "init"]).exit_code == 0
        enqueue_all(build_app(config_path=config), [alert(1)])
        env = {k: v for k, v in os.environ.items() if k not in ("PARTYRULES_DB", "PARTYRULES_CONFIG")}
        proc = subprocess.Popen(
            [PARTYRULES, "--config", str(config), "alerts", "dispatch"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
        reader.start()
        deadline = time.monotonic() + 60
        while sum("告警投递失败" in line for line in lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        reader.join(5)
        err = "".join(lines)
    assert proc.returncode == 0
    failures = [line for line in err.splitlines() if "告警投递失败" in line]
    assert len(failures) >= 2  # every attempt, not just the first
    assert all("通道 hook 投递 #1（告警 1）" in line and "HTTP 302" in line for line in failures)
