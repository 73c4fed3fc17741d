"""Near-copies of minutes between orgs (照抄): Jaccard similarity of character 3-grams.

Comparing every pair is quadratic (a province holds hundreds of thousands of
minutes), so candidates come from MinHash locality-sensitive hashing: each
text gets 128 min-hashes of its 3-grams (white space removed), cut into 16
bands of 8; two texts sharing at least two bands are candidates, and every
candidate pair is then verified *exactly*.  So a reported similarity is always
exact and nothing below the threshold is ever flagged.  A pair at Jaccard 0.9
is missed with probability 1.6·10⁻³, at 0.92 1.8·10⁻⁴, at 0.95 8.8·10⁻⁷.

Why two bands and not one: minutes share boilerplate (dates, 党支部, 会议要求…),
so unrelated minutes sit at Jaccard 0.2–0.4, and each such pair shares one band
by chance with probability ~10⁻³ — a number of chance candidates that grows
with the square of the province (31 thousand at scale 0.1, 3.1 million at
scale 1, which took 40 s to verify).  Two shared bands by chance at J = 0.3 has
probability 5·10⁻⁷.  The band keys are stored with each meeting at import
(``minutes_sig``), so judging one new meeting looks its candidates up in the
database instead of reading every text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facts.minhash import BANDS, ROWS, codes


@dataclass(frozen=True)
class Text:
    id: str
    org: str
    order: tuple[str, int]  # (date ISO, sequence received): earlier sorts first
    content: str


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if a.size == 0 and b.size == 0:
        return 0.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


#: band keys two texts must share to be compared exactly (see the module's docstring)
MIN_SHARED_BANDS = 2


def miss_probability(
    similarity: float, bands: int = BANDS, rows: int = ROWS, min_shared: int = MIN_SHARED_BANDS
) -> float:
    """The chance that two texts of this Jaccard similarity share fewer than ``min_shared`` bands."""
    p = similarity**rows  # one band's keys agree
    return sum(math.comb(bands, k) * p**k * (1 - p) ** (bands - k) for k in range(min_shared))


def detector_floor(max_miss: float = 0.01) -> float:
    """The lowest similarity (to the hundredth, rounded up) at which a pair is missed at most ``max_miss``
    of the time: a copy threshold below it would report fewer pairs than it promises (0.88 today)."""
    cents = next(c for c in range(1, 101) if miss_probability(c / 100) <= max_miss)
    return cents / 100


def candidate_pairs(
    signatures: Iterable[tuple[str, Sequence[int]]],
    targets: set[str] | None = None,
    min_shared: int = MIN_SHARED_BANDS,
) -> set[tuple[str, str]]:
    """Pairs of ids (a < b) that share at least ``min_shared`` band keys; with ``targets``, only pairs
    with a target.

    Vectorised per band: sort the band's keys, and every run of equal keys is a bucket whose members
    pair up; then count the bands each pair shares.  (A dict of buckets in Python cost ~40 µs a text.)
    """
    ids: list[str] = []
    rows: list[Sequence[int]] = []
    for text_id, band_keys in signatures:
        if len(band_keys):
            ids.append(text_id)
            rows.append(band_keys)
    if len(ids) < 2:
        return set()
    return keyed_pairs(ids, np.array(rows, dtype=np.int64), targets, min_shared)


#: candidate codes (8 bytes each) held at once by :func:`keyed_pairs`: past it, the pairs are counted in rounds
PAIRS_PER_ROUND = 32_000_000
#: buckets of at least this many texts make only each round's pairs (see :func:`keyed_pairs`)
BIG_BUCKET = 64


def keyed_pairs(
    ids: Sequence[Any],
    keys: np.ndarray,
    targets: set[Any] | None = None,
    min_shared: int = MIN_SHARED_BANDS,
    per_round: int = PAIRS_PER_ROUND,
    big: int = BIG_BUCKET,
) -> set[tuple[Any, Any]]:
    """:func:`candidate_pairs` of texts given as their ids and an array of their band keys, a row a text.

    Every pair sharing a band is a code ``i * n + j`` (i < j); the codes of every band are counted and those
    seen in ``min_shared`` bands kept.  Pairs sharing one band by chance grow with the square of the texts
    (3.2 million at scale 1, far more at scale 10, most from a few big buckets of boilerplate), so their
    codes are made in rounds of at most ~``per_round``: round r keeps the pairs whose first text is ``r``
    modulo the rounds.  A pair's bands all fall in one round, so every round's counts are exact; the buckets
    are found once.  A bucket of ``big`` texts or more makes only the round's pairs (most of the pairs are
    there); the many small buckets are paired each round and masked."""
    n = len(ids)
    if n < 2:
        return set()
    wanted = np.fromiter((i in targets for i in ids), dtype=bool, count=n) if targets is not None else None
    buckets: list[np.ndarray] = []  # per band and bucket size: the buckets' members, one row a bucket
    total = 0
    for band in range(keys.shape[1]):
        order = np.argsort(keys[:, band], kind="stable")
        sorted_keys = keys[order, band]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        sizes = np.diff(np.r_[starts, len(order)])
        for size in np.unique(sizes[sizes > 1]).tolist():  # buckets of one size at a time (most hold 2)
            members = order[starts[sizes == size][:, None] + np.arange(size)]
            buckets.append(members)
            total += len(members) * size * (size - 1) // 2
    rounds = max(1, -(-total // per_round))
    out: set[tuple[Any, Any]] = set()
    for r in range(rounds):
        found: list[np.ndarray] = []
        for members in buckets:
            if rounds > 1 and members.shape[1] >= big:
                found.extend(_round_of_big_buckets(members, rounds, r, wanted, n))
                continue
            # a bucket's members are in ascending order (a stable sort of the keys): left < right in each pair
            left, right = np.triu_indices(members.shape[1], 1)
            first, second = members[:, left].ravel(), members[:, right].ravel()
            keep = None if rounds == 1 else first % rounds == r
            if wanted is not None:
                near = wanted[first] | wanted[second]
                keep = near if keep is None else keep & near
            if keep is not None:
                first, second = first[keep], second[keep]
            found.append(first.astype(np.int64) * n + second)
        if not found:
            continue
        codes, shared = np.unique(np.concatenate(found), return_counts=True)
        del found
        i_s, j_s = np.divmod(codes[shared >= min_shared], n)
        for i, j in zip(i_s.tolist(), j_s.tolist(), strict=True):
            a_id, b_id = ids[i], ids[j]
            out.add((a_id, b_id) if a_id < b_id else (b_id, a_id))
    return out


def _round_of_big_buckets(
    members: np.ndarray, rounds: int, r: int, wanted: np.ndarray | None, n: int
) -> list[np.ndarray]:
    """The codes of round ``r`` from buckets of one (big) size, a row a bucket in ascending order: the pairs
    whose first text is ``r`` modulo ``rounds``, made directly rather than made all and masked."""
    size = members.shape[1]
    out: list[np.ndarray] = []
    for row in members:
        at = np.flatnonzero(row[: size - 1] % rounds == r)  # the first texts' places in the bucket
        if not len(at):
            continue
        lengths = size - 1 - at  # each pairs with every later text of the bucket
        starts = np.cumsum(lengths) - lengths
        later = np.arange(int(lengths.sum())) - np.repeat(starts, lengths) + np.repeat(at + 1, lengths)
        first, second = np.repeat(row[at], lengths), row[later]
        if wanted is not None:
            keep = wanted[first] | wanted[second]
            first, second = first[keep], second[keep]
        out.append(first.astype(np.int64) * n + second)
    return out


def earlier_copies(
    texts: Sequence[Text], targets: set[str], threshold: float, pairs: Iterable[tuple[str, str]]
) -> dict[str, tuple[float, str]]:
    """For each target id: (best exact similarity ≥ threshold, id of the earlier text of another org).

    Only the candidate ``pairs`` are compared.  Targets without such an earlier
    near-copy are absent from the result.
    """
    by_id = {t.id: t for t in texts}
    sets: dict[str, np.ndarray] = {}
    best: dict[str, tuple[float, str]] = {}
    for a, b in pairs:
        ta, tb = by_id.get(a), by_id.get(b)
        if ta is None or tb is None or ta.org == tb.org:
            continue
        later, earlier = (ta, tb) if ta.order > tb.order else (tb, ta)
        if later.id not in targets:
            continue
        for t in (ta, tb):
            if t.id not in sets:
                sets[t.id] = codes(t.content)
        sim = jaccard(sets[later.id], sets[earlier.id])
        if sim >= threshold and (later.id not in best or sim > best[later.id][0]):
            best[later.id] = (sim, earlier.id)
    return best
