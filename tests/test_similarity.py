"""Near-copy detection of minutes: MinHash candidates verified exactly, against brute force."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.subjects.similarity import Text, candidate_pairs, earlier_copies, jaccard
from facts.minhash import BANDS, band_keys, codes

BASE = "传达学习习近平新时代中国特色社会主义思想，研究部署本支部第二季度党建工作，讨论发展党员工作计划。" * 3


def find(texts, threshold):
    sigs = band_keys([t.content for t in texts])
    pairs = candidate_pairs((t.id, k) for t, k in zip(texts, sigs, strict=True))
    return earlier_copies(texts, {t.id for t in texts}, threshold, pairs)


def brute(texts, threshold):
    out = {}
    sets = {t.id: codes(t.content) for t in texts}
    for t in texts:
        best = None
        for o in texts:
            if o.org == t.org or o.order >= t.order:
                continue
            s = jaccard(sets[t.id], sets[o.id])
            if s >= threshold and (best is None or s > best[0]):
                best = (s, o.id)
        if best:
            out[t.id] = best
    return out


def test_band_keys_are_stable_and_whitespace_blind():
    a, b = band_keys([BASE, BASE.replace("，", " ， ")])[0], band_keys([BASE])[0]
    assert len(a) == BANDS and a == b
    assert band_keys(["", "  "]) == [[], []]


def test_the_later_of_two_near_copies_in_different_orgs_is_the_copy():
    texts = [
        Text("a", "b1", ("2017-03-01", 1), BASE),
        Text("b", "b2", ("2017-03-05", 2), BASE.replace("第二", "第三", 1)),
        Text("c", "b1", ("2017-03-09", 3), BASE),
        Text("d", "b3", ("2017-03-09", 4), "完全不同的内容，讨论了党费收缴和主题党日安排。"),
    ]
    found = find(texts, 0.8)
    assert set(found) == {"b", "c"}
    assert found["b"][1] == "a"
    assert found["c"][1] == "b"  # c (org b1) repeats b (org b2), the earlier text of another org


def test_same_day_ties_go_by_order_received():
    texts = [Text("x", "o1", ("2017-01-01", 5), BASE), Text("y", "o2", ("2017-01-01", 6), BASE)]
    assert set(find(texts, 0.9)) == {"y"}


words = ["党建", "学习", "部署", "讨论", "发展", "党员", "工作", "计划", "传达", "会议", "精神", "落实", "廉政", "调研"]


@settings(max_examples=40, deadline=None, derandomize=True)  # the same 40 provinces on every run: no flaky CI
@given(st.integers(min_value=0, max_value=10_000))
def test_never_a_false_finding_and_every_clear_copy_found(seed):
    rnd = random.Random(seed)
    texts = []
    for i in range(30):
        if texts and rnd.random() < 0.4:
            chars = list(rnd.choice(texts).content)
            for _ in range(rnd.randint(0, 3)):
                chars[rnd.randrange(len(chars))] = rnd.choice("的了和在")
            content = "".join(chars)
        else:
            content = "".join(rnd.choice(words) for _ in range(rnd.randint(30, 60)))
        texts.append(Text(f"t{i}", f"o{rnd.randint(1, 4)}", (f"2017-01-{rnd.randint(1, 28):02d}", i), content))
    threshold = 0.8
    fast, slow = find(texts, threshold), brute(texts, threshold)
    # exact verification: whatever is found is real — an earlier text of another org at exactly the similarity
    # reported — and never better than the truth (MinHash may miss the best source and find a lesser one)
    by_id = {t.id: t for t in texts}
    for k, (sim, src) in fast.items():
        text, source = by_id[k], by_id[src]
        assert source.org != text.org and source.order < text.order
        assert abs(sim - jaccard(codes(text.content), codes(source.content))) < 1e-12 and sim >= threshold
        assert k in slow and sim <= slow[k][0] + 1e-12
    # MinHash recall: a near-duplicate at Jaccard >= 0.95 is missed with probability ~9e-7 (two shared bands)
    assert {k for k, v in slow.items() if v[0] >= 0.95} <= set(fast)


def test_texts_sharing_a_single_band_are_not_candidates():
    base = list(range(100, 100 + BANDS))
    one = [base[0], *range(200, 200 + BANDS - 1)]  # shares band 0 only: boilerplate-alike, by chance
    two = [base[0], base[1], *range(300, 300 + BANDS - 2)]  # shares bands 0 and 1
    pairs = candidate_pairs([("a", base), ("b", one), ("c", two), ("d", [])])
    assert pairs == {("a", "c")}
    assert candidate_pairs([("a", base), ("b", one)], min_shared=1) == {("a", "b")}
    assert candidate_pairs([("a", base), ("c", two), ("x", base)], targets={"x"}) == {("a", "x"), ("c", "x")}


def test_two_shared_bands_remove_the_chance_candidates_of_boilerplate_minutes():
    # minutes that all share boilerplate (Jaccard ~0.3 between unrelated ones), none copied
    rnd = random.Random(3)
    phrases = [f"{w}{rnd.choice(words)}{rnd.choice(words)}" for w in words for _ in range(6)]

    def candidates(n, min_shared):
        texts = ["2017年支部召开会议，" + "，".join(rnd.sample(phrases, 25)) for _ in range(n)]
        return len(candidate_pairs(zip(map(str, range(n)), band_keys(texts), strict=True), min_shared=min_shared))

    one_small, one_large = candidates(400, 1), candidates(1600, 1)
    assert one_large > 10 * one_small  # one shared band: chance pairs grow with the square of the texts
    assert candidates(1600, 2) * 50 < one_large  # two: almost none are left to verify


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.lists(st.integers(0, 3), min_size=BANDS, max_size=BANDS), min_size=0, max_size=40),
    per_round=st.integers(1, 200),
    big=st.integers(2, 12),
    with_targets=st.booleans(),
    min_shared=st.integers(1, 3),
)
def test_pairs_counted_in_rounds_are_those_counted_at_once(keys, per_round, big, with_targets, min_shared):
    """Band keys from a tiny alphabet make big buckets (boilerplate): however few candidate codes a round may
    hold, and whichever buckets count as big (their pairs made a round at a time), the pairs are exactly
    those counted in one round, with and without targets."""
    import numpy as np

    from engine.subjects.similarity import keyed_pairs

    ids = [f"t{i:02d}" for i in range(len(keys))]
    array = np.array(keys, dtype=np.int64).reshape(len(keys), BANDS)
    targets = set(ids[::3]) if with_targets else None
    once = keyed_pairs(ids, array, targets, min_shared, per_round=10**9)
    assert keyed_pairs(ids, array, targets, min_shared, per_round=per_round, big=big) == once
    # and both are what a pair-by-pair count says
    expected = {
        (a, b)
        for i, a in enumerate(ids)
        for j, b in enumerate(ids)
        if i < j
        and (targets is None or a in targets or b in targets)
        and sum(x == y for x, y in zip(keys[i], keys[j], strict=True)) >= min_shared
    }
    assert once == expected
