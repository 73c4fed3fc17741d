"""Judging subjects a batch at a time: one durable_rules post for several subjects.

A post costs durable_rules a fixed ~4 µs besides the work of matching, and nearly every subject of a
province-year is compliant.  So a rule whose condition reads only constants is also compiled over a
*batch*: ``{"$iany": {"items": <the condition, on one item>}}``.  A batch of subjects that matches
nothing is a batch of "no"; one that matches is judged again subject by subject by the rule's own
ruleset, so every "yes" comes from the original condition, and the batch ruleset only ever answers
"none of these".  A rule whose batches keep matching (many violations) goes back to single posts.

Only comparisons of a field with a constant, joined by ``$and``, are batched: durable_rules rejects
item-to-item references (``$m``, error 102), and it answers ``$or`` inside an item test wrongly (a
random differential test found ~20% of such conditions missing matches; ``$and`` trees and single
comparisons agreed on 2,000 random conditions).  Other rules are posted one subject at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: the comparisons tested inside item tests (equality is written ``{field: value}``, as compile_durable does)
_COMPARISONS = frozenset({"$lt", "$lte", "$gt", "$gte", "$neq"})

#: subjects per batch post: measured on 60,000 subjects with 2% violating, 8 cost 3.8 µs a subject,
#: 16 cost 4.1, single posts 6.5 (bench figures and ``tests/test_matcher_batch.py`` keep it honest)
BATCH = 8
#: after this many batches, a rule whose batches match more often than MAX_HIT_RATE posts singly
PROBE_BATCHES = 64
MAX_HIT_RATE = 0.3


def _constant(value: Any) -> bool:
    return isinstance(value, bool | str | int | float)


def item_condition(condition: Mapping[str, Any]) -> dict[str, Any] | None:
    """``condition`` rewritten to test one item of a batch (``$i.<field>``), or None when it reads
    anything besides a field compared with a constant."""
    if len(condition) != 1:
        return None
    ((key, body),) = condition.items()
    if key == "$or":  # durable_rules 2.0.28 gets $or inside an item test wrong (measured): never batch it
        return None
    if key == "$and":
        if not isinstance(body, list) or not body:
            return None
        parts = [item_condition(part) if isinstance(part, Mapping) else None for part in body]
        if any(p is None for p in parts):
            return None
        return {key: parts}
    if key in _COMPARISONS:
        if not isinstance(body, Mapping) or len(body) != 1:
            return None
        ((name, rhs),) = body.items()
        if not isinstance(name, str) or name.startswith("$") or not _constant(rhs):
            return None
        return {key: {f"$i.{name}": rhs}}
    if key.startswith("$") or not _constant(body):
        return None
    return {f"$i.{key}": body}


def batch_condition(condition: Mapping[str, Any]) -> dict[str, Any] | None:
    """The condition a batch ``{"items": [...]}`` matches when any item matches ``condition``."""
    inner = item_condition(condition)
    return None if inner is None else {"$iany": {"items": inner}}
