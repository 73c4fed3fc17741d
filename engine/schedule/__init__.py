"""The schedule: period checks after each period closes plus its grace, daily as-of checks,
escalation, digests and alert delivery, run by APScheduler with its job store in the project database.
"""

from engine.schedule.config import (
    ScheduleConfig,
    ScheduleConfigError,
    parse_schedule_config,
    schedule_settings,
)

__all__ = ["ScheduleConfig", "ScheduleConfigError", "parse_schedule_config", "schedule_settings"]
