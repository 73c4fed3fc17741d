"""The fast import path gives exactly what the plain one gave: same JSON text, same reading, same band keys."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from facts.errors import Location
from facts.minhash import _A, _B, _MIX, BANDS, ROWS, band_keys, codes
from facts.readers import _read_jsonl
from facts.store import FactStore
from facts.validate import canonical_bytes


def _plain(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    "body",
    [
        {"b": 1, "a": {"z": [1, {"y": 2, "x": None}], "c": "党支部\u2028\"\\/\x1f"}},
        {"amount": 1.5e-07, "note": "x"},
        {"amount": 1e-05},
        {"amount": 0.00012, "base": 1e16},
        {"term_years": 123456789012345678901234567890},
    ],
)
def test_canonical_bytes_are_those_of_json_dumps(body):
    assert canonical_bytes(body) == _plain(body)


def test_random_floats_keep_their_json_form():
    rnd = random.Random(1)
    for _ in range(20000):
        x = rnd.choice([1, -1]) * 10 ** rnd.uniform(-12, 20)
        assert canonical_bytes({"amount": x}) == _plain({"amount": x})


def _read(line: str) -> list[object]:
    return [x if isinstance(x, tuple) else str(x) for x in _read_jsonl("f", line)]


@pytest.mark.parametrize(
    ("line", "key"),
    [('{"a": 1, "a" : 2}', "a"), ('{"a":{"b":1,"b":1}}', "b"), ('{"l":[{"k":1,"k":1}]}', "k"), ('{"a" :1,"b":"x:y","a":1}', "a")],
)
def test_repeated_keys_are_still_reported(line, key):
    assert _read(line) == [f'f:1: invalid JSON: key "{key}" appears twice in one object']


def test_big_integers_stay_integers_and_odd_numbers_keep_their_messages():
    ((_, obj),) = _read_jsonl("f", '{"year": 18446744073709551616, "n": -9223372036854775809}')
    assert obj == {"year": 18446744073709551616, "n": -9223372036854775809}
    assert _read('{"a": NaN}') == ["f:1: invalid JSON: NaN is not allowed (JSON has no such number)"]
    assert _read('{"a": 1e400}')[0][1] == {"a": float("inf")}


def _reference_band_keys(content: str) -> list[int]:
    s = codes(content)
    if not s.size:
        return []
    mins = (s[:, None] * _A[None, :] + _B[None, :]).min(axis=0)
    return [int(k) for k in (mins.reshape(BANDS, ROWS) * _MIX).sum(axis=1, dtype=np.uint64).view(np.int64)]


def test_band_keys_are_those_of_the_definition():
    rnd = random.Random(2)
    alphabet = "ab c\n党支部会议学习 \U0001f600，。"
    texts = ["".join(rnd.choice(alphabet) for _ in range(rnd.choice([0, 1, 2, 3, 5, 40, 400]))) for _ in range(300)]
    assert band_keys(texts) == [_reference_band_keys(t) for t in texts]


def test_a_lone_surrogate_is_reported_and_the_rest_is_kept(db_engine):
    s = FactStore(db_engine)
    s.create_schema()
    good = {"type": "org", "id": "b1", "name": "一支部", "kind": "branch"}
    bad = {"type": "org", "id": "b2", "name": "x\ud800", "kind": "branch"}
    report = s.import_items([(Location("f.jsonl", 1), good), (Location("f.jsonl", 2), bad)])
    assert report.added == 1 and [str(p).split(":")[1:3] for p in report.problems] == [["2", " org.name"]]


def test_bind_values_are_processed_once_per_distinct_value_and_type():
    from datetime import UTC, datetime, timedelta, timezone

    from facts.projection import _processed

    calls: list[object] = []

    def process(value: object) -> str:
        calls.append(value)
        return repr(value)

    utc = datetime(2020, 1, 1, 8, tzinfo=UTC)
    beijing = utc.astimezone(timezone(timedelta(hours=8)))  # the same instant: equal, and hashed alike
    rows = [(True, utc, "a"), (1, beijing, "b"), (True, utc, "c"), (1, beijing, "d"), (None, utc, "e")]
    out = _processed(rows, [(0, process), (1, process)])
    assert out == [(repr(a), repr(b), c) for a, b, c in rows]  # True and 1, utc and beijing kept apart
    assert len(calls) == 5  # True, 1, None; utc, beijing: once each


def test_bind_values_of_one_kind_a_column_are_those_of_the_processor_value_by_value():
    from datetime import date

    from facts.projection import _processed

    calls: list[object] = []

    def process(value: object) -> str:
        calls.append(value)
        return f"{type(value).__name__}:{value!r}"

    days = [date(2017, 1, 1 + i % 5) for i in range(40)]
    rows = [(d if i % 7 else None, i % 3 == 0, i, "x") for i, d in enumerate(days)]
    out = _processed(rows, [(0, process), (1, process), (2, process)])
    assert out == [(process(a), process(b), process(c), d) for a, b, c, d in rows]
    calls.clear()
    _processed(rows, [(0, process), (1, process)])
    assert len(calls) == 5 + 1 + 2  # five days and None; True and False
    assert _processed([], [(0, process)]) == []


def test_bools_a_processor_makes_their_ints_and_one_timestamp_throughout_are_kept_or_processed_once():
    from datetime import UTC, datetime

    from facts.projection import _processed

    calls: list[object] = []

    def to_int(value: object) -> object:
        calls.append(value)
        return None if value is None else int(value)  # type: ignore[call-overload]

    rows = [("a", True), ("b", False), ("c", None)]
    assert _processed(rows, [(1, to_int)]) is rows  # the driver binds a bool as that int anyway
    now = datetime(2026, 12, 1, tzinfo=UTC)
    calls.clear()
    out = _processed([(now, 1), (now, 2)], [(0, lambda v: calls.append(v) or v.isoformat())])
    assert out == [(now.isoformat(), 1), (now.isoformat(), 2)] and calls == [now]


def _reference_amount(value):
    """parse_amount as it was before its fast path (c70014f)."""
    from decimal import Decimal, InvalidOperation

    from pydantic_core import PydanticCustomError

    from facts.models import MAX_AMOUNT

    if isinstance(value, bool):
        raise PydanticCustomError("amount", "bool")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | float | str):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation:
            raise PydanticCustomError("amount", "not") from None
    else:
        raise PydanticCustomError("amount", "not")
    if not result.is_finite() or abs(result.adjusted()) > 300 or result < 0 or result > MAX_AMOUNT:
        raise PydanticCustomError("amount", "range")
    return result


def test_amounts_and_dates_are_parsed_as_before_their_fast_paths():
    import math
    from datetime import date, datetime

    from pydantic_core import PydanticCustomError

    from facts.models import parse_amount, parse_iso_date

    rng = random.Random(7)
    values: list[object] = [0, 0.0, -0.0, 1, -1, 96.0, 6400, 1e8, 100_000_000, 100_000_001, 1e8 + 0.01,
                            math.nextafter(1e8, 2e8), 1e-300, math.nextafter(1e-300, 0), 1e-301, 5e-324,
                            math.inf, -math.inf, math.nan, True, False, "96.0", " 96 ", "x", None, [1], 10**30]
    values += [rng.choice([rng.uniform(0, 2e8), rng.randrange(-5, 10**9), round(rng.uniform(0, 500), 2)])
               for _ in range(3000)]  # fmt: skip
    for value in values:
        try:
            expected = ("ok", str(_reference_amount(value)))
        except PydanticCustomError:
            expected = ("refused", "")
        try:
            got = ("ok", str(parse_amount(value)))
        except PydanticCustomError:
            got = ("refused", "")
        assert got == expected, value
    for text in ["2017-01-21", "2017-02-30", "1899-12-31", "1921-01-01", "2100-12-31", "2101-01-01", "2017-1-1",
                 "20170121", "2017-W01-1", "", "2017-01-21 ", "２０１７-01-21"]:  # fmt: skip
        for value in (text, date(2017, 1, 21), date(1800, 1, 1), datetime(2017, 1, 21, 8), 20170121, None):
            assert _outcome(parse_iso_date, value) == _outcome(_reference_date, value), value


def _outcome(parse, value):
    from pydantic_core import PydanticCustomError

    try:
        return "ok", repr(parse(value))
    except PydanticCustomError as exc:
        return "refused", str(exc)


def _reference_date(value):
    """parse_iso_date as it was before its fast path (c70014f)."""
    import contextlib
    import re
    from datetime import date

    from pydantic_core import PydanticCustomError

    from facts.models import FIRST_YEAR, LAST_YEAR

    parsed = None
    if isinstance(value, date):
        parsed = value
    elif isinstance(value, str) and re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", value):
        with contextlib.suppress(ValueError):
            parsed = date.fromisoformat(value)
    shown = f'"{value}"' if isinstance(value, str) else repr(value)
    if parsed is None:
        raise PydanticCustomError("iso_date", "{shown} is not a valid date (expected YYYY-MM-DD)", {"shown": shown})
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise PydanticCustomError(
            "date_range",
            "{shown} is out of range (dates lie between {first}-01-01 and {last}-12-31)",
            {"shown": shown, "first": FIRST_YEAR, "last": LAST_YEAR},
        )
    return parsed
