"""Errors raised by the engine.  Each carries where it happened and, where possible, what to do about it."""

from __future__ import annotations

from facts.errors import PartyrulesError


class ConditionError(PartyrulesError):
    """A rule's condition cannot be used.

    Attributes are data for callers and tests: ``text`` (the whole condition), ``column`` (1-based, or
    None), ``field`` (the name involved, or None), ``suggestion`` (a fix in words, or None) and
    ``message`` (what is wrong, without the location).
    """

    def __init__(
        self,
        message: str,
        *,
        text: str,
        column: int | None = None,
        field: str | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.message = message
        self.text = text
        self.column = column
        self.field = field
        self.suggestion = suggestion
        super().__init__(self._render())

    def _render(self) -> str:
        out = self.message
        if self.suggestion and self.suggestion not in out:
            out += f" — {self.suggestion}"
        where = f"column {self.column} of " if self.column is not None else ""
        return f"{out} ({where}condition: {self.text})"

    def __str__(self) -> str:
        return self._render()

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments do not survive the default exception pickling (worker processes).
        return (_rebuild, (type(self), self.message, self.text, self.column, self.field, self.suggestion))


def _rebuild(
    cls: type[ConditionError],
    message: str,
    text: str,
    column: int | None,
    field: str | None,
    suggestion: str | None,
) -> ConditionError:
    return cls(message, text=text, column=column, field=field, suggestion=suggestion)


class ConditionSyntaxError(ConditionError):
    """The condition text does not parse."""


class ConditionTypeError(ConditionError):
    """The condition parses but names an unknown field or mixes types (``name == 3``, ``'a' + 1``)."""


class NotExpressibleError(ConditionError):
    """The condition is well typed but durable_rules cannot evaluate it faithfully; rewrite it."""
