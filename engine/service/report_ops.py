"""Reports through the service: the report of an org's subtree, for a principal who may read that org."""

from __future__ import annotations

from engine.app import App
from engine.auth.principal import NotFound, OrgTree, Principal, allows
from engine.report.data import build_report
from engine.report.model import Report


def report_for(
    app: App, principal: Principal, period: str, org: str | None, trend_periods: int = 4
) -> Report:
    """Without ``org`` the whole tree (a principal with a global grant); else ``org``'s subtree."""
    principal.require("report.read")
    if org is None:
        if not principal.is_global("report.read"):
            raise NotFound("name the org to report on (?org=…): your roles cover part of the tree")
    elif not allows(principal, "report.read", org, OrgTree.load(app.db)):
        raise NotFound(f"no org {org!r}")
    return build_report(app.db, period, org, trend_periods=trend_periods, as_of=app.today())
