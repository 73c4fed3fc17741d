"""atheris target: any text given to the condition language is compiled or refused with a ConditionError.

Run by ``tests/test_fuzz_conditions.py`` for a bounded time; by hand:
``python tests/fuzz/condition_target.py -max_total_time=60``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["engine.condition"]):
    from engine.condition import check, compile_durable, parse
    from engine.errors import ConditionError

FIELDS = {"meetings": "number", "org_name": "string", "topics": "list", "present": "number", "ok": "bool"}
PARAMS = {"at_least": 1, "threshold": 0.9, "kinds": ["a", "b"]}


def one_input(data: bytes) -> None:
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(4096)
    try:
        cond = parse(text)
        check(cond, FIELDS, PARAMS)
        compile_durable(cond, FIELDS, PARAMS)
    except ConditionError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
