"""The condition language of rule packs: parse, type-check, evaluate, compile to durable_rules.

>>> from engine.condition import parse, check, evaluate, compile_durable
>>> cond = parse("present < eligible * threshold")
>>> check(cond, {"present": "number", "eligible": "number"}, {"threshold": 0.9})
>>> evaluate(cond, {"present": 8, "eligible": 10}, {"threshold": 0.9})
True
>>> compile_durable(cond, {"present": "number", "eligible": "number"}, {"threshold": 0.9})
{'$lt': {'present': {'$mul': {'$l': {'$m': 'eligible'}, '$r': 0.9}}}}
"""

from engine.condition.ast import Expr, unparse
from engine.condition.durable import LIST_SENTINEL, compile_durable
from engine.condition.evaluate import evaluate
from engine.condition.parser import Condition, parse
from engine.condition.typecheck import ConditionLike, FieldType, check

__all__ = [
    "LIST_SENTINEL",
    "Condition",
    "ConditionLike",
    "Expr",
    "FieldType",
    "check",
    "compile_durable",
    "evaluate",
    "parse",
    "unparse",
]
