"""The org tree as stored: parent links that may be broken (a cycle written straight into the store).

Import refuses a parent cycle, but a store can still hold one; every walk of the tree (report subtrees,
routing paths, partitions) keeps a visited set, and :func:`parent_cycles` names the cycles so a check
can report them as a data-quality problem.
"""

from __future__ import annotations

from collections.abc import Mapping


def parent_cycles(parents: Mapping[str, str | None]) -> list[list[str]]:
    """Every cycle of parent links, each as org ids in link order starting from its smallest id."""
    state: dict[str, int] = {}  # 1 on the current walk, 2 done
    out: list[list[str]] = []
    for start in sorted(parents):
        walk: list[str] = []
        current: str | None = start
        while current is not None and current in parents and state.get(current) is None:
            state[current] = 1
            walk.append(current)
            current = parents[current]
        if current is not None and state.get(current) == 1:  # came back into this walk: a cycle
            cycle = walk[walk.index(current) :]
            first = cycle.index(min(cycle))
            out.append(cycle[first:] + cycle[:first])
        for org in walk:
            state[org] = 2
    return out


def describe(cycle: list[str]) -> str:
    return " → ".join([*cycle, cycle[0]])
