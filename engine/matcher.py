"""The durable_rules adapter: does a subject violate a rule?

Built around the measured sharp edges of durable_rules 2.0.28 (``shared/notes/durable_rules.md``):

- one ruleset per rule, named ``r<index>_<hash>``; each subject is posted as an *event* (consumed,
  never stored), one ``post`` per item (``post_batch`` can lose actions);
- ``MessageNotHandledException`` means "no match"; the action only appends to a list, and after each
  post the matcher checks that exactly that action ran and that no exception was swallowed into the
  state (``s.exception``);
- only the fields the condition reads are posted, so ``id`` / ``sid`` (which durable_rules uses for
  its own bookkeeping) never reach it; a missing or null field is an error, never a silent "no";
- list values get :data:`engine.condition.LIST_SENTINEL` appended where the condition uses
  ``$iall`` (durable_rules makes ``$iall`` false on an empty list);
- a :class:`durable.engine.Host` subclass with the background dispatcher threads disabled, a fresh
  one per :class:`Matcher`; :func:`match_all` runs matchers in short-lived worker processes;
- :meth:`Matcher.matches_many` posts only the candidates of the rule's vectorised pre-filter
  (:mod:`engine.condition.prefilter`), which may over-select but never under-select: nearly every
  subject of a province-year is compliant and is never posted.  (Batched ``$iany`` posts of eight
  subjects, used before the pre-filter, were dropped: with it they measured no faster, and durable_rules
  answers ``$or`` inside item tests wrongly.)
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from durable.engine import Host, MessageNotHandledException

from engine.condition.durable import (
    LIST_SENTINEL,
    MAX_EXACT_INT,
    MAX_JUNCTIONS,
    RESERVED_NAMES,
    count_junctions,
)
from engine.matching.errors import MatcherCrashed, MatcherError
from engine.matching.pool import ItemError, portable, run_chunks

if TYPE_CHECKING:
    from engine.condition.prefilter import Prefilter


class RuleLike(Protocol):
    """What :meth:`Matcher.for_rules` reads of a compiled rule."""

    @property
    def key(self) -> str: ...
    @property
    def durable(self) -> dict[str, Any]: ...
    @property
    def prefilter(self) -> Prefilter | None: ...

__all__ = ["Matcher", "MatcherCrashed", "MatcherError", "floor_loop", "match_all", "ruleset_name"]

_COMPARISONS = frozenset({"$lt", "$lte", "$gt", "$gte", "$neq", "$eq"})
_ARITHMETIC = frozenset({"$add", "$sub", "$mul", "$div"})


class _QuietHost(Host):  # type: ignore[misc]
    """A Host without the two background dispatcher threads: actions run inside ``post``."""

    def _run(self) -> None:
        """Start nothing (``Host.__init__`` calls this to start its timer threads)."""


@dataclass(frozen=True, slots=True)
class _Rule:
    key: str
    name: str  # the ruleset's name in durable_rules
    fields: tuple[str, ...]  # top-level subject keys the condition reads
    list_fields: tuple[str, ...]  # those that need LIST_SENTINEL appended


def ruleset_name(index: int, key: str, condition: Mapping[str, Any]) -> str:
    """``r<index>_<hash>``: unique in a matcher, and telling which condition it holds."""
    digest = hashlib.sha1(
        (key + "\0" + json.dumps(condition, sort_keys=True)).encode(), usedforsecurity=False
    ).hexdigest()
    return f"r{index}_{digest[:10]}"


class _Reader:
    """Walks a durable_rules condition: validates its shape and collects the fields it reads."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.fields: dict[str, None] = {}
        self.list_fields: dict[str, None] = {}

    def fail(self, what: str, node: Any) -> MatcherError:
        return MatcherError(
            f"rule {self.key}: {what} in its durable_rules condition: {json.dumps(node, ensure_ascii=False)}",
            self.key,
        )

    def field(self, path: Any, node: Any) -> str:
        if not isinstance(path, str) or not path or path.startswith("$"):
            raise self.fail(f"{path!r} is not a field name", node)
        top = path.split(".")[0]
        if top in RESERVED_NAMES:
            raise self.fail(f"the field {path!r} is durable_rules' own", node)
        self.fields[top] = None
        return top

    def single(self, node: Any) -> tuple[str, Any]:
        if not isinstance(node, dict) or len(node) != 1:
            raise self.fail("expected an object with one key", node)
        ((key, body),) = node.items()
        return key, body

    def condition(self, node: Any) -> None:
        key, body = self.single(node)
        if key in ("$and", "$or"):
            if not isinstance(body, list) or not body:
                raise self.fail(f"{key} needs a non-empty list", node)
            for part in body:
                self.condition(part)
        elif key in _COMPARISONS:
            path, rhs = self.single(body)
            self.field(path, node)
            self.value(rhs)
        elif key in ("$iany", "$iall"):
            path, inner = self.single(body)
            top = self.field(path, node)
            if key == "$iall":
                self.list_fields[top] = None
            self.item_test(inner)
        elif key.startswith("$"):
            raise self.fail(f"unsupported operator {key}", node)
        else:
            self.field(key, node)
            self.value(body)

    def item_test(self, node: Any) -> None:
        key, body = self.single(node)
        if key == "$i":
            self.value(body)
        elif key in _COMPARISONS:
            item, rhs = self.single(body)
            if item != "$i":
                raise self.fail("an array test must compare $i", node)
            self.value(rhs)
        else:
            raise self.fail(f"unsupported array test {key}", node)

    def value(self, node: Any) -> None:
        if isinstance(node, bool | str):
            return
        if isinstance(node, int | float):
            text = repr(node)
            if (isinstance(node, int) and abs(node) > MAX_EXACT_INT) or (
                isinstance(node, float) and ("e" in text or not math.isfinite(node))
            ):
                raise self.fail(f"the number {text} cannot be passed exactly", node)
            return
        key, body = self.single(node)
        if key == "$m":
            self.field(body, node)
        elif key in _ARITHMETIC:
            if not isinstance(body, dict) or set(body) != {"$l", "$r"}:
                raise self.fail(f"{key} needs $l and $r", node)
            self.value(body["$l"])
            self.value(body["$r"])
        else:
            raise self.fail(f"unsupported value {key}", node)


def _plan(conditions: Mapping[str, Mapping[str, Any]]) -> dict[str, _Rule]:
    """Validate each condition and work out its ruleset name and the fields it reads."""
    rules: dict[str, _Rule] = {}
    for index, (key, condition) in enumerate(conditions.items()):
        reader = _Reader(key)
        reader.condition(condition)
        if count_junctions(condition) > MAX_JUNCTIONS:
            raise MatcherError(
                f"rule {key}: more than {MAX_JUNCTIONS} $and/$or groups (durable_rules error 113)", key
            )
        rules[key] = _Rule(
            key,
            ruleset_name(index, key, condition),
            tuple(reader.fields),
            tuple(reader.list_fields),
        )
    return rules


def _project(rule: _Rule, subject: Mapping[str, Any]) -> dict[str, Any]:
    """The event posted for ``subject``: only the fields ``rule`` reads (never ``id`` / ``sid``)."""
    try:
        return {name: subject[name] for name in rule.fields}
    except KeyError as exc:
        raise MatcherError(
            f"rule {rule.key}: the subject has no field {exc} (durable_rules never matches a missing field)",
            rule.key,
        ) from None


class Matcher:
    """Judges subjects against compiled conditions, in this process, with its own durable_rules Host.

    ``conditions`` maps a rule key to its durable_rules JSON condition (from ``compile_durable``);
    ``prefilters`` the vectorised forms of some of them (:mod:`engine.condition.prefilter`), which
    :meth:`matches_many` uses to post only the candidates.
    Not thread-safe; after a :class:`MatcherError` raised by :meth:`matches`, build a new one.
    """

    def __init__(
        self,
        conditions: Mapping[str, Mapping[str, Any]],
        prefilters: Mapping[str, Prefilter] | None = None,
    ) -> None:
        self._fired: list[str] = []
        self._rules = _plan(conditions)
        self._prefilters = dict(prefilters or {})
        for key in self._prefilters.keys() - self._rules.keys():
            raise MatcherError(f"a pre-filter for {key!r}, which has no condition in this matcher", key)
        self.posts = 0  # subjects posted to the rules' own rulesets (what the pre-filter saves is the rest)
        definitions: dict[str, Any] = {}
        for key, rule in self._rules.items():
            # durable_rules mutates what it is given (it deletes "run"): hand it a deep copy
            condition = copy.deepcopy(dict(conditions[key]))
            definitions[rule.name] = {"fire": {"all": [{"m": condition}], "run": self._action(rule.name)}}
        self._host = _QuietHost()
        for name, definition in definitions.items():
            try:
                self._host.register_rulesets({name: definition})
            except Exception as exc:  # durable_rules says only "error code: N"
                key = next(r.key for r in self._rules.values() if r.name == name)
                raise MatcherError(f"rule {key}: durable_rules rejected its condition ({exc})", key) from exc

    @classmethod
    def for_rules(cls, rules: Iterable[RuleLike], prefilter: bool = True) -> Matcher:
        """A matcher for compiled rules, with their pre-filters unless ``prefilter=False``."""
        rules = list(rules)
        prefilters = {r.key: r.prefilter for r in rules if prefilter and r.prefilter is not None}
        return cls({r.key: r.durable for r in rules}, prefilters)

    def _action(self, name: str) -> Any:
        fired = self._fired

        def fire(c: Any) -> None:
            fired.append(name)

        return fire

    @property
    def rule_keys(self) -> list[str]:
        return list(self._rules)

    def fields(self, rule_key: str) -> tuple[str, ...]:
        """The subject keys posted for ``rule_key`` (those its condition reads)."""
        return self._rule(rule_key).fields

    def _rule(self, rule_key: str) -> _Rule:
        try:
            return self._rules[rule_key]
        except KeyError:
            raise MatcherError(f"no rule {rule_key!r} in this matcher", rule_key) from None

    def matches(self, rule_key: str, subject: Mapping[str, Any]) -> bool:
        """Whether ``subject`` satisfies the condition of ``rule_key`` (i.e. the rule is violated)."""
        rule = self._rules.get(rule_key) or self._rule(rule_key)
        return self._post(rule, rule.name, self._event(rule, subject))

    def matches_many(self, rule_key: str, subjects: Sequence[Mapping[str, Any]]) -> list[bool]:
        """``[matches(rule_key, s) for s in subjects]``.

        With a pre-filter for the rule, only its candidates are posted: every other subject certainly
        does not satisfy the condition.  Every "yes" is fired by the rule's own ruleset.
        """
        rule = self._rules.get(rule_key) or self._rule(rule_key)
        prefilter = self._prefilters.get(rule_key)
        if prefilter is None:
            return [self._post(rule, rule.name, self._event(rule, s)) for s in subjects]
        out = [False] * len(subjects)
        for i in np.flatnonzero(prefilter.candidates(subjects)).tolist():
            out[i] = self._post(rule, rule.name, self._event(rule, subjects[i]))
        return out

    def _event(self, rule: _Rule, subject: Mapping[str, Any]) -> dict[str, Any]:
        event = _project(rule, subject)
        for name in rule.list_fields:
            value = event[name]
            if isinstance(value, list | tuple):
                event[name] = [*value, LIST_SENTINEL]
        if None in event.values():
            missing = [k for k, v in event.items() if v is None]
            raise MatcherError(
                f"rule {rule.key}: the subject's {missing} is null; fields are never null", rule.key
            )
        return event

    def _post(self, rule: _Rule, name: str, event: dict[str, Any]) -> bool:
        """Post ``event`` to the ruleset ``name``; True when its action ran (exactly once, cleanly)."""
        self.posts += 1
        try:
            state = self._host.post(name, event)
        except MessageNotHandledException:
            return False
        except Exception as exc:
            raise MatcherError(
                f"rule {rule.key}: durable_rules refused the subject: {_diagnose(event, exc)}", rule.key
            ) from exc
        fired = self._fired
        if len(fired) != 1 or fired[0] != name or not isinstance(state, dict) or "exception" in state:
            detail = (
                state.get("exception")
                if isinstance(state, dict) and "exception" in state
                else f"actions run: {fired}"
            )
            raise MatcherError(
                f"rule {rule.key}: the durable_rules action did not run cleanly ({detail})", rule.key
            )
        fired.clear()
        return True


def _diagnose(event: Mapping[str, Any], exc: Exception) -> str:
    """Why durable_rules would not take ``event``: name the field when a value is the cause."""
    for name, value in event.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, float) and ("e" in repr(item) or not math.isfinite(item)):
                return f"{name} = {item!r} is not finite or needs exponent notation, which durable_rules cannot read ({exc})"
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_EXACT_INT:
                return f"{name} = {item!r} is too large for durable_rules ({exc})"
            if not isinstance(item, str | int | float | bool):
                return f"{name} = {item!r} is not a JSON number, string or true/false ({exc})"
    return str(exc)


def _worker_setup(conditions: Mapping[str, Mapping[str, Any]]) -> Matcher:
    """In a worker process, once: its matcher (see :func:`engine.matching.pool.run_chunks`)."""
    return Matcher(conditions)


def _worker_chunk(matcher: Matcher, items: Sequence[tuple[str, Mapping[str, Any]]]) -> bytes:
    """In a worker process: one byte per ``(rule key, event)``, 1 where the rule fires."""
    out = bytearray(len(items))
    for index, (key, subject) in enumerate(items):
        try:
            out[index] = matcher.matches(key, subject)
        except Exception as exc:
            raise ItemError(index, portable(exc)) from exc
    return bytes(out)


def match_all(
    conditions: Mapping[str, Mapping[str, Any]],
    work: Sequence[tuple[str, Mapping[str, Any]]],
    processes: int = 1,
) -> list[bool]:
    """``[matches(rule_key, subject) for rule_key, subject in work]``, computed in worker processes.

    ``processes`` workers share the work (``processes=1`` still uses one worker, so a crash of the C
    engine raises :class:`MatcherCrashed` here instead of killing the caller).
    """
    plain = {key: dict(condition) for key, condition in conditions.items()}
    rules = _plan(plain)  # bad conditions fail here, before any process starts
    unknown = {key for key, _ in work} - rules.keys()
    if unknown:
        raise MatcherError(f"no rule {sorted(unknown)[0]!r} among the conditions", sorted(unknown)[0])
    # workers get only what the conditions read: a fraction of the pickling, and no ids
    events = [(key, _project(rules[key], subject)) for key, subject in work]

    def describe(start: int, count: int) -> str:
        keys = sorted({key for key, _ in work[start : start + count]})
        shown = ", ".join(keys[:5]) + (" …" if len(keys) > 5 else "")
        return f" (rules {shown})"

    answers = run_chunks(_worker_setup, plain, _worker_chunk, events, processes, describe, preload=[__name__])
    return [bool(b) for b in answers]


def floor_loop(
    conditions: Mapping[str, Mapping[str, Any]], work: Sequence[tuple[str, Mapping[str, Any]]]
) -> float:
    """Seconds a bare in-process durable_rules loop takes to post ``work`` (the benchmark floor).

    Same rulesets, whole subjects (minus ``id``/``sid``) prepared beforehand, ``post`` per item,
    "not handled" caught, nothing checked: what any adapter must at least spend.
    """
    host = _QuietHost()
    names = {}
    for index, (key, condition) in enumerate(conditions.items()):
        names[key] = ruleset_name(index, key, condition)
        host.register_rulesets(
            {names[key]: {"fire": {"all": [{"m": copy.deepcopy(dict(condition))}], "run": lambda c: None}}}
        )
    prepared = [(names[k], {f: v for f, v in s.items() if f not in RESERVED_NAMES}) for k, s in work]
    post = host.post
    start = time.perf_counter()
    for name, event in prepared:
        try:  # noqa: SIM105 - contextlib.suppress would slow the very loop being measured
            post(name, event)
        except MessageNotHandledException:
            pass
    return time.perf_counter() - start
