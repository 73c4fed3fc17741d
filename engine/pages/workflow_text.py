"""The rectification workflow in the pages' words: action names, log entries, and why a step was refused.

The workflow's own errors are written for the CLI (English, naming ``--owner`` and the like); the
pages check the form first and say what is missing in Chinese (:func:`form_problem`), and turn a
refusal from the service into one Chinese line (:func:`refusal`) that keeps the service's detail
when there is no better wording.
"""

from __future__ import annotations

import datetime as dt

from engine.auth.principal import Forbidden, NotFound
from engine.violations.tables import STATUS_CN
from engine.violations.workflow import ALLOWED, WorkflowError
from facts.errors import PartyrulesError

ACTION_CN = {
    "ack": "确认",
    "assign": "分派整改",
    "resolve": "标记已解决",
    "waive": "豁免",
    "reopen": "重新打开",
}
EVENT_CN = {
    **ACTION_CN,
    "detected": "发现",
    "recurred": "再次发现",
    "auto_resolved": "自动解决",
    "escalate": "升级提醒",
    "waiver_expired": "豁免到期",
}
HOW_CN = {"rectified": "已整改", "data-corrected": "数据已更正"}


def possible(status: str) -> list[str]:
    """The workflow actions a violation in ``status`` allows, in the order the page shows them."""
    return [a for a in ACTION_CN if status in ALLOWED[a]]


def status_problem(status: str, action: str) -> str | None:
    """Why ``action`` cannot be taken on a violation in ``status`` (None: it can)."""
    if status in ALLOWED[action]:
        return None
    now = "、".join(ACTION_CN[a] for a in possible(status)) or "无"
    return f"该问题当前为“{STATUS_CN.get(status, status)}”，不能{ACTION_CN[action]}；当前可进行的操作：{now}"


def parse_date(text: str, field: str, required: bool) -> tuple[dt.date | None, str | None]:
    """(the date, None) or (None, the problem) for a form's YYYY-MM-DD field."""
    text = text.strip()
    if not text:
        return None, (f"请填写{field}" if required else None)
    try:
        return dt.date.fromisoformat(text), None
    except ValueError:
        return None, f"{field}“{text}”不是有效日期，请按 年-月-日 填写，如 2018-04-30"


def form_problem(action: str, form: dict[str, str]) -> str | None:
    """What the form of ``action`` lacks, in Chinese (None: complete).  Dates are checked by the caller."""
    need = {
        "assign": (("owner", "责任人"), ("plan", "整改措施")),
        "resolve": (("evidence", "整改佐证（如何解决的）"),),
        "waive": (("reason", "豁免理由"), ("approver", "批准人")),
        "reopen": (("reason", "重新打开的理由"),),
    }.get(action, ())
    missing = [label for name, label in need if not form.get(name, "").strip()]
    if missing:
        return "请填写" + "、".join(missing)
    if action == "resolve" and form.get("how", "rectified") not in HOW_CN:
        return "请选择解决方式：已整改或数据已更正"
    return None


def refusal(exc: PartyrulesError, action: str) -> str:
    """One Chinese line for a step the service refused."""
    if isinstance(exc, NotFound):
        return "未找到该问题，或它不在您的查看范围内"
    if isinstance(exc, Forbidden):
        return f"您可查看但无权{ACTION_CN.get(action, action)}该问题"
    if isinstance(exc, WorkflowError) and action == "waive" and "approver" in str(exc):
        return f"批准人须为另一个已启用、且有权处理该问题的账号（{exc}）"
    return f"{ACTION_CN.get(action, action)}未完成：{exc}"
