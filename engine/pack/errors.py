"""Errors in a rule pack: each names the file, the line, the rule and the field."""

from __future__ import annotations

from dataclasses import dataclass

from facts.errors import PartyrulesError


@dataclass(frozen=True)
class PackProblem:
    file: str
    line: int
    rule: str | None
    field: str
    message: str
    suggestion: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        who = f" {self.rule}" if self.rule else ""
        fld = f" {self.field}:" if self.field else ""
        hint = f" — {self.suggestion}" if self.suggestion and self.suggestion not in self.message else ""
        return f"{where}:{who}{fld} {self.message}{hint}"


class PackError(PartyrulesError):
    """A rule pack that cannot be used: every problem found, not just the first."""

    def __init__(self, problems: list[PackProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
