"""Partitions of a check: top-level org subtrees, sized by their fact counts and packed into balanced bins.

A subtree is the unit (a department and everything under it: its members attend, pay and are judged
inside it), so a partition never splits one.  The size of a subtree is the number of fact rows that the
subject builders read for it: its members, their dues, its meetings and their attendance lists.  Bins
are filled largest subtree first into the lightest bin (LPT), which is within 4/3 of the best balance.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, replace

import sqlalchemy as sa

from engine.subjects.base import StoreFirsts
from engine.subjects.registry import Registry
from facts import tables as t


@dataclass(frozen=True)
class Partition:
    index: int
    roots: tuple[str, ...]  # top-level org ids
    facts: int  # fact rows under them (the planned size)
    orphans: bool = False  # also the subjects that have no org (exactly one partition has them)
    # every org of its subtrees under today's parents: a task loads the registry of these only (with their
    # members, and the members transferred into or out of them), not the whole registry
    orgs: tuple[str, ...] = ()
    # the store's first records, found once for every partition (a forked check's plan); None: each
    # partition finds them itself
    firsts: StoreFirsts | None = None


def root_of(registry: Registry, org_id: str) -> str:
    path = registry.path(org_id)
    return path[0] if path else org_id


def subtree_sizes(conn: sa.Connection, registry: Registry) -> dict[str, int]:
    """Fact rows per top-level org: members, dues, meetings and attendance rows of its subtree.

    Every top-level org of the registry is present (an empty department weighs 1, so it is still judged).
    """
    m = t.MemberRow.__table__  # type: ignore[attr-defined]
    d = t.DuesRow.__table__  # type: ignore[attr-defined]
    mt = t.MeetingRow.__table__  # type: ignore[attr-defined]
    a = t.AttendanceRow.__table__  # type: ignore[attr-defined]
    per_org: dict[str, int] = defaultdict(int)
    queries = [
        sa.select(m.c.org, sa.func.count()).group_by(m.c.org),
        sa.select(m.c.org, sa.func.count()).select_from(d.join(m, d.c.member == m.c.id)).group_by(m.c.org),
        sa.select(mt.c.org, sa.func.count()).group_by(mt.c.org),
        sa.select(mt.c.org, sa.func.count()).select_from(a.join(mt, a.c.meeting == mt.c.id)).group_by(mt.c.org),
    ]
    for query in queries:
        for org, n in conn.execute(query):
            per_org[org] += int(n)
    sizes = {root_of(registry, o): 1 for o in registry.orgs}
    for org, n in per_org.items():
        root = root_of(registry, org)
        sizes[root] = sizes.get(root, 1) + n
    return sizes


def with_orgs(parts: list[Partition], registry: Registry) -> list[Partition]:
    """``parts`` with the orgs of their subtrees (:attr:`Partition.orgs`)."""
    by_root: dict[str, list[str]] = defaultdict(list)
    for org in registry.orgs:
        by_root[root_of(registry, org)].append(org)
    return [replace(p, orgs=tuple(sorted(o for r in p.roots for o in by_root.get(r, ())))) for p in parts]


def plan_partitions(sizes: dict[str, int], n: int) -> list[Partition]:
    """``sizes`` (top-level org -> facts) packed into at most ``n`` partitions, heaviest first.

    Deterministic: ties are broken by org id.  The first partition also takes the subjects without an org.
    With no orgs at all there is still one (empty) partition, so org-less subjects are judged.
    """
    if n < 1:
        raise ValueError(f"partitions must be at least 1, not {n}")
    bins: list[tuple[int, int]] = [(0, k) for k in range(min(n, max(1, len(sizes))))]
    members: dict[int, list[str]] = defaultdict(list)
    for root, size in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        load, k = heapq.heappop(bins)
        members[k].append(root)
        heapq.heappush(bins, (load + size, k))
    loads = dict((k, load) for load, k in bins)
    ordered = sorted(loads, key=lambda k: (-loads[k], k))
    return [
        Partition(i, tuple(sorted(members[k])), loads[k], orphans=(i == 0)) for i, k in enumerate(ordered)
    ]
