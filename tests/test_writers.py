"""facts.writers: JSON Lines and CSV export, and the export → import round trip."""

from __future__ import annotations

import io
import tempfile
from datetime import date
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from facts.errors import FieldProblem, Location
from facts.models import MODELS, TYPE_ORDER, FactBase, canonical
from facts.readers import read_file
from facts.validate import validate_object
from facts.writers import UnwritableFactError, write_csv, write_jsonl

MEETING = {
    "type": "meeting",
    "id": "b1-2017-06-cm",
    "org": "b1",
    "kind": "committee_meeting",
    "date": "2017-06-27",
    "attendees": ["m01", "m02"],
    "on_leave": [{"member": "m03", "reason": "出差", "opinion_given": True}],
    "minutes": {"time": "15:00-16:30", "place": "三楼会议室", "content": "传达学习……"},
}
DUES = {
    "type": "dues",
    "member": "m01",
    "month": "2017-06",
    "amount": 45.0,
    "paid_on": "2017-06-20",
    "base": 4500.0,
}


def _read_back(paths: list[Path]) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        for item in read_file(path):
            assert not isinstance(item, FieldProblem), str(item)
            location, raw = item
            fact = validate_object(raw, location)
            assert isinstance(fact, FactBase), [str(p) for p in fact]
            out.append(canonical(fact))
    return out


def test_write_jsonl_writes_one_unescaped_object_per_line() -> None:
    out = io.StringIO()
    assert write_jsonl([MEETING, DUES], out) == 2
    lines = out.getvalue().split("\n")
    assert lines[2] == ""
    assert lines[1] == (
        '{"type":"dues","member":"m01","month":"2017-06","amount":45.0,"paid_on":"2017-06-20","base":4500.0}'
    )
    assert "三楼会议室" in lines[0]


def test_write_jsonl_refuses_values_json_lacks() -> None:
    with pytest.raises(UnwritableFactError, match="fact #2"):
        write_jsonl([DUES, {**DUES, "amount": float("nan")}], io.StringIO())


def test_write_csv_one_file_per_type_in_type_order_with_model_columns(tmp_path: Path) -> None:
    paths = write_csv([MEETING, DUES, {**DUES, "month": "2017-07"}], tmp_path / "out")
    assert [p.name for p in paths] == ["meetings.csv", "dues.csv"]
    raw = paths[0].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel on Chinese Windows then reads it as UTF-8
    header, row = raw.decode("utf-8-sig").splitlines()[:2]
    assert header == (
        "id,org,kind,date,topics,host,lecturer,attendees,on_leave,absent,minutes.time,minutes.place,"
        "minutes.recorder,minutes.agenda,minutes.content,minutes.outcome,source,note"
    )
    assert (
        row
        == "b1-2017-06-cm,b1,committee_meeting,2017-06-27,,,,m01;m02,m03:出差:true,,15:00-16:30,三楼会议室,,,传达学习……,,,"
    )
    assert len(paths[1].read_text(encoding="utf-8-sig").splitlines()) == 3
    assert _read_back(paths) == [MEETING, DUES, {**DUES, "month": "2017-07"}]


def test_write_csv_refuses_unknown_types_and_fields(tmp_path: Path) -> None:
    with pytest.raises(UnwritableFactError, match="unknown type 'meetings'"):
        write_csv([{**MEETING, "type": "meetings"}], tmp_path)
    with pytest.raises(UnwritableFactError, match="no column for minutes.contnet"):
        write_csv([{**MEETING, "minutes": {"contnet": "x"}}], tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


# --- the round trip --------------------------------------------------------------------------

# Any text at all, CJK, separators, escapes, quotes, newlines and edge whitespace included.
# Not the empty string: in a table an empty cell and an absent field are the same (documented).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=8) | st.sampled_from(
    ["m;1", " a ", "x\\", "：；", "a:true", "\r\n", '"', "，、", "\u3000党\u2028"]
)
IDS = TEXT.filter(lambda s: bool(s.strip()))
EARLY = st.dates(date(1950, 1, 1), date(1999, 12, 31)).map(date.isoformat)
LATE = st.dates(date(2000, 1, 1), date(2035, 12, 31)).map(date.isoformat)
DATES = EARLY | LATE
AMOUNTS = st.floats(0, 1e9, allow_nan=False) | st.decimals(0, 10_000, places=2).map(float)


def _literal(type_name: str, field: str) -> st.SearchStrategy[str]:
    return st.sampled_from(list(get_args(MODELS[type_name].model_fields[field].annotation)))


def _fact(type_name: str, required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[dict]:
    common = {"source": TEXT, "note": TEXT}
    return st.fixed_dictionaries({"type": st.just(type_name), **required}, optional={**optional, **common})


LEAVE = st.fixed_dictionaries({"member": IDS}, optional={"reason": TEXT, "opinion_given": st.booleans()})
MINUTES = st.fixed_dictionaries(
    {}, optional={k: TEXT for k in ("time", "place", "recorder", "agenda", "content", "outcome")}
).filter(bool)  # an object with no fields at all reads back as no minutes (documented)

FACTS = st.one_of(
    _fact(
        "org",
        {"id": IDS, "name": IDS, "kind": _literal("org", "kind")},
        {"parent": IDS, "established": EARLY, "dissolved": LATE, "term_years": st.integers(1, 10)},
    ),
    _fact(
        "member",
        {"id": IDS, "name": IDS, "org": IDS},
        {
            "status": st.sampled_from(["full", "probationary", "non_member"]),
            "category": st.sampled_from(["in_service", "retired", "student", "other"]),
            "joined": EARLY,
            "left": LATE,
            "roles": st.lists(st.sampled_from(["branch_secretary", "unit_head", "leader"]), max_size=3),
            "unit": IDS,
            "extra_orgs": st.lists(IDS, max_size=3),
        },
    ),
    _fact(
        "meeting",
        {"id": IDS, "org": IDS, "kind": _literal("meeting", "kind"), "date": DATES},
        {
            "topics": st.lists(IDS, max_size=3),
            "host": IDS,
            "lecturer": IDS,
            "attendees": st.lists(IDS, max_size=4, unique=True),
            "on_leave": st.lists(LEAVE, max_size=3),
            "absent": st.lists(IDS, max_size=3),
            "minutes": MINUTES,
        },
    ),
    _fact(
        "dues",
        {
            "member": IDS,
            "month": st.builds("{:04d}-{:02d}".format, st.integers(1990, 2030), st.integers(1, 12)),
            "amount": AMOUNTS,
            "paid_on": DATES,
        },
        {"base": AMOUNTS},
    ),
    _fact("signoff", {"document": IDS, "date": DATES, "unit": IDS}, {"signer": IDS}),
    _fact(
        "interview",
        {"date": DATES, "interviewer": IDS, "interviewee": IDS, "kind": _literal("interview", "kind")},
        {"topic": TEXT},
    ),
    _fact(
        "petition",
        {"id": IDS, "received": EARLY},
        {"registered": LATE, "accepted": LATE, "closed": LATE, "subject": TEXT},
    ),
    _fact("election", {"org": IDS, "date": DATES}, {"term_years": st.integers(1, 10)}),
    _fact("field_visit", {"member": IDS, "date": DATES}, {"place": TEXT, "topic": TEXT}),
    _fact("declaration", {"member": IDS, "year": st.integers(1990, 2035), "filed": DATES}, {}),
    _fact("promotion", {"member": IDS, "date": DATES}, {"position": TEXT}),
)


def _canonical_facts(raws: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for raw in raws:
        fact = validate_object(raw, Location("generated", 1))
        assume(isinstance(fact, FactBase))  # model rules (disjoint attendance, …) reject a few
        assert isinstance(fact, FactBase)
        out.append(canonical(fact))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(FACTS, min_size=1, max_size=6))
def test_csv_round_trip(raws: list[dict[str, Any]]) -> None:
    originals = _canonical_facts(raws)
    with tempfile.TemporaryDirectory() as folder:
        back = _read_back(write_csv(originals, Path(folder)))
    by_type = sorted(originals, key=lambda f: TYPE_ORDER.index(f["type"]))  # stable: order within a type kept
    assert back == by_type


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(FACTS, min_size=1, max_size=6))
def test_jsonl_round_trip(raws: list[dict[str, Any]]) -> None:
    originals = _canonical_facts(raws)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "facts.jsonl"
        with path.open("w", encoding="utf-8") as out:
            write_jsonl(originals, out)
        assert _read_back([path]) == originals
