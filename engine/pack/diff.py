"""Differences between two rule packs, in words a policy officer reads (阈值 0.9 → 0.8)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.pack.load import CompiledRule, Pack

FIELD_CN = {
    "title": "标题",
    "basis": "依据",
    "note": "说明",
    "severity": "级别",
    "effective": "生效期间",
    "subject": "判定对象",
    "period": "判定周期",
    "deadline": "截止日期",
    "derive": "统计口径",
    "params": "阈值/参数",
    "when": "违规条件",
    "message": "提示语",
    "tests": "测试用例",
}
PARAM_CN = {
    "threshold": "阈值",
    "at_least": "最少次数",
    "max_days": "最长天数",
    "limit": "连续月数上限",
    "brackets": "党费比例表",
    "fixed": "定额标准",
}


@dataclass
class Change:
    field: str
    old: Any
    new: Any

    def describe(self) -> str:
        return f"{self.field}：{_show(self.old)} → {_show(self.new)}"


NESTED_CN = {"effective.from": "生效日期", "effective.to": "生效至"}


@dataclass
class RuleDiff:
    id: str
    changes: list[Change] = field(default_factory=list)
    title: str = ""  # the new version's title


@dataclass
class PackDiff:
    added: list[CompiledRule] = field(default_factory=list)
    removed: list[CompiledRule] = field(default_factory=list)
    changed: list[RuleDiff] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": [{"id": r.id, "title": r.rule.title, "version": r.version} for r in self.added],
            "removed": [{"id": r.id, "title": r.rule.title, "version": r.version} for r in self.removed],
            "changed": [
                {
                    "id": d.id,
                    "title": d.title,
                    "changes": [
                        {"field": c.field, "old": c.old, "new": c.new, "text": c.describe()}
                        for c in d.changes
                    ],
                }
                for d in self.changed
            ],
        }


def _show(value: Any) -> str:
    if value is None:
        return "（无）"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)


def _key(r: CompiledRule) -> tuple[str, str]:
    return (r.id, str(r.rule.effective.from_))


def _rule_changes(old: CompiledRule, new: CompiledRule) -> list[Change]:
    a = old.rule.model_dump(mode="json", by_alias=True)
    b = new.rule.model_dump(mode="json", by_alias=True)
    out: list[Change] = []
    for name in a:
        if a[name] == b.get(name):
            continue
        label = FIELD_CN.get(name, name)
        if name == "params":
            for k in sorted(set(a[name]) | set(b[name])):
                if a[name].get(k) != b[name].get(k):
                    out.append(Change(f"{PARAM_CN.get(k, label)}（{k}）", a[name].get(k), b[name].get(k)))
        elif name == "tests":
            out.append(Change(label, f"{len(a[name])}个", f"{len(b[name])}个"))
        elif isinstance(a[name], dict) and isinstance(b.get(name), dict):
            for k in sorted(set(a[name]) | set(b[name])):
                if a[name].get(k) != b[name].get(k):
                    out.append(
                        Change(NESTED_CN.get(f"{name}.{k}", f"{label}.{k}"), a[name].get(k), b[name].get(k))
                    )
        else:
            out.append(Change(label, a[name], b.get(name)))
    return out


def diff_packs(old: Pack, new: Pack) -> PackDiff:
    """Rules are matched by id and effective start; a rule whose id is only in one pack is added or removed."""
    result = PackDiff()
    old_rules = {_key(r): r for r in old.rules}
    new_rules = {_key(r): r for r in new.rules}
    old_by_id = {r.id: r for r in old.rules}
    new_by_id = {r.id: r for r in new.rules}
    for key, r in new_rules.items():
        if key in old_rules:
            changes = _rule_changes(old_rules[key], r)
            if changes:
                result.changed.append(RuleDiff(r.id, changes, r.rule.title))
        elif (
            r.id in old_by_id
            and sum(1 for k in old_rules if k[0] == r.id) == 1
            and sum(1 for k in new_rules if k[0] == r.id) == 1
        ):
            result.changed.append(RuleDiff(r.id, _rule_changes(old_by_id[r.id], r), r.rule.title))
        else:
            result.added.append(r)
    for key, r in old_rules.items():
        if key in new_rules:
            continue
        same_id_single = (
            r.id in new_by_id
            and sum(1 for k in old_rules if k[0] == r.id) == 1
            and sum(1 for k in new_rules if k[0] == r.id) == 1
        )
        if not same_id_single:
            result.removed.append(r)
    return result
