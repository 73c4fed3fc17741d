"""The one exception tree of partyrules.  Each error carries where it happened."""

from __future__ import annotations

from dataclasses import dataclass


class PartyrulesError(Exception):
    """Base of every error partyrules raises on purpose."""


@dataclass(frozen=True)
class Location:
    """Where an input object came from: a file and a 1-based line (or row)."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with one input object: ``facts.jsonl:12: meeting.date: "2017-02-30" is not a valid date``."""

    location: Location
    field: str  # e.g. "meeting.date", or "meeting" for the whole object, or "" when the type is unknown
    message: str

    def __str__(self) -> str:
        where = f"{self.location}: "
        return f"{where}{self.field}: {self.message}" if self.field else f"{where}{self.message}"


class FactError(PartyrulesError):
    """Input facts that cannot be read at all (a missing file, an unreadable encoding)."""


class StoreError(PartyrulesError):
    """The database cannot be reached or is not initialised."""
