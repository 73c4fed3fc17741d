"""``partyrules violations``: list, explain, and move violations through rectification (整改)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from engine.cli import Context, friendly, pass_ctx
from engine.cli.output import LazyChoice, format_option, print_json, print_table, severity_cn
from engine.cli.workflow_cmds import add_workflow_commands

if TYPE_CHECKING:
    from engine.violations.tables import Violation


def _statuses() -> tuple[str, ...]:
    from engine.violations.tables import STATUSES

    return STATUSES


def violation_json(v: Violation) -> dict[str, Any]:
    return {
        "key": v.key,
        "rule": v.rule,
        "title": v.title,
        "severity": v.severity,
        "subject": {"type": v.subject_type, "id": v.subject_id},
        "org": v.org,
        "org_name": v.org_name,
        "member": v.member,
        "period": v.period,
        "message": v.message,
        "basis": v.basis,
        "evidence": v.evidence,
        "status": v.status,
        "rule_version": v.rule_version,
        "pack_hash": v.pack_hash,
        "first_seen": v.first_seen.isoformat(),
        "last_seen": v.last_seen.isoformat(),
        "resolved_at": v.resolved_at.isoformat() if v.resolved_at else None,
        "resolution": v.resolution,
        "owner": v.owner,
        "deadline": v.deadline.isoformat() if v.deadline else None,
        "plan": v.plan,
        "waiver_reason": v.waiver_reason,
        "waiver_approver": v.waiver_approver,
        "waiver_expires": v.waiver_expires.isoformat() if v.waiver_expires else None,
        "rule_retired": v.rule_retired,
    }


@click.group()
def violations() -> None:
    """List, explain and follow violations to rectification (整改)."""


@violations.command(name="list")
@click.option("--status", type=LazyChoice(_statuses), help="Only this status.")
@click.option("--rule", help="Only this rule id.")
@click.option("--org", help="Only this org id.")
@click.option("--period", help="Only this period (YYYY-MM, YYYY-Qn, YYYY).")
@format_option()
@pass_ctx
@friendly
def list_(
    ctx: Context, status: str | None, rule: str | None, org: str | None, period: str | None, fmt: str
) -> None:
    """List stored violations.

    \b
    Examples:
      partyrules violations list --status open
      partyrules violations list --rule dues.monthly.paid --format json
    """
    from engine.violations.tables import STATUS_CN

    ctx.app.init()
    from engine.service import violations_ops

    items = violations_ops.list_violations(ctx.app, ctx.principal(), status, rule, org, period)
    if fmt == "json":
        print_json([violation_json(v) for v in items])
        return
    rows = [
        (v.key, severity_cn(v.severity), STATUS_CN.get(v.status, v.status), v.period, v.message)
        for v in items
    ]
    print_table(f"违规清单（{len(items)}项）", ["编号", "级别", "状态", "期间", "问题"], rows)


@violations.command()
@click.argument("key")
@format_option()
@pass_ctx
@friendly
def show(ctx: Context, key: str, fmt: str) -> None:
    """Explain one violation: rule, basis, observed vs required, the facts, and its history.

    \b
    Example:
      partyrules violations show 'branch.committee_meeting.monthly|org:b3|2017-06'
    """
    from engine.violations.packs import rule_text
    from engine.violations.tables import STATUS_CN

    ctx.app.init()
    from engine.service import violations_ops

    v, events = violations_ops.show_violation(ctx.app, ctx.principal(), key)
    text = rule_text(ctx.app.db, v.pack_hash, f"{v.rule}@{v.rule_version}")
    if fmt == "json":
        data = violation_json(v)
        data["log"] = [
            dict(
                at=e.at.isoformat(),
                actor=e.actor,
                action=e.action,
                from_status=e.from_status,
                to_status=e.to_status,
                note=e.note,
            )
            for e in events
        ]
        data["rule_text"] = text
        print_json(data)
        return
    ev = v.evidence or {}
    lines = [
        ("编号", v.key),
        ("问题", v.message),
        ("规则", f"{v.rule}  {v.title}"),
        ("依据", v.basis),
        ("级别", severity_cn(v.severity)),
        ("状态", STATUS_CN.get(v.status, v.status) + ("（规则已停用）" if v.rule_retired else "")),
        ("期间", v.period),
        ("对象", f"{v.subject_type} {v.subject_id}"),
        ("组织", f"{v.org_name or ''} ({v.org or '-'})"),
        ("判定条件", ev.get("condition", "")),
        ("实际情况", ", ".join(f"{k}={val}" for k, val in ev.get("observed", {}).items())),
        ("要求", ", ".join(f"{k}={val}" for k, val in ev.get("threshold", {}).items()) or "-"),
        ("相关记录", ", ".join(ev.get("facts", [])) or "无（未找到任何相关记录）"),
        ("规则版本", f"{v.rule_version}（规则包 {v.pack_hash}）"),
        ("首次发现", v.first_seen.isoformat(timespec="seconds")),
        ("最近发现", v.last_seen.isoformat(timespec="seconds")),
    ]
    if v.owner or v.deadline or v.plan:
        lines.append(("整改", f"责任人 {v.owner or '-'}，期限 {v.deadline or '-'}，措施 {v.plan or '-'}"))
    if v.resolution:
        lines.append(("解决情况", v.resolution))
    if v.waiver_reason:
        lines.append(
            ("豁免", f"{v.waiver_reason}（批准人 {v.waiver_approver}，至 {v.waiver_expires or '长期'}）")
        )
    print_table("违规详情", ["项目", "内容"], lines)
    print_table(
        "处理记录",
        ["时间", "操作人", "操作", "状态变化", "说明"],
        [
            (
                e.at.isoformat(timespec="seconds"),
                e.actor,
                e.action,
                f"{e.from_status or '-'} → {e.to_status or '-'}",
                e.note or "",
            )
            for e in events
        ],
    )


add_workflow_commands(violations)  # ack, assign, resolve, waive, reopen


def register(group: click.Group) -> None:
    group.add_command(violations)
