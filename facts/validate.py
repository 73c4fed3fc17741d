"""Turn one raw input object into a validated fact, or into precise field problems."""

from __future__ import annotations

import difflib
import json
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from facts.errors import FieldProblem, Location
from facts.models import MODELS, FactBase


def suggest(word: str, choices: list[str]) -> str:
    """`` (did you mean 'attendees'?)`` or the empty string."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The nested model that owns the last element of ``loc`` (for field suggestions)."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None or isinstance(part, int):
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        current = None
        for candidate in _walk_types(annotation):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                current = candidate
                break
    return current


def _walk_types(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None)
    if not args:
        return [annotation]
    out: list[Any] = []
    for arg in args:
        out.extend(_walk_types(arg))
    return out


def _message(error: dict[str, Any], model: type[BaseModel]) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden":
        owner = _model_at(model, loc)
        names = list(owner.model_fields) if owner else []
        return f"unknown field{suggest(str(loc[-1]), names)}"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        allowed = [c.strip(" '") for c in error["ctx"]["expected"].replace(" or ", ", ").split(",")]
        hint = suggest(str(error.get("input")), allowed)
        return f"{_shown(error.get('input'))} is not one of {error['ctx']['expected']}{hint}"
    if kind in {"string_type", "list_type", "bool_type", "int_type", "dict_type", "model_type"}:
        expected = {
            "string_type": "a string",
            "list_type": "a list",
            "bool_type": "true or false",
            "int_type": "an integer",
            "dict_type": "an object",
            "model_type": "an object",
        }[kind]
        return f"{_shown(error.get('input'))} is not {expected}"
    return str(error["msg"])


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def validate_object(raw: Any, location: Location) -> FactBase | list[FieldProblem]:
    """Validate one decoded input object against the interchange format."""
    if not isinstance(raw, dict):
        return [FieldProblem(location, "", f"expected a JSON object, got {_shown(raw)}")]
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in MODELS:
        if kind is None:
            return [FieldProblem(location, "type", 'required field is missing (e.g. "type": "meeting")')]
        hint = suggest(str(kind), list(MODELS))
        return [FieldProblem(location, "type", f"{_shown(kind)} is not a known type{hint}")]
    model = MODELS[kind]
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            # model-level validators report an empty loc: the object as a whole
            field = f"{kind}.{_path(loc)}" if loc else kind
            problems.append(FieldProblem(location, field, _message(dict(error), model)))
        return problems


_SURROGATE = "contains a lone surrogate (a \\ud800-\\udfff escape without its pair): not text; fix the value"


def canonical_bytes(body: dict[str, Any]) -> bytes:
    """``json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))`` in UTF-8, made by orjson.

    orjson writes the same bytes except for floats between 1e-10 and 1e-4 (``1e-7`` or
    ``0.00001`` where json writes ``1e-07`` and ``1e-05``: caught by looking for ``e-`` and
    ``0.0000``), and cannot write integers beyond 64 bits or lone surrogates.  Those go
    through :mod:`json`, so the stored text and its hash never change; a lone surrogate
    then raises ``UnicodeEncodeError``.
    """
    try:
        raw = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        raw = b""
    if not raw or b"e-" in raw or b"0.0000" in raw:
        raw = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return raw


def surrogate_problem(location: Location, body: dict[str, Any]) -> FieldProblem:
    """The problem of a fact whose canonical form (``body``) holds a string UTF-8 cannot encode."""
    return FieldProblem(location, _surrogate_field(body), _SURROGATE)


def _surrogate_field(body: dict[str, Any]) -> str:
    """``type.path`` of the first string value of a canonical fact that UTF-8 cannot encode."""

    def bad(value: Any, path: str) -> str | None:
        if isinstance(value, str):
            return None if value.isascii() or _encodes(value) else path
        items = (
            value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        )
        for name, inner in items:
            found = bad(inner, f"{path}[{name}]" if isinstance(name, int) else f"{path}.{name}")
            if found:
                return found
        return None

    return bad({k: v for k, v in body.items() if k != "type"}, str(body["type"])) or str(body["type"])


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
