"""The error of a scheduled job that did not complete (raised in the scheduler and in a job's child process)."""

from __future__ import annotations

from facts.errors import PartyrulesError


class ScheduleJobError(PartyrulesError):
    """A scheduled job that did not complete; ``job`` names it, ``failures`` say what failed where."""

    def __init__(self, job: str, failures: list[str]) -> None:
        self.job = job
        self.failures = failures
        super().__init__(f"定时任务 {job} 未全部完成：" + "；".join(failures))
