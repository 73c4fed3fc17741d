"""The [alerts] part of partyrules.toml: what it accepts, and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.alerts.config import (
    AlertsConfig,
    AlertsConfigError,
    FileChannelConfig,
    SmtpChannelConfig,
    WebhookChannelConfig,
    load_alerts_config,
    parse_alerts_config,
)
from facts.errors import PartyrulesError

FULL = """
[database]
url = "sqlite:///x.db"

[alerts]
timezone = "Asia/Shanghai"

[alerts.channels.screen]
type = "console"

[alerts.channels.log]
type = "file"
path = "alerts.jsonl"
digest = true

[alerts.channels.jiwei_mail]
type = "smtp"
host = "smtp.example.org"
port = 587
starttls = true
sender = "partyrules@example.org"
to = ["jiwei@example.org"]
username = "partyrules"
password_env = "SMTP_PASSWORD"

[alerts.channels.jiwei_group]
type = "webhook"
url = "https://oapi.dingtalk.com/robot/send?access_token=t"
format = "dingtalk"
secret_env = "DINGTALK_SECRET"

[alerts.dispatcher]
lease_seconds = 120

[[alerts.routes]]
channel = "log"

[[alerts.routes]]
channel = "jiwei_mail"
min_severity = "serious"
orgs = ["c1"]
kinds = ["new", "escalation"]
"""


def problems_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(AlertsConfigError) as info:
        parse_alerts_config(data)
    assert isinstance(info.value, PartyrulesError)
    return {p.key: p.message for p in info.value.problems}


def test_a_full_config_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "partyrules.toml"
    path.write_text(FULL, encoding="utf-8")
    config = load_alerts_config(path)
    assert list(config.channels) == ["screen", "log", "jiwei_mail", "jiwei_group"]
    assert isinstance(config.channels["log"], FileChannelConfig) and config.channels["log"].digest
    mail = config.channels["jiwei_mail"]
    assert isinstance(mail, SmtpChannelConfig) and mail.port == 587 and mail.starttls
    group = config.channels["jiwei_group"]
    assert isinstance(group, WebhookChannelConfig) and group.format == "dingtalk"
    assert config.routes[1].orgs == ["c1"] and config.routes[1].min_severity == "serious"
    assert config.dispatcher.lease_seconds == 120 and config.dispatcher.batch_size == 100


def test_a_file_without_alerts_gives_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "partyrules.toml"
    path.write_text('[database]\nurl = "x"\n', encoding="utf-8")
    assert load_alerts_config(path) == AlertsConfig()


def test_an_unknown_key_is_named_with_a_suggestion() -> None:
    found = problems_of(
        {"channels": {"mail": {"type": "smtp", "hots": "x", "host": "h", "sender": "a", "to": ["b"]}}}
    )
    assert list(found) == ["alerts.channels.mail.hots"]
    assert "'host'" in found["alerts.channels.mail.hots"]


def test_an_unknown_key_at_top_level_and_in_routes() -> None:
    assert "alerts.chanels" in problems_of({"chanels": {}})
    found = problems_of(
        {"channels": {"c": {"type": "console"}}, "routes": [{"channel": "c", "kind": ["new"]}]}
    )
    assert "'kinds'" in found["alerts.routes[0].kind"]


def test_an_unknown_channel_type_is_named() -> None:
    found = problems_of({"channels": {"sms": {"type": "sms", "number": "1"}}})
    assert list(found) == ["alerts.channels.sms.type"]
    assert "'sms'" in found["alerts.channels.sms.type"] and "webhook" in found["alerts.channels.sms.type"]


def test_a_missing_type_and_a_missing_field_are_named() -> None:
    assert "alerts.channels.x.type" in problems_of({"channels": {"x": {"path": "a"}}})
    assert problems_of({"channels": {"x": {"type": "file"}}}) == {"alerts.channels.x.path": "缺少必填项"}


def test_a_route_to_an_unconfigured_channel_is_named() -> None:
    found = problems_of(
        {"channels": {"log": {"type": "console"}}, "routes": [{"channel": "log"}, {"channel": "lgo"}]}
    )
    assert list(found) == ["alerts.routes[1].channel"]
    assert "lgo" in found["alerts.routes[1].channel"] and "log" in found["alerts.routes[1].channel"]


def test_bad_values_are_named() -> None:
    found = problems_of(
        {
            "timezone": "Mars/Base",
            "channels": {"h": {"type": "webhook", "url": "ftp://x", "format": "slack"}},
            "routes": [{"channel": "h", "min_severity": "fatal"}],
        }
    )
    assert set(found) >= {"alerts.timezone", "alerts.channels.h.url", "alerts.channels.h.format"}
    assert (
        "'fatal'"
        in problems_of(
            {"channels": {"h": {"type": "console"}}, "routes": [{"channel": "h", "min_severity": "fatal"}]}
        )["alerts.routes[0].min_severity"]
    )


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "partyrules.toml"
    path.write_text("[alerts\n", encoding="utf-8")
    with pytest.raises(AlertsConfigError) as info:
        load_alerts_config(path)
    assert str(path) in str(info.value)
