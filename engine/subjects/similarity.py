"""Near-copies of minutes between orgs (照抄): Jaccard similarity of character 3-grams.

Comparing every pair is quadratic (a province holds hundreds of thousands of
minutes), so candidates come from MinHash locality-sensitive hashing: each
text gets 128 min-hashes of its 3-grams (white space removed), cut into 16
bands of 8; two texts sharing a band are candidates, and every candidate pair
is then verified *exactly*.  So a reported similarity is always exact and
nothing below the threshold is ever flagged; a pair at Jaccard 0.9 is missed
with probability (1 − 0.9⁸)¹⁶ ≈ 1.2·10⁻⁴, at 0.95 ≈ 2.8·10⁻⁸.  The band keys
are stored with each meeting at import (``minutes_sig``), so judging one new
meeting looks its candidates up in the database instead of reading every text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from facts.minhash import codes


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


def candidate_pairs(signatures: Iterable[tuple[str, Sequence[int]]]) -> set[tuple[str, str]]:
    """Pairs of ids (a < b) that share at least one band key."""
    buckets: dict[tuple[int, int], list[str]] = defaultdict(list)
    for text_id, keys in signatures:
        for band, key in enumerate(keys):
            buckets[(band, key)].append(text_id)
    pairs: set[tuple[str, str]] = set()
    for ids in buckets.values():
        if len(ids) > 1:
            for i, a in enumerate(ids):
                for b in ids[i + 1 :]:
                    pairs.add((a, b) if a < b else (b, a))
    return pairs


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
