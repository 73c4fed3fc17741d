"""``[schedule]``: validation with errors naming the key, defaults, and the shipped example config."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from engine.alerts.config import FileChannelConfig, SmtpChannelConfig, WebhookChannelConfig
from engine.config import ConfigError, load_config, parse_config
from engine.schedule.config import ScheduleConfigError, cron_trigger, parse_schedule_config, schedule_settings
from engine.schedule.runner import plan_jobs

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "partyrules.example.toml"


def test_defaults() -> None:
    s = parse_schedule_config({})
    assert s.periods.cron == "30 1 * * *"
    assert s.periods.granularities == ["month", "quarter", "year"]
    assert s.escalate.unack_days == 7
    assert s.dispatch.every_seconds is None
    assert s.since is None


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ({"periods": {"cron": "61 1 * * *"}}, "schedule.periods.cron", "61"),
        ({"digest": {"cron": "0 7 * *"}}, "schedule.digest.cron", "Wrong number of fields"),
        ({"daily": {"cron": "0 7 31 2 *"}}, "schedule.daily.cron", "永远不会触发"),
        ({"escalate": {"unack_days": 0}}, "schedule.escalate.unack_days", "greater than or equal to 1"),
        ({"timezone": "Mars/Olympus"}, "schedule.timezone", "未知的时区"),
        ({"periods": {"granularities": ["week"]}}, "schedule.periods.granularities.0", "'week'"),
        ({"escalate": {"unack_dayz": 3}}, "schedule.escalate.unack_dayz", "unack_days"),
        ({"perods": {}}, "schedule.perods", "periods"),
    ],
)
def test_errors_name_the_key(data: dict, key: str, fragment: str) -> None:
    with pytest.raises(ScheduleConfigError) as info:
        parse_schedule_config(data, "my.toml")
    err = info.value
    assert err.key == key
    assert err.source == "my.toml"
    assert fragment in err.message
    assert str(err).startswith(f"my.toml: {key}: ")
    assert isinstance(err, ConfigError)


def test_bad_cron_message_says_how_to_fix() -> None:
    with pytest.raises(ScheduleConfigError) as info:
        parse_schedule_config({"periods": {"cron": "every day"}})
    assert "分 时 日 月 周" in info.value.message


def test_cron_trigger_uses_the_zone() -> None:
    trigger = cron_trigger("30 1 * * *", "Asia/Shanghai")
    start = dt.datetime(2024, 3, 1, 0, 0, tzinfo=dt.UTC)  # 08:00 in Shanghai
    fire = trigger.get_next_fire_time(None, start)
    assert fire is not None
    assert fire.astimezone(dt.UTC) == dt.datetime(2024, 3, 1, 17, 30, tzinfo=dt.UTC)  # 01:30 next day, +08:00


def test_timezone_defaults_to_check_timezone() -> None:
    cfg = parse_config({"check": {"timezone": "Europe/Berlin"}, "schedule": {}}, "t.toml")
    assert schedule_settings(cfg).timezone == "Europe/Berlin"
    cfg = parse_config(
        {"check": {"timezone": "Europe/Berlin"}, "schedule": {"timezone": "Asia/Urumqi"}}, "t.toml"
    )
    assert schedule_settings(cfg).timezone == "Asia/Urumqi"
    assert schedule_settings(parse_config({}, "t.toml")).timezone == "Asia/Shanghai"


def test_disabled_jobs_are_not_planned() -> None:
    cfg = parse_config({"schedule": {"digest": {"enabled": False}, "dispatch": {"enabled": False}}}, "t.toml")
    plans = plan_jobs(schedule_settings(cfg), cfg.alerts)
    assert [p.name for p in plans] == ["periods", "daily", "escalate"]
    assert {p.name: p.executor for p in plans}["periods"] == "checks"


def test_example_config_loads_completely() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.database == "sqlite:///partyrules.db"
    assert cfg.check.grace_days == 10
    channels = cfg.alerts.channels
    assert set(channels) == {"screen", "archive", "jiwei_mail", "jiwei_group"}
    assert isinstance(channels["archive"], FileChannelConfig)
    assert isinstance(channels["jiwei_mail"], SmtpChannelConfig)
    assert isinstance(channels["jiwei_group"], WebhookChannelConfig)
    assert [r.channel for r in cfg.alerts.routes] == ["screen", "archive", "jiwei_mail", "jiwei_group"]
    s = schedule_settings(cfg)
    assert s.timezone == "Asia/Shanghai"
    assert s.dispatch.every_seconds == 5
    # every job section of the model appears in the example, so the example documents them all
    text = EXAMPLE.read_text(encoding="utf-8")
    for section in ("periods", "daily", "escalate", "digest", "dispatch"):
        assert f"[schedule.{section}]" in text
    assert [p.name for p in plan_jobs(s, cfg.alerts)] == [
        "periods",
        "daily",
        "escalate",
        "digest",
        "dispatch",
    ]


def test_example_config_names_every_schedule_key() -> None:
    from engine.schedule.config import ScheduleConfig

    text = EXAMPLE.read_text(encoding="utf-8")
    for name, info in ScheduleConfig.model_fields.items():
        assert name in text, name
        sub = info.annotation
        for key in getattr(sub, "model_fields", {}):
            assert f"\n{key} =" in text or f"# {key} =" in text, f"schedule.{name}.{key}"
