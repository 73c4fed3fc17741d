"""The errors of matching: a condition or subject durable_rules cannot take, and a worker process that died."""

from __future__ import annotations

from typing import Any

from facts.errors import PartyrulesError


class MatcherError(PartyrulesError):
    """Matching could not be done (a bad condition for durable_rules, a subject it cannot take…)."""

    def __init__(self, message: str, rule_key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.rule_key = rule_key

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.rule_key))


class MatcherCrashed(MatcherError):
    """A worker process died (e.g. killed by a signal from durable_rules' C engine)."""
