"""Copy-check candidate pairs found once for a whole check (查找雷同会议记录的候选对，整次检查只找一次).

The copy check (``meeting.minutes.copied``) compares a meeting's minutes only with the meetings whose
stored signatures share at least :data:`~engine.subjects.similarity.MIN_SHARED_BANDS` band keys with its
own.  A partition of a forked check used to look its targets' partners up in SQL (16 index probes a
target): at scale 1, ~2.1 s in each of 6 partitions, the largest statement of each — ~13 s of CPU for
pairs that do not depend on the partition.  Reading every signature once and pairing them in numpy
takes ~3–4 s in all, and is done beside the screen and the plan (:func:`engine.evaluate.screen_and_plan`);
each partition then picks the pairs of its own targets (:meth:`CopyPairs.of`).

The answer is the same either way: :func:`engine.subjects.single.copy_candidates` finds, for given
targets, exactly the pairs of :func:`every_pair` that hold one of them (``tests/test_copy_pairs.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from engine.subjects.similarity import keyed_pairs
from facts import tables as t
from facts.minhash import BANDS

_SIG = t.MinutesSigRow.__table__  # type: ignore[attr-defined]
_BLOCK = 50_000  # signatures read at a time
#: a check whose span holds more than 1/JOIN_SHARE of the stored signatures reads them all instead of
#: looking its targets' partners up (one look-up a band a target costs more past that share)
JOIN_SHARE = 4


@dataclass(frozen=True)
class CopyPairs:
    """Every candidate pair of stored signatures, as each meeting's partners."""

    partners: dict[str, tuple[str, ...]]

    def of(self, targets: Collection[str]) -> set[tuple[str, str]]:
        """The pairs (a < b) holding one of ``targets``: what ``copy_candidates(conn, targets)`` finds."""
        out: set[tuple[str, str]] = set()
        for a in targets:
            for b in self.partners.get(a, ()):
                out.add((a, b) if a < b else (b, a))
        return out

    def __len__(self) -> int:
        return sum(map(len, self.partners.values())) // 2


def every_pair(conn: sa.Connection) -> CopyPairs:
    """Every candidate pair of the stored signatures, read in blocks into one int64 array.

    On SQLite a signature is read as its ``rowid`` with its band keys (integers only: no Python string a
    row), and only the meetings of the pairs found are named afterwards."""
    sqlite = conn.dialect.name == "sqlite"
    bands = ", ".join(f"b{i}" for i in range(BANDS))
    refs: list[Any] = []
    blocks: list[np.ndarray] = []
    if sqlite:  # the driver's cursor: plain tuples of ints, ~3x faster into numpy than result rows
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(f"SELECT rowid, {bands} FROM {_SIG.name}")
            while rows := cursor.fetchmany(_BLOCK):
                block = np.array(rows, dtype=np.int64)
                refs.extend(block[:, 0].tolist())
                blocks.append(block[:, 1:])
        finally:
            cursor.close()
    else:
        result = conn.execute(
            sa.select(_SIG.c.meeting, *(_SIG.c[f"b{i}"] for i in range(BANDS))).execution_options(yield_per=_BLOCK)
        )
        for part in result.partitions():
            refs.extend(r[0] for r in part)
            blocks.append(np.array([r[1:] for r in part], dtype=np.int64))
    if not blocks:
        return CopyPairs({})
    pairs = keyed_pairs(refs, np.concatenate(blocks))
    if sqlite:
        name = meetings_of_rowids(conn, {r for pair in pairs for r in pair})
        pairs = {(name[a], name[b]) for a, b in pairs}
    partners: dict[str, list[str]] = defaultdict(list)
    for a, b in pairs:
        partners[a].append(b)
        partners[b].append(a)
    return CopyPairs({m: tuple(found) for m, found in partners.items()})


def meetings_of_rowids(conn: sa.Connection, rowids: Collection[int]) -> dict[int, str]:
    """SQLite: the meeting id of each stored signature's ``rowid`` (what the band indexes hold)."""
    wanted = sorted(rowids)
    name: dict[int, str] = {}
    rowid: Any = sa.literal_column("rowid")
    for start in range(0, len(wanted), 500):
        found = conn.execute(sa.select(rowid, _SIG.c.meeting).where(rowid.in_(wanted[start : start + 500])))
        name.update((r, m) for r, m in found)
    return name


def judges_copies(when: str) -> bool:
    """Whether a rule's condition reads ``copy_similarity`` (so its meetings need copy candidates)."""
    return "copy_similarity" in when


def worth_once(conn: sa.Connection, start: object, end: object) -> bool:
    """Whether a forked check of the meetings dated ``start``–``end`` should find every pair once
    (:func:`every_pair`) rather than each partition look up its own: the span's meetings are more than
    1/:data:`JOIN_SHARE` of the stored signatures."""
    m = t.MeetingRow.__table__  # type: ignore[attr-defined]
    stored = conn.execute(sa.select(sa.func.count()).select_from(_SIG)).scalar_one()
    if not stored:
        return False
    in_span = conn.execute(
        sa.select(sa.func.count()).select_from(m).where(m.c.date >= start, m.c.date <= end)
    ).scalar_one()
    return bool(in_span * JOIN_SHARE > stored)
