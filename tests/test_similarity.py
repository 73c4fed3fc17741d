"""Near-copy detection of minutes: exact against a brute-force pairwise reference."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.subjects.similarity import Text, earlier_copies, jaccard, shingles

BASE = "传达学习习近平新时代中国特色社会主义思想，研究部署本支部第二季度党建工作，讨论发展党员工作计划。"


def brute(texts, targets, threshold):
    out = {}
    sets = {t.id: shingles(t.content) for t in texts}
    for t in texts:
        if t.id not in targets:
            continue
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


def test_the_later_of_two_near_copies_in_different_orgs_is_the_copy():
    texts = [
        Text("a", "b1", ("2017-03-01", 1), BASE),
        Text("b", "b2", ("2017-03-05", 2), BASE.replace("第二", "第三")),
        Text("c", "b1", ("2017-03-09", 3), BASE),  # same org: not a copy of a
        Text("d", "b3", ("2017-03-09", 4), "完全不同的内容，讨论了党费收缴和主题党日安排。"),
    ]
    found = earlier_copies(texts, {"a", "b", "c", "d"}, 0.8)
    assert set(found) == {"b", "c"}
    assert found["b"][1] == "a"
    assert found["c"][1] == "b"  # c (b1) copies b (b2), the earlier text of another org


def test_same_day_ties_go_by_order_received():
    texts = [Text("x", "o1", ("2017-01-01", 5), BASE), Text("y", "o2", ("2017-01-01", 6), BASE)]
    assert set(earlier_copies(texts, {"x", "y"}, 0.9)) == {"y"}


words = ["党建", "学习", "部署", "讨论", "发展", "党员", "工作", "计划", "传达", "会议", "精神", "落实"]


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0.5, max_value=0.95))
def test_prefix_filtering_finds_exactly_what_brute_force_finds(seed, threshold):
    rnd = random.Random(seed)
    texts = []
    for i in range(25):
        if texts and rnd.random() < 0.4:
            src = rnd.choice(texts).content
            chars = list(src)
            for _ in range(rnd.randint(0, 4)):
                chars[rnd.randrange(len(chars))] = rnd.choice("的了和在")
            content = "".join(chars)
        else:
            content = "".join(rnd.choice(words) for _ in range(rnd.randint(5, 20)))
        texts.append(Text(f"t{i}", f"o{rnd.randint(1, 4)}", (f"2017-01-{rnd.randint(1, 28):02d}", i), content))
    targets = {t.id for t in texts}
    fast = earlier_copies(texts, targets, threshold)
    slow = brute(texts, targets, threshold)
    assert {k: round(v[0], 9) for k, v in fast.items()} == {k: round(v[0], 9) for k, v in slow.items()}
