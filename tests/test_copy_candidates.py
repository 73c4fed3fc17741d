"""Copy detection's candidates found from the targets' band keys in SQL (SQLite and PostgreSQL): exactly the
pairs of :func:`candidate_pairs` over every stored signature, at a cost that does not grow with the table."""

from __future__ import annotations

import datetime as dt
import random

import sqlalchemy as sa

from engine.app import STANDARD_PACK
from engine.pack.load import load_pack
from engine.subjects.base import BuildContext
from engine.subjects.copy_pairs import every_pair
from engine.subjects.registry import Registry
from engine.subjects.similarity import candidate_pairs
from engine.subjects.single import _copies, _joined_pairs, copy_candidates
from facts import tables as t
from facts.errors import Location
from facts.minhash import BANDS
from facts.store import FactStore

SIG = t.MinutesSigRow.__table__  # type: ignore[attr-defined]
WORDS = ["党建", "学习", "部署", "讨论", "发展", "党员", "工作", "计划", "传达", "会议", "精神", "落实", "廉政", "调研"]


def _all_rows_pairs(conn: sa.Connection, targets: set[str]) -> set[tuple[str, str]]:
    """What copy detection did before: every stored signature read, the pairs found in numpy."""
    rows = conn.execute(sa.select(SIG.c.meeting, *(SIG.c[f"b{i}"] for i in range(BANDS)))).all()
    return candidate_pairs(((r[0], r[1:]) for r in rows), targets)


def _province(engine: sa.Engine, seed: int) -> list[dict]:
    """Six orgs' minutes: boilerplate from a small vocabulary (chance band sharing), and near-copies of
    earlier minutes across orgs and within one (a few characters changed)."""
    rnd = random.Random(seed)
    orgs = [{"type": "org", "id": "oc", "name": "机关党委", "kind": "organ_committee"}] + [
        {"type": "org", "id": f"b{i}", "name": f"第{i}支部", "kind": "branch", "parent": "oc"} for i in range(1, 7)
    ]
    meetings: list[dict] = []
    for i in range(240):
        if meetings and rnd.random() < 0.4:
            chars = list(rnd.choice(meetings)["minutes"]["content"])
            for _ in range(rnd.randint(0, 4)):
                chars[rnd.randrange(len(chars))] = rnd.choice("的了和在")
            content = "".join(chars)
        else:
            content = "支部召开会议，" + "".join(rnd.choice(WORDS) for _ in range(rnd.randint(20, 50)))
        meetings.append({
            "type": "meeting", "id": f"m{i:03d}", "org": f"b{rnd.randint(1, 6)}", "kind": "theme_day",
            "date": f"2017-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}", "minutes": {"content": content},
        })  # fmt: skip
    meetings.append(dict(meetings[0], id="m-empty", minutes={"content": "  "}))  # no signature stored
    store = FactStore(engine)
    store.create_schema()
    report = store.import_items((Location("f", i), o) for i, o in enumerate([*orgs, *meetings]))
    assert report.rejected == 0
    return meetings


def test_the_targets_pairs_are_exactly_those_of_every_signature_read(db_engine):
    meetings = _province(db_engine, seed=7)
    ids = [m["id"] for m in meetings]
    by_org = {m["id"]: m["org"] for m in meetings}
    rnd = random.Random(1)
    target_sets = [
        set(),
        {"m-empty", "no-such-meeting"},
        {ids[5]},
        {i for i in ids if by_org[i] in ("b1", "b4")},  # a partition's meetings, copies into and out of it
        set(rnd.sample(ids, 60)),
        set(ids),
    ]
    with db_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(SIG)).scalar() == 240
        everyone = every_pair(conn)  # found once for a whole check, each partition picking its targets'
        for targets in target_sets:
            expected = _all_rows_pairs(conn, targets)
            # the look-up from the targets' band keys, every pair found once, and the choice between them
            assert _joined_pairs(conn, targets) == expected
            assert everyone.of(targets) == expected
            assert copy_candidates(conn, targets) == expected
        assert len(everyone) == len(_all_rows_pairs(conn, set(ids)))
        assert len(_all_rows_pairs(conn, set(ids))) > 50  # the near-copies are there to be found


def test_a_pair_needs_two_bands_shared_band_by_band(db_engine):
    FactStore(db_engine).create_schema()
    base = list(range(100, 100 + BANDS))
    rows = {
        "a": base,
        "b": [base[0], *range(200, 200 + BANDS - 1)],  # shares band 0 only
        "c": [base[0], base[1], *range(300, 300 + BANDS - 2)],  # shares bands 0 and 1
        "d": [base[1], base[0], *range(400, 400 + BANDS - 2)],  # a's keys, but in each other's bands
        "x": base,  # all sixteen
    }
    with db_engine.begin() as conn:
        conn.execute(sa.insert(SIG), [{"meeting": k, **{f"b{i}": v[i] for i in range(BANDS)}} for k, v in rows.items()])
    with db_engine.connect() as conn:
        assert copy_candidates(conn, {"a"}) == {("a", "c"), ("a", "x")}
        assert copy_candidates(conn, {"a", "x"}) == {("a", "c"), ("a", "x"), ("c", "x")}
        assert copy_candidates(conn, {"b", "d"}) == set()
        for targets in ({"a"}, {"a", "x"}, {"b", "d"}, set(rows)):
            assert _joined_pairs(conn, targets) == every_pair(conn).of(targets) == _all_rows_pairs(conn, targets)


def _vm_steps(engine: sa.Engine, targets: set[str]) -> int:
    """SQLite virtual-machine steps (in thousands) copy detection takes for ``targets``."""
    rule = next(r for r in load_pack(STANDARD_PACK).rules if r.id == "meeting.minutes.copied")
    steps = 0

    def tick() -> int:
        nonlocal steps
        steps += 1
        return 0

    with engine.connect() as conn:
        ctx = BuildContext(conn, Registry.load(conn), dt.date(2018, 3, 1))
        raw = conn.connection.driver_connection
        raw.set_progress_handler(tick, 1000)
        try:
            assert _copies(ctx, rule.rule.subject, dt.date(2017, 12, 31), targets) == {}
        finally:
            raw.set_progress_handler(None, 1000)
    return steps


def test_a_partitions_copy_check_does_not_read_the_whole_province(sqlite_engine):
    """The work of finding a few hundred targets' candidates stays the same when the stored signatures
    around them grow fourfold (reading every signature, as before, grew with them)."""
    FactStore(sqlite_engine).create_schema()
    rnd = random.Random(5)
    targets = {f"t{i:04d}" for i in range(300)}
    steps = []
    stored = 0
    for size in (6_000, 24_000):
        with sqlite_engine.begin() as conn:
            conn.execute(
                sa.insert(SIG),
                [
                    {"meeting": f"t{i:04d}" if i < 300 else f"o{i:05d}", **{f"b{b}": rnd.getrandbits(63) for b in range(BANDS)}}
                    for i in range(stored, size)
                ],
            )
        stored = size
        steps.append(_vm_steps(sqlite_engine, targets))
    assert steps[0] > 0
    assert steps[1] < 1.5 * steps[0], steps
