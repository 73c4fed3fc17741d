"""Near-copies of minutes between orgs (照抄): Jaccard similarity of character shingles.

Finding every pair above a threshold does not compare every pair: with
*prefix filtering* (Chaudhuri et al., 2006; Bayardo et al., 2007) each text
indexes only the rarest ``n - ceil(t * n) + 1`` of its ``n`` shingles; two
texts with Jaccard ≥ t must share one of those, so the candidates are exact
(no false negatives) and few.  Each candidate pair is then verified exactly.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Text:
    id: str
    org: str
    order: tuple[str, int]  # (date ISO, sequence received): earlier sorts first
    content: str


def shingles(content: str, k: int = 3) -> frozenset[str]:
    """Character k-grams of the text with white space removed."""
    s = _SPACE.sub("", content)
    if len(s) < k:
        return frozenset([s]) if s else frozenset()
    return frozenset(s[i : i + k] for i in range(len(s) - k + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def earlier_copies(
    texts: Sequence[Text], targets: set[str], threshold: float, k: int = 3
) -> dict[str, tuple[float, str]]:
    """For each target id: (best similarity ≥ threshold, id of the earlier text of another org).

    Targets without such an earlier near-copy are absent from the result.
    """
    sets = {t.id: shingles(t.content, k) for t in texts}
    freq: Counter[str] = Counter()
    for s in sets.values():
        freq.update(s)
    index: dict[str, list[str]] = defaultdict(list)
    by_id = {t.id: t for t in texts}
    for t in texts:
        s = sets[t.id]
        if not s:
            continue
        ordered = sorted(s, key=lambda g: (freq[g], g))
        prefix = len(s) - math.ceil(threshold * len(s)) + 1
        for g in ordered[:prefix]:
            index[g].append(t.id)
    best: dict[str, tuple[float, str]] = {}
    for target in targets:
        t = by_id.get(target)
        if t is None or not sets[target]:
            continue
        s = sets[target]
        ordered = sorted(s, key=lambda g: (freq[g], g))
        prefix = len(s) - math.ceil(threshold * len(s)) + 1
        seen: set[str] = set()
        for g in ordered[:prefix]:
            for other_id in index[g]:
                if other_id in seen or other_id == target:
                    continue
                seen.add(other_id)
                other = by_id[other_id]
                if other.org == t.org or other.order >= t.order:
                    continue
                other_set = sets[other_id]
                # size filter: |A|/|B| must be within [t, 1/t] for Jaccard >= t
                if min(len(s), len(other_set)) < threshold * max(len(s), len(other_set)):
                    continue
                sim = jaccard(s, other_set)
                if sim >= threshold and (target not in best or sim > best[target][0]):
                    best[target] = (sim, other_id)
    return best
