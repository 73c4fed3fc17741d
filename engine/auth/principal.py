"""Who is acting, and what they may do where (权限).

A principal holds grants ``(role, org)``; a grant covers the subtree of its org
(``org=None``: the whole tree).  Roles:

* ``secretary`` (支部书记): writes facts of its own org only, reads that org's facts and violations, and
  reports the rectification of that org's violations (整改说明 with evidence files);
* ``inspector`` (纪检): reads a subtree and works its violations (ack/assign/resolve/waive/reopen);
* ``rule_admin`` (规则管理员): rule packs — upload, diff, backtest, approve;
* ``admin`` (管理员): accounts, and everything else inside its subtree.

An object outside every grant is *not found* (:class:`NotFound`, HTTP 404), so ids do
not leak; an action no grant of the principal allows at all is :class:`Forbidden` (HTTP 403).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from facts import tables as ft
from facts.errors import PartyrulesError

ROLES = ("secretary", "inspector", "rule_admin", "admin")
ROLE_CN = {"secretary": "支部书记", "inspector": "纪检", "rule_admin": "规则管理员", "admin": "管理员"}

# action -> roles allowed, and whether the grant covers the subtree (True) or only its own org (False)
ACTIONS: dict[str, dict[str, bool]] = {
    "fact.write": {"secretary": False, "admin": True},
    "fact.read": {"secretary": False, "inspector": True, "admin": True},
    "violation.read": {"secretary": False, "inspector": True, "admin": True},
    "violation.work": {"inspector": True, "admin": True},
    # a rectification report (整改说明 and evidence files) on a violation: the org's secretary reports, an
    # inspector resolves
    "violation.report": {"secretary": False, "inspector": True, "admin": True},
    "report.read": {"secretary": False, "inspector": True, "admin": True},
    "pack.read": {"rule_admin": True, "admin": True},
    "pack.write": {"rule_admin": True, "admin": True},
    "check.run": {"rule_admin": True, "admin": True},
    "account.manage": {"admin": True},
    "audit.verify": {"admin": True},
}


class AuthError(PartyrulesError):
    """Base of the authorization errors."""


class NotAuthenticated(AuthError):
    """No valid credentials (HTTP 401)."""


class Forbidden(AuthError):
    """The principal's roles do not allow this action anywhere (HTTP 403)."""


class NotFound(AuthError):
    """No such object — or one outside the principal's scope, which is told the same way (HTTP 404)."""


@dataclass(frozen=True)
class Grant:
    role: str
    org: str | None = None  # None: the whole tree

    def __str__(self) -> str:
        return f"{self.role}@{self.org or '*'}"


@dataclass(frozen=True)
class Principal:
    name: str
    account_id: int | None  # None: the local administrator of the CLI (whoever can open the database)
    grants: tuple[Grant, ...] = field(default_factory=tuple)

    @classmethod
    def local(cls, name: str) -> Principal:
        return cls(name=name, account_id=None, grants=(Grant("admin", None),))

    def may(self, action: str) -> bool:
        """Whether any grant allows ``action`` somewhere."""
        allowed = ACTIONS[action]
        return any(g.role in allowed for g in self.grants)

    def require(self, action: str) -> None:
        if not self.may(action):
            roles = "、".join(f"{r}（{ROLE_CN[r]}）" for r in ACTIONS[action])
            raise Forbidden(f"{self.name} 无权执行 {action}：需要角色 {roles}")

    def scopes(self, action: str) -> list[tuple[str | None, bool]]:
        """(org, covers subtree) for each grant allowing ``action``."""
        allowed = ACTIONS[action]
        return [(g.org, allowed[g.role]) for g in self.grants if g.role in allowed]

    def is_global(self, action: str) -> bool:
        return any(org is None for org, _sub in self.scopes(action))


class OrgTree:
    """The org hierarchy (the ``org`` projection), read lazily: a submission looks up one parent chain,
    not the province's 20,000 orgs."""

    def __init__(self, parents: dict[str, str | None] | None = None, db: sa.Engine | None = None) -> None:
        self.parents: dict[str, str | None] = dict(parents or {})
        self.db = db
        self._children: dict[str, list[str]] | None = None

    @classmethod
    def load(cls, db: sa.Engine) -> OrgTree:
        return cls(db=db)

    def add(self, org: str, parent: str | None) -> None:
        """An org not yet stored (one of the batch being submitted)."""
        self.parents.setdefault(org, parent)
        self._children = None

    def _parent(self, org: str) -> str | None:
        if org not in self.parents and self.db is not None:
            table = ft.OrgRow.__table__  # type: ignore[attr-defined]
            with self.db.connect() as conn:
                row = conn.execute(sa.select(table.c.parent).where(table.c.id == org)).first()
            self.parents[org] = row[0] if row else None
        return self.parents.get(org)

    def path(self, org: str) -> list[str]:
        """``org`` and its ancestors, nearest first (cycles are cut)."""
        out: list[str] = []
        node: str | None = org
        while node is not None and node not in out:
            out.append(node)
            node = self._parent(node)
        return out

    def subtree(self, root: str) -> set[str]:
        if self._children is None:
            if self.db is not None:
                table = ft.OrgRow.__table__  # type: ignore[attr-defined]
                with self.db.connect() as conn:
                    for org, parent in conn.execute(sa.select(table.c.id, table.c.parent)):
                        self.parents.setdefault(org, parent)
            self._children = {}
            for child, parent in self.parents.items():
                if parent is not None:
                    self._children.setdefault(parent, []).append(child)
        out, todo = set(), [root]
        while todo:
            node = todo.pop()
            if node not in out:
                out.add(node)
                todo.extend(self._children.get(node, ()))
        return out


def allows(principal: Principal, action: str, org: str | None, tree: OrgTree) -> bool:
    """Whether ``principal`` may do ``action`` on an object of ``org`` (None: an object of no org)."""
    for scope, subtree in principal.scopes(action):
        if scope is None:
            return True
        if org is None:
            continue
        if org == scope or (subtree and scope in tree.path(org)):
            return True
    return False


def visible_orgs(principal: Principal, action: str, tree: OrgTree) -> set[str] | None:
    """The orgs whose objects ``principal`` may ``action`` (None: all, including objects of no org)."""
    if principal.is_global(action):
        return None
    out: set[str] = set()
    for scope, subtree in principal.scopes(action):
        if scope is not None:
            out |= tree.subtree(scope) if subtree else {scope}
    return out


def parse_grants(specs: Iterable[str]) -> list[Grant]:
    """``role`` or ``role@org`` strings (the CLI's --role) as grants; raises AuthError on an unknown role."""
    grants = []
    for spec in specs:
        role, _, org = spec.partition("@")
        role = role.strip()
        if role not in ROLES:
            raise AuthError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
        grants.append(Grant(role, org.strip() or None))
    return grants
