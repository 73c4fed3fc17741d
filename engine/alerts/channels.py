"""Delivery channels: console, file (JSONL), e-mail over SMTP, webhook (JSON, DingTalk, WeCom).

A channel's ``send`` either returns (delivered) or raises :class:`ChannelError`
(the dispatcher retries later).  The error says whether the *channel* is out (a refused connection, a
5xx, a redirect: the channel's other alerts wait too and nothing is ever dropped for it) or this one
*delivery* failed (a header the mail server refuses, a 4xx for the body: the others go on; after
``[alerts.dispatcher] max_attempts`` it is quarantined), and whether retrying can help at all.
A webhook never follows a redirect (a 3xx is a failure naming the ``Location``): a redirected POST
became a GET to another host carrying our ``Authorization`` header, and was counted as delivered.
E-mail headers are cleaned of line breaks and control characters (an org name with CR/LF made every
later message of the channel fail).  Every payload carries the outbox id as an
idempotency key — ``alert_id`` in JSON, the ``Idempotency-Key`` HTTP header,
a stable ``Message-ID`` in e-mail — so a receiver can drop a repeat.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import hmac
import json
import logging
import os
import re
import smtplib
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol, TextIO

from engine.alerts.config import (
    AlertsConfig,
    ChannelConfig,
    ConsoleChannelConfig,
    FileChannelConfig,
    SmtpChannelConfig,
    WebhookChannelConfig,
)
from engine.alerts.outbox import KIND_LABELS, SEVERITY_LABELS, Delivery
from facts.errors import PartyrulesError

WECOM_MARKDOWN_MAX_BYTES = 4096  # 企业微信群机器人: markdown.content 最长 4096 字节
DINGTALK_MARKDOWN_MAX_BYTES = 18000  # kept below the robot's message size limit

_log = logging.getLogger(__name__)


class ChannelError(PartyrulesError):
    """A channel could not deliver.

    ``scope="channel"``: the channel is out; the delivery stays pending and is retried (for ever, with
    backoff), and the channel's other deliveries wait.  ``scope="delivery"``: only this delivery failed;
    the others go on, and it is quarantined after ``max_attempts`` — at once if ``permanent``.
    """

    def __init__(
        self,
        channel: str,
        message: str,
        outbox_id: int | None = None,
        scope: str = "channel",
        permanent: bool = False,
    ) -> None:
        self.channel = channel
        self.outbox_id = outbox_id
        self.scope = "delivery" if permanent else scope
        self.permanent = permanent
        where = f"通道 {channel}" + (f"（告警 {outbox_id}）" if outbox_id is not None else "")
        super().__init__(f"{where}：{message}")


class Channel(Protocol):
    name: str

    def send(self, delivery: Delivery) -> None:
        """Deliver once or raise :class:`ChannelError`."""
        ...


def _details(d: Delivery) -> list[tuple[str, str]]:
    rows = [("类型", KIND_LABELS[d.kind]), ("级别", SEVERITY_LABELS[d.severity])]
    if d.rule:
        rows.append(("规则", d.rule))
    if d.org:
        rows.append(("组织", d.org))
    rows.append(("告警编号", str(d.outbox_id)))
    rows.append(("时间", d.created_at.isoformat(timespec="seconds")))
    return rows


def render_text(d: Delivery) -> str:
    """Plain text for the console and e-mail bodies."""
    lines = [d.subject(), "", d.message, ""]
    lines += [f"{label}：{value}" for label, value in _details(d)]
    return "\n".join(lines) + "\n"


def render_markdown(d: Delivery) -> str:
    """Markdown for group robots (headings, quotes and bold are what DingTalk and WeCom both render)."""
    body = d.message.replace("\n", "\n\n")
    meta = "\n".join(f"> {label}：{value}" for label, value in _details(d))
    return f"### {d.subject()}\n\n{body}\n\n{meta}\n"


def clip_utf8(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never inside a character."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    marker = "\n\n……（内容过长已截断）"
    room = limit - len(marker.encode("utf-8"))
    return raw[:room].decode("utf-8", errors="ignore") + marker


class ConsoleChannel:
    def __init__(self, name: str, stream: TextIO | None = None) -> None:
        self.name = name
        self._stream = stream

    def send(self, delivery: Delivery) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        try:
            stream.write(render_text(delivery) + "-" * 40 + "\n")
            stream.flush()
        except (OSError, ValueError) as exc:
            raise ChannelError(self.name, f"无法写出到控制台：{exc}", delivery.outbox_id) from exc


class FileChannel:
    """Appends one JSON object per alert to a JSONL file, synced to disk before returning."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path

    def send(self, delivery: Delivery) -> None:
        line = json.dumps(delivery.to_json_dict(), ensure_ascii=False) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise ChannelError(self.name, f"无法写入文件 {self.path}：{exc}", delivery.outbox_id) from exc


_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def header_text(value: str) -> str:
    """``value`` fit for one e-mail header line: line breaks and control characters become spaces."""
    return " ".join(_CONTROL.sub(" ", value).split())


def body_text(value: str) -> str:
    """Text with every line break as ``\n`` and no other control character (the body's lines)."""
    lines = value.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(_CONTROL.sub(" ", line.replace("\t", "    ")) for line in lines)


class SmtpChannel:
    def __init__(self, name: str, config: SmtpChannelConfig, password: str | None = None) -> None:
        self.name = name
        self.config = config
        self._password = password

    def message(self, delivery: Delivery) -> EmailMessage:
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["Subject"] = header_text(delivery.subject())
        msg["From"] = header_text(self.config.sender)
        msg["To"] = ", ".join(header_text(to) for to in self.config.to)
        digest = hashlib.sha1(delivery.dedup.encode("utf-8")).hexdigest()[:12]
        msg["Message-ID"] = f"<partyrules-alert-{delivery.outbox_id}-{digest}@partyrules>"
        msg["X-Partyrules-Alert-Id"] = str(delivery.outbox_id)
        msg.set_content(body_text(render_text(delivery)))
        return msg

    def send(self, delivery: Delivery) -> None:
        cfg = self.config
        try:
            msg = self.message(delivery)
            msg.as_bytes()  # what smtplib will send: a header the policy refuses fails here, for this alert only
        except (ValueError, TypeError, LookupError) as exc:
            raise ChannelError(
                self.name, f"无法生成邮件：{type(exc).__name__}: {exc}", delivery.outbox_id, permanent=True
            ) from exc
        smtp_class = smtplib.SMTP_SSL if cfg.ssl else smtplib.SMTP
        try:
            with smtp_class(cfg.host, cfg.port, timeout=cfg.timeout_seconds) as smtp:
                if cfg.starttls:
                    smtp.starttls()
                if cfg.username:
                    smtp.login(cfg.username, self._password or "")
                refused = smtp.send_message(msg)
        except smtplib.SMTPDataError as exc:  # the server took us but not this message
            permanent = exc.smtp_code >= 500
            raise ChannelError(
                self.name,
                f"邮件服务器拒收此邮件：{exc}",
                delivery.outbox_id,
                scope="delivery",
                permanent=permanent,
            ) from exc
        except smtplib.SMTPException as exc:
            raise ChannelError(self.name, f"邮件服务器拒绝发送：{exc}", delivery.outbox_id) from exc
        except OSError as exc:
            raise ChannelError(
                self.name, f"无法连接邮件服务器 {cfg.host}:{cfg.port}：{exc}", delivery.outbox_id
            ) from exc
        if refused:
            # Some recipients took it: a retry would send them a duplicate, so this counts as delivered.
            who = ", ".join(f"{rcpt} ({code})" for rcpt, (code, _msg) in refused.items())
            _log.warning("通道 %s：告警 %s 被部分收件人拒收：%s", self.name, delivery.outbox_id, who)


def dingtalk_signed_url(url: str, secret: str, now_ms: int | None = None) -> str:
    """The robot URL with DingTalk's 加签 parameters ``timestamp`` and ``sign`` appended."""
    timestamp = str(now_ms if now_ms is not None else round(time.time() * 1000))
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(mac))
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}timestamp={timestamp}&sign={sign}"


def webhook_body(delivery: Delivery, fmt: str) -> dict[str, Any]:
    """The JSON body for ``fmt``: our own JSON, or the markdown message of a DingTalk / WeCom robot."""
    if fmt == "dingtalk":
        text = clip_utf8(render_markdown(delivery), DINGTALK_MARKDOWN_MAX_BYTES)
        return {"msgtype": "markdown", "markdown": {"title": delivery.subject(), "text": text}}
    if fmt == "wecom":
        content = clip_utf8(render_markdown(delivery), WECOM_MARKDOWN_MAX_BYTES)
        return {"msgtype": "markdown", "markdown": {"content": content}}
    return delivery.to_json_dict()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow: urllib would turn a redirected POST into a GET without the body, to any host,
    carrying our headers (``Authorization`` included)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]  # noqa: ANN001
        return None  # urllib then raises HTTPError with the 3xx


def with_token(url: str, headers: dict[str, str], fmt: str, token: str | None) -> tuple[str, dict[str, str]]:
    """Add a token kept out of the config file: DingTalk ``access_token=`` and WeCom ``key=`` in the query,
    plain JSON webhooks ``Authorization: Bearer``."""
    if not token:
        return url, headers
    if fmt in ("dingtalk", "wecom"):
        joiner = "&" if "?" in url else "?"
        name = "access_token" if fmt == "dingtalk" else "key"
        return f"{url}{joiner}{name}={urllib.parse.quote_plus(token)}", headers
    return url, {**headers, "Authorization": f"Bearer {token}"}


class WebhookChannel:
    """HTTP POST of JSON; a non-2xx status, a timeout or a robot ``errcode`` other than 0 is a failure.

    A redirect (3xx) is never followed: it is a failure of the channel naming where it pointed.
    """

    def __init__(
        self, name: str, config: WebhookChannelConfig, secret: str | None = None, token: str | None = None
    ) -> None:
        self.name = name
        self.config = config
        self._secret = secret
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._token = token

    def send(self, delivery: Delivery) -> None:
        cfg = self.config
        data = json.dumps(webhook_body(delivery, cfg.format), ensure_ascii=False).encode("utf-8")
        base, headers = with_token(
            cfg.url,
            {
                "Content-Type": "application/json; charset=utf-8",
                "Idempotency-Key": delivery.idempotency_key,
                "X-Partyrules-Alert-Id": str(delivery.outbox_id),
                **cfg.headers,
            },
            cfg.format,
            self._token,
        )
        url = dingtalk_signed_url(base, self._secret) if self._secret and cfg.format == "dingtalk" else base
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        oid = delivery.outbox_id
        try:
            with self._opener.open(request, timeout=cfg.timeout_seconds) as response:
                status = response.status
                reply = response.read(65536)
        except urllib.error.HTTPError as exc:
            if 300 <= exc.code < 400:
                where = exc.headers.get("Location", "（未给出）") if exc.headers else "（未给出）"
                raise ChannelError(
                    self.name,
                    f"Webhook 返回 HTTP {exc.code} 重定向至 {where}：不跟随重定向（告警与凭据不发往其他地址），"
                    "未送达；请把 url 改为最终地址",
                    oid,
                ) from exc
            snippet = exc.read(300).decode("utf-8", errors="replace")
            own = 400 <= exc.code < 500 and exc.code not in (401, 403, 404, 408, 429)  # this body was refused
            raise ChannelError(
                self.name,
                f"Webhook 返回 HTTP {exc.code}：{snippet}",
                oid,
                scope="delivery" if own else "channel",
            ) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise ChannelError(self.name, f"无法送达 Webhook {cfg.url.split('?')[0]}：{exc}", oid) from exc
        if not 200 <= status < 300:  # a 1xx or 3xx that reached here: not delivered either
            raise ChannelError(self.name, f"Webhook 返回 HTTP {status}，未送达", oid)
        if cfg.format in ("dingtalk", "wecom"):
            self._check_robot_reply(reply, oid)

    def _check_robot_reply(self, reply: bytes, oid: int) -> None:
        try:
            answer = json.loads(reply.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ChannelError(self.name, f"机器人应答不是 JSON：{reply[:200]!r}", oid) from exc
        errcode = answer.get("errcode") if isinstance(answer, dict) else None
        if errcode != 0:
            raise ChannelError(self.name, f"机器人拒收（errcode={errcode}）：{answer}", oid)


def _env_value(name: str, variable: str | None, environ: Mapping[str, str], what: str) -> str | None:
    if variable is None:
        return None
    value = environ.get(variable)
    if value is None:
        raise ChannelError(name, f"环境变量 {variable} 未设置（{what}）")
    return value


def build_channel(name: str, config: ChannelConfig, environ: Mapping[str, str] | None = None) -> Channel:
    """One channel from its config; secrets come from the environment variables the config names."""
    env = os.environ if environ is None else environ
    if isinstance(config, ConsoleChannelConfig):
        return ConsoleChannel(name, sys.stderr if config.stream == "stderr" else None)
    if isinstance(config, FileChannelConfig):
        return FileChannel(name, config.path)
    if isinstance(config, SmtpChannelConfig):
        return SmtpChannel(name, config, _env_value(name, config.password_env, env, "SMTP 密码"))
    return WebhookChannel(
        name,
        config,
        _env_value(name, config.secret_env, env, "钉钉加签密钥"),
        _env_value(name, config.token_env, env, "Webhook 令牌"),
    )


def build_channels(config: AlertsConfig, environ: Mapping[str, str] | None = None) -> dict[str, Channel]:
    """Every configured channel, by name."""
    return {name: build_channel(name, cfg, environ) for name, cfg in config.channels.items()}
