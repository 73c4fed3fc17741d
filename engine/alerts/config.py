"""The ``[alerts]`` part of ``partyrules.toml``: channels, routes, dispatcher settings.

Example::

    [alerts]
    timezone = "Asia/Shanghai"

    [alerts.channels.jiwei_mail]          # the parent committee's discipline staff
    type = "smtp"
    host = "smtp.example.org"
    sender = "partyrules@example.org"
    to = ["jiwei@example.org"]
    digest = true

    [alerts.channels.jiwei_group]
    type = "webhook"
    url = "https://oapi.dingtalk.com/robot/send?access_token=..."
    format = "dingtalk"
    secret_env = "DINGTALK_SECRET"

    [[alerts.routes]]
    channel = "jiwei_mail"
    min_severity = "serious"
    orgs = ["organ-committee"]          # that org and every org below it

Every model forbids unknown keys; :func:`parse_alerts_config` turns a pydantic
error into an :class:`AlertsConfigError` whose problems name the full key
(``alerts.channels.jiwei_mail.hots``) and suggest the closest known key.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from facts.errors import PartyrulesError

Severity = Literal["info", "warning", "serious", "critical"]
AlertKind = Literal["new", "escalation", "resolved", "run_failed", "rule_held", "digest", "backfill"]
SEVERITY_ORDER: dict[str, int] = {"info": 0, "warning": 1, "serious": 2, "critical": 3}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ChannelBase(_Strict):
    digest: bool = False  # also send this channel a daily digest


class ConsoleChannelConfig(_ChannelBase):
    type: Literal["console"]
    stream: Literal["stdout", "stderr"] = "stdout"


class FileChannelConfig(_ChannelBase):
    type: Literal["file"]
    path: Path  # a JSONL file; one line per delivered alert


class SmtpChannelConfig(_ChannelBase):
    type: Literal["smtp"]
    host: str
    port: int = Field(default=25, ge=1, le=65535)
    sender: str
    to: list[str] = Field(min_length=1)
    username: str | None = None
    password_env: str | None = None  # name of the environment variable holding the password
    starttls: bool = False
    ssl: bool = False
    timeout_seconds: float = Field(default=10.0, gt=0)


class WebhookChannelConfig(_ChannelBase):
    type: Literal["webhook"]
    url: str
    format: Literal["json", "dingtalk", "wecom"] = "json"
    headers: dict[str, str] = Field(default_factory=dict)
    secret_env: str | None = None  # DingTalk 加签 secret, read from this environment variable
    token_env: str | None = None  # the robot's token from this environment variable, not the file (see channels)
    timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("须以 http:// 或 https:// 开头")
        return value


ChannelConfig = Annotated[
    ConsoleChannelConfig | FileChannelConfig | SmtpChannelConfig | WebhookChannelConfig,
    Field(discriminator="type"),
]
CHANNEL_TYPES = ("console", "file", "smtp", "webhook")


class Route(_Strict):
    """Send alerts of at least ``min_severity``, of ``kinds``, about orgs under ``orgs``, to ``channel``."""

    channel: str
    min_severity: Severity = "info"
    orgs: list[str] = Field(default_factory=list)  # subtree roots; empty = every org (and org-less alerts)
    kinds: list[AlertKind] = Field(default_factory=list)  # empty = every kind


class DispatcherSettings(_Strict):
    batch_size: int = Field(default=100, ge=1)
    lease_seconds: float = Field(default=300.0, gt=0)  # a claim older than this is taken over
    retry_base_seconds: float = Field(default=30.0, gt=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    poll_seconds: float = Field(default=5.0, gt=0)
    # a delivery failing for a reason of its own this many times is quarantined (a channel outage never is)
    max_attempts: int = Field(default=5, ge=1)


class AlertsConfig(_Strict):
    timezone: str = "Asia/Shanghai"  # the day boundaries of digests
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    dispatcher: DispatcherSettings = Field(default_factory=DispatcherSettings)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"未知的时区 {value!r}（例如 Asia/Shanghai）") from exc
        return value

    @model_validator(mode="after")
    def _routes_name_channels(self) -> AlertsConfig:
        for index, route in enumerate(self.routes):
            if route.channel not in self.channels:
                known = "、".join(sorted(self.channels)) or "（尚未配置任何通道）"
                raise PydanticCustomError(
                    "unknown_route_channel",
                    "路由指向未配置的通道 “{channel}”；已配置的通道：{known}",
                    {"index": index, "channel": route.channel, "known": known},
                )
        return self

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in the config: the full dotted key and what to do about it."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class AlertsConfigError(PartyrulesError):
    """The ``[alerts]`` configuration is invalid; ``problems`` lists every error with its key."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"{source}: {p}" for p in problems)
        super().__init__(f"告警配置有误：\n{lines}")


_FIELDS_BY_TYPE: dict[str, type[BaseModel]] = {
    "console": ConsoleChannelConfig,
    "file": FileChannelConfig,
    "smtp": SmtpChannelConfig,
    "webhook": WebhookChannelConfig,
}


def _dotted(prefix: str, loc: tuple[int | str, ...]) -> str:
    key = prefix
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif part in _FIELDS_BY_TYPE:  # the union member tag pydantic inserts into the location
            continue
        else:
            key += f".{part}"
    return key


def _known_keys(data: Any, loc: tuple[int | str, ...]) -> list[str]:
    """The keys allowed where an unknown key ``loc`` was found."""
    parents = [p for p in loc[:-1] if not (isinstance(p, str) and p in _FIELDS_BY_TYPE)]
    model: type[BaseModel] = AlertsConfig
    if len(parents) == 2 and parents[0] == "channels":
        node = data.get("channels", {}).get(parents[1], {}) if isinstance(data, Mapping) else {}
        model = _FIELDS_BY_TYPE.get(node.get("type", ""), _ChannelBase)
    elif parents[:1] == ["routes"]:
        model = Route
    elif parents[:1] == ["dispatcher"]:
        model = DispatcherSettings
    return list(model.model_fields)


def _problem(prefix: str, data: Any, err: Any) -> ConfigProblem:
    loc: tuple[int | str, ...] = tuple(err["loc"])
    key = _dotted(prefix, loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        known = _known_keys(data, loc)
        near = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"，是否想写 {near[0]!r}？" if near else ""
        return ConfigProblem(key, f"未知的配置项{hint}（可用：{', '.join(known)}）")
    if kind == "union_tag_invalid":
        return ConfigProblem(
            f"{key}.type", f"未知的通道类型 {err['ctx']['tag']!r}（可用：{', '.join(CHANNEL_TYPES)}）"
        )
    if kind == "union_tag_not_found":
        return ConfigProblem(f"{key}.type", f"缺少通道类型 type（可用：{', '.join(CHANNEL_TYPES)}）")
    if kind == "missing":
        return ConfigProblem(key, "缺少必填项")
    if kind == "unknown_route_channel":
        return ConfigProblem(f"{key}.routes[{err['ctx']['index']}].channel", str(err["msg"]))
    if kind == "literal_error":
        return ConfigProblem(key, f"取值 {err['input']!r} 无效，应为以下之一：{err['ctx']['expected']}")
    message = str(err["msg"]).removeprefix("Value error, ")
    return ConfigProblem(key, message)


def parse_alerts_config(data: Mapping[str, Any], source: str = "partyrules.toml") -> AlertsConfig:
    """Validate the mapping under ``[alerts]``; raise :class:`AlertsConfigError` naming every bad key."""
    try:
        return AlertsConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_problem("alerts", data, err) for err in exc.errors()]
        raise AlertsConfigError(source, problems) from exc


def load_alerts_config(path: Path) -> AlertsConfig:
    """Read ``[alerts]`` from a TOML config file; a file without that table gives the defaults."""
    try:
        with path.open("rb") as fh:
            document = tomllib.load(fh)
    except OSError as exc:
        raise AlertsConfigError(str(path), [ConfigProblem("alerts", f"无法读取配置文件：{exc}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise AlertsConfigError(str(path), [ConfigProblem("alerts", f"TOML 格式错误：{exc}")]) from exc
    section = document.get("alerts", {})
    if not isinstance(section, dict):
        raise AlertsConfigError(str(path), [ConfigProblem("alerts", "应为一个表（[alerts]）")])
    return parse_alerts_config(section, source=str(path))
