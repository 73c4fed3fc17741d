"""The registry of one generated department: its orgs and its people.

A *department* is shaped like the seed report's provincial federation: a
Party group (党组), an organ committee (机关党委), a discipline committee
(机关纪委), numbered branches (机关第N党支部, the last ones for retirees), two
or three Party groups (党小组) per branch, and non-Party units (协会, 事业单位,
处室) each with a head.  The sample organisation is one small department; the
synthetic province is many large ones.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from engine.sample.text import cn_number, person_name

YEAR = 2017
UNIT_KINDS = (("协会", 0.55), ("事业单位", 0.2), ("处室", 0.25))
_ASSOCIATIONS = (
    "作家协会",
    "戏剧家协会",
    "电影家协会",
    "音乐家协会",
    "美术家协会",
    "曲艺家协会",
    "舞蹈家协会",
    "民间文艺家协会",
    "摄影家协会",
    "书法家协会",
    "杂技家协会",
    "电视艺术家协会",
    "文艺评论家协会",
)
_INSTITUTIONS = ("文艺创作研究中心", "文艺信息中心", "文艺期刊社", "艺术培训中心")
_OFFICES = ("办公室", "组织联络处", "研究室", "宣传教育处", "机关党委办公室", "财务处")


@dataclass
class Person:
    """One member of the registry, with what the generators need beyond the fact."""

    id: str
    name: str
    org: str
    status: str = "full"
    category: str = "in_service"
    joined: date | None = None
    left: date | None = None
    roles: list[str] = field(default_factory=list)
    unit: str | None = None
    extra_orgs: list[str] = field(default_factory=list)
    base: int = 0  # monthly income base in yuan, a multiple of 10
    group: str | None = None
    established_joined: date | None = None  # when they joined, if before the year (written as `joined`)

    def fact(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "member", "id": self.id, "name": self.name, "org": self.org}
        if self.status != "full":
            out["status"] = self.status
        if self.category != "in_service":
            out["category"] = self.category
        joined = self.joined or self.established_joined
        if joined:
            out["joined"] = joined.isoformat()
        if self.left:
            out["left"] = self.left.isoformat()
        if self.roles:
            out["roles"] = list(self.roles)
        if self.unit:
            out["unit"] = self.unit
        if self.extra_orgs:
            out["extra_orgs"] = list(self.extra_orgs)
        return out

    def belongs_on(self, day: date) -> bool:
        """In the org on ``day`` (joined on or before it, not yet left)."""
        return (self.joined is None or self.joined <= day) and (self.left is None or day < self.left)

    def belongs_in_month(self, month: int) -> bool:
        first = date(YEAR, month, 1)
        last = date(YEAR + (month == 12), month % 12 + 1, 1)
        return (self.joined is None or self.joined < last) and (self.left is None or self.left >= first)

    @property
    def pays_dues(self) -> bool:
        return self.status in ("full", "probationary")


@dataclass
class Branch:
    id: str
    name: str
    groups: list[str]
    members: list[Person]
    retired: bool = False

    @property
    def secretary(self) -> Person:
        return next(p for p in self.members if "branch_secretary" in p.roles)

    @property
    def committee(self) -> list[Person]:
        return [p for p in self.members if "committee_member" in p.roles]


@dataclass
class Department:
    """One department's registry."""

    prefix: str
    name: str
    orgs: list[dict[str, Any]]
    branches: list[Branch]
    units: list[tuple[str, str]]  # (id, name)
    people: list[Person]

    @property
    def pg(self) -> str:
        return f"{self.prefix}pg"

    @property
    def pg_members(self) -> list[Person]:
        return [p for p in self.people if "party_group_member" in p.roles]

    @property
    def leaders(self) -> list[Person]:
        return [p for p in self.people if "leader" in p.roles or "party_group_member" in p.roles]

    @property
    def org_names(self) -> dict[str, str]:
        return {o["id"]: o["name"] for o in self.orgs}


@dataclass(frozen=True)
class DeptShape:
    """How big a department is and what it is called."""

    prefix: str
    name: str
    n_branches: int
    n_members: int
    n_units: int
    pg_size: int = 7
    extra_leaders: int = 2
    retiree_branches: int = 1
    probationary_rate: float = 0.04
    joiner_rate: float = 0.02
    leaver_rate: float = 0.01
    non_members: int = 0  # non-Party cadres heading units (sample only)
    unit_names: tuple[str, ...] = ()  # given names of the units; drawn when empty


def _unit_names(rng: random.Random, n: int) -> list[str]:
    names: list[str] = []
    pools = {"协会": list(_ASSOCIATIONS), "事业单位": list(_INSTITUTIONS), "处室": list(_OFFICES)}
    for i in range(n):
        kind = rng.choices([k for k, _ in UNIT_KINDS], [w for _, w in UNIT_KINDS])[0]
        pool = pools[kind]
        base = pool[i % len(pool)] if pool else kind
        name = base if base not in names else f"{base}{cn_number(i % 99 + 1)}"
        names.append(name)
    return names


def _base(rng: random.Random, retired: bool) -> int:
    """A monthly income base: now and then exactly on a bracket bound (bounds are inclusive)."""
    if rng.random() < 0.03:
        return rng.choice((5000,) if retired else (3000, 5000, 10000))
    return rng.randrange(1800, 9000, 10) if retired else rng.randrange(2400, 16000, 10)


def _day_in(rng: random.Random, month: int) -> date:
    """A join/leave day: the 1st–10th, so it never falls on a meeting day (11th–28th)."""
    return date(YEAR, month, rng.randint(1, 10))


def build_department(shape: DeptShape, rng: random.Random) -> Department:
    """Build the orgs and people of one department, deterministically from ``rng``."""
    p = shape.prefix
    orgs: list[dict[str, Any]] = [
        {
            "type": "org",
            "id": f"{p}pg",
            "name": f"{shape.name}党组",
            "kind": "party_group",
            "established": "1990-01-01",
        },
        {
            "type": "org",
            "id": f"{p}oc",
            "name": f"{shape.name}机关党委",
            "kind": "organ_committee",
            "established": "1990-01-01",
            "term_years": 5,
        },
        {
            "type": "org",
            "id": f"{p}dc",
            "name": f"{shape.name}机关纪委",
            "kind": "discipline_committee",
            "parent": f"{p}oc",
            "established": "1990-01-01",
            "term_years": 5,
        },
    ]
    sizes = _split(shape.n_members, shape.n_branches, rng)
    branches: list[Branch] = []
    people: list[Person] = []
    n_service = shape.n_branches - shape.retiree_branches
    for bi, size in enumerate(sizes, start=1):
        retired = bi > n_service
        if retired:
            k = bi - n_service
            name = "离退休干部党支部" if shape.retiree_branches == 1 else f"离退休干部第{cn_number(k)}党支部"
        else:
            name = f"机关第{cn_number(bi)}党支部"
        bid = f"{p}b{bi}"
        established = date(rng.randint(1995, 2010), rng.randint(1, 12), 1)
        orgs.append(
            {
                "type": "org",
                "id": bid,
                "name": name,
                "kind": "branch",
                "parent": f"{p}oc",
                "established": established.isoformat(),
                "term_years": 3,
            }
        )
        n_groups = 2 if size < 15 else 3
        groups = [f"{bid}-g{g}" for g in range(1, n_groups + 1)]
        for g, gid in enumerate(groups, start=1):
            orgs.append(
                {
                    "type": "org",
                    "id": gid,
                    "name": f"{name}第{cn_number(g)}党小组",
                    "kind": "group",
                    "parent": bid,
                }
            )
        members = []
        for k in range(size):
            person = Person(
                id="", name=person_name(rng), org=bid, category="retired" if retired else "in_service"
            )
            person.established_joined = date(rng.randint(1985, 2016), rng.randint(1, 12), rng.randint(1, 10))
            if k == 0:
                person.roles = ["branch_secretary", "committee_member"]
            elif k < (5 if size >= 15 else 3):
                person.roles = ["committee_member"]
            person.group = groups[k % n_groups]
            members.append(person)
        branches.append(Branch(bid, name, groups, members, retired))
        people.extend(members)
    for i, person in enumerate(people, start=1):
        person.id = f"{p}m{i:0{max(3, len(str(len(people))))}d}"
    _assign_leaders(shape, branches)
    units = _assign_units(shape, rng, branches, orgs)
    _assign_movements(shape, rng, branches)
    for person in people:
        person.base = _base(rng, person.category == "retired")
    return Department(p, shape.name, orgs, branches, units, people)


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` people over ``parts`` branches of at least 8, sizes varying around the mean."""
    if total < 8 * parts:
        raise ValueError(f"{total} members cannot fill {parts} branches of at least 8")
    weights = [rng.uniform(0.6, 1.4) for _ in range(parts)]
    spare = total - 8 * parts
    sizes = [8 + int(spare * w / sum(weights)) for w in weights]
    for i in range(total - sum(sizes)):
        sizes[i % parts] += 1
    return sizes


def _ordinary(branch: Branch) -> list[Person]:
    return [m for m in branch.members if not m.roles]


def _assign_leaders(shape: DeptShape, branches: list[Branch]) -> None:
    """Party-group members and other leaders sit in the first in-service branches (双重组织生活)."""
    service = [b for b in branches if not b.retired][: max(1, min(3, len(branches) - shape.retiree_branches))]
    pg = f"{shape.prefix}pg"
    for i in range(shape.pg_size + shape.extra_leaders):
        branch = service[i % len(service)]
        person = _ordinary(branch)[0]
        if i < shape.pg_size:
            person.roles = ["party_group_member", "leader"]
            person.extra_orgs = [pg]
            if i == 0:
                person.roles.insert(0, "party_group_secretary")
        else:
            person.roles = ["leader"]


def _assign_units(
    shape: DeptShape, rng: random.Random, branches: list[Branch], orgs: list[dict[str, Any]]
) -> list[tuple[str, str]]:
    service = [b for b in branches if not b.retired]
    units = []
    names = list(shape.unit_names) or _unit_names(rng, shape.n_units)
    for i, name in enumerate(names, start=1):
        uid = f"{shape.prefix}u{i:02d}"
        orgs.append(
            {
                "type": "org",
                "id": uid,
                "name": f"{shape.name}{name}",
                "kind": "unit",
                "established": "2000-01-01",
            }
        )
        units.append((uid, name))
        branch = service[i % len(service)]
        candidates = _ordinary(branch)
        if not candidates:
            raise ValueError(f"branch {branch.id} has no one left to head unit {uid}")
        head = candidates[-1]
        head.roles = ["unit_head"]
        head.unit = uid
        if i <= shape.non_members:
            head.status = "non_member"
            head.group = None
    return units


def _assign_movements(shape: DeptShape, rng: random.Random, branches: list[Branch]) -> None:
    """Probationary members, and a few who join or leave during the year (ordinary members only)."""
    for branch in branches:
        for person in _ordinary(branch):
            roll = rng.random()
            if roll < shape.probationary_rate:
                person.status = "probationary"
            elif roll < shape.probationary_rate + shape.joiner_rate:
                person.joined = _day_in(rng, rng.randint(2, 11))
                person.established_joined = None
            elif roll < shape.probationary_rate + shape.joiner_rate + shape.leaver_rate:
                person.left = date(YEAR, rng.randint(3, 12), rng.randint(2, 10))
