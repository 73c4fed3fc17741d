"""Facts through the service: submit (authorized per object, audited, judged), read, history, retract.

A fact belongs to an org (its owner): a meeting or election to its ``org``; a member
to its ``org``; dues, visits, declarations and promotions to their member's org; an
interview to the interviewee's org; a sign-off to its unit (or its signer's org); an
org to its parent.  Petitions and top-level orgs belong to no org: only a principal
with a grant over the whole tree writes or reads them.  A reference the principal
may not write is rejected exactly like an unknown one, so ids outside the scope do
not leak.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.app import App
from engine.audit.log import append, import_detail
from engine.auth.principal import NotFound, OrgTree, Principal, allows
from engine.submit import Judgement, judge_report
from facts import tables as ft
from facts.errors import FieldProblem, Location
from facts.models import MODELS
from facts.store import ImportReport, Item, VersionInfo
from facts.streaming import LineChunk

_MEMBER = ft.MemberRow.__table__  # type: ignore[attr-defined]
# type -> (field that names the owner, what it names)
OWNER_FIELD: dict[str, tuple[str, str]] = {
    "org": ("parent", "org"),
    "member": ("org", "org"),
    "meeting": ("org", "org"),
    "election": ("org", "org"),
    "dues": ("member", "member"),
    "field_visit": ("member", "member"),
    "declaration": ("member", "member"),
    "promotion": ("member", "member"),
    "interview": ("interviewee", "member"),
}


@dataclass
class Submitted:
    report: ImportReport
    judgement: Judgement | None
    audit_seq: int | None


def _owner_ref(type_name: str, body: dict[str, Any]) -> tuple[str, str, str | None]:
    """(field, target kind, referenced id) naming the owner of a fact given as a dict."""
    if type_name == "signoff":
        if body.get("unit"):
            return "unit", "org", body.get("unit")
        return "signer", "member", body.get("signer")
    if type_name in OWNER_FIELD:
        name, target = OWNER_FIELD[type_name]
        return name, target, body.get(name)
    return "", "", None


class Owners:
    """Resolves the owning org of facts, with the registry read lazily and the batch's own members and orgs."""

    def __init__(self, app: App, tree: OrgTree | None = None) -> None:
        self.app = app
        self.tree = tree or OrgTree.load(app.db)
        self.member_org: dict[str, str] = {}

    def add_batch(self, facts: Iterable[dict[str, Any]]) -> None:
        for body in facts:
            if body.get("type") == "member" and body.get("id") and body.get("org"):
                self.member_org[body["id"]] = body["org"]
            if body.get("type") == "org" and body.get("id"):
                self.tree.add(body["id"], body.get("parent"))

    def load_members(self, ids: set[str]) -> None:
        wanted = sorted(i for i in ids if i not in self.member_org)
        with self.app.db.connect() as conn:
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                for mid, org in conn.execute(
                    sa.select(_MEMBER.c.id, _MEMBER.c.org).where(_MEMBER.c.id.in_(part))
                ):
                    self.member_org[mid] = org

    def load_all_members(self) -> None:
        with self.app.db.connect() as conn:
            self.member_org.update({m: o for m, o in conn.execute(sa.select(_MEMBER.c.id, _MEMBER.c.org))})

    def org_of(self, type_name: str, body: dict[str, Any]) -> str | None:
        _field, target, ref = _owner_ref(type_name, body)
        if ref is None:
            return None
        if target == "member":
            if ref not in self.member_org:
                self.load_members({ref})
            return self.member_org.get(ref)
        return str(ref)


def _admit(principal: Principal, owners: Owners):  # type: ignore[no-untyped-def]
    def admit(batch: Collection[tuple[Location, dict[str, Any]]]) -> list[FieldProblem]:
        # read three times, never held as a list: the whole import's registry is one batch
        owners.add_batch(body for _loc, body in batch)
        owners.load_members(
            {
                str(b.get(_owner_ref(b["type"], b)[0]))
                for _loc, b in batch
                if _owner_ref(b["type"], b)[1] == "member"
            }
        )
        problems = []
        for location, body in batch:
            type_name = body["type"]
            name, target, ref = _owner_ref(type_name, body)
            org = owners.org_of(type_name, body)
            if allows(principal, "fact.write", org, owners.tree):
                continue
            if ref is None:
                problems.append(FieldProblem(location, type_name, "只有全局管理员可提交不属于任何组织的记录"))
            else:
                problems.append(FieldProblem(location, f"{type_name}.{name}", f'unknown {target} "{ref}"'))
        return problems

    return admit


def submit_facts(
    app: App,
    principal: Principal,
    items: Iterable[Item | LineChunk],
    source: str = "api",
    request_id: str | None = None,
    judge: bool = True,
    bulk_from: int | None = None,
) -> Submitted:
    """Store every valid object the principal may write (others rejected per object, with the import's
    messages), record the write in the audit log, and judge what was added or corrected.

    With ``bulk_from``, an import that adds or corrects more facts than that holds none of them and is
    judged in bulk from the store (:mod:`engine.judge_import`); the report then lists none."""
    principal.require("fact.write")
    owners = Owners(app)
    keep: bool | int = judge if bulk_from is None or not judge else bulk_from
    report = app.facts.import_items(items, files=source, admit=_admit(principal, owners), keep_stored=keep)
    seq = None
    if report.import_id is not None and (report.added or report.corrected):
        detail = import_detail(app.db, report.import_id)
        detail["source"] = source[:200]
        if report.altered:
            detail["altered"] = report.altered
        with app.db.begin() as conn:
            seq = append(conn, principal.name, "fact.import", source[:200], detail, request_id)
    judgement = None
    if judge and report.stored:
        judgement = judge_report(app, report)
    elif judge and not report.stored_complete and report.import_id is not None:
        from engine.judge_import import judge_import

        judgement = judge_import(app, report.import_id)
    return Submitted(report, judgement, seq)


def _check_type(type_name: str) -> None:
    if type_name not in MODELS:
        raise NotFound(f"unknown fact type {type_name!r}")


def read_facts(
    app: App, principal: Principal, type_name: str, limit: int = 1000, offset: int = 0
) -> list[dict[str, Any]]:
    """Current facts of one type that the principal may read (registry order)."""
    _check_type(type_name)
    principal.require("fact.read")
    owners = Owners(app)
    everything = principal.is_global("fact.read")
    if not everything and type_name in ("signoff", *(t for t, (_f, k) in OWNER_FIELD.items() if k == "member")):
        owners.load_all_members()  # one query instead of one per member met
    out: list[dict[str, Any]] = []
    skipped = 0
    for body in app.facts.current(type_name):
        if not everything and not allows(principal, "fact.read", owners.org_of(type_name, body), owners.tree):
            continue
        if skipped < offset:
            skipped += 1
            continue
        out.append(body)
        if len(out) >= limit:
            break
    return out


def _readable(app: App, principal: Principal, type_name: str, key: str, versions: list[VersionInfo]) -> None:
    owners = Owners(app)
    bodies = [v.content for v in versions if not v.content.get("retracted")]
    if not versions or not any(
        allows(principal, "fact.read", owners.org_of(type_name, b), owners.tree) for b in bodies
    ):
        raise NotFound(f"no {type_name} with key {key!r}")


def fact_history(app: App, principal: Principal, type_name: str, key: str) -> list[VersionInfo]:
    """Every version of one fact (404 alike for unknown and out-of-scope)."""
    _check_type(type_name)
    principal.require("fact.read")
    versions = app.facts.history(type_name, key)
    _readable(app, principal, type_name, key, versions)
    return versions


def retract_fact(
    app: App, principal: Principal, type_name: str, key: str, reason: str, request_id: str | None = None
) -> int:
    """Withdraw a current fact with a reason (an append-only tombstone); returns the tombstone's version."""
    _check_type(type_name)
    principal.require("fact.write")
    body = app.facts.current_version(type_name, key)
    owners = Owners(app)
    if body is None or not allows(principal, "fact.write", owners.org_of(type_name, body), owners.tree):
        raise NotFound(f"no current {type_name} with key {key!r}")
    if not reason.strip():
        from engine.auth.principal import AuthError

        raise AuthError("a retraction needs a reason")
    run_id = app.facts.retract(type_name, key, reason, principal.name)
    if run_id is None:
        raise NotFound(f"no current {type_name} with key {key!r}")
    detail = import_detail(app.db, run_id)
    detail["reason"] = reason
    with app.db.begin() as conn:
        append(conn, principal.name, "fact.retract", f"{type_name} {key}", detail, request_id)
    return int(detail["facts"][0][2])
