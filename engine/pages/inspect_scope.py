"""What part of the org tree an inspector's pages cover: the org choices, the default org and period.

The choices are the roots of the principal's ``report.read`` grants and what lies below them,
in tree order and indented, capped at :data:`MAX_CHOICES` (a province has 20,000 orgs; an org not
listed can still be typed into the address, and the report service checks it like any other).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from engine.app import App
from engine.auth.principal import Principal
from engine.violations.tables import Violation
from facts.tables import OrgRow

_ORG = OrgRow.__table__  # type: ignore[attr-defined]
_V = Violation.__table__  # type: ignore[attr-defined]
MAX_CHOICES = 300
ALL = ""  # the value of "全部组织" (a principal with a global grant)


@dataclass(frozen=True)
class OrgChoice:
    id: str
    name: str
    depth: int

    @property
    def label(self) -> str:
        return "　" * self.depth + self.name


def _orgs(app: App) -> dict[str, tuple[str, str | None]]:
    with app.db.connect() as conn:
        return {
            r.id: (r.name, r.parent) for r in conn.execute(sa.select(_ORG.c.id, _ORG.c.name, _ORG.c.parent))
        }


def scope_roots(
    app: App, principal: Principal, orgs: dict[str, tuple[str, str | None]] | None = None
) -> list[str]:
    """The orgs at the top of the principal's ``report.read`` scope ([] with a global grant: every root)."""
    orgs = orgs if orgs is not None else _orgs(app)
    if principal.is_global("report.read"):
        return sorted(o for o, (_name, parent) in orgs.items() if parent is None or parent not in orgs)
    roots = [org for org, _sub in principal.scopes("report.read") if org is not None]
    return list(dict.fromkeys(roots))


def org_choices(app: App, principal: Principal) -> list[OrgChoice]:
    """The orgs to pick from, each root followed by its subtree (depth first), at most MAX_CHOICES."""
    orgs = _orgs(app)
    children: dict[str, list[str]] = {}
    for org, (_name, parent) in orgs.items():
        if parent is not None and parent in orgs:
            children.setdefault(parent, []).append(org)
    out: list[OrgChoice] = []
    seen: set[str] = set()
    todo = [(root, 0) for root in reversed(scope_roots(app, principal, orgs))]
    while todo and len(out) < MAX_CHOICES:
        org, depth = todo.pop()
        if org in seen or org not in orgs:
            continue
        seen.add(org)
        out.append(OrgChoice(org, orgs[org][0], depth))
        todo.extend((c, depth + 1) for c in sorted(children.get(org, []), reverse=True))
    return out


def default_org(app: App, principal: Principal) -> str:
    """All orgs for a global grant; else the first org the principal's grants cover."""
    if principal.is_global("report.read"):
        return ALL
    roots = scope_roots(app, principal)
    return roots[0] if roots else ALL


def default_period(app: App) -> str:
    """The year of the latest period that has a violation (the current year when there is none)."""
    with app.db.connect() as conn:
        latest = conn.execute(sa.select(sa.func.max(_V.c.period))).scalar()
    return str(latest)[:4] if latest else str(app.today().year)
