"""The ``[schedule]`` part of ``partyrules.toml``: when each job runs, in which time zone.

Example::

    [schedule]
    timezone = "Asia/Shanghai"      # default: [check] timezone
    since = 2024-01-01              # first day a closed period may fall due; default: first start
    misfire_grace_seconds = 86400   # a run missed by more than this is skipped (then caught up next time)

    [schedule.periods]              # judge every month/quarter/year once closed plus [check] grace_days
    cron = "30 1 * * *"
    granularities = ["month", "quarter", "year"]

    [schedule.escalate]
    cron = "0 8 * * *"
    unack_days = 7

Each job section has ``enabled`` and a crontab ``cron`` (``minute hour day
month weekday``), except ``dispatch``, which polls every ``every_seconds``.  A
cron expression is checked with APScheduler's own parser when the config is
validated, so a bad one stops ``partyrules schedule run`` at start with an
error naming the key, never at 3 a.m.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.config import Config, ConfigError
from engine.periods import GRANULARITIES, Granularity
from facts.validate import suggest

CRON_HELP = '格式为“分 时 日 月 周”，例如 "30 1 * * *"（每天 1:30）'


class ScheduleConfigError(ConfigError):
    """A ``[schedule]`` setting that cannot be used; ``key`` is the full dotted key."""

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        self.message = message
        super().__init__(f"{source}: {key}: {message}")


def cron_trigger(expression: str, timezone: str = "UTC") -> CronTrigger:
    """The APScheduler trigger of a crontab expression; ``ValueError`` says what is wrong."""
    try:
        trigger = CronTrigger.from_crontab(expression, timezone=ZoneInfo(timezone))
    except ValueError as exc:
        raise ValueError(f"无效的 cron 表达式 {expression!r}：{exc}；{CRON_HELP}") from exc
    if trigger.get_next_fire_time(None, dt.datetime.now(dt.UTC)) is None:
        raise ValueError(f"cron 表达式 {expression!r} 永远不会触发；{CRON_HELP}")
    return trigger


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _CronJob(_Strict):
    enabled: bool = True
    cron: str

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        cron_trigger(value)
        return value


class PeriodsJob(_CronJob):
    """Judge each month, quarter and year once it has closed plus the grace ([check] grace_days)."""

    cron: str = "30 1 * * *"
    granularities: list[Granularity] = Field(default_factory=lambda: list(GRANULARITIES), min_length=1)


class DailyJob(_CronJob):
    """Re-judge the rules read at the as-of date (deadlines, terms of office, petitions) every day."""

    cron: str = "0 2 * * *"
    # also the previous N years (a December petition in January)
    years_back: int = Field(default=1, ge=0, le=10)


class EscalateJob(_CronJob):
    cron: str = "0 8 * * *"
    # serious/critical violations left unacknowledged this many days escalate
    unack_days: int = Field(default=7, ge=1, le=365)


class DigestJob(_CronJob):
    cron: str = "0 7 * * *"


class DispatchJob(_Strict):
    enabled: bool = True
    # default: [alerts.dispatcher] poll_seconds
    every_seconds: float | None = Field(default=None, gt=0, le=86400)


class ScheduleConfig(_Strict):
    timezone: str | None = None  # default: [check] timezone (Asia/Shanghai)
    since: dt.date | None = None  # default: the day the schedule first ran on this database
    misfire_grace_seconds: int = Field(default=86400, ge=1)
    # more periods than this pending at once (a first run with an old ``since``, a long outage) are
    # judged only with ``schedule run --backfill``, which sends one summary alert per channel
    max_backlog: int = Field(default=3, ge=0)
    # the leader lock: one ``schedule run`` per database; a second waits and takes over when the lease
    # (renewed every third of it) runs out
    leader_lease_seconds: float = Field(default=30.0, ge=1.0, le=3600.0)
    periods: PeriodsJob = Field(default_factory=PeriodsJob)
    daily: DailyJob = Field(default_factory=DailyJob)
    escalate: EscalateJob = Field(default_factory=EscalateJob)
    digest: DigestJob = Field(default_factory=DigestJob)
    dispatch: DispatchJob = Field(default_factory=DispatchJob)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"未知的时区 {value!r}（例如 Asia/Shanghai）") from exc
        return value

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or "Asia/Shanghai")


_SECTIONS: dict[str, type[BaseModel]] = {
    "periods": PeriodsJob,
    "daily": DailyJob,
    "escalate": EscalateJob,
    "digest": DigestJob,
    "dispatch": DispatchJob,
}


def _known(loc: tuple[int | str, ...]) -> list[str]:
    model = _SECTIONS.get(str(loc[0])) if len(loc) > 1 else None
    return list((model or ScheduleConfig).model_fields)


def parse_schedule_config(data: Mapping[str, Any], source: str = "partyrules.toml") -> ScheduleConfig:
    """Validate the mapping under ``[schedule]``; raise :class:`ScheduleConfigError` naming the first bad key."""
    if not isinstance(data, Mapping):
        raise ScheduleConfigError(source, "schedule", "应为一个表（[schedule]）")
    try:
        return ScheduleConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc: tuple[int | str, ...] = tuple(err["loc"])
        key = ".".join(["schedule", *(str(p) for p in loc)])
        if err["type"] == "extra_forbidden":
            message = f"未知的配置项{suggest(str(loc[-1]), _known(loc))}（可用：{', '.join(_known(loc))}）"
        elif err["type"] == "literal_error":
            message = f"取值 {err['input']!r} 无效，应为以下之一：{err['ctx']['expected']}"
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
        raise ScheduleConfigError(source, key, message) from None


def schedule_settings(config: Config) -> ScheduleConfig:
    """The validated ``[schedule]`` of ``config``, its time zone defaulting to ``[check] timezone``."""
    settings = parse_schedule_config(config.schedule, config.source)
    if settings.timezone is None:
        settings = settings.model_copy(update={"timezone": config.check.timezone})
    return settings
