"""The configuration file, ``partyrules.toml`` (``--config`` or ``PARTYRULES_CONFIG``).

Every section is optional; a missing file means the defaults.  Unknown keys
are errors naming the key, so a typo never silently leaves a default in place.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.alerts.config import AlertsConfig, parse_alerts_config
from engine.periods import PeriodError, parse_range
from facts.errors import PartyrulesError
from facts.validate import suggest


class ConfigError(PartyrulesError):
    """A configuration file that cannot be used."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckSettings(_Strict):
    grace_days: int = Field(default=10, ge=0, le=366)  # late records accepted after a period closes
    rules: str | None = None  # folder of the rule pack in use; default: the standard pack
    timezone: str = "Asia/Shanghai"  # what "today" means
    processes: int = Field(default=1, ge=1, le=64)  # matcher worker processes
    # partitions of a check, run `processes` at a time: "auto" = `processes` unless the database is big
    # (engine.evaluate.FACTS_PER_PARTITION fact rows a partition), then enough that each holds about that
    partitions: int | str = "auto"
    # safe reload: a new pack whose backtest flips more than this share of judged subjects is held
    blast_radius: float = Field(default=0.05, ge=0.0, le=1.0)
    backtest_period: str | None = None  # the guard's window, e.g. "2017"; default: the last 12 closed months
    backtest_as_of: dt.date | None = None  # the guard's as-of date; default: today

    @field_validator("partitions", mode="before")
    @classmethod
    def _auto_or_a_count(cls, value: Any) -> int | str:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 100_000):
            return value  # type: ignore[no-any-return]
        raise ValueError(f'expected "auto" or a whole number from 1 to 100000, not {value!r}')

    @field_validator("backtest_period")
    @classmethod
    def _a_period_range(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_range(value)
            except PeriodError as exc:
                raise ValueError(str(exc)) from exc
        return value


class ClusterSettings(_Strict):
    """``[cluster]``: where ``check`` sends its partitions (engine.cluster); no address = on this machine."""

    address: str | None = None  # the Dask scheduler, e.g. "tcp://10.0.0.5:8786"
    database: str | None = None  # the database as the workers reach it; default: the check's own URL
    partitions: int = Field(default=0, ge=0, le=100_000)  # 0: twice the cluster's worker threads
    isolate: Literal["process", "thread"] = "process"  # durable_rules in a child process, or in the thread
    retries: int = Field(default=2, ge=0, le=10)  # re-runs of a partition that raised (a lost worker is free)
    connect_timeout: float = Field(default=30.0, gt=0)  # seconds to reach the scheduler


class Config(_Strict):
    database: str | None = None
    check: CheckSettings = Field(default_factory=CheckSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    schedule: dict[str, Any] = Field(default_factory=dict)  # validated by engine.schedule
    source: str = "(defaults)"


_S = TypeVar("_S", bound=_Strict)


def _section(model: type[_S], name: str, data: dict[str, Any], source: str) -> _S:
    """Section ``[name]`` of ``data`` validated by ``model``; an error names the key (with a did-you-mean)."""
    try:
        return model.model_validate(data.get(name, {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        hint = suggest(str(err["loc"][-1]), list(model.model_fields)) if err["type"] == "extra_forbidden" else ""
        raise ConfigError(f"{source}: {name}.{loc}: {err['msg']}{hint}") from None


def parse_config(data: dict[str, Any], source: str) -> Config:
    known = ["database", "check", "cluster", "alerts", "schedule"]
    for key in data:
        if key not in known:
            raise ConfigError(f"{source}: unknown section or key [{key}]{suggest(key, known)}")
    alerts = parse_alerts_config(data.get("alerts", {}), source)
    try:
        check = CheckSettings.model_validate(data.get("check", {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        hint = (
            suggest(str(err["loc"][-1]), list(CheckSettings.model_fields))
            if err["type"] == "extra_forbidden"
            else ""
        )
        raise ConfigError(f"{source}: check.{loc}: {err['msg']}{hint}") from None
    cluster = _section(ClusterSettings, "cluster", data, source)
    database = data.get("database")
    if isinstance(database, dict):
        database = database.get("url")
    if database is not None and not isinstance(database, str):
        raise ConfigError(f"{source}: database: expected a URL string")
    return Config(
        database=database, check=check, alerts=alerts, schedule=data.get("schedule", {}), source=source
    ).model_copy(update={"cluster": cluster})


def load_config(path: str | Path | None = None) -> Config:
    """The config at ``path``, else ``PARTYRULES_CONFIG``, else ``./partyrules.toml`` if present, else defaults."""
    chosen = path or os.environ.get("PARTYRULES_CONFIG")
    if chosen is None:
        default = Path("partyrules.toml")
        if not default.exists():
            return Config()
        chosen = default
    p = Path(chosen)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse_config(data, str(p))
